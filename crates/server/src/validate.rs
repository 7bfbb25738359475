//! Request checks at the API edge, before anything is proposed: etcd's `v3rpc/key.go`.
//!
//! What it owns: empty keys, `ignore_value`/`ignore_lease` consistency, the number of
//! operations in a transaction, and duplicate or overlapping writes in one. What it does not
//! own: checks that need the store (compacted revisions, missing keys), which the MVCC request
//! layer makes when the request is applied.

use std::collections::HashSet;

use bytes::Bytes;
use stead_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, request_op::Request,
};

use crate::EtcdError;

pub fn check_range(request: &RangeRequest) -> Result<(), EtcdError> {
    if request.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

pub fn check_put(request: &PutRequest) -> Result<(), EtcdError> {
    if request.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if request.ignore_value && !request.value.is_empty() {
        return Err(EtcdError::ValueProvided);
    }
    if request.ignore_lease && request.lease != 0 {
        return Err(EtcdError::LeaseProvided);
    }
    Ok(())
}

pub fn check_delete(request: &DeleteRangeRequest) -> Result<(), EtcdError> {
    if request.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// etcd's checks of a Txn: the widest of compares, success and failure may hold at most
/// `max_txn_ops` operations (nested transactions get what is left, as in etcd), no empty keys,
/// and no key written twice or both put and deleted on one path.
pub fn check_txn(request: &TxnRequest, max_txn_ops: usize) -> Result<(), EtcdError> {
    check_txn_ops(request, max_txn_ops as i64)?;
    check_intervals(&request.success)?;
    check_intervals(&request.failure)?;
    Ok(())
}

fn check_txn_ops(request: &TxnRequest, max_txn_ops: i64) -> Result<(), EtcdError> {
    let ops = request
        .compare
        .len()
        .max(request.success.len())
        .max(request.failure.len()) as i64;
    if ops > max_txn_ops {
        return Err(EtcdError::TooManyOps);
    }
    if request.compare.iter().any(|compare| compare.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    for op in request.success.iter().chain(&request.failure) {
        check_op(op, max_txn_ops - ops)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_txn_ops: i64) -> Result<(), EtcdError> {
    match &op.request {
        Some(Request::RequestRange(range)) => check_range(range),
        Some(Request::RequestPut(put)) => check_put(put),
        Some(Request::RequestDeleteRange(delete)) => check_delete(delete),
        Some(Request::RequestTxn(txn)) => check_txn_ops(txn, max_txn_ops),
        // An empty operation: etcd answers "key not found".
        None => Err(EtcdError::KeyNotFound),
    }
}

/// A deleted interval `[begin, end)` of one transaction path.
#[derive(Clone, Debug)]
struct Deleted {
    begin: Bytes,
    end: Bytes,
}

impl Deleted {
    /// Whether `key` is in it. A one-key delete is `[key, key + "\0")`; an interval whose end
    /// sorts before its begin (a `range_end` of `"\0"`, say) contains nothing, as in etcd.
    fn contains(&self, key: &[u8]) -> bool {
        self.begin.as_ref() <= key && key < self.end.as_ref()
    }
}

/// Puts and deletes of `ops`, rejecting a key put twice (a put in both branches of one nested
/// transaction is fine: only one runs) or put inside a deleted interval (etcd's
/// `checkIntervals`).
fn check_intervals(ops: &[RequestOp]) -> Result<(HashSet<Bytes>, Vec<Deleted>), EtcdError> {
    let mut deleted: Vec<Deleted> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(delete)) => Some(if delete.range_end.is_empty() {
                let mut end = delete.key.to_vec();
                end.push(0);
                Deleted {
                    begin: delete.key.clone(),
                    end: Bytes::from(end),
                }
            } else {
                Deleted {
                    begin: delete.key.clone(),
                    end: delete.range_end.clone(),
                }
            }),
            _ => None,
        })
        .collect();
    let is_deleted = |deleted: &[Deleted], key: &[u8]| deleted.iter().any(|d| d.contains(key));

    let mut puts: HashSet<Bytes> = HashSet::new();
    for op in ops {
        let Some(Request::RequestTxn(nested)) = &op.request else {
            continue;
        };
        let (puts_then, deleted_then) = check_intervals(&nested.success)?;
        let (puts_else, deleted_else) = check_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || is_deleted(&deleted, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in &puts_else {
            if (puts.contains(key) && !puts_then.contains(key)) || is_deleted(&deleted, key) {
                return Err(EtcdError::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        deleted.extend(deleted_then);
        deleted.extend(deleted_else);
    }
    for op in ops {
        let Some(Request::RequestPut(put)) = &op.request else {
            continue;
        };
        if puts.contains(&put.key) || is_deleted(&deleted, &put.key) {
            return Err(EtcdError::DuplicateKey);
        }
        puts.insert(put.key.clone());
    }
    Ok((puts, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stead_proto::etcdserverpb::Compare;

    fn put(key: &'static str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: Bytes::from_static(key.as_bytes()),
                ..Default::default()
            })),
        }
    }

    fn delete(key: &'static str, end: &'static str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: Bytes::from_static(key.as_bytes()),
                range_end: Bytes::from_static(end.as_bytes()),
                prev_kv: false,
            })),
        }
    }

    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure,
        }
    }

    fn nested(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(txn(success, failure))),
        }
    }

    #[test]
    fn duplicate_writes_follow_etcd() {
        let cases: Vec<(TxnRequest, Result<(), EtcdError>)> = vec![
            (txn(vec![put("a"), put("b")], vec![]), Ok(())),
            (
                txn(vec![put("a"), put("a")], vec![]),
                Err(EtcdError::DuplicateKey),
            ),
            // Each branch is checked on its own.
            (txn(vec![put("a")], vec![put("a")]), Ok(())),
            (
                txn(vec![delete("a", ""), put("a")], vec![]),
                Err(EtcdError::DuplicateKey),
            ),
            (
                txn(vec![delete("a", "c"), put("b")], vec![]),
                Err(EtcdError::DuplicateKey),
            ),
            (txn(vec![delete("a", "c"), put("c")], vec![]), Ok(())),
            (txn(vec![delete("a", ""), delete("a", "")], vec![]), Ok(())),
            // A "\0" range end is an empty interval to etcd's check.
            (txn(vec![delete("a", "\0"), put("b")], vec![]), Ok(())),
            // Nested: the same key in both branches of one nested txn is fine ...
            (
                txn(vec![nested(vec![put("a")], vec![put("a")])], vec![]),
                Ok(()),
            ),
            // ... but not also at the outer level, nor inside an outer delete.
            (
                txn(vec![nested(vec![put("a")], vec![]), put("a")], vec![]),
                Err(EtcdError::DuplicateKey),
            ),
            (
                txn(
                    vec![delete("a", "b"), nested(vec![put("a")], vec![])],
                    vec![],
                ),
                Err(EtcdError::DuplicateKey),
            ),
            // A nested delete and an outer put of the same key.
            (
                txn(
                    vec![nested(vec![delete("a", "")], vec![]), put("a")],
                    vec![],
                ),
                Err(EtcdError::DuplicateKey),
            ),
        ];
        for (request, want) in cases {
            assert_eq!(check_txn(&request, 128), want, "{request:?}");
        }
    }

    #[test]
    fn operation_counts_and_empty_keys() {
        let many: Vec<RequestOp> = (0..129).map(|_| delete("a", "")).collect();
        assert_eq!(
            check_txn(&txn(many, vec![]), 128),
            Err(EtcdError::TooManyOps)
        );
        let exactly: Vec<RequestOp> = (0..128).map(|_| delete("a", "")).collect();
        assert_eq!(check_txn(&txn(exactly, vec![]), 128), Ok(()));
        let empty_compare = TxnRequest {
            compare: vec![Compare::default()],
            ..Default::default()
        };
        assert_eq!(check_txn(&empty_compare, 128), Err(EtcdError::EmptyKey));
        let empty_op = txn(vec![RequestOp { request: None }], vec![]);
        assert_eq!(check_txn(&empty_op, 128), Err(EtcdError::KeyNotFound));
        assert_eq!(
            check_txn(&txn(vec![put("")], vec![]), 128),
            Err(EtcdError::EmptyKey)
        );
    }

    #[test]
    fn puts_with_ignore_flags() {
        let request = PutRequest {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            ignore_value: true,
            ..Default::default()
        };
        assert_eq!(check_put(&request), Err(EtcdError::ValueProvided));
        let request = PutRequest {
            key: Bytes::from_static(b"k"),
            lease: 5,
            ignore_lease: true,
            ..Default::default()
        };
        assert_eq!(check_put(&request), Err(EtcdError::LeaseProvided));
    }
}

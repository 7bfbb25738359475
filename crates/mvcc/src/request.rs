//! etcd's request semantics for Range, Put, DeleteRange and Txn, on the wire types: what
//! etcd's apply layer (`etcdserver/txn.go`) does with a request once it is committed.
//!
//! What it owns: limits and the `more` flag, revision filters, sorting, `keys_only`,
//! `count_only`, `prev_kv`, `ignore_value`/`ignore_lease`, compares, the choice of branch, nested
//! transactions and the shape of their responses. What it does not own: request validation at
//! the API edge (empty keys, sizes, duplicate keys in a txn: the server checks those before
//! proposing), or the response header's cluster fields (the server fills them; responses here
//! carry only the revision).

use std::cmp::Ordering;

use stead_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
    compare::{CompareResult, CompareTarget, TargetUnion},
    range_request::{SortOrder, SortTarget},
    request_op::Request,
    response_op::Response,
};
use stead_proto::mvccpb::KeyValue;

use crate::{KeyRange, KvView, MvccError, RangeOptions, ReadTxn, WriteTxn};

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    })
}

/// A Range request.
pub fn range(view: &impl KvView, request: &RangeRequest) -> Result<RangeResponse, MvccError> {
    let limit = usize::try_from(request.limit).unwrap_or(0);
    let sort_order = SortOrder::try_from(request.sort_order).ok();
    let filters_or_sorts = request.sort_order != SortOrder::None as i32
        || request.min_mod_revision != 0
        || request.max_mod_revision != 0
        || request.min_create_revision != 0
        || request.max_create_revision != 0;
    // Sorting and filtering need every match; otherwise one extra tells whether there is more.
    let fetch_limit = if filters_or_sorts || limit == 0 {
        0
    } else {
        limit.saturating_add(1)
    };
    let mut options = RangeOptions::latest()
        .with_limit(fetch_limit)
        .at_revision(request.revision);
    if request.count_only {
        options = options.count_only();
    }
    let result = view.range(
        &KeyRange::from_request(&request.key, &request.range_end),
        &options,
    )?;
    let mut kvs = result.kvs;
    if request.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= request.max_mod_revision);
    }
    if request.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= request.min_mod_revision);
    }
    if request.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= request.max_create_revision);
    }
    if request.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= request.min_create_revision);
    }
    // Results come in key order; any other target sorts ascending unless told otherwise.
    let order = match sort_order {
        Some(SortOrder::None) if request.sort_target != SortTarget::Key as i32 => {
            Some(SortOrder::Ascend)
        }
        order => order,
    };
    if let Some(order @ (SortOrder::Ascend | SortOrder::Descend)) = order
        && let Ok(target) = SortTarget::try_from(request.sort_target)
    {
        let compare = |a: &KeyValue, b: &KeyValue| -> Ordering {
            match target {
                SortTarget::Key => a.key.cmp(&b.key),
                SortTarget::Version => a.version.cmp(&b.version),
                SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                SortTarget::Value => a.value.cmp(&b.value),
            }
        };
        match order {
            SortOrder::Descend => kvs.sort_by(|a, b| compare(b, a)),
            _ => kvs.sort_by(compare),
        }
    }
    let mut more = false;
    if limit > 0 && kvs.len() > limit {
        kvs.truncate(limit);
        more = true;
    }
    if request.keys_only {
        for kv in &mut kvs {
            kv.value = Default::default();
        }
    }
    Ok(RangeResponse {
        header: header(result.revision),
        kvs,
        more,
        count: result.count as i64,
    })
}

/// A Put request outside a transaction: checks the lease, then puts.
pub fn put(txn: &mut WriteTxn<'_>, request: &PutRequest) -> Result<PutResponse, MvccError> {
    if request.lease != 0 && !txn.lessor().exists(request.lease) {
        return Err(MvccError::LeaseNotFound);
    }
    apply_put(txn, request)
}

/// The put itself, leases already checked.
fn apply_put(txn: &mut WriteTxn<'_>, request: &PutRequest) -> Result<PutResponse, MvccError> {
    let previous = if request.ignore_value || request.ignore_lease || request.prev_kv {
        txn.range(
            &KeyRange::Single(request.key.clone()),
            &RangeOptions::latest(),
        )?
        .kvs
        .into_iter()
        .next()
    } else {
        None
    };
    let mut value = request.value.clone();
    let mut lease = request.lease;
    if request.ignore_value || request.ignore_lease {
        // They keep something of the previous key-value, which must exist.
        let Some(previous) = &previous else {
            return Err(MvccError::KeyNotFound);
        };
        if request.ignore_value {
            value = previous.value.clone();
        }
        if request.ignore_lease {
            lease = previous.lease;
        }
    }
    let revision = txn.put(&request.key, value, lease)?;
    Ok(PutResponse {
        header: header(revision),
        prev_kv: if request.prev_kv { previous } else { None },
    })
}

/// A DeleteRange request.
pub fn delete_range(
    txn: &mut WriteTxn<'_>,
    request: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse, MvccError> {
    let range = KeyRange::from_request(&request.key, &request.range_end);
    let prev_kvs = if request.prev_kv {
        txn.range(&range, &RangeOptions::latest())?.kvs
    } else {
        Vec::new()
    };
    let (deleted, revision) = txn.delete_range(&range)?;
    Ok(DeleteRangeResponse {
        header: header(revision),
        deleted,
        prev_kvs,
    })
}

/// Whether a Txn only reads: every operation of both branches is a Range (a nested Txn counts
/// as a write, as in etcd).
pub fn is_txn_read_only(request: &TxnRequest) -> bool {
    request
        .success
        .iter()
        .chain(&request.failure)
        .all(|op| matches!(op.request, Some(Request::RequestRange(_))))
}

/// A read-only Txn (see [`is_txn_read_only`]) in a read view.
pub fn txn_read(view: &ReadTxn<'_>, request: &TxnRequest) -> Result<TxnResponse, MvccError> {
    if !is_txn_read_only(request) {
        return Err(MvccError::Corrupt(
            "txn_read called with a transaction that writes".into(),
        ));
    }
    let path = compare_to_path(view, request);
    let mut executor = Executor::Read(view);
    let mut response = execute(&mut executor, request, &mut path.iter().copied())?;
    response.header = header(view.revision());
    Ok(response)
}

/// A Txn that may write. All compares, nested ones included, are evaluated first against the
/// state before the transaction; then every operation of the chosen branches is checked (so a
/// failing one changes nothing); then they run, all at one new revision.
pub fn txn_write(txn: &mut WriteTxn<'_>, request: &TxnRequest) -> Result<TxnResponse, MvccError> {
    let path = compare_to_path(txn, request);
    check_txn(txn, request, &mut path.iter().copied())?;
    let mut executor = Executor::Write(txn);
    let mut response = execute(&mut executor, request, &mut path.iter().copied())?;
    response.header = header(txn.revision());
    Ok(response)
}

/// The branch taken by the transaction and every nested one, depth first.
fn compare_to_path(view: &impl KvView, request: &TxnRequest) -> Vec<bool> {
    let mut path = Vec::new();
    push_path(view, request, &mut path);
    path
}

fn push_path(view: &impl KvView, request: &TxnRequest, path: &mut Vec<bool>) {
    let succeeded = request.compare.iter().all(|compare| applies(view, compare));
    path.push(succeeded);
    for op in branch(request, succeeded) {
        if let Some(Request::RequestTxn(nested)) = &op.request {
            push_path(view, nested, path);
        }
    }
}

fn branch(request: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &request.success
    } else {
        &request.failure
    }
}

/// Whether a compare holds for every key in its range. Comparing the value of a key that does
/// not exist fails; other targets compare against zero.
fn applies(view: &impl KvView, compare: &Compare) -> bool {
    let range = KeyRange::from_request(&compare.key, &compare.range_end);
    let Ok(result) = view.range(&range, &RangeOptions::latest()) else {
        return false;
    };
    if result.kvs.is_empty() {
        if compare.target == CompareTarget::Value as i32 {
            return false;
        }
        return compare_kv(compare, &KeyValue::default());
    }
    result.kvs.iter().all(|kv| compare_kv(compare, kv))
}

fn compare_kv(compare: &Compare, kv: &KeyValue) -> bool {
    let target = CompareTarget::try_from(compare.target);
    let ordering = match target {
        Ok(CompareTarget::Value) => {
            let wanted: &[u8] = match &compare.target_union {
                Some(TargetUnion::Value(value)) => value,
                _ => &[],
            };
            kv.value.as_ref().cmp(wanted)
        }
        Ok(CompareTarget::Create) => kv.create_revision.cmp(&match compare.target_union {
            Some(TargetUnion::CreateRevision(revision)) => revision,
            _ => 0,
        }),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(&match compare.target_union {
            Some(TargetUnion::ModRevision(revision)) => revision,
            _ => 0,
        }),
        Ok(CompareTarget::Version) => kv.version.cmp(&match compare.target_union {
            Some(TargetUnion::Version(version)) => version,
            _ => 0,
        }),
        Ok(CompareTarget::Lease) => kv.lease.cmp(&match compare.target_union {
            Some(TargetUnion::Lease(lease)) => lease,
            _ => 0,
        }),
        Err(_) => Ordering::Equal,
    };
    match CompareResult::try_from(compare.result) {
        Ok(CompareResult::Equal) => ordering == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ordering != Ordering::Equal,
        Ok(CompareResult::Greater) => ordering == Ordering::Greater,
        Ok(CompareResult::Less) => ordering == Ordering::Less,
        Err(_) => true,
    }
}

/// Checks the operations of the chosen branches before a write transaction runs any: ranges at
/// a revision the view cannot serve, puts needing a previous key-value that is absent or a
/// lease that does not exist.
fn check_txn(
    view: &WriteTxn<'_>,
    request: &TxnRequest,
    path: &mut impl Iterator<Item = bool>,
) -> Result<(), MvccError> {
    let succeeded = path.next().unwrap_or(false);
    for op in branch(request, succeeded) {
        match &op.request {
            Some(Request::RequestRange(range)) => {
                if range.revision != 0 {
                    if range.revision > view.revision() {
                        return Err(MvccError::FutureRevision);
                    }
                    if range.revision < view.first_revision() {
                        return Err(MvccError::Compacted);
                    }
                }
            }
            Some(Request::RequestPut(put)) => {
                if put.ignore_value || put.ignore_lease {
                    let found =
                        view.range(&KeyRange::Single(put.key.clone()), &RangeOptions::latest())?;
                    if found.kvs.is_empty() {
                        return Err(MvccError::KeyNotFound);
                    }
                }
                if put.lease != 0 && !view.lessor().exists(put.lease) {
                    return Err(MvccError::LeaseNotFound);
                }
            }
            Some(Request::RequestTxn(nested)) => check_txn(view, nested, path)?,
            Some(Request::RequestDeleteRange(_)) | None => {}
        }
    }
    Ok(())
}

enum Executor<'t, 'a> {
    Read(&'t ReadTxn<'a>),
    Write(&'t mut WriteTxn<'a>),
}

impl<'a> Executor<'_, 'a> {
    fn range(&self, request: &RangeRequest) -> Result<RangeResponse, MvccError> {
        match self {
            Executor::Read(view) => range(*view, request),
            Executor::Write(txn) => range(&**txn, request),
        }
    }

    fn writer(&mut self) -> Result<&mut WriteTxn<'a>, MvccError> {
        match self {
            Executor::Write(txn) => Ok(txn),
            Executor::Read(_) => Err(MvccError::Corrupt(
                "a write in a read-only transaction".into(),
            )),
        }
    }
}

/// Runs the branch chosen by the next element of `path`; nested transactions take theirs from
/// the same sequence, depth first, the order [`compare_to_path`] produced it in.
fn execute(
    executor: &mut Executor<'_, '_>,
    request: &TxnRequest,
    path: &mut impl Iterator<Item = bool>,
) -> Result<TxnResponse, MvccError> {
    let succeeded = path.next().unwrap_or(false);
    let mut responses = Vec::new();
    for op in branch(request, succeeded) {
        let response = match &op.request {
            Some(Request::RequestRange(request)) => {
                Some(Response::ResponseRange(executor.range(request)?))
            }
            Some(Request::RequestPut(request)) => Some(Response::ResponsePut(apply_put(
                executor.writer()?,
                request,
            )?)),
            Some(Request::RequestDeleteRange(request)) => Some(Response::ResponseDeleteRange(
                delete_range(executor.writer()?, request)?,
            )),
            Some(Request::RequestTxn(nested)) => {
                let mut response = execute(executor, nested, path)?;
                // Nested responses carry an empty header, as etcd's do.
                response.header = Some(ResponseHeader::default());
                Some(Response::ResponseTxn(response))
            }
            None => None,
        };
        responses.push(ResponseOp { response });
    }
    Ok(TxnResponse {
        header: None,
        succeeded,
        responses,
    })
}

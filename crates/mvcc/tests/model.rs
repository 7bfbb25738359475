//! The store against a reference model.
//!
//! The model is the simplest thing that has etcd's semantics: for every key, the list of its
//! states by revision (a value with its create/mod revision, version and lease, or "deleted").
//! Random sequences of Put, DeleteRange, Range, Txn (with compares and a nested Txn), Compact
//! and reopen run against both; every response, every error, the store revision, the
//! compaction revision and the watch events must agree. After a compaction the model keeps all
//! history, so every read at or above the compaction revision must still agree with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use stead_backend::{Backend, BackendOptions};
use stead_mvcc::request;
use stead_mvcc::{MvccError, NoLeases, Store, StoreOptions};
use stead_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
    compare::TargetUnion, request_op::Request, response_op::Response,
};
use stead_proto::mvccpb::{Event, KeyValue, event::EventType};

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Clone, Debug, PartialEq)]
struct State {
    value: Vec<u8>,
    create: i64,
    modified: i64,
    version: i64,
    lease: i64,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum ModelError {
    Compacted,
    Future,
    KeyNotFound,
    LeaseNotFound,
}

fn store_error(err: MvccError) -> ModelError {
    match err {
        MvccError::Compacted => ModelError::Compacted,
        MvccError::FutureRevision => ModelError::Future,
        MvccError::KeyNotFound => ModelError::KeyNotFound,
        MvccError::LeaseNotFound => ModelError::LeaseNotFound,
        other => panic!("unexpected store error: {other}"),
    }
}

struct Model {
    /// key → (revision, state after it), revisions ascending.
    history: BTreeMap<Vec<u8>, Vec<(i64, Option<State>)>>,
    current: i64,
    compacted: i64,
}

/// The writes of one transaction, at revision `current + 1`.
struct ModelTxn {
    changed: bool,
    events: Vec<Event>,
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        end => key >= start && key < end,
    }
}

fn kv(key: &[u8], state: &State) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(key),
        create_revision: state.create,
        mod_revision: state.modified,
        version: state.version,
        value: Bytes::copy_from_slice(&state.value),
        lease: state.lease,
    }
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Model {
    fn new() -> Model {
        Model {
            history: BTreeMap::new(),
            current: 1,
            compacted: -1,
        }
    }

    fn at(&self, key: &[u8], revision: i64) -> Option<&State> {
        self.history
            .get(key)?
            .iter()
            .rev()
            .find(|(at, _)| *at <= revision)?
            .1
            .as_ref()
    }

    fn live(&self, start: &[u8], end: &[u8], revision: i64) -> Vec<KeyValue> {
        self.history
            .keys()
            .filter(|key| in_range(key, start, end))
            .filter_map(|key| self.at(key, revision).map(|state| kv(key, state)))
            .collect()
    }

    fn view(&self, txn: &ModelTxn) -> i64 {
        self.current + i64::from(txn.changed)
    }

    fn range(&self, request: &RangeRequest, view: i64) -> Result<RangeResponse, ModelError> {
        let at = if request.revision > view {
            return Err(ModelError::Future);
        } else if request.revision <= 0 {
            view
        } else {
            request.revision
        };
        if at < self.compacted {
            return Err(ModelError::Compacted);
        }
        let all = self.live(&request.key, &request.range_end, at);
        let count = all.len() as i64;
        if request.count_only {
            return Ok(RangeResponse {
                header: header(view),
                kvs: vec![],
                more: false,
                count,
            });
        }
        // etcd's quirk: without an order or filters it fetches only one more than the limit, in
        // key order, and sorts by a non-key target within those.
        let fetch_all = request.sort_order != 0
            || request.min_mod_revision != 0
            || request.max_mod_revision != 0
            || request.min_create_revision != 0
            || request.max_create_revision != 0;
        let mut all = all;
        if !fetch_all && request.limit > 0 {
            all.truncate(request.limit as usize + 1);
        }
        let mut kvs: Vec<KeyValue> = all
            .into_iter()
            .filter(|kv| {
                request.max_mod_revision == 0 || kv.mod_revision <= request.max_mod_revision
            })
            .filter(|kv| {
                request.min_mod_revision == 0 || kv.mod_revision >= request.min_mod_revision
            })
            .filter(|kv| {
                request.max_create_revision == 0
                    || kv.create_revision <= request.max_create_revision
            })
            .filter(|kv| {
                request.min_create_revision == 0
                    || kv.create_revision >= request.min_create_revision
            })
            .collect();
        // NONE with a target other than KEY means ascending.
        let order = if request.sort_order == 0 && request.sort_target != 0 {
            1
        } else {
            request.sort_order
        };
        let sort_key = |kv: &KeyValue| -> (Vec<u8>, i64) {
            match request.sort_target {
                0 => (kv.key.to_vec(), 0),
                1 => (vec![], kv.version),
                2 => (vec![], kv.create_revision),
                3 => (vec![], kv.mod_revision),
                _ => (kv.value.to_vec(), 0),
            }
        };
        match order {
            1 => kvs.sort_by_key(sort_key),
            2 => kvs.sort_by_key(|kv| std::cmp::Reverse(sort_key(kv))),
            _ => {}
        }
        let mut more = false;
        if request.limit > 0 && kvs.len() as i64 > request.limit {
            kvs.truncate(request.limit as usize);
            more = true;
        }
        if request.keys_only {
            for kv in &mut kvs {
                kv.value = Bytes::new();
            }
        }
        Ok(RangeResponse {
            header: header(view),
            kvs,
            more,
            count,
        })
    }

    fn write(&mut self, txn: &mut ModelTxn, key: &[u8], state: Option<State>) {
        let revision = self.current + 1;
        let event = match &state {
            Some(state) => Event {
                r#type: EventType::Put as i32,
                kv: Some(kv(key, state)),
                prev_kv: None,
            },
            None => Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    key: Bytes::copy_from_slice(key),
                    mod_revision: revision,
                    ..Default::default()
                }),
                prev_kv: None,
            },
        };
        self.history
            .entry(key.to_vec())
            .or_default()
            .push((revision, state));
        txn.changed = true;
        txn.events.push(event);
    }

    /// A put, leases and ignore flags already checked.
    fn put(&mut self, txn: &mut ModelTxn, request: &PutRequest) -> PutResponse {
        let revision = self.current + 1;
        let previous = self.at(&request.key, self.view(txn)).cloned();
        let state = State {
            value: if request.ignore_value {
                previous.as_ref().expect("checked").value.clone()
            } else {
                request.value.to_vec()
            },
            create: previous.as_ref().map_or(revision, |p| p.create),
            modified: revision,
            version: previous.as_ref().map_or(1, |p| p.version + 1),
            lease: if request.ignore_lease {
                previous.as_ref().expect("checked").lease
            } else {
                request.lease
            },
        };
        self.write(txn, &request.key, Some(state));
        PutResponse {
            header: header(revision),
            prev_kv: if request.prev_kv {
                previous.map(|p| kv(&request.key, &p))
            } else {
                None
            },
        }
    }

    fn check_put(&self, request: &PutRequest, view: i64) -> Result<(), ModelError> {
        if (request.ignore_value || request.ignore_lease) && self.at(&request.key, view).is_none() {
            return Err(ModelError::KeyNotFound);
        }
        if request.lease != 0 {
            return Err(ModelError::LeaseNotFound); // the model has no leases
        }
        Ok(())
    }

    fn delete(&mut self, txn: &mut ModelTxn, request: &DeleteRangeRequest) -> DeleteRangeResponse {
        let view = self.view(txn);
        let doomed = self.live(&request.key, &request.range_end, view);
        for kv in &doomed {
            self.write(txn, &kv.key, None);
        }
        DeleteRangeResponse {
            header: header(if txn.changed {
                self.current + 1
            } else {
                self.current
            }),
            deleted: doomed.len() as i64,
            prev_kvs: if request.prev_kv { doomed } else { vec![] },
        }
    }

    fn compare(&self, compare: &Compare, view: i64) -> bool {
        let kvs = self.live(&compare.key, &compare.range_end, view);
        if kvs.is_empty() && compare.target == 3 {
            return false;
        }
        let zero = KeyValue::default();
        let kvs = if kvs.is_empty() { vec![zero] } else { kvs };
        kvs.iter().all(|kv| {
            let ordering = match (compare.target, &compare.target_union) {
                (0, Some(TargetUnion::Version(v))) => kv.version.cmp(v),
                (0, _) => kv.version.cmp(&0),
                (1, Some(TargetUnion::CreateRevision(v))) => kv.create_revision.cmp(v),
                (1, _) => kv.create_revision.cmp(&0),
                (2, Some(TargetUnion::ModRevision(v))) => kv.mod_revision.cmp(v),
                (2, _) => kv.mod_revision.cmp(&0),
                (3, Some(TargetUnion::Value(v))) => kv.value.as_ref().cmp(v.as_ref()),
                (3, _) => kv.value.as_ref().cmp(&[][..]),
                (4, Some(TargetUnion::Lease(v))) => kv.lease.cmp(v),
                (4, _) => kv.lease.cmp(&0),
                _ => std::cmp::Ordering::Equal,
            };
            match compare.result {
                0 => ordering.is_eq(),
                1 => ordering.is_gt(),
                2 => ordering.is_lt(),
                3 => ordering.is_ne(),
                _ => true,
            }
        })
    }

    fn path(&self, request: &TxnRequest, view: i64, path: &mut Vec<bool>) {
        let succeeded = request.compare.iter().all(|c| self.compare(c, view));
        path.push(succeeded);
        let ops = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        for op in ops {
            if let Some(Request::RequestTxn(nested)) = &op.request {
                self.path(nested, view, path);
            }
        }
    }

    fn check(
        &self,
        request: &TxnRequest,
        path: &mut std::slice::Iter<'_, bool>,
        view: i64,
    ) -> Result<(), ModelError> {
        let ops = if *path.next().unwrap() {
            &request.success
        } else {
            &request.failure
        };
        for op in ops {
            match &op.request {
                Some(Request::RequestRange(r)) if r.revision != 0 => {
                    if r.revision > view {
                        return Err(ModelError::Future);
                    }
                    if r.revision < self.compacted {
                        return Err(ModelError::Compacted);
                    }
                }
                Some(Request::RequestPut(p)) => self.check_put(p, view)?,
                Some(Request::RequestTxn(nested)) => self.check(nested, path, view)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn execute(
        &mut self,
        txn: &mut ModelTxn,
        request: &TxnRequest,
        path: &mut std::slice::Iter<'_, bool>,
    ) -> Result<TxnResponse, ModelError> {
        let succeeded = *path.next().unwrap();
        let ops = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        let mut responses = Vec::new();
        for op in ops {
            let response = match &op.request {
                Some(Request::RequestRange(r)) => {
                    Response::ResponseRange(self.range(r, self.view(txn))?)
                }
                Some(Request::RequestPut(p)) => Response::ResponsePut(self.put(txn, p)),
                Some(Request::RequestDeleteRange(d)) => {
                    Response::ResponseDeleteRange(self.delete(txn, d))
                }
                Some(Request::RequestTxn(nested)) => {
                    let mut response = self.execute(txn, nested, path)?;
                    response.header = Some(ResponseHeader::default());
                    Response::ResponseTxn(response)
                }
                None => unreachable!("the generator makes no empty ops"),
            };
            responses.push(ResponseOp {
                response: Some(response),
            });
        }
        Ok(TxnResponse {
            header: None,
            succeeded,
            responses,
        })
    }

    fn txn(&mut self, request: &TxnRequest) -> Result<(TxnResponse, Vec<Event>), ModelError> {
        let view = self.current;
        let read_only = request
            .success
            .iter()
            .chain(&request.failure)
            .all(|op| matches!(op.request, Some(Request::RequestRange(_))));
        let mut path = Vec::new();
        self.path(request, view, &mut path);
        if !read_only {
            self.check(request, &mut path.iter(), view)?;
        }
        let mut txn = ModelTxn {
            changed: false,
            events: vec![],
        };
        let mut response = self.execute(&mut txn, request, &mut path.iter())?;
        response.header = header(self.view(&txn));
        self.end(&txn);
        Ok((response, txn.events))
    }

    fn end(&mut self, txn: &ModelTxn) {
        if txn.changed {
            self.current += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations and their generators. Keys are one letter of a small alphabet so that operations
// collide often.

const ALPHABET: &[u8] = b"abcdefgh";

#[derive(Clone, Debug)]
enum Op {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Range(RangeRequest),
    Txn(TxnRequest),
    /// Compact at `current - back` (negative `back`: a future revision); wait or not for the
    /// physical compaction.
    Compact {
        back: i64,
        wait: bool,
    },
    /// Commit the backend, drop everything, open again.
    Reopen,
}

fn key() -> impl Strategy<Value = Bytes> {
    (0..ALPHABET.len()).prop_map(|i| Bytes::copy_from_slice(&ALPHABET[i..=i]))
}

/// `range_end` for a start key: one key, a later key, "\0" (from), or an inverted range.
fn range_end(start: &Bytes) -> impl Strategy<Value = Bytes> + use<> {
    let start = start[0];
    prop_oneof![
        3 => Just(Bytes::new()),
        3 => (1u8..4).prop_map(move |width| Bytes::from(vec![start + width])),
        1 => Just(Bytes::from_static(b"\0")),
        1 => Just(Bytes::from(vec![start.saturating_sub(1)])),
    ]
}

fn key_and_end() -> impl Strategy<Value = (Bytes, Bytes)> {
    key().prop_flat_map(|key| {
        let end = range_end(&key);
        (Just(key), end)
    })
}

/// Revisions relative to nothing in particular: small numbers cover past, present and future
/// of the short histories generated.
fn revision() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 2 => 1i64..40]
}

fn range_request() -> impl Strategy<Value = RangeRequest> {
    (
        key_and_end(),
        revision(),
        0i64..4,
        (0i32..3, 0i32..5),
        (any::<bool>(), prop::bool::weighted(0.15)),
        prop::collection::vec(prop_oneof![4 => Just(0i64), 1 => 1i64..30], 4),
    )
        .prop_map(
            |(
                (key, range_end),
                revision,
                limit,
                (sort_order, sort_target),
                (keys_only, count_only),
                filters,
            )| {
                RangeRequest {
                    key,
                    range_end,
                    limit,
                    revision,
                    sort_order,
                    sort_target,
                    serializable: false,
                    keys_only,
                    count_only,
                    min_mod_revision: filters[0],
                    max_mod_revision: filters[1],
                    min_create_revision: filters[2],
                    max_create_revision: filters[3],
                }
            },
        )
}

fn put_request() -> impl Strategy<Value = PutRequest> {
    (
        key(),
        prop::collection::vec(b'0'..b'4', 0..3),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(key, value, prev_kv, ignore_value, ignore_lease, with_lease)| PutRequest {
                key,
                value: if ignore_value {
                    Bytes::new()
                } else {
                    Bytes::from(value)
                },
                lease: if with_lease && !ignore_lease { 7 } else { 0 },
                prev_kv,
                ignore_value,
                ignore_lease,
            },
        )
}

fn delete_request() -> impl Strategy<Value = DeleteRangeRequest> {
    (key_and_end(), any::<bool>()).prop_map(|((key, range_end), prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn compare() -> impl Strategy<Value = Compare> {
    (
        0i32..4,
        0i32..5,
        key_and_end(),
        0i64..12,
        prop::collection::vec(b'0'..b'4', 0..3),
    )
        .prop_map(
            |(result, target, (key, range_end), number, value)| Compare {
                result,
                target,
                key,
                range_end,
                target_union: Some(match target {
                    0 => TargetUnion::Version(number % 4),
                    1 => TargetUnion::CreateRevision(number),
                    2 => TargetUnion::ModRevision(number),
                    3 => TargetUnion::Value(Bytes::from(value)),
                    _ => TargetUnion::Lease(0),
                }),
            },
        )
}

fn simple_op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        2 => range_request().prop_map(|r| RequestOp { request: Some(Request::RequestRange(r)) }),
        2 => put_request().prop_map(|p| RequestOp { request: Some(Request::RequestPut(p)) }),
        1 => key().prop_map(|key| RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest { key, range_end: Bytes::new(), prev_kv: true })),
        }),
    ]
}

fn txn_request(depth: u32) -> BoxedStrategy<TxnRequest> {
    let op = if depth == 0 {
        simple_op().boxed()
    } else {
        prop_oneof![
            6 => simple_op(),
            1 => txn_request(depth - 1).prop_map(|t| RequestOp { request: Some(Request::RequestTxn(t)) }),
        ]
        .boxed()
    };
    (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(op.clone(), 0..4),
        prop::collection::vec(op, 0..4),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
        .boxed()
}

/// Drops write operations on keys already written elsewhere in the transaction: the API edge
/// refuses such transactions ("duplicate key given in txn request") before they reach MVCC.
fn without_duplicate_writes(mut request: TxnRequest) -> TxnRequest {
    fn dedupe(ops: &mut Vec<RequestOp>, written: &mut Vec<Bytes>) {
        ops.retain_mut(|op| match &mut op.request {
            Some(Request::RequestPut(p)) => keep(&p.key, written),
            Some(Request::RequestDeleteRange(d)) => keep(&d.key, written),
            Some(Request::RequestTxn(t)) => {
                dedupe(&mut t.success, written);
                dedupe(&mut t.failure, written);
                true
            }
            _ => true,
        });
    }
    fn keep(key: &Bytes, written: &mut Vec<Bytes>) -> bool {
        if written.contains(key) {
            false
        } else {
            written.push(key.clone());
            true
        }
    }
    let mut written = Vec::new();
    dedupe(&mut request.success, &mut written);
    dedupe(&mut request.failure, &mut written);
    request
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => put_request().prop_map(Op::Put),
        3 => delete_request().prop_map(Op::Delete),
        6 => range_request().prop_map(Op::Range),
        5 => txn_request(1).prop_map(|t| Op::Txn(without_duplicate_writes(t))),
        2 => (-1i64..6, any::<bool>()).prop_map(|(back, wait)| Op::Compact { back, wait }),
        1 => Just(Op::Reopen),
    ]
}

// ---------------------------------------------------------------------------------------------
// The runner.

struct Subject {
    dir: tempfile::TempDir,
    store: Option<Store>,
}

fn backend_options() -> BackendOptions {
    BackendOptions {
        // Small batches: commits happen in the middle of sequences too.
        batch_limit: 7,
        batch_interval: Duration::from_secs(3600),
        ..BackendOptions::default()
    }
}

impl Subject {
    fn open(dir: tempfile::TempDir) -> Subject {
        let backend = Backend::open(&dir.path().join("db"), backend_options()).expect("backend");
        let store = Store::open(
            Arc::new(backend),
            Arc::new(NoLeases),
            StoreOptions {
                compaction_batch_limit: 3,
            },
        )
        .expect("store");
        Subject {
            dir,
            store: Some(store),
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open")
    }

    fn reopen(mut self) -> Subject {
        let store = self.store.take().expect("open");
        store.backend().commit().expect("commit");
        drop(store);
        Subject::open(self.dir)
    }
}

/// Every key at every revision the model can still serve.
fn check_everything(subject: &Subject, model: &Model) -> Result<(), TestCaseError> {
    let store = subject.store();
    prop_assert_eq!(store.current_revision(), model.current);
    prop_assert_eq!(store.compact_revision(), model.compacted);
    for revision in model.compacted.max(1)..=model.current {
        let all = RangeRequest {
            key: Bytes::from_static(b"\0"),
            range_end: Bytes::from_static(b"\0"),
            revision,
            ..Default::default()
        };
        let got = request::range(&store.read(), &all).map_err(store_error);
        prop_assert_eq!(
            got,
            model.range(&all, model.current),
            "everything at {}",
            revision
        );
    }
    Ok(())
}

fn dump(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    store
        .backend()
        .read()
        .for_each(stead_backend::Bucket::Key, &[], None, |k, v| {
            let main = i64::from_be_bytes(k[..8].try_into().unwrap());
            let sub = i64::from_be_bytes(k[9..17].try_into().unwrap());
            let kv = <KeyValue as prost::Message>::decode(v).unwrap();
            out.push(format!(
                "{main}.{sub}{} {}",
                if k.len() == 18 { "t" } else { "" },
                String::from_utf8_lossy(&kv.key)
            ));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    out
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut subject = Subject::open(tempfile::tempdir().expect("tempdir"));
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Put(request) => {
                let mut txn = subject.store().write().expect("write");
                let got = request::put(&mut txn, &request).map_err(store_error);
                let events = txn.end().expect("end");
                let want = if request.lease != 0 {
                    Err(ModelError::LeaseNotFound)
                } else {
                    let view = model.current;
                    model.check_put(&request, view).map(|()| {
                        let mut mt = ModelTxn {
                            changed: false,
                            events: vec![],
                        };
                        let response = model.put(&mut mt, &request);
                        model.end(&mt);
                        (response, mt.events)
                    })
                };
                match want {
                    Ok((response, want_events)) => {
                        prop_assert_eq!(got, Ok(response));
                        prop_assert_eq!(events, want_events);
                    }
                    Err(err) => {
                        prop_assert_eq!(got, Err(err));
                        prop_assert!(events.is_empty());
                    }
                }
            }
            Op::Delete(request) => {
                let mut txn = subject.store().write().expect("write");
                let got = request::delete_range(&mut txn, &request).map_err(store_error);
                let events = txn.end().expect("end");
                let mut mt = ModelTxn {
                    changed: false,
                    events: vec![],
                };
                let want = model.delete(&mut mt, &request);
                model.end(&mt);
                prop_assert_eq!(got, Ok(want));
                prop_assert_eq!(events, mt.events);
            }
            Op::Range(request) => {
                let got = request::range(&subject.store().read(), &request).map_err(store_error);
                prop_assert_eq!(got, model.range(&request, model.current), "{:?}", request);
            }
            Op::Txn(request) => {
                let (got, events) = if request::is_txn_read_only(&request) {
                    let got =
                        request::txn_read(&subject.store().read(), &request).map_err(store_error);
                    (got, vec![])
                } else {
                    let mut txn = subject.store().write().expect("write");
                    let got = request::txn_write(&mut txn, &request).map_err(store_error);
                    (got, txn.end().expect("end"))
                };
                match model.txn(&request) {
                    Ok((response, want_events)) => {
                        prop_assert_eq!(got, Ok(response), "{:?}", request);
                        prop_assert_eq!(events, want_events);
                    }
                    Err(err) => {
                        prop_assert_eq!(got, Err(err), "{:?}", request);
                        prop_assert!(events.is_empty());
                    }
                }
            }
            Op::Compact { back, wait } => {
                let revision = model.current - back;
                let (done_tx, done_rx) = mpsc::channel();
                let got = subject
                    .store()
                    .compact(
                        revision,
                        Some(Box::new(move || {
                            let _ = done_tx.send(());
                        })),
                    )
                    .map_err(store_error);
                let want = if revision <= model.compacted {
                    Err(ModelError::Compacted)
                } else if revision > model.current {
                    Err(ModelError::Future)
                } else {
                    model.compacted = revision;
                    Ok(())
                };
                prop_assert_eq!(got, want);
                if got.is_ok() && wait {
                    // Liveness only: the compactor must finish eventually.
                    prop_assert!(done_rx.recv_timeout(Duration::from_secs(60)).is_ok());
                }
            }
            Op::Reopen => {
                let before = subject.store().hash_kv(0).expect("hash");
                let dump_before = dump(subject.store());
                subject = subject.reopen();
                check_everything(&subject, &model)?;
                let after = subject.store().hash_kv(0).expect("hash");
                if before != after {
                    eprintln!("BEFORE {dump_before:?}\nAFTER  {:?}", dump(subject.store()));
                }
                prop_assert_eq!(before, after, "hash_kv survives a reopen");
            }
        }
        prop_assert_eq!(subject.store().current_revision(), model.current);
        prop_assert_eq!(subject.store().compact_revision(), model.compacted);
    }
    check_everything(&subject, &model)?;
    let subject = subject.reopen();
    check_everything(&subject, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}

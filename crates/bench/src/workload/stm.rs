//! `stm`: software transactional memory transactions, retried on conflict.
//!
//! Owns etcd's STM benchmark, with the STM written out as the RPCs etcd's
//! `concurrency.NewSTM` makes. A transaction picks `--keys-per-txn`
//! distinct random keys among `--keys`, reads each (one Range each, as the
//! STM's `Get` does), then commits one Txn that overwrites the first
//! `--txn-wr-percent`% of them. The commit's compares depend on
//! `--isolation`:
//!
//! - `c` (read committed): none; the commit always succeeds.
//! - `r` (repeatable reads): each key read must still have the mod revision
//!   it was read at.
//! - `s` (serializable): as `r`, and reads after the first are serializable
//!   reads at the first read's revision (one consistent snapshot).
//! - `ss` (serializable snapshot): as `s`, and each key written must not
//!   have changed after that revision.
//!
//! A failed commit's else branch reads all the keys again; the transaction
//! retries from those values (no new reads), as etcd's STM does, at most
//! [`ATTEMPTS_MAX`] times. The latency is the whole transaction, retries
//! included; the retry count is reported.
//!
//! Does not own: the measuring loop (see `driver`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use stead_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use stead_proto::etcdserverpb::kv_client::KvClient;
use stead_proto::etcdserverpb::request_op::Request;
use stead_proto::etcdserverpb::response_op::Response;
use stead_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use tonic::transport::Channel;

use super::Context;
use crate::cli::{Isolation, StmArgs};
use crate::connect::rpc_error;
use crate::driver::{self, Worker};
use crate::error::BenchError;
use crate::keys::{KeySpace, Rng, random_value};
use crate::progress::ProgressBar;
use crate::report::Outcome;

/// Key size of STM keys (etcd's tool uses 16 bytes too).
const STM_KEY_SIZE: usize = 16;
/// Commits tried per transaction before it counts as failed.
const ATTEMPTS_MAX: u32 = 1000;

struct StmWorker {
    kv: KvClient<Channel>,
    space: KeySpace,
    keys_per_txn: u64,
    writes_per_txn: u64,
    isolation: Isolation,
    value: Bytes,
    rng: Rng,
    retries: Arc<AtomicU64>,
}

/// What a transaction has read: each key's mod revision (0 if absent).
struct ReadSet {
    keys: Vec<Bytes>,
    mod_revisions: Vec<i64>,
    /// Store revision of the first read: the snapshot of `s` and `ss`.
    first_revision: i64,
}

impl StmWorker {
    fn pick_keys(&mut self) -> Vec<Bytes> {
        let mut picked: Vec<u64> = Vec::with_capacity(self.keys_per_txn as usize);
        while (picked.len() as u64) < self.keys_per_txn {
            let index = self.rng.below(self.space.count);
            if !picked.contains(&index) {
                picked.push(index);
            }
        }
        picked
            .into_iter()
            .map(|index| self.space.key(index))
            .collect()
    }

    fn snapshot_reads(&self) -> bool {
        matches!(
            self.isolation,
            Isolation::Serializable | Isolation::SerializableSnapshot
        )
    }

    /// Reads each key with its own Range, as the STM's `Get` does.
    async fn read(&mut self, keys: Vec<Bytes>) -> Result<ReadSet, String> {
        let mut set = ReadSet {
            mod_revisions: Vec::with_capacity(keys.len()),
            keys: Vec::new(),
            first_revision: 0,
        };
        for (n, key) in keys.iter().enumerate() {
            let pinned = n > 0 && self.snapshot_reads();
            let request = RangeRequest {
                key: key.clone(),
                revision: if pinned { set.first_revision } else { 0 },
                serializable: pinned,
                ..RangeRequest::default()
            };
            let response = self
                .kv
                .range(request)
                .await
                .map_err(|status| rpc_error(&status))?
                .into_inner();
            if n == 0 {
                set.first_revision = response.header.map_or(0, |header| header.revision);
            }
            set.mod_revisions
                .push(response.kvs.first().map_or(0, |kv| kv.mod_revision));
        }
        set.keys = keys;
        Ok(set)
    }

    /// The commit of `set`: compares for the isolation level, the writes,
    /// and (when it can fail) a re-read of every key for the retry.
    fn commit(&self, set: &ReadSet) -> TxnRequest {
        let mod_revision = |key: &Bytes, result: CompareResult, revision: i64| Compare {
            result: result as i32,
            target: CompareTarget::Mod as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::ModRevision(revision)),
            ..Compare::default()
        };
        let writes = &set.keys[..self.writes_per_txn as usize];
        let mut compare = Vec::new();
        if self.isolation != Isolation::ReadCommitted {
            compare.extend(
                set.keys
                    .iter()
                    .zip(&set.mod_revisions)
                    .map(|(key, &revision)| mod_revision(key, CompareResult::Equal, revision)),
            );
        }
        if self.isolation == Isolation::SerializableSnapshot {
            compare.extend(
                writes
                    .iter()
                    .map(|key| mod_revision(key, CompareResult::Less, set.first_revision + 1)),
            );
        }
        let success = writes
            .iter()
            .map(|key| RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: key.clone(),
                    value: self.value.clone(),
                    ..PutRequest::default()
                })),
            })
            .collect();
        let failure = if compare.is_empty() {
            Vec::new()
        } else {
            set.keys
                .iter()
                .map(|key| RequestOp {
                    request: Some(Request::RequestRange(RangeRequest {
                        key: key.clone(),
                        ..RangeRequest::default()
                    })),
                })
                .collect()
        };
        TxnRequest {
            compare,
            success,
            failure,
        }
    }
}

/// After a failed commit: the read set the else branch's ranges give.
fn reread(
    set: &mut ReadSet,
    revision: i64,
    responses: &[stead_proto::etcdserverpb::ResponseOp],
) -> Result<(), String> {
    if responses.len() != set.keys.len() {
        return Err(format!(
            "stm: expected {} ranges after a conflict, got {}",
            set.keys.len(),
            responses.len()
        ));
    }
    for (slot, response) in set.mod_revisions.iter_mut().zip(responses) {
        let Some(Response::ResponseRange(range)) = &response.response else {
            return Err("stm: expected a range response after a conflict".into());
        };
        *slot = range.kvs.first().map_or(0, |kv| kv.mod_revision);
    }
    set.first_revision = revision;
    Ok(())
}

impl Worker for StmWorker {
    async fn request(&mut self, _index: u64) -> driver::Outcome {
        let keys = self.pick_keys();
        let mut set = self.read(keys).await?;
        for attempt in 0..ATTEMPTS_MAX {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            let response = self
                .kv
                .txn(self.commit(&set))
                .await
                .map_err(|status| rpc_error(&status))?
                .into_inner();
            if response.succeeded {
                return Ok(());
            }
            let revision = response.header.map_or(0, |header| header.revision);
            reread(&mut set, revision, &response.responses)?;
        }
        Err(format!(
            "stm: conflicts on every one of {ATTEMPTS_MAX} attempts"
        ))
    }
}

pub async fn run(context: &Context, args: StmArgs) -> Result<Outcome, BenchError> {
    if args.keys == 0 {
        return Err(BenchError::InvalidArgument(format!(
            "expected positive --keys, got {}",
            args.keys
        )));
    }
    if args.txn_wr_percent > 100 {
        return Err(BenchError::InvalidArgument(format!(
            "expected [0, 100] --txn-wr-percent, got {}",
            args.txn_wr_percent
        )));
    }
    if args.keys_per_txn > args.keys {
        return Err(BenchError::InvalidArgument(format!(
            "expected --keys-per-txn between 0 and {}, got {}",
            args.keys, args.keys_per_txn
        )));
    }
    let space = KeySpace::new(STM_KEY_SIZE, args.keys)?;
    let writes_per_txn = args.keys_per_txn * args.txn_wr_percent / 100;
    let mut rng = Rng::from_clock(0);
    let value = random_value(args.val_size, &mut rng);
    let retries = Arc::new(AtomicU64::new(0));
    let connections = context.connect().await?;
    let workers: Vec<StmWorker> = (0..context.clients)
        .map(|client| StmWorker {
            kv: connections.kv(client),
            space,
            keys_per_txn: args.keys_per_txn,
            writes_per_txn,
            isolation: args.isolation,
            value: value.clone(),
            rng: Rng::from_clock(client as u64 + 1),
            retries: Arc::clone(&retries),
        })
        .collect();
    let bar = ProgressBar::start("stm", args.total);
    let mut reports =
        driver::run(workers, args.total, context.limiter.clone(), bar.counter()).await?;
    bar.finish();
    let isolation = match args.isolation {
        Isolation::ReadCommitted => "read committed",
        Isolation::RepeatableReads => "repeatable reads",
        Isolation::Serializable => "serializable",
        Isolation::SerializableSnapshot => "serializable snapshot",
    };
    let notes = vec![
        format!(
            "bench with {isolation} STM: {} of {} keys per txn, {} written",
            args.keys_per_txn, args.keys, writes_per_txn
        ),
        format!(
            "STM retries (conflicts): {}",
            retries.load(Ordering::Relaxed)
        ),
    ];
    Ok(Outcome::single("stm", notes, reports.remove(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(isolation: Isolation, writes_per_txn: u64) -> StmWorker {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        StmWorker {
            kv: KvClient::new(channel),
            space: KeySpace::new(STM_KEY_SIZE, 10).unwrap(),
            keys_per_txn: 3,
            writes_per_txn,
            isolation,
            value: Bytes::from_static(b"v"),
            rng: Rng::with_seed(1),
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    fn read_set() -> ReadSet {
        ReadSet {
            keys: ["a", "b", "c"].map(Bytes::from).to_vec(),
            mod_revisions: vec![5, 0, 7],
            first_revision: 9,
        }
    }

    #[tokio::test]
    async fn keys_per_txn_are_distinct_keys_of_the_space() {
        let mut worker = worker(Isolation::Serializable, 1);
        for _ in 0..100 {
            let keys = worker.pick_keys();
            assert_eq!(keys.len(), 3);
            let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
            assert_eq!(distinct.len(), 3);
            assert!(keys.iter().all(|k| k.len() == STM_KEY_SIZE));
        }
    }

    #[tokio::test]
    async fn commits_compare_what_the_isolation_level_needs() {
        let set = read_set();
        let committed = worker(Isolation::ReadCommitted, 2).commit(&set);
        assert!(committed.compare.is_empty());
        assert!(committed.failure.is_empty());
        assert_eq!(committed.success.len(), 2);

        for isolation in [Isolation::RepeatableReads, Isolation::Serializable] {
            let txn = worker(isolation, 1).commit(&set);
            let revisions: Vec<_> = txn
                .compare
                .iter()
                .map(|c| (c.key.clone(), c.result, c.target_union.clone()))
                .collect();
            assert_eq!(
                revisions,
                [("a", 5), ("b", 0), ("c", 7)].map(|(k, r)| (
                    Bytes::from(k),
                    CompareResult::Equal as i32,
                    Some(TargetUnion::ModRevision(r))
                ))
            );
            assert_eq!(txn.success.len(), 1);
            assert_eq!(txn.failure.len(), 3, "a failed commit re-reads every key");
        }

        let snapshot = worker(Isolation::SerializableSnapshot, 2).commit(&set);
        assert_eq!(snapshot.compare.len(), 5);
        let write_guards: Vec<_> = snapshot.compare[3..]
            .iter()
            .map(|c| (c.key.clone(), c.result, c.target_union.clone()))
            .collect();
        assert_eq!(
            write_guards,
            ["a", "b"].map(|k| (
                Bytes::from(k),
                CompareResult::Less as i32,
                Some(TargetUnion::ModRevision(10))
            ))
        );
    }
}

//! `txn-put` and `txn-mixed`: transactions of puts, and of puts or ranges.
//!
//! Owns etcd's two transaction workloads. `txn-put`: each transaction puts
//! `--txn-ops` keys, transaction `i` taking keys `i*ops .. i*ops+ops` modulo
//! the key space (so one transaction never names a key twice). `txn-mixed`:
//! each transaction is a single range (a read, with `--consistency` and
//! `--limit`) or a single put of key `i % key-space-size` (a write), reads
//! making `rw-ratio / (1 + rw-ratio)` of the total; reads and writes are
//! reported apart, and the JSON line covers both.
//!
//! Does not own: the measuring loop (see `driver`).

use std::sync::Arc;

use bytes::Bytes;
use stead_proto::etcdserverpb::kv_client::KvClient;
use stead_proto::etcdserverpb::request_op::Request;
use stead_proto::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest};
use tonic::transport::Channel;

use super::{Context, range_end};
use crate::cli::{Consistency, TxnMixedArgs, TxnPutArgs};
use crate::connect::rpc_error;
use crate::driver::{self, Worker};
use crate::error::BenchError;
use crate::keys::{self, KeyOrder, KeyPlan, KeySpace, Rng, random_value};
use crate::progress::ProgressBar;
use crate::report::{Outcome, Recorder, Report, Section};

struct TxnPutWorker {
    kv: KvClient<Channel>,
    keys: Arc<KeyPlan>,
    ops: u64,
    value: Bytes,
    rng: Rng,
}

impl Worker for TxnPutWorker {
    async fn request(&mut self, index: u64) -> driver::Outcome {
        let success = (0..self.ops)
            .map(|op| RequestOp {
                request: Some(Request::RequestPut(PutRequest {
                    key: self.keys.key(index * self.ops + op, &mut self.rng),
                    value: self.value.clone(),
                    ..PutRequest::default()
                })),
            })
            .collect();
        let txn = TxnRequest {
            success,
            ..TxnRequest::default()
        };
        match self.kv.txn(txn).await {
            Ok(_) => Ok(()),
            Err(status) => Err(rpc_error(&status)),
        }
    }
}

pub async fn run_put(context: &Context, args: TxnPutArgs) -> Result<Outcome, BenchError> {
    if args.txn_ops == 0 {
        return Err(BenchError::InvalidArgument(
            "--txn-ops must be positive".into(),
        ));
    }
    if args.txn_ops > args.key_space_size {
        return Err(BenchError::InvalidArgument(format!(
            "--txn-ops ({}) must be no larger than --key-space-size ({}): \
             a transaction may not put the same key twice",
            args.txn_ops, args.key_space_size
        )));
    }
    let space = KeySpace::new(args.key_size, args.key_space_size)?;
    let mut rng = Rng::from_clock(0);
    let slots = args.total.saturating_mul(args.txn_ops);
    let keys = Arc::new(KeyPlan::new(space, KeyOrder::Sequential, slots, &mut rng));
    let value = random_value(args.val_size, &mut rng);
    let connections = context.connect().await?;
    let workers: Vec<TxnPutWorker> = (0..context.clients)
        .map(|client| TxnPutWorker {
            kv: connections.kv(client),
            keys: Arc::clone(&keys),
            ops: args.txn_ops,
            value: value.clone(),
            rng: Rng::from_clock(client as u64 + 1),
        })
        .collect();
    let bar = ProgressBar::start("txn-put", args.total);
    let mut reports =
        driver::run(workers, args.total, context.limiter.clone(), bar.counter()).await?;
    bar.finish();
    Ok(Outcome::single("txn-put", Vec::new(), reports.remove(0)))
}

/// Class of reads and writes in `txn-mixed`'s reports.
const READ: usize = 0;
const WRITE: usize = 1;

struct TxnMixedWorker {
    kv: KvClient<Channel>,
    read: RangeRequest,
    keys: Arc<KeyPlan>,
    value: Bytes,
    /// A request is a read when its mixed index falls below this.
    read_below: u64,
    seed: u64,
    rng: Rng,
}

impl Worker for TxnMixedWorker {
    const CLASSES: usize = 2;

    fn class(&self, index: u64) -> usize {
        if is_read(index, self.seed, self.read_below) {
            READ
        } else {
            WRITE
        }
    }

    async fn request(&mut self, index: u64) -> driver::Outcome {
        let op = if self.class(index) == READ {
            Request::RequestRange(self.read.clone())
        } else {
            Request::RequestPut(PutRequest {
                key: self.keys.key(index, &mut self.rng),
                value: self.value.clone(),
                ..PutRequest::default()
            })
        };
        let txn = TxnRequest {
            success: vec![RequestOp { request: Some(op) }],
            ..TxnRequest::default()
        };
        match self.kv.txn(txn).await {
            Ok(_) => Ok(()),
            Err(status) => Err(rpc_error(&status)),
        }
    }
}

/// Threshold under which a mixed 64-bit number means "read", for reads to
/// make `rw_ratio / (1 + rw_ratio)` of the requests.
fn read_threshold(rw_ratio: f64) -> u64 {
    let fraction = rw_ratio / (1.0 + rw_ratio);
    if fraction >= 1.0 {
        u64::MAX
    } else {
        (fraction * u64::MAX as f64) as u64
    }
}

/// Whether request `index` is a read: a hash of the index, so any client
/// can tell, and the split is random yet fixed for a seed.
fn is_read(index: u64, seed: u64, read_below: u64) -> bool {
    read_below == u64::MAX || keys::mix(index ^ seed) < read_below
}

pub async fn run_mixed(context: &Context, args: TxnMixedArgs) -> Result<Outcome, BenchError> {
    if !(args.rw_ratio >= 0.0 && args.rw_ratio.is_finite()) {
        return Err(BenchError::InvalidArgument(format!(
            "--rw-ratio must be a non-negative number, got {}",
            args.rw_ratio
        )));
    }
    if args.limit < 0 {
        return Err(BenchError::InvalidArgument(format!(
            "--limit must not be negative, got {}",
            args.limit
        )));
    }
    let space = KeySpace::new(args.key_size, args.key_space_size)?;
    let mut rng = Rng::from_clock(0);
    let keys = Arc::new(KeyPlan::new(
        space,
        KeyOrder::Sequential,
        args.total,
        &mut rng,
    ));
    let value = random_value(args.val_size, &mut rng);
    let read = RangeRequest {
        key: Bytes::copy_from_slice(args.key.as_bytes()),
        range_end: range_end(args.end.as_deref()),
        limit: args.limit,
        serializable: args.consistency == Consistency::Serializable,
        ..RangeRequest::default()
    };
    let read_below = read_threshold(args.rw_ratio);
    let seed = rng.next_u64();
    let connections = context.connect().await?;
    let workers: Vec<TxnMixedWorker> = (0..context.clients)
        .map(|client| TxnMixedWorker {
            kv: connections.kv(client),
            read: read.clone(),
            keys: Arc::clone(&keys),
            value: value.clone(),
            read_below,
            seed,
            rng: Rng::from_clock(client as u64 + 1),
        })
        .collect();
    let bar = ProgressBar::start("txn-mixed", args.total);
    let reports = driver::run(workers, args.total, context.limiter.clone(), bar.counter()).await?;
    bar.finish();

    let [reads, writes]: [Report; 2] = reports
        .try_into()
        .map_err(|_| BenchError::Task("txn-mixed expects two reports".into()))?;
    let mut both = Recorder::new();
    both.merge(&reads.recorder);
    both.merge(&writes.recorder);
    let headline = Report::new(both, reads.elapsed);
    let consistency = match args.consistency {
        Consistency::Linearizable => "bench with linearizable range",
        Consistency::Serializable => "bench with serializable range",
    };
    let notes = vec![
        consistency.to_owned(),
        format!(
            "Total Read Ops: {}",
            reads.recorder.successes() + reads.recorder.failures()
        ),
        format!(
            "Total Write Ops: {}",
            writes.recorder.successes() + writes.recorder.failures()
        ),
    ];
    Ok(Outcome {
        workload: "txn-mixed",
        notes,
        sections: vec![
            Section {
                title: Some("Read summary".into()),
                report: reads,
            },
            Section {
                title: Some("Write summary".into()),
                report: writes,
            },
        ],
        headline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_share(rw_ratio: f64) -> f64 {
        let below = read_threshold(rw_ratio);
        let reads = (0..100_000).filter(|&i| is_read(i, 42, below)).count();
        reads as f64 / 100_000.0
    }

    #[test]
    fn the_read_share_follows_the_rw_ratio() {
        assert!((read_share(1.0) - 0.5).abs() < 0.01);
        assert!((read_share(3.0) - 0.75).abs() < 0.01);
        assert!((read_share(0.25) - 0.2).abs() < 0.01);
        assert_eq!(read_share(0.0), 0.0);
        assert_eq!(read_share(f64::MAX), 1.0);
    }
}

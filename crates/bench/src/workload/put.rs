//! `put`: puts of `--key-size`/`--val-size` over a key space.
//!
//! Owns the put workload of etcd's tool: `--total` puts spread over the
//! clients, keys sequential or random within `--key-space-size`, one random
//! value for the run; optionally a background compaction every
//! `--compact-interval` (`--compact-index-delta` revisions behind the head)
//! and, afterwards, the first endpoint's KV hash and database size
//! (`--check-hashkv`).
//!
//! Does not own: the measuring loop (see `driver`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stead_proto::etcdserverpb::kv_client::KvClient;
use stead_proto::etcdserverpb::{
    CompactionRequest, HashKvRequest, PutRequest, RangeRequest, StatusRequest,
};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use super::Context;
use crate::cli::PutArgs;
use crate::connect::{Connections, rpc_error};
use crate::driver::{self, Worker};
use crate::error::BenchError;
use crate::keys::{KeyOrder, KeyPlan, KeySpace, Rng, random_value};
use crate::progress::ProgressBar;
use crate::report::Outcome;

struct PutWorker {
    kv: KvClient<Channel>,
    keys: Arc<KeyPlan>,
    value: Bytes,
    rng: Rng,
}

impl Worker for PutWorker {
    async fn request(&mut self, index: u64) -> driver::Outcome {
        let request = PutRequest {
            key: self.keys.key(index, &mut self.rng),
            value: self.value.clone(),
            ..PutRequest::default()
        };
        match self.kv.put(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(rpc_error(&status)),
        }
    }
}

pub async fn run(context: &Context, args: PutArgs) -> Result<Outcome, BenchError> {
    let space = KeySpace::new(args.key_size, args.key_space_size)?;
    let order = if args.sequential_keys {
        KeyOrder::Sequential
    } else {
        KeyOrder::Random
    };
    let mut rng = Rng::from_clock(0);
    let keys = Arc::new(KeyPlan::new(space, order, args.total, &mut rng));
    let value = random_value(args.val_size, &mut rng);
    let connections = context.connect().await?;
    let workers: Vec<PutWorker> = (0..context.clients)
        .map(|client| PutWorker {
            kv: connections.kv(client),
            keys: Arc::clone(&keys),
            value: value.clone(),
            rng: Rng::from_clock(client as u64 + 1),
        })
        .collect();

    let compactor = (!args.compact_interval.is_zero()).then(|| {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(compact_periodically(
            connections.kv(0),
            args.compact_interval,
            args.compact_index_delta,
            stopped,
        ));
        (stop, task)
    });

    let bar = ProgressBar::start("put", args.total);
    let mut reports =
        driver::run(workers, args.total, context.limiter.clone(), bar.counter()).await?;
    bar.finish();

    let mut notes = Vec::new();
    if let Some((stop, task)) = compactor {
        let _ = stop.send(());
        notes.extend(task.await?);
    }
    if args.check_hashkv {
        notes.extend(hash_kv(&connections, &context.endpoints[0]).await?);
    }
    let report = reports.remove(0);
    Ok(Outcome::single("put", notes, report))
}

/// Compacts every `interval` to `delta` revisions behind the head, until
/// stopped; returns what happened, for the report.
async fn compact_periodically(
    mut kv: KvClient<Channel>,
    interval: Duration,
    delta: i64,
    mut stopped: oneshot::Receiver<()>,
) -> Vec<String> {
    let mut compactions = 0u64;
    let mut notes = Vec::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep(interval) => {}
        }
        let head = match kv
            .range(RangeRequest {
                key: Bytes::from_static(b"foo"),
                ..RangeRequest::default()
            })
            .await
        {
            Ok(response) => response.into_inner().header.map_or(0, |h| h.revision),
            Err(status) => {
                notes.push(format!(
                    "compaction: reading the revision failed: {}",
                    rpc_error(&status)
                ));
                continue;
            }
        };
        let revision = head - delta;
        if revision <= 0 {
            continue;
        }
        match kv
            .compact(CompactionRequest {
                revision,
                physical: false,
            })
            .await
        {
            Ok(_) => compactions += 1,
            Err(status) => notes.push(format!(
                "compaction at revision {revision} failed: {}",
                rpc_error(&status)
            )),
        }
    }
    notes.insert(0, format!("Compactions: {compactions}"));
    notes
}

/// etcd's `--check-hashkv`: the first endpoint's KV hash and DB size.
async fn hash_kv(connections: &Connections, endpoint: &str) -> Result<Vec<String>, BenchError> {
    let mut maintenance = connections.maintenance(0);
    let started = Instant::now();
    let hash = maintenance
        .hash_kv(HashKvRequest { revision: 0 })
        .await
        .map_err(|status| BenchError::Setup {
            operation: "HashKV",
            message: rpc_error(&status),
        })?
        .into_inner();
    let status = maintenance
        .status(StatusRequest {})
        .await
        .map_err(|status| BenchError::Setup {
            operation: "Status",
            message: rpc_error(&status),
        })?
        .into_inner();
    Ok(vec![
        "HashKV Summary:".into(),
        format!("\tHashKV: {}", hash.hash),
        format!("\tEndpoint: {endpoint}"),
        format!("\tTime taken to get hashkv: {:?}", started.elapsed()),
        format!("\tDB size: {} bytes", status.db_size),
    ])
}

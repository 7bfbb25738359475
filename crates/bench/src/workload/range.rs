//! `range <key> [end]`: the same range request, `--total` times.
//!
//! Owns the range workload of etcd's tool, with `--consistency l|s`, and
//! `--limit` and `--count-only` to shape the response.
//!
//! Does not own: the measuring loop (see `driver`).

use bytes::Bytes;
use stead_proto::etcdserverpb::RangeRequest;
use stead_proto::etcdserverpb::kv_client::KvClient;
use tonic::transport::Channel;

use super::{Context, range_end};
use crate::cli::{Consistency, RangeArgs};
use crate::connect::rpc_error;
use crate::driver::{self, Worker};
use crate::error::BenchError;
use crate::progress::ProgressBar;
use crate::report::Outcome;

struct RangeWorker {
    kv: KvClient<Channel>,
    request: RangeRequest,
}

impl Worker for RangeWorker {
    async fn request(&mut self, _index: u64) -> driver::Outcome {
        // Cloning shares the key bytes; only the small struct is copied.
        match self.kv.range(self.request.clone()).await {
            Ok(_) => Ok(()),
            Err(status) => Err(rpc_error(&status)),
        }
    }
}

pub async fn run(context: &Context, args: RangeArgs) -> Result<Outcome, BenchError> {
    if args.limit < 0 {
        return Err(BenchError::InvalidArgument(format!(
            "--limit must not be negative, got {}",
            args.limit
        )));
    }
    let request = RangeRequest {
        key: Bytes::copy_from_slice(args.key.as_bytes()),
        range_end: range_end(args.end.as_deref()),
        limit: args.limit,
        serializable: args.consistency == Consistency::Serializable,
        count_only: args.count_only,
        ..RangeRequest::default()
    };
    let note = match args.consistency {
        Consistency::Linearizable => "bench with linearizable range",
        Consistency::Serializable => "bench with serializable range",
    };
    let connections = context.connect().await?;
    let workers: Vec<RangeWorker> = (0..context.clients)
        .map(|client| RangeWorker {
            kv: connections.kv(client),
            request: request.clone(),
        })
        .collect();
    let bar = ProgressBar::start("range", args.total);
    let mut reports =
        driver::run(workers, args.total, context.limiter.clone(), bar.counter()).await?;
    bar.finish();
    Ok(Outcome::single(
        "range",
        vec![note.into()],
        reports.remove(0),
    ))
}

//! `lease-keepalive`: lease keepalive round trips.
//!
//! Owns etcd's lease keepalive benchmark: each client grants itself a lease
//! (TTL 100 s) before the clock starts, then renews it `--total` times in
//! all. Each client keeps one LeaseKeepAlive stream open and times a request
//! up to its response; etcd's tool opens a stream per renewal
//! (`KeepAliveOnce`), which adds stream set-up to every sample. Leases are
//! revoked at the end.
//!
//! Does not own: the measuring loop (see `driver`).

use stead_proto::etcdserverpb::lease_client::LeaseClient;
use stead_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::Context;
use crate::cli::LeaseKeepaliveArgs;
use crate::connect::rpc_error;
use crate::driver::{self, Worker};
use crate::error::BenchError;
use crate::progress::ProgressBar;
use crate::report::Outcome;

/// TTL of the benchmark's leases (etcd's tool uses the same).
const LEASE_TTL_S: i64 = 100;

struct KeepaliveWorker {
    lease: i64,
    /// Requests to the stream; one in flight at a time, so capacity 1.
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
}

impl Worker for KeepaliveWorker {
    async fn request(&mut self, _index: u64) -> driver::Outcome {
        let request = LeaseKeepAliveRequest { id: self.lease };
        if self.requests.send(request).await.is_err() {
            return Err("lease keepalive stream closed".into());
        }
        match self.responses.message().await {
            Ok(Some(response)) if response.ttl > 0 => Ok(()),
            Ok(Some(_)) => Err("etcdserver: requested lease not found".into()),
            Ok(None) => Err("lease keepalive stream closed by the server".into()),
            Err(status) => Err(rpc_error(&status)),
        }
    }
}

/// Grants a lease and opens its keepalive stream, renewing once to check it.
async fn start_worker(
    mut lease: LeaseClient<Channel>,
) -> Result<(KeepaliveWorker, LeaseClient<Channel>), BenchError> {
    let granted = lease
        .lease_grant(LeaseGrantRequest {
            ttl: LEASE_TTL_S,
            id: 0,
        })
        .await
        .map_err(|status| BenchError::Setup {
            operation: "LeaseGrant",
            message: rpc_error(&status),
        })?
        .into_inner();
    let (requests, queue) = mpsc::channel(1);
    // Servers send the stream's headers with the first response, and tonic
    // waits for them: queue a first renewal before opening the stream.
    requests
        .send(LeaseKeepAliveRequest { id: granted.id })
        .await
        .map_err(|_| BenchError::Setup {
            operation: "LeaseKeepAlive",
            message: "stream queue closed".into(),
        })?;
    let mut responses = lease
        .lease_keep_alive(ReceiverStream::new(queue))
        .await
        .map_err(|status| BenchError::Setup {
            operation: "LeaseKeepAlive",
            message: rpc_error(&status),
        })?
        .into_inner();
    match responses.message().await {
        Ok(Some(response)) if response.ttl > 0 => {}
        Ok(_) => {
            return Err(BenchError::Setup {
                operation: "LeaseKeepAlive",
                message: "the first renewal got no live lease back".into(),
            });
        }
        Err(status) => {
            return Err(BenchError::Setup {
                operation: "LeaseKeepAlive",
                message: rpc_error(&status),
            });
        }
    }
    let worker = KeepaliveWorker {
        lease: granted.id,
        requests,
        responses,
    };
    Ok((worker, lease))
}

pub async fn run(context: &Context, args: LeaseKeepaliveArgs) -> Result<Outcome, BenchError> {
    let connections = context.connect().await?;
    let mut starting = tokio::task::JoinSet::new();
    for client in 0..context.clients {
        starting.spawn(start_worker(connections.lease(client)));
    }
    let mut workers = Vec::with_capacity(context.clients);
    let mut lease_clients = Vec::with_capacity(context.clients);
    while let Some(started) = starting.join_next().await {
        let (worker, lease) = started??;
        lease_clients.push((lease, worker.lease));
        workers.push(worker);
    }

    let bar = ProgressBar::start("lease-keepalive", args.total);
    let mut reports =
        driver::run(workers, args.total, context.limiter.clone(), bar.counter()).await?;
    bar.finish();

    // Tidy up; a lease that cannot be revoked expires on its own.
    for (mut lease, id) in lease_clients {
        let _ = lease.lease_revoke(LeaseRevokeRequest { id }).await;
    }
    Ok(Outcome::single(
        "lease-keepalive",
        Vec::new(),
        reports.remove(0),
    ))
}

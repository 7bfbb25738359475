//! clientv3's `WithRequireLeader`: a request whose gRPC metadata carries `hasleader: true` is
//! refused with "etcdserver: no leader" while this member knows no leader, and such a stream
//! (watch, lease keep-alive) is ended with that error once the member has gone without a
//! leader for three election timeouts (etcd's `monitorLeader`: reconnecting a stream costs
//! more than refusing a request, so streams get longer). Owns the metadata check and the
//! monitor; does not own what the services do with a request that passes.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;

use crate::server::Shared;
use crate::{EtcdError, EtcdServer};

/// The metadata key and value clientv3 sets for `WithRequireLeader`.
const REQUIRE_LEADER_KEY: &str = "hasleader";
const REQUIRE_LEADER_VALUE: &str = "true";

/// Election timeouts without a leader after which require-leader streams end (etcd's
/// `maxNoLeaderCnt`).
const NO_LEADER_ROUNDS_MAX: u32 = 3;

/// Whether `metadata` asks for a leader.
pub(crate) fn requires_leader(metadata: &MetadataMap) -> bool {
    metadata
        .get(REQUIRE_LEADER_KEY)
        .and_then(|value| value.to_str().ok())
        == Some(REQUIRE_LEADER_VALUE)
}

fn has_leader(shared: &Shared) -> bool {
    shared.raft.leader.load(Ordering::Relaxed) != stead_node::raft::INVALID_ID
}

/// A gRPC service whose require-leader requests are refused while the member knows no leader.
#[derive(Clone)]
pub struct RequireLeader<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RequireLeader<S> {
    pub fn new(inner: S, server: &EtcdServer) -> Self {
        RequireLeader {
            inner,
            shared: Arc::clone(&server.shared),
        }
    }
}

impl<S: NamedService> NamedService for RequireLeader<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for RequireLeader<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let asks = request
            .headers()
            .get(REQUIRE_LEADER_KEY)
            .and_then(|value| value.to_str().ok())
            == Some(REQUIRE_LEADER_VALUE);
        if asks && !has_leader(&self.shared) {
            let refused = tonic::Status::from(EtcdError::NoLeader).into_http();
            return Box::pin(async move { Ok(refused) });
        }
        let response = self.inner.call(request);
        Box::pin(response)
    }
}

/// Counts the times require-leader streams had to end: a stream ends when it changes.
pub(crate) type LeaderLost = watch::Sender<u64>;

/// Checks once per election timeout whether the member knows a leader; after
/// [`NO_LEADER_ROUNDS_MAX`] checks in a row without one, bumps `shared.leader_lost` (and
/// counts again from zero, as etcd clears its streams).
pub(crate) async fn monitor(shared: Arc<Shared>) {
    let mut rounds_without = 0;
    let mut closing = shared.closing.subscribe();
    loop {
        tokio::select! {
            () = tokio::time::sleep(shared.election_timeout) => {}
            _ = closing.wait_for(|closing| *closing) => return,
        }
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        if has_leader(&shared) {
            rounds_without = 0;
            continue;
        }
        rounds_without += 1;
        if rounds_without >= NO_LEADER_ROUNDS_MAX {
            tracing::warn!(
                "no leader for {rounds_without} election timeouts: ending require-leader streams"
            );
            shared.leader_lost.send_modify(|count| *count += 1);
            rounds_without = 0;
        }
    }
}

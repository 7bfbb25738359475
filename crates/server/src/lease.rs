//! The `etcdserverpb.Lease` service, and the leader's task that expires leases.
//!
//! What it owns: the request paths of leases. Grants and revokes go through raft (the apply
//! thread applies them to the lessor and the store). Renewals (keep-alives) and time-to-live
//! lookups do not: only the leader's lessor knows when leases expire, so the leader answers
//! them from memory, after applying everything committed (etcd's `waitAppliedIndex`). A member
//! that does not lead asks the leader (`forward.rs`).
//!
//! The expiry task: every [`EXPIRY_CHECK_INTERVAL`] the leader takes at most
//! `REVOKES_PER_SECOND / 2` expired leases and proposes a revoke for each, at most
//! [`REVOKES_IN_FLIGHT_MAX`] at a time, so a mass expiry is spread over time and other
//! proposals keep flowing; and it proposes the lease checkpoints that fell due.
//!
//! What it does not own: the lessor's rules (`stead_lease`), applying (`apply.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use stead_lease::{EXPIRY_CHECK_INTERVAL, LeaseError, LeaseInfo, Lessor, REVOKES_PER_SECOND};
use stead_proto::etcdserverpb::{
    InternalRaftRequest, LeaseCheckpoint, LeaseCheckpointRequest, LeaseGrantRequest,
    LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, lease_server::Lease,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::server::Applied;
use crate::{EtcdError, EtcdServer};

/// Revoke proposals of expired leases in flight at once (etcd's `maxPendingRevokes`).
const REVOKES_IN_FLIGHT_MAX: usize = 16;
/// Bytes a lease grant counts against the backend quota (etcd's `leaseOverhead`).
const LEASE_QUOTA_BYTES: u64 = 64;
/// How long to wait for this member to apply what is committed before answering from the
/// lessor (etcd's `applyTimeout`).
const APPLY_WAIT_MAX: Duration = Duration::from_secs(1);
/// How often a renewal or lookup that must wait (for a new leader's lessor to take over, or
/// for an expired lease's revoke) looks again.
const PRIMARY_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Keep-alive responses queued per stream before the stream stops reading requests.
const KEEP_ALIVE_RESPONSES_QUEUED: usize = 16;

type KeepAliveResponses =
    Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send + 'static>>;

impl EtcdServer {
    /// Waits until this member applied everything committed when called.
    async fn wait_applied_commit(&self) -> Result<(), EtcdError> {
        let commit = self.shared.raft.commit.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + APPLY_WAIT_MAX;
        self.shared
            .wait_applied(commit, deadline, EtcdError::TimeoutWaitAppliedIndex)
            .await
    }

    /// Runs `op` on the lessor once this member leads, its lessor is primary and everything
    /// committed is applied. `op` answering `NotPrimary` (the new leader's lessor has not
    /// taken over yet) is retried until the request times out; `Expired` (a revoke is on its
    /// way) is retried for as long as it takes, as etcd's renewal waits for the revoke: with a
    /// backlog of expired leases that can be longer than a request timeout, and giving up would
    /// end a keep-alive stream that renews other leases too.
    async fn on_primary<T>(
        &self,
        mut op: impl FnMut(&Lessor, Instant) -> Result<T, LeaseError>,
    ) -> Result<T, EtcdError> {
        let shared = &self.shared;
        let mut deadline = tokio::time::Instant::now() + shared.request_timeout;
        loop {
            if shared.stopped.load(Ordering::SeqCst) {
                return Err(EtcdError::Stopped);
            }
            let leader = shared.raft.leader.load(Ordering::Relaxed);
            if leader == shared.member_id {
                self.wait_applied_commit().await?;
                match op(&shared.lessor, Instant::now()) {
                    Err(LeaseError::NotPrimary) => {}
                    Err(LeaseError::Expired) => {
                        deadline = tokio::time::Instant::now() + shared.request_timeout;
                    }
                    other => return other.map_err(EtcdError::from),
                }
            } else if leader != 0 {
                return Err(EtcdError::NotLeader);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(if leader == 0 {
                    EtcdError::NoLeader
                } else {
                    EtcdError::Timeout
                });
            }
            tokio::time::sleep(PRIMARY_POLL_INTERVAL).await;
        }
    }

    /// Renews lease `id`; returns its TTL. A member that does not lead asks the leader.
    async fn renew_lease(&self, id: i64) -> Result<i64, EtcdError> {
        match self.renew_lease_here(id).await {
            Err(EtcdError::NotLeader) => self.shared.leader_client.renew(&self.shared, id).await,
            other => other,
        }
    }

    async fn renew_lease_here(&self, id: i64) -> Result<i64, EtcdError> {
        let renewed = self.on_primary(|lessor, now| lessor.renew(id, now)).await?;
        if renewed.clear_checkpoint {
            // Every member forgets the checkpointed remaining TTL too (etcd does this before
            // answering).
            self.propose(InternalRaftRequest {
                lease_checkpoint: Some(LeaseCheckpointRequest {
                    checkpoints: vec![LeaseCheckpoint {
                        id,
                        remaining_ttl: 0,
                    }],
                }),
                ..InternalRaftRequest::default()
            })
            .await?;
        }
        Ok(renewed.ttl)
    }

    /// Lease `id` as the leader sees it; `None` if it does not exist.
    async fn lookup_lease(&self, id: i64, keys: bool) -> Result<Option<LeaseInfo>, EtcdError> {
        self.on_primary(|lessor, now| lessor.lookup(id, now, keys))
            .await
    }

    /// Answers one keep-alive stream until the client ends it, the member stops, or a renewal
    /// fails with something other than "not found" (answered with TTL 0, as etcd).
    async fn serve_keep_alives(
        self,
        mut requests: Streaming<LeaseKeepAliveRequest>,
        responses: mpsc::Sender<Result<LeaseKeepAliveResponse, Status>>,
        requires_leader: bool,
    ) {
        let mut closing = self.shared.closing.subscribe();
        let mut leader_lost = self.shared.leader_lost.subscribe();
        loop {
            let next = tokio::select! {
                next = requests.message() => next,
                Ok(()) = leader_lost.changed(), if requires_leader => {
                    let _ = responses.send(Err(EtcdError::NoLeader.into())).await;
                    return;
                }
                () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    let _ = responses.send(Err(EtcdError::Stopped.into())).await;
                    return;
                }
                () = responses.closed() => return,
            };
            let request = match next {
                Ok(Some(request)) => request,
                // The client closed its side, or the connection broke.
                Ok(None) | Err(_) => return,
            };
            // The header is taken before the renewal: its revision is never later than the
            // renewal (etcd: a lease revoked at revision 3 must not look renewed at 4).
            let header = self.header(None);
            let ttl = match self.renew_lease(request.id).await {
                Ok(ttl) => ttl,
                Err(EtcdError::LeaseNotFound) => 0,
                Err(err) => {
                    let _ = responses.send(Err(err.into())).await;
                    return;
                }
            };
            let response = LeaseKeepAliveResponse {
                header: Some(header),
                id: request.id,
                ttl,
            };
            if responses.send(Ok(response)).await.is_err() {
                return;
            }
        }
    }
}

#[tonic::async_trait]
impl Lease for EtcdServer {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        self.refuse_on_learner()?;
        let mut request = request.into_inner();
        self.check_quota(LEASE_QUOTA_BYTES)?;
        // No ID asked for: the server picks a positive one (etcd's).
        while request.id == 0 {
            request.id = (self.shared.ids.next() & i64::MAX as u64) as i64;
        }
        let applied = self
            .propose(InternalRaftRequest {
                lease_grant: Some(request),
                ..InternalRaftRequest::default()
            })
            .await?;
        match applied {
            Applied::LeaseGrant(mut response) => {
                self.fill_header(&mut response.header);
                Ok(Response::new(response))
            }
            other => Err(crate::services::unexpected(other)),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        self.refuse_on_learner()?;
        let applied = self
            .propose(InternalRaftRequest {
                lease_revoke: Some(request.into_inner()),
                ..InternalRaftRequest::default()
            })
            .await?;
        match applied {
            Applied::LeaseRevoke(mut response) => {
                self.fill_header(&mut response.header);
                Ok(Response::new(response))
            }
            other => Err(crate::services::unexpected(other)),
        }
    }

    type LeaseKeepAliveStream = KeepAliveResponses;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        self.refuse_on_learner()?;
        if self.shared.stopped.load(Ordering::SeqCst) {
            return Err(EtcdError::Stopped.into());
        }
        let (responses, queued) = mpsc::channel(KEEP_ALIVE_RESPONSES_QUEUED);
        let requires_leader = crate::require_leader::requires_leader(request.metadata());
        tokio::spawn(self.clone().serve_keep_alives(
            request.into_inner(),
            responses,
            requires_leader,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(queued))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.refuse_on_learner()?;
        let request = request.into_inner();
        let found = match self.lookup_lease(request.id, request.keys).await {
            Err(EtcdError::NotLeader) => {
                let mut response = self
                    .shared
                    .leader_client
                    .time_to_live(&self.shared, request)
                    .await?;
                response.header = Some(self.header(None));
                return Ok(Response::new(response));
            }
            other => other?,
        };
        let response = match found {
            Some(info) => LeaseTimeToLiveResponse {
                header: Some(self.header(None)),
                id: request.id,
                ttl: info.remaining_s,
                granted_ttl: info.granted_ttl,
                keys: info.keys,
            },
            // etcd answers a missing lease with TTL -1, not an error.
            None => LeaseTimeToLiveResponse {
                header: Some(self.header(None)),
                id: request.id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.refuse_on_learner()?;
        let leases = self
            .shared
            .lessor
            .leases()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.header(None)),
            leases,
        }))
    }
}

/// The expiry task of a member: acts while it leads, until the member closes.
pub(crate) async fn expire(server: EtcdServer) {
    let shared = Arc::clone(&server.shared);
    let revokes = Arc::new(Semaphore::new(REVOKES_IN_FLIGHT_MAX));
    let mut ticker = tokio::time::interval(EXPIRY_CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = shared.closing.subscribe();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = closing.wait_for(|closing| *closing) => return,
        }
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        if shared.raft.leader.load(Ordering::Relaxed) != shared.member_id {
            continue;
        }
        let now = Instant::now();
        for id in shared.lessor.expired(now, REVOKES_PER_SECOND / 2) {
            let Ok(permit) = Arc::clone(&revokes).acquire_owned().await else {
                return;
            };
            let server = server.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let revoke = InternalRaftRequest {
                    lease_revoke: Some(LeaseRevokeRequest { id }),
                    ..InternalRaftRequest::default()
                };
                match server.propose(revoke).await {
                    Ok(_) => debug!(lease = %format_args!("{id:016x}"), "revoked expired lease"),
                    // Revoked meanwhile (by a client, or an earlier attempt).
                    Err(EtcdError::LeaseNotFound) => {}
                    Err(err) => warn!(lease = %format_args!("{id:016x}"), error = %err,
                        "failed to revoke expired lease"),
                }
            });
        }
        let checkpoints = shared.lessor.due_checkpoints(now);
        if !checkpoints.is_empty() {
            let server = server.clone();
            tokio::spawn(async move {
                let checkpoint = InternalRaftRequest {
                    lease_checkpoint: Some(LeaseCheckpointRequest { checkpoints }),
                    ..InternalRaftRequest::default()
                };
                if let Err(err) = server.propose(checkpoint).await {
                    warn!(error = %err, "failed to checkpoint leases");
                }
            });
        }
    }
}

//! Lease renewals and time-to-live lookups that reach a member which does not lead: only the
//! leader's lessor knows when leases expire, so the member asks the leader (etcd forwards them
//! over its peer HTTP API, `/leases` and `/leases/internal`; stead asks the leader's client
//! gRPC API, the address the leader published through raft).
//!
//! It does not own the lease rules (the leader's `lease.rs` answers) nor any other request:
//! writes and linearizable reads reach the leader through raft itself.

use std::sync::Mutex;
use std::time::Duration;

use stead_proto::etcdserverpb::lease_client::LeaseClient;
use stead_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use tonic::transport::{Channel, Endpoint};
use tracing::debug;

use crate::EtcdError;
use crate::server::Shared;

/// How long dialing the leader may take before the forward fails.
const LEADER_DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to the current leader, redialed when the leader changes.
#[derive(Default)]
pub(crate) struct LeaderClient {
    /// The leader's ID and a channel to its client URL.
    cached: Mutex<Option<(u64, Channel)>>,
}

impl LeaderClient {
    /// A channel to the leader `shared` knows of.
    pub(crate) fn channel(&self, shared: &Shared) -> Result<Channel, EtcdError> {
        let leader = shared
            .raft
            .leader
            .load(std::sync::atomic::Ordering::Relaxed);
        if leader == 0 {
            return Err(EtcdError::NoLeader);
        }
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((id, channel)) = cached.as_ref()
            && *id == leader
        {
            return Ok(channel.clone());
        }
        let members = shared.members().map_err(EtcdError::Internal)?;
        // A leader that has not published its client URLs yet cannot be asked: as etcd, the
        // caller retries until it can or times out.
        let url = members
            .iter()
            .find(|member| member.id == leader)
            .and_then(|member| member.client_ur_ls.first())
            .ok_or(EtcdError::NotLeader)?;
        let channel = Endpoint::from_shared(url.clone())
            .map_err(|e| EtcdError::Internal(format!("leader client URL {url}: {e}")))?
            .connect_timeout(LEADER_DIAL_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy();
        *cached = Some((leader, channel.clone()));
        Ok(channel)
    }

    /// Renews lease `id` on the leader; returns its TTL (0: not found).
    pub(crate) async fn renew(&self, shared: &Shared, id: i64) -> Result<i64, EtcdError> {
        let mut client = LeaseClient::new(self.channel(shared)?);
        let request = tokio_stream::once(LeaseKeepAliveRequest { id });
        let mut responses = client
            .lease_keep_alive(request)
            .await
            .map_err(from_leader)?
            .into_inner();
        match responses.message().await.map_err(from_leader)? {
            Some(response) => Ok(response.ttl),
            None => Err(EtcdError::LeaderChanged),
        }
    }

    /// Lease `request.id` as the leader sees it.
    pub(crate) async fn time_to_live(
        &self,
        shared: &Shared,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, EtcdError> {
        let mut client = LeaseClient::new(self.channel(shared)?);
        Ok(client
            .lease_time_to_live(request)
            .await
            .map_err(from_leader)?
            .into_inner())
    }
}

/// The leader's answer as an error of this member: etcd's own errors pass through; failing to
/// reach the leader is a timeout, as when etcd's forwarding runs out of time.
fn from_leader(status: tonic::Status) -> EtcdError {
    match EtcdError::from_text(status.message()) {
        Some(err) => err,
        None => {
            debug!(code = ?status.code(), message = status.message(), "forwarding to the leader failed");
            EtcdError::Timeout
        }
    }
}

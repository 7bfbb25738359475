//! Membership changes: the `etcdserverpb.Cluster` service (MemberAdd, MemberRemove,
//! MemberUpdate, MemberList, MemberPromote) and leadership transfer (`Maintenance.MoveLeader`).
//!
//! A change is checked here against the members as applied (etcd's
//! `ValidateConfigurationChange`, and with `--strict-reconfig-check` its quorum rules on
//! started members), then proposed as a raft conf change, one at a time; the apply thread
//! records it in the `members` bucket and answers with the members after it. The check comes
//! before raft because raft applies a conf change as soon as it is committed (etcd checks at
//! apply time instead and turns a refused change into a no-op). The strict check, as etcd's,
//! counts started members (a member is started once it published its name) and then the peers
//! this member has been connected to for [`HEALTH_INTERVAL`] ("unhealthy cluster" otherwise).
//!
//! It does not own raft's rules (one pending change at a time, learners catching up) nor the
//! transport (which follows the `members` bucket, `peers.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stead_backend::Bucket;
use stead_node::raft::eraftpb::{ConfChange, ConfChangeType};
use stead_proto::etcdserverpb::cluster_client::ClusterClient;
use stead_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, ResponseHeader, cluster_server::Cluster,
};
use tonic::{Request, Response, Status};

use crate::membership::parse_urls;
use crate::{EtcdError, EtcdServer};

/// Learners a cluster may have at once (etcd 3.4's `maxLearners`).
const LEARNERS_MAX: usize = 1;
/// How often a leadership transfer looks whether the transferee leads yet.
const TRANSFER_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// etcd's `HealthInterval`: how long this member must have been connected to a peer for the
/// strict reconfiguration check to count the peer as up.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// A member is started once it published its name through raft.
fn is_started(member: &Member) -> bool {
    !member.name.is_empty()
}

/// etcd's quorum rules on started voting members, counted after a change.
fn enough_started(
    voters: impl Iterator<Item = bool>,
    extra_members: usize,
    extra_started: usize,
) -> bool {
    let mut members = extra_members;
    let mut started = extra_started;
    for is_started in voters {
        members += 1;
        started += usize::from(is_started);
    }
    started > members / 2
}

impl EtcdServer {
    /// Whether member `id` counts as up for the strict reconfiguration check: this member
    /// itself, or a peer it has been connected to for [`HEALTH_INTERVAL`] (etcd's
    /// `isConnectedSince`).
    fn connected_long_enough(&self, id: u64) -> bool {
        id == self.shared.member_id
            || self
                .shared
                .transport
                .connected_for(id)
                .is_some_and(|connected| connected > HEALTH_INTERVAL)
    }

    /// etcd's `mayAddMember` connectivity rule: a member (learner or voter) is added only when
    /// this member has been connected to every voting member for the health interval.
    fn connected_to_every_voter(&self, members: &[Member]) -> bool {
        members
            .iter()
            .filter(|m| !m.is_learner)
            .all(|m| self.connected_long_enough(m.id))
    }

    /// etcd's `mayRemoveMember` connectivity rule for removing voter `id`: removing a peer
    /// that is down is always safe; otherwise the voters this member is connected to, less the
    /// one removed, must still be a quorum of the voters before the removal.
    fn removal_keeps_active_quorum(&self, members: &[Member], id: u64) -> bool {
        if id != self.shared.member_id && self.shared.transport.connected_for(id).is_none() {
            return true;
        }
        let voters: Vec<&Member> = members.iter().filter(|m| !m.is_learner).collect();
        let active = voters
            .iter()
            .filter(|m| self.connected_long_enough(m.id))
            .count();
        active.saturating_sub(1) > voters.len().saturating_sub(1) / 2
    }

    /// The members, and whether `id` was removed from the cluster.
    fn members_and_removed(&self, id: u64) -> Result<(Vec<Member>, bool), EtcdError> {
        let members = self.members()?;
        let removed = self
            .shared
            .backend
            .read()
            .get(Bucket::MembersRemoved, &id.to_be_bytes())
            .map_err(|e| EtcdError::Internal(e.to_string()))?
            .is_some();
        Ok((members, removed))
    }

    /// The member `id`, or etcd's "member not found" (also for a removed ID).
    fn existing_member(&self, id: u64) -> Result<(Vec<Member>, Member), EtcdError> {
        let members = self.members()?;
        let member = members
            .iter()
            .find(|member| member.id == id)
            .cloned()
            .ok_or(EtcdError::MemberNotFound)?;
        Ok((members, member))
    }

    /// The cluster header: etcd's carries no revision.
    fn cluster_header(&self) -> ResponseHeader {
        ResponseHeader {
            revision: 0,
            ..self.header(None)
        }
    }

    /// `Maintenance.MoveLeader`: as leader, hands leadership to `target` and waits until it
    /// leads (at most the request timeout).
    pub(crate) async fn move_leader(&self, target: u64) -> Result<(), EtcdError> {
        let shared = &self.shared;
        let leader = || {
            shared
                .raft
                .leader
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        if leader() != shared.member_id {
            return Err(EtcdError::NotLeader);
        }
        let members = self.members()?;
        if !members.iter().any(|m| m.id == target && !m.is_learner) {
            return Err(EtcdError::BadLeaderTransferee);
        }
        tracing::info!(from = %crate::membership::format_id(shared.member_id),
            to = %crate::membership::format_id(target), "leadership transfer starting");
        shared
            .driver
            .send(crate::server::DriverInput::TransferLeader(target))
            .await
            .map_err(|_| EtcdError::Stopped)?;
        let deadline = tokio::time::Instant::now() + shared.request_timeout;
        while leader() != target {
            if tokio::time::Instant::now() >= deadline {
                return Err(EtcdError::TimeoutLeaderTransfer);
            }
            tokio::time::sleep(TRANSFER_POLL_INTERVAL).await;
        }
        tracing::info!(to = %crate::membership::format_id(target), "leadership transfer finished");
        Ok(())
    }

    /// Promotes learner `id` here, as leader; "not leader" elsewhere. etcd's order of checks:
    /// the learner's progress (which the leader alone knows), the started quorum, then (as it
    /// applies the change) whether the member exists and is a learner. So promoting a voter
    /// that lags answers "not in sync", and one that does not, "can only promote a learner".
    async fn promote_here(&self, id: u64) -> Result<Vec<Member>, EtcdError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.shared
            .driver
            .send(crate::server::DriverInput::LearnerReadiness {
                learner: id,
                answer,
            })
            .await
            .map_err(|_| EtcdError::Stopped)?;
        answered.await.map_err(|_| EtcdError::Stopped)??;
        let members = self.members()?;
        if self.shared.strict_reconfig_check
            && !enough_started(
                members.iter().filter(|m| !m.is_learner).map(is_started),
                1,
                1,
            )
        {
            return Err(EtcdError::MemberNotEnoughStarted);
        }
        let member = members
            .into_iter()
            .find(|member| member.id == id)
            .ok_or(EtcdError::MemberNotFound)?;
        if !member.is_learner {
            return Err(EtcdError::MemberNotLearner);
        }
        // The driver checks the learner's progress again as it proposes: it may have changed.
        let change = conf_change(ConfChangeType::AddNode, &member);
        self.configure(change, true).await
    }
}

/// A request's peer URLs as etcd's `types.NewURLs` takes them (sorted), or etcd's "given
/// member URLs are invalid".
fn parse_peer_urls(texts: &[String]) -> Result<Vec<String>, EtcdError> {
    Ok(parse_urls(texts)
        .map_err(|_| EtcdError::MemberBadUrls)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Whether a member other than `except` already has one of `urls`.
fn peer_urls_taken(members: &[Member], urls: &[String], except: Option<u64>) -> bool {
    members
        .iter()
        .filter(|m| Some(m.id) != except)
        .flat_map(|m| &m.peer_ur_ls)
        .any(|url| urls.contains(url))
}

/// The conf change that adds `member`, or updates it if it exists (apply.rs): a learner is
/// added, and stays, a learner.
fn add_change_type(member: &Member) -> ConfChangeType {
    if member.is_learner {
        ConfChangeType::AddLearnerNode
    } else {
        ConfChangeType::AddNode
    }
}

/// A conf change for `member`, which travels as its context.
fn conf_change(change_type: ConfChangeType, member: &Member) -> ConfChange {
    let mut change = ConfChange::default();
    change.set_change_type(change_type);
    change.node_id = member.id;
    change.context = prost::Message::encode_to_vec(member).into();
    change
}

#[tonic::async_trait]
impl Cluster for EtcdServer {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let request = request.into_inner();
        let peer_urls = parse_peer_urls(&request.peer_ur_ls)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let member = Member {
            id: crate::membership::member_id_at(&peer_urls, "", now),
            name: String::new(),
            peer_ur_ls: peer_urls,
            client_ur_ls: Vec::new(),
            is_learner: request.is_learner,
        };
        let (members, removed) = self.members_and_removed(member.id)?;
        if removed {
            return Err(EtcdError::MemberNotFound.into());
        }
        if members.iter().any(|m| m.id == member.id) {
            return Err(EtcdError::MemberExist.into());
        }
        if self.shared.strict_reconfig_check {
            if !member.is_learner && !add_keeps_quorum(&members) {
                return Err(EtcdError::MemberNotEnoughStarted.into());
            }
            // For learners too, as etcd.
            if !self.connected_to_every_voter(&members) {
                tracing::warn!(
                    "rejecting member add request: this member has not been connected to every \
                     voting member for {HEALTH_INTERVAL:?}"
                );
                return Err(EtcdError::Unhealthy.into());
            }
        }
        if peer_urls_taken(&members, &member.peer_ur_ls, None) {
            return Err(EtcdError::PeerUrlExist.into());
        }
        if member.is_learner && members.iter().filter(|m| m.is_learner).count() >= LEARNERS_MAX {
            return Err(EtcdError::TooManyLearners.into());
        }
        let members = self
            .configure(conf_change(add_change_type(&member), &member), false)
            .await?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.cluster_header()),
            member: Some(member),
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let id = request.into_inner().id;
        // etcd checks the quorum before it looks the member up (an unknown ID counts as a
        // voter), so "not enough started members" wins over "member not found".
        let members = self.members()?;
        let is_learner = members.iter().any(|m| m.id == id && m.is_learner);
        if self.shared.strict_reconfig_check
            && !is_learner
            && !enough_started(
                members
                    .iter()
                    .filter(|m| !m.is_learner && m.id != id)
                    .map(is_started),
                0,
                0,
            )
        {
            return Err(EtcdError::MemberNotEnoughStarted.into());
        }
        if self.shared.strict_reconfig_check
            && !is_learner
            && !self.removal_keeps_active_quorum(&members, id)
        {
            tracing::warn!(
                "rejecting member remove request: too few voting members connected to this one \
                 for {HEALTH_INTERVAL:?} would be left"
            );
            return Err(EtcdError::Unhealthy.into());
        }
        let member = members
            .into_iter()
            .find(|member| member.id == id)
            .ok_or(EtcdError::MemberNotFound)?;
        let members = self
            .configure(conf_change(ConfChangeType::RemoveNode, &member), false)
            .await?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.cluster_header()),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let request = request.into_inner();
        let (members, mut member) = self.existing_member(request.id)?;
        // etcd neither checks nor normalises the URLs of an update: it stores them as given.
        if peer_urls_taken(&members, &request.peer_ur_ls, Some(request.id)) {
            return Err(EtcdError::PeerUrlExist.into());
        }
        member.peer_ur_ls = request.peer_ur_ls;
        // An add of an existing member updates it (apply.rs). A learner stays one: etcd 3.4
        // forgets it (etcd-io/etcd#21694; fixed on 3.5 and 3.6 by #21719), stead does as fixed.
        let members = self
            .configure(conf_change(add_change_type(&member), &member), false)
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(self.cluster_header()),
            members,
        }))
    }

    async fn member_list(
        &self,
        request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        self.refuse_on_learner()?;
        if request.get_ref().linearizable {
            self.linearizable_read().await?;
        }
        let members = self.members()?;
        Ok(Response::new(MemberListResponse {
            header: Some(self.cluster_header()),
            members,
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let request = request.into_inner();
        // Only the leader knows whether the learner caught up: others ask it (etcd forwards
        // over its peer API).
        match self.promote_here(request.id).await {
            Ok(members) => Ok(Response::new(MemberPromoteResponse {
                header: Some(self.cluster_header()),
                members,
            })),
            Err(EtcdError::NotLeader) => {
                let channel = self.shared.leader_client.channel(&self.shared)?;
                let mut response = ClusterClient::new(channel)
                    .member_promote(request)
                    .await?
                    .into_inner();
                response.header = Some(self.cluster_header());
                Ok(Response::new(response))
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// etcd's `IsReadyToAddVotingMember`: after the add, started voters are still a quorum (a
/// second member added to a single one is always allowed: restoring a cluster from one).
fn add_keeps_quorum(members: &[Member]) -> bool {
    let voters: Vec<&Member> = members.iter().filter(|m| !m.is_learner).collect();
    let started = voters.iter().filter(|m| is_started(m)).count();
    if started == 1 && voters.len() == 1 {
        return true;
    }
    enough_started(voters.iter().map(|m| is_started(m)), 1, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, is_learner: bool) -> Member {
        Member {
            id,
            name: name.to_owned(),
            is_learner,
            ..Member::default()
        }
    }

    #[test]
    fn adding_a_voter_needs_a_started_quorum_after_the_add() {
        // 1 started member: adding a second is allowed (etcd's restore case).
        assert!(add_keeps_quorum(&[member(1, "a", false)]));
        // 3 voters, 2 started: after the add 4 members need 3 started.
        assert!(!add_keeps_quorum(&[
            member(1, "a", false),
            member(2, "b", false),
            member(3, "", false),
        ]));
        assert!(add_keeps_quorum(&[
            member(1, "a", false),
            member(2, "b", false),
            member(3, "c", false),
        ]));
        // A learner does not count.
        assert!(!add_keeps_quorum(&[
            member(1, "a", false),
            member(2, "", false),
            member(3, "c", true),
        ]));
    }

    #[test]
    fn started_quorum_counts_members_and_started_ones() {
        assert!(enough_started([true, true].into_iter(), 0, 0));
        assert!(!enough_started([true, false, false].into_iter(), 0, 0));
        assert!(enough_started([true, false].into_iter(), 1, 1));
    }
}

//! The apply thread: the only writer of the store.
//!
//! It takes batches of committed entries in log order and applies each: a client request
//! through the MVCC request layer (etcd's semantics), a conf change or member attributes to the
//! `members` bucket, an empty entry (a new leader's) to nothing. Every entry's raft index is
//! recorded as the consistent index in the same backend batch as its changes, and entries at or
//! below the consistent index found at start-up were applied before a restart and are skipped.
//! A lease grant, revoke or checkpoint updates the lessor and the `lease` bucket in the same
//! batch; a revoke deletes the lease's keys in one revision. An empty entry applied while this
//! member leads (a new leader's first entry) promotes the lessor: leases start expiring here.
//! The proposer waiting for an entry gets its answer; readers waiting for an index see it via
//! the applied index. Every `--snapshot-count` entries it commits the backend and asks the
//! driver to snapshot and compact the raft log there.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use bytes::Bytes;
use prost::Message as _;
use protobuf::Message as _;
use stead_backend::{BackendError, BatchTx, Bucket, ConsistentIndex};
use stead_mvcc::{KeyRange, MvccError, request};
use stead_node::raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType};
use stead_proto::etcdserverpb::{
    CompactionResponse, InternalRaftRequest, LeaseGrantResponse, LeaseRevokeResponse, Member,
    ResponseHeader,
};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;
use tracing::{error, info};

use crate::EtcdError;
use crate::membership::format_id;
use crate::server::{Applied, ApplyInput, ApplyOutcome, CLUSTER_VERSION_KEY, DriverInput, Shared};

/// How long a member removed from the cluster keeps running (etcd: ten heartbeats of 100 ms).
const REMOVED_MEMBER_STOP_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the apply thread stopped. Fatal for the member: its store can no longer follow the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error(transparent)]
    Mvcc(#[from] MvccError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("cannot decode raft entry {index}: {reason}")]
    Decode { index: u64, reason: String },
    #[error(transparent)]
    Lease(#[from] stead_lease::RecordError),
}

/// Runs until the driver drops its end of the queue (shutdown) or applying fails.
pub(crate) fn run(
    batches: Receiver<ApplyInput>,
    consistent_index: u64,
    snapshot_index: u64,
    shared: &Arc<Shared>,
) -> Result<(), ApplyError> {
    let mut applier = Applier {
        shared,
        applied_before_start: consistent_index,
        applied: consistent_index.max(snapshot_index),
        applied_term: 0,
        last_snapshot: consistent_index.max(snapshot_index),
    };
    let result = batches.iter().try_for_each(|input| match input {
        ApplyInput::Entries(batch) => applier.apply_batch(batch),
        ApplyInput::Snapshot { index, term, data } => applier.install_snapshot(index, term, &data),
        ApplyInput::SnapshotRequest => {
            applier.snapshot_now();
            Ok(())
        }
    });
    if let Err(err) = &result {
        error!(error = %err, "applying committed entries failed; stopping the member");
        shared.stopped.store(true, Ordering::SeqCst);
    }
    // Make everything applied durable in the backend: a restart then replays less.
    let committed = shared.backend.commit();
    info!(applied = applier.applied, "apply loop stopped");
    result?;
    committed?;
    Ok(())
}

struct Applier<'a> {
    shared: &'a Arc<Shared>,
    /// The consistent index found at start-up: entries at or below it are in the store.
    applied_before_start: u64,
    applied: u64,
    /// Term of the entry at `applied`.
    applied_term: u64,
    last_snapshot: u64,
}

impl Applier<'_> {
    fn apply_batch(&mut self, batch: Vec<Entry>) -> Result<(), ApplyError> {
        let before = self.applied;
        for entry in batch {
            if entry.index <= self.applied_before_start {
                continue;
            }
            debug_assert!(entry.index > self.applied, "entries apply in order, once");
            self.apply_entry(&entry)?;
            self.applied = entry.index;
            self.applied_term = entry.term;
        }
        if self.applied != before {
            self.shared.applied.send_replace(self.applied);
        }
        if self.applied - self.last_snapshot >= self.shared.snapshot_count {
            self.snapshot_now();
        }
        Ok(())
    }

    /// Commits the backend and asks the driver to snapshot the raft log at what is applied.
    /// The term is known once an entry was applied since start; until then there is nothing
    /// new to snapshot anyway. A failed commit is logged: the backend is poisoned and the next
    /// write fails the member.
    fn snapshot_now(&mut self) {
        if self.applied_term == 0 || self.applied <= self.last_snapshot {
            return;
        }
        if let Err(err) = self.shared.backend.commit() {
            error!(error = %err, "cannot commit the backend for a snapshot");
            return;
        }
        match self.shared.driver.try_send(DriverInput::Snapshot {
            index: self.applied,
            term: self.applied_term,
        }) {
            Ok(()) => self.last_snapshot = self.applied,
            // The driver is busy; ask again after the next batch.
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Replaces the store by the leader's snapshot at `index` (its data at `data`, a backend
    /// dump at or past `index`): backend, lessor, key index, watchers, peers. Entries up to
    /// the dump's consistent index are skipped from then on.
    fn install_snapshot(
        &mut self,
        index: u64,
        term: u64,
        data: &std::path::Path,
    ) -> Result<(), ApplyError> {
        let shared = self.shared;
        crate::peers::install(&shared.backend, data, index)?;
        let consistent_index = shared.backend.consistent_index()?;
        shared.lessor.reset(stead_lease::load(&shared.backend)?);
        shared.store.reload()?;
        shared.watch_hub.restore();
        if let Err(err) = crate::peers::refresh(shared) {
            error!(error = %err, "cannot update the peers after a snapshot");
        }
        self.applied_before_start = consistent_index.index;
        self.applied = consistent_index.index;
        self.applied_term = consistent_index.term.max(term);
        self.last_snapshot = self.applied;
        shared.applied.send_replace(self.applied);
        info!(
            index,
            applied = self.applied,
            revision = shared.store.current_revision(),
            "installed the leader's snapshot"
        );
        Ok(())
    }

    fn apply_entry(&mut self, entry: &Entry) -> Result<(), ApplyError> {
        let consistent_index = ConsistentIndex {
            index: entry.index,
            term: entry.term,
        };
        match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => {
                // A new leader's entry: once it is applied, this leader has applied every
                // earlier term's entries, so its lessor may take over expiry (etcd does the
                // same). Leases get an election timeout extra, covering the election.
                let shared = self.shared;
                if shared.raft.leader.load(Ordering::Relaxed) == shared.member_id {
                    shared
                        .lessor
                        .promote(shared.election_timeout, Instant::now());
                }
                self.record_index_only(consistent_index)
            }
            EntryType::EntryNormal => {
                let request =
                    InternalRaftRequest::decode(Bytes::clone(&entry.data)).map_err(|e| {
                        ApplyError::Decode {
                            index: entry.index,
                            reason: e.to_string(),
                        }
                    })?;
                let id = request.header.as_ref().map_or(0, |h| h.id);
                let outcome = self.apply_request(request, consistent_index)?;
                self.shared.proposals.trigger(id, outcome);
                Ok(())
            }
            EntryType::EntryConfChange => {
                let change =
                    ConfChange::parse_from_bytes(&entry.data).map_err(|e| ApplyError::Decode {
                        index: entry.index,
                        reason: e.to_string(),
                    })?;
                self.apply_conf_change(
                    change.get_change_type(),
                    change.node_id,
                    &change.context,
                    consistent_index,
                )?;
                // The proposer (MemberAdd and friends) waits under the change's ID.
                if change.id != 0 {
                    let members = self.shared.members().map_err(|reason| ApplyError::Decode {
                        index: entry.index,
                        reason,
                    })?;
                    self.shared
                        .proposals
                        .trigger(change.id, Ok(Applied::Members(members)));
                }
                Ok(())
            }
            EntryType::EntryConfChangeV2 => {
                let change = ConfChangeV2::parse_from_bytes(&entry.data).map_err(|e| {
                    ApplyError::Decode {
                        index: entry.index,
                        reason: e.to_string(),
                    }
                })?;
                for single in change.get_changes() {
                    self.apply_conf_change(
                        single.get_change_type(),
                        single.node_id,
                        &change.context,
                        consistent_index,
                    )?;
                }
                if change.get_changes().is_empty() {
                    self.record_index_only(consistent_index)?;
                }
                Ok(())
            }
        }
    }

    /// Applies a client request. Client errors are the outcome; storage errors are returned.
    fn apply_request(
        &mut self,
        request: InternalRaftRequest,
        consistent_index: ConsistentIndex,
    ) -> Result<ApplyOutcome, ApplyError> {
        let store = &self.shared.store;
        if let Some(put) = request.put {
            let result = self.write(consistent_index, |txn| request::put(txn, &put))?;
            return client_outcome(result.map(Applied::Put));
        }
        if let Some(delete) = request.delete_range {
            let result = self.write(consistent_index, |txn| request::delete_range(txn, &delete))?;
            return client_outcome(result.map(Applied::DeleteRange));
        }
        if let Some(txn_request) = request.txn {
            let result = self.write(consistent_index, |txn| {
                request::txn_write(txn, &txn_request)
            })?;
            return client_outcome(result.map(Applied::Txn));
        }
        if let Some(grant) = request.lease_grant {
            let granted = self
                .shared
                .lessor
                .grant(grant.id, grant.ttl, Instant::now());
            self.write_records(consistent_index, |batch| {
                if let Ok(record) = &granted {
                    batch.put(Bucket::Lease, record.key().to_vec(), record.encode());
                }
                Ok(())
            })?;
            return Ok(granted
                .map(|record| {
                    Applied::LeaseGrant(LeaseGrantResponse {
                        header: Some(self.header()),
                        id: record.id,
                        ttl: record.ttl,
                        error: String::new(),
                    })
                })
                .map_err(EtcdError::from));
        }
        if let Some(revoke) = request.lease_revoke {
            let keys = match self.shared.lessor.keys_to_revoke(revoke.id) {
                Ok(keys) => keys,
                Err(err) => {
                    self.record_index_only(consistent_index)?;
                    return Ok(Err(err.into()));
                }
            };
            // Every key in one revision, in the same order on every member; the lease record
            // goes in the same batch, so a crash keeps both or neither.
            let result = self.write(consistent_index, |txn| {
                for key in keys {
                    txn.delete_range(&KeyRange::Single(key))?;
                }
                txn.delete_record(Bucket::Lease, &stead_lease::key_of(revoke.id))
            })?;
            self.shared.lessor.remove(revoke.id);
            return client_outcome(result.map(|()| {
                Applied::LeaseRevoke(LeaseRevokeResponse {
                    header: Some(self.header()),
                })
            }));
        }
        if let Some(checkpoint) = request.lease_checkpoint {
            let now = Instant::now();
            let lessor = &self.shared.lessor;
            self.write_records(consistent_index, |batch| {
                for checkpoint in &checkpoint.checkpoints {
                    let persist = lessor.checkpoint(checkpoint.id, checkpoint.remaining_ttl, now);
                    if let Some(record) = persist {
                        batch.put(Bucket::Lease, record.key().to_vec(), record.encode());
                    }
                }
                Ok(())
            })?;
            return Ok(Ok(Applied::Done));
        }
        if let Some(compaction) = request.compaction {
            let (done, physical) = oneshot::channel();
            let result = store.compact(
                compaction.revision,
                Some(Box::new(move || {
                    let _ = done.send(());
                })),
            );
            self.record_index_only(consistent_index)?;
            return client_outcome(result.map(|()| Applied::Compaction {
                response: CompactionResponse {
                    header: Some(self.header()),
                },
                physical,
            }));
        }
        if let Some(attributes) = request.cluster_member_attr_set {
            let key = attributes.member_id.to_be_bytes();
            let stored = self.shared.backend.read().get(Bucket::Members, &key)?;
            self.write_records(consistent_index, |batch| {
                if let Some(stored) = stored {
                    let mut member = Member::decode(stored).map_err(|e| ApplyError::Decode {
                        index: consistent_index.index,
                        reason: format!("stored member: {e}"),
                    })?;
                    if let Some(attributes) = attributes.member_attributes {
                        member.name = attributes.name;
                        member.client_ur_ls = attributes.client_urls;
                    }
                    batch.put(Bucket::Members, key.to_vec(), member.encode_to_vec());
                }
                Ok(())
            })?;
            return Ok(Ok(Applied::Done));
        }
        if let Some(version) = request.cluster_version_set {
            self.write_records(consistent_index, |batch| {
                batch.put(
                    Bucket::Cluster,
                    CLUSTER_VERSION_KEY,
                    version.ver.clone().into_bytes(),
                );
                Ok(())
            })?;
            info!(cluster_version = %version.ver, "set the cluster version");
            return Ok(Ok(Applied::Done));
        }
        // A request kind this version does not apply: recorded, answered as unsupported.
        self.record_index_only(consistent_index)?;
        Ok(Err(EtcdError::Internal(
            "request type not supported by this member".into(),
        )))
    }

    fn apply_conf_change(
        &mut self,
        change_type: ConfChangeType,
        member_id: u64,
        context: &[u8],
        consistent_index: ConsistentIndex,
    ) -> Result<(), ApplyError> {
        let key = member_id.to_be_bytes();
        let stored = self.shared.backend.read().get(Bucket::Members, &key)?;
        self.write_records(consistent_index, |batch| {
            match change_type {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    let decode = |bytes: &[u8], what: &str| {
                        Member::decode(bytes).map_err(|e| ApplyError::Decode {
                            index: consistent_index.index,
                            reason: format!("{what}: {e}"),
                        })
                    };
                    let given = decode(context, "conf change context")?;
                    let is_learner = change_type == ConfChangeType::AddLearnerNode;
                    // An add of a member that exists changes it: a learner added as a voter
                    // is promoted (raft does the same), new peer URLs are an update.
                    let member = match &stored {
                        Some(stored) => {
                            let mut member = decode(stored, "stored member")?;
                            if !given.peer_ur_ls.is_empty() {
                                member.peer_ur_ls = given.peer_ur_ls;
                            }
                            let promoted = member.is_learner && !is_learner;
                            member.is_learner = is_learner;
                            info!(member_id = %format_id(member_id), name = %member.name,
                                peer_urls = ?member.peer_ur_ls, promoted, "updated member");
                            member
                        }
                        None => {
                            let mut member = given;
                            member.id = member_id;
                            member.is_learner = is_learner;
                            info!(member_id = %format_id(member_id), name = %member.name,
                                peer_urls = ?member.peer_ur_ls, is_learner, "added member");
                            member
                        }
                    };
                    batch.put(Bucket::Members, key.to_vec(), member.encode_to_vec());
                }
                ConfChangeType::RemoveNode => {
                    info!(member_id = %format_id(member_id), "removed member");
                    batch.delete(Bucket::Members, key.to_vec());
                    batch.put(Bucket::MembersRemoved, key.to_vec(), Vec::new());
                }
            }
            Ok(())
        })?;
        // The transport dials the members as they are now.
        if let Err(err) = crate::peers::refresh(self.shared) {
            error!(error = %err, "cannot update the peers after a conf change");
        }
        if change_type == ConfChangeType::RemoveNode && member_id == self.shared.member_id {
            // As etcd: stop a little later, so that the leader (maybe this member) gets the
            // commit of this change to the others first.
            error!("the member has been permanently removed from the cluster; stopping");
            let shared = Arc::clone(self.shared);
            std::thread::spawn(move || {
                std::thread::sleep(REMOVED_MEMBER_STOP_DELAY);
                shared.stopped.store(true, Ordering::SeqCst);
            });
        }
        Ok(())
    }

    /// Runs `apply` in one write transaction that also records the entry's consistent index.
    /// The request's own result is returned as is; failing to end the transaction is fatal.
    fn write<T>(
        &self,
        consistent_index: ConsistentIndex,
        apply: impl FnOnce(&mut stead_mvcc::WriteTxn<'_>) -> Result<T, MvccError>,
    ) -> Result<Result<T, MvccError>, ApplyError> {
        let mut txn = self.shared.store.write()?;
        let result = apply(&mut txn);
        txn.set_consistent_index(consistent_index)?;
        let events = txn.end()?;
        self.shared.watch_hub.notify(&events);
        Ok(result)
    }

    /// A header with the store's current revision (the services fill in the rest).
    fn header(&self) -> ResponseHeader {
        ResponseHeader {
            revision: self.shared.store.current_revision(),
            ..ResponseHeader::default()
        }
    }

    fn record_index_only(&mut self, consistent_index: ConsistentIndex) -> Result<(), ApplyError> {
        self.write_records(consistent_index, |_| Ok(()))
    }

    /// Writes what `fill` puts in one backend batch (records of the buckets outside the store:
    /// members, cluster, leases) together with the entry's consistent index.
    fn write_records(
        &self,
        consistent_index: ConsistentIndex,
        fill: impl FnOnce(&mut BatchTx<'_>) -> Result<(), ApplyError>,
    ) -> Result<(), ApplyError> {
        let mut batch = self.shared.backend.batch()?;
        fill(&mut batch)?;
        batch.set_consistent_index(consistent_index);
        batch.end()?;
        Ok(())
    }
}

/// Splits a request's result: client errors answer the proposer, storage errors stop the
/// member.
fn client_outcome(result: Result<Applied, MvccError>) -> Result<ApplyOutcome, ApplyError> {
    match result {
        Ok(applied) => Ok(Ok(applied)),
        Err(err @ (MvccError::Backend(_) | MvccError::Corrupt(_))) => Err(err.into()),
        Err(err) => Ok(Err(EtcdError::from(err))),
    }
}

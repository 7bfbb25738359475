//! The driver thread: the one owner of the raft node.
//!
//! Each round takes every input waiting in the inbox (ticks, proposals, read index requests,
//! peers' messages and the transport's reports, snapshot notices), then processes `Ready`s
//! until raft is quiet: whatever arrived together is persisted with one WAL fsync, which is
//! where write batching comes from. Messages for peers go to the transport (it never blocks:
//! a full peer queue drops, and raft retries). Committed entries go to the apply thread in
//! order; read states answer the read loop. A snapshot received from the leader goes to the
//! apply thread with its data file, between the entries before and after it.
//!
//! Proposals that arrive while there is no leader wait here (at most
//! [`PENDING_PROPOSALS_MAX`]), as etcd's proposals wait, and go to raft once a leader is known;
//! their callers time out on their own.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use stead_node::raft::eraftpb::ConfChange;
use stead_node::{NodeError, ProposeError, RaftNode, WalLog};
use tokio::sync::mpsc::{Receiver, error::TrySendError};
use tracing::{debug, error, info, warn};

use crate::EtcdError;
use crate::server::{ApplyInput, DriverInput, Shared};

/// Inputs taken from the inbox in one round, so that a flood of proposals still lets raft
/// make progress (and fsync) regularly.
const INPUTS_PER_ROUND_MAX: usize = 4096;
/// A sole member keeps this many applied entries in memory; nothing else needs them (they
/// stay in the WAL until a snapshot releases it).
const SOLE_MEMBER_ENTRIES_KEPT: u64 = 1_000;
/// A member with peers keeps this many entries behind the slowest of them (as leader) or
/// behind what it applied (as follower): a peer further behind gets a snapshot (etcd's
/// SnapshotCatchUpEntries).
const CATCH_UP_ENTRIES_KEPT: u64 = stead_node::SNAPSHOT_CATCH_UP_ENTRIES;
/// Entries are dropped from memory once this many more have piled up, in few large steps.
const LOG_MEMORY_COMPACTION_STEP: u64 = 10_000;
/// Proposals held while there is no leader; beyond it they fail with "no leader".
pub(crate) const PENDING_PROPOSALS_MAX: usize = 8192;

/// Why the driver stopped on its own. Fatal for the member.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DriverError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("the apply thread stopped")]
    ApplyStopped,
    #[error("raft installed the snapshot at index {0}, whose data never arrived")]
    SnapshotDataMissing(u64),
}

/// Runs the driver until it is told to stop or the inbox closes. An error is fatal for the
/// member: the caller stops it.
pub(crate) fn run(
    mut node: RaftNode<WalLog>,
    mut inbox: Receiver<DriverInput>,
    apply: SyncSender<ApplyInput>,
    shared: &Arc<Shared>,
) -> Result<(), DriverError> {
    let result = drive(&mut node, &mut inbox, &apply, shared);
    if let Err(err) = &result {
        error!(error = %err, "raft driver failed; stopping the member");
    }
    shared.stopped.store(true, Ordering::SeqCst);
    // Whatever raft still had to persist was persisted in the last round; commit-only hard
    // states may be buffered: sync them too.
    if let Err(err) = node.sync_log() {
        error!(error = %err, "final WAL sync failed");
    }
    // Dropping `apply` lets the apply thread finish what it has and stop.
    drop(apply);
    result
}

/// Data files of snapshots received from the leader, by raft index, until raft installs one
/// (or a newer one makes them useless).
#[derive(Default)]
struct ReceivedSnapshots {
    files: BTreeMap<u64, PathBuf>,
}

impl ReceivedSnapshots {
    /// The data of the snapshot at `index`; files of older ones are deleted.
    fn take(&mut self, index: u64) -> Option<PathBuf> {
        let newer = self.files.split_off(&(index + 1));
        let older = std::mem::replace(&mut self.files, newer);
        let mut found = None;
        for (at, path) in older {
            if at == index {
                found = Some(path);
            } else if let Err(err) = std::fs::remove_file(&path) {
                warn!(path = %path.display(), error = %err, "cannot delete an unused snapshot");
            }
        }
        found
    }
}

fn drive(
    node: &mut RaftNode<WalLog>,
    inbox: &mut Receiver<DriverInput>,
    apply: &SyncSender<ApplyInput>,
    shared: &Arc<Shared>,
) -> Result<(), DriverError> {
    let mut pending: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut received = ReceivedSnapshots::default();
    let mut stopping = false;
    while !stopping {
        let Some(first) = inbox.blocking_recv() else {
            return Ok(());
        };
        let mut input = Some(first);
        let mut taken = 0;
        while let Some(next) = input.take() {
            taken += 1;
            match next {
                DriverInput::Tick => {
                    node.tick();
                }
                DriverInput::Propose { id, data } => {
                    if node.leader_id() == 0 {
                        if pending.len() >= PENDING_PROPOSALS_MAX {
                            shared.proposals.trigger(id, Err(EtcdError::NoLeader));
                        } else {
                            pending.push_back((id, data));
                        }
                    } else {
                        propose(node, shared, id, data);
                    }
                }
                DriverInput::ReadIndex { context } => {
                    node.read_index(context.to_be_bytes().to_vec());
                }
                DriverInput::Snapshot { index, term } => {
                    node.snapshot_and_compact(index, term, Vec::new())?
                }
                DriverInput::ProposeConfChange {
                    change,
                    learner_must_be_ready,
                } => propose_conf_change(node, shared, change, learner_must_be_ready),
                DriverInput::LearnerReadiness { learner, answer } => {
                    // The asker may have given up; nothing to do then.
                    let _ = answer.send(learner_readiness(node, learner));
                }
                DriverInput::TransferLeader(to) => node.transfer_leader(to),
                DriverInput::Step(message) => step(node, message),
                DriverInput::SnapshotReceived { message, data } => {
                    received
                        .files
                        .insert(message.get_snapshot().get_metadata().index, data);
                    step(node, message);
                }
                DriverInput::Unreachable(peer) => node.report_unreachable(peer),
                DriverInput::SnapshotSent { to, arrived } => node.report_snapshot(to, arrived),
                DriverInput::Stop => stopping = true,
            }
            if taken < INPUTS_PER_ROUND_MAX {
                input = inbox.try_recv().ok();
            }
        }
        process(node, apply, shared, &mut received)?;
        // A sole voter need not wait an election timeout to lead (etcd fast-forwards its
        // election ticks for the same reason). Checked after processing: the conf change
        // that makes this member the voter may just have been applied.
        if node.leader_id() == 0 && node.voters() == [shared.member_id] {
            node.campaign()?;
            process(node, apply, shared, &mut received)?;
        }
        if node.leader_id() != 0 && !pending.is_empty() {
            for (id, data) in pending.drain(..) {
                propose(node, shared, id, data);
            }
            process(node, apply, shared, &mut received)?;
        }
        // Raft had to send a follower a snapshot and none reaches the log: the apply thread
        // makes one at what it has applied (if its queue is full, raft asks again).
        if node.take_snapshot_request() {
            let _ = apply.try_send(ApplyInput::SnapshotRequest);
        }
        // Peers catch up from the raft log in memory. etcd keeps everything since the last
        // snapshot there (up to --snapshot-count entries); stead keeps what a peer may still
        // need: a leader, a margin behind its slowest peer; a follower (which sends entries to
        // nobody until it leads), a margin behind what it applied; a sole member, a little.
        // Never anything the state machine has not applied.
        let applied = *shared.applied.borrow();
        let keep_from = match node.peers_matched() {
            Some(None) => applied.saturating_sub(SOLE_MEMBER_ENTRIES_KEPT),
            Some(Some(slowest)) => applied.min(slowest).saturating_sub(CATCH_UP_ENTRIES_KEPT),
            None => applied.saturating_sub(CATCH_UP_ENTRIES_KEPT),
        };
        if keep_from >= node.first_log_index()? + LOG_MEMORY_COMPACTION_STEP {
            node.compact_log_memory(keep_from)?;
        }
    }
    info!("raft driver stopped");
    Ok(())
}

/// Steps a peer's message into raft. Its errors are the message's fault (a stale member's, or
/// one from a peer this restarted member does not know yet), not the node's.
fn step(node: &mut RaftNode<WalLog>, message: stead_node::raft::eraftpb::Message) {
    let from = message.from;
    if let Err(err) = node.step(message) {
        debug!(from = %crate::membership::format_id(from), error = %err, "dropped a peer's raft message");
    }
}

fn propose(node: &mut RaftNode<WalLog>, shared: &Shared, id: u64, data: Vec<u8>) {
    if let Err(refused) = node.propose(data) {
        answer_refused(shared, id, refused);
    }
}

/// Answers the proposer of `id`, which raft did not take.
fn answer_refused(shared: &Shared, id: u64, refused: ProposeError) {
    match refused {
        ProposeError::NoLeader => shared.proposals.trigger(id, Err(EtcdError::NoLeader)),
        ProposeError::Dropped(err) => {
            warn!(error = %err, "raft dropped a proposal");
            shared.proposals.trigger(id, Err(EtcdError::LeaderChanged));
        }
    }
}

/// How far a learner's log must match the leader's to be promoted (etcd's `readyPercent`).
const LEARNER_READY_FRACTION: f64 = 0.9;

/// etcd's `isLearnerReady`: only the leader knows how far `learner` got.
fn learner_readiness(node: &RaftNode<WalLog>, learner: u64) -> Result<(), EtcdError> {
    if !node.is_leader() {
        return Err(EtcdError::NotLeader);
    }
    match node.follower_match(learner) {
        Some((matched, leader)) if (matched as f64) < leader as f64 * LEARNER_READY_FRACTION => {
            Err(EtcdError::LearnerNotReady)
        }
        _ => Ok(()),
    }
}

fn propose_conf_change(
    node: &mut RaftNode<WalLog>,
    shared: &Shared,
    change: ConfChange,
    learner_must_be_ready: bool,
) {
    let id = change.id;
    if learner_must_be_ready && let Err(err) = learner_readiness(node, change.node_id) {
        shared.proposals.trigger(id, Err(err));
        return;
    }
    if let Err(refused) = node.propose_conf_change(change) {
        answer_refused(shared, id, refused);
    }
}

/// Processes `Ready`s until raft is quiet.
fn process(
    node: &mut RaftNode<WalLog>,
    apply: &SyncSender<ApplyInput>,
    shared: &Shared,
    received: &mut ReceivedSnapshots,
) -> Result<(), DriverError> {
    while let Some(output) = node.process_ready(|messages| shared.transport.send(messages))? {
        if let Some((leader, role)) = output.soft_state {
            let previous = shared.raft.leader.swap(leader, Ordering::Relaxed);
            if leader != shared.member_id {
                // Leases expire only on the leader; it is promoted when it applies its first
                // entry (apply thread).
                shared.lessor.demote();
            }
            if previous != leader && leader == stead_node::raft::INVALID_ID {
                warn!(
                    lost = %crate::membership::format_id(previous),
                    ?role,
                    term = node.term(),
                    "no leader: serving serializable reads only; writes and linearizable reads fail with 'etcdserver: no leader' until a quorum elects one"
                );
            } else if previous != leader {
                info!(leader = %crate::membership::format_id(leader), ?role, term = node.term(), "raft leader changed");
            }
        }
        shared.raft.term.store(node.term(), Ordering::Relaxed);
        shared
            .raft
            .commit
            .store(node.commit_index(), Ordering::Relaxed);
        for state in output.read_states {
            if let Ok(context) = <[u8; 8]>::try_from(&state.request_ctx[..]) {
                shared
                    .read_states
                    .trigger(u64::from_be_bytes(context), state.index);
            }
        }
        if let Some(snapshot) = output.snapshot {
            // Raft made it durable in the WAL; the data file was fsynced when it arrived.
            let metadata = snapshot.get_metadata();
            let data = received
                .take(metadata.index)
                .ok_or(DriverError::SnapshotDataMissing(metadata.index))?;
            info!(
                index = metadata.index,
                term = metadata.term,
                "installing the leader's snapshot"
            );
            // A crash here leaves raft's snapshot durable and the backend behind it: start-up
            // installs the received file (peers::install_pending_snapshot).
            crate::failpoint::crash_at("snapshot-saved-not-installed");
            let install = ApplyInput::Snapshot {
                index: metadata.index,
                term: metadata.term,
                data,
            };
            if apply.send(install).is_err() {
                return Err(DriverError::ApplyStopped);
            }
        }
        if !output.committed.is_empty()
            && apply.send(ApplyInput::Entries(output.committed)).is_err()
        {
            // The apply thread stopped (it failed): nothing more can be applied.
            return Err(DriverError::ApplyStopped);
        }
    }
    Ok(())
}

/// Ticks the driver every heartbeat interval. A tick that finds the inbox full is skipped:
/// the driver is busy, and will catch up (etcd's "a tick missed to fire").
pub(crate) async fn tick(shared: Arc<Shared>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match shared.driver.try_send(DriverInput::Tick) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Closed(_)) => return,
        }
    }
}

//! The raft node: raft-rs's `RawNode` over an in-memory log, with a [`DurableLog`] under it.
//!
//! It does no IO of its own and has no clock: the caller ticks it, steps peer messages into it,
//! proposes, asks for read indexes, and calls [`RaftNode::process_ready`], which persists what
//! must be durable (through the `DurableLog`), hands back committed entries, read states and
//! messages to send, and advances raft. The same code runs under the server's driver thread and
//! under a test that plays the network and the disk.
//!
//! Conf changes are applied to raft here, as their entries are handed out (they are also handed
//! to the state machine, which records membership). On restart raft hands out again every
//! committed entry after the snapshot, so the conf state is rebuilt the same way.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot};
use raft::storage::MemStorage;
use raft::{
    GetEntriesContext, RaftState, RawNode, ReadState, SnapshotStatus, StateRole, Storage,
    StorageError,
};

use crate::{DurableLog, NodeError, Recovered};

/// How many entries before a snapshot stay in memory for followers that lag a little (etcd's
/// `SnapshotCatchUpEntries`).
pub const SNAPSHOT_CATCH_UP_ENTRIES: u64 = 5_000;

/// The raft parameters of a member.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The member ID; never 0.
    pub id: u64,
    /// Ticks without a leader before a follower campaigns.
    pub election_tick: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_tick: usize,
    /// Bytes of entries per append message.
    pub max_size_per_msg: u64,
    /// Append messages in flight per follower.
    pub max_inflight_msgs: usize,
    /// Bounds of the randomized election timeout, `[min, max)` ticks; 0 takes raft's defaults
    /// (`[election_tick, 2 × election_tick)`). A simulation pins them (max = min + 1) to replay
    /// a run exactly: raft-rs draws the timeout from an unseeded generator.
    pub min_election_tick: usize,
    pub max_election_tick: usize,
}

impl NodeConfig {
    /// etcd's defaults for everything but the ID and ticks.
    pub fn new(id: u64, election_tick: usize, heartbeat_tick: usize) -> NodeConfig {
        NodeConfig {
            id,
            election_tick,
            heartbeat_tick,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 4096 / 8,
            min_election_tick: 0,
            max_election_tick: 0,
        }
    }
}

/// What one round of [`RaftNode::process_ready`] produced, after its durable part was done.
#[derive(Debug, Default)]
pub struct ReadyOutput {
    /// Entries committed, in log order, for the state machine.
    pub committed: Vec<Entry>,
    /// Answers to read index requests.
    pub read_states: Vec<ReadState>,
    /// The new leader and role, when they changed.
    pub soft_state: Option<(u64, StateRole)>,
    /// A snapshot received from the leader, already durable; the state machine must load it.
    pub snapshot: Option<Snapshot>,
}

/// Why a proposal was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// There is no leader to take it (raft-rs drops proposals then).
    #[error("no leader")]
    NoLeader,
    /// Raft refused it for another reason (a leadership transfer in progress, say).
    #[error("proposal dropped: {0}")]
    Dropped(raft::Error),
}

/// raft-rs's in-memory log plus the newest durable snapshot, which is what raft sends a
/// follower that needs entries the log no longer holds. (raft-rs's `MemStorage` alone would
/// make one up from metadata, without the state machine's data.)
struct LogStorage {
    log: MemStorage,
    /// The newest durable snapshot (index 0: none yet).
    snapshot: Snapshot,
    /// Raft wanted to send a snapshot and none would do: the state machine should make one.
    snapshot_wanted: std::cell::Cell<bool>,
}

impl Storage for LogStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.log.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.log.entries(low, high, max_size, context)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        self.log.term(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.log.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.log.last_index()
    }

    /// The newest durable snapshot, if it reaches the log held in memory (a follower can go
    /// on from it), is at least `request_index`, and its configuration has `to` (a member
    /// added after it would refuse it); otherwise raft asks again later.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let metadata = self.snapshot.get_metadata();
        let index = metadata.index;
        let conf_state = metadata.get_conf_state();
        let has_to = conf_state.voters.contains(&to) || conf_state.learners.contains(&to);
        if index == 0 || index + 1 < self.log.first_index()? || index < request_index || !has_to {
            self.snapshot_wanted.set(true);
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

/// A raft member. See the module doc.
pub struct RaftNode<L: DurableLog> {
    raw: RawNode<LogStorage>,
    log: L,
    /// Conf states by the index of the conf change that made them, oldest first: a snapshot
    /// at index `i` records the last one at or before `i`.
    conf_states: Vec<(u64, ConfState)>,
    /// Index of the newest durable snapshot (0: none).
    snapshot_index: u64,
}

impl<L: DurableLog> RaftNode<L> {
    /// A node starting from `recovered` (a bootstrap or a restart), writing to `log`.
    pub fn new(config: &NodeConfig, recovered: Recovered, log: L) -> Result<Self, NodeError> {
        let mut storage = LogStorage {
            log: MemStorage::new(),
            snapshot: Snapshot::default(),
            snapshot_wanted: std::cell::Cell::new(false),
        };
        let mut applied = 0;
        let mut conf_states = Vec::new();
        {
            let mut core = storage.log.wl();
            let mut hard_state = recovered.hard_state;
            if let Some(snapshot) = recovered.snapshot {
                let metadata = snapshot.get_metadata();
                applied = metadata.index;
                hard_state.commit = hard_state.commit.max(metadata.index);
                hard_state.term = hard_state.term.max(metadata.term);
                conf_states.push((metadata.index, metadata.get_conf_state().clone()));
                core.apply_snapshot(snapshot.clone())?;
                storage.snapshot = snapshot;
            }
            core.append(&recovered.entries)?;
            core.set_hardstate(hard_state);
        }
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            applied,
            max_size_per_msg: config.max_size_per_msg,
            max_inflight_msgs: config.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            min_election_tick: config.min_election_tick,
            max_election_tick: config.max_election_tick,
            ..raft::Config::default()
        };
        raft_config.validate()?;
        let raw = RawNode::new(&raft_config, storage, &crate::logger::raft_logger())?;
        Ok(RaftNode {
            raw,
            log,
            conf_states,
            snapshot_index: applied,
        })
    }

    /// Advances the logical clock by one tick. Returns whether there may be something to do.
    pub fn tick(&mut self) -> bool {
        self.raw.tick()
    }

    /// Feeds a message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), NodeError> {
        Ok(self.raw.step(message)?)
    }

    /// Proposes an entry; a follower forwards it to the leader.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), ProposeError> {
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => Ok(()),
            Err(raft::Error::ProposalDropped) if self.leader_id() == raft::INVALID_ID => {
                Err(ProposeError::NoLeader)
            }
            Err(err) => Err(ProposeError::Dropped(err)),
        }
    }

    /// Proposes a membership change (its context and ID travel with it); a follower forwards
    /// it to the leader. Raft takes one at a time: while one is not yet applied, a later one
    /// is replaced by an empty entry.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<(), ProposeError> {
        match self.raw.propose_conf_change(Vec::new(), change) {
            Ok(()) => Ok(()),
            Err(raft::Error::ProposalDropped) if self.leader_id() == raft::INVALID_ID => {
                Err(ProposeError::NoLeader)
            }
            Err(err) => Err(ProposeError::Dropped(err)),
        }
    }

    /// Asks raft to hand leadership to `to` (the leader only; others ignore it).
    pub fn transfer_leader(&mut self, to: u64) {
        self.raw.transfer_leader(to);
    }

    /// As leader: how far `id`'s log matches the leader's, and the leader's own last matched
    /// index; `None` when this node does not lead or does not track `id`.
    pub fn follower_match(&self, id: u64) -> Option<(u64, u64)> {
        if !self.is_leader() {
            return None;
        }
        let progress = self.raw.raft.prs();
        let follower = progress.get(id)?.matched;
        let leader = progress.get(self.raw.raft.id)?.matched;
        Some((follower, leader))
    }

    /// As leader, the least index that every peer it tracks (voters and learners) is known to
    /// have: `Some(None)` when it has no peers; `None` when it does not lead.
    pub fn peers_matched(&self) -> Option<Option<u64>> {
        if !self.is_leader() {
            return None;
        }
        let own = self.raw.raft.id;
        Some(
            self.raw
                .raft
                .prs()
                .iter()
                .filter(|(id, _)| **id != own)
                .map(|(_, progress)| progress.matched)
                .min(),
        )
    }

    /// Asks for a read index; the answer comes in [`ReadyOutput::read_states`] with `context`.
    pub fn read_index(&mut self, context: Vec<u8>) {
        self.raw.read_index(context);
    }

    /// Whether raft had to send a follower a snapshot since the last call and no durable one
    /// reached the log held in memory (none yet, or the log was trimmed past it): the caller
    /// should snapshot what it has applied ([`RaftNode::snapshot_and_compact`]); raft asks
    /// again meanwhile.
    pub fn take_snapshot_request(&mut self) -> bool {
        self.raw.store().snapshot_wanted.replace(false)
    }

    /// Tells raft whether a snapshot sent to `to` arrived: until then raft sends that
    /// follower nothing but heartbeats.
    pub fn report_snapshot(&mut self, to: u64, arrived: bool) {
        let status = if arrived {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.raw.report_snapshot(to, status);
    }

    /// Tells raft that a message to `to` could not be sent: raft probes that follower again
    /// instead of streaming appends to it.
    pub fn report_unreachable(&mut self, to: u64) {
        self.raw.report_unreachable(to);
    }

    /// Starts an election now.
    pub fn campaign(&mut self) -> Result<(), NodeError> {
        Ok(self.raw.campaign()?)
    }

    /// The leader this node knows of (`raft::INVALID_ID`, 0, if none).
    pub fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The highest committed index.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// The voters of the current configuration.
    pub fn voters(&self) -> Vec<u64> {
        let mut voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        voters.sort_unstable();
        voters
    }

    /// The durable log.
    pub fn durable_log(&self) -> &L {
        &self.log
    }

    /// Stops the node, giving back its durable log (a test crashes it and restarts from it).
    pub fn into_durable_log(self) -> L {
        self.log
    }

    /// Drops in-memory log entries before `index` (at most up to the last entry, which is always
    /// kept). Only for applied entries no peer is expected to need (one that does gets a
    /// snapshot). They stay in the durable log until a snapshot releases it.
    pub fn compact_log_memory(&mut self, index: u64) -> Result<(), NodeError> {
        let store = self.raw.store().log.clone();
        let index = index.min(store.last_index()?);
        Ok(store.wl().compact(index)?)
    }

    /// The first entry still held in memory.
    pub fn first_log_index(&self) -> Result<u64, NodeError> {
        Ok(self.raw.store().log.first_index()?)
    }

    /// Makes everything appended durable (at shutdown: commit-only hard states are appended
    /// without a sync).
    pub fn sync_log(&mut self) -> Result<(), NodeError> {
        self.log.sync()
    }

    /// Whether [`RaftNode::process_ready`] has anything to do.
    pub fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Processes one `Ready`: messages a leader may send at once go to `send` before the log is
    /// persisted; then entries and hard state are persisted (one sync if raft needs it),
    /// messages that needed persistence go to `send`, raft advances, and committed entries come
    /// back for the state machine. Returns `None` when there was nothing to do.
    pub fn process_ready(
        &mut self,
        mut send: impl FnMut(Vec<Message>),
    ) -> Result<Option<ReadyOutput>, NodeError> {
        if !self.raw.has_ready() {
            return Ok(None);
        }
        let mut ready = self.raw.ready();
        let mut output = ReadyOutput::default();
        if !ready.messages().is_empty() {
            send(ready.take_messages());
        }
        if let Some(soft_state) = ready.ss() {
            output.soft_state = Some((soft_state.leader_id, soft_state.raft_state));
        }
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.log.save_snapshot(&snapshot)?;
            let metadata = snapshot.get_metadata();
            self.conf_states = vec![(metadata.index, metadata.get_conf_state().clone())];
            self.snapshot_index = metadata.index;
            let storage = self.raw.mut_store();
            storage.log.wl().apply_snapshot(snapshot.clone())?;
            storage.snapshot = snapshot.clone();
            output.snapshot = Some(snapshot);
        }
        let committed = ready.take_committed_entries();
        self.apply_conf_changes(&committed)?;
        output.committed = committed;
        output.read_states = ready.take_read_states();
        let entries = ready.take_entries();
        let hard_state = ready.hs().cloned();
        if !entries.is_empty() || hard_state.is_some() {
            self.log.append(hard_state.as_ref(), &entries)?;
            if ready.must_sync() {
                self.log.sync()?;
            }
            let mut store = self.raw.mut_store().log.wl();
            store.append(&entries)?;
            if let Some(hard_state) = hard_state {
                store.set_hardstate(hard_state);
            }
        }
        if !ready.persisted_messages().is_empty() {
            send(ready.take_persisted_messages());
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            // raft-rs reports a leader's new commit index only here, and no later `Ready`
            // carries it. The log must know it: snapshot markers count only up to the durable
            // commit index (etcd's ValidSnapshotEntries). Written now, synced by the next sync;
            // it precedes the entries it covers reaching the state machine, so a snapshot's
            // own sync makes it durable before any log is released.
            let hard_state = {
                let mut store = self.raw.mut_store().log.wl();
                store.mut_hard_state().commit = commit;
                store.hard_state().clone()
            };
            self.log.append(Some(&hard_state), &[])?;
        }
        if !light.messages().is_empty() {
            send(light.take_messages());
        }
        let committed = light.take_committed_entries();
        self.apply_conf_changes(&committed)?;
        output.committed.extend(committed);
        // The state machine applies asynchronously; raft only needs to know the entries left.
        self.raw.advance_apply();
        Ok(Some(output))
    }

    /// Records a snapshot at `index` of `term` (an entry the state machine has applied and made
    /// durable), compacts the in-memory log before it, keeping [`SNAPSHOT_CATCH_UP_ENTRIES`],
    /// and releases the durable log before it.
    pub fn snapshot_and_compact(
        &mut self,
        index: u64,
        term: u64,
        data: Vec<u8>,
    ) -> Result<(), NodeError> {
        if index <= self.snapshot_index {
            return Ok(()); // already covered by an earlier snapshot
        }
        let store = self.raw.store().log.clone();
        let first_index = store.first_index()?;
        let conf_state = self
            .conf_states
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map(|(_, conf_state)| conf_state.clone())
            .unwrap_or_default();
        let mut snapshot = Snapshot {
            data: data.into(),
            ..Snapshot::default()
        };
        let metadata = snapshot.mut_metadata();
        metadata.index = index;
        metadata.term = term;
        metadata.set_conf_state(conf_state.clone());
        self.log.save_snapshot(&snapshot)?;
        self.raw.mut_store().snapshot = snapshot;
        let compact_to = index.saturating_sub(SNAPSHOT_CATCH_UP_ENTRIES);
        if compact_to > first_index {
            store.wl().compact(compact_to)?;
        }
        self.log.release_before(index)?;
        self.snapshot_index = index;
        // Only the conf state at the snapshot and later ones can matter again.
        self.conf_states.retain(|(at, _)| *at > index);
        self.conf_states.insert(0, (index, conf_state));
        tracing::info!(index, term, "saved raft snapshot and compacted the log");
        Ok(())
    }

    fn apply_conf_changes(&mut self, entries: &[Entry]) -> Result<(), NodeError> {
        for entry in entries {
            let conf_state = match entry.get_entry_type() {
                EntryType::EntryConfChange => {
                    let change = ConfChange::parse_from_bytes(&entry.data)
                        .map_err(|e| NodeError::corrupt_entry(entry.index, e))?;
                    self.raw.apply_conf_change(&change)?
                }
                EntryType::EntryConfChangeV2 => {
                    let change = ConfChangeV2::parse_from_bytes(&entry.data)
                        .map_err(|e| NodeError::corrupt_entry(entry.index, e))?;
                    self.raw.apply_conf_change(&change)?
                }
                EntryType::EntryNormal => continue,
            };
            self.raw
                .mut_store()
                .log
                .wl()
                .set_conf_state(conf_state.clone());
            self.step_down_if_removed(&conf_state);
            self.conf_states.push((entry.index, conf_state));
        }
        Ok(())
    }

    /// A leader that applied its own removal steps down (etcd's raft `StepDownOnRemoval`).
    /// raft-rs keeps it leading, and the next commit or persisted entry unwraps the leader's
    /// own progress, which the removal deleted: a panic. Found by the simulation.
    fn step_down_if_removed(&mut self, conf_state: &ConfState) {
        let raft = &mut self.raw.raft;
        let id = raft.id;
        if raft.state == StateRole::Leader
            && !conf_state.voters.contains(&id)
            && !conf_state.voters_outgoing.contains(&id)
        {
            let term = raft.term;
            raft.become_follower(term, raft::INVALID_ID);
        }
    }
}

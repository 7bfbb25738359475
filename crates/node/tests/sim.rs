//! Whole-cluster simulation of the raft member (issue 7): 3 or 5 `RaftNode`s on simulated disks
//! ([`MemLog`]), a simulated network and a simulated clock, in one thread, driven by a seeded
//! PRNG. Many seeds per run; each seed is one cluster's life.
//!
//! What this test owns:
//! - the faults, each seed drawing its own mix: messages dropped, duplicated, delayed by a
//!   random number of steps (so they arrive reordered), partitions that split the members at
//!   random and later heal, crashes (between two `Ready`s or in the middle of one, between two
//!   durable writes) with restarts from what was synced, and clocks that tick at different
//!   rates; a crash is skipped if it would leave a majority of some member's voters down;
//! - leadership transfers: now and then the leader, or a random member (a follower forwards
//!   it), is asked to hand leadership to a random other voter;
//! - membership changes, one conf change in flight at a time, proposed to the leader: a new
//!   member with a fresh ID joins as a learner (it starts with an empty log and no
//!   configuration, and learns both from the leader's log or snapshot), is promoted to voter
//!   once it has caught up (etcd's rule: 90% of the leader's log), and random voters are
//!   removed, the seed keeping between 3 and one more than its initial number of voters. A
//!   member that applies its own removal keeps running a few steps (none or ten, per seed: the
//!   server stops one second later), then stops for good: it is no longer driven and messages
//!   to it are lost. A removed member that never learns it was (the leader no longer sends it
//!   anything) stops when it sends to a member that applied its removal, which refuses it, as
//!   the transport does. A removed member that crashes does not come back. A conf change not seen
//!   applied within a while is given up (the next one may be the same). A response from a
//!   member outside the receiver's configuration is dropped, as the server's driver drops it.
//!   A leader that applies its own removal steps down (`RaftNode` does it: raft-rs 0.7 kept it
//!   leading and then panicked; this simulation found that);
//! - the clients: unique 8-byte payloads proposed to random members, and read index requests;
//! - each member's state machine (the payloads it applied, with their indexes), which it
//!   snapshots now and then (`snapshot_and_compact`, sometimes dropping the in-memory log up to
//!   the snapshot so lagging followers need one from the leader), loads from a snapshot the
//!   leader sends, and rebuilds after a crash from its durable snapshot plus the entries raft
//!   hands out again.
//!
//! What it checks, as it goes:
//! 1. no two members apply different entries at the same index (a cluster-wide ledger holds
//!    the first sighting of every applied index);
//! 2. each member applies indexes in order without gaps, except a jump to a snapshot;
//! 3. an applied entry is never lost: a state machine a member loads (from a snapshot it
//!    receives, or at a restart) holds exactly the ledger's payloads up to its index;
//! 4. at most one leader per term;
//! 5. a read index is at least every index applied anywhere before the read was asked;
//! 6. no applied conf change adds back a member removed at an earlier index (the simulation
//!    never reuses an ID: raft would have applied changes out of order), and the configuration
//!    the applied conf changes make (folded by the ledger, in log order) holds only members
//!    that were started;
//!
//! and at the end, with every fault stopped and crashed members restarted: within a bound, a
//! new proposal commits and every current member (voter or learner of the ledger's
//! configuration) reaches the same applied index, holding the same state, which is everything
//! the ledger saw, and has the ledger's voters as its raft configuration's voters; no member
//! of the configuration has stopped. Members that are not in it (removed, or added by a change
//! that never committed) are left out.
//!
//! Replay one seed: `STEAD_SIM_SEED=<n> cargo test -p stead-node --test sim`; run more seeds:
//! `STEAD_SIM_SEEDS=<count>`; longer lives: `STEAD_SIM_STEPS=<steps>`. The schedule (faults,
//! clients, ticks) is a function of the seed, and each network link draws from its own stream.
//! raft-rs draws randomized election timeouts from an unseeded generator, so the members'
//! timeouts are pinned (`NodeConfig::min_election_tick`/`max_election_tick`); the members'
//! drifting clocks (each ticks with its own chance) stand in for the randomness. A seed then
//! replays exactly.

#[path = "sim/disk.rs"]
mod disk;
#[path = "sim/membership.rs"]
mod membership;
#[path = "sim/network.rs"]
mod network;
#[path = "sim/rng.rs"]
mod rng;
#[path = "sim/state.rs"]
mod state;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use stead_node::raft::{self, eraftpb::Message};
use stead_node::{InitialMember, MemLog, NodeConfig, NodeError, RaftNode, ReadyOutput, Recovered};
use stead_wal::WalMetadata;

use disk::{Fate, FateCell, SimLog};
use membership::{ChangeKind, MembershipChange};
use network::{Network, NetworkCounts, NetworkFaults};
use rng::Rng;
use state::{Kind, Ledger, StateMachine};

const ELECTION_TICKS: usize = 10;
const HEARTBEAT_TICKS: usize = 1;
/// Seeds from here on run five members; below, three.
const FIVE_MEMBER_SEEDS_FROM: u64 = 1_000_000;
/// Steps with faults per seed (`STEAD_SIM_STEPS`).
const FAULT_STEPS: u64 = 1_000;
/// Steps the cluster gets, after the faults stop, to elect a leader, commit a proposal and
/// bring every member to the same applied index. A healthy cluster needs well under 100.
const SETTLE_STEPS_MAX: u64 = 2_000;
/// A run over many seeds stops after this many failed seeds.
const FAILURES_MAX: usize = 5;
/// Membership changes keep at least this many voters.
const VOTERS_MIN: usize = 3;
/// Steps after which a conf change not seen applied is given up (lost with a leader, or turned
/// into an empty entry by raft because another was pending).
const CONF_CHANGE_PATIENCE_STEPS: u64 = 100;
/// Steps after which a leadership transfer that did not happen is no longer waited for.
const TRANSFER_PATIENCE_STEPS: u64 = 50;
/// A learner is promoted once the leader knows it has this share of the leader's log (etcd's
/// `readyPercent`), in percent.
const LEARNER_READY_PERCENT: u64 = 90;

#[test]
fn three_member_clusters_keep_every_committed_entry() {
    run_seeds(0, 150);
}

#[test]
fn five_member_clusters_keep_every_committed_entry() {
    run_seeds(FIVE_MEMBER_SEEDS_FROM, 40);
}

// ---- Scenarios: the bugs the seeds found, pinned down -----------------------------------------
//
// Each of these failed first as a random seed (named in its doc, from before election timeouts
// were pinned, so those seeds no longer lead there); each scenario drives a quiet cluster by
// hand into its bug, every time. The first four are fixed; these keep them fixed. After them:
// scenarios that show a fault of the schedule once by hand (a snapshot on request, a member
// joining, a leadership transfer), and the known bug, ignored until it is fixed.

/// Fixed bug: a snapshot the leader sends carried no state. Seeds 0, 7 and 1000010 (most failing
/// seeds): "member 2 received a snapshot at index 424 (term 2, 0 bytes of data) that does not
/// hold what was applied". raft-rs asks its `Storage` for the snapshot to send, and
/// `RaftNode`'s storage is a `MemStorage`, whose snapshot is metadata only (at its commit
/// index); the data `snapshot_and_compact` was given went to the durable log alone. The
/// follower persisted and loaded an empty state machine. Now the node's storage hands raft the
/// newest durable snapshot.
#[test]
fn a_follower_that_needs_a_snapshot_gets_the_leaders_state() {
    scenario(|sim| {
        leave_a_follower_behind(sim)?;
        sim.network.heal();
        sim.settle()
    });
}

/// Fixed bug: a member that snapshots what it applied could not restart. Seed 14:
/// "panicked: snapshot at 107 is beyond the durable commit index 106: unusable at restart". A
/// follower learns most commit indexes from heartbeats, which raft does not ask
/// to sync; `MemLog::save_snapshot` makes the snapshot durable but not the hard state appended
/// before it (the WAL's marker sync does: `WalLog` is not affected), so `recover_synced` finds
/// a snapshot beyond the durable commit index and panics. Now saving a snapshot syncs what
/// precedes it, in `MemLog` as in the WAL.
#[test]
fn a_follower_restarts_from_a_snapshot_of_what_it_applied() {
    scenario(|sim| {
        let leader = sim.elect()?;
        sim.propose_at(leader, 5);
        sim.run_steps(20)?;
        let follower = sim.follower_of(leader);
        let member = sim.members.get_mut(&follower).expect("a member");
        let applied = member.state.applied_index;
        let node = member.node().expect("up");
        let synced_commit = node.durable_log().disk.recover_synced().hard_state.commit;
        assert!(
            synced_commit < applied,
            "the scenario needs a commit index learnt but not synced"
        );
        sim.snapshot_member(follower, false);
        sim.members.get_mut(&follower).expect("a member").crash();
        sim.restart(follower)?;
        sim.settle()
    });
}

/// Fixed bug: a follower whose snapshot message is lost never caught up. Seeds 30 and 1000004: "liveness: 2000 steps after the faults stopped, the cluster has not
/// converged". Having sent a snapshot, raft-rs keeps the follower's progress in `Snapshot`
/// state, sending it nothing but heartbeats, until the follower acknowledges that index or
/// the application calls `report_snapshot`; `RaftNode` has no way to report (nor
/// `report_unreachable`), so a lost snapshot, or a lost answer to it, stalled the follower
/// until the leader changed. Now `RaftNode::report_snapshot` exists and the simulated network
/// reports every snapshot message's fate, as a transport must.
#[test]
fn a_follower_catches_up_after_its_snapshot_message_is_lost() {
    scenario(|sim| {
        leave_a_follower_behind(sim)?;
        sim.network.loses_snapshots = true;
        sim.network.heal();
        sim.run_steps(50)?;
        assert!(
            sim.network.counts.dropped > 0,
            "a snapshot message was lost"
        );
        sim.network.loses_snapshots = false;
        sim.settle()
    });
}

/// Fixed bug: a member that crashed right after saving a snapshot from the leader could not
/// restart. Seed 1000017, with the bugs above worked around: "panicked: snapshot at 345
/// is beyond the durable commit index 339". `process_ready` saves the snapshot before it
/// appends the hard state whose commit index covers it; `MemLog::save_snapshot` makes the
/// snapshot durable at once and drops the entries before it, so after a crash in between,
/// `recover_synced` panics. (The WAL ignores a snapshot marker beyond the last commit index
/// and falls back to the previous snapshot; `MemLog` kept no previous one. Now it keeps
/// snapshots and entries until `release_before`, and recovers as the WAL does.)
#[test]
fn a_follower_that_crashes_after_saving_the_leaders_snapshot_restarts() {
    scenario(|sim| {
        let follower = leave_a_follower_behind(sim)?;
        if let Life::Up { fate, .. } = &sim.members[&follower].life {
            fate.set(Fate::DiesAfterSavingSnapshot);
        }
        sim.network.heal();
        sim.run_steps(20)?;
        assert!(
            !sim.members[&follower].is_up(),
            "the follower received a snapshot and died"
        );
        sim.restart(follower)?;
        sim.settle()
    });
}

/// Cuts a follower off while the leader commits ten entries, then snapshots the leader and
/// drops the entries the follower lacks from its log: the follower can only catch up from the
/// snapshot once the partition is healed (the caller heals it). Returns the follower.
fn leave_a_follower_behind(sim: &mut Sim) -> Result<u64, String> {
    let leader = sim.elect()?;
    let follower = sim.follower_of(leader);
    sim.network.partition(BTreeSet::from([follower]));
    sim.propose_at(leader, 10);
    sim.run_steps(20)?;
    sim.snapshot_member(leader, true);
    Ok(follower)
}

/// A leader that trimmed its in-memory log past its last snapshot (as a sole voter does, before
/// a member joins) makes a snapshot when a follower needs one, rather than leaving it behind
/// until the next periodic snapshot.
#[test]
fn a_leader_without_a_usable_snapshot_makes_one_when_a_follower_needs_it() {
    scenario(|sim| {
        let leader = sim.elect()?;
        let follower = sim.follower_of(leader);
        sim.network.partition(BTreeSet::from([follower]));
        sim.propose_at(leader, 10);
        sim.run_steps(20)?;
        let member = sim.members.get_mut(&leader).expect("a member");
        let applied = member.state.applied_index;
        let node = member.node().expect("up");
        node.compact_log_memory(applied)
            .map_err(|e| format!("trim: {e}"))?;
        sim.network.heal();
        sim.settle()?;
        if sim.counts.snapshots_on_request == 0 {
            return Err("the leader never snapshotted on request".into());
        }
        Ok(())
    });
}

/// A member added after the leader trimmed its log joins from a snapshot (made on request: the
/// last one predates the member, whose configuration must hold it), is promoted, and counts in
/// the quorum once a voter is removed.
#[test]
fn a_member_added_after_the_log_was_trimmed_joins_from_a_snapshot_and_is_promoted() {
    scenario(|sim| {
        let leader = sim.elect()?;
        sim.propose_at(leader, 10);
        sim.run_steps(20)?;
        sim.snapshot_member(leader, true);
        let joining = sim.next_member_id;
        sim.next_member_id += 1;
        sim.propose_change_at(leader, MembershipChange::add_learner(joining))?;
        sim.add_member(joining)?;
        sim.run_steps(20)?;
        if sim.counts.snapshots_received == 0 {
            return Err("the new member did not get a snapshot".into());
        }
        if !sim.is_caught_up(joining) {
            return Err("the new member did not catch up".into());
        }
        sim.propose_change_at(leader, MembershipChange::promote(joining))?;
        sim.run_steps(20)?;
        let removed = sim.follower_of(leader);
        sim.propose_change_at(leader, MembershipChange::remove(removed))?;
        sim.settle()?;
        let voters: Vec<u64> = sim.ledger.membership().voters().iter().copied().collect();
        let expected: Vec<u64> = [1, 2, 3, joining]
            .into_iter()
            .filter(|&id| id != removed)
            .collect();
        if voters != expected || !sim.retired.contains(&removed) {
            return Err(format!(
                "voters {voters:?}, retired {:?}: expected voters {expected:?}, member \
                 {removed} retired",
                sim.retired
            ));
        }
        Ok(())
    });
}

/// A follower asked to transfer leadership forwards the request to the leader, which hands
/// leadership to the member named.
#[test]
fn a_leader_hands_leadership_to_the_member_named() {
    scenario(|sim| {
        let leader = sim.elect()?;
        let target = sim.follower_of(leader);
        let asked = *sim
            .members
            .keys()
            .find(|&&id| id != leader && id != target)
            .expect("a third member");
        let node = sim.members.get_mut(&asked).and_then(Member::node);
        node.expect("up").transfer_leader(target);
        sim.run_steps(20)?;
        if sim.leader() != Some(target) {
            return Err(format!(
                "member {target} does not lead after the transfer, {:?} does",
                sim.leader()
            ));
        }
        sim.settle()
    });
}

/// A leader removed while clients write to it steps down as it applies its own removal and
/// stops a little later while the other two carry on. raft-rs 0.7 kept it leading and panicked
/// on the leader's own progress, which the removal dropped (in `process_ready` when the `Ready`
/// holding the removal also held new entries, in `step` when an append response moved the
/// commit index); seeds 7, 9, 12, 15, 23, 28, 60, 1000002 and 1000003 hit it before the fix.
#[test]
fn a_leader_removed_while_it_takes_proposals_stops_and_the_others_carry_on() {
    scenario(|sim| {
        let leader = sim.elect()?;
        sim.propose_change_at(leader, MembershipChange::remove(leader))?;
        for _ in 0..100 {
            if sim
                .members
                .get(&leader)
                .is_none_or(|m| m.removed_at.is_some())
            {
                break;
            }
            if sim.members[&leader].is_leader() {
                sim.propose_at(leader, 1);
            }
            sim.run_steps(1)?;
        }
        sim.settle()?;
        if !sim.retired.contains(&leader) {
            return Err(format!("member {leader} was removed but did not stop"));
        }
        Ok(())
    });
}

/// Runs `script` on a quiet 3-member cluster; an error fails the test with the step.
fn scenario(script: impl FnOnce(&mut Sim) -> Result<(), String>) {
    let mut sim = Sim::quiet(3);
    if let Err(message) = script(&mut sim) {
        panic!("step {}: {message}", sim.now);
    }
}

// ---- The fault schedule ----------------------------------------------------------------------

/// How a seed's run goes, drawn from the seed so that seeds explore different mixes (a lossy
/// network without crashes, frequent partitions, ...). Chances are per step.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    members: u64,
    network: NetworkFaults,
    /// Chance a partition starts, while there is none.
    partition_chance: f64,
    /// Chance a partition heals, while there is one.
    heal_chance: f64,
    /// Chance one member crashes (never more than a minority down at once).
    crash_chance: f64,
    /// Of crashes, the share that happens in the middle of a `Ready`, between two durable
    /// writes, rather than between two `Ready`s.
    mid_ready_share: f64,
    /// Chance a crashed member restarts.
    restart_chance: f64,
    /// Proposals per step: uniform in `0..=proposals_max`.
    proposals_max: u64,
    /// Chance a client asks a random member for a read index.
    read_chance: f64,
    /// Chance each member snapshots its state machine and compacts its log.
    snapshot_chance: f64,
    /// Of snapshots, the share after which the member also drops its in-memory log up to the
    /// snapshot (as if `SNAPSHOT_CATCH_UP_ENTRIES` were 0), so followers that lag need a
    /// snapshot from the leader. `compact_log_memory` documents itself for sole voters; this
    /// stands in for the long logs that would take too many steps to reach here.
    trim_share: f64,
    /// Chance a member is asked to hand leadership to another voter.
    transfer_chance: f64,
    /// Chance the next membership change is proposed, while none is in flight.
    reconfigure_chance: f64,
    /// Voters membership changes keep, at most (at least: [`VOTERS_MIN`]).
    voters_max: usize,
    /// Steps a member that applied its own removal keeps running before it stops.
    removed_stop_steps: u64,
}

impl Schedule {
    fn draw(members: u64, rng: &mut Rng) -> Schedule {
        Schedule {
            members,
            network: NetworkFaults {
                drop: rng.pick(&[0.0, 0.01, 0.05, 0.15]),
                duplicate: rng.pick(&[0.0, 0.02, 0.1]),
                delay_steps_max: rng.pick(&[0, 2, 5, 10]),
            },
            partition_chance: rng.pick(&[0.0, 0.002, 0.01]),
            heal_chance: rng.pick(&[0.01, 0.05]),
            crash_chance: rng.pick(&[0.0, 0.002, 0.01]),
            mid_ready_share: 0.5,
            restart_chance: rng.pick(&[0.02, 0.1]),
            proposals_max: rng.pick(&[1, 3, 8]),
            read_chance: 0.1,
            snapshot_chance: rng.pick(&[0.002, 0.01, 0.05]),
            trim_share: rng.pick(&[0.0, 0.5]),
            transfer_chance: rng.pick(&[0.0, 0.002, 0.01]),
            reconfigure_chance: rng.pick(&[0.0, 0.005, 0.02]),
            voters_max: members as usize + 1,
            removed_stop_steps: rng.pick(&[0, 10]),
        }
    }

    /// No faults and no clients: for scenarios that drive the cluster by hand.
    fn quiet(members: u64) -> Schedule {
        Schedule {
            members,
            network: NetworkFaults::default(),
            partition_chance: 0.0,
            heal_chance: 0.0,
            crash_chance: 0.0,
            mid_ready_share: 0.0,
            restart_chance: 0.0,
            proposals_max: 0,
            read_chance: 0.0,
            snapshot_chance: 0.0,
            trim_share: 0.0,
            transfer_chance: 0.0,
            reconfigure_chance: 0.0,
            voters_max: members as usize + 1,
            removed_stop_steps: 0,
        }
    }
}

// ---- Members ---------------------------------------------------------------------------------

// A handful of members, swapped between states now and then: their size does not matter.
#[allow(clippy::large_enum_variant)]
enum Life {
    Up {
        node: RaftNode<SimLog>,
        fate: FateCell,
    },
    /// Crashed: only the disk is left, holding what was synced.
    Down { disk: MemLog },
}

struct Member {
    id: u64,
    life: Life,
    /// Lost in a crash; rebuilt from the durable snapshot and the entries raft hands out again.
    state: StateMachine,
    /// Chance this member's clock ticks in a step: clocks drift apart.
    tick_chance: f64,
    /// The step at which it applied its own removal: it stops a little later.
    removed_at: Option<u64>,
}

impl Member {
    /// A member, up, on `disk` as bootstrapped or recovered.
    fn start(
        id: u64,
        disk: MemLog,
        recovered: Recovered,
        tick_chance: f64,
    ) -> Result<Member, String> {
        let fate = Rc::new(Cell::new(Fate::Running));
        let log = SimLog::new(disk, fate.clone());
        let node = RaftNode::new(&node_config(id), recovered, log)
            .map_err(|e| format!("member {id} cannot start: {e}"))?;
        Ok(Member {
            id,
            life: Life::Up { node, fate },
            state: StateMachine::default(),
            tick_chance,
            removed_at: None,
        })
    }

    fn node(&mut self) -> Option<&mut RaftNode<SimLog>> {
        match &mut self.life {
            Life::Up { node, .. } => Some(node),
            Life::Down { .. } => None,
        }
    }

    /// The voters of its raft configuration, if it is up.
    fn voters(&self) -> Option<Vec<u64>> {
        match &self.life {
            Life::Up { node, .. } => Some(node.voters()),
            Life::Down { .. } => None,
        }
    }

    fn is_up(&self) -> bool {
        matches!(self.life, Life::Up { .. })
    }

    fn leader_id(&self) -> Option<u64> {
        match &self.life {
            Life::Up { node, .. } => Some(node.leader_id()),
            Life::Down { .. } => None,
        }
    }

    fn is_leader(&self) -> bool {
        matches!(&self.life, Life::Up { node, .. } if node.is_leader())
    }

    /// The term it leads, if it is up and leads.
    fn leads_term(&self) -> Option<u64> {
        match &self.life {
            Life::Up { node, .. } if node.is_leader() => Some(node.term()),
            _ => None,
        }
    }

    fn take_life(&mut self) -> Life {
        std::mem::replace(
            &mut self.life,
            Life::Down {
                disk: MemLog::default(),
            },
        )
    }

    /// Loses the process: its memory and every unsynced write.
    fn crash(&mut self) {
        let Life::Up { node, .. } = self.take_life() else {
            panic!("member {} is already down", self.id)
        };
        let mut disk = node.into_durable_log().disk;
        disk.crash();
        self.life = Life::Down { disk };
        self.state = StateMachine::default();
    }

    /// Starts the process again from what its disk kept. The caller then processes its first
    /// `Ready` before anything else: until it has applied the conf changes raft hands out
    /// again, the member knows no peers and refuses their messages.
    fn restart(&mut self, ledger: &Ledger) -> Result<(), String> {
        let Life::Down { disk } = self.take_life() else {
            panic!("member {} is already up", self.id)
        };
        let recovered = disk.recover_synced();
        // The state machine is the durable snapshot; raft hands out the entries after it again.
        self.state = match &recovered.snapshot {
            Some(snapshot) => StateMachine::from_snapshot(snapshot)?,
            None => StateMachine::default(),
        };
        ledger
            .check(&self.state)
            .map_err(|e| format!("member {} restarted from its snapshot: {e}", self.id))?;
        let fate = Rc::new(Cell::new(Fate::Running));
        let log = SimLog::new(disk, fate.clone());
        let node = RaftNode::new(&node_config(self.id), recovered, log)
            .map_err(|e| format!("member {} cannot restart: {e}", self.id))?;
        self.life = Life::Up { node, fate };
        Ok(())
    }
}

/// How often a member's clock ticks: each member's drifts from the others'.
fn draw_tick_chance(rng: &mut Rng) -> f64 {
    0.6 + 0.4 * rng.below(1_000) as f64 / 1_000.0
}

fn node_config(id: u64) -> NodeConfig {
    NodeConfig {
        min_election_tick: ELECTION_TICKS,
        max_election_tick: ELECTION_TICKS + 1,
        ..NodeConfig::new(id, ELECTION_TICKS, HEARTBEAT_TICKS)
    }
}

/// Applies what one `Ready` handed out to `state`, checking it against the ledger. Returns
/// whether the member applied its own removal.
fn apply(
    member: u64,
    state: &mut StateMachine,
    ledger: &mut Ledger,
    now: u64,
    output: &ReadyOutput,
) -> Result<bool, String> {
    if let Some(snapshot) = &output.snapshot {
        let loaded = StateMachine::from_snapshot(snapshot)
            .map_err(|e| format!("member {member} received a bad snapshot: {e}"))?;
        if loaded.applied_index <= state.applied_index {
            return Err(format!(
                "member {member} received a snapshot at index {}, at or before its applied \
                 index {}",
                loaded.applied_index, state.applied_index
            ));
        }
        ledger.check(&loaded).map_err(|e| {
            format!(
                "member {member} received a snapshot at index {} (term {}, {} bytes of data) \
                 that does not hold what was applied: {e}",
                loaded.applied_index,
                loaded.applied_term,
                snapshot.data.len()
            )
        })?;
        *state = loaded;
    }
    let mut removed = false;
    for entry in &output.committed {
        if entry.index != state.applied_index + 1 {
            return Err(format!(
                "member {member} was handed index {} to apply after index {}",
                entry.index, state.applied_index
            ));
        }
        match ledger.observe(member, now, entry)? {
            Kind::Payload(payload) => state.payloads.push((entry.index, payload)),
            Kind::ConfChange(change) if change == MembershipChange::remove(member) => {
                removed = true;
            }
            Kind::ConfChange(_) | Kind::Empty => {}
        }
        state.applied_index = entry.index;
        state.applied_term = entry.term;
    }
    Ok(removed)
}

// ---- The simulation --------------------------------------------------------------------------

/// What a seed's run did, for the summary and the liveness check.
#[derive(Debug, Default)]
struct Counts {
    /// Proposals that reached a member.
    proposals: u64,
    /// Refused at once (no leader known).
    proposals_refused: u64,
    /// Forwarded to a member that then had no leader.
    forwarded_proposals_dropped: u64,
    /// Responses refused because the sender is not in the receiver's configuration.
    responses_from_strangers: u64,
    /// Payloads committed while faults were on.
    payloads_committed: u64,
    reads_answered: u64,
    crashes: u64,
    crashes_mid_ready: u64,
    partitions: u64,
    snapshots_taken: u64,
    /// Made because raft needed one for a follower and none reached the log.
    snapshots_on_request: u64,
    snapshots_received: u64,
    /// The most steps a seed needed to settle.
    settle_steps_max: u64,
    network: NetworkCounts,
    transfers_asked: u64,
    /// Transfers after which the target led a later term.
    transfers_done: u64,
    conf_changes_proposed: u64,
    /// Refused at once (no leader, or a transfer in progress).
    conf_changes_refused: u64,
    /// Not seen applied in [`CONF_CHANGE_PATIENCE_STEPS`].
    conf_changes_given_up: u64,
    learners_added: u64,
    learners_promoted: u64,
    voters_removed: u64,
    /// Removed members that stopped.
    members_retired: u64,
    /// Removed members that stopped because a member that applied their removal refused them.
    removed_members_refused: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.proposals += other.proposals;
        self.proposals_refused += other.proposals_refused;
        self.forwarded_proposals_dropped += other.forwarded_proposals_dropped;
        self.responses_from_strangers += other.responses_from_strangers;
        self.payloads_committed += other.payloads_committed;
        self.reads_answered += other.reads_answered;
        self.crashes += other.crashes;
        self.crashes_mid_ready += other.crashes_mid_ready;
        self.partitions += other.partitions;
        self.snapshots_taken += other.snapshots_taken;
        self.snapshots_on_request += other.snapshots_on_request;
        self.snapshots_received += other.snapshots_received;
        self.settle_steps_max = self.settle_steps_max.max(other.settle_steps_max);
        self.network.sent += other.network.sent;
        self.network.dropped += other.network.dropped;
        self.network.duplicated += other.network.duplicated;
        self.network.cut += other.network.cut;
        self.transfers_asked += other.transfers_asked;
        self.transfers_done += other.transfers_done;
        self.conf_changes_proposed += other.conf_changes_proposed;
        self.conf_changes_refused += other.conf_changes_refused;
        self.conf_changes_given_up += other.conf_changes_given_up;
        self.learners_added += other.learners_added;
        self.learners_promoted += other.learners_promoted;
        self.voters_removed += other.voters_removed;
        self.members_retired += other.members_retired;
        self.removed_members_refused += other.removed_members_refused;
    }
}

/// A conf change proposed and not yet seen applied: until it is (or is given up), no other is
/// proposed.
#[derive(Clone, Copy, Debug)]
struct ChangeInFlight {
    change: MembershipChange,
    proposed_at: u64,
}

/// A leadership transfer asked, until a leader of a later term is seen (or it is given up).
#[derive(Clone, Copy, Debug)]
struct TransferInFlight {
    to: u64,
    /// The term led when it was asked.
    term: u64,
    asked_at: u64,
}

/// Whether faults are on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Faulty,
    Quiet,
}

struct Sim {
    schedule: Schedule,
    fault_steps: u64,
    /// The schedule's stream. What it is asked does not depend on what raft does, so a seed's
    /// faults, clients and ticks are the same on every replay.
    rng: Rng,
    now: u64,
    members: BTreeMap<u64, Member>,
    network: Network,
    ledger: Ledger,
    /// Leader by term, as seen (check 4).
    leaders: BTreeMap<u64, u64>,
    next_payload: u64,
    /// Read index requests, by context: the ledger's last index when asked (check 5).
    reads: Vec<u64>,
    counts: Counts,
    /// Removed members that stopped: never driven again. IDs are never reused.
    retired: BTreeSet<u64>,
    /// The ID the next member added gets.
    next_member_id: u64,
    /// A member added (it runs) whose `AddLearnerNode` is not yet seen applied: it is proposed
    /// again before any other change.
    joining: Option<u64>,
    change_in_flight: Option<ChangeInFlight>,
    transfer_in_flight: Option<TransferInFlight>,
}

impl Sim {
    /// The cluster of `seed`, with the schedule drawn from it.
    fn new(seed: u64, fault_steps: u64) -> Sim {
        let mut rng = Rng::stream(seed, 0);
        let members = if seed >= FIVE_MEMBER_SEEDS_FROM { 5 } else { 3 };
        let schedule = Schedule::draw(members, &mut rng);
        Sim::with_schedule(seed, schedule, rng, fault_steps)
    }

    /// A cluster without faults, for a scenario.
    fn quiet(members: u64) -> Sim {
        Sim::with_schedule(0, Schedule::quiet(members), Rng::stream(0, 0), 0)
    }

    fn with_schedule(seed: u64, schedule: Schedule, mut rng: Rng, fault_steps: u64) -> Sim {
        let members = schedule.members;
        let initial: Vec<InitialMember> = (1..=members)
            .map(|id| InitialMember {
                id,
                context: format!("member-{id}").into_bytes(),
            })
            .collect();
        let members = (1..=members)
            .map(|id| {
                let (disk, recovered) =
                    MemLog::bootstrap(WalMetadata::default(), &initial).expect("bootstrap");
                let member = Member::start(id, disk, recovered, draw_tick_chance(&mut rng))
                    .expect("a new node");
                (id, member)
            })
            .collect();
        Sim {
            schedule,
            fault_steps,
            rng,
            now: 0,
            members,
            network: Network::new(seed, schedule.network),
            ledger: Ledger::default(),
            leaders: BTreeMap::new(),
            next_payload: 1,
            reads: Vec::new(),
            counts: Counts::default(),
            retired: BTreeSet::new(),
            next_member_id: schedule.members + 1,
            joining: None,
            change_in_flight: None,
            transfer_in_flight: None,
        }
    }

    /// The whole life: faults, then the quiet end and the final checks.
    fn run(&mut self) -> Result<(), String> {
        for _ in 0..self.fault_steps {
            self.step(Phase::Faulty)?;
        }
        self.counts.payloads_committed = self.ledger.payload_count() as u64;
        self.counts.network = self.network.counts;
        self.settle()
    }

    /// One step of the clock: faults, clients, leadership transfers and membership changes,
    /// snapshots, ticks, then every message due is delivered and every member processes its
    /// `Ready`s, sending what they produce; members removed a while ago stop.
    fn step(&mut self, phase: Phase) -> Result<(), String> {
        self.now += 1;
        if phase == Phase::Faulty {
            self.inject_faults()?;
            self.clients();
            self.transfer_leadership();
            self.change_membership()?;
        }
        self.snapshot();
        self.tick();
        self.deliver()?;
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.process_readies(id)?;
        }
        self.retire_removed_members();
        self.check_leaders()?;
        self.check_membership()
    }

    fn inject_faults(&mut self) -> Result<(), String> {
        let schedule = self.schedule;
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            let member = &self.members[&id];
            if !member.is_up() && self.rng.chance(schedule.restart_chance) {
                self.restart(id)?;
            }
        }
        if self.network.is_partitioned() {
            if self.rng.chance(schedule.heal_chance) {
                self.network.heal();
            }
        } else if self.rng.chance(schedule.partition_chance) {
            // A random side: either may hold a majority, or neither.
            let side: BTreeSet<u64> = self
                .members
                .keys()
                .copied()
                .filter(|_| self.rng.chance(0.5))
                .collect();
            if !side.is_empty() && side.len() < self.members.len() {
                self.network.partition(side);
                self.counts.partitions += 1;
            }
        }
        if self.rng.chance(schedule.crash_chance) {
            let mid_ready = self.rng.chance(schedule.mid_ready_share);
            let writes = self.rng.below(3) as u32;
            let up = self.up_members();
            if up.is_empty() {
                return Ok(());
            }
            let victim = self.rng.pick(&up);
            if self.keeps_majorities_up_without(victim) {
                let member = self.members.get_mut(&victim).expect("a member");
                self.counts.crashes += 1;
                match &member.life {
                    Life::Up { fate, .. } if mid_ready => {
                        // Dies in this step's `Ready`s, after `writes` more durable writes.
                        fate.set(Fate::DiesAfterWrites(writes));
                        self.counts.crashes_mid_ready += 1;
                    }
                    _ => member.crash(),
                }
            }
        }
        Ok(())
    }

    /// The members up, in ID order.
    fn up_members(&self) -> Vec<u64> {
        self.members
            .values()
            .filter(|m| m.is_up())
            .map(|m| m.id)
            .collect()
    }

    /// Whether, with `victim` down too, a majority of the voters stays up in every
    /// configuration in use: the ledger's, and that of each member up (one that has not applied
    /// the latest change yet campaigns and counts votes in the one before). So the cluster can
    /// always make progress once the network lets it. (With a fixed membership: at most a
    /// minority down.)
    fn keeps_majorities_up_without(&self, victim: u64) -> bool {
        let ledger_voters: Vec<u64> = self.ledger.membership().voters().iter().copied().collect();
        let configurations = self.members.values().filter_map(Member::voters);
        std::iter::once(ledger_voters)
            .chain(configurations)
            .all(|voters| {
                let up = voters
                    .iter()
                    .filter(|&&id| id != victim && self.members.get(&id).is_some_and(Member::is_up))
                    .count();
                voters.is_empty() || up * 2 > voters.len()
            })
    }

    /// Whether member `to` refuses messages from `from` because it applied `from`'s removal, as
    /// the transport refuses a removed member once the server marked it removed at apply.
    fn refuses_removed_sender(&self, from: u64, to: u64) -> bool {
        let removal = self.ledger.membership().removal_index(from);
        let receiver = self.members.get(&to);
        removal.is_some_and(|index| receiver.is_some_and(|m| m.state.applied_index >= index))
    }

    /// Restarts a crashed member and processes its first `Ready`; a member that was removed
    /// stops for good instead (its process would exit again, as its peers reject it).
    fn restart(&mut self, id: u64) -> Result<(), String> {
        let member = self.members.get_mut(&id).expect("a member");
        let removed = self.ledger.membership().removal_index(id).is_some();
        if member.removed_at.is_some() || removed {
            self.retire(id);
            return Ok(());
        }
        member.restart(&self.ledger)?;
        self.process_readies(id)
    }

    /// The member up that leads the latest term, if any.
    fn leader(&self) -> Option<u64> {
        self.members
            .values()
            .filter_map(|m| Some((m.leads_term()?, m.id)))
            .max()
            .map(|(_, id)| id)
    }

    /// Now and then asks the leader, or a random member (a follower forwards it to its leader),
    /// to hand leadership to a random voter of the ledger's configuration, other than the
    /// leader and the member asked.
    fn transfer_leadership(&mut self) {
        if let Some(transfer) = self.transfer_in_flight
            && self.now >= transfer.asked_at + TRANSFER_PATIENCE_STEPS
        {
            self.transfer_in_flight = None;
        }
        if !self.rng.chance(self.schedule.transfer_chance) {
            return;
        }
        let asks_the_leader = self.rng.chance(0.5);
        let leader = self.leader();
        let up = self.up_members();
        let asked = match leader {
            Some(leader) if asks_the_leader => leader,
            _ if up.is_empty() => return,
            _ => self.rng.pick(&up),
        };
        let targets: Vec<u64> = self
            .ledger
            .membership()
            .voters()
            .iter()
            .copied()
            .filter(|&id| id != asked && Some(id) != leader)
            .collect();
        if targets.is_empty() {
            return;
        }
        let to = self.rng.pick(&targets);
        let node = self
            .members
            .get_mut(&asked)
            .and_then(Member::node)
            .expect("the member asked is up");
        node.transfer_leader(to);
        self.counts.transfers_asked += 1;
        let term = node.term();
        self.transfer_in_flight = Some(TransferInFlight {
            to,
            term,
            asked_at: self.now,
        });
    }

    /// Proposes the next membership change, now and then, if none is in flight: the member
    /// joining again if its addition was lost; else the promotion of a learner, once it caught
    /// up; else a new learner or the removal of a random voter, as the bounds on voters allow.
    fn change_membership(&mut self) -> Result<(), String> {
        self.follow_change_in_flight();
        if self.change_in_flight.is_some() || !self.rng.chance(self.schedule.reconfigure_chance) {
            return Ok(());
        }
        let adds = self.rng.chance(0.5);
        let membership = self.ledger.membership();
        let voters: Vec<u64> = membership.voters().iter().copied().collect();
        let change = if let Some(joining) = self.joining {
            MembershipChange::add_learner(joining)
        } else if let Some(&learner) = membership.learners().first() {
            if !self.is_caught_up(learner) {
                return Ok(());
            }
            MembershipChange::promote(learner)
        } else {
            let can_add = voters.len() < self.schedule.voters_max;
            let can_remove = voters.len() > VOTERS_MIN;
            if can_add && (adds || !can_remove) {
                MembershipChange::add_learner(self.next_member_id)
            } else if can_remove {
                MembershipChange::remove(self.rng.pick(&voters))
            } else {
                return Ok(()); // no configuration yet
            }
        };
        // To the leader only: a conf change forwarded by a follower could be duplicated or
        // delayed by the network and commit again after later changes (re-adding a removed
        // member, say), which a real transport does not do.
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let node = self
            .members
            .get_mut(&leader)
            .and_then(Member::node)
            .expect("the leader is up");
        self.counts.conf_changes_proposed += 1;
        if node.propose_conf_change(change.to_conf_change()).is_err() {
            self.counts.conf_changes_refused += 1; // the operator would retry
            return Ok(());
        }
        self.change_in_flight = Some(ChangeInFlight {
            change,
            proposed_at: self.now,
        });
        if change == MembershipChange::add_learner(self.next_member_id) {
            // The new member starts now, as an operator starts it after `member add`.
            let id = self.next_member_id;
            self.next_member_id += 1;
            self.add_member(id)?;
            self.joining = Some(id);
        }
        Ok(())
    }

    /// Notes the change in flight done once the ledger's configuration reflects it, or given up
    /// after [`CONF_CHANGE_PATIENCE_STEPS`].
    fn follow_change_in_flight(&mut self) {
        let membership = self.ledger.membership();
        if let Some(joining) = self.joining
            && membership.contains(joining)
        {
            self.joining = None;
        }
        let Some(in_flight) = self.change_in_flight else {
            return;
        };
        if membership.reflects(in_flight.change) {
            match in_flight.change.kind {
                ChangeKind::AddLearner => self.counts.learners_added += 1,
                ChangeKind::AddVoter => self.counts.learners_promoted += 1,
                ChangeKind::Remove => self.counts.voters_removed += 1,
            }
            self.change_in_flight = None;
        } else if self.now >= in_flight.proposed_at + CONF_CHANGE_PATIENCE_STEPS {
            self.counts.conf_changes_given_up += 1;
            self.change_in_flight = None;
        }
    }

    /// Whether the leader knows `learner` holds [`LEARNER_READY_PERCENT`] of its log.
    fn is_caught_up(&self, learner: u64) -> bool {
        let matched = self
            .leader()
            .and_then(|leader| match &self.members[&leader].life {
                Life::Up { node, .. } => node.follower_match(learner),
                Life::Down { .. } => None,
            });
        matched.is_some_and(|(learner_matched, leader_matched)| {
            learner_matched * 100 >= leader_matched * LEARNER_READY_PERCENT
        })
    }

    /// Starts a member that joins the cluster: an empty log and no configuration (a bootstrap
    /// without initial members, as the server's `--initial-cluster-state existing`); it learns
    /// both from the leader.
    fn add_member(&mut self, id: u64) -> Result<(), String> {
        let (disk, recovered) = MemLog::bootstrap(WalMetadata::default(), &[])
            .map_err(|e| format!("member {id} cannot bootstrap: {e}"))?;
        let member = Member::start(id, disk, recovered, draw_tick_chance(&mut self.rng))?;
        self.members.insert(id, member);
        Ok(())
    }

    /// Check 6 (with the ledger, which refuses a change that adds back a removed member): the
    /// configuration holds only members started and not stopped, or stopped after they applied
    /// their own removal, which is then committed and not yet applied by another member.
    fn check_membership(&self) -> Result<(), String> {
        let membership = self.ledger.membership();
        let unknown = membership
            .members()
            .into_iter()
            .find(|id| !self.members.contains_key(id) && !self.retired.contains(id));
        match unknown {
            None => Ok(()),
            Some(id) => Err(format!(
                "member {id} is in the configuration at index {} ({membership:?}), but was \
                 never started",
                self.ledger.last_index()
            )),
        }
    }

    /// Stops a removed member for good: it is no longer driven, and messages to it are lost.
    fn retire(&mut self, id: u64) {
        self.members.remove(&id);
        self.retired.insert(id);
        self.counts.members_retired += 1;
    }

    /// Members that applied their own removal stop once their time is up, or at once if they
    /// crashed meanwhile.
    fn retire_removed_members(&mut self) {
        let stop_steps = self.schedule.removed_stop_steps;
        let stopping: Vec<u64> = self
            .members
            .values()
            .filter(|m| {
                m.removed_at
                    .is_some_and(|at| !m.is_up() || self.now >= at + stop_steps)
            })
            .map(|m| m.id)
            .collect();
        for id in stopping {
            self.retire(id);
        }
    }

    fn clients(&mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for _ in 0..self.rng.below(self.schedule.proposals_max + 1) {
            let target = self.rng.pick(&ids);
            let payload = self.next_payload;
            self.next_payload += 1;
            let Some(node) = self.members.get_mut(&target).and_then(Member::node) else {
                continue;
            };
            self.counts.proposals += 1;
            if node.propose(payload.to_be_bytes().to_vec()).is_err() {
                self.counts.proposals_refused += 1; // no leader: the client would retry
            }
        }
        if self.rng.chance(self.schedule.read_chance) {
            let target = self.rng.pick(&ids);
            if let Some(node) = self.members.get_mut(&target).and_then(Member::node) {
                let context = self.reads.len() as u64;
                // Everything applied anywhere was acknowledged: the read must see it.
                self.reads.push(self.ledger.last_index());
                node.read_index(context.to_be_bytes().to_vec());
            }
        }
    }

    /// Members snapshot their state machine now and then, as the apply thread does every
    /// `--snapshot-count` entries.
    fn snapshot(&mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            let snapshots = self.rng.chance(self.schedule.snapshot_chance);
            let trims = self.rng.chance(self.schedule.trim_share);
            if snapshots {
                self.snapshot_member(id, trims);
            }
        }
    }

    /// Snapshots a live member's state machine at its applied index, then (if `trims`) drops
    /// its in-memory log up to there.
    fn snapshot_member(&mut self, id: u64, trims: bool) {
        let member = self.members.get_mut(&id).expect("a member");
        let (index, term) = (member.state.applied_index, member.state.applied_term);
        let data = member.state.encode();
        let Some(node) = member.node() else { return };
        if index == 0 {
            return;
        }
        node.snapshot_and_compact(index, term, data)
            .unwrap_or_else(|e| panic!("member {id} cannot snapshot: {e}"));
        self.counts.snapshots_taken += 1;
        if trims {
            node.compact_log_memory(index)
                .unwrap_or_else(|e| panic!("member {id} cannot trim its log: {e}"));
        }
    }

    fn tick(&mut self) {
        for member in self.members.values_mut() {
            let ticks = self.rng.chance(member.tick_chance);
            if let (true, Some(node)) = (ticks, member.node()) {
                node.tick();
            }
        }
    }

    fn deliver(&mut self) -> Result<(), String> {
        let mut snapshots_arrived = Vec::new();
        for message in self.network.take_due(self.now) {
            let (from, to) = (message.from, message.to);
            if self.refuses_removed_sender(from, to) {
                // As the transport does: the sender, told it was removed, stops.
                self.network.note_lost(&message);
                if self.members.contains_key(&from) {
                    self.counts.removed_members_refused += 1;
                    self.retire(from);
                }
                continue;
            }
            let Some(node) = self.members.get_mut(&to).and_then(Member::node) else {
                self.network.note_lost(&message);
                continue; // to a crashed member: lost
            };
            if message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
                snapshots_arrived.push((message.from, to));
            }
            let description = describe(&message);
            let stepped = node.step(message);
            match stepped {
                Ok(()) => {}
                // A proposal forwarded to a member that no longer knows a leader: raft drops
                // it (the client would time out and retry). Not fatal, though `NodeError` says
                // every error is.
                Err(NodeError::Raft(raft::Error::ProposalDropped)) => {
                    self.counts.forwarded_proposals_dropped += 1;
                }
                // A response from a member this one's configuration does not hold (one removed,
                // or one added that it has not applied yet): raft refuses it, and the server's
                // driver drops it, as etcd does.
                Err(NodeError::Raft(raft::Error::StepPeerNotFound)) => {
                    self.counts.responses_from_strangers += 1;
                }
                Err(e) => return Err(format!("member {to} refused {description}: {e}")),
            }
        }
        // The sender's raft hears how each snapshot fared, as from a real transport: until it
        // does, it sends that follower nothing but heartbeats.
        let lost = std::mem::take(&mut self.network.snapshots_lost);
        let reports = lost.into_iter().map(|(from, to)| (from, to, false)).chain(
            snapshots_arrived
                .into_iter()
                .map(|(from, to)| (from, to, true)),
        );
        for (from, to, arrived) in reports {
            if let Some(node) = self.members.get_mut(&from).and_then(Member::node) {
                node.report_snapshot(to, arrived);
            }
        }
        Ok(())
    }

    /// Runs `Ready`s until the member is quiet; messages go to the network. A member armed to
    /// die does so in the middle, or at the end if it had fewer writes to do.
    fn process_readies(&mut self, id: u64) -> Result<(), String> {
        let Sim {
            members,
            network,
            ledger,
            reads,
            counts,
            now,
            ..
        } = self;
        let member = members.get_mut(&id).expect("a member");
        let Life::Up { node, fate } = &mut member.life else {
            return Ok(());
        };
        loop {
            let mut outbox: Vec<Message> = Vec::new();
            let output = node
                .process_ready(|messages| {
                    if fate.get() != Fate::Dead {
                        outbox.extend(messages);
                    }
                })
                .map_err(|e| format!("member {id}: process_ready failed: {e}"))?;
            for message in outbox {
                network.send(*now, message);
            }
            // A process that died in the middle never saw this round's output.
            let (Some(output), false) = (output, fate.get() == Fate::Dead) else {
                break;
            };
            if output.snapshot.is_some() {
                counts.snapshots_received += 1;
            }
            if apply(id, &mut member.state, ledger, *now, &output)? {
                member.removed_at.get_or_insert(*now);
            }
            if node.take_snapshot_request() && member.state.applied_index != 0 {
                // A follower needs a snapshot and none reaches the log: make one now.
                let state = &member.state;
                node.snapshot_and_compact(state.applied_index, state.applied_term, state.encode())
                    .map_err(|e| format!("member {id} cannot snapshot on request: {e}"))?;
                counts.snapshots_on_request += 1;
            }
            for read in &output.read_states {
                let context: [u8; 8] = read.request_ctx[..]
                    .try_into()
                    .map_err(|_| format!("member {id} got a read state of another context"))?;
                let context = u64::from_be_bytes(context);
                let asked_at = reads[context as usize];
                if read.index < asked_at {
                    return Err(format!(
                        "member {id} got read index {} for read {context}, asked when index \
                         {asked_at} was already applied: the read would miss acknowledged writes",
                        read.index
                    ));
                }
                counts.reads_answered += 1;
            }
        }
        if matches!(fate.get(), Fate::Dead | Fate::DiesAfterWrites(_)) {
            member.crash();
        }
        Ok(())
    }

    fn check_leaders(&mut self) -> Result<(), String> {
        for member in self.members.values_mut() {
            let Some(node) = member.node() else { continue };
            if !node.is_leader() {
                continue;
            }
            let term = node.term();
            let leader = *self.leaders.entry(term).or_insert(member.id);
            if leader != member.id {
                return Err(format!(
                    "members {leader} and {} both lead term {term}",
                    member.id
                ));
            }
            if let Some(transfer) = self.transfer_in_flight
                && term > transfer.term
            {
                if leader == transfer.to {
                    self.counts.transfers_done += 1;
                }
                self.transfer_in_flight = None;
            }
        }
        Ok(())
    }

    /// Stops every fault, restarts crashed members (a removed one stops instead), and runs until
    /// a new proposal is applied by every current member and all are at the same applied index;
    /// then checks that they hold the same state, which is everything any member ever applied,
    /// and the same configuration as the ledger. A conf change still in flight may land
    /// meanwhile: "current" is the ledger's configuration at each check.
    fn settle(&mut self) -> Result<(), String> {
        self.network.faults = NetworkFaults::default();
        self.network.heal();
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            let member = self.members.get_mut(&id).expect("a member");
            if let Life::Up { fate, .. } = &member.life
                && fate.get() != Fate::Running
            {
                member.crash(); // armed to die, with nothing left to write
            }
            if !member.is_up() {
                self.restart(id)?;
            }
        }
        let mut final_payloads = Vec::new();
        for settle_step in 1..=SETTLE_STEPS_MAX {
            self.step(Phase::Quiet)?;
            let final_index = final_payloads
                .iter()
                .find_map(|&payload| self.ledger.index_of(payload));
            if let Some(final_index) = final_index
                && self.converged(final_index)
            {
                self.counts.settle_steps_max = settle_step;
                return self.check_final_states();
            }
            // Propose to whoever leads now, and again every so often until one commits.
            if final_index.is_none() && settle_step % 20 == 1 {
                let payload = self.next_payload;
                self.next_payload += 1;
                if let Some(leader) = self.members.values_mut().find(|m| m.is_leader()) {
                    let node = leader.node().expect("a leader is up");
                    self.counts.proposals += 1;
                    if node.propose(payload.to_be_bytes().to_vec()).is_ok() {
                        final_payloads.push(payload);
                    }
                }
            }
        }
        let applied: Vec<(u64, u64)> = self
            .members
            .values()
            .map(|m| (m.id, m.state.applied_index))
            .collect();
        Err(format!(
            "liveness: {SETTLE_STEPS_MAX} steps after the faults stopped, the cluster has not \
             converged: final proposals {final_payloads:?}, (member, applied index) {applied:?}, \
             the ledger's last index {}, its configuration {:?}",
            self.ledger.last_index(),
            self.ledger.membership()
        ))
    }

    /// The members of the ledger's configuration, voters and learners, that are driven (a
    /// leader that died of its removal stays in it until another member applies that).
    fn current_members(&self) -> impl Iterator<Item = &Member> {
        let ids = self.ledger.membership().members();
        self.members
            .values()
            .filter(move |member| ids.contains(&member.id))
    }

    fn converged(&self, final_index: u64) -> bool {
        let mut applied = self.current_members().map(|m| m.state.applied_index);
        let Some(first) = applied.next() else {
            return false;
        };
        first >= final_index && applied.all(|index| index == first)
    }

    fn check_final_states(&self) -> Result<(), String> {
        let last = self.ledger.last_index();
        let membership = self.ledger.membership();
        if let Some(id) = membership
            .members()
            .into_iter()
            .find(|id| !self.members.contains_key(id))
        {
            return Err(format!(
                "member {id} stopped, but it is still in the configuration {membership:?}"
            ));
        }
        let first = &self
            .current_members()
            .next()
            .expect("converged members")
            .state;
        let voters: Vec<u64> = membership.voters().iter().copied().collect();
        for member in self.current_members() {
            if member.voters().as_ref() != Some(&voters) {
                return Err(format!(
                    "member {} ended with voters {:?}, but the applied conf changes make {voters:?}",
                    member.id,
                    member.voters()
                ));
            }
            let state = &member.state;
            if state.applied_index < last {
                return Err(format!(
                    "member {} ended at applied index {}, but index {last} was applied",
                    member.id, state.applied_index
                ));
            }
            self.ledger
                .check(state)
                .map_err(|e| format!("member {} at the end: {e}", member.id))?;
            if state != first {
                return Err(format!(
                    "member {} ended with another state machine than the first member",
                    member.id
                ));
            }
        }
        Ok(())
    }
}

// ---- Driving a quiet cluster by hand, for scenarios -------------------------------------------

impl Sim {
    fn run_steps(&mut self, steps: u64) -> Result<(), String> {
        for _ in 0..steps {
            self.step(Phase::Quiet)?;
        }
        Ok(())
    }

    /// Runs until a member leads and every live member knows it; returns the leader.
    fn elect(&mut self) -> Result<u64, String> {
        for _ in 0..1_000 {
            self.step(Phase::Quiet)?;
            let leader = self.members.values().find(|m| m.is_leader()).map(|m| m.id);
            if let Some(leader) = leader
                && self
                    .members
                    .values()
                    .all(|m| m.leader_id().is_none_or(|id| id == leader))
            {
                return Ok(leader);
            }
        }
        Err("no leader after 1,000 quiet steps".to_string())
    }

    fn follower_of(&self, leader: u64) -> u64 {
        *self
            .members
            .keys()
            .find(|&&id| id != leader)
            .expect("a follower")
    }

    /// Proposes a conf change to member `id`, which must take it.
    fn propose_change_at(&mut self, id: u64, change: MembershipChange) -> Result<(), String> {
        let node = self
            .members
            .get_mut(&id)
            .and_then(Member::node)
            .ok_or_else(|| format!("member {id} is down"))?;
        node.propose_conf_change(change.to_conf_change())
            .map_err(|e| format!("member {id} refused {change:?}: {e}"))
    }

    /// Proposes `count` new payloads to member `id`, which must take them.
    fn propose_at(&mut self, id: u64, count: u64) {
        for _ in 0..count {
            let payload = self.next_payload;
            self.next_payload += 1;
            let node = self
                .members
                .get_mut(&id)
                .and_then(Member::node)
                .expect("up");
            node.propose(payload.to_be_bytes().to_vec())
                .unwrap_or_else(|e| panic!("member {id} refused a proposal: {e}"));
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".to_string())
}

fn describe(message: &Message) -> String {
    format!(
        "{:?} {}->{} term {} index {} log term {} commit {} entries {}",
        message.get_msg_type(),
        message.from,
        message.to,
        message.term,
        message.index,
        message.log_term,
        message.commit,
        message.entries.len()
    )
}

// ---- Running seeds ---------------------------------------------------------------------------

/// One seed's failure, with the command that replays it.
struct Failure {
    seed: u64,
    fault_steps: u64,
    step: u64,
    message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps = if self.fault_steps == FAULT_STEPS {
            String::new()
        } else {
            format!("STEAD_SIM_STEPS={} ", self.fault_steps)
        };
        write!(
            f,
            "seed {} failed at step {}: {}\n    replay: STEAD_SIM_SEED={} {steps}cargo test -p \
             stead-node --test sim",
            self.seed, self.step, self.message, self.seed
        )
    }
}

/// Runs one seed; a panic in raft or the node counts as the seed's failure.
fn run_seed(seed: u64, fault_steps: u64) -> Result<Counts, Failure> {
    let mut sim = Sim::new(seed, fault_steps);
    let result = panic::catch_unwind(AssertUnwindSafe(|| sim.run()));
    let message = match result {
        Ok(Ok(())) => return Ok(sim.counts),
        Ok(Err(message)) => message,
        Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
    };
    Err(Failure {
        seed,
        fault_steps,
        step: sim.now,
        message,
    })
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let number = value
        .parse()
        .unwrap_or_else(|_| panic!("{name}={value} is not a number"));
    Some(number)
}

/// Runs `count` seeds from `first` (or replays `STEAD_SIM_SEED`, if it is of this kind) and
/// fails with each failing seed's replay command.
fn run_seeds(first: u64, count: u64) {
    let five_members = first >= FIVE_MEMBER_SEEDS_FROM;
    let fault_steps = env_u64("STEAD_SIM_STEPS").unwrap_or(FAULT_STEPS);
    let replaying = env_u64("STEAD_SIM_SEED").is_some();
    let (seeds, failures_max) = match env_u64("STEAD_SIM_SEED") {
        Some(seed) if (seed >= FIVE_MEMBER_SEEDS_FROM) == five_members => (vec![seed], 1),
        Some(_) => return, // the other test's seed
        None => {
            let count = env_u64("STEAD_SIM_SEEDS").unwrap_or(count);
            ((first..first + count).collect::<Vec<u64>>(), FAILURES_MAX)
        }
    };
    let mut failures = Vec::new();
    let mut totals = Counts::default();
    let mut passed = 0;
    for &seed in &seeds {
        match run_seed(seed, fault_steps) {
            Ok(counts) => {
                passed += 1;
                totals.add(&counts);
            }
            Err(failure) => {
                failures.push(failure.to_string());
                if failures.len() >= failures_max {
                    break;
                }
            }
        }
    }
    eprintln!("{passed} runs passed, {fault_steps} steps of faults each: {totals:#?}");
    assert!(
        failures.is_empty(),
        "{} failed run(s) (a run of seeds stops at {failures_max}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Liveness under faults, loosely, over many seeds (one seed may be mostly partitions): most
    // proposals that reached a member commit.
    assert!(
        replaying || totals.payloads_committed * 2 >= totals.proposals,
        "only {} of {} proposals committed under faults",
        totals.payloads_committed,
        totals.proposals
    );
}

//! The raft node on a simulated disk and network, in one thread: bootstrap, election,
//! commits, crashes and restarts, snapshots, and a three-member cluster.

use std::collections::{BTreeMap, VecDeque};

use raft::eraftpb::{Entry, EntryType, Message};
use stead_node::{InitialMember, MemLog, NodeConfig, RaftNode, Recovered};
use stead_wal::WalMetadata;

fn config(id: u64) -> NodeConfig {
    NodeConfig::new(id, 10, 1)
}

fn members(ids: &[u64]) -> Vec<InitialMember> {
    ids.iter()
        .map(|&id| InitialMember {
            id,
            context: format!("member-{id}").into_bytes(),
        })
        .collect()
}

/// Runs ready rounds until nothing is left; returns committed entries and messages sent.
fn drain(node: &mut RaftNode<MemLog>) -> (Vec<Entry>, Vec<Message>) {
    let mut committed = Vec::new();
    let mut sent = Vec::new();
    while let Some(output) = node
        .process_ready(|messages| sent.extend(messages))
        .unwrap()
    {
        committed.extend(output.committed);
    }
    (committed, sent)
}

fn data_of(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
        .map(|e| e.data.to_vec())
        .collect()
}

fn single_leader() -> RaftNode<MemLog> {
    let (log, recovered) = MemLog::bootstrap(WalMetadata::default(), &members(&[1])).unwrap();
    let mut node = RaftNode::new(&config(1), recovered, log).unwrap();
    let (committed, _) = drain(&mut node);
    assert_eq!(committed.len(), 1, "the bootstrap conf change");
    assert_eq!(committed[0].get_entry_type(), EntryType::EntryConfChange);
    assert_eq!(node.voters(), [1]);
    node.campaign().unwrap();
    drain(&mut node);
    assert!(node.is_leader());
    assert_eq!(node.leader_id(), 1);
    node
}

#[test]
fn a_single_member_elects_itself_and_commits_a_batch_with_one_sync() {
    let mut node = single_leader();
    let syncs_before = node.durable_log().syncs;
    for value in [b"a", b"b", b"c"] {
        node.propose(value.to_vec()).unwrap();
    }
    let (committed, sent) = drain(&mut node);
    assert!(sent.is_empty(), "a single member sends nothing");
    assert_eq!(
        data_of(&committed),
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        node.durable_log().syncs - syncs_before,
        1,
        "group commit: one fsync"
    );
    let last = committed.last().unwrap().index;
    assert_eq!(node.commit_index(), last);
}

#[test]
fn a_crash_keeps_exactly_what_was_synced_and_restart_hands_it_out_again() {
    let mut node = single_leader();
    node.propose(b"durable".to_vec()).unwrap();
    let (committed, _) = drain(&mut node);
    assert_eq!(data_of(&committed), [b"durable".to_vec()]);
    let mut log = node.into_durable_log();
    log.crash();
    let recovered = log.recover_synced();
    let mut restarted = RaftNode::new(&config(1), recovered, log).unwrap();
    let (mut replayed, _) = drain(&mut restarted);
    // What the durable commit index covers comes out at once, the conf change included.
    assert_eq!(replayed[0].get_entry_type(), EntryType::EntryConfChange);
    assert_eq!(restarted.voters(), [1]);
    // The rest of the durable log (the leader persisted it before it learnt it was committed)
    // is committed again by the new term's leader.
    restarted.campaign().unwrap();
    replayed.extend(drain(&mut restarted).0);
    assert!(restarted.is_leader());
    assert!(restarted.term() >= 3, "a new term after the restart");
    assert_eq!(data_of(&replayed), [b"durable".to_vec()]);
}

#[test]
fn after_a_snapshot_a_restart_starts_from_it() {
    let mut node = single_leader();
    for i in 0..20u32 {
        node.propose(i.to_be_bytes().to_vec()).unwrap();
    }
    let (committed, _) = drain(&mut node);
    let snapshot_index = committed[10].index;
    node.snapshot_and_compact(snapshot_index, committed[10].term, b"state".to_vec())
        .unwrap();
    node.propose(b"after".to_vec()).unwrap();
    drain(&mut node);
    let log = node.into_durable_log();
    let Recovered { snapshot, .. } = log.recover_synced();
    let snapshot = snapshot.expect("the snapshot is durable");
    assert_eq!(snapshot.get_metadata().index, snapshot_index);
    assert_eq!(snapshot.get_metadata().get_conf_state().voters, [1]);
    assert_eq!(&snapshot.data[..], b"state");
    let recovered = log.recover_synced();
    let mut restarted = RaftNode::new(&config(1), recovered, log).unwrap();
    let (mut replayed, _) = drain(&mut restarted);
    assert_eq!(restarted.voters(), [1], "conf state from the snapshot");
    restarted.campaign().unwrap();
    replayed.extend(drain(&mut restarted).0);
    assert!(
        replayed.iter().all(|e| e.index > snapshot_index),
        "nothing before the snapshot"
    );
    assert_eq!(data_of(&replayed).last().unwrap(), b"after");
}

/// Three members on a lossless simulated network, in one thread.
struct Cluster {
    nodes: BTreeMap<u64, RaftNode<MemLog>>,
    in_flight: VecDeque<Message>,
    applied: BTreeMap<u64, Vec<Entry>>,
}

impl Cluster {
    fn new(ids: &[u64]) -> Cluster {
        let mut nodes = BTreeMap::new();
        for &id in ids {
            let (log, recovered) =
                MemLog::bootstrap(WalMetadata::default(), &members(ids)).unwrap();
            nodes.insert(id, RaftNode::new(&config(id), recovered, log).unwrap());
        }
        Cluster {
            nodes,
            in_flight: VecDeque::new(),
            applied: BTreeMap::new(),
        }
    }

    /// Processes readies and delivers messages until the cluster is quiet.
    /// Ticks every node `rounds` times, settling after each: heartbeats carry the commit
    /// index to followers.
    fn heartbeat_rounds(&mut self, rounds: usize) {
        for _ in 0..rounds {
            for node in self.nodes.values_mut() {
                node.tick();
            }
            self.settle();
        }
    }

    fn settle(&mut self) {
        loop {
            let mut progressed = false;
            for (&id, node) in &mut self.nodes {
                let in_flight = &mut self.in_flight;
                while let Some(output) = node.process_ready(|m| in_flight.extend(m)).unwrap() {
                    self.applied.entry(id).or_default().extend(output.committed);
                    progressed = true;
                }
            }
            while let Some(message) = self.in_flight.pop_front() {
                self.nodes
                    .get_mut(&message.to)
                    .unwrap()
                    .step(message)
                    .unwrap();
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }

    fn tick_until_leader(&mut self) -> u64 {
        for _ in 0..1000 {
            for node in self.nodes.values_mut() {
                node.tick();
            }
            self.settle();
            if let Some((&id, _)) = self.nodes.iter().find(|(_, n)| n.is_leader()) {
                return id;
            }
        }
        panic!("no leader elected");
    }
}

#[test]
fn three_members_elect_one_leader_and_agree_on_the_log() {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let leader = cluster.tick_until_leader();
    for node in cluster.nodes.values() {
        assert_eq!(node.voters(), [1, 2, 3]);
        assert_eq!(node.leader_id(), leader);
    }
    cluster
        .nodes
        .get_mut(&leader)
        .unwrap()
        .propose(b"x".to_vec())
        .unwrap();
    // A follower's proposal is forwarded to the leader.
    let follower = *cluster.nodes.keys().find(|&&id| id != leader).unwrap();
    cluster
        .nodes
        .get_mut(&follower)
        .unwrap()
        .propose(b"y".to_vec())
        .unwrap();
    cluster.settle();
    cluster.heartbeat_rounds(3);
    let logs: Vec<Vec<Vec<u8>>> = cluster
        .applied
        .values()
        .map(|entries| data_of(entries))
        .collect();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0], [b"x".to_vec(), b"y".to_vec()]);
    assert!(logs.iter().all(|log| *log == logs[0]), "{logs:?}");
}

/// On the real WAL, with segments small enough that snapshots release some: a restart after
/// the last snapshot (without a final sync, as after a crash) starts from it.
#[test]
fn on_the_wal_a_restart_after_snapshots_and_released_segments_works() {
    use stead_node::{WalLog, WalLogOptions};
    use stead_wal::WalOptions;

    let dir = tempfile::tempdir().unwrap();
    let (wal_dir, snap_dir) = (dir.path().join("wal"), dir.path().join("snap"));
    let options = WalLogOptions {
        wal: WalOptions {
            segment_bytes_max: 4096,
        },
        snapshots_max: 2,
    };
    let metadata = WalMetadata {
        member_id: 1,
        cluster_id: 9,
    };
    let (log, recovered) =
        WalLog::bootstrap(&wal_dir, &snap_dir, metadata, &members(&[1]), options).unwrap();
    let mut node = RaftNode::new(&config(1), recovered, log).unwrap();
    let mut applied = Vec::new();
    let round = |node: &mut RaftNode<WalLog>, applied: &mut Vec<Entry>| {
        while let Some(output) = node.process_ready(|_| {}).unwrap() {
            applied.extend(output.committed);
        }
    };
    round(&mut node, &mut applied);
    node.campaign().unwrap();
    round(&mut node, &mut applied);
    assert!(node.is_leader());
    for batch in 0..10u32 {
        for i in 0..20u32 {
            node.propose(format!("entry {batch}-{i} {}", "x".repeat(64)).into_bytes())
                .unwrap();
        }
        round(&mut node, &mut applied);
        // Snapshot at what was applied, as the apply thread asks every --snapshot-count.
        let last = applied.last().unwrap();
        let (index, term) = (last.index, last.term);
        // A sole voter drops applied entries from memory first (the driver does); the snapshot
        // must not depend on them.
        node.compact_log_memory(index).unwrap();
        assert_eq!(
            node.first_log_index().unwrap(),
            index,
            "the last entry stays"
        );
        node.snapshot_and_compact(index, term, Vec::new()).unwrap();
    }
    let segments = std::fs::read_dir(&wal_dir).unwrap().count();
    assert!(segments < 10, "old segments were released: {segments} left");
    let last_applied = applied.last().unwrap().index;
    drop(node);

    let (log, recovered) = WalLog::open(&wal_dir, &snap_dir, options).unwrap();
    let snapshot = recovered
        .snapshot
        .clone()
        .expect("the newest snapshot is usable");
    assert_eq!(snapshot.get_metadata().index, last_applied);
    let mut restarted = RaftNode::new(&config(1), recovered, log).unwrap();
    let mut replayed = Vec::new();
    round(&mut restarted, &mut replayed);
    restarted.campaign().unwrap();
    round(&mut restarted, &mut replayed);
    assert!(restarted.is_leader());
    restarted.propose(b"after restart".to_vec()).unwrap();
    round(&mut restarted, &mut replayed);
    assert_eq!(data_of(&replayed).last().unwrap(), b"after restart");
}

/// `--force-new-cluster`: one member of a three-member cluster restarts alone, keeps what was
/// committed, elects itself, and commits on its own; the forced entries are durable.
#[test]
fn a_forced_new_cluster_keeps_the_committed_log_and_leaves_one_voter() {
    use stead_node::{ForcedCluster, force_new_cluster};
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let leader = cluster.tick_until_leader();
    cluster
        .nodes
        .get_mut(&leader)
        .unwrap()
        .propose(b"x".to_vec())
        .unwrap();
    cluster.settle();
    cluster.heartbeat_rounds(3);
    let survivor = *cluster.nodes.keys().find(|&&id| id != leader).unwrap();
    let mut log = cluster.nodes.remove(&survivor).unwrap().into_durable_log();
    log.crash();
    let mut recovered = log.recover_synced();
    let last_before = recovered.entries.last().unwrap().index;
    let commit_recorded = recovered.hard_state.commit;
    let own = InitialMember {
        id: survivor,
        context: Vec::new(),
    };
    let forced = force_new_cluster(&mut log, &mut recovered, &own).unwrap();
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != survivor).collect();
    assert_eq!(
        forced,
        ForcedCluster {
            commit_recorded,
            commit: last_before + 2,
            removed: others.clone(),
            added_self: false,
        }
    );
    // A crash right after: the forced entries and commit index are on disk.
    log.crash();
    let recovered = log.recover_synced();
    assert_eq!(recovered.hard_state.commit, last_before + 2);
    assert_eq!(recovered.entries.last().unwrap().index, last_before + 2);

    let mut node = RaftNode::new(&config(survivor), recovered, log).unwrap();
    let (committed, _) = drain(&mut node);
    assert_eq!(data_of(&committed), [b"x".to_vec()]);
    assert_eq!(node.voters(), [survivor]);
    for _ in 0..30 {
        if node.is_leader() {
            break;
        }
        node.tick();
        drain(&mut node);
    }
    assert!(node.is_leader(), "the only voter elects itself");
    node.propose(b"alone".to_vec()).unwrap();
    let (committed, sent) = drain(&mut node);
    assert!(sent.is_empty(), "no peers left to send to");
    assert_eq!(data_of(&committed), [b"alone".to_vec()]);
}

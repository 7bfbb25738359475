//! Multi-member clusters of real `stead` processes on loopback ports: replication through any
//! member, failover after SIGKILL or SIGSTOP of the leader, a whole-cluster restart, and a
//! follower too far behind catching up from the leader's snapshot.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, Member};
use etcd_client::{Client, GetOptions};

/// Liveness bound for anything a test waits on (never a performance assertion).
const WITHIN: Duration = Duration::from_secs(60);

/// A client of one member only.
async fn client_of(member: &Member) -> Client {
    member.client().await
}

/// The value of `key` read serializably from `member` (its own applied state).
async fn local_value(member: &Member, key: &str) -> Option<String> {
    let mut client = client_of(member).await;
    let response = client
        .get(key, Some(GetOptions::new().with_serializable()))
        .await
        .ok()?;
    response
        .kvs()
        .first()
        .map(|kv| kv.value_str().unwrap_or_default().to_owned())
}

/// Waits until `member` has applied `key = value` (liveness bound).
async fn wait_local_value(member: &Member, key: &str, value: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        if local_value(member, key).await.as_deref() == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never applied {key}={value}:\n{}",
            member.name,
            member.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_member_are_read_from_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    for (i, member) in cluster.members.iter().enumerate() {
        let mut client = client_of(member).await;
        client
            .put(format!("key{i}"), format!("from {}", member.name), None)
            .await
            .unwrap_or_else(|e| panic!("put through {}: {e}", member.name));
    }
    // A linearizable read on any member sees every acknowledged write at once.
    for member in &cluster.members {
        let mut client = client_of(member).await;
        let response = client
            .get("key", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        let got: Vec<(String, String)> = response
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap().to_owned(),
                    kv.value_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("key0".to_owned(), "from m0".to_owned()),
                ("key1".to_owned(), "from m1".to_owned()),
                ("key2".to_owned(), "from m2".to_owned()),
            ],
            "read from {}",
            member.name
        );
        // Same revision everywhere: the same log applied.
        assert_eq!(response.header().unwrap().revision(), 4, "{}", member.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_lists_every_member_with_its_client_urls() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    for member in &cluster.members {
        let mut client = client_of(member).await;
        let list = client.member_list().await.unwrap();
        let mut seen: Vec<(String, Vec<String>, Vec<String>)> = list
            .members()
            .iter()
            .map(|m| {
                (
                    m.name().to_owned(),
                    m.peer_urls().to_vec(),
                    m.client_urls().to_vec(),
                )
            })
            .collect();
        seen.sort();
        let want: Vec<(String, Vec<String>, Vec<String>)> = cluster
            .members
            .iter()
            .map(|m| (m.name.clone(), vec![m.peer_url()], vec![m.client_url()]))
            .collect();
        assert_eq!(seen, want, "member list from {}", member.name);
        // One cluster, one leader, seen alike by all.
        let status = client.status().await.unwrap();
        assert_ne!(status.leader(), 0);
    }
    let mut leaders = Vec::new();
    for member in &cluster.members {
        leaders.push(client_of(member).await.status().await.unwrap().leader());
    }
    leaders.dedup();
    assert_eq!(leaders.len(), 1, "members disagree on the leader");
}

/// An acknowledged put: key → value.
type Acknowledged = BTreeMap<String, String>;

/// Writers put through every member (a client over all endpoints each) until `stop`.
fn start_writers(
    cluster: &Cluster,
    writers: usize,
    stop: &Arc<AtomicBool>,
    acks: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Acknowledged>> {
    (0..writers)
        .map(|writer| {
            let endpoints = cluster.endpoints();
            let stop = Arc::clone(stop);
            let acks = Arc::clone(acks);
            tokio::spawn(async move {
                let mut acked = Acknowledged::new();
                let mut client = Client::connect(endpoints, None).await.expect("connect");
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("writer{writer}/key{}", i % 50);
                    let value = format!("value{i}");
                    // A failed put (the leader died under it) may or may not have happened.
                    if client.put(key.as_str(), value.as_str(), None).await.is_ok() {
                        acked.insert(key, value);
                        acks.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

async fn wait_acks(acks: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + WITHIN;
    while acks.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "writes stalled at {} acknowledged",
            acks.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every acknowledged put is what every running member reads (linearizably) for its key: a
/// writer's later put of the same key is acknowledged after its earlier one.
async fn assert_all_present(cluster: &Cluster, acked: &Acknowledged) {
    for member in cluster.members.iter().filter(|m| m.is_running()) {
        let mut client = client_of(member).await;
        let response = client
            .get("writer", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap_or_else(|e| panic!("read from {}: {e}", member.name));
        let stored: BTreeMap<String, String> = response
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap().to_owned(),
                    kv.value_str().unwrap().to_owned(),
                )
            })
            .collect();
        for (key, value) in acked {
            let got = stored.get(key);
            // A put after the last acknowledged one may have been applied unacknowledged:
            // its value's number is then higher.
            let number = |v: &str| v.trim_start_matches("value").parse::<u64>().unwrap();
            let got = got.unwrap_or_else(|| panic!("{key} lost on {}", member.name));
            assert!(
                number(got) >= number(value),
                "{key} on {}: {got}, acknowledged {value}",
                member.name
            );
        }
    }
}

/// Once every member has applied `key = value`: the same store everywhere, the same revision
/// and the same hash.
async fn assert_same_store(cluster: &Cluster, key: &str, value: &str) {
    for member in &cluster.members {
        wait_local_value(member, key, value).await;
    }
    let mut states = Vec::new();
    for member in &cluster.members {
        let mut client = client_of(member).await;
        let revision = client
            .get(key, Some(GetOptions::new().with_serializable()))
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let hash = client.hash_kv(revision).await.unwrap().hash();
        states.push((revision, hash));
    }
    states.dedup();
    assert_eq!(states.len(), 1, "members differ: {states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let old_leader = cluster.leader().await;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&cluster, 6, &stop, &acks);
    wait_acks(&acks, 300).await;
    cluster.members[old_leader].kill();
    // The others elect a leader and take writes again.
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    let after_kill = acks.load(Ordering::Relaxed);
    wait_acks(&acks, after_kill + 300).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    assert!(
        acked.len() >= 50,
        "too few keys acknowledged: {}",
        acked.len()
    );
    assert_all_present(&cluster, &acked).await;
    // The killed member restarts and catches up to the same state.
    cluster.members[old_leader].restart();
    let last_key = acked.keys().next_back().unwrap().clone();
    let mut client = client_of(&cluster.members[new_leader]).await;
    let newest = client.get(last_key.as_str(), None).await.unwrap();
    let newest = newest.kvs()[0].value_str().unwrap().to_owned();
    wait_local_value(&cluster.members[old_leader], &last_key, &newest).await;
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_and_catches_up_when_thawed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let old_leader = cluster.leader().await;
    cluster.members[old_leader].pause();
    let others: Vec<usize> = (0..3).filter(|&i| i != old_leader).collect();
    // Writes through the other two: they elect a new leader among themselves.
    let mut client = Client::connect(
        others
            .iter()
            .map(|&i| cluster.members[i].client_url())
            .collect::<Vec<_>>(),
        None,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + WITHIN;
    while client.put("during-freeze", "written", None).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "no writes without the frozen leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    cluster.members[old_leader].resume();
    // The old leader steps down (pre-vote and check-quorum keep it from disrupting) and
    // applies what it missed.
    wait_local_value(&cluster.members[old_leader], "during-freeze", "written").await;
    assert_eq!(
        cluster.leader().await,
        new_leader,
        "the thawed member took over"
    );
    let mut old = client_of(&cluster.members[old_leader]).await;
    old.put("after-thaw", "through the old leader", None)
        .await
        .unwrap();
    for member in &cluster.members {
        wait_local_value(member, "after-thaw", "through the old leader").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_restarts_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let mut client = cluster.client().await;
    for i in 0..20 {
        client
            .put(format!("k{i:02}"), format!("v{i}"), None)
            .await
            .unwrap();
    }
    drop(client);
    for member in &mut cluster.members {
        member.kill();
    }
    for member in &mut cluster.members {
        member.relaunch();
    }
    for member in &mut cluster.members {
        member.wait_ready();
    }
    for member in &cluster.members {
        let mut client = client_of(member).await;
        let response = client
            .get("k", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(response.kvs().len(), 20, "{}", member.name);
        assert_eq!(response.kvs()[19].value_str().unwrap(), "v19");
        assert_eq!(response.header().unwrap().revision(), 21, "{}", member.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_catches_up_from_the_leaders_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &["--snapshot-count", "500"]);
    let leader = cluster.leader().await;
    let behind = (leader + 1) % 3;
    cluster.members[behind].kill();
    // More entries than the leader keeps in its log after a snapshot (5,000), so the
    // follower can only catch up from a snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&cluster, 16, &stop, &acks);
    wait_acks(&acks, 7_000).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    let mut client = client_of(&cluster.members[leader]).await;
    client.put("last", "written", None).await.unwrap();
    cluster.members[behind].restart();
    wait_local_value(&cluster.members[behind], "last", "written").await;
    assert!(
        cluster.members[behind]
            .log()
            .contains("installed the leader's snapshot"),
        "caught up without a snapshot:\n{}",
        cluster.members[behind].log()
    );
    assert_all_present(&cluster, &acked).await;
    assert_same_store(&cluster, "last", "written").await;
}

/// Configures (does not start) a member joining `cluster` under `name`: `--initial-cluster`
/// lists the running members and the newcomer, with `--initial-cluster-state existing`.
fn joining_member(dir: &std::path::Path, cluster: &Cluster, name: &str) -> Member {
    let mut member = Member::configure(&dir.join(name), &["--initial-cluster-state", "existing"]);
    member.name = name.to_owned();
    member.initial_cluster = Some(initial_cluster_with(cluster, &member));
    member
}

/// `--initial-cluster` naming the running members of `cluster` and `newcomer`.
fn initial_cluster_with(cluster: &Cluster, newcomer: &Member) -> String {
    let mut initial: Vec<String> = cluster
        .members
        .iter()
        .filter(|m| m.is_running())
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect();
    initial.push(format!("{}={}", newcomer.name, newcomer.peer_url()));
    initial.join(",")
}

/// The member ID of `member` as the cluster lists it.
/// Adds a member at `peer_url`, retried while the cluster answers Unavailable: until the
/// member asked has been connected to every voter for etcd's health interval (5 s), it refuses
/// with "unhealthy cluster", as etcd does.
async fn add_member(
    client: &mut Client,
    peer_url: &str,
    options: Option<etcd_client::MemberAddOptions>,
) -> etcd_client::MemberAddResponse {
    let deadline = Instant::now() + WITHIN;
    loop {
        match client.member_add([peer_url], options.clone()).await {
            Ok(added) => return added,
            Err(err) => {
                let (code, message) = common::status_of(err);
                assert!(
                    code == tonic::Code::Unavailable && Instant::now() < deadline,
                    "member add: {code:?} {message}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Removes member `id`, retried while the cluster answers Unavailable: while it is busy (a conf
/// change proposed while raft still has one unapplied is dropped by raft and times out, as in
/// etcd) or while the member asked has not been connected to the others for etcd's health
/// interval ("unhealthy cluster", as in etcd).
async fn remove_member(client: &mut Client, id: u64) -> etcd_client::MemberRemoveResponse {
    let deadline = Instant::now() + WITHIN;
    loop {
        match client.member_remove(id).await {
            Ok(after) => return after,
            Err(err) => {
                let (code, message) = common::status_of(err);
                assert!(
                    code == tonic::Code::Unavailable && Instant::now() < deadline,
                    "member remove: {code:?} {message}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn id_of(client: &mut Client, member: &Member) -> u64 {
    let list = client.member_list().await.unwrap();
    list.members()
        .iter()
        .find(|m| m.peer_urls() == [member.peer_url()])
        .unwrap_or_else(|| panic!("{} is not listed", member.name))
        .id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_catches_up_by_snapshot_refuses_clients_and_is_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &["--snapshot-count", "500"]);
    // More than the leader keeps in its log after a snapshot: the learner needs the snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&cluster, 16, &stop, &acks);
    wait_acks(&acks, 6_000).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    let mut client = cluster.client().await;
    client.put("before-learner", "yes", None).await.unwrap();

    let mut learner = joining_member(dir.path(), &cluster, "learner");
    let added = add_member(
        &mut client,
        &learner.peer_url(),
        Some(etcd_client::MemberAddOptions::new().with_is_learner()),
    )
    .await;
    let learner_id = added.member().unwrap().id();
    assert!(added.member().unwrap().is_learner());
    // A second learner is one too many (etcd 3.4 allows one).
    let second = client
        .member_add(
            ["http://127.0.0.1:1"],
            Some(etcd_client::MemberAddOptions::new().with_is_learner()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        common::status_of(second),
        (
            tonic::Code::FailedPrecondition,
            "etcdserver: too many learner members in cluster".to_owned()
        )
    );
    learner.relaunch();
    learner.wait_ready();
    wait_local_value(&learner, "before-learner", "yes").await;
    assert!(
        learner.log().contains("installed the leader's snapshot"),
        "the learner caught up without a snapshot:\n{}",
        learner.log()
    );
    // A learner serves serializable reads only.
    let mut direct = client_of(&learner).await;
    let refused = direct.get("before-learner", None).await.unwrap_err();
    assert_eq!(
        common::status_of(refused),
        (
            tonic::Code::Unavailable,
            "etcdserver: rpc not supported for learner".to_owned()
        )
    );
    let refused = direct.put("k", "v", None).await.unwrap_err();
    assert_eq!(
        common::status_of(refused).1,
        "etcdserver: rpc not supported for learner"
    );
    // Its status says so (etcdctl's IS LEARNER column).
    assert!(direct.status().await.unwrap().is_learner());
    // Promoted once caught up (asked through a member that may not lead: it forwards).
    let deadline = Instant::now() + WITHIN;
    let promoted = loop {
        match client.member_promote(learner_id).await {
            Ok(response) => break response,
            Err(err) => {
                let (_, message) = common::status_of(err);
                assert_eq!(
                    message,
                    "etcdserver: can only promote a learner member which is in sync with leader"
                );
                assert!(Instant::now() < deadline, "never promoted");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let entry = promoted
        .members()
        .iter()
        .find(|m| m.id() == learner_id)
        .unwrap();
    assert!(!entry.is_learner());
    let again = client.member_promote(learner_id).await.unwrap_err();
    assert_eq!(
        common::status_of(again).1,
        "etcdserver: can only promote a learner member"
    );
    // Now a voter: it serves everything.
    let deadline = Instant::now() + WITHIN;
    while direct.put("through-promoted", "ok", None).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the promoted member refuses writes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!direct.status().await.unwrap().is_learner());
    let got = direct.get("before-learner", None).await.unwrap();
    assert_eq!(got.kvs()[0].value_str().unwrap(), "yes");
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_and_a_wiped_one_rejoins_as_a_new_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let mut client = cluster.client().await;
    client.put("before", "removal", None).await.unwrap();
    let leader = cluster.leader().await;
    let removed = (leader + 1) % 3;
    let removed_id = id_of(&mut client, &cluster.members[removed]).await;
    let after = remove_member(&mut client, removed_id).await;
    assert_eq!(after.members().len(), 2);
    // The removed member stops itself.
    let status = cluster.members[removed].wait_exit();
    assert!(
        cluster.members[removed]
            .log()
            .contains("the member has been permanently removed from the cluster"),
        "{status}:\n{}",
        cluster.members[removed].log()
    );
    // From here on only running members are asked (the client over every endpoint would
    // also pick the stopped one).
    let mut client = Client::connect([cluster.members[leader].client_url()], None)
        .await
        .unwrap();
    // Removing it again: not a member any more.
    let again = client.member_remove(removed_id).await.unwrap_err();
    assert_eq!(
        common::status_of(again),
        (
            tonic::Code::NotFound,
            "etcdserver: member not found".to_owned()
        )
    );
    client.put("after", "removal", None).await.unwrap();

    // Its data dir wiped, the same process comes back as a new member.
    let old = cluster.members.remove(removed);
    let peer_url = old.peer_url();
    std::fs::remove_dir_all(&old.data_dir).unwrap();
    let mut rejoined = joining_member(dir.path(), &cluster, &old.name);
    drop(old);
    let added = add_member(&mut client, &peer_url, None).await;
    assert_ne!(added.member().unwrap().id(), removed_id);
    rejoined = {
        // Same peer URL as the member added.
        let mut member = rejoined;
        member.peer_port = peer_url.rsplit(':').next().unwrap().parse().unwrap();
        member.initial_cluster = Some(initial_cluster_with(&cluster, &member));
        member
    };
    rejoined.relaunch();
    rejoined.wait_ready();
    wait_local_value(&rejoined, "after", "removal").await;
    wait_local_value(&rejoined, "before", "removal").await;
    let mut direct = client_of(&rejoined).await;
    direct.put("through-rejoined", "ok", None).await.unwrap();
    assert_eq!(client.member_list().await.unwrap().members().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_under_load_stops_it_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.leader().await;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&cluster, 6, &stop, &acks);
    wait_acks(&acks, 300).await;
    // Asked through a follower, while the leader takes writes: it applies its own removal with
    // proposals of its own in flight (raft-rs panicked there until the node stepped it down).
    let mut client = client_of(&cluster.members[(leader + 1) % 3]).await;
    let leader_id = id_of(&mut client, &cluster.members[leader]).await;
    let after = remove_member(&mut client, leader_id).await;
    assert_eq!(after.members().len(), 2);
    cluster.members[leader].wait_exit();
    let log = cluster.members[leader].log();
    assert!(
        log.contains("the member has been permanently removed from the cluster")
            && !log.contains("panicked"),
        "the removed leader did not stop cleanly:\n{log}"
    );
    // The other two elect a leader and take writes again.
    let after_removal = acks.load(Ordering::Relaxed);
    wait_acks(&acks, after_removal + 300).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_reconfig_check_refuses_changes_while_a_voter_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.leader().await;
    let (up, down) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut client = client_of(&cluster.members[leader]).await;
    let up_id = id_of(&mut client, &cluster.members[up]).await;
    let down_id = id_of(&mut client, &cluster.members[down]).await;
    cluster.members[down].kill();
    let unhealthy = (
        tonic::Code::Unavailable,
        "etcdserver: unhealthy cluster".to_owned(),
    );
    // The leader is not connected to every voter: no voter may be added (a learner may)...
    let deadline = Instant::now() + WITHIN;
    loop {
        let refused = common::status_of(
            client
                .member_add(["http://127.0.0.1:5"], None)
                .await
                .unwrap_err(),
        );
        if refused == unhealthy {
            break;
        }
        // Until the leader sees the connection to the killed member break.
        assert!(Instant::now() < deadline, "member add: {refused:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...nor a voter it is connected to removed: one connected voter besides itself would be
    // left of three.
    let refused = client.member_remove(up_id).await.unwrap_err();
    assert_eq!(common::status_of(refused), unhealthy);
    assert_eq!(client.member_list().await.unwrap().members().len(), 3);
    // The member that is down may go.
    let after = client.member_remove(down_id).await.unwrap();
    assert_eq!(after.members().len(), 2);
    // Once the two left have been connected for etcd's health interval (5 s), a voter may be
    // added again.
    let added = add_member(&mut client, "http://127.0.0.1:6", None).await;
    assert_eq!(added.member_list().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_member_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.leader().await;
    let target = (leader + 2) % 3;
    let mut on_leader = client_of(&cluster.members[leader]).await;
    let target_id = id_of(&mut on_leader, &cluster.members[target]).await;
    // Only the leader moves leadership.
    let mut on_target = client_of(&cluster.members[target]).await;
    let refused = on_target.move_leader(target_id).await.unwrap_err();
    assert_eq!(
        common::status_of(refused),
        (
            tonic::Code::FailedPrecondition,
            "etcdserver: not leader".to_owned()
        )
    );
    let unknown = on_leader.move_leader(12345).await.unwrap_err();
    assert_eq!(
        common::status_of(unknown).1,
        "etcdserver: bad leader transferee"
    );
    on_leader.move_leader(target_id).await.unwrap();
    assert_eq!(cluster.leader().await, target);
    for member in &cluster.members {
        let status = client_of(member).await.status().await.unwrap();
        assert_eq!(status.leader(), target_id, "{}", member.name);
    }
    // Writes go on under the new leader.
    on_leader.put("after-move", "ok", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_another_cluster_is_refused_by_the_peers() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    // A member started with another token thinks it belongs to a different cluster.
    let mut stale = Member::configure(
        &dir.path().join("stale"),
        &["--initial-cluster-token", "another-cluster"],
    );
    stale.name = "stale".to_owned();
    stale.initial_cluster = Some(initial_cluster_with(&cluster, &stale));
    stale.relaunch();
    let deadline = Instant::now() + WITHIN;
    while !stale.log().contains("request cluster ID mismatch") {
        assert!(
            Instant::now() < deadline,
            "the stale member was not refused:\n{}",
            stale.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The cluster is not disturbed.
    let mut client = cluster.client().await;
    client.put("still", "fine", None).await.unwrap();
    assert_eq!(client.member_list().await.unwrap().members().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_lease_renewals_and_lookups_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let mut on_follower = client_of(&cluster.members[follower]).await;
    let granted = on_follower.lease_grant(30, None).await.unwrap();
    let id = granted.id();
    on_follower
        .put(
            "leased",
            "v",
            Some(etcd_client::PutOptions::new().with_lease(id)),
        )
        .await
        .unwrap();
    let (mut keeper, mut responses) = on_follower.lease_keep_alive(id).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let renewed = responses
        .message()
        .await
        .unwrap()
        .expect("a keep-alive answer");
    assert_eq!((renewed.id(), renewed.ttl()), (id, 30));
    let ttl = on_follower
        .lease_time_to_live(
            id,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 30);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 30, "ttl {}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"leased".to_vec()]);
    // A lease the leader does not know: TTL -1, as etcd answers.
    let missing = on_follower.lease_time_to_live(12345, None).await.unwrap();
    assert_eq!(missing.ttl(), -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_answers_as_etcd_does_on_one_member() {
    let dir = tempfile::tempdir().unwrap();
    let member = Member::start(&dir.path().join("data"), &[]);
    let mut client = client_of(&member).await;
    let own_id = client.status().await.unwrap().header().unwrap().member_id();

    // MoveLeader to itself: etcd's answer is an empty message, no header.
    let moved = client.move_leader(own_id).await.unwrap();
    assert!(moved.header().is_none());

    // A learner's update stores the URLs exactly as given (etcd does not normalise them) and
    // keeps it a learner (etcd 3.4 forgot that: etcd-io/etcd#21694).
    let added = client
        .member_add(
            ["http://127.0.0.1:1"],
            Some(etcd_client::MemberAddOptions::new().with_is_learner()),
        )
        .await
        .unwrap();
    let learner_id = added.member().unwrap().id();
    let given = vec![
        " http://127.0.0.1:2".to_owned(),
        "HTTP://127.0.0.1:3".to_owned(),
    ];
    client
        .member_update(learner_id, given.clone())
        .await
        .unwrap();
    let members = client.member_list().await.unwrap();
    let learner = members
        .members()
        .iter()
        .find(|m| m.id() == learner_id)
        .unwrap();
    assert_eq!(learner.peer_urls(), &given[..]);
    assert!(learner.is_learner());

    // An unknown member: not found, as long as the started voters keep their quorum.
    let unknown = client.member_remove(0x1234).await.unwrap_err();
    assert_eq!(
        common::status_of(unknown),
        (
            tonic::Code::NotFound,
            "etcdserver: member not found".to_owned()
        )
    );
    // A voter that never starts: one started of two voters. Adding it is allowed (etcd's
    // exception for restoring a one-member cluster); then any removal but its own lacks
    // started members, and etcd's error reaches clients with code Unknown.
    client
        .member_add(["http://127.0.0.1:4"], None)
        .await
        .unwrap();
    let refused = client.member_remove(0x1234).await.unwrap_err();
    assert_eq!(
        common::status_of(refused),
        (
            tonic::Code::Unknown,
            "etcdserver: re-configuration failed due to not enough started members".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_new_cluster_restarts_a_survivor_alone_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let mut client = cluster.client().await;
    let cluster_id = client
        .status()
        .await
        .unwrap()
        .header()
        .unwrap()
        .cluster_id();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&cluster, 4, &stop, &acks);
    wait_acks(&acks, 200).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    // The survivor has applied everything (a member that missed acknowledged writes would
    // lose them: the operator picks the most up-to-date one, as with etcd).
    let last = client
        .put("last", "before the disaster", None)
        .await
        .unwrap();
    let survivor = 1;
    wait_local_value(&cluster.members[survivor], "last", "before the disaster").await;
    let survivor_id = id_of(&mut client, &cluster.members[survivor]).await;
    drop(client);
    for member in &mut cluster.members {
        member.kill();
    }

    let member = &mut cluster.members[survivor];
    member.extra_args.push("--force-new-cluster".to_owned());
    member.restart();
    assert!(
        member.log().contains("forcing restart member"),
        "{}",
        member.log()
    );
    assert_all_present(&cluster, &acked).await;
    let mut client = client_of(&cluster.members[survivor]).await;
    let members = client.member_list().await.unwrap();
    let ids: Vec<u64> = members.members().iter().map(|m| m.id()).collect();
    assert_eq!(ids, [survivor_id]);
    assert_eq!(members.header().unwrap().cluster_id(), cluster_id);
    let put = client.put("after", "alone", None).await.unwrap();
    assert!(put.header().unwrap().revision() > last.header().unwrap().revision());

    // A former member started with its old configuration is told it was removed, and stops.
    let former = 0;
    cluster.members[former].relaunch();
    let status = cluster.members[former].wait_exit();
    assert!(
        cluster.members[former]
            .log()
            .contains("the member has been permanently removed from the cluster"),
        "{status}:\n{}",
        cluster.members[former].log()
    );

    // Restarted without the flag, the survivor is still a cluster of one with its data.
    let member = &mut cluster.members[survivor];
    member.terminate();
    member.extra_args.retain(|arg| arg != "--force-new-cluster");
    member.restart();
    let mut client = client_of(&cluster.members[survivor]).await;
    assert_eq!(client.member_list().await.unwrap().members().len(), 1);
    client.put("after-restart", "alone", None).await.unwrap();
    assert_all_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_leader_requests_fail_without_a_leader_and_their_streams_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.leader().await;
    let survivor = (leader + 1) % 3;
    let url = cluster.members[survivor].client_url();
    let options = etcd_client::ConnectOptions::new().with_require_leader(true);
    let mut required = Client::connect([url.as_str()], Some(options))
        .await
        .unwrap();
    required.put("k", "v", None).await.unwrap();
    let mut events = required.watch("k", None).await.unwrap();
    let lease = required.lease_grant(60, None).await.unwrap().id();
    let (_keeper, mut renewals) = required.lease_keep_alive(lease).await.unwrap();

    // Without the other two, the survivor has no leader.
    for (i, member) in cluster.members.iter_mut().enumerate() {
        if i != survivor {
            member.kill();
        }
    }
    let mut plain = client_of(&cluster.members[survivor]).await;
    let deadline = Instant::now() + WITHIN;
    while plain.status().await.unwrap().leader() != 0 {
        assert!(Instant::now() < deadline, "the survivor kept a leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = required
        .get("k", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap_err();
    assert_eq!(
        common::status_of(refused),
        (tonic::Code::Unavailable, "etcdserver: no leader".to_owned())
    );
    // Without the metadata, a serializable read is served from local state.
    let local = plain
        .get("k", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    assert_eq!(local.kvs()[0].value(), b"v");
    // Streams opened with the metadata end after a few election timeouts without a leader.
    let ended = loop {
        match events.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch stream ended without an error"),
            Err(err) => break err,
        }
    };
    assert_eq!(
        common::status_of(ended),
        (tonic::Code::Unavailable, "etcdserver: no leader".to_owned())
    );
    let ended = loop {
        match renewals.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the keep-alive stream ended without an error"),
            Err(err) => break err,
        }
    };
    assert_eq!(
        common::status_of(ended),
        (tonic::Code::Unavailable, "etcdserver: no leader".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_saving_and_installing_the_leaders_snapshot_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &["--snapshot-count", "500"]);
    let leader = cluster.leader().await;
    let behind = (leader + 1) % 3;
    cluster.members[behind].kill();
    // Writers run throughout: past the leader's in-memory log (5,000 entries), so the follower
    // can only catch up from a snapshot, and on while it crashes and restarts.
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&cluster, 16, &stop, &acks);
    wait_acks(&acks, 7_000).await;
    // The follower crashes right after raft made the leader's snapshot durable, before its
    // backend holds it.
    let member = &mut cluster.members[behind];
    member.env = vec![(
        "STEAD_FAILPOINT".to_owned(),
        "snapshot-saved-not-installed".to_owned(),
    )];
    member.relaunch();
    let status = member.wait_exit();
    assert!(
        member.log().contains("failpoint reached"),
        "{status}:\n{}",
        member.log()
    );
    member.env.clear();
    member.restart();
    assert!(
        member
            .log()
            .contains("installing a snapshot a restart interrupted"),
        "{}",
        member.log()
    );
    let after_restart = acks.load(Ordering::Relaxed);
    wait_acks(&acks, after_restart + 500).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    let mut client = client_of(&cluster.members[leader]).await;
    client.put("last", "written", None).await.unwrap();
    assert_all_present(&cluster, &acked).await;
    assert_same_store(&cluster, "last", "written").await;
}

/// Debian's etcdctl 3.4 on a stead cluster: `ETCDCTL_API=3 etcdctl <args>`; stdout, or a
/// panic with stderr.
fn etcdctl(args: &[&str]) -> String {
    let output = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(args)
        .output()
        .expect("etcdctl (Debian's etcd-client; scripts/test installs it)");
    assert!(
        output.status.success(),
        "etcdctl {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_writes_through_one_member_and_reads_through_another() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    let endpoint = |i: usize| format!("--endpoints={}", cluster.members[i].client_url());
    assert_eq!(etcdctl(&[&endpoint(0), "put", "via-m0", "hello"]), "OK\n");
    // A linearizable read through another member sees it at once.
    assert_eq!(
        etcdctl(&[&endpoint(2), "get", "via-m0", "--print-value-only"]),
        "hello\n"
    );
    let listed = etcdctl(&[&endpoint(1), "member", "list"]);
    for member in &cluster.members {
        let line = listed
            .lines()
            .find(|line| line.contains(&format!(", {}, ", member.name)))
            .unwrap_or_else(|| panic!("{} not listed:\n{listed}", member.name));
        assert!(line.contains(", started, "), "{line}");
        assert!(line.contains(&member.client_url()), "{line}");
        assert!(line.ends_with(", false"), "{line}");
    }
    let health = etcdctl(&[
        &endpoint(0),
        "endpoint",
        "health",
        "--cluster",
        "-w",
        "json",
    ]);
    for member in &cluster.members {
        assert!(
            health.contains(&format!(
                "\"endpoint\":\"{}\",\"health\":true",
                member.client_url()
            )),
            "{health}"
        );
    }
    let all = format!("--endpoints={}", cluster.endpoints().join(","));
    let status = etcdctl(&[&all, "endpoint", "status", "-w", "json"]);
    let leaders: std::collections::BTreeSet<&str> = status
        .split("\"leader\":")
        .skip(1)
        .map(|rest| rest.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(leaders.len(), 1, "members name different leaders: {status}");
}

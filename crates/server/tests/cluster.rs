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
    // Same store everywhere: same revision and the same hash.
    for member in &cluster.members {
        wait_local_value(member, "last", "written").await;
    }
    let mut revisions = Vec::new();
    for member in &cluster.members {
        let mut client = client_of(member).await;
        let revision = client
            .get("last", Some(GetOptions::new().with_serializable()))
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let hash = client.hash_kv(revision).await.unwrap().hash();
        revisions.push((revision, hash));
    }
    revisions.dedup();
    assert_eq!(revisions.len(), 1, "members differ: {revisions:?}");
}

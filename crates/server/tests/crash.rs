//! Durability: puts race a SIGKILL; after a restart every acknowledged put is there, with its
//! value and the revision it was acknowledged at, in revision order.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Member;
use etcd_client::GetOptions;

/// An acknowledged put: key → (value, revision).
type Acknowledged = BTreeMap<String, (String, i64)>;

const WRITERS: usize = 8;

async fn load_until_killed(member: &mut Member, round: usize) -> Acknowledged {
    let stop = Arc::new(AtomicBool::new(false));
    let acks_total = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = member.client().await;
        let stop = Arc::clone(&stop);
        let acks_total = Arc::clone(&acks_total);
        writers.push(tokio::spawn(async move {
            let mut acked = Acknowledged::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Each writer overwrites its own few keys: later values must win.
                let key = format!("round{round}/writer{writer}/key{}", i % 5);
                let value = format!("value{i}");
                match client.put(key.as_str(), value.as_str(), None).await {
                    Ok(response) => {
                        let revision = response.header().map_or(0, |h| h.revision());
                        acked.insert(key, (value, revision));
                        acks_total.fetch_add(1, Ordering::Relaxed);
                    }
                    // The kill: what was not acknowledged may or may not be there.
                    Err(_) => break,
                }
                i += 1;
            }
            acked
        }));
    }
    // Let a good number of puts through, then kill the server under load.
    while acks_total.load(Ordering::Relaxed) < 400 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    member.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Acknowledged::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer task"));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_put_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut member = Member::start(&dir.path().join("data"), &["--snapshot-count", "300"]);
    let mut all = Acknowledged::new();
    for round in 0..3 {
        let acked = load_until_killed(&mut member, round).await;
        assert!(
            acked.len() >= 40,
            "round {round}: too few acknowledged puts: {}",
            acked.len()
        );
        all.extend(acked);
        member.restart();
        let mut client = member.client().await;
        let current = client
            .get("x", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        for (key, (value, revision)) in &all {
            let got = client.get(key.as_str(), None).await.unwrap();
            let kv = got
                .kvs()
                .first()
                .unwrap_or_else(|| panic!("{key} lost after a crash"));
            // A later put of the same key may have reached the log without being
            // acknowledged; the acknowledged one must still be in the history.
            assert!(kv.mod_revision() >= *revision, "{key}: went back in time");
            let at = client
                .get(
                    key.as_str(),
                    Some(GetOptions::new().with_revision(*revision)),
                )
                .await
                .unwrap();
            let kv = &at.kvs()[0];
            assert_eq!(
                kv.value_str().unwrap(),
                value,
                "{key} at revision {revision}"
            );
            assert_eq!(kv.mod_revision(), *revision, "{key}: acknowledged revision");
            assert!(*revision <= current);
        }
        // Revisions are unique: no two acknowledged puts share one.
        let mut revisions: Vec<i64> = all.values().map(|(_, revision)| *revision).collect();
        revisions.sort_unstable();
        let count = revisions.len();
        revisions.dedup();
        assert_eq!(
            revisions.len(),
            count,
            "two puts acknowledged at one revision"
        );
    }
}

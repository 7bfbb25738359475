//! The store's concurrency, recovery and lease bookkeeping, on a real backend file.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stead_backend::{Backend, BackendOptions, Bucket, ConsistentIndex};
use stead_mvcc::{
    KeyRange, KvView, Lessor, MvccError, NoLeases, RangeOptions, Store, StoreOptions,
};

fn open(dir: &tempfile::TempDir, lessor: Arc<dyn Lessor>, options: StoreOptions) -> Store {
    let backend = Backend::open(
        &dir.path().join("db"),
        BackendOptions {
            batch_interval: Duration::from_secs(3600),
            batch_limit: 50,
            ..BackendOptions::default()
        },
    )
    .expect("backend");
    Store::open(Arc::new(backend), lessor, options).expect("store")
}

fn key(i: u64) -> Bytes {
    Bytes::from(format!("k{:02}", i % KEYS))
}

const KEYS: u64 = 20;

/// Revisions present in the `key` bucket.
fn stored_revisions(store: &Store) -> Vec<i64> {
    let mut mains = Vec::new();
    store
        .backend()
        .read()
        .for_each(Bucket::Key, &[], None, |k, _| {
            mains.push(i64::from_be_bytes(k[..8].try_into().unwrap()));
            ControlFlow::Continue(())
        })
        .unwrap();
    mains
}

/// Write `t` (t = 0, 1, ...) puts key `t % KEYS` = `t` at store revision `t + 2`. A reader at
/// revision `r` must see, for each key, the last `t <= r - 2` with that key, or "compacted";
/// never a wrong value and never a corrupt-store error, however the compactor races it.
#[test]
fn reads_racing_compactions_are_right_or_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(
        &dir,
        Arc::new(NoLeases),
        StoreOptions {
            compaction_batch_limit: 2,
        },
    ));
    const WRITES: u64 = 6_000;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut checked = 0u64;
                let mut compacted = 0u64;
                let mut x: u64 = seed + 1;
                while !done.load(Ordering::Relaxed) {
                    let current = store.current_revision();
                    if current < 2 {
                        continue;
                    }
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let at = 2 + (x >> 33) as i64 % (current - 1);
                    let range = KeyRange::From(Bytes::from_static(b"k"));
                    match store
                        .read()
                        .range(&range, &RangeOptions::latest().at_revision(at))
                    {
                        Ok(result) => {
                            let newest_write = (at - 2) as u64;
                            let expected: Vec<(Bytes, Bytes)> = (0..KEYS)
                                .filter(|k| *k <= newest_write)
                                .map(|k| {
                                    let t = newest_write - (newest_write - k) % KEYS;
                                    (key(k), Bytes::from(t.to_string()))
                                })
                                .collect();
                            let got: Vec<(Bytes, Bytes)> = result
                                .kvs
                                .into_iter()
                                .map(|kv| (kv.key, kv.value))
                                .collect();
                            assert_eq!(got, expected, "at revision {at}");
                            checked += 1;
                        }
                        Err(MvccError::Compacted) => compacted += 1,
                        Err(other) => panic!("read at {at}: {other}"),
                    }
                }
                (checked, compacted)
            })
        })
        .collect();
    for t in 0..WRITES {
        let mut txn = store.write().unwrap();
        txn.put(&key(t), Bytes::from(t.to_string()), 0).unwrap();
        txn.end().unwrap();
        if t % 31 == 30 {
            store.compact(t as i64 - 8, None).unwrap();
        }
    }
    done.store(true, Ordering::Relaxed);
    let mut checked = 0;
    for reader in readers {
        let (ok, _compacted) = reader.join().expect("reader panicked");
        checked += ok;
    }
    assert!(checked > 0, "the readers must have checked something");
    assert_eq!(store.current_revision(), WRITES as i64 + 1);
}

#[test]
fn an_interrupted_compaction_resumes_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let slow = StoreOptions {
        compaction_batch_limit: 1,
    };
    {
        let store = open(&dir, Arc::new(NoLeases), slow.clone());
        for t in 0..200u64 {
            let mut txn = store.write().unwrap();
            txn.put(&key(t), Bytes::from(t.to_string()), 0).unwrap();
            txn.end().unwrap();
        }
        store.backend().commit().unwrap();
    }
    {
        // What a crash right after a compaction was scheduled leaves: the scheduled revision in
        // meta, nothing removed yet.
        let backend = Backend::open(&dir.path().join("db"), BackendOptions::default()).unwrap();
        let mut scheduled = 150i64.to_be_bytes().to_vec();
        scheduled.push(b'_');
        scheduled.extend_from_slice(&0i64.to_be_bytes());
        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Meta, &b"scheduledCompactRev"[..], scheduled);
        batch.end().unwrap();
        backend.commit().unwrap();
    }
    let store = open(&dir, Arc::new(NoLeases), slow);
    assert_eq!(
        store.compact_revision(),
        150,
        "the scheduled compaction is in force"
    );
    assert!(matches!(
        store.read().range(
            &KeyRange::Single(key(0)),
            &RangeOptions::latest().at_revision(149)
        ),
        Err(MvccError::Compacted)
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let finished = store
            .backend()
            .read()
            .get(Bucket::Meta, b"finishedCompactRev")
            .unwrap();
        if finished.is_some_and(|f| f[..8] == 150i64.to_be_bytes()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed compaction never finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Below the compaction only the newest revision of each key remains: t in 129..=148
    // (revisions 131..=150).
    let below: BTreeSet<i64> = stored_revisions(&store)
        .into_iter()
        .filter(|&main| main <= 150)
        .collect();
    assert_eq!(below, (131..=150).collect::<BTreeSet<i64>>());
    let all = store
        .read()
        .range(
            &KeyRange::From(Bytes::from_static(b"k")),
            &RangeOptions::latest(),
        )
        .unwrap();
    assert_eq!(all.kvs.len() as u64, KEYS);
    assert_eq!(all.kvs[0].value, Bytes::from("180"));
}

/// A lessor that records attachments.
#[derive(Default)]
struct RecordingLessor {
    attached: Mutex<BTreeSet<(i64, Vec<u8>)>>,
}

impl Lessor for RecordingLessor {
    fn exists(&self, lease: i64) -> bool {
        lease == 7 || lease == 8
    }
    fn lease_of(&self, key: &[u8]) -> i64 {
        let attached = self.attached.lock().unwrap();
        attached
            .iter()
            .find(|(_, k)| k == key)
            .map_or(0, |(lease, _)| *lease)
    }
    fn attach(&self, lease: i64, key: &[u8]) {
        self.attached.lock().unwrap().insert((lease, key.to_vec()));
    }
    fn detach(&self, lease: i64, key: &[u8]) {
        self.attached.lock().unwrap().remove(&(lease, key.to_vec()));
    }
}

#[test]
fn leased_keys_are_attached_detached_and_reattached_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let lessor = Arc::new(RecordingLessor::default());
    let attached = |lessor: &RecordingLessor| -> Vec<(i64, String)> {
        lessor
            .attached
            .lock()
            .unwrap()
            .iter()
            .map(|(l, k)| (*l, String::from_utf8(k.clone()).unwrap()))
            .collect()
    };
    {
        let store = open(&dir, lessor.clone(), StoreOptions::default());
        let mut txn = store.write().unwrap();
        txn.put(b"a", Bytes::from_static(b"1"), 7).unwrap();
        txn.put(b"b", Bytes::from_static(b"1"), 7).unwrap();
        txn.put(b"c", Bytes::from_static(b"1"), 8).unwrap();
        txn.put(b"d", Bytes::from_static(b"1"), 0).unwrap();
        txn.end().unwrap();
        let mut txn = store.write().unwrap();
        txn.put(b"a", Bytes::from_static(b"2"), 8).unwrap(); // moves to lease 8
        txn.put(b"b", Bytes::from_static(b"2"), 0).unwrap(); // leaves its lease
        txn.delete_range(&KeyRange::Single(Bytes::from_static(b"c")))
            .unwrap();
        txn.end().unwrap();
        assert_eq!(attached(&lessor), [(8, "a".to_owned())]);
        store.backend().commit().unwrap();
    }
    let reopened = Arc::new(RecordingLessor::default());
    let _store = open(&dir, reopened.clone(), StoreOptions::default());
    assert_eq!(attached(&reopened), [(8, "a".to_owned())]);
}

#[test]
fn a_crash_between_commits_reopens_at_the_committed_consistent_index_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let backend_options = BackendOptions {
        batch_interval: Duration::from_secs(3600),
        batch_limit: 1_000_000,
        ..BackendOptions::default()
    };
    let open_store = || {
        let backend = Backend::open(&dir.path().join("db"), backend_options.clone()).unwrap();
        Store::open(
            Arc::new(backend),
            Arc::new(NoLeases),
            StoreOptions::default(),
        )
        .unwrap()
    };
    {
        let store = open_store();
        for index in 1..=10u64 {
            let mut txn = store.write().unwrap();
            txn.put(b"k", Bytes::from(index.to_string()), 0).unwrap();
            txn.set_consistent_index(ConsistentIndex { index, term: 1 })
                .unwrap();
            txn.end().unwrap();
        }
        store.backend().commit().unwrap();
        for index in 11..=15u64 {
            let mut txn = store.write().unwrap();
            txn.put(b"k", Bytes::from(index.to_string()), 0).unwrap();
            txn.set_consistent_index(ConsistentIndex { index, term: 2 })
                .unwrap();
            txn.end().unwrap();
        }
        assert_eq!(store.current_revision(), 16);
    }
    let store = open_store();
    assert_eq!(
        store.backend().consistent_index().unwrap(),
        ConsistentIndex { index: 10, term: 1 }
    );
    assert_eq!(
        store.current_revision(),
        11,
        "revision of the last committed write"
    );
    let got = store
        .read()
        .range(
            &KeyRange::Single(Bytes::from_static(b"k")),
            &RangeOptions::latest(),
        )
        .unwrap();
    assert_eq!(got.kvs[0].value, Bytes::from("10"));
    assert_eq!(got.kvs[0].version, 10);
    // Replaying entries 11.. (what the server does from the WAL) continues seamlessly.
    let mut txn = store.write().unwrap();
    let revision = txn.put(b"k", Bytes::from_static(b"11"), 0).unwrap();
    txn.end().unwrap();
    assert_eq!(revision, 12);
}

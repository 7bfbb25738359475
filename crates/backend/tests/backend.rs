//! Backend tests against a real redb file in a temporary directory.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use stead_backend::{Backend, BackendError, BackendOptions, Bucket, ConsistentIndex, ReadTx};

/// Options under which only explicit commits and the batch limit commit: the background
/// committer's interval is longer than any test.
fn manual_commits() -> BackendOptions {
    BackendOptions {
        batch_interval: Duration::from_secs(3600),
        ..BackendOptions::default()
    }
}

fn db_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("member").join("snap").join("db")
}

fn get(read: &ReadTx, bucket: Bucket, key: &str) -> Option<String> {
    read.get(bucket, key.as_bytes())
        .expect("get")
        .map(|v| String::from_utf8(v.to_vec()).expect("utf8"))
}

fn collect(
    read: &ReadTx,
    bucket: Bucket,
    start: &[u8],
    end: Option<&[u8]>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    read.for_each(bucket, start, end, |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        ControlFlow::Continue(())
    })
    .expect("for_each");
    out
}

#[test]
fn writes_are_visible_before_and_after_commit_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let backend = Backend::open(&path, manual_commits()).unwrap();
        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Key, "a", "1");
        batch.put(Bucket::Lease, "a", "lease-a");
        batch.end().unwrap();
        let read = backend.read();
        assert_eq!(get(&read, Bucket::Key, "a").as_deref(), Some("1"));
        assert_eq!(get(&read, Bucket::Lease, "a").as_deref(), Some("lease-a"));
        assert_eq!(get(&read, Bucket::Auth, "a"), None, "buckets are separate");

        backend.commit().unwrap();
        // The view taken before the commit still sees the write; a new one too.
        assert_eq!(get(&read, Bucket::Key, "a").as_deref(), Some("1"));
        assert_eq!(get(&backend.read(), Bucket::Key, "a").as_deref(), Some("1"));

        let mut batch = backend.batch().unwrap();
        batch.delete(Bucket::Key, "a");
        batch.end().unwrap();
        assert_eq!(
            get(&backend.read(), Bucket::Key, "a"),
            None,
            "uncommitted delete hides"
        );
        assert_eq!(
            get(&read, Bucket::Key, "a").as_deref(),
            Some("1"),
            "old view unchanged"
        );
        backend.commit().unwrap();
    }
    let backend = Backend::open(&path, manual_commits()).unwrap();
    let read = backend.read();
    assert_eq!(get(&read, Bucket::Key, "a"), None);
    assert_eq!(get(&read, Bucket::Lease, "a").as_deref(), Some("lease-a"));
}

#[test]
fn crash_between_batch_commits_recovers_last_committed_consistent_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let backend = Backend::open(&path, manual_commits()).unwrap();
        assert_eq!(
            backend.consistent_index().unwrap(),
            ConsistentIndex::default()
        );
        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Key, "committed", "yes");
        batch.set_consistent_index(ConsistentIndex { index: 10, term: 2 });
        batch.end().unwrap();
        backend.commit().unwrap();

        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Key, "uncommitted", "lost");
        batch.set_consistent_index(ConsistentIndex { index: 20, term: 3 });
        batch.end().unwrap();
        // Applied state is visible before the crash ...
        assert_eq!(
            backend.consistent_index().unwrap(),
            ConsistentIndex { index: 20, term: 3 }
        );
        // ... and the crash: dropped without a commit.
    }
    let backend = Backend::open(&path, manual_commits()).unwrap();
    assert_eq!(
        backend.consistent_index().unwrap(),
        ConsistentIndex { index: 10, term: 2 },
        "the consistent index is the one committed with the data"
    );
    let read = backend.read();
    assert_eq!(get(&read, Bucket::Key, "committed").as_deref(), Some("yes"));
    assert_eq!(get(&read, Bucket::Key, "uncommitted"), None);
}

/// Waits (liveness, not speed) until the committer made `commits` commits.
fn wait_for_commits(backend: &Backend, commits: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.commits() < commits {
        assert!(Instant::now() < deadline, "the committer never committed");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_full_batch_is_committed_by_the_committer() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let backend = Backend::open(
            &path,
            BackendOptions {
                batch_limit: 5,
                ..manual_commits()
            },
        )
        .unwrap();
        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Key, "k1", "v");
        batch.put(Bucket::Key, "k2", "v");
        batch.end().unwrap();
        // Rewriting a key already in the batch adds nothing to commit.
        for index in 1..=10 {
            let mut batch = backend.batch().unwrap();
            batch.set_consistent_index(ConsistentIndex { index, term: 1 });
            batch.end().unwrap();
        }
        // k1, k2, consistent_index, term: 4 distinct keys (counting every write: 22).
        assert_eq!(backend.commits(), 0, "below the limit of 5 distinct keys");
        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Key, "k3", "v");
        batch.set_consistent_index(ConsistentIndex { index: 11, term: 1 });
        batch.end().unwrap();
        wait_for_commits(&backend, 1);
        // Below the limit again: not committed.
        let mut batch = backend.batch().unwrap();
        batch.put(Bucket::Key, "k4", "v");
        batch.end().unwrap();
    }
    let backend = Backend::open(&path, manual_commits()).unwrap();
    let read = backend.read();
    assert_eq!(get(&read, Bucket::Key, "k3").as_deref(), Some("v"));
    assert_eq!(get(&read, Bucket::Key, "k4"), None);
    assert_eq!(backend.consistent_index().unwrap().index, 11);
}

#[test]
fn a_batch_far_over_the_limit_is_committed_by_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::open(
        &db_path(&dir),
        BackendOptions {
            batch_limit: 2,
            ..manual_commits()
        },
    )
    .unwrap();
    // Eight distinct keys in one writer hold: four times the limit.
    let mut batch = backend.batch().unwrap();
    for i in 0..8u8 {
        batch.put(Bucket::Key, vec![i], "v");
    }
    batch.end().unwrap();
    assert!(backend.commits() >= 1, "committed before end() returned");
}

#[test]
fn the_committer_commits_on_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let backend = Backend::open(
            &path,
            BackendOptions {
                batch_interval: Duration::from_millis(10),
                ..BackendOptions::default()
            },
        )
        .unwrap();
        let commits_before = backend.commits();
        let mut batch = backend.batch().unwrap();
        for i in 0..2_000u32 {
            batch.put(Bucket::Key, i.to_be_bytes().to_vec(), vec![7u8; 100]);
        }
        batch.set_consistent_index(ConsistentIndex { index: 3, term: 1 });
        batch.end().unwrap();
        // Liveness, not speed: the committer must get to it eventually.
        let deadline = Instant::now() + Duration::from_secs(30);
        while backend.commits() == commits_before {
            assert!(Instant::now() < deadline, "the committer never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let backend = Backend::open(&path, manual_commits()).unwrap();
    assert_eq!(backend.consistent_index().unwrap().index, 3);
    assert_eq!(
        backend
            .read()
            .get(Bucket::Key, &1999u32.to_be_bytes())
            .unwrap()
            .as_deref(),
        Some(&[7u8; 100][..])
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Backend::open(&path, manual_commits())
        .err()
        .expect("must refuse");
    assert!(matches!(err, BackendError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is not overwritten"
    );
}

#[test]
fn a_database_of_another_storage_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(Backend::open(&path, manual_commits()).unwrap());
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
                .unwrap();
            meta.insert(&b"stead_storage_format"[..], &b"999"[..])
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Backend::open(&path, manual_commits())
        .err()
        .expect("must refuse");
    assert!(
        matches!(&err, BackendError::IncompatibleFormat { found, .. } if found == "999"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn for_each_stops_when_asked_and_honours_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::open(&db_path(&dir), manual_commits()).unwrap();
    let mut batch = backend.batch().unwrap();
    for key in ["a", "b", "c", "d"] {
        batch.put(Bucket::Key, key, key);
    }
    batch.end().unwrap();
    backend.commit().unwrap();
    let mut batch = backend.batch().unwrap();
    batch.put(Bucket::Key, "bb", "bb");
    batch.delete(Bucket::Key, "c");
    batch.end().unwrap();

    let read = backend.read();
    let keys = |start: &[u8], end: Option<&[u8]>| -> Vec<String> {
        collect(&read, Bucket::Key, start, end)
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    assert_eq!(keys(b"", None), ["a", "b", "bb", "d"]);
    assert_eq!(keys(b"b", Some(b"d")), ["b", "bb"]);
    assert_eq!(
        keys(b"c", Some(b"b")),
        Vec::<String>::new(),
        "end before start is empty"
    );
    let mut seen = Vec::new();
    read.for_each(Bucket::Key, b"", None, |k, _| {
        seen.push(k.to_vec());
        if seen.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(seen, [b"a".to_vec(), b"b".to_vec()]);
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Commit,
    Check(u8, Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..32u8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0..32u8).prop_map(Op::Delete),
        1 => Just(Op::Commit),
        2 => (0..32u8, proptest::option::of(0..33u8)).prop_map(|(s, e)| Op::Check(s, e)),
    ]
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Views merge the open batch over committed data exactly like a plain ordered map, across
    /// any interleaving of writes and commits, and survive a reopen after a final commit.
    #[test]
    fn views_match_a_model(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let check = |read: &ReadTx, model: &BTreeMap<Vec<u8>, Vec<u8>>, start: u8, end: Option<u8>| {
            let (start, end) = (key(start), end.map(key));
            let got = collect(read, Bucket::Key, &start, end.as_deref());
            let want: Vec<(Vec<u8>, Vec<u8>)> = model
                .iter()
                .filter(|(k, _)| **k >= start && end.as_ref().is_none_or(|e| *k < e))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(got, want);
            for k in 0..32u8 {
                prop_assert_eq!(read.get(Bucket::Key, &key(k)).unwrap().map(|v| v.to_vec()), model.get(&key(k)).cloned());
            }
            Ok(())
        };
        {
            let backend = Backend::open(&path, manual_commits()).unwrap();
            for op in &ops {
                match *op {
                    Op::Put(k, v) => {
                        let mut batch = backend.batch().unwrap();
                        batch.put(Bucket::Key, key(k), vec![v]);
                        batch.end().unwrap();
                        model.insert(key(k), vec![v]);
                    }
                    Op::Delete(k) => {
                        let mut batch = backend.batch().unwrap();
                        batch.delete(Bucket::Key, key(k));
                        batch.end().unwrap();
                        model.remove(&key(k));
                    }
                    Op::Commit => backend.commit().unwrap(),
                    Op::Check(s, e) => check(&backend.read(), &model, s, e)?,
                }
            }
            backend.commit().unwrap();
        }
        let backend = Backend::open(&path, manual_commits()).unwrap();
        check(&backend.read(), &model, 0, None)?;
    }
}

#[test]
fn sizes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let backend = Backend::open(
        &path,
        BackendOptions {
            // Recount at every commit.
            size_in_use_refresh: Duration::ZERO,
            ..manual_commits()
        },
    )
    .unwrap();
    let mut batch = backend.batch().unwrap();
    for i in 0..10_000u32 {
        batch.put(Bucket::Key, i.to_be_bytes().to_vec(), vec![1u8; 200]);
    }
    batch.end().unwrap();
    backend.commit().unwrap();
    let file_len = std::fs::metadata(Path::new(&path)).unwrap().len();
    assert_eq!(backend.size_bytes(), file_len);
    assert!(
        backend.size_in_use_bytes() >= 10_000 * 200,
        "{}",
        backend.size_in_use_bytes()
    );
    assert!(backend.size_in_use_bytes() <= backend.size_bytes());
    let _: Bytes = backend
        .read()
        .get(Bucket::Key, &5u32.to_be_bytes())
        .unwrap()
        .unwrap();
}

fn everything(read: &ReadTx) -> Vec<(Bucket, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for bucket in Bucket::ALL {
        for (key, value) in collect(read, bucket, &[], None) {
            out.push((bucket, key, value));
        }
    }
    out
}

#[test]
fn a_dump_restored_elsewhere_replaces_everything_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Backend::open(&dir.path().join("a"), manual_commits()).expect("open");
    let mut batch = source.batch().expect("batch");
    batch.put(Bucket::Key, "k1", "v1");
    batch.put(Bucket::Members, "m", "member");
    batch.set_consistent_index(ConsistentIndex { index: 7, term: 2 });
    batch.end().expect("end");
    source.commit().expect("commit");
    // Applied but not committed yet: a dump still holds it.
    let mut batch = source.batch().expect("batch");
    batch.put(Bucket::Key, "k2", vec![0u8, 255, 3]);
    batch.set_consistent_index(ConsistentIndex { index: 8, term: 2 });
    batch.end().expect("end");
    let mut dump = Vec::new();
    let stats = source.read().dump(&mut dump).expect("dump");
    assert_eq!(stats.bytes, dump.len() as u64);

    let target = Backend::open(&dir.path().join("b"), manual_commits()).expect("open");
    let mut batch = target.batch().expect("batch");
    batch.put(Bucket::Key, "stale", "gone after restore");
    batch.put(Bucket::Lease, "l", "gone too");
    batch.end().expect("end");
    let restored = target.restore_dump(&mut dump.as_slice()).expect("restore");
    assert_eq!(restored, ConsistentIndex { index: 8, term: 2 });
    assert_eq!(everything(&target.read()), everything(&source.read()));
    assert_eq!(get(&target.read(), Bucket::Key, "stale"), None);
    // Durable: a reopen finds the same.
    let want = everything(&source.read());
    drop(target);
    let reopened = Backend::open(&dir.path().join("b"), manual_commits()).expect("reopen");
    assert_eq!(everything(&reopened.read()), want);
}

#[test]
fn a_malformed_dump_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Backend::open(&dir.path().join("a"), manual_commits()).expect("open");
    let mut batch = source.batch().expect("batch");
    batch.put(Bucket::Key, "k1", "v1");
    batch.set_consistent_index(ConsistentIndex { index: 3, term: 1 });
    batch.end().expect("end");
    let mut dump = Vec::new();
    source.read().dump(&mut dump).expect("dump");
    let target = Backend::open(&dir.path().join("b"), manual_commits()).expect("open");
    let mut batch = target.batch().expect("batch");
    batch.put(Bucket::Key, "mine", "kept");
    batch.end().expect("end");
    target.commit().expect("commit");
    for bad in [
        dump[..dump.len() - 1].to_vec(), // cut before the end marker
        [b"NOTADUMP".as_slice(), &dump[8..]].concat(), // wrong magic
        {
            let mut unknown_bucket = dump.clone();
            unknown_bucket[8] = 200;
            unknown_bucket
        },
    ] {
        let err = target
            .restore_dump(&mut bad.as_slice())
            .expect_err("malformed");
        assert!(matches!(err, BackendError::Dump(_)), "{err}");
        assert_eq!(
            get(&target.read(), Bucket::Key, "mine").as_deref(),
            Some("kept")
        );
        assert_eq!(get(&target.read(), Bucket::Key, "k1"), None);
    }
}

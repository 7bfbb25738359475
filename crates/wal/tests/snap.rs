//! The snapshotter: save and load, skipping (and setting aside) broken files, matching the WAL's
//! markers, and purging old files.

use std::fs;
use std::path::Path;

use raft::eraftpb::{ConfState, Snapshot, SnapshotMetadata};
use stead_wal::{SnapshotMarker, Snapshotter, WalError};

fn snapshot(term: u64, index: u64, data: &[u8]) -> Snapshot {
    let conf_state = ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    };
    let metadata = SnapshotMetadata {
        term,
        index,
        conf_state: Some(conf_state).into(),
        ..SnapshotMetadata::default()
    };
    Snapshot {
        data: data.to_vec().into(),
        metadata: Some(metadata).into(),
        ..Snapshot::default()
    }
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn save_load_newest_and_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("member").join("snap");
    let snapshotter = Snapshotter::new(&dir).unwrap();
    assert_eq!(snapshotter.load_newest().unwrap(), None);

    for (term, index) in [
        (1, 10),
        (1, 20),
        (2, 30),
        (2, 40),
        (3, 50),
        (3, 60),
        (4, 70),
    ] {
        snapshotter
            .save(&snapshot(
                term,
                index,
                format!("state at {index}").as_bytes(),
            ))
            .unwrap();
    }
    assert!(file_names(&dir).contains(&"0000000000000004-0000000000000046.snap".to_owned()));
    let newest = snapshotter.load_newest().unwrap().unwrap();
    assert_eq!(newest, snapshot(4, 70, b"state at 70"));
    assert_eq!(newest.get_metadata().get_conf_state().voters, vec![1, 2, 3]);

    assert_eq!(snapshotter.purge(5).unwrap(), 2);
    assert_eq!(
        file_names(&dir),
        vec![
            "0000000000000002-000000000000001e.snap",
            "0000000000000002-0000000000000028.snap",
            "0000000000000003-0000000000000032.snap",
            "0000000000000003-000000000000003c.snap",
            "0000000000000004-0000000000000046.snap",
        ]
    );
    assert_eq!(snapshotter.purge(5).unwrap(), 0);
    assert_eq!(snapshotter.purge(1).unwrap(), 4);
    assert_eq!(
        file_names(&dir),
        vec!["0000000000000004-0000000000000046.snap"]
    );

    let error = snapshotter.save(&Snapshot::default()).unwrap_err();
    assert!(matches!(error, WalError::EmptySnapshot), "{error:?}");
    assert_eq!(error.to_string(), "snap: empty snapshot");
}

#[test]
fn broken_newest_is_set_aside_and_the_older_one_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let snapshotter = Snapshotter::new(&dir).unwrap();
    snapshotter.save(&snapshot(1, 10, b"older")).unwrap();
    snapshotter.save(&snapshot(2, 20, b"newer")).unwrap();
    snapshotter.save(&snapshot(2, 30, b"newest")).unwrap();

    // Newest: a flipped byte in the snapshot data, still valid protobuf with the right
    // metadata, so only the CRC can tell. Next: truncated.
    let newest = dir.join("0000000000000002-000000000000001e.snap");
    let mut bytes = fs::read(&newest).unwrap();
    let at = bytes
        .windows(6)
        .position(|window| window == b"newest")
        .unwrap();
    bytes[at] ^= 0x20;
    fs::write(&newest, &bytes).unwrap();
    let newer = dir.join("0000000000000002-0000000000000014.snap");
    let bytes = fs::read(&newer).unwrap();
    fs::write(&newer, &bytes[..bytes.len() - 3]).unwrap();

    let loaded = snapshotter.load_newest().unwrap().unwrap();
    assert_eq!(loaded, snapshot(1, 10, b"older"));
    assert_eq!(
        file_names(&dir),
        vec![
            "0000000000000001-000000000000000a.snap",
            "0000000000000002-0000000000000014.snap.broken",
            "0000000000000002-000000000000001e.snap.broken",
        ]
    );
    // A file whose contents do not match its name is broken too.
    fs::copy(
        dir.join("0000000000000001-000000000000000a.snap"),
        dir.join("0000000000000005-0000000000000063.snap"),
    )
    .unwrap();
    assert_eq!(
        snapshotter.load_newest().unwrap().unwrap(),
        snapshot(1, 10, b"older")
    );
    assert!(
        dir.join("0000000000000005-0000000000000063.snap.broken")
            .exists()
    );

    // Nothing left that verifies.
    fs::write(dir.join("0000000000000001-000000000000000a.snap"), b"junk").unwrap();
    assert_eq!(snapshotter.load_newest().unwrap(), None);
}

#[test]
fn load_newest_available_matches_wal_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let snapshotter = Snapshotter::new(&dir).unwrap();
    snapshotter.save(&snapshot(1, 10, b"ten")).unwrap();
    snapshotter.save(&snapshot(2, 20, b"twenty")).unwrap();
    snapshotter.save(&snapshot(3, 30, b"thirty")).unwrap();

    let marker = |index, term| SnapshotMarker { index, term };
    // 30 is not in the WAL (its marker was torn away, say): 20 is the newest usable.
    let loaded = snapshotter
        .load_newest_available(&[marker(0, 0), marker(10, 1), marker(20, 2)])
        .unwrap();
    assert_eq!(loaded, Some(snapshot(2, 20, b"twenty")));
    // Same index, other term: no match.
    assert_eq!(
        snapshotter.load_newest_available(&[marker(20, 3)]).unwrap(),
        None
    );
    assert_eq!(snapshotter.load_newest_available(&[]).unwrap(), None);
    assert_eq!(
        snapshotter
            .load_newest_available(&[marker(30, 3), marker(10, 1)])
            .unwrap(),
        Some(snapshot(3, 30, b"thirty"))
    );
}

#[test]
fn half_written_files_are_removed_on_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("0000000000000001-000000000000000a.snap.tmp"),
        b"partial",
    )
    .unwrap();
    fs::write(dir.join("unrelated.txt"), b"keep").unwrap();
    let snapshotter = Snapshotter::new(&dir).unwrap();
    assert_eq!(file_names(&dir), vec!["unrelated.txt"]);
    assert_eq!(snapshotter.load_newest().unwrap(), None);
}

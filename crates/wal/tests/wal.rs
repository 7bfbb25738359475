//! End-to-end behaviour of an undamaged WAL: round trips, overwrites, segment rollover and
//! release, starting from snapshot markers, and misuse errors.

mod common;

use std::fs;

use common::*;
use raft::eraftpb::EntryType;
use stead_wal::{SnapshotMarker, Wal, WalError, WalMetadata, WalOptions};

const METADATA: WalMetadata = WalMetadata {
    member_id: 0x1111,
    cluster_id: 0x2222,
};

fn small(segment_bytes_max: u64) -> WalOptions {
    WalOptions { segment_bytes_max }
}

#[test]
fn round_trip_metadata_entries_hard_states_and_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("member").join("wal");
    assert!(!Wal::exists(&dir));

    let first = vec![
        entry_full(1, 1, EntryType::EntryNormal, b"put a=1", b"ctx-1"),
        entry_full(2, 1, EntryType::EntryConfChange, b"\x08\x01conf", b""),
        entry_full(3, 1, EntryType::EntryConfChangeV2, b"", b"only context"),
    ];
    let second = vec![entry(4, 2, b"four"), entry(5, 2, &[0u8; 300])];
    {
        let mut wal = Wal::create(&dir, METADATA, WalOptions::default()).unwrap();
        assert_eq!(wal.metadata(), METADATA);
        assert_eq!(wal.last_index(), 0);
        wal.append(Some(&hard_state(1, 7, 1)), &first).unwrap();
        wal.append(Some(&hard_state(2, 7, 4)), &second).unwrap();
        wal.sync().unwrap();
        wal.append_snapshot_marker(SnapshotMarker { index: 3, term: 1 })
            .unwrap();
        assert_eq!(wal.last_index(), 5);
    }
    assert!(Wal::exists(&dir));
    assert!(
        !dir.with_file_name("wal.tmp").exists(),
        "the build directory is renamed away"
    );
    let segments = segment_paths(&dir);
    assert_eq!(segments.len(), 1);
    assert_eq!(
        segments[0].file_name().unwrap(),
        "0000000000000000-0000000000000000.wal"
    );
    assert_eq!(
        fs::metadata(&segments[0]).unwrap().len(),
        64 * 1024 * 1024,
        "preallocated"
    );

    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    {
        let (mut wal, replay) =
            Wal::open(&dir, SnapshotMarker::default(), WalOptions::default()).unwrap();
        assert_eq!(replay.metadata, METADATA);
        assert_eq!(
            replay.hard_state,
            hard_state(2, 7, 4),
            "the last hard state wins"
        );
        assert_eq!(replay.entries, all);
        assert_eq!(replay.torn_tail, None);
        assert_eq!(wal.last_index(), 5);
        assert_eq!(wal.metadata(), METADATA);

        // Markers at or below the commit index (4): the empty one from create, and {3, 1}.
        assert_eq!(
            Wal::snapshot_markers(&dir).unwrap(),
            vec![
                SnapshotMarker { index: 0, term: 0 },
                SnapshotMarker { index: 3, term: 1 }
            ]
        );

        wal.append(None, &[entry(6, 3, b"six"), entry(7, 3, b"seven")])
            .unwrap();
        wal.append(Some(&hard_state(3, 1, 7)), &[]).unwrap();
        wal.sync().unwrap();
    }
    let (wal, replay) = Wal::open(
        &dir,
        SnapshotMarker { index: 3, term: 1 },
        WalOptions::default(),
    )
    .unwrap();
    assert_eq!(
        indexes_and_terms(&replay.entries),
        vec![(4, 2), (5, 2), (6, 3), (7, 3)]
    );
    assert_eq!(replay.entries[0], second[0]);
    assert_eq!(replay.entries[3].data.as_ref(), b"seven");
    assert_eq!(replay.hard_state, hard_state(3, 1, 7));
    assert_eq!(wal.last_index(), 7);
}

#[test]
fn unsynced_appends_are_written_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut wal = Wal::create(&dir, METADATA, small(4096)).unwrap();
        wal.append(Some(&hard_state(1, 1, 0)), &entries(1, 3, 1, 16))
            .unwrap();
    }
    let (_wal, replay) = Wal::open(&dir, SnapshotMarker::default(), small(4096)).unwrap();
    assert_eq!(replay.entries, entries(1, 3, 1, 16));
}

#[test]
fn overwrite_replaces_the_suffix() {
    for segment_bytes_max in [64 * 1024, 256] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        let options = small(segment_bytes_max);
        {
            let mut wal = Wal::create(&dir, METADATA, options).unwrap();
            wal.append(None, &entries(1, 10, 1, 24)).unwrap();
            assert_eq!(wal.last_index(), 10);
            wal.append(Some(&hard_state(2, 2, 5)), &entries(6, 8, 2, 24))
                .unwrap();
            assert_eq!(wal.last_index(), 8);
            wal.sync().unwrap();
        }
        let want: Vec<(u64, u64)> = (1..=5)
            .map(|i| (i, 1))
            .chain((6..=8).map(|i| (i, 2)))
            .collect();
        let (mut wal, replay) = Wal::open(&dir, SnapshotMarker::default(), options).unwrap();
        assert_eq!(
            indexes_and_terms(&replay.entries),
            want,
            "segment_bytes_max {segment_bytes_max}"
        );
        assert_eq!(replay.entries[5], entries(6, 8, 2, 24)[0]);
        assert_eq!(wal.last_index(), 8);
        wal.append(None, &entries(9, 9, 2, 24)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_wal, replay) = Wal::open(&dir, SnapshotMarker::default(), options).unwrap();
        assert_eq!(replay.entries.len(), 9);
        assert_eq!(replay.entries[8].index, 9);
    }
}

#[test]
fn segments_roll_over_replay_and_release() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let options = small(512);
    {
        let mut wal = Wal::create(&dir, METADATA, options).unwrap();
        for index in 1..=40 {
            wal.append(
                Some(&hard_state(1, 1, index - 1)),
                &entries(index, index, 1, 40),
            )
            .unwrap();
            wal.sync().unwrap();
        }
    }
    let paths = segment_paths(&dir);
    assert!(paths.len() >= 5, "{} segments", paths.len());
    for (seq, path) in paths.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (seq_hex, index_hex) = name.strip_suffix(".wal").unwrap().split_once('-').unwrap();
        assert_eq!(u64::from_str_radix(seq_hex, 16).unwrap(), seq as u64);
        let name_index = u64::from_str_radix(index_hex, 16).unwrap();
        let bytes = fs::read(path).unwrap();
        let found = frames(&bytes);
        // CRC, metadata, hard state start every segment.
        assert_eq!(found[0].record_type, TYPE_CRC);
        assert_eq!(found[1].record_type, TYPE_METADATA);
        assert_eq!(found[2].record_type, TYPE_HARD_STATE);
        let first_entry = found.iter().find(|frame| frame.record_type == TYPE_ENTRY);
        if seq == 0 {
            assert_eq!(name_index, 0);
        } else if let Some(frame) = first_entry {
            assert_eq!(frame_entry(&bytes, *frame).index, name_index, "{name}");
        }
        if seq + 1 < paths.len() {
            // Cut segments are truncated to their written length.
            assert_eq!(bytes.len(), found.last().unwrap().end, "{name}");
            assert!(bytes.len() >= 512);
        } else {
            assert_eq!(bytes.len(), 512, "the tail is preallocated");
        }
    }

    let (mut wal, replay) = Wal::open(&dir, SnapshotMarker::default(), options).unwrap();
    assert_eq!(replay.entries, entries(1, 40, 1, 40));
    assert_eq!(replay.hard_state, hard_state(1, 1, 39));

    // Snapshot at some index inside the fourth segment.
    let names: Vec<u64> = paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            u64::from_str_radix(&name[17..33], 16).unwrap()
        })
        .collect();
    let snapshot_index = names[3] + 1;
    let marker = SnapshotMarker {
        index: snapshot_index,
        term: 1,
    };
    wal.append_snapshot_marker(marker).unwrap();
    // Segments 0 and 1 hold nothing at or after names[2]; segment 2 may hold `names[3] - 1`,
    // release_before(names[3]) keeps it (etcd keeps the segment before the first one whose index
    // is >= the release index).
    wal.release_before(names[3]).unwrap();
    let left = segment_paths(&dir);
    assert_eq!(
        left,
        paths[2..].to_vec(),
        "exactly the wholly-earlier segments are deleted"
    );
    // Releasing at an index below everything left deletes nothing.
    wal.release_before(1).unwrap();
    assert_eq!(segment_paths(&dir), left);
    drop(wal);

    let (wal, replay) = Wal::open(&dir, marker, options).unwrap();
    assert_eq!(replay.entries, entries(snapshot_index + 1, 40, 1, 40));
    assert_eq!(wal.last_index(), 40);
    drop(wal);
    match Wal::open(&dir, SnapshotMarker::default(), options) {
        Err(WalError::FileNotFound { index: 0, .. }) => {}
        other => panic!("expected file not found, got {other:?}"),
    }

    // Releasing past everything keeps only the tail.
    let (mut wal, _) = Wal::open(&dir, marker, options).unwrap();
    wal.release_before(u64::MAX).unwrap();
    assert_eq!(segment_paths(&dir), vec![paths.last().unwrap().clone()]);
}

#[test]
fn open_from_a_marker_not_in_the_log_is_snapshot_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut wal = Wal::create(&dir, METADATA, small(4096)).unwrap();
        wal.append(Some(&hard_state(1, 1, 5)), &entries(1, 5, 1, 8))
            .unwrap();
        wal.append_snapshot_marker(SnapshotMarker { index: 4, term: 1 })
            .unwrap();
    }
    let error = Wal::open(&dir, SnapshotMarker { index: 3, term: 1 }, small(4096)).unwrap_err();
    assert!(
        matches!(
            error,
            WalError::SnapshotNotFound {
                index: 3,
                term: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("wal: snapshot not found"),
        "{error}"
    );

    let error = Wal::open(&dir, SnapshotMarker { index: 4, term: 2 }, small(4096)).unwrap_err();
    assert!(
        matches!(
            error,
            WalError::SnapshotMismatch {
                index: 4,
                term_expected: 2,
                term_found: 1,
                ..
            }
        ),
        "{error:?}"
    );

    let (_wal, replay) =
        Wal::open(&dir, SnapshotMarker { index: 4, term: 1 }, small(4096)).unwrap();
    assert_eq!(indexes_and_terms(&replay.entries), vec![(5, 1)]);
}

#[test]
fn misuse_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut wal = Wal::create(&dir, METADATA, small(4096)).unwrap();

    let error = Wal::create(&dir, METADATA, small(4096)).unwrap_err();
    assert!(matches!(error, WalError::AlreadyExists { .. }), "{error:?}");

    let error = Wal::open(&dir, SnapshotMarker::default(), small(4096)).unwrap_err();
    assert!(matches!(error, WalError::Locked { .. }), "{error:?}");

    wal.append(None, &entries(1, 3, 1, 8)).unwrap();
    let error = wal.append(None, &entries(5, 5, 1, 8)).unwrap_err();
    assert!(
        matches!(
            error,
            WalError::AppendGap {
                index: 5,
                previous: 3
            }
        ),
        "{error:?}"
    );
    let mut not_contiguous = entries(4, 5, 1, 8);
    not_contiguous[1].index = 7;
    let error = wal.append(None, &not_contiguous).unwrap_err();
    assert!(
        matches!(
            error,
            WalError::AppendGap {
                index: 7,
                previous: 4
            }
        ),
        "{error:?}"
    );
    let error = wal.append(None, &[entry(0, 1, b"")]).unwrap_err();
    assert!(
        matches!(error, WalError::AppendGap { index: 0, .. }),
        "{error:?}"
    );
    // Refused appends wrote nothing and left the wal usable.
    assert_eq!(wal.last_index(), 3);
    wal.append(None, &entries(4, 4, 1, 8)).unwrap();
    wal.sync().unwrap();
    drop(wal);

    let (_wal, replay) = Wal::open(&dir, SnapshotMarker::default(), small(4096)).unwrap();
    assert_eq!(replay.entries, entries(1, 4, 1, 8));

    let error = Wal::create(&tmp.path().join("tiny"), METADATA, small(16)).unwrap_err();
    assert!(
        matches!(error, WalError::InvalidOptions { .. }),
        "{error:?}"
    );
    let error = Wal::open(
        &tmp.path().join("absent"),
        SnapshotMarker::default(),
        small(4096),
    )
    .unwrap_err();
    assert!(matches!(error, WalError::FileNotFound { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("wal: file not found"),
        "{error}"
    );
}

#[test]
fn installed_snapshot_marker_moves_the_log_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let options = small(4096);
    {
        let mut wal = Wal::create(&dir, METADATA, options).unwrap();
        wal.append(None, &entries(1, 3, 1, 8)).unwrap();
        // A follower installs a snapshot far ahead of its log.
        let marker = SnapshotMarker {
            index: 100,
            term: 4,
        };
        wal.append_snapshot_marker(marker).unwrap();
        assert_eq!(wal.last_index(), 100);
        wal.append(Some(&hard_state(4, 2, 101)), &entries(101, 102, 4, 8))
            .unwrap();
        wal.sync().unwrap();
    }
    let (_wal, replay) = Wal::open(
        &dir,
        SnapshotMarker {
            index: 100,
            term: 4,
        },
        options,
    )
    .unwrap();
    assert_eq!(indexes_and_terms(&replay.entries), vec![(101, 4), (102, 4)]);
    assert_eq!(
        Wal::snapshot_markers(&dir).unwrap(),
        vec![
            SnapshotMarker { index: 0, term: 0 },
            SnapshotMarker {
                index: 100,
                term: 4
            }
        ]
    );
}

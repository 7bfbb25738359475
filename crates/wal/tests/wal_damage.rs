//! Damaged WALs: torn final writes (truncated and zeroed at every byte offset of the last
//! record) are truncated and reported; corruption anywhere else is an error naming the file and
//! offset, and leaves the files untouched. Also a proptest feeding arbitrary bytes as a segment.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use stead_wal::{Replay, SnapshotMarker, Wal, WalError, WalMetadata, WalOptions};

const METADATA: WalMetadata = WalMetadata {
    member_id: 7,
    cluster_id: 9,
};
const OPTIONS: WalOptions = WalOptions {
    segment_bytes_max: 4096,
};
const FROM_START: SnapshotMarker = SnapshotMarker { index: 0, term: 0 };

/// A one-segment WAL with entries 1..=5 and a final entry 6 whose payload ends in a non-zero
/// byte. Returns the segment path and the final frame.
fn write_template(dir: &Path) -> (PathBuf, Frame) {
    let mut wal = Wal::create(dir, METADATA, OPTIONS).unwrap();
    wal.append(Some(&hard_state(1, 1, 3)), &entries(1, 5, 1, 8))
        .unwrap();
    wal.append(
        None,
        &[entry_full(6, 1, Default::default(), b"last", b"ctx")],
    )
    .unwrap();
    wal.sync().unwrap();
    drop(wal);
    let path = segment_paths(dir).remove(0);
    let bytes = fs::read(&path).unwrap();
    let last = *frames(&bytes).last().unwrap();
    assert_eq!(last.record_type, TYPE_ENTRY);
    assert_eq!(frame_entry(&bytes, last).index, 6);
    assert_ne!(bytes[last.payload_end() - 1], 0);
    (path, last)
}

fn replay_of(dir: &Path) -> Result<Replay, WalError> {
    Wal::open(dir, FROM_START, OPTIONS).map(|(_wal, replay)| replay)
}

/// Checks a WAL whose final record was torn at `torn_from` (None: the damage left nothing to
/// detect, the record is simply absent or intact), then that appending and reopening work.
fn check_torn(
    dir: &Path,
    segment: &Path,
    last: Frame,
    original: &[u8],
    damage_from: usize,
    intact: bool,
) {
    let (mut wal, replay) = Wal::open(dir, FROM_START, OPTIONS).unwrap();
    let context = format!("damage from offset {damage_from}");
    if intact {
        assert_eq!(replay.entries.len(), 6, "{context}");
        assert_eq!(replay.torn_tail, None, "{context}");
        return;
    }
    assert_eq!(
        replay.entries[..],
        entries(1, 5, 1, 8)[..],
        "{context}: earlier records intact"
    );
    assert_eq!(replay.hard_state, hard_state(1, 1, 3), "{context}");
    if damage_from == last.start {
        // Cut exactly at a record boundary: indistinguishable from a log that never had it.
        assert_eq!(replay.torn_tail, None, "{context}");
    } else {
        let torn = replay.torn_tail.clone().expect(&context);
        assert_eq!(torn.path, segment, "{context}");
        assert_eq!(torn.offset, last.start as u64, "{context}");
        let nonzero_end = original[last.start..damage_from]
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |position| position + 1);
        assert_eq!(torn.bytes_discarded, nonzero_end as u64, "{context}");
    }
    assert_eq!(wal.last_index(), 5, "{context}");
    wal.append(None, &[entry(6, 2, b"again")]).unwrap();
    wal.append(None, &[entry(7, 2, b"more")]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let replay = replay_of(dir).unwrap();
    assert_eq!(replay.torn_tail, None, "{context}");
    assert_eq!(
        indexes_and_terms(&replay.entries),
        vec![(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 2), (7, 2)],
        "{context}"
    );
    assert_eq!(replay.entries[5].data.as_ref(), b"again");
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    let (template_segment, last) = write_template(&template);
    let original = fs::read(&template_segment).unwrap();
    let work = tmp.path().join("work");
    let segment = work.join(template_segment.file_name().unwrap());
    let mut checked = 0;
    for offset in last.start..last.end {
        // (i) The file ends at `offset`.
        copy_dir(&template, &work);
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(offset as u64)
            .unwrap();
        check_torn(&work, &segment, last, &original, offset, false);

        // (ii) Zeros from `offset` to the end of the file. Zeroing bytes that were already zero
        // (the padding) changes nothing, and the record must survive.
        copy_dir(&template, &work);
        let mut bytes = original.clone();
        let intact = bytes[offset..].iter().all(|&byte| byte == 0);
        bytes[offset..].fill(0);
        fs::write(&segment, &bytes).unwrap();
        check_torn(&work, &segment, last, &original, offset, intact);
        checked += 2;
    }
    assert!(checked >= 2 * 24, "{checked}");
}

#[test]
fn flipped_byte_in_the_final_record_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let (segment, last) = write_template(&dir);
    let mut bytes = fs::read(&segment).unwrap();
    bytes[last.payload_start() + 2] ^= 0x40;
    fs::write(&segment, &bytes).unwrap();

    let replay = replay_of(&dir).unwrap();
    assert_eq!(replay.entries, entries(1, 5, 1, 8));
    let torn = replay.torn_tail.unwrap();
    assert_eq!(
        (torn.path, torn.offset),
        (segment.clone(), last.start as u64)
    );
    assert_eq!(
        torn.bytes_discarded,
        (last.payload_end() - last.start) as u64
    );
    // Truncated (and preallocated again): the damaged bytes are gone.
    let after = fs::read(&segment).unwrap();
    assert_eq!(after.len(), OPTIONS.segment_bytes_max as usize);
    assert!(after[last.start..].iter().all(|&byte| byte == 0));
    assert_eq!(replay_of(&dir).unwrap().torn_tail, None);
}

fn assert_corrupt_at(error: &WalError, path: &Path, offset: usize) {
    let (found_path, found_offset) = match error {
        WalError::CrcMismatch { path, offset } | WalError::Corrupt { path, offset, .. } => {
            (path, *offset)
        }
        other => panic!("expected a corruption error, got {other:?}"),
    };
    assert_eq!((found_path.as_path(), found_offset), (path, offset as u64));
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("byte offset {offset}")),
        "{message}"
    );
    assert!(error.is_corruption());
    assert_eq!(error.corrupt_path(), Some(path));
}

#[test]
fn damage_in_a_middle_record_of_the_last_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    let (template_segment, _) = write_template(&template);
    let original = fs::read(&template_segment).unwrap();
    let middle = frames(&original)
        .into_iter()
        .find(|frame| frame.record_type == TYPE_ENTRY && frame_entry(&original, *frame).index == 3)
        .unwrap();
    let work = tmp.path().join("work");
    let segment = work.join(template_segment.file_name().unwrap());

    // A payload byte: the CRC no longer matches, and valid records follow.
    // The type byte, a length byte, the CRC field: a garbage header followed by data.
    for (position, expect_crc_mismatch) in [
        (middle.payload_start() + 1, true),
        (middle.start, false),
        (middle.start + 5, false),
        (middle.start + 9, true),
    ] {
        copy_dir(&template, &work);
        let mut bytes = original.clone();
        bytes[position] ^= 0x10;
        fs::write(&segment, &bytes).unwrap();
        let before = snapshot_dir(&work);
        let error = replay_of(&work).unwrap_err();
        assert_corrupt_at(&error, &segment, middle.start);
        assert_eq!(
            matches!(error, WalError::CrcMismatch { .. }),
            expect_crc_mismatch,
            "{error}"
        );
        if expect_crc_mismatch {
            assert!(
                error.to_string().starts_with("wal: crc mismatch"),
                "{error}"
            );
        }
        assert_eq!(
            snapshot_dir(&work),
            before,
            "a failed open modifies nothing"
        );
        // Still an error the second time: nothing was truncated.
        assert_corrupt_at(&replay_of(&work).unwrap_err(), &segment, middle.start);
    }
}

/// A WAL over several small segments, entries 1..=30.
fn write_multi_segment(dir: &Path, data_byte: u8) -> Vec<PathBuf> {
    let options = WalOptions {
        segment_bytes_max: 512,
    };
    let mut wal = Wal::create(dir, METADATA, options).unwrap();
    for index in 1..=30 {
        wal.append(
            Some(&hard_state(1, 1, index)),
            &[entry(index, 1, &[data_byte; 48])],
        )
        .unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let paths = segment_paths(dir);
    assert!(paths.len() >= 4);
    paths
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    let paths = write_multi_segment(&template, 0x5a);
    let options = WalOptions {
        segment_bytes_max: 512,
    };
    let original = fs::read(&paths[1]).unwrap();
    let found = frames(&original);
    let middle_entry = found
        .iter()
        .find(|frame| frame.record_type == TYPE_ENTRY)
        .unwrap();
    let final_record = *found.last().unwrap();
    let work = tmp.path().join("work");
    let segment = work.join(paths[1].file_name().unwrap());

    for (what, position, offset) in [
        (
            "middle record payload",
            middle_entry.payload_start() + 3,
            middle_entry.start,
        ),
        (
            "final record payload",
            final_record.payload_start() + 3,
            final_record.start,
        ),
        (
            "final record header",
            final_record.start,
            final_record.start,
        ),
    ] {
        copy_dir(&template, &work);
        let mut bytes = original.clone();
        bytes[position] ^= 0x01;
        fs::write(&segment, &bytes).unwrap();
        let before = snapshot_dir(&work);
        let error = Wal::open(&work, FROM_START, options).unwrap_err();
        assert_corrupt_at(&error, &segment, offset);
        assert_eq!(
            snapshot_dir(&work),
            before,
            "{what}: a failed open modifies nothing"
        );
    }

    // A truncated non-last segment is not a torn tail either.
    copy_dir(&template, &work);
    fs::write(&segment, &original[..final_record.start + 20]).unwrap();
    let error = Wal::open(&work, FROM_START, options).unwrap_err();
    assert_corrupt_at(&error, &segment, final_record.start);

    // Zeros after the final record of a non-last segment are fine.
    copy_dir(&template, &work);
    let mut padded = original.clone();
    padded.resize(original.len() + 256, 0);
    fs::write(&segment, &padded).unwrap();
    let (_wal, replay) = Wal::open(&work, FROM_START, options).unwrap();
    assert_eq!(replay.entries.len(), 30);
    assert_eq!(replay.torn_tail, None);

    // A missing middle segment breaks the sequence.
    copy_dir(&template, &work);
    fs::remove_file(&segment).unwrap();
    let error = Wal::open(&work, FROM_START, options).unwrap_err();
    assert!(
        matches!(error, WalError::SegmentSequenceGap { .. }),
        "{error:?}"
    );
}

#[test]
fn crc_chain_is_checked_across_segments() {
    // Two logs with the same shape but different data: their segments have the same names and
    // each is valid on its own, but the chain carried into segment 2 differs.
    let tmp = tempfile::tempdir().unwrap();
    let a = write_multi_segment(&tmp.path().join("a"), 0x11);
    let b = write_multi_segment(&tmp.path().join("b"), 0x22);
    assert_eq!(a.len(), b.len());
    fs::copy(&b[2], &a[2]).unwrap();
    let error = Wal::open(
        &tmp.path().join("a"),
        FROM_START,
        WalOptions {
            segment_bytes_max: 512,
        },
    )
    .unwrap_err();
    assert!(matches!(error, WalError::CrcMismatch { .. }), "{error:?}");
    assert_corrupt_at(&error, &a[2], 0);
}

#[test]
fn conflicting_metadata_and_entry_gaps_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    fs::create_dir_all(&dir).unwrap();
    let segment = dir.join("0000000000000000-0000000000000000.wal");

    // Hand-built per the documented format: entries 1, 2, then 4.
    let mut bytes = Vec::new();
    let mut crc = encode_segment_start(&mut bytes, 0, 1, 2);
    crc = encode_entry_frame(&mut bytes, crc, &entry(1, 1, b"one"));
    crc = encode_entry_frame(&mut bytes, crc, &entry(2, 1, b"two"));
    let gap_offset = bytes.len();
    encode_entry_frame(&mut bytes, crc, &entry(4, 1, b"four"));
    fs::write(&segment, &bytes).unwrap();
    let error = replay_of(&dir).unwrap_err();
    match &error {
        WalError::EntryGap {
            path,
            offset,
            index: 4,
            previous: 2,
        } => {
            assert_eq!(
                (path.as_path(), *offset),
                (segment.as_path(), gap_offset as u64)
            );
        }
        other => panic!("expected an entry gap, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("wal: slice bounds out of range"),
        "{error}"
    );

    // The hand-built prefix is a valid WAL (so the documented format is the real one).
    fs::write(&segment, &bytes[..gap_offset]).unwrap();
    let replay = replay_of(&dir).unwrap();
    assert_eq!(indexes_and_terms(&replay.entries), vec![(1, 1), (2, 1)]);
    assert_eq!(
        replay.metadata,
        WalMetadata {
            member_id: 1,
            cluster_id: 2
        }
    );

    // A second segment whose metadata disagrees.
    let mut next = Vec::new();
    encode_segment_start(&mut next, crc_after(&dir), 1, 3);
    fs::write(dir.join("0000000000000001-0000000000000003.wal"), &next).unwrap();
    let error = replay_of(&dir).unwrap_err();
    assert!(
        matches!(error, WalError::ConflictingMetadata { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("wal: conflicting metadata found"),
        "{error}"
    );
}

/// The running CRC at the end of the single segment of `dir` (re-derived from its frames).
fn crc_after(dir: &Path) -> u32 {
    let bytes = fs::read(&segment_paths(dir)[0]).unwrap();
    let last = *frames(&bytes).last().unwrap();
    u32::from_le_bytes(bytes[last.start + 8..last.start + 12].try_into().unwrap())
}

/// Opening must never panic, whatever the segment holds; when it succeeds, a second open finds
/// the same entries and no torn tail (the truncation was complete).
fn open_never_panics(bytes: &[u8]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("0000000000000000-0000000000000000.wal"), bytes).unwrap();
    let _ = Wal::snapshot_markers(&dir);
    if let Ok(replay) = replay_of(&dir) {
        let again = replay_of(&dir).unwrap();
        assert_eq!(again.entries, replay.entries);
        assert_eq!(again.torn_tail, None);
    }
}

fn valid_segment() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut wal = Wal::create(
        &dir,
        METADATA,
        WalOptions {
            segment_bytes_max: 1024,
        },
    )
    .unwrap();
    wal.append(Some(&hard_state(1, 1, 2)), &entries(1, 4, 1, 12))
        .unwrap();
    wal.append_snapshot_marker(SnapshotMarker { index: 2, term: 1 })
        .unwrap();
    drop(wal);
    let mut bytes = fs::read(&segment_paths(&dir)[0]).unwrap();
    let end = frames(&bytes).last().unwrap().end;
    bytes.truncate(end + 64);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_a_segment_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        open_never_panics(&bytes);
    }

    #[test]
    fn mutated_valid_segment_never_panics(
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = valid_segment();
        for (at, value) in mutations {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            let cut = cut.index(bytes.len());
            bytes.truncate(cut);
        }
        open_never_panics(&bytes);
    }
}

//! The `Wal`: creating a log, opening (replaying) it, appending with group commit, cutting
//! segments and releasing old ones.
//!
//! Owns the writer's state (tail segment, write buffer, running CRC, last index, latest hard
//! state) and the replay rules for entries (overwrites, gaps, the snapshot marker to start from).
//! Does not own the byte layout (`record`), the torn-tail decision (`scan`), nor raft snapshot
//! files (`snap`). Not thread-safe by design: one node driver owns it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use protobuf::Message;
use raft::eraftpb::{Entry, HardState};

use crate::record::{self, RECORD_PAYLOAD_BYTES_MAX, Record};
use crate::scan::{self, Located};
use crate::segment::{self, SEGMENT_TMP_SUFFIX, SegmentName};
use crate::{Replay, SnapshotMarker, TornTail, WalError, WalMetadata, WalOptions};

/// The write buffer is written to the file once it holds this much (it may exceed it by one
/// record). Bounds memory between syncs; a sync writes whatever is buffered.
const WRITE_BUFFER_BYTES_MAX: usize = 256 * 1024;

/// A write-ahead log open for appending. See the crate docs for the format and the rules.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// Holds the directory `flock` for as long as the `Wal` lives.
    _dir_lock: File,
    options: WalOptions,
    metadata: WalMetadata,
    /// Every segment in the directory, in sequence order; the last is the tail.
    segments: Vec<SegmentName>,
    tail: File,
    tail_path: PathBuf,
    /// Bytes of the tail segment written to the file (the buffer follows them).
    tail_flushed_bytes: u64,
    /// Encoded frames not yet written to the file.
    buffer: Vec<u8>,
    /// Running CRC after the last encoded frame.
    crc: u32,
    last_index: u64,
    /// The latest hard state, written again at the start of every new segment.
    hard_state: HardState,
    /// Something was encoded since the last fdatasync.
    unsynced: bool,
    /// A write, cut or sync failed; see `WalError::Poisoned`.
    poisoned: bool,
}

impl Wal {
    /// True when `dir` holds at least one segment.
    pub fn exists(dir: &Path) -> bool {
        segment::list_segments(dir).is_ok_and(|names| !names.is_empty())
    }

    /// Creates a new WAL in `dir` (which must not hold one), atomically: the first segment is
    /// built in a `<dir>.tmp` sibling, fsynced, and renamed into place.
    pub fn create(dir: &Path, metadata: WalMetadata, options: WalOptions) -> Result<Wal, WalError> {
        options.validate()?;
        if Wal::exists(dir) {
            return Err(WalError::AlreadyExists {
                dir: dir.to_path_buf(),
            });
        }
        let parent = segment::parent_dir(dir);
        fs::create_dir_all(&parent)
            .map_err(|error| WalError::io("create directory", &parent, error))?;
        let mut tmp_dir = OsString::from(dir.as_os_str());
        tmp_dir.push(".tmp");
        let tmp_dir = PathBuf::from(tmp_dir);
        if tmp_dir.exists() {
            fs::remove_dir_all(&tmp_dir)
                .map_err(|error| WalError::io("remove stale directory", &tmp_dir, error))?;
        }
        fs::create_dir_all(&tmp_dir)
            .map_err(|error| WalError::io("create directory", &tmp_dir, error))?;

        let name = SegmentName { seq: 0, index: 0 };
        let tmp_path = tmp_dir.join(name.file_name());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|error| WalError::io("create", &tmp_path, error))?;
        segment::preallocate(&file, &tmp_path, options.segment_bytes_max)?;
        let hard_state = HardState::default();
        let mut buffer = Vec::new();
        let mut crc = 0;
        // Like etcd, the first segment also records an empty snapshot marker, so opening from
        // {0, 0} finds its marker and `snapshot_markers` lists it.
        for record in [
            Record::Crc(0),
            Record::Metadata(metadata),
            Record::HardState(hard_state.clone()),
            Record::Snapshot(SnapshotMarker::default()),
        ] {
            crc = record::encode_record(&mut buffer, crc, &record)?;
        }
        file.write_all_at(&buffer, 0)
            .map_err(|error| WalError::io("write", &tmp_path, error))?;
        file.sync_all()
            .map_err(|error| WalError::io("fsync", &tmp_path, error))?;
        segment::sync_dir(&tmp_dir)?;
        fs::rename(&tmp_dir, dir).map_err(|error| WalError::io("rename into", dir, error))?;
        segment::sync_dir(&parent)?;
        let dir_lock = segment::lock_dir(dir)?;
        tracing::info!(dir = %dir.display(), member_id = metadata.member_id,
            cluster_id = metadata.cluster_id, "wal: created");
        Ok(Wal {
            dir: dir.to_path_buf(),
            _dir_lock: dir_lock,
            options,
            metadata,
            segments: vec![name],
            tail: file,
            tail_path: dir.join(name.file_name()),
            tail_flushed_bytes: buffer.len() as u64,
            buffer: Vec::new(),
            crc,
            last_index: 0,
            hard_state,
            unsynced: false,
            poisoned: false,
        })
    }

    /// Replays everything after `from` (entries with index <= from.index are skipped); the
    /// marker must be found in the log unless from.index == 0 (etcd's ErrSnapshotNotFound).
    /// Leaves the Wal positioned at the end of valid data, ready to append. A torn tail in the
    /// last segment is truncated, logged and reported in `Replay::torn_tail`; any other damage is
    /// an error naming the file and byte offset, and leaves the files as they were.
    pub fn open(
        dir: &Path,
        from: SnapshotMarker,
        options: WalOptions,
    ) -> Result<(Wal, Replay), WalError> {
        options.validate()?;
        let names = segment::list_segments(dir)?;
        let start = names
            .iter()
            .rposition(|name| name.index <= from.index)
            .ok_or_else(|| WalError::FileNotFound {
                dir: dir.to_path_buf(),
                index: from.index,
            })?;
        segment::check_sequence(dir, &names[start..])?;
        let dir_lock = segment::lock_dir(dir)?;

        let mut replay = ReplayBuilder::new(from);
        let scanned = scan::scan(dir, &names[start..], |located| replay.visit(located))?;
        if from.index != 0 && !replay.marker_found {
            return Err(WalError::SnapshotNotFound {
                dir: dir.to_path_buf(),
                index: from.index,
                term: from.term,
            });
        }

        let Some(&tail_name) = names.last() else {
            return Err(WalError::FileNotFound {
                dir: dir.to_path_buf(),
                index: from.index,
            });
        };
        let tail_path = dir.join(tail_name.file_name());
        let tail = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tail_path)
            .map_err(|error| WalError::io("open", &tail_path, error))?;
        let torn_tail = match scanned.torn {
            Some(torn) => {
                debug_assert_eq!(torn.offset, scanned.tail_valid_bytes);
                tail.set_len(torn.offset)
                    .map_err(|error| WalError::io("truncate", &tail_path, error))?;
                tracing::warn!(path = %tail_path.display(), offset = torn.offset,
                    bytes_discarded = torn.bytes_discarded, reason = %torn.reason,
                    "wal: truncated a torn tail (a final record that was never completely written)");
                Some(TornTail {
                    path: tail_path.clone(),
                    offset: torn.offset,
                    bytes_discarded: torn.bytes_discarded,
                })
            }
            None => None,
        };
        let tail_bytes = tail
            .metadata()
            .map_err(|error| WalError::io("stat", &tail_path, error))?
            .len();
        if torn_tail.is_some() || tail_bytes < options.segment_bytes_max {
            segment::preallocate(&tail, &tail_path, options.segment_bytes_max)?;
            tail.sync_all()
                .map_err(|error| WalError::io("fsync", &tail_path, error))?;
        }
        remove_tmp_segments(dir)?;

        let ReplayBuilder {
            entries,
            hard_state,
            ..
        } = replay;
        let last_index = entries.last().map_or(from.index, |entry| entry.index);
        tracing::info!(dir = %dir.display(), from_index = from.index, entries = entries.len(),
            last_index, segments = names.len() - start, "wal: opened");
        let wal = Wal {
            dir: dir.to_path_buf(),
            _dir_lock: dir_lock,
            options,
            metadata: scanned.metadata,
            segments: names,
            tail,
            tail_path,
            tail_flushed_bytes: scanned.tail_valid_bytes,
            buffer: Vec::new(),
            crc: scanned.crc,
            last_index,
            hard_state: hard_state.clone(),
            unsynced: false,
            poisoned: false,
        };
        let replay = Replay {
            metadata: scanned.metadata,
            hard_state,
            entries,
            torn_tail,
        };
        Ok((wal, replay))
    }

    /// Buffered: writes frames; may cut segments. Entries may overwrite a suffix (raft conflict
    /// resolution): an entry with index <= last index replaces that index and everything after
    /// it, on replay too. A gap (index > last_index + 1) is an error. Entries are written before
    /// the hard state, as etcd does. Nothing is durable until `sync` (or a cut).
    pub fn append(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        self.check_usable()?;
        let mut previous = self.last_index;
        for (position, entry) in entries.iter().enumerate() {
            let follows = if position == 0 {
                entry.index >= 1 && entry.index <= previous + 1
            } else {
                entry.index == previous + 1
            };
            if !follows {
                return Err(WalError::AppendGap {
                    index: entry.index,
                    previous,
                });
            }
            let bytes = u64::from(entry.compute_size());
            if bytes > RECORD_PAYLOAD_BYTES_MAX {
                return Err(WalError::RecordTooLarge {
                    bytes,
                    bytes_max: RECORD_PAYLOAD_BYTES_MAX,
                });
            }
            previous = entry.index;
        }
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        let result = self.encode_and_maybe_cut(hard_state, entries);
        self.poison_on_error(result)
    }

    fn encode_and_maybe_cut(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        self.unsynced = true;
        for entry in entries {
            self.crc = record::encode_entry(&mut self.buffer, self.crc, entry)?;
            self.last_index = entry.index;
            self.flush_if_full()?;
        }
        if let Some(hard_state) = hard_state {
            self.crc = record::encode_record(
                &mut self.buffer,
                self.crc,
                &Record::HardState(hard_state.clone()),
            )?;
            self.hard_state = hard_state.clone();
            self.flush_if_full()?;
        }
        self.cut_if_full()
    }

    /// Records that a snapshot at `marker` was taken or installed, and syncs. After an installed
    /// snapshot the log continues at marker.index + 1.
    pub fn append_snapshot_marker(&mut self, marker: SnapshotMarker) -> Result<(), WalError> {
        self.check_usable()?;
        let result = self.encode_marker_and_sync(marker);
        self.poison_on_error(result)
    }

    fn encode_marker_and_sync(&mut self, marker: SnapshotMarker) -> Result<(), WalError> {
        self.unsynced = true;
        self.crc = record::encode_record(&mut self.buffer, self.crc, &Record::Snapshot(marker))?;
        self.last_index = self.last_index.max(marker.index);
        self.cut_if_full()?;
        self.flush_and_sync()
    }

    /// One fdatasync for everything appended since the last sync (group commit). A no-op when
    /// nothing was appended.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        let result = self.flush_and_sync();
        self.poison_on_error(result)
    }

    /// Deletes segments wholly before the one that may contain `index` (etcd's ReleaseLockTo):
    /// every segment before the last one whose first index is below `index`. Never the tail.
    pub fn release_before(&mut self, index: u64) -> Result<(), WalError> {
        let keep_from = match self.segments.iter().position(|name| name.index >= index) {
            Some(position) => position.saturating_sub(1),
            None => self.segments.len() - 1,
        };
        debug_assert!(keep_from < self.segments.len(), "the tail is always kept");
        if keep_from == 0 {
            return Ok(());
        }
        for name in &self.segments[..keep_from] {
            let path = self.dir.join(name.file_name());
            fs::remove_file(&path).map_err(|error| WalError::io("remove", &path, error))?;
            tracing::info!(path = %path.display(), release_before = index, "wal: released segment");
        }
        self.segments.drain(..keep_from);
        segment::sync_dir(&self.dir)
    }

    /// Index of the last entry appended or replayed (or of a later snapshot marker).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Member and cluster IDs recorded in every segment.
    pub fn metadata(&self) -> WalMetadata {
        self.metadata
    }

    /// All snapshot markers in the WAL whose index <= the last hard state's commit (etcd's
    /// ValidSnapshotEntries), read-only: a torn tail is ignored, not truncated. Meant for
    /// start-up, before `open` (as etcd does): it takes no lock, so a concurrent writer's
    /// half-copied write could read as damage.
    pub fn snapshot_markers(dir: &Path) -> Result<Vec<SnapshotMarker>, WalError> {
        let names = segment::list_segments(dir)?;
        if names.is_empty() {
            return Err(WalError::FileNotFound {
                dir: dir.to_path_buf(),
                index: 0,
            });
        }
        segment::check_sequence(dir, &names)?;
        let mut markers = Vec::new();
        let mut commit = 0;
        scan::scan(dir, &names, |located| {
            match located.record {
                Record::Snapshot(marker) => markers.push(marker),
                Record::HardState(state) => commit = state.commit,
                _ => {}
            }
            Ok(())
        })?;
        markers.retain(|marker| marker.index <= commit);
        Ok(markers)
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }

    fn poison_on_error(&mut self, result: Result<(), WalError>) -> Result<(), WalError> {
        if let Err(error) = &result {
            tracing::error!(dir = %self.dir.display(), %error, "wal: write failed; refusing further writes");
            self.poisoned = true;
        }
        result
    }

    fn tail_offset_bytes(&self) -> u64 {
        self.tail_flushed_bytes + self.buffer.len() as u64
    }

    fn flush_if_full(&mut self) -> Result<(), WalError> {
        if self.buffer.len() >= WRITE_BUFFER_BYTES_MAX {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffer to the tail file (no fsync).
    fn flush(&mut self) -> Result<(), WalError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.tail
            .write_all_at(&self.buffer, self.tail_flushed_bytes)
            .map_err(|error| WalError::io("write", &self.tail_path, error))?;
        self.tail_flushed_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        if self.buffer.capacity() > 2 * WRITE_BUFFER_BYTES_MAX {
            self.buffer.shrink_to(WRITE_BUFFER_BYTES_MAX);
        }
        Ok(())
    }

    fn flush_and_sync(&mut self) -> Result<(), WalError> {
        if !self.unsynced {
            return Ok(());
        }
        self.flush()?;
        self.tail
            .sync_data()
            .map_err(|error| WalError::io("fdatasync", &self.tail_path, error))?;
        self.unsynced = false;
        Ok(())
    }

    fn cut_if_full(&mut self) -> Result<(), WalError> {
        if self.tail_offset_bytes() >= self.options.segment_bytes_max {
            self.cut()?;
        }
        Ok(())
    }

    /// Closes the full tail segment (truncated to its written length and fsynced) and starts the
    /// next: CRC record, metadata, hard state, built under a tmp name, fsynced, renamed, and the
    /// directory fsynced.
    fn cut(&mut self) -> Result<(), WalError> {
        self.flush()?;
        self.tail
            .set_len(self.tail_flushed_bytes)
            .map_err(|error| WalError::io("truncate", &self.tail_path, error))?;
        self.tail
            .sync_all()
            .map_err(|error| WalError::io("fsync", &self.tail_path, error))?;

        let Some(&previous) = self.segments.last() else {
            debug_assert!(false, "a wal always has a tail segment");
            return Err(WalError::Poisoned);
        };
        let name = SegmentName {
            seq: previous.seq + 1,
            index: self.last_index + 1,
        };
        let tmp_path = self.dir.join(name.tmp_file_name());
        let path = self.dir.join(name.file_name());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|error| WalError::io("create", &tmp_path, error))?;
        segment::preallocate(&file, &tmp_path, self.options.segment_bytes_max)?;
        debug_assert!(self.buffer.is_empty());
        let mut crc = self.crc;
        for record in [
            Record::Crc(self.crc),
            Record::Metadata(self.metadata),
            Record::HardState(self.hard_state.clone()),
        ] {
            crc = record::encode_record(&mut self.buffer, crc, &record)?;
        }
        file.write_all_at(&self.buffer, 0)
            .map_err(|error| WalError::io("write", &tmp_path, error))?;
        file.sync_all()
            .map_err(|error| WalError::io("fsync", &tmp_path, error))?;
        fs::rename(&tmp_path, &path).map_err(|error| WalError::io("rename", &tmp_path, error))?;
        segment::sync_dir(&self.dir)?;

        tracing::info!(path = %path.display(), previous_bytes = self.tail_flushed_bytes,
            "wal: cut to a new segment");
        self.tail_flushed_bytes = self.buffer.len() as u64;
        self.buffer.clear();
        self.tail = file;
        self.tail_path = path;
        self.crc = crc;
        self.segments.push(name);
        self.unsynced = false;
        Ok(())
    }
}

impl Drop for Wal {
    /// Writes (without fsync) whatever is buffered, so a clean drop loses nothing a reader in
    /// this process could expect; durability still needs `sync`.
    fn drop(&mut self) {
        if self.poisoned {
            return;
        }
        if let Err(error) = self.flush() {
            tracing::warn!(path = %self.tail_path.display(), %error, "wal: flush on drop failed");
        }
    }
}

/// Removes segments left half-built by a crash during a cut: they were never renamed into the
/// log, so they hold nothing that was acknowledged.
fn remove_tmp_segments(dir: &Path) -> Result<(), WalError> {
    let mut removed = false;
    for file_name in segment::list_file_names(dir)? {
        if file_name.ends_with(SEGMENT_TMP_SUFFIX) {
            let path = dir.join(&file_name);
            fs::remove_file(&path).map_err(|error| WalError::io("remove", &path, error))?;
            tracing::info!(path = %path.display(), "wal: removed a half-built segment");
            removed = true;
        }
    }
    if removed {
        segment::sync_dir(dir)?;
    }
    Ok(())
}

/// Replay state while scanning: the entries after `from`, with overwrites applied.
struct ReplayBuilder {
    from: SnapshotMarker,
    entries: Vec<Entry>,
    hard_state: HardState,
    /// Index of the last entry (or later snapshot marker) seen, for gap detection.
    last_seen: Option<u64>,
    marker_found: bool,
}

impl ReplayBuilder {
    fn new(from: SnapshotMarker) -> ReplayBuilder {
        ReplayBuilder {
            from,
            entries: Vec::new(),
            hard_state: HardState::default(),
            last_seen: None,
            marker_found: false,
        }
    }

    fn visit(&mut self, located: Located<'_>) -> Result<(), WalError> {
        let Located {
            path,
            offset,
            record,
        } = located;
        match record {
            Record::Entry(entry) => {
                let index = entry.index;
                if index == 0 {
                    return Err(WalError::corrupt(path, offset, "entry with index 0"));
                }
                if let Some(previous) = self.last_seen
                    && index > previous + 1
                {
                    return Err(WalError::EntryGap {
                        path: path.to_path_buf(),
                        offset,
                        index,
                        previous,
                    });
                }
                if index > self.from.index {
                    // Position in `entries`; an index at or below the last one overwrites it and
                    // everything after it (raft conflict resolution).
                    let position = index - self.from.index - 1;
                    if position > self.entries.len() as u64 {
                        return Err(WalError::EntryGap {
                            path: path.to_path_buf(),
                            offset,
                            index,
                            previous: self.from.index + self.entries.len() as u64,
                        });
                    }
                    self.entries.truncate(position as usize);
                    self.entries.push(entry);
                } else {
                    // At or below the snapshot: it replaces everything after it.
                    self.entries.clear();
                }
                self.last_seen = Some(index);
            }
            Record::HardState(state) => self.hard_state = state,
            Record::Snapshot(marker) => {
                if marker.index == self.from.index {
                    if marker.term != self.from.term {
                        return Err(WalError::SnapshotMismatch {
                            path: path.to_path_buf(),
                            offset,
                            index: marker.index,
                            term_expected: self.from.term,
                            term_found: marker.term,
                        });
                    }
                    self.marker_found = true;
                }
                // An installed snapshot moves the log forward: entries resume after it.
                self.last_seen = Some(
                    self.last_seen
                        .map_or(marker.index, |seen| seen.max(marker.index)),
                );
            }
            Record::Crc(_) | Record::Metadata(_) => {}
        }
        debug_assert!(
            self.entries
                .windows(2)
                .last()
                .is_none_or(|pair| pair[1].index == pair[0].index + 1)
        );
        Ok(())
    }
}

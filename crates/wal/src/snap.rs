//! Raft snapshot files (etcd's `snap` package): one file per snapshot, named
//! `{term:016x}-{index:016x}.snap`, written atomically and verified on load.
//!
//! Owns the snapshot file format and the directory of snapshot files: saving, loading the newest
//! one that verifies (renaming broken ones to `*.broken`, as etcd does), and purging old ones.
//! Does not own the backend database file a snapshot refers to, nor deciding when to snapshot.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! offset  size  field
//! 0       8     magic "STEADSNP"
//! 8       8     payload length in bytes, u64
//! 16      4     CRC32C of the payload, u32
//! 20      len   payload: the raft `Snapshot`, protobuf-encoded
//! ```
//!
//! The file must be exactly `20 + len` bytes, and the snapshot's (term, index) must match its name.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use protobuf::Message;
use raft::eraftpb::Snapshot;

use crate::segment::{self, parse_hex16};
use crate::{SnapshotMarker, WalError};

const MAGIC: &[u8; 8] = b"STEADSNP";
const HEADER_BYTES: u64 = 20;
/// Largest snapshot payload accepted. Bounds the buffer a load allocates; the raft snapshot holds
/// metadata and small state, the database itself travels separately.
const SNAPSHOT_PAYLOAD_BYTES_MAX: u64 = 512 * 1024 * 1024;
const SNAP_SUFFIX: &str = ".snap";
const SNAP_TMP_SUFFIX: &str = ".snap.tmp";
const BROKEN_SUFFIX: &str = ".broken";

/// Raft snapshot files in one directory.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
}

/// A snapshot file's identity, from its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SnapName {
    term: u64,
    index: u64,
}

impl SnapName {
    fn file_name(&self) -> String {
        format!("{:016x}-{:016x}{SNAP_SUFFIX}", self.term, self.index)
    }

    fn parse(file_name: &str) -> Option<SnapName> {
        let stem = file_name.strip_suffix(SNAP_SUFFIX)?;
        let (term, index) = stem.split_once('-')?;
        Some(SnapName {
            term: parse_hex16(term)?,
            index: parse_hex16(index)?,
        })
    }
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshot directory, removing files left half-written by a
    /// crash during `save`.
    pub fn new(dir: &Path) -> Result<Snapshotter, WalError> {
        fs::create_dir_all(dir).map_err(|error| WalError::io("create directory", dir, error))?;
        let mut removed = false;
        for file_name in segment::list_file_names(dir)? {
            if file_name.ends_with(SNAP_TMP_SUFFIX) {
                let path = dir.join(&file_name);
                fs::remove_file(&path).map_err(|error| WalError::io("remove", &path, error))?;
                tracing::info!(path = %path.display(), "snap: removed a half-written snapshot");
                removed = true;
            }
        }
        if removed {
            segment::sync_dir(dir)?;
        }
        Ok(Snapshotter {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes `snapshot` to `{term:016x}-{index:016x}.snap`: tmp file, fsync, rename, fsync dir.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), WalError> {
        let metadata = snapshot.get_metadata();
        if metadata.index == 0 {
            return Err(WalError::EmptySnapshot);
        }
        let payload = snapshot
            .write_to_bytes()
            .map_err(|error| WalError::Encode {
                what: "snapshot",
                reason: error.to_string(),
            })?;
        let payload_bytes = payload.len() as u64;
        if payload_bytes > SNAPSHOT_PAYLOAD_BYTES_MAX {
            return Err(WalError::SnapshotTooLarge {
                bytes: payload_bytes,
                bytes_max: SNAPSHOT_PAYLOAD_BYTES_MAX,
            });
        }
        let mut header = [0u8; HEADER_BYTES as usize];
        header[0..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&payload_bytes.to_le_bytes());
        header[16..20].copy_from_slice(&crc32c::crc32c(&payload).to_le_bytes());

        let name = SnapName {
            term: metadata.term,
            index: metadata.index,
        };
        let path = self.dir.join(name.file_name());
        let tmp_path = self.dir.join(format!("{}.tmp", name.file_name()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|error| WalError::io("create", &tmp_path, error))?;
        file.write_all(&header)
            .and_then(|()| file.write_all(&payload))
            .map_err(|error| WalError::io("write", &tmp_path, error))?;
        file.sync_all()
            .map_err(|error| WalError::io("fsync", &tmp_path, error))?;
        drop(file);
        fs::rename(&tmp_path, &path).map_err(|error| WalError::io("rename", &tmp_path, error))?;
        segment::sync_dir(&self.dir)?;
        tracing::info!(path = %path.display(), bytes = payload_bytes, "snap: saved snapshot");
        Ok(())
    }

    /// The newest snapshot that verifies. A broken file is renamed `*.broken`, logged, and the
    /// next older one tried.
    pub fn load_newest(&self) -> Result<Option<Snapshot>, WalError> {
        self.load_newest_matching(|_| true)
    }

    /// The newest snapshot that verifies and whose (term, index) is among `markers` (the WAL's
    /// valid snapshot markers), so the snapshot and the WAL agree.
    pub fn load_newest_available(
        &self,
        markers: &[SnapshotMarker],
    ) -> Result<Option<Snapshot>, WalError> {
        self.load_newest_matching(|name| {
            markers
                .iter()
                .any(|marker| marker.term == name.term && marker.index == name.index)
        })
    }

    /// Deletes the oldest `.snap` files beyond the newest `keep` (etcd's --max-snapshots);
    /// returns how many were deleted.
    pub fn purge(&self, keep: usize) -> Result<usize, WalError> {
        let names = self.names()?;
        let delete_count = names.len().saturating_sub(keep);
        for name in &names[..delete_count] {
            let path = self.dir.join(name.file_name());
            fs::remove_file(&path).map_err(|error| WalError::io("remove", &path, error))?;
            tracing::info!(path = %path.display(), "snap: purged snapshot");
        }
        if delete_count > 0 {
            segment::sync_dir(&self.dir)?;
        }
        Ok(delete_count)
    }

    /// Snapshot files, oldest first.
    fn names(&self) -> Result<Vec<SnapName>, WalError> {
        let mut names: Vec<SnapName> = segment::list_file_names(&self.dir)?
            .iter()
            .filter_map(|file_name| SnapName::parse(file_name))
            .collect();
        names.sort();
        Ok(names)
    }

    fn load_newest_matching(
        &self,
        wanted: impl Fn(&SnapName) -> bool,
    ) -> Result<Option<Snapshot>, WalError> {
        for name in self.names()?.iter().rev().filter(|name| wanted(name)) {
            let path = self.dir.join(name.file_name());
            match read_snapshot(&path, name)? {
                Ok(snapshot) => return Ok(Some(snapshot)),
                Err(reason) => {
                    let mut broken = path.clone().into_os_string();
                    broken.push(BROKEN_SUFFIX);
                    fs::rename(&path, &broken)
                        .map_err(|error| WalError::io("rename broken snapshot", &path, error))?;
                    segment::sync_dir(&self.dir)?;
                    tracing::warn!(path = %path.display(), %reason,
                        "snap: broken snapshot file renamed to *.broken; trying an older one");
                }
            }
        }
        Ok(None)
    }
}

/// Reads and verifies one snapshot file. The outer error is I/O (returned to the caller); the
/// inner one says why the content does not verify (the file is then set aside).
fn read_snapshot(path: &Path, name: &SnapName) -> Result<Result<Snapshot, String>, WalError> {
    let file = File::open(path).map_err(|error| WalError::io("open", path, error))?;
    let file_bytes = file
        .metadata()
        .map_err(|error| WalError::io("stat", path, error))?
        .len();
    if file_bytes < HEADER_BYTES {
        return Ok(Err(format!(
            "file of {file_bytes} bytes is shorter than its header"
        )));
    }
    if file_bytes - HEADER_BYTES > SNAPSHOT_PAYLOAD_BYTES_MAX {
        return Ok(Err(format!(
            "file of {file_bytes} bytes is larger than the limit"
        )));
    }
    let mut bytes = Vec::with_capacity(file_bytes as usize);
    file.take(file_bytes)
        .read_to_end(&mut bytes)
        .map_err(|error| WalError::io("read", path, error))?;
    Ok(verify(&bytes, name))
}

fn verify(bytes: &[u8], name: &SnapName) -> Result<Snapshot, String> {
    if bytes.len() < HEADER_BYTES as usize || &bytes[0..8] != MAGIC {
        return Err("bad magic".to_owned());
    }
    let (header, payload) = bytes.split_at(HEADER_BYTES as usize);
    let mut length = [0u8; 8];
    length.copy_from_slice(&header[8..16]);
    if u64::from_le_bytes(length) != payload.len() as u64 {
        return Err(format!(
            "header says {} payload bytes, file holds {}",
            u64::from_le_bytes(length),
            payload.len()
        ));
    }
    let stored_crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    if crc32c::crc32c(payload) != stored_crc {
        return Err("snap: crc mismatch".to_owned());
    }
    let snapshot =
        Snapshot::parse_from_bytes(payload).map_err(|error| format!("bad snapshot: {error}"))?;
    let metadata = snapshot.get_metadata();
    if metadata.term != name.term || metadata.index != name.index {
        return Err(format!(
            "holds term {} index {}, its name says term {} index {}",
            metadata.term, metadata.index, name.term, name.index
        ));
    }
    Ok(snapshot)
}

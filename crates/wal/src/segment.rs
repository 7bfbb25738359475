//! Segment files and the directory that holds them: names, listing, preallocation, directory
//! fsync and the writer's directory lock.
//!
//! Owns the file-system side of the WAL. Does not own what is inside a segment (`record`,
//! `scan`) nor when segments are created or deleted (`wal`).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::WalError;

/// Suffix of a segment file.
const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of a segment being built before its rename.
pub(crate) const SEGMENT_TMP_SUFFIX: &str = ".wal.tmp";

/// A segment's identity, as carried by its file name `{seq:016x}-{index:016x}.wal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegmentName {
    /// Sequence number: 0 for the first segment, +1 for each cut.
    pub(crate) seq: u64,
    /// Raft index of the first entry the segment was meant to hold (last index + 1 at creation).
    pub(crate) index: u64,
}

impl SegmentName {
    pub(crate) fn file_name(self) -> String {
        format!("{:016x}-{:016x}{SEGMENT_SUFFIX}", self.seq, self.index)
    }

    pub(crate) fn tmp_file_name(self) -> String {
        format!("{:016x}-{:016x}{SEGMENT_TMP_SUFFIX}", self.seq, self.index)
    }

    /// Parses a segment file name; anything else (tmp files, strangers) is `None`.
    pub(crate) fn parse(file_name: &str) -> Option<SegmentName> {
        let stem = file_name.strip_suffix(SEGMENT_SUFFIX)?;
        let (seq, index) = stem.split_once('-')?;
        Some(SegmentName {
            seq: parse_hex16(seq)?,
            index: parse_hex16(index)?,
        })
    }
}

/// Parses exactly 16 lowercase hex digits (`from_str_radix` alone would take a sign or fewer
/// digits).
pub(crate) fn parse_hex16(digits: &str) -> Option<u64> {
    if digits.len() != 16
        || !digits
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The segments in `dir`, sorted by sequence number. A missing directory has none.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentName>, WalError> {
    let mut names = Vec::new();
    for file_name in list_file_names(dir)? {
        if let Some(name) = SegmentName::parse(&file_name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Names of the entries of `dir` (an absent directory has none).
pub(crate) fn list_file_names(dir: &Path) -> Result<Vec<String>, WalError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(WalError::io("read directory", dir, error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| WalError::io("read directory", dir, error))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Checks that sequence numbers are consecutive, so no segment in the middle is missing.
pub(crate) fn check_sequence(dir: &Path, names: &[SegmentName]) -> Result<(), WalError> {
    for pair in names.windows(2) {
        // Indexes may go down: raft can overwrite a suffix before the next cut.
        if pair[1].seq != pair[0].seq + 1 {
            return Err(WalError::SegmentSequenceGap {
                path: dir.join(pair[1].file_name()),
            });
        }
    }
    Ok(())
}

/// Extends `file` to at least `bytes`, allocating the blocks so later appends do not change the
/// file size (and an fdatasync does not need a metadata write). Falls back to `set_len` (a sparse
/// extension) where the file system cannot allocate.
pub(crate) fn preallocate(file: &File, path: &Path, bytes: u64) -> Result<(), WalError> {
    let current_bytes = file
        .metadata()
        .map_err(|error| WalError::io("stat", path, error))?
        .len();
    if current_bytes >= bytes {
        return Ok(());
    }
    let Ok(length) = libc::off_t::try_from(bytes) else {
        return Err(WalError::InvalidOptions {
            reason: "segment_bytes_max does not fit in off_t",
        });
    };
    // SAFETY: the fd is open and owned by `file` for the duration of the call.
    let code = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, length) };
    match code {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => {
            tracing::debug!(path = %path.display(), "posix_fallocate unsupported; using set_len");
            file.set_len(bytes)
                .map_err(|error| WalError::io("extend", path, error))
        }
        code => Err(WalError::io(
            "preallocate",
            path,
            std::io::Error::from_raw_os_error(code),
        )),
    }
}

/// fsyncs a directory, making creations, renames and deletions in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| WalError::io("fsync directory", dir, error))
}

/// The parent directory of `path` ("." for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Takes an exclusive, non-blocking `flock` on the directory, held while the returned handle
/// lives: two writers on one WAL would interleave frames.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let handle = File::open(dir).map_err(|error| WalError::io("open directory", dir, error))?;
    // SAFETY: the fd is open and owned by `handle` for the duration of the call.
    let code = unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if code != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(WalError::Locked {
                dir: dir.to_path_buf(),
            });
        }
        return Err(WalError::io("lock directory", dir, error));
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_strangers() {
        let name = SegmentName {
            seq: 3,
            index: 0x1f,
        };
        assert_eq!(name.file_name(), "0000000000000003-000000000000001f.wal");
        assert_eq!(SegmentName::parse(&name.file_name()), Some(name));
        assert_eq!(SegmentName::parse(&name.tmp_file_name()), None);
        assert_eq!(
            SegmentName::parse("000000000000000X-0000000000000000.wal"),
            None
        );
        assert_eq!(
            SegmentName::parse("+000000000000003-0000000000000000.wal"),
            None
        );
        assert_eq!(SegmentName::parse("3-1.wal"), None);
        assert_eq!(
            SegmentName::parse("000000000000000A-0000000000000000.wal"),
            None
        );
    }
}

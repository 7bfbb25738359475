//! The one error type of this crate, shared by the WAL and the snapshotter.
//!
//! Owns the messages a user (or an operator reading the server's refusal to start) sees. Messages
//! begin with etcd's text where etcd has one (`wal: crc mismatch`, `wal: snapshot not found`, ...)
//! so an operator who knows etcd recognises them. Every corruption names the file and the byte
//! offset. Does not own mapping to gRPC status codes: that happens at the server's API edge.

use std::io;
use std::path::{Path, PathBuf};

use crate::WalMetadata;

/// Everything that can go wrong in the WAL or the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A record's chained CRC does not match, or the CRC record at the start of a segment does not
    /// continue the chain of the segment before it.
    #[error("wal: crc mismatch in {} at byte offset {offset}", path.display())]
    CrcMismatch { path: PathBuf, offset: u64 },

    /// A record that is not a torn tail and cannot be read: a garbage header, a truncated record in
    /// a segment that is not the last, data after a zeroed header, a payload of the wrong shape.
    #[error("wal: corrupt record in {} at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// An entry whose index leaves a hole after the entries before it (etcd's
    /// ErrSliceOutOfRange).
    #[error(
        "wal: slice bounds out of range: entry index {index} leaves a gap after index {previous} in {} at byte offset {offset}",
        path.display()
    )]
    EntryGap {
        path: PathBuf,
        offset: u64,
        index: u64,
        previous: u64,
    },

    /// Two segments disagree on member or cluster ID.
    #[error(
        "wal: conflicting metadata found in {} at byte offset {offset}: {found:?}, expected {expected:?}",
        path.display()
    )]
    ConflictingMetadata {
        path: PathBuf,
        offset: u64,
        found: WalMetadata,
        expected: WalMetadata,
    },

    /// `open` was asked to start from a snapshot marker that the log does not hold.
    #[error(
        "wal: snapshot not found: no marker for index {index} term {term} in {}",
        dir.display()
    )]
    SnapshotNotFound { dir: PathBuf, index: u64, term: u64 },

    /// The log holds a marker at the requested index but with another term.
    #[error(
        "wal: snapshot mismatch: marker at index {index} has term {term_found}, expected {term_expected}, in {} at byte offset {offset}",
        path.display()
    )]
    SnapshotMismatch {
        path: PathBuf,
        offset: u64,
        index: u64,
        term_expected: u64,
        term_found: u64,
    },

    /// No segment that could hold the requested index (never created, or already released).
    #[error("wal: file not found: no segment in {} can hold index {index}", dir.display())]
    FileNotFound { dir: PathBuf, index: u64 },

    /// Segment sequence numbers are not consecutive: a segment in the middle is missing.
    #[error("wal: file not found: segment sequence is broken before {}", path.display())]
    SegmentSequenceGap { path: PathBuf },

    /// `create` found a WAL already there.
    #[error("wal: already exists in {}", dir.display())]
    AlreadyExists { dir: PathBuf },

    /// Another `Wal` (in this or another process) holds the directory lock.
    #[error("wal: locked by another writer: {}", dir.display())]
    Locked { dir: PathBuf },

    /// `append` was given entries that are not contiguous, or start past `last_index + 1`.
    #[error(
        "wal: slice bounds out of range: appended entry index {index} does not follow index {previous}"
    )]
    AppendGap { index: u64, previous: u64 },

    /// A record larger than the frame format allows.
    #[error("wal: record of {bytes} bytes is larger than the {bytes_max}-byte limit")]
    RecordTooLarge { bytes: u64, bytes_max: u64 },

    /// Protobuf encoding failed (should not happen for raft-rs messages).
    #[error("wal: encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },

    /// An earlier write, cut or sync failed. After a failed fsync the kernel may have dropped the
    /// dirty pages, so retrying could report durability that does not exist; reopen instead.
    #[error("wal: an earlier write or sync failed; the wal must be reopened")]
    Poisoned,

    /// Options that cannot work.
    #[error("wal: invalid options: {reason}")]
    InvalidOptions { reason: &'static str },

    /// An I/O error, with the operation and the path it was on.
    #[error("wal: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `Snapshotter::save` was given a snapshot without metadata or at index 0.
    #[error("snap: empty snapshot")]
    EmptySnapshot,

    /// A snapshot larger than the snapshot file format allows.
    #[error("snap: snapshot of {bytes} bytes is larger than the {bytes_max}-byte limit")]
    SnapshotTooLarge { bytes: u64, bytes_max: u64 },
}

impl WalError {
    /// Wraps an I/O error with the operation and the path it was on.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> WalError {
        WalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
        WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for errors that mean the bytes on disk are damaged (as opposed to I/O failures,
    /// misuse, or a missing snapshot): the server refuses to start and names the file.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            WalError::CrcMismatch { .. }
                | WalError::Corrupt { .. }
                | WalError::EntryGap { .. }
                | WalError::ConflictingMetadata { .. }
                | WalError::SnapshotMismatch { .. }
                | WalError::SegmentSequenceGap { .. }
        )
    }

    /// The file a corruption error is about, for the server's refusal message.
    pub fn corrupt_path(&self) -> Option<&Path> {
        match self {
            WalError::CrcMismatch { path, .. }
            | WalError::Corrupt { path, .. }
            | WalError::EntryGap { path, .. }
            | WalError::ConflictingMetadata { path, .. }
            | WalError::SnapshotMismatch { path, .. }
            | WalError::SegmentSequenceGap { path } => Some(path),
            _ => None,
        }
    }
}

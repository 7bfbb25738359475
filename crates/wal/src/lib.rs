//! stead's write-ahead log for raft entries, and its raft snapshot files (etcd's `wal` and `snap`
//! packages).
//!
//! Owns: the bytes on disk that make an acknowledged write durable (segments of framed records
//! under `<data-dir>/member/wal`), replaying them at start-up, telling a torn final write from
//! corruption, and the raft snapshot files under `<data-dir>/member/snap`. Does not own: raft
//! itself (raft-rs), the backend database (`stead-backend`), deciding when to sync, snapshot or
//! release (the node driver), or any network I/O.
//!
//! # Segments
//!
//! A WAL is a directory of segment files named `{seq:016x}-{index:016x}.wal`: a sequence number,
//! and the raft index of the first entry the segment was meant to hold (last index + 1 when it
//! was created). The first is `0000000000000000-0000000000000000.wal`. Segments are preallocated
//! to `WalOptions::segment_bytes_max`; once a write leaves the tail at or past that size, the
//! tail is truncated to its written length and fsynced, and a new segment is built under a
//! `.wal.tmp` name, fsynced, renamed, and the directory fsynced. A new WAL is built in a
//! `<dir>.tmp` sibling and renamed into place.
//!
//! Every segment starts with a CRC record (the running CRC at the end of the previous segment,
//! 0 for the first), then a metadata record (member and cluster ID; all must agree), then the
//! current hard state. The first segment also holds an empty snapshot marker, like etcd's.
//!
//! # Record framing
//!
//! ```text
//! offset  size  field
//! 0       1     record type: 1 metadata, 2 entry, 3 hard state, 4 crc, 5 snapshot marker
//!               (etcd's numbering); 0 is never a record, so a zeroed area reads as end of data
//! 1       1     reserved, always 0
//! 2       2     header check, u16 LE: low 16 bits of crc32c(bytes 0..2 ++ bytes 4..8)
//! 4       4     payload length in bytes, u32 LE (at most 128 MiB)
//! 8       4     record CRC, u32 LE: crc32c_append(previous record's CRC,
//!               type byte ++ payload length LE ++ payload)
//! 12      len   payload
//! 12+len  pad   zeros up to the next multiple of 8 bytes (frames start 8-byte aligned)
//! ```
//!
//! The CRC is chained, as etcd's is: each record's CRC continues from the previous record's, so
//! it covers that record and every one before it, across segments (a CRC record's own CRC is
//! seeded with the value it carries, and that value must equal the chain at the end of the
//! previous segment). The header check lets a reader reject a damaged length before trusting it:
//! without it, a flipped bit in a length could make a record in the middle look like a partial
//! final record, and truncating it would drop the records after it.
//!
//! Payloads: crc = u32 LE; metadata = member_id u64 LE, cluster_id u64 LE; entry = raft-rs
//! `Entry`, protobuf; hard state = term, vote, commit as u64 LE; snapshot marker = index, term as
//! u64 LE.
//!
//! # Torn tails vs corruption
//!
//! Replay reads segments in order. Durability is the point, so damage is only ever discarded when
//! it can be nothing but a final write that never completed (and so was never acknowledged). In
//! the last segment only, after its CRC and metadata records, a failure at offset X is a torn tail
//! (truncated to X, logged with `tracing::warn!`, reported in `Replay::torn_tail`) when:
//! (a) the header or the frame runs past the end of the file (a header that fails its check is
//! treated as garbage, below); (b) a zeroed header with zeros after it is simply the end of data;
//! (c) the frame is complete but its CRC does not match and every byte after the frame is zero;
//! (d) the header is garbage and every byte after the header is zero. Anything else is an error
//! naming the file and byte offset, and the files are left untouched: a CRC mismatch or garbage
//! followed by data, a zeroed header followed by data, any failure in a segment that is not the
//! last (zeros after its final record are fine), a broken CRC chain between segments, a gap in
//! entry indexes, conflicting metadata.

mod error;
mod record;
mod scan;
mod segment;
mod snap;
mod wal;

use std::path::PathBuf;

use raft::eraftpb::{Entry, HardState, SnapshotMetadata};

pub use error::WalError;
pub use snap::Snapshotter;
pub use wal::Wal;

/// Tuning for a WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment is cut once it reaches this size; segments are preallocated to it.
    pub segment_bytes_max: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes_max: 64 * 1024 * 1024,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), WalError> {
        // A segment must hold at least its own CRC, metadata and hard state records.
        if self.segment_bytes_max < 256 {
            return Err(WalError::InvalidOptions {
                reason: "segment_bytes_max must be at least 256 bytes",
            });
        }
        Ok(())
    }
}

/// Identity recorded in every segment; all segments of a WAL must agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WalMetadata {
    pub member_id: u64,
    pub cluster_id: u64,
}

/// Records that a raft snapshot at (index, term) exists; replay can start from one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotMarker {
    pub index: u64,
    pub term: u64,
}

impl From<&SnapshotMetadata> for SnapshotMarker {
    fn from(metadata: &SnapshotMetadata) -> SnapshotMarker {
        SnapshotMarker {
            index: metadata.index,
            term: metadata.term,
        }
    }
}

/// A torn final write found and truncated by `Wal::open`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment it was in (always the last).
    pub path: PathBuf,
    /// Where valid data ended; the file was cut back to here.
    pub offset: u64,
    /// Bytes from `offset` to the last non-zero byte that were discarded.
    pub bytes_discarded: u64,
}

/// What `Wal::open` read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub metadata: WalMetadata,
    /// The last hard state in the log (default if none).
    pub hard_state: HardState,
    /// Entries after the snapshot marker replay started from, overwrites applied, contiguous.
    pub entries: Vec<Entry>,
    pub torn_tail: Option<TornTail>,
}

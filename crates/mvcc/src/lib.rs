//! stead's multi-version key-value store: etcd's `mvcc` package and the request semantics of
//! its apply layer.
//!
//! What it owns: revisions (`main` per write transaction, `sub` per change in it), the
//! in-memory key index (every key's generations of revisions), the `key` bucket of the backend
//! (revision → encoded `mvccpb.KeyValue`), ranges at any uncompacted revision, put, delete,
//! transactions with compares, compaction, and the hash of the store's contents. The `request`
//! module answers etcd's Range, Put, DeleteRange and Txn requests exactly as etcd's apply layer
//! does.
//!
//! What it does not own: durability and batching (the backend crate; the raft WAL makes writes
//! durable), request validation at the API edge and response headers' cluster fields (the
//! server), leases (behind the [`Lessor`] trait), watchers (the watch hub consumes the events
//! [`WriteTxn::end`] returns).

mod error;
mod index;
mod key_index;
mod lessor;
mod range_index;
pub mod request;
mod revision;
mod store;
pub mod watch;

use bytes::Bytes;

pub use error::MvccError;
pub use lessor::{Lessor, NoLeases};
pub use revision::Revision;
pub use store::{
    CompactionDone, History, HistoryBatch, KvHash, KvView, RangeOptions, RangeResult, ReadTxn,
    Store, StoreOptions, WriteTxn,
};

/// Which keys an operation covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// Exactly this key.
    Single(Bytes),
    /// Keys `k` with `start <= k < end`; empty when `end <= start`.
    Between { start: Bytes, end: Bytes },
    /// Keys `k` with `start <= k`.
    From(Bytes),
}

impl KeyRange {
    /// etcd's convention for a request's `key` and `range_end`: an empty `range_end` names one
    /// key, `"\0"` every key from `key` on, anything else the half-open interval. (A prefix is
    /// asked for as `[prefix, prefix + 1)` by clients.)
    pub fn from_request(key: &Bytes, range_end: &Bytes) -> KeyRange {
        match range_end.as_ref() {
            [] => KeyRange::Single(key.clone()),
            [0] => KeyRange::From(key.clone()),
            _ => KeyRange::Between {
                start: key.clone(),
                end: range_end.clone(),
            },
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Single(single) => single.as_ref() == key,
            KeyRange::Between { start, end } => start.as_ref() <= key && key < end.as_ref(),
            KeyRange::From(start) => start.as_ref() <= key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_etcd_conventions() {
        let key = Bytes::from_static(b"b");
        assert_eq!(
            KeyRange::from_request(&key, &Bytes::new()),
            KeyRange::Single(key.clone())
        );
        assert_eq!(
            KeyRange::from_request(&key, &Bytes::from_static(b"\0")),
            KeyRange::From(key.clone())
        );
        let between = KeyRange::from_request(&key, &Bytes::from_static(b"d"));
        assert!(between.contains(b"b") && between.contains(b"c") && between.contains(b"cz"));
        assert!(!between.contains(b"a") && !between.contains(b"d"));
        let inverted = KeyRange::from_request(&key, &Bytes::from_static(b"a"));
        assert!(!inverted.contains(b"b") && !inverted.contains(b"a"));
        assert!(KeyRange::From(key.clone()).contains(b"zzz"));
        assert!(!KeyRange::From(key).contains(b"a"));
    }
}

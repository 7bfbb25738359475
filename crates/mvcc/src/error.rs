//! The MVCC layer's one error type, carrying the texts etcd's clients see.

use stead_backend::BackendError;

/// What can go wrong in a range, write, compaction or hash. The first group are answers to a
/// client (the server maps them to etcd's gRPC codes); the rest mean the store is unusable.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    /// The revision asked for was removed by a compaction.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The revision asked for is newer than the store's.
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// A put with `ignore_value` or `ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A put attaching a lease that does not exist.
    #[error("lease not found")]
    LeaseNotFound,
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The backend holds something the store did not write, or lacks something it did.
    #[error("mvcc: corrupt store: {0}")]
    Corrupt(String),
    /// The store is shutting down.
    #[error("mvcc: closed")]
    Closed,
}

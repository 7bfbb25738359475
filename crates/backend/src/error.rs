//! The backend's one error type.

use std::path::PathBuf;

/// What can go wrong in the backend. Every variant is fatal for a member: the apply loop cannot
/// go on without its store, so the server stops and reports the message.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The database file could not be opened: missing permissions, not a redb file (a bbolt
    /// file from etcd, say), or damaged beyond redb's own repair.
    #[error("backend: cannot open database file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    /// The file is a stead database of a storage format this build does not read.
    #[error(
        "backend: database file {path} has storage format {found:?}, this stead reads format {expected:?}"
    )]
    IncompatibleFormat {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// A redb operation failed.
    #[error("backend: {operation} failed on {path}: {source}")]
    Storage {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    /// A value in the meta bucket does not decode.
    #[error("backend: corrupt meta key {key:?} in {path}")]
    CorruptMeta { key: &'static str, path: PathBuf },
    /// An earlier commit failed; the backend refuses further writes because what it holds in
    /// memory may no longer match the file.
    #[error("backend: an earlier commit failed, refusing writes: {0}")]
    Poisoned(String),
    /// A snapshot's dump of a backend (sent by the leader) is malformed.
    #[error("backend: bad snapshot dump: {0}")]
    Dump(String),
}

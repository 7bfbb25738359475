//! stead's B+tree backend: etcd's bbolt layer, over redb.
//!
//! What it owns: one database file (`<data-dir>/member/snap/db`), its tables (etcd's buckets,
//! [`Bucket`]), batched write transactions and the read views over them, the consistent index
//! (the last applied raft entry, written in the same commit as the data it covers), and the
//! database's size figures for Status and the quota.
//!
//! What it does not own: what the keys and values mean. MVCC encodes revisions and key-values,
//! the lessor its leases, and so on; to the backend they are bytes, ordered bytewise.
//!
//! # Batching
//! Writers (the apply loop, and the compactor) take the [`BatchTx`], put and delete, and `end()`
//! it. Changes accumulate in an in-memory batch and are committed to redb in one durable write
//! transaction when the batch reaches [`BackendOptions::batch_limit`] changes, every
//! [`BackendOptions::batch_interval`] (a background thread), or on [`Backend::commit`]
//! (snapshot, shutdown). A commit costs one fsync; the raft WAL, not the backend, is what makes
//! an acknowledged write durable, so batching only bounds how much log is replayed after a crash.
//!
//! # Reads see applied-but-uncommitted writes
//! A [`ReadTx`] is a consistent view: the open batch, the batch being committed (if any) and
//! the redb snapshot of the last commit, newest first. This plays the role of etcd's read
//! transaction buffer. A view pins its redb snapshot, so views should be short-lived.

mod backend;
mod batch;
mod bucket;
mod dump;
mod error;

pub use backend::{Backend, BackendOptions, BatchTx, ConsistentIndex, ReadTx};
pub use bucket::Bucket;
pub use dump::{DUMP_MAGIC, DumpStats};
pub use error::BackendError;

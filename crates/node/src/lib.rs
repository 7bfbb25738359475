//! The raft node: raft-rs's `RawNode` driven by explicit inputs (sans-IO).
//!
//! What it owns: the raft node ([`RaftNode`]: ticks, messages, proposals, read indexes, and
//! the processing of each `Ready`), the seam to durable storage ([`DurableLog`]), its real
//! implementation over the WAL and snapshot files ([`WalLog`]), a simulated disk for tests
//! ([`MemLog`]), and raft-rs's logging into `tracing`. What it does not own: threads, timers,
//! sockets (the server's driver supplies ticks and carries messages), or the state machine
//! (committed entries are handed back, not applied here).

mod durable;
mod logger;
mod mem_log;
mod node;

pub use durable::{
    DurableLog, ForcedCluster, InitialMember, MemberDirs, Recovered, WalLog, WalLogOptions,
    force_new_cluster,
};
pub use mem_log::MemLog;
pub use node::{NodeConfig, ProposeError, RaftNode, ReadyOutput, SNAPSHOT_CATCH_UP_ENTRIES};
pub use raft;

/// What can go wrong in the node. All of it is fatal for the member.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Wal(#[from] stead_wal::WalError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("raft: cannot encode a message: {0}")]
    Encode(#[from] protobuf::ProtobufError),
    #[error("raft: corrupt entry at index {index}: {reason}")]
    CorruptEntry { index: u64, reason: String },
}

impl NodeError {
    pub(crate) fn corrupt_entry(index: u64, reason: impl std::fmt::Display) -> NodeError {
        NodeError::CorruptEntry {
            index,
            reason: reason.to_string(),
        }
    }
}

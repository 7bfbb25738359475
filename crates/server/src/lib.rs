//! The stead server: everything between the network and the storage core.
//!
//! What it owns: the member's configuration (etcd's flags, `ETCD_*` variables and config
//! file), cluster membership and IDs, the node driver thread around the raft node, the apply
//! loop (the only writer of the store), request routing (proposals and their replies, batched
//! ReadIndex for linearizable reads), the etcd v3 gRPC services and their errors, and the
//! `stead` binary. What it does not own: consensus (raft-rs, driven by `stead-node`), storage
//! (`stead-wal`, `stead-backend`, `stead-mvcc`), the wire types (`stead-proto`).

mod apply;
pub mod config;
mod driver;
mod error;
mod failpoint;
mod forward;
pub mod grpc_compat;
mod id;
mod lease;
mod members;
pub mod membership;
mod peers;
mod read_index;
pub mod require_leader;
mod server;
mod services;
mod validate;
mod wait;
mod watch;

pub use error::EtcdError;
pub use server::{
    BootstrapCluster, ETCD_VERSION, EtcdServer, GRPC_OVERHEAD_BYTES, ServerOptions, StartError,
};

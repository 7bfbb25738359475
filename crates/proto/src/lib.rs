//! The etcd v3 gRPC wire contract, and nothing else.
//!
//! This crate owns the `.proto` files under `proto/` (written for stead, wire
//! compatible with etcd 3.5) and exposes the Rust code tonic/prost generate
//! from them: messages, gRPC client stubs and server traits. It holds no
//! logic; behaviour lives in the crates that use these types.
//!
//! Modules mirror etcd's protobuf packages, side by side at the crate root so
//! that cross-package references in generated code (e.g.
//! `super::mvccpb::KeyValue` from `etcdserverpb`) resolve. All `bytes` fields
//! are [`bytes::Bytes`].

/// Stored key-values and watch events (`mvccpb`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// Users, roles and permissions of the auth store (`authpb`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// Membership records replicated through raft (`membershippb`); referenced
/// only by [`etcdserverpb::InternalRaftRequest`].
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod membershippb {
    tonic::include_proto!("membershippb");
}

/// The client API services (KV, Watch, Lease, Cluster, Maintenance, Auth)
/// and the internal raft request format (`etcdserverpb`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// A lease as the backend's `lease` bucket stores it (`leasepb`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod leasepb {
    tonic::include_proto!("leasepb");
}

/// The Election service (`v3electionpb`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

/// The Lock service (`v3lockpb`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

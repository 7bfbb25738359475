//! Leases: TTLs granted by the cluster, the keys attached to them, and when they expire.
//!
//! What it owns: the lessor (etcd's `lease.lessor`): every lease with its granted and
//! checkpointed TTL, the keys attached to each, the expiry queue and checkpoint schedule of the
//! leader ("primary"), and the format of the backend's `lease` bucket.
//!
//! What it does not own: raft and time. The lessor decides nothing on its own: it is told the
//! time (`now`) by every call, and what it finds expired it only reports; the server proposes
//! the revokes through raft, and every member applies them (deleting the keys through the
//! store) at the same revision. Persisting a grant or revoke is the apply thread's job, in the
//! same backend batch as the entry's consistent index; this crate supplies the record.
//!
//! The store sees the lessor through [`stead_mvcc::Lessor`] (attach, detach, lookups).

mod lessor;
mod record;

pub use lessor::{
    Checkpointing, EXPIRY_CHECK_INTERVAL, LeaseError, LeaseInfo, Lessor, LessorConfig,
    MAX_LEASE_TTL_S, REVOKE_RETRY_INTERVAL, REVOKES_PER_SECOND, Renewed, min_lease_ttl_s,
};
pub use record::{LeaseRecord, RecordError, key_of, load};

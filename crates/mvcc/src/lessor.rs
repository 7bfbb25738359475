//! What the store needs of the lessor: the seam between MVCC and leases.
//!
//! etcd's store tells the lessor which keys each lease holds, so that revoking a lease can
//! delete them; and its request layer refuses a put naming an unknown lease. The lessor itself
//! (grant, keep-alive, expiry) lives in its own crate and implements this trait.

/// The lessor as the store sees it. Lease ID 0 means "no lease" and is never passed.
pub trait Lessor: Send + Sync {
    /// Whether the lease exists (granted and not revoked).
    fn exists(&self, lease: i64) -> bool;
    /// The lease `key` is attached to, or 0.
    fn lease_of(&self, key: &[u8]) -> i64;
    /// Attaches `key` to `lease`.
    fn attach(&self, lease: i64, key: &[u8]);
    /// Detaches `key` from `lease`.
    fn detach(&self, lease: i64, key: &[u8]);
}

/// A lessor with no leases, for a store used without one (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLeases;

impl Lessor for NoLeases {
    fn exists(&self, _lease: i64) -> bool {
        false
    }
    fn lease_of(&self, _key: &[u8]) -> i64 {
        0
    }
    fn attach(&self, _lease: i64, _key: &[u8]) {}
    fn detach(&self, _lease: i64, _key: &[u8]) {}
}

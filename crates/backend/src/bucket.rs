//! The backend's tables, named as etcd names its bbolt buckets.

use redb::TableDefinition;

/// A table of the backend. Keys and values are bytes, ordered bytewise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// MVCC: revision → encoded `mvccpb.KeyValue`.
    Key,
    /// Consistent index and term, compaction revisions, storage format.
    Meta,
    /// Lease ID → encoded lease.
    Lease,
    /// Auth enabled flag and auth revision.
    Auth,
    /// User name → encoded `authpb.User`.
    AuthUsers,
    /// Role name → encoded `authpb.Role`.
    AuthRoles,
    /// Member ID → encoded member.
    Members,
    /// IDs of members removed from the cluster.
    MembersRemoved,
    /// Raised alarms (NOSPACE, CORRUPT).
    Alarm,
    /// Cluster-wide settings (cluster version).
    Cluster,
}

impl Bucket {
    /// Every bucket, in the order of [`Bucket::position`].
    pub const ALL: [Bucket; 10] = [
        Bucket::Key,
        Bucket::Meta,
        Bucket::Lease,
        Bucket::Auth,
        Bucket::AuthUsers,
        Bucket::AuthRoles,
        Bucket::Members,
        Bucket::MembersRemoved,
        Bucket::Alarm,
        Bucket::Cluster,
    ];

    /// The number of buckets.
    pub const COUNT: usize = Self::ALL.len();

    /// etcd's name for the bucket, used as the redb table name.
    pub const fn name(self) -> &'static str {
        match self {
            Bucket::Key => "key",
            Bucket::Meta => "meta",
            Bucket::Lease => "lease",
            Bucket::Auth => "auth",
            Bucket::AuthUsers => "authUsers",
            Bucket::AuthRoles => "authRoles",
            Bucket::Members => "members",
            Bucket::MembersRemoved => "members_removed",
            Bucket::Alarm => "alarm",
            Bucket::Cluster => "cluster",
        }
    }

    /// Index of the bucket in [`Bucket::ALL`], for per-bucket arrays.
    pub const fn position(self) -> usize {
        self as usize
    }

    pub(crate) const fn table(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_all() {
        for (position, bucket) in Bucket::ALL.iter().enumerate() {
            assert_eq!(bucket.position(), position, "{bucket:?}");
        }
    }
}

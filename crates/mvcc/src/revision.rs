//! Revisions and their encoding as backend keys.
//!
//! A revision `(main, sub)` names one change: `main` is the store revision of the write
//! transaction that made it, `sub` its position inside that transaction. In the `key` bucket a
//! change is stored under 8 bytes big-endian `main`, a `_`, 8 bytes big-endian `sub` (17
//! bytes), plus a trailing `t` when the change is a deletion (a tombstone), exactly as etcd lays
//! it out, so that bytewise order is revision order.

use bytes::Bytes;

/// One change in the store's history. Ordered by `main`, then `sub`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

/// Length of an encoded revision.
pub(crate) const REVISION_BYTES: usize = 17;
/// Length of an encoded revision with the tombstone mark.
pub(crate) const MARKED_REVISION_BYTES: usize = REVISION_BYTES + 1;
const TOMBSTONE_MARK: u8 = b't';

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }

    /// The backend key of this revision.
    pub(crate) fn to_key(self, tombstone: bool) -> Bytes {
        let mut key = Vec::with_capacity(MARKED_REVISION_BYTES);
        key.extend_from_slice(&self.main.to_be_bytes());
        key.push(b'_');
        key.extend_from_slice(&self.sub.to_be_bytes());
        if tombstone {
            key.push(TOMBSTONE_MARK);
        }
        Bytes::from(key)
    }

    /// The first backend key at or after revision `(main, 0)`: a range bound.
    pub(crate) fn bound(main: i64) -> [u8; REVISION_BYTES] {
        let mut key = [0u8; REVISION_BYTES];
        key[..8].copy_from_slice(&main.to_be_bytes());
        key[8] = b'_';
        key
    }
}

/// A decoded backend key of the `key` bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RevisionKey {
    pub revision: Revision,
    pub tombstone: bool,
}

impl RevisionKey {
    /// Decodes a backend key; `None` if it is not one this module wrote.
    pub(crate) fn decode(key: &[u8]) -> Option<RevisionKey> {
        let tombstone = match key.len() {
            REVISION_BYTES => false,
            MARKED_REVISION_BYTES if key[REVISION_BYTES] == TOMBSTONE_MARK => true,
            _ => return None,
        };
        if key[8] != b'_' {
            return None;
        }
        let main = i64::from_be_bytes(key[..8].try_into().ok()?);
        let sub = i64::from_be_bytes(key[9..17].try_into().ok()?);
        Some(RevisionKey {
            revision: Revision { main, sub },
            tombstone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_in_revision_order() {
        let revisions = [
            Revision::new(1, 0),
            Revision::new(1, 1),
            Revision::new(2, 0),
            Revision::new(256, 3),
        ];
        let keys: Vec<Bytes> = revisions.iter().map(|r| r.to_key(false)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (revision, key) in revisions.iter().zip(&keys) {
            assert_eq!(
                RevisionKey::decode(key),
                Some(RevisionKey {
                    revision: *revision,
                    tombstone: false
                })
            );
        }
        let marked = Revision::new(5, 2).to_key(true);
        assert_eq!(marked.len(), 18);
        assert_eq!(&marked[..17], &Revision::new(5, 2).to_key(false)[..]);
        assert_eq!(
            RevisionKey::decode(&marked),
            Some(RevisionKey {
                revision: Revision::new(5, 2),
                tombstone: true
            })
        );
        assert_eq!(RevisionKey::decode(b"short"), None);
        assert_eq!(
            &Revision::bound(2)[..],
            &Revision::new(2, 0).to_key(false)[..]
        );
    }
}

//! The in-memory batch: changes applied since the last commit, readable by views.
//!
//! A batch is written only under the backend's writer lock, read by any number of views, and
//! frozen (never written again) once the committer takes it. Each bucket's changes sit in an
//! ordered map so that ranges merge in order with the redb snapshot below.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use bytes::Bytes;

use crate::Bucket;

/// `None` marks a deletion that hides whatever lies below.
pub(crate) type Change = Option<Bytes>;

#[derive(Default)]
pub(crate) struct Batch {
    buckets: RwLock<[BTreeMap<Bytes, Change>; Bucket::COUNT]>,
}

impl Batch {
    /// Records a change; returns whether `key` is new to the batch (a rewrite of a key
    /// already in it, like the consistent index, costs the commit nothing more).
    pub(crate) fn set(&self, bucket: Bucket, key: Bytes, change: Change) -> bool {
        let mut buckets = self
            .buckets
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        buckets[bucket.position()].insert(key, change).is_none()
    }

    /// The change recorded for `key`, if any: `Some(None)` is a deletion.
    pub(crate) fn get(&self, bucket: Bucket, key: &[u8]) -> Option<Change> {
        let buckets = self
            .buckets
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        buckets[bucket.position()].get(key).cloned()
    }

    /// Changes with `start <= key < end` (`end` `None`: no upper bound), in key order.
    pub(crate) fn changes_in(
        &self,
        bucket: Bucket,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Vec<(Bytes, Change)> {
        let buckets = self
            .buckets
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let upper = match end {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        buckets[bucket.position()]
            .range::<[u8], _>((Bound::Included(start), upper))
            .map(|(key, change)| (key.clone(), change.clone()))
            .collect()
    }

    /// Visits every change, bucket by bucket, in key order. Used by the committer on a frozen
    /// batch.
    pub(crate) fn for_each_bucket<E>(
        &self,
        mut visit: impl FnMut(Bucket, &BTreeMap<Bytes, Change>) -> Result<(), E>,
    ) -> Result<(), E> {
        let buckets = self
            .buckets
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        for bucket in Bucket::ALL {
            let changes = &buckets[bucket.position()];
            if !changes.is_empty() {
                visit(bucket, changes)?;
            }
        }
        Ok(())
    }
}

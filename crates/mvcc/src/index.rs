//! The in-memory index of every key's history: etcd's `treeIndex`.
//!
//! An ordered map from key to [`KeyIndex`], behind a read-write lock: readers (ranges, compares)
//! share it, the one writer (the apply loop) and the compactor take it briefly per change or per
//! chunk of keys. It holds revisions only; the key-values themselves live in the backend.

use std::collections::{BTreeMap, HashSet};
use std::ops::{Bound, ControlFlow};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use crate::key_index::{KeyAt, KeyIndex, KeyNotLive};
use crate::{KeyRange, Revision};

/// Keys compacted per hold of the write lock, so that compaction never stalls the apply loop
/// for long.
const COMPACTION_KEYS_PER_LOCK: usize = 10_000;

/// Keys are owned boxes (16 bytes and one exact allocation each), not `Bytes`.
type Tree = BTreeMap<Box<[u8]>, KeyIndex>;

/// One change read from the backend at open, for [`TreeIndex::restore`].
pub(crate) struct StoredChange {
    pub key: Box<[u8]>,
    pub revision: Revision,
    pub tombstone: bool,
    /// Main revision of the generation's creation, from the stored key-value.
    pub created: i64,
    /// The key's version at this change, from the stored key-value.
    pub version: i64,
}

#[derive(Default)]
pub(crate) struct TreeIndex {
    tree: RwLock<Tree>,
}

impl TreeIndex {
    /// Revisions of the keys in `range` that existed at `at`, in key order, at most `limit` of
    /// them (0: no limit), and how many there were in all.
    pub(crate) fn revisions(
        &self,
        range: &KeyRange,
        at: i64,
        limit: usize,
    ) -> (Vec<Revision>, usize) {
        let mut revisions = Vec::new();
        let mut total = 0;
        visit(&self.read(), range, |_, ki| {
            if let Some(found) = ki.get(at) {
                if limit == 0 || revisions.len() < limit {
                    revisions.push(found.modified);
                }
                total += 1;
            }
            ControlFlow::Continue(())
        });
        (revisions, total)
    }

    /// How many keys in `range` existed at `at`.
    pub(crate) fn count(&self, range: &KeyRange, at: i64) -> usize {
        let mut total = 0;
        visit(&self.read(), range, |_, ki| {
            if ki.get(at).is_some() {
                total += 1;
            }
            ControlFlow::Continue(())
        });
        total
    }

    /// The keys in `range` that existed at `at`, in key order.
    pub(crate) fn keys(&self, range: &KeyRange, at: i64) -> Vec<Bytes> {
        let mut keys = Vec::new();
        visit(&self.read(), range, |key, ki| {
            if ki.get(at).is_some() {
                keys.push(Bytes::copy_from_slice(key));
            }
            ControlFlow::Continue(())
        });
        keys
    }

    /// Records a put of `key` at `revision`; returns the key as it was just before, at
    /// `revision.main` (so an earlier change in the same transaction counts). One lookup: the
    /// apply loop's put needs both, and a second walk of the tree was 2% of a put's CPU.
    pub(crate) fn put(&self, key: &[u8], revision: Revision) -> Option<KeyAt> {
        let mut tree = self.write();
        match tree.get_mut(key) {
            Some(ki) => {
                let before = ki.get(revision.main);
                ki.put(revision);
                before
            }
            None => {
                let mut ki = KeyIndex::default();
                ki.put(revision);
                // A copy: the caller's bytes may be a slice of a much larger request buffer.
                tree.insert(Box::from(key), ki);
                None
            }
        }
    }

    /// Records the deletion of `key` at `revision`.
    pub(crate) fn tombstone(&self, key: &[u8], revision: Revision) -> Result<(), KeyNotLive> {
        self.write()
            .get_mut(key)
            .ok_or(KeyNotLive)
            .and_then(|ki| ki.tombstone(revision))
    }

    /// Compacts every key's history at `at` (see [`KeyIndex::compact`]) and drops keys with
    /// nothing left. Returns the revisions at or below `at` that must stay in the backend.
    pub(crate) fn compact(&self, at: i64) -> HashSet<Revision> {
        let mut available = HashSet::new();
        let mut resume_after: Option<Box<[u8]>> = None;
        loop {
            let mut tree = self.write();
            let lower = match &resume_after {
                Some(key) => Bound::Excluded(key.as_ref()),
                None => Bound::Unbounded,
            };
            let mut emptied = Vec::new();
            let mut visited = 0;
            for (key, ki) in tree
                .range_mut::<[u8], _>((lower, Bound::Unbounded))
                .take(COMPACTION_KEYS_PER_LOCK)
            {
                ki.compact(at, &mut available);
                if ki.is_empty() {
                    emptied.push(key.clone());
                }
                visited += 1;
                resume_after = Some(key.clone());
            }
            for key in emptied {
                tree.remove(&key);
            }
            if visited < COMPACTION_KEYS_PER_LOCK {
                return available;
            }
        }
    }

    /// The revisions at or below `at` that a compaction at `at` would keep.
    pub(crate) fn keep(&self, at: i64) -> HashSet<Revision> {
        let mut available = HashSet::new();
        for ki in self.read().values() {
            ki.keep(at, &mut available);
        }
        available
    }

    /// Rebuilds the index from every change stored in the backend (at open, or after the
    /// backend's contents were replaced). Changes are sorted by key, then revision; each key's first change sets up its
    /// generation (from the stored `created` and `version`, or as a closed generation if it is
    /// a tombstone a compaction kept), later ones replay as put or tombstone. The map is then
    /// built in one pass from sorted input, rather than by a million random inserts.
    pub(crate) fn restore(&self, mut changes: Vec<StoredChange>) {
        changes.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(a.revision.cmp(&b.revision)));
        let mut keys: Vec<(Box<[u8]>, KeyIndex)> = Vec::new();
        for change in changes {
            match keys.last_mut() {
                Some((key, ki)) if *key == change.key => {
                    if change.tombstone {
                        // Only a key already deleted would refuse, and a deleted key is not
                        // stored twice: nothing to do then.
                        let _ = ki.tombstone(change.revision);
                    } else {
                        ki.put(change.revision);
                    }
                }
                _ => {
                    let mut ki = KeyIndex::default();
                    if change.tombstone {
                        ki.restore_tombstone(change.revision);
                    } else {
                        ki.restore(
                            Revision::new(change.created, 0),
                            change.revision,
                            change.version,
                        );
                    }
                    keys.push((change.key, ki));
                }
            }
        }
        // Replaces whatever the index held (a snapshot installed over a used store).
        *self.write() = keys.into_iter().collect();
    }

    /// Number of keys with any history left.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tree> {
        self.tree
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Visits the keys of `range` in order until `f` breaks.
fn visit(tree: &Tree, range: &KeyRange, mut f: impl FnMut(&[u8], &KeyIndex) -> ControlFlow<()>) {
    let bounds: (Bound<&[u8]>, Bound<&[u8]>) = match range {
        KeyRange::Single(key) => {
            if let Some((key, ki)) = tree.get_key_value(key.as_ref()) {
                let _ = f(key, ki);
            }
            return;
        }
        KeyRange::Between { start, end } => {
            if end <= start {
                return;
            }
            (
                Bound::Included(start.as_ref()),
                Bound::Excluded(end.as_ref()),
            )
        }
        KeyRange::From(start) => (Bound::Included(start.as_ref()), Bound::Unbounded),
    };
    for (key, ki) in tree.range::<[u8], _>(bounds) {
        if f(key, ki).is_break() {
            return;
        }
    }
}

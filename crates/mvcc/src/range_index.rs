//! Which watched key ranges contain a key: the lookup the watch hub makes for every change.
//!
//! Ranges are kept sorted by start key in blocks of at most [`BLOCK_MAX`], each block knowing
//! the largest end among its ranges. A lookup walks the blocks that start at or before the key,
//! skips every block whose largest end is at or before it, and scans the rest. With `n` ranges
//! of which `m` contain the key it costs about `n / BLOCK_MAX` block checks plus the scanned
//! blocks, instead of `n` range checks. Insert and remove touch one block.
//!
//! What it does not own: the watchers themselves (it stores the hub's keys for them).

use bytes::Bytes;

/// Ranges per block before it is split in two.
const BLOCK_MAX: usize = 64;

/// The end of a range: a key (exclusive), or none.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RangeEnd {
    Key(Bytes),
    Unbounded,
}

impl RangeEnd {
    fn is_after(&self, key: &[u8]) -> bool {
        match self {
            RangeEnd::Key(end) => end.as_ref() > key,
            RangeEnd::Unbounded => true,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    start: Bytes,
    end: RangeEnd,
    id: u64,
}

#[derive(Clone, Debug)]
struct Block {
    /// Sorted by `(start, id)`; never empty.
    entries: Vec<Entry>,
    max_end: RangeEnd,
}

impl Block {
    fn first_start(&self) -> &[u8] {
        self.entries.first().map_or(&[], |entry| &entry.start)
    }

    fn recompute_max_end(&mut self) {
        self.max_end = self
            .entries
            .iter()
            .map(|entry| entry.end.clone())
            .max()
            .unwrap_or(RangeEnd::Key(Bytes::new()));
    }
}

/// Ranges `[start, end)` by ID.
#[derive(Clone, Debug, Default)]
pub(crate) struct RangeIndex {
    /// Ordered by first start; none is empty.
    blocks: Vec<Block>,
}

impl RangeIndex {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.blocks.iter().map(|block| block.entries.len()).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub(crate) fn insert(&mut self, start: Bytes, end: RangeEnd, id: u64) {
        let entry = Entry { start, end, id };
        // The last block starting at or before the new range (or the first block).
        let at = self
            .blocks
            .partition_point(|block| block.first_start() <= entry.start.as_ref())
            .saturating_sub(1);
        let Some(block) = self.blocks.get_mut(at) else {
            self.blocks.push(Block {
                max_end: entry.end.clone(),
                entries: vec![entry],
            });
            return;
        };
        if entry.end > block.max_end {
            block.max_end = entry.end.clone();
        }
        let position = block
            .entries
            .partition_point(|other| (&other.start, other.id) < (&entry.start, entry.id));
        block.entries.insert(position, entry);
        if block.entries.len() > BLOCK_MAX {
            let upper = block.entries.split_off(BLOCK_MAX / 2);
            block.recompute_max_end();
            let mut upper = Block {
                entries: upper,
                max_end: RangeEnd::Key(Bytes::new()),
            };
            upper.recompute_max_end();
            self.blocks.insert(at + 1, upper);
        }
    }

    /// Removes the range `id` that starts at `start`; false if there is none.
    pub(crate) fn remove(&mut self, start: &[u8], id: u64) -> bool {
        // Ranges with equal starts may spread over several blocks: look back from the last
        // block that starts at or before `start`.
        let last = self
            .blocks
            .partition_point(|block| block.first_start() <= start);
        for at in (0..last).rev() {
            let block = &mut self.blocks[at];
            if let Some(position) = block
                .entries
                .iter()
                .position(|entry| entry.id == id && entry.start.as_ref() == start)
            {
                block.entries.remove(position);
                if block.entries.is_empty() {
                    self.blocks.remove(at);
                } else {
                    block.recompute_max_end();
                }
                return true;
            }
            if block.first_start() < start {
                break;
            }
        }
        false
    }

    /// Calls `found` with the ID of every range containing `key`.
    pub(crate) fn for_each_containing(&self, key: &[u8], mut found: impl FnMut(u64)) {
        for block in &self.blocks {
            if block.first_start() > key {
                break;
            }
            if !block.max_end.is_after(key) {
                continue;
            }
            for entry in &block.entries {
                if entry.start.as_ref() > key {
                    break;
                }
                if entry.end.is_after(key) {
                    found(entry.id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(n: u8) -> Bytes {
        Bytes::from(vec![b'k', n])
    }

    proptest! {
        /// The index answers as a scan of every range would, through inserts and removes.
        #[test]
        fn lookups_agree_with_a_scan(
            ops in proptest::collection::vec((0u8..40, 0u8..45, any::<bool>(), any::<bool>()), 1..400),
        ) {
            let mut index = RangeIndex::default();
            let mut model: Vec<(Bytes, RangeEnd, u64)> = Vec::new();
            for (id, (start, end, unbounded, remove)) in ops.into_iter().enumerate() {
                let id = id as u64;
                if remove && !model.is_empty() {
                    let (start, _, victim) = model.remove(start as usize % model.len());
                    prop_assert!(index.remove(&start, victim));
                } else {
                    let end = if unbounded { RangeEnd::Unbounded } else { RangeEnd::Key(key(end)) };
                    index.insert(key(start), end.clone(), id);
                    model.push((key(start), end, id));
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for point in 0u8..50 {
                let point = key(point);
                let mut found = Vec::new();
                index.for_each_containing(&point, |id| found.push(id));
                found.sort_unstable();
                let mut expected: Vec<u64> = model
                    .iter()
                    .filter(|(start, end, _)| start <= &point && end.is_after(&point))
                    .map(|(_, _, id)| *id)
                    .collect();
                expected.sort_unstable();
                prop_assert_eq!(found, expected);
            }
        }
    }

    #[test]
    fn removing_an_unknown_range_changes_nothing() {
        let mut index = RangeIndex::default();
        index.insert(key(1), RangeEnd::Key(key(5)), 7);
        assert!(!index.remove(&key(1), 8));
        assert!(!index.remove(&key(2), 7));
        assert_eq!(index.len(), 1);
        let mut found = Vec::new();
        index.for_each_containing(&key(3), |id| found.push(id));
        assert_eq!(found, vec![7]);
    }
}

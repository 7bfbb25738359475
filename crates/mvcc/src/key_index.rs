//! The history of one key: etcd's `keyIndex`.
//!
//! A key's life is a list of generations. A generation starts with the put that creates the key
//! and ends with the deletion (tombstone) of it; the next put starts a new generation. Each
//! generation holds the revisions of its changes, oldest first, and counts versions:
//!
//! ```text
//! put(1.0); put(2.0); tombstone(3.0); put(4.0); tombstone(5.0)
//! generations: {1.0, 2.0, t3.0} {4.0, t5.0} {empty}
//! ```
//!
//! The last generation is the current one; it is empty while the key does not exist. The
//! semantics follow etcd's `key_index.go` exactly: clients see their results through versions
//! and revisions. Compaction keeps the newest revision at or below the compaction point even
//! when it is a tombstone (etcd since 3.5.16 / 3.4.34: a watcher starting at the compaction
//! revision still gets the deletion); [`KeyIndex::keep`], used for hashing, leaves such a
//! tombstone out so that hashes agree with members that deleted it.

use std::collections::HashSet;

use smallvec::SmallVec;

use crate::Revision;

/// Most keys have one live generation of a few revisions (older ones go at compaction): both
/// are stored inline, so a typical key costs no allocation beyond its map slot.
type Revisions = SmallVec<[Revision; 1]>;
type Generations = SmallVec<[Generation; 1]>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Generation {
    /// Version of the key at the newest revision of this generation.
    version: i64,
    /// Revision that created the key in this generation.
    created: Revision,
    /// Revisions of this generation, oldest first; the last is a tombstone in all but the
    /// current generation.
    revisions: Revisions,
}

impl Generation {
    fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }

    /// Walks revisions newest first; returns the position of the first one for which
    /// `keep_walking` is false.
    fn walk(&self, mut keep_walking: impl FnMut(Revision) -> bool) -> Option<usize> {
        (0..self.revisions.len())
            .rev()
            .find(|&position| !keep_walking(self.revisions[position]))
    }
}

/// What a key looked like at some revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyAt {
    /// The revision of the key's value at that point.
    pub modified: Revision,
    /// The revision that created the key's generation.
    pub created: Revision,
    /// The key's version at that point.
    pub version: i64,
}

/// The history of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    /// Newest revision of the key, tombstones included.
    modified: Revision,
    generations: Generations,
}

/// A tombstone for a key that does not exist at the time: a bug in the caller.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyNotLive;

impl KeyIndex {
    /// Records a put at `revision`, which must be newer than any before.
    pub(crate) fn put(&mut self, revision: Revision) {
        debug_assert!(
            revision > self.modified,
            "revision {revision:?} not newer than {:?}",
            self.modified
        );
        if self.generations.is_empty() {
            self.generations.push(Generation::default());
        }
        let generation = self.generations.last_mut().expect("pushed above");
        if generation.revisions.is_empty() {
            generation.created = revision;
        }
        generation.revisions.push(revision);
        generation.version += 1;
        self.modified = revision;
    }

    /// Rebuilds a generation from its newest surviving revision, as read from the backend after
    /// a compaction may have removed older ones: `created` and `version` come from the stored
    /// key-value.
    pub(crate) fn restore(&mut self, created: Revision, modified: Revision, version: i64) {
        debug_assert!(self.generations.is_empty(), "restore into a used index");
        self.modified = modified;
        self.generations.push(Generation {
            version,
            created,
            revisions: smallvec::smallvec![modified],
        });
    }

    /// Rebuilds a key whose oldest surviving revision is its deletion (a compaction kept the
    /// tombstone): a generation of that one revision, closed.
    pub(crate) fn restore_tombstone(&mut self, revision: Revision) {
        self.restore(Revision::default(), revision, 1);
        self.generations.push(Generation::default());
    }

    /// Records the deletion of the key at `revision` and opens a new, empty generation.
    pub(crate) fn tombstone(&mut self, revision: Revision) -> Result<(), KeyNotLive> {
        match self.generations.last() {
            Some(current) if !current.is_empty() => {}
            _ => return Err(KeyNotLive),
        }
        self.put(revision);
        self.generations.push(Generation::default());
        Ok(())
    }

    /// The key as of store revision `at`; `None` if it did not exist then.
    pub(crate) fn get(&self, at: i64) -> Option<KeyAt> {
        let generation = self.find_generation(at)?;
        let position = generation.walk(|revision| revision.main > at)?;
        let newer_in_generation = (generation.revisions.len() - position - 1) as i64;
        Some(KeyAt {
            modified: generation.revisions[position],
            created: generation.created,
            version: generation.version - newer_in_generation,
        })
    }

    /// The generation live at revision `at`, if the key existed then.
    fn find_generation(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len().checked_sub(1)?;
        for (position, generation) in self.generations.iter().enumerate().rev() {
            let (Some(first), Some(newest)) =
                (generation.revisions.first(), generation.revisions.last())
            else {
                continue;
            };
            // A past generation ended with its tombstone: at or after it the key was gone.
            if position != last && newest.main <= at {
                return None;
            }
            if first.main <= at {
                return Some(generation);
            }
        }
        None
    }

    /// Revisions of changes with main revision `>= since`, one per main revision (the last
    /// change of a transaction wins), oldest first: what a watcher from `since` must see.
    /// Not called yet: the watchable store (watch issue) replays history through it.
    #[allow(dead_code)]
    pub(crate) fn since(&self, since: i64) -> Vec<Revision> {
        let since = Revision::new(since, 0);
        let mut start = self.generations.len().saturating_sub(1);
        while start > 0 {
            let generation = &self.generations[start];
            if !generation.is_empty() && since > generation.created {
                break;
            }
            start -= 1;
        }
        let mut revisions: Vec<Revision> = Vec::new();
        for generation in &self.generations[start..] {
            for &revision in &generation.revisions {
                if since > revision {
                    continue;
                }
                match revisions.last_mut() {
                    Some(last) if last.main == revision.main => *last = revision,
                    _ => revisions.push(revision),
                }
            }
        }
        revisions
    }

    /// Removes revisions made obsolete by a compaction at `at`: everything at or below `at`
    /// except the newest such revision, which is kept (and added to `available`), and the
    /// generations wholly before it.
    pub(crate) fn compact(&mut self, at: i64, available: &mut HashSet<Revision>) {
        let (generation_position, revision_position) = self.locate_compaction(at);
        let generation = &mut self.generations[generation_position];
        if let Some(position) = revision_position {
            available.insert(generation.revisions[position]);
            generation.revisions.drain(..position);
        }
        self.generations.drain(..generation_position);
    }

    /// Adds to `available` the revision a compaction at `at` would keep, without compacting;
    /// a tombstone is left out (see the module doc).
    pub(crate) fn keep(&self, at: i64, available: &mut HashSet<Revision>) {
        if self.is_empty() {
            return;
        }
        let (generation_position, revision_position) = self.locate_compaction(at);
        let generation = &self.generations[generation_position];
        if let Some(position) = revision_position {
            let tombstone_of_past_generation = position == generation.revisions.len() - 1
                && generation_position != self.generations.len() - 1;
            if !tombstone_of_past_generation {
                available.insert(generation.revisions[position]);
            }
        }
    }

    /// The generation holding the compaction point `at` (the first one whose tombstone is not
    /// before `at`, or the current one), and in it the newest revision at or below `at`.
    fn locate_compaction(&self, at: i64) -> (usize, Option<usize>) {
        let mut generation_position = 0;
        while generation_position + 1 < self.generations.len() {
            let generation = &self.generations[generation_position];
            let tombstone = generation.revisions.last().map_or(i64::MIN, |r| r.main);
            if tombstone >= at {
                break;
            }
            generation_position += 1;
        }
        let revision_position =
            self.generations[generation_position].walk(|revision| revision.main > at);
        (generation_position, revision_position)
    }

    /// True when nothing of the key's history is left (after a compaction).
    pub(crate) fn is_empty(&self) -> bool {
        self.generations.is_empty()
            || (self.generations.len() == 1 && self.generations[0].is_empty())
    }
}

#[cfg(test)]
mod tests {
    //! The cases of etcd's `key_index_test.go`, on the same history.
    use super::*;

    fn rev(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// etcd's newTestKeyIndex: generations {2, 4, t6} {8, 10, t12} {14, 15.1, t16} {}.
    fn sample() -> KeyIndex {
        let mut ki = KeyIndex::default();
        ki.put(rev(2));
        ki.put(rev(4));
        ki.tombstone(rev(6)).unwrap();
        ki.put(rev(8));
        ki.put(rev(10));
        ki.tombstone(rev(12)).unwrap();
        ki.put(rev(14));
        ki.put(Revision::new(15, 1));
        ki.tombstone(rev(16)).unwrap();
        ki
    }

    fn mains(ki: &KeyIndex) -> Vec<Vec<i64>> {
        ki.generations
            .iter()
            .map(|g| g.revisions.iter().map(|r| r.main).collect())
            .collect()
    }

    #[test]
    fn get_follows_etcd() {
        let mut ki = sample();
        ki.compact(4, &mut HashSet::new());
        let at = |modified: Revision, created: i64, version: i64| {
            Some(KeyAt {
                modified,
                created: rev(created),
                version,
            })
        };
        assert_eq!(ki.get(17), None);
        assert_eq!(ki.get(16), None);
        assert_eq!(ki.get(15), at(Revision::new(15, 1), 14, 2));
        assert_eq!(ki.get(14), at(rev(14), 14, 1));
        assert_eq!(ki.get(13), None);
        assert_eq!(ki.get(12), None);
        assert_eq!(ki.get(11), at(rev(10), 8, 2));
        assert_eq!(ki.get(10), at(rev(10), 8, 2));
        assert_eq!(ki.get(9), at(rev(8), 8, 1));
        assert_eq!(ki.get(8), at(rev(8), 8, 1));
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(6), None);
        assert_eq!(ki.get(5), at(rev(4), 2, 2));
        assert_eq!(ki.get(4), at(rev(4), 2, 2));
        for gone in 0..=3 {
            assert_eq!(ki.get(gone), None, "at {gone}");
        }
    }

    #[test]
    fn since_follows_etcd() {
        let mut ki = sample();
        ki.compact(4, &mut HashSet::new());
        let all = [
            rev(4),
            rev(6),
            rev(8),
            rev(10),
            rev(12),
            rev(14),
            Revision::new(15, 1),
            rev(16),
        ];
        let cases: &[(i64, usize)] = &[
            (16, 7),
            (15, 6),
            (14, 5),
            (13, 5),
            (12, 4),
            (11, 4),
            (10, 3),
            (9, 3),
            (8, 2),
            (7, 2),
            (6, 1),
            (5, 1),
            (4, 0),
            (0, 0),
        ];
        for &(since, from) in cases {
            assert_eq!(ki.since(since), all[from..], "since {since}");
        }
        assert_eq!(ki.since(17), Vec::<Revision>::new());
    }

    #[test]
    fn tombstone_of_a_deleted_key_is_refused() {
        let mut ki = KeyIndex::default();
        ki.put(rev(5));
        ki.tombstone(rev(7)).unwrap();
        assert_eq!(ki.tombstone(rev(8)), Err(KeyNotLive));
    }

    #[test]
    fn a_restored_tombstone_is_gone_and_compacts_away() {
        let mut ki = KeyIndex::default();
        ki.restore_tombstone(rev(16));
        for at in 16..=20 {
            assert_eq!(ki.get(at), None);
        }
        let mut available = HashSet::new();
        ki.clone().compact(16, &mut available);
        assert_eq!(
            available,
            HashSet::from([rev(16)]),
            "compaction keeps the tombstone"
        );
        ki.put(rev(17));
        ki.put(rev(18));
        assert_eq!(ki.since(16), [rev(16), rev(17), rev(18)]);
        ki.compact(17, &mut HashSet::new());
        assert_eq!(mains(&ki), [vec![17, 18]]);
    }

    /// etcd's TestKeyIndexCompactAndKeep: what remains after compacting at each revision, and
    /// what is available, compacting continuously, by jumps, and once.
    #[test]
    fn compact_and_keep_follow_etcd() {
        type Case = (i64, &'static [&'static [i64]], &'static [(i64, i64)]);
        let cases: Vec<Case> = vec![
            (1, &[&[2, 4, 6], &[8, 10, 12], &[14, 15, 16], &[]], &[]),
            (
                2,
                &[&[2, 4, 6], &[8, 10, 12], &[14, 15, 16], &[]],
                &[(2, 0)],
            ),
            (
                3,
                &[&[2, 4, 6], &[8, 10, 12], &[14, 15, 16], &[]],
                &[(2, 0)],
            ),
            (4, &[&[4, 6], &[8, 10, 12], &[14, 15, 16], &[]], &[(4, 0)]),
            (5, &[&[4, 6], &[8, 10, 12], &[14, 15, 16], &[]], &[(4, 0)]),
            (6, &[&[6], &[8, 10, 12], &[14, 15, 16], &[]], &[(6, 0)]),
            (7, &[&[8, 10, 12], &[14, 15, 16], &[]], &[]),
            (8, &[&[8, 10, 12], &[14, 15, 16], &[]], &[(8, 0)]),
            (9, &[&[8, 10, 12], &[14, 15, 16], &[]], &[(8, 0)]),
            (10, &[&[10, 12], &[14, 15, 16], &[]], &[(10, 0)]),
            (11, &[&[10, 12], &[14, 15, 16], &[]], &[(10, 0)]),
            (12, &[&[12], &[14, 15, 16], &[]], &[(12, 0)]),
            (13, &[&[14, 15, 16], &[]], &[]),
            (14, &[&[14, 15, 16], &[]], &[(14, 0)]),
            (15, &[&[15, 16], &[]], &[(15, 1)]),
            (16, &[&[16], &[]], &[(16, 0)]),
            (17, &[&[]], &[]),
        ];
        let is_tombstone = |ki: &KeyIndex, at: i64| {
            ki.generations[..ki.generations.len() - 1]
                .iter()
                .any(|g| g.revisions.last().is_some_and(|r| r.main == at))
        };
        let check = |ki: &mut KeyIndex, &(at, want, available): &Case, continuous: bool| {
            let mut kept = HashSet::new();
            let before = ki.clone();
            ki.keep(at, &mut kept);
            assert_eq!(*ki, before, "keep changes nothing");
            let want_available: HashSet<Revision> = available
                .iter()
                .map(|&(main, sub)| Revision::new(main, sub))
                .collect();
            if is_tombstone(ki, at) {
                assert!(kept.is_empty(), "keep leaves tombstones out, at {at}");
            } else {
                assert_eq!(kept, want_available, "keep at {at}");
            }
            let mut got = HashSet::new();
            ki.compact(at, &mut got);
            let want: Vec<Vec<i64>> = want.iter().map(|g| g.to_vec()).collect();
            assert_eq!(
                mains(ki),
                want,
                "compact at {at} (continuous: {continuous})"
            );
            assert_eq!(
                got, want_available,
                "available at {at} (continuous: {continuous})"
            );
        };
        // Continuously.
        let mut ki = sample();
        for case in &cases {
            check(&mut ki, case, true);
        }
        // By jumps, skipping tombstone revisions.
        let mut ki = sample();
        for case in &cases {
            if !is_tombstone(&ki, case.0) {
                check(&mut ki, case, false);
            }
        }
        // Once, from the full history.
        for case in &cases {
            check(&mut sample(), case, false);
        }
    }
}

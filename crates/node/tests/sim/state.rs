//! What members apply, and the checks on it: each member's [`StateMachine`] (the payloads of
//! the entries it applied, in order) and the cluster-wide [`Ledger`] of every entry any member
//! applied, against which each application is checked, and which folds the conf changes into
//! the cluster's [`Membership`].

use std::collections::BTreeMap;

use stead_node::raft::eraftpb::{Entry, EntryType, Snapshot};

use crate::membership::{Membership, MembershipChange};

/// A member's state machine: the payloads of the normal, non-empty entries it applied, with
/// their raft indexes, in order. Snapshots carry it whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// The last entry applied (or loaded from a snapshot), of any kind.
    pub applied_index: u64,
    pub applied_term: u64,
    /// (raft index, payload).
    pub payloads: Vec<(u64, u64)>,
}

impl StateMachine {
    /// The snapshot data: 16 bytes per payload (index, payload), big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.payloads.len() * 16);
        for (index, payload) in &self.payloads {
            data.extend_from_slice(&index.to_be_bytes());
            data.extend_from_slice(&payload.to_be_bytes());
        }
        data
    }

    /// The state a snapshot holds.
    pub fn from_snapshot(snapshot: &Snapshot) -> Result<StateMachine, String> {
        let data = &snapshot.data[..];
        if !data.len().is_multiple_of(16) {
            return Err(format!(
                "snapshot data of {} bytes is not (index, payload) pairs",
                data.len()
            ));
        }
        let payloads = data
            .chunks_exact(16)
            .map(|pair| (u64_at(&pair[..8]), u64_at(&pair[8..])))
            .collect();
        let metadata = snapshot.get_metadata();
        Ok(StateMachine {
            applied_index: metadata.index,
            applied_term: metadata.term,
            payloads,
        })
    }
}

fn u64_at(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("eight bytes"))
}

/// What an applied entry was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ConfChange(MembershipChange),
    /// A normal entry without data (a new leader's first entry, or a conf change raft refused
    /// because another was pending).
    Empty,
    Payload(u64),
}

impl Kind {
    pub fn of(entry: &Entry) -> Result<Kind, String> {
        Ok(match entry.get_entry_type() {
            EntryType::EntryNormal if entry.data.is_empty() => Kind::Empty,
            EntryType::EntryNormal => Kind::Payload(u64_at(&entry.data)),
            EntryType::EntryConfChange => Kind::ConfChange(MembershipChange::decode(entry)?),
            EntryType::EntryConfChangeV2 => {
                return Err(format!(
                    "a joint conf change at index {}, which nobody proposed",
                    entry.index
                ));
            }
        })
    }
}

/// The first sighting of an applied entry.
#[derive(Clone, Copy, Debug)]
pub struct Sighting {
    pub term: u64,
    pub kind: Kind,
    pub member: u64,
    pub step: u64,
}

/// Every entry applied by any member, by raft index, and the membership they make.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: BTreeMap<u64, Sighting>,
    /// The configuration after every conf change in `entries`: the newest any member applied.
    membership: Membership,
}

impl Ledger {
    /// Records that `member` applied `entry` at `step`, and returns what it was. Err if another
    /// member applied a different entry at that index (committed entries differ).
    ///
    /// Indexes are first seen in order, without gaps: a member applies from its snapshot on, and
    /// a snapshot holds only what a member applied. So the conf changes fold in log order.
    pub fn observe(&mut self, member: u64, step: u64, entry: &Entry) -> Result<Kind, String> {
        let seen = Sighting {
            term: entry.term,
            kind: Kind::of(entry)?,
            member,
            step,
        };
        let Some(first) = self.entries.get(&entry.index) else {
            let last = self.last_index();
            if entry.index != last + 1 {
                return Err(format!(
                    "member {member} applied index {} first, but the ledger ends at {last}: \
                     nobody applied the indexes between",
                    entry.index
                ));
            }
            self.entries.insert(entry.index, seen);
            if let Kind::ConfChange(change) = seen.kind {
                self.membership.apply(entry.index, change).map_err(|e| {
                    format!("member {member} applied at index {}: {e}", entry.index)
                })?;
            }
            return Ok(seen.kind);
        };
        if (first.term, first.kind) != (seen.term, seen.kind) {
            return Err(format!(
                "member {member} applied {:?} of term {} at index {}, but member {} applied \
                 {:?} of term {} there at step {}",
                seen.kind, seen.term, entry.index, first.member, first.kind, first.term, first.step
            ));
        }
        Ok(seen.kind)
    }

    /// The configuration as of [`Ledger::last_index`].
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Err unless `state` holds exactly the payloads the ledger has up to its applied index: no
    /// applied entry lost, none made up, none moved.
    pub fn check(&self, state: &StateMachine) -> Result<(), String> {
        let expected = self.payloads_through(state.applied_index);
        if state.payloads == expected {
            return Ok(());
        }
        let differs_at = state
            .payloads
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(state.payloads.len().min(expected.len()));
        Err(format!(
            "the state machine at applied index {} holds {} payloads, the ledger {} through that \
             index; first difference at position {differs_at}: state has {:?}, ledger {:?}",
            state.applied_index,
            state.payloads.len(),
            expected.len(),
            state.payloads.get(differs_at),
            expected.get(differs_at),
        ))
    }

    /// The payloads applied at `index` or before, with their indexes.
    fn payloads_through(&self, index: u64) -> Vec<(u64, u64)> {
        self.entries
            .range(..=index)
            .filter_map(|(&index, sighting)| match sighting.kind {
                Kind::Payload(payload) => Some((index, payload)),
                _ => None,
            })
            .collect()
    }

    pub fn last_index(&self) -> u64 {
        self.entries.last_key_value().map_or(0, |(&index, _)| index)
    }

    pub fn payload_count(&self) -> usize {
        self.entries
            .values()
            .filter(|s| matches!(s.kind, Kind::Payload(_)))
            .count()
    }

    /// The index at which `payload` was applied, if it was.
    pub fn index_of(&self, payload: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, s)| s.kind == Kind::Payload(payload))
            .map(|(&index, _)| index)
    }
}

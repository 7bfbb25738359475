//! Membership: the conf changes the simulation proposes and finds in applied entries, and the
//! configuration they make, as the cluster-wide [`crate::state::Ledger`] folds them in log
//! order.

use std::collections::{BTreeMap, BTreeSet};

use protobuf::Message as _;
use stead_node::raft::eraftpb::{ConfChange, ConfChangeType, Entry};

/// What a conf change does to one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// `AddNode`: a new voter, or a learner promoted.
    AddVoter,
    /// `AddLearnerNode`: a new learner (or, on a voter, a demotion; the simulation never asks
    /// for one).
    AddLearner,
    /// `RemoveNode`.
    Remove,
}

/// One single-member conf change (raft-rs `ConfChange`, not the joint `ConfChangeV2`, which
/// neither the bootstrap nor the simulation proposes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipChange {
    pub kind: ChangeKind,
    pub member: u64,
}

impl MembershipChange {
    pub fn add_learner(member: u64) -> MembershipChange {
        MembershipChange {
            kind: ChangeKind::AddLearner,
            member,
        }
    }

    pub fn promote(member: u64) -> MembershipChange {
        MembershipChange {
            kind: ChangeKind::AddVoter,
            member,
        }
    }

    pub fn remove(member: u64) -> MembershipChange {
        MembershipChange {
            kind: ChangeKind::Remove,
            member,
        }
    }

    /// The change an `EntryConfChange` entry carries.
    pub fn decode(entry: &Entry) -> Result<MembershipChange, String> {
        let change = ConfChange::parse_from_bytes(&entry.data)
            .map_err(|e| format!("undecodable conf change at index {}: {e}", entry.index))?;
        let kind = match change.get_change_type() {
            ConfChangeType::AddNode => ChangeKind::AddVoter,
            ConfChangeType::AddLearnerNode => ChangeKind::AddLearner,
            ConfChangeType::RemoveNode => ChangeKind::Remove,
        };
        Ok(MembershipChange {
            kind,
            member: change.node_id,
        })
    }

    /// The conf change to propose.
    pub fn to_conf_change(self) -> ConfChange {
        let mut change = ConfChange::default();
        change.set_change_type(match self.kind {
            ChangeKind::AddVoter => ConfChangeType::AddNode,
            ChangeKind::AddLearner => ConfChangeType::AddLearnerNode,
            ChangeKind::Remove => ConfChangeType::RemoveNode,
        });
        change.node_id = self.member;
        change
    }
}

/// A configuration, built by applying conf changes in log order as raft does: a voter and a
/// learner set that never share an ID, plus every ID ever removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    voters: BTreeSet<u64>,
    learners: BTreeSet<u64>,
    /// The index of each removal.
    removed: BTreeMap<u64, u64>,
}

impl Membership {
    /// Applies `change`, the entry at `index`. Err if it adds back a member removed before: the
    /// simulation never proposes that (IDs are not reused), so raft would have committed a
    /// change out of order.
    pub fn apply(&mut self, index: u64, change: MembershipChange) -> Result<(), String> {
        let id = change.member;
        if change.kind != ChangeKind::Remove && self.removed.contains_key(&id) {
            return Err(format!(
                "{change:?} adds back member {id}, removed before ({self:?})"
            ));
        }
        match change.kind {
            ChangeKind::AddVoter => {
                self.learners.remove(&id);
                self.voters.insert(id);
            }
            ChangeKind::AddLearner => {
                self.voters.remove(&id);
                self.learners.insert(id);
            }
            ChangeKind::Remove => {
                let was_voter = self.voters.remove(&id);
                let was_learner = self.learners.remove(&id);
                // raft-rs ignores the removal of an ID it does not know.
                if was_voter || was_learner {
                    self.removed.insert(id, index);
                }
            }
        }
        Ok(())
    }

    /// Whether the change is in effect (it, or one with the same outcome, was applied).
    pub fn reflects(&self, change: MembershipChange) -> bool {
        let id = change.member;
        match change.kind {
            ChangeKind::AddVoter => self.voters.contains(&id),
            ChangeKind::AddLearner => self.learners.contains(&id),
            ChangeKind::Remove => !self.contains(id),
        }
    }

    pub fn voters(&self) -> &BTreeSet<u64> {
        &self.voters
    }

    pub fn learners(&self) -> &BTreeSet<u64> {
        &self.learners
    }

    /// Voters and learners.
    pub fn members(&self) -> BTreeSet<u64> {
        self.voters.union(&self.learners).copied().collect()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// The index at which `id` was removed, if it was a member once and was removed.
    pub fn removal_index(&self, id: u64) -> Option<u64> {
        self.removed.get(&id).copied()
    }
}

#[test]
fn changes_apply_in_order_as_raft_applies_them() {
    let mut membership = Membership::default();
    let changes = [
        MembershipChange::promote(1),
        MembershipChange::promote(2),
        MembershipChange::promote(3),
        MembershipChange::add_learner(4),
        MembershipChange::promote(4),
        MembershipChange::remove(1),
        MembershipChange::remove(9),
    ];
    for (index, change) in (1..).zip(changes) {
        membership.apply(index, change).expect("a valid change");
    }
    assert_eq!(membership.voters(), &BTreeSet::from([2, 3, 4]));
    assert!(membership.learners().is_empty());
    assert_eq!(membership.removal_index(1), Some(6));
    assert_eq!(membership.removal_index(9), None);
    assert!(membership.reflects(MembershipChange::remove(1)));
    assert!(membership.reflects(MembershipChange::promote(4)));
    assert!(!membership.reflects(MembershipChange::add_learner(4)));
    assert!(
        membership
            .apply(8, MembershipChange::add_learner(1))
            .is_err()
    );
}

//! The simulated network between members: messages wait in flight for a random number of
//! steps (so they arrive reordered), and each may be dropped or duplicated, or cut by a
//! partition. Every choice comes from a per-link PRNG stream.

use std::collections::{BTreeMap, BTreeSet};

use stead_node::raft::eraftpb::{Message, MessageType};

use crate::rng::Rng;

/// How unreliable the network is; fixed per seed, all zero in the quiet end phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetworkFaults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice (each copy with its own delay).
    pub duplicate: f64,
    /// A message sent at step `s` arrives at `s + 1 + d`, `d` uniform in `0..=delay_steps_max`.
    pub delay_steps_max: u64,
}

/// What happened to messages, for the run's summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetworkCounts {
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// Lost to a partition (when sent or when due).
    pub cut: u64,
}

pub struct Network {
    seed: u64,
    pub faults: NetworkFaults,
    /// Messages by (due step, order sent): a `BTreeMap` so delivery order is deterministic.
    in_flight: BTreeMap<(u64, u64), Message>,
    order: u64,
    /// One PRNG stream per (from, to) link.
    links: BTreeMap<(u64, u64), Rng>,
    /// Members cut off from the others while a partition lasts.
    partition: Option<BTreeSet<u64>>,
    /// Loses every snapshot message (for a scenario; no seed sets it).
    pub loses_snapshots: bool,
    /// Snapshot messages lost on the way, as (from, to): a real transport learns it (its
    /// snapshot stream fails) and reports it to the sender's raft.
    pub snapshots_lost: Vec<(u64, u64)>,
    pub counts: NetworkCounts,
}

impl Network {
    pub fn new(seed: u64, faults: NetworkFaults) -> Network {
        Network {
            seed,
            faults,
            in_flight: BTreeMap::new(),
            order: 0,
            links: BTreeMap::new(),
            partition: None,
            loses_snapshots: false,
            snapshots_lost: Vec::new(),
            counts: NetworkCounts::default(),
        }
    }

    /// Splits the members in two: `side` and the rest can no longer reach each other.
    pub fn partition(&mut self, side: BTreeSet<u64>) {
        self.partition = Some(side);
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }

    pub fn is_partitioned(&self) -> bool {
        self.partition.is_some()
    }

    fn connected(&self, from: u64, to: u64) -> bool {
        self.partition
            .as_ref()
            .is_none_or(|side| side.contains(&from) == side.contains(&to))
    }

    /// Puts `message`, sent at step `now`, in flight (or loses it).
    pub fn send(&mut self, now: u64, message: Message) {
        self.counts.sent += 1;
        if !self.connected(message.from, message.to) {
            self.counts.cut += 1;
            self.note_lost(&message);
            return;
        }
        let (seed, faults) = (self.seed, self.faults);
        let link = self
            .links
            .entry((message.from, message.to))
            .or_insert_with(|| Rng::stream(seed, 1_000 + message.from * 1_000 + message.to));
        let lost = self.loses_snapshots && message.get_msg_type() == MessageType::MsgSnapshot;
        if link.chance(faults.drop) || lost {
            self.counts.dropped += 1;
            self.note_lost(&message);
            return;
        }
        let copies = if link.chance(faults.duplicate) { 2 } else { 1 };
        self.counts.duplicated += copies - 1;
        let mut message = Some(message);
        for copy in 0..copies {
            let due = now + 1 + link.below(faults.delay_steps_max + 1);
            let message = if copy + 1 == copies {
                message.take().expect("the last copy")
            } else {
                message.clone().expect("an earlier copy")
            };
            self.order += 1;
            self.in_flight.insert((due, self.order), message);
        }
    }

    /// Takes the messages due at step `now`, in order, minus those a partition now cuts.
    pub fn take_due(&mut self, now: u64) -> Vec<Message> {
        let later = self.in_flight.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.in_flight, later);
        let mut delivered = Vec::with_capacity(due.len());
        for message in due.into_values() {
            if self.connected(message.from, message.to) {
                delivered.push(message);
            } else {
                self.counts.cut += 1;
                self.note_lost(&message);
            }
        }
        delivered
    }

    /// Records a lost snapshot message for the sender to hear of.
    pub fn note_lost(&mut self, message: &Message) {
        if message.get_msg_type() == MessageType::MsgSnapshot {
            self.snapshots_lost.push((message.from, message.to));
        }
    }
}

//! A simulated disk for the raft log: what was appended is lost in a crash unless it was
//! synced. Tests run nodes on it, crash them, and restart them from what survived.

use raft::eraftpb::{Entry, HardState, Snapshot};
use stead_wal::WalMetadata;

use crate::durable::{InitialMember, bootstrap_log};
use crate::{DurableLog, NodeError, Recovered};

/// The durable state of a [`MemLog`].
#[derive(Clone, Debug, Default)]
struct Disk {
    /// Every snapshot saved and not released, oldest first.
    snapshots: Vec<Snapshot>,
    hard_state: HardState,
    /// Entries in index order; after a snapshot received from the leader they jump to it.
    entries: Vec<Entry>,
}

impl Disk {
    fn append(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) {
        if let Some(first) = entries.first() {
            let keep = self.entries.partition_point(|e| e.index < first.index);
            self.entries.truncate(keep);
            self.entries.extend_from_slice(entries);
        }
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state.clone();
        }
    }
}

/// An in-memory [`DurableLog`] with crash semantics.
#[derive(Debug, Default)]
pub struct MemLog {
    metadata: WalMetadata,
    /// What survives a crash.
    synced: Disk,
    /// What a clean shutdown would keep too: everything appended.
    written: Disk,
    /// Number of syncs, for tests that count fsyncs.
    pub syncs: u64,
}

impl MemLog {
    /// A new member's log, bootstrapped as [`crate::WalLog::bootstrap`] does.
    pub fn bootstrap(
        metadata: WalMetadata,
        members: &[InitialMember],
    ) -> Result<(MemLog, Recovered), NodeError> {
        let mut log = MemLog {
            metadata,
            ..MemLog::default()
        };
        let (hard_state, entries) = bootstrap_log(members)?;
        log.append(Some(&hard_state), &entries)?;
        log.sync()?;
        let recovered = log.recover_synced();
        Ok((log, recovered))
    }

    /// What a restart after a crash finds: only synced state. As the WAL does, it starts from
    /// the newest snapshot the durable commit index covers (a snapshot saved before the hard
    /// state that commits it is not trusted), then the entries after it.
    ///
    /// # Panics
    /// If the entries after that snapshot are not all there: a real member could not restart
    /// either. That is a bug in whoever wrote the log.
    pub fn recover_synced(&self) -> Recovered {
        let disk = &self.synced;
        let commit = disk.hard_state.commit;
        let snapshot = disk
            .snapshots
            .iter()
            .rev()
            .find(|s| s.get_metadata().index <= commit)
            .cloned();
        let base = snapshot.as_ref().map_or(0, |s| s.get_metadata().index);
        let mut entries = Vec::new();
        for entry in disk.entries.iter().filter(|e| e.index > base) {
            if entry.index != base + 1 + entries.len() as u64 {
                break;
            }
            entries.push(entry.clone());
        }
        let last = base + entries.len() as u64;
        assert!(
            last >= commit,
            "the durable log holds entries up to {last} after the snapshot at {base}, short of \
             the durable commit index {commit}: unusable at restart"
        );
        Recovered {
            metadata: self.metadata,
            snapshot,
            hard_state: disk.hard_state.clone(),
            entries,
            torn_tail: None,
        }
    }

    /// Crashes: everything not synced is lost.
    pub fn crash(&mut self) {
        self.written = self.synced.clone();
    }
}

impl DurableLog for MemLog {
    fn append(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), NodeError> {
        self.written.append(hard_state, entries);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), NodeError> {
        self.synced = self.written.clone();
        self.syncs += 1;
        Ok(())
    }

    /// Saving a snapshot syncs everything written before it (the WAL's snapshot marker is
    /// synced with all that precedes it); entries stay until [`DurableLog::release_before`].
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        self.sync()?;
        for disk in [&mut self.written, &mut self.synced] {
            disk.snapshots.push(snapshot.clone());
        }
        Ok(())
    }

    /// Drops the snapshots before the newest one at or below `index`, and the entries it
    /// covers.
    fn release_before(&mut self, index: u64) -> Result<(), NodeError> {
        for disk in [&mut self.written, &mut self.synced] {
            let covered = disk
                .snapshots
                .iter()
                .rposition(|s| s.get_metadata().index <= index);
            if let Some(position) = covered {
                disk.snapshots.drain(..position);
                let kept_from = disk.snapshots[0].get_metadata().index;
                disk.entries.retain(|e| e.index > kept_from);
            }
        }
        Ok(())
    }
}

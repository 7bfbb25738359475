//! A simulated disk for the raft log: what was appended is lost in a crash unless it was
//! synced. Tests run nodes on it, crash them, and restart them from what survived.

use raft::eraftpb::{Entry, HardState, Snapshot};
use stead_wal::WalMetadata;

use crate::durable::{InitialMember, bootstrap_log};
use crate::{DurableLog, NodeError, Recovered};

/// The durable state of a [`MemLog`].
#[derive(Clone, Debug, Default)]
struct Disk {
    snapshot: Option<Snapshot>,
    hard_state: HardState,
    /// Entries after the snapshot.
    entries: Vec<Entry>,
}

impl Disk {
    fn append(&mut self, hard_state: Option<&HardState>, entries: &[Entry]) {
        if let Some(first) = entries.first() {
            let base = self.snapshot.as_ref().map_or(0, |s| s.get_metadata().index);
            let keep = first.index.saturating_sub(base + 1) as usize;
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

    /// What a restart after a crash finds: only synced state.
    ///
    /// # Panics
    /// If the synced snapshot lies beyond the synced commit index: the WAL would not trust its
    /// marker (etcd's ValidSnapshotEntries), and the log before it is gone, so a real member
    /// could not restart. That is a bug in whoever wrote the log.
    pub fn recover_synced(&self) -> Recovered {
        if let Some(snapshot) = &self.synced.snapshot {
            let index = snapshot.get_metadata().index;
            assert!(
                index <= self.synced.hard_state.commit,
                "snapshot at {index} is beyond the durable commit index {}: unusable at restart",
                self.synced.hard_state.commit
            );
        }
        self.recover(&self.synced)
    }

    /// Crashes: everything not synced is lost.
    pub fn crash(&mut self) {
        self.written = self.synced.clone();
    }

    fn recover(&self, disk: &Disk) -> Recovered {
        Recovered {
            metadata: self.metadata,
            snapshot: disk.snapshot.clone(),
            hard_state: disk.hard_state.clone(),
            entries: disk.entries.clone(),
            torn_tail: None,
        }
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

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        let index = snapshot.get_metadata().index;
        for disk in [&mut self.written, &mut self.synced] {
            let base = disk.snapshot.as_ref().map_or(0, |s| s.get_metadata().index);
            let drop = (index.saturating_sub(base) as usize).min(disk.entries.len());
            disk.entries.drain(..drop);
            disk.snapshot = Some(snapshot.clone());
        }
        Ok(())
    }

    fn release_before(&mut self, _index: u64) -> Result<(), NodeError> {
        Ok(())
    }
}

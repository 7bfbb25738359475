//! A member's disk: [`MemLog`] (which loses unsynced writes in a crash) behind a switch that
//! can kill the process in the middle of a `Ready`, between two durable writes.

use std::cell::Cell;
use std::rc::Rc;

use stead_node::raft::eraftpb::{Entry, HardState, Snapshot};
use stead_node::{DurableLog, MemLog, NodeError};

/// Whether the member's process is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Running,
    /// Carries out this many more durable writes, then dies: the rest never reach the disk.
    /// Dies at the end of the step if it had fewer to do.
    DiesAfterWrites(u32),
    /// Runs until it has saved a snapshot, then dies (for a scenario).
    DiesAfterSavingSnapshot,
    Dead,
}

/// Shared between a [`SimLog`] and its member's driver, which stops sending messages once the
/// process is dead.
pub type FateCell = Rc<Cell<Fate>>;

pub struct SimLog {
    pub disk: MemLog,
    fate: FateCell,
}

impl SimLog {
    pub fn new(disk: MemLog, fate: FateCell) -> SimLog {
        SimLog { disk, fate }
    }

    /// Whether the next durable write happens (and counts it down).
    fn writes(&self) -> bool {
        match self.fate.get() {
            Fate::Running | Fate::DiesAfterSavingSnapshot => true,
            Fate::DiesAfterWrites(0) | Fate::Dead => {
                self.fate.set(Fate::Dead);
                false
            }
            Fate::DiesAfterWrites(left) => {
                self.fate.set(Fate::DiesAfterWrites(left - 1));
                true
            }
        }
    }
}

impl DurableLog for SimLog {
    fn append(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), NodeError> {
        if self.writes() {
            self.disk.append(hard_state, entries)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), NodeError> {
        if self.writes() {
            self.disk.sync()?;
        }
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        if self.writes() {
            self.disk.save_snapshot(snapshot)?;
            if self.fate.get() == Fate::DiesAfterSavingSnapshot {
                self.fate.set(Fate::Dead);
            }
        }
        Ok(())
    }

    fn release_before(&mut self, index: u64) -> Result<(), NodeError> {
        if self.writes() {
            self.disk.release_before(index)?;
        }
        Ok(())
    }
}

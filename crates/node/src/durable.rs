//! Where raft state becomes durable: the [`DurableLog`] seam, its real implementation over the
//! WAL and snapshot files ([`WalLog`]), and what a member recovers at start-up ([`Recovered`]).
//!
//! The node writes through the trait only, so tests can put a simulated disk under it (see
//! [`crate::MemLog`]) and crash it at any point, keeping only what was synced.

use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType, HardState, Snapshot};
use stead_wal::{SnapshotMarker, Snapshotter, TornTail, Wal, WalMetadata, WalOptions};

use crate::NodeError;

/// Durable storage of the raft log, hard state and snapshots.
pub trait DurableLog {
    /// Appends entries (which may overwrite a suffix) and the hard state. Durable after
    /// [`DurableLog::sync`].
    fn append(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), NodeError>;
    /// Makes everything appended so far durable: one fsync.
    fn sync(&mut self) -> Result<(), NodeError>;
    /// Makes a snapshot durable: its file first, then its marker in the log.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError>;
    /// Forgets what lies wholly before `index`, which a durable snapshot covers.
    fn release_before(&mut self, index: u64) -> Result<(), NodeError>;
}

/// What a member starts from: the newest usable snapshot and the log after it.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub metadata: WalMetadata,
    pub snapshot: Option<Snapshot>,
    pub hard_state: HardState,
    /// Entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
    /// A torn final write found (and cut off) at open.
    pub torn_tail: Option<TornTail>,
}

/// A member of the initial cluster, as its bootstrap conf change records it.
#[derive(Clone, Debug)]
pub struct InitialMember {
    pub id: u64,
    /// Opaque to raft: the server's encoding of the member (name, URLs).
    pub context: Vec<u8>,
}

/// Tuning of the WAL-backed log.
#[derive(Clone, Copy, Debug)]
pub struct WalLogOptions {
    pub wal: WalOptions,
    /// Snapshot files kept (etcd's `--max-snapshots`, 5).
    pub snapshots_max: usize,
}

impl Default for WalLogOptions {
    fn default() -> Self {
        WalLogOptions {
            wal: WalOptions::default(),
            snapshots_max: 5,
        }
    }
}

/// The durable log on disk: WAL segments in `wal_dir`, snapshot files in `snap_dir`.
pub struct WalLog {
    wal: Wal,
    snapshotter: Snapshotter,
    options: WalLogOptions,
}

impl WalLog {
    /// Whether `wal_dir` holds a WAL (the member has state to restart from).
    pub fn exists(wal_dir: &Path) -> bool {
        Wal::exists(wal_dir)
    }

    /// Starts the log of a member of a new cluster: one committed `AddNode` conf change per
    /// initial member at term 1, as etcd bootstraps raft.
    pub fn bootstrap(
        wal_dir: &Path,
        snap_dir: &Path,
        metadata: WalMetadata,
        members: &[InitialMember],
        options: WalLogOptions,
    ) -> Result<(WalLog, Recovered), NodeError> {
        let snapshotter = Snapshotter::new(snap_dir)?;
        let mut wal = Wal::create(wal_dir, metadata, options.wal)?;
        let (hard_state, entries) = bootstrap_log(members)?;
        wal.append(Some(&hard_state), &entries)?;
        wal.sync()?;
        let recovered = Recovered {
            metadata,
            snapshot: None,
            hard_state,
            entries,
            torn_tail: None,
        };
        Ok((
            WalLog {
                wal,
                snapshotter,
                options,
            },
            recovered,
        ))
    }

    /// Opens an existing member's log: the newest snapshot that the WAL also records, then
    /// the WAL after it.
    pub fn open(
        wal_dir: &Path,
        snap_dir: &Path,
        options: WalLogOptions,
    ) -> Result<(WalLog, Recovered), NodeError> {
        let snapshotter = Snapshotter::new(snap_dir)?;
        let markers = Wal::snapshot_markers(wal_dir)?;
        let snapshot = snapshotter.load_newest_available(&markers)?;
        let from = snapshot
            .as_ref()
            .map(|s| SnapshotMarker::from(s.get_metadata()))
            .unwrap_or_default();
        let (wal, replay) = Wal::open(wal_dir, from, options.wal)?;
        let recovered = Recovered {
            metadata: replay.metadata,
            snapshot,
            hard_state: replay.hard_state,
            entries: replay.entries,
            torn_tail: replay.torn_tail,
        };
        Ok((
            WalLog {
                wal,
                snapshotter,
                options,
            },
            recovered,
        ))
    }
}

impl DurableLog for WalLog {
    fn append(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), NodeError> {
        Ok(self.wal.append(hard_state, entries)?)
    }

    fn sync(&mut self) -> Result<(), NodeError> {
        Ok(self.wal.sync()?)
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        // The file before the marker: a marker never names a missing file (an orphan file is
        // harmless and purged).
        self.snapshotter.save(snapshot)?;
        self.wal
            .append_snapshot_marker(SnapshotMarker::from(snapshot.get_metadata()))?;
        self.snapshotter.purge(self.options.snapshots_max)?;
        Ok(())
    }

    fn release_before(&mut self, index: u64) -> Result<(), NodeError> {
        Ok(self.wal.release_before(index)?)
    }
}

/// The start of a new cluster's log: one committed `AddNode` entry per member, at term 1.
pub(crate) fn bootstrap_log(
    members: &[InitialMember],
) -> Result<(HardState, Vec<Entry>), NodeError> {
    let entries = bootstrap_entries(members)?;
    let hard_state = HardState {
        term: 1,
        commit: entries.len() as u64,
        ..HardState::default()
    };
    Ok((hard_state, entries))
}

fn bootstrap_entries(members: &[InitialMember]) -> Result<Vec<Entry>, NodeError> {
    members
        .iter()
        .enumerate()
        .map(|(position, member)| -> Result<Entry, NodeError> {
            let mut change = ConfChange::default();
            change.set_change_type(ConfChangeType::AddNode);
            change.node_id = member.id;
            change.context = member.context.clone().into();
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::EntryConfChange);
            entry.term = 1;
            entry.index = position as u64 + 1;
            entry.data = change.write_to_bytes()?.into();
            Ok(entry)
        })
        .collect()
}

/// The directories of a member's raft state under its data dir (etcd's layout).
#[derive(Clone, Debug)]
pub struct MemberDirs {
    pub wal: PathBuf,
    pub snap: PathBuf,
}

impl MemberDirs {
    /// `<data-dir>/member/wal` (or `wal_dir` if given) and `<data-dir>/member/snap`.
    pub fn new(data_dir: &Path, wal_dir: Option<&Path>) -> MemberDirs {
        let member = data_dir.join("member");
        MemberDirs {
            wal: wal_dir.map_or_else(|| member.join("wal"), Path::to_path_buf),
            snap: member.join("snap"),
        }
    }
}

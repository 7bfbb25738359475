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

/// What [`force_new_cluster`] did to the recovered log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForcedCluster {
    /// The commit index the WAL recorded, and the one raft starts from: the index of the last
    /// forced entry.
    pub commit_recorded: u64,
    pub commit: u64,
    /// The members a forced conf change removes, in ID order.
    pub removed: Vec<u64>,
    /// Whether a forced conf change makes `own` a voter (it was none, or a learner).
    pub added_self: bool,
}

/// etcd's `--force-new-cluster` on a restarting member: appends (durably, as committed) conf
/// changes that make `own` the only voter: an `AddNode` for it if it was not a voter, then a
/// `RemoveNode` for every other member that the snapshot or the log knows of. Raft applies them
/// at start like any committed entry, so the member elects itself; the server's membership
/// follows from the same entries.
///
/// Unlike etcd, which first drops the entries after the WAL's commit index, stead keeps every
/// entry its WAL holds and commits them: the recorded commit index lags behind the cluster's
/// (a hard state that only moves it is written without an fsync), so cutting there can drop
/// writes the cluster committed and acknowledged. An entry past the cluster's real commit index
/// was never acknowledged; committing it is an outcome its client was told was possible (a
/// timeout or a lost leader), where losing an acknowledged write is not.
pub fn force_new_cluster<L: DurableLog>(
    log: &mut L,
    recovered: &mut Recovered,
    own: &InitialMember,
) -> Result<ForcedCluster, NodeError> {
    let snapshot_index = recovered
        .snapshot
        .as_ref()
        .map_or(0, |s| s.get_metadata().index);
    let commit_recorded = recovered.hard_state.commit.max(snapshot_index);

    // Who is a member, and who a voter, at the end of the log.
    let mut voters = std::collections::BTreeSet::new();
    let mut learners = std::collections::BTreeSet::new();
    if let Some(snapshot) = &recovered.snapshot {
        let conf_state = snapshot.get_metadata().get_conf_state();
        voters.extend(conf_state.get_voters().iter().copied());
        learners.extend(conf_state.get_learners().iter().copied());
    }
    for entry in &recovered.entries {
        if entry.get_entry_type() != EntryType::EntryConfChange {
            continue;
        }
        let change = <ConfChange as protobuf::Message>::parse_from_bytes(&entry.data)
            .map_err(|e| NodeError::corrupt_entry(entry.index, e))?;
        let id = change.node_id;
        match change.get_change_type() {
            ConfChangeType::AddNode => {
                learners.remove(&id);
                voters.insert(id);
            }
            ConfChangeType::AddLearnerNode => {
                voters.remove(&id);
                learners.insert(id);
            }
            ConfChangeType::RemoveNode => {
                voters.remove(&id);
                learners.remove(&id);
            }
        }
    }

    let term = recovered.hard_state.term;
    let mut changes = Vec::new();
    // Self first: raft refuses a configuration without voters.
    let added_self = !voters.contains(&own.id);
    if added_self {
        let mut change = ConfChange::default();
        change.set_change_type(ConfChangeType::AddNode);
        change.node_id = own.id;
        change.context = own.context.clone().into();
        changes.push(change);
    }
    let removed: Vec<u64> = voters
        .union(&learners)
        .copied()
        .filter(|&id| id != own.id)
        .collect();
    for &id in &removed {
        let mut change = ConfChange::default();
        change.set_change_type(ConfChangeType::RemoveNode);
        change.node_id = id;
        changes.push(change);
    }
    let last_index = recovered
        .entries
        .last()
        .map_or(snapshot_index, |entry| entry.index);
    let forced = changes
        .into_iter()
        .zip(last_index + 1..)
        .map(|(change, index)| -> Result<Entry, NodeError> {
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::EntryConfChange);
            entry.term = term;
            entry.index = index;
            entry.data = change.write_to_bytes()?.into();
            Ok(entry)
        })
        .collect::<Result<Vec<Entry>, NodeError>>()?;
    let commit = forced.last().map_or(last_index, |entry| entry.index);
    let hard_state = HardState {
        commit,
        ..recovered.hard_state.clone()
    };
    log.append(Some(&hard_state), &forced)?;
    log.sync()?;
    recovered.entries.extend(forced);
    recovered.hard_state = hard_state;
    Ok(ForcedCluster {
        commit_recorded,
        commit,
        removed,
        added_self,
    })
}

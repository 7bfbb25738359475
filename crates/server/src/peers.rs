//! The member's side of the peer transport: which peers it talks to (the `members` bucket),
//! the data it sends with a snapshot (a dump of the backend), the transport's events turned
//! into driver inputs, and installing a snapshot's data whose install a crash interrupted.
//!
//! It does not own the connections, framing or checksums (`stead-transport`), nor raft's
//! decisions about when to send a snapshot (`stead-node`).

use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prost::Message as _;
use stead_backend::{Backend, BackendError, Bucket};
use stead_node::raft::eraftpb::Message;
use stead_proto::etcdserverpb::{Member, MemberListResponse};
use stead_transport::{ClusterInfoSource, SnapshotSource, TransportEvent};
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::server::{DriverInput, Shared, StartError};

/// Tells the transport the current peers (every member but this one) and the removed ones,
/// from the `members` and `members_removed` buckets. Called at start, after every applied
/// conf change and after a snapshot replaced the store.
pub(crate) fn refresh(shared: &Shared) -> Result<(), StartError> {
    let members = shared.members().map_err(StartError::Peers)?;
    if members.is_empty() {
        // A joining member before its first entry: keep the peers it was told of.
        return Ok(());
    }
    let is_learner = members
        .iter()
        .any(|member| member.id == shared.member_id && member.is_learner);
    shared.is_learner.store(is_learner, Ordering::SeqCst);
    set_peers(shared, &members);
    let mut removed = Vec::new();
    shared
        .backend
        .read()
        .for_each(Bucket::MembersRemoved, &[], None, |key, _| {
            if let Ok(id) = <[u8; 8]>::try_from(key) {
                removed.push(u64::from_be_bytes(id));
            }
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| StartError::Peers(e.to_string()))?;
    for id in removed {
        shared.transport.mark_removed(id);
    }
    Ok(())
}

/// Tells the transport to talk to `members` (but this one).
pub(crate) fn set_peers(shared: &Shared, members: &[Member]) {
    let peers: Vec<(u64, Vec<String>)> = members
        .iter()
        .filter(|member| member.id != shared.member_id)
        .map(|member| (member.id, member.peer_ur_ls.clone()))
        .collect();
    shared.transport.set_peers(&peers);
}

/// Feeds the transport's events to the driver until either side closes. A peer saying this
/// member was removed stops it, as etcd does.
pub(crate) async fn forward_events(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<TransportEvent>,
) {
    while let Some(event) = events.recv().await {
        let input = match event {
            TransportEvent::Message(message) => DriverInput::Step(message),
            TransportEvent::Snapshot { message, data } => {
                DriverInput::SnapshotReceived { message, data }
            }
            TransportEvent::Unreachable(peer) => DriverInput::Unreachable(peer),
            TransportEvent::SnapshotSent { to, ok } => {
                DriverInput::SnapshotSent { to, arrived: ok }
            }
            TransportEvent::Removed => {
                error!("the member has been permanently removed from the cluster; stopping");
                shared.stopped.store(true, Ordering::SeqCst);
                return;
            }
        };
        if shared.driver.send(input).await.is_err() {
            return;
        }
    }
}

/// The data a leader sends with a snapshot: a dump of its backend as it is when the snapshot
/// goes out (at or past the snapshot's index; the follower skips the entries it covers).
pub(crate) struct BackendDump {
    backend: Arc<Backend>,
    /// Where the dump is spooled (the snap dir: same filesystem as the data).
    dir: PathBuf,
}

impl BackendDump {
    pub(crate) fn new(backend: Arc<Backend>, dir: PathBuf) -> BackendDump {
        BackendDump { backend, dir }
    }
}

impl SnapshotSource for BackendDump {
    fn open(&self, message: &Message) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        // An unnamed file: gone as soon as the transport has read it (or fails).
        let mut file = tempfile_in(&self.dir)?;
        let stats = {
            let mut out = BufWriter::with_capacity(1 << 20, &mut file);
            let stats = self
                .backend
                .read()
                .dump(&mut out)
                .map_err(std::io::Error::other)?;
            out.flush()?;
            stats
        };
        file.rewind()?;
        info!(to = %crate::membership::format_id(message.to),
            index = message.get_snapshot().get_metadata().index,
            records = stats.records, bytes = stats.bytes, "sending a snapshot of the backend");
        Ok(Box::new(file))
    }
}

/// An anonymous read-write file in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        "outgoing-{}-{}.dump.tmp",
        std::process::id(),
        NEXT_SPOOL.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

static NEXT_SPOOL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The data file of a received snapshot at `index`, if one is in `snap_dir` (the transport
/// names them `<from>-<index>.received`, both 16 hex digits).
pub(crate) fn received_file(snap_dir: &Path, index: u64) -> Option<PathBuf> {
    let suffix = format!("-{index:016x}.received");
    std::fs::read_dir(snap_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(&suffix))
        })
}

/// Replaces the backend by the data of the snapshot at `index` (durably), then deletes the
/// file.
pub(crate) fn install(backend: &Backend, data: &Path, index: u64) -> Result<(), BackendError> {
    let file = std::fs::File::open(data)
        .map_err(|e| BackendError::Dump(format!("opening {}: {e}", data.display())))?;
    let restored = backend.restore_dump(&mut std::io::BufReader::with_capacity(1 << 20, file))?;
    if restored.index < index {
        return Err(BackendError::Dump(format!(
            "the snapshot at index {index} holds data only up to index {}",
            restored.index
        )));
    }
    if let Err(err) = std::fs::remove_file(data) {
        tracing::warn!(path = %data.display(), error = %err, "cannot delete an installed snapshot");
    }
    Ok(())
}

/// At start: the WAL has the leader's snapshot at `index` but the backend is older (a crash
/// came between the two): installs the snapshot's data, still in `snap_dir`.
pub(crate) fn install_pending_snapshot(
    backend: &Backend,
    snap_dir: &Path,
    index: u64,
) -> Result<(), StartError> {
    let Some(data) = received_file(snap_dir, index) else {
        return Err(StartError::DataDir(format!(
            "the raft snapshot at index {index} is newer than the backend ({}), and its data \
             file (*-{index:016x}.received) is not in {}",
            backend
                .consistent_index()
                .map(|c| c.index.to_string())
                .unwrap_or_else(|e| e.to_string()),
            snap_dir.display()
        )));
    };
    info!(index, path = %data.display(), "installing a snapshot a restart interrupted");
    install(backend, &data, index)?;
    Ok(())
}

/// The members of the cluster in `backend`'s `members` bucket; the error says what is corrupt.
pub(crate) fn read_members(backend: &Backend) -> Result<Vec<Member>, String> {
    let mut members = Vec::new();
    let mut corrupt = None;
    backend
        .read()
        .for_each(Bucket::Members, &[], None, |_, value| {
            match Member::decode(value) {
                Ok(member) => members.push(member),
                Err(e) => corrupt = Some(e.to_string()),
            }
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.to_string())?;
    match corrupt {
        Some(corrupt) => Err(format!("corrupt member record: {corrupt}")),
        None => Ok(members),
    }
}

/// What this member tells a member joining the cluster: the members, as a protobuf
/// `MemberListResponse` (the cluster ID travels beside it).
pub(crate) struct MembersInfo {
    backend: Arc<Backend>,
}

impl MembersInfo {
    pub(crate) fn new(backend: Arc<Backend>) -> MembersInfo {
        MembersInfo { backend }
    }
}

impl ClusterInfoSource for MembersInfo {
    fn cluster_info(&self) -> Vec<u8> {
        let members = read_members(&self.backend).unwrap_or_else(|err| {
            error!(error = %err, "cannot read the members for a joining member");
            Vec::new()
        });
        MemberListResponse {
            header: None,
            members,
        }
        .encode_to_vec()
    }
}

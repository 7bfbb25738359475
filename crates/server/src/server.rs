//! The member: its shared state, start-up (bootstrap or restart), the request paths, and
//! shutdown.
//!
//! Threads, and who talks to whom:
//! - the **driver** thread owns the raft node (`driver.rs`): it takes ticks, proposals, read
//!   index requests and snapshot notices from its inbox, processes each `Ready` (one WAL fsync
//!   for everything that arrived since the last one), hands committed entries to the apply
//!   thread and answers read indexes;
//! - the **apply** thread (`apply.rs`) is the only writer of the store: it applies committed
//!   entries in order, records the consistent index with them, answers the waiting proposals
//!   and publishes the applied index;
//! - tokio tasks serve gRPC, tick the driver, batch linearizable reads (`read_index.rs`) and
//!   publish this member's attributes.
//!
//! Every queue between them is bounded; see the constants.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use prost::Message as _;
use stead_backend::{Backend, BackendOptions, Bucket};
use stead_lease::{Checkpointing, Lessor, LessorConfig};
use stead_mvcc::watch::WatchHub;
use stead_mvcc::{Store, StoreOptions};
use stead_node::raft::eraftpb::{ConfChange, Entry, Message};
use stead_node::{InitialMember, MemberDirs, NodeConfig, RaftNode, WalLog, WalLogOptions};
use stead_proto::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, InternalRaftRequest, LeaseGrantResponse,
    LeaseRevokeResponse, Member, PutResponse, RequestHeader, ResponseHeader, TxnResponse,
};
use stead_transport::{Transport, TransportConfig};
use stead_wal::WalMetadata;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::membership::format_id;
use crate::read_index::ReadIndexer;
use crate::wait::Waiters;
use crate::{EtcdError, apply, driver, id::IdGenerator};

/// Inputs the driver thread's inbox holds at most; a full inbox makes proposers wait.
pub(crate) const DRIVER_INBOX_MAX: usize = 8192;
/// Events from the peer transport waiting for the driver; a full queue makes the transport's
/// readers wait (TCP backpressure on the peers), never the driver.
const PEER_EVENTS_MAX: usize = 1024;
/// Batches of committed entries queued for the apply thread; a full queue makes the driver
/// wait, which slows raft down to the speed of apply.
pub(crate) const APPLY_QUEUE_MAX: usize = 64;
/// gRPC's overhead allowed above `--max-request-bytes` for a request message (etcd's
/// `grpcOverheadBytes`).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
/// The etcd API version stead implements, reported by Status.
pub const ETCD_VERSION: &str = "3.5.0";
/// The cluster version the leader sets (etcd's major.minor.0).
const CLUSTER_VERSION: &str = "3.5.0";
/// Key of the cluster version in the `cluster` bucket (etcd's name).
pub(crate) const CLUSTER_VERSION_KEY: &[u8] = b"clusterVersion";

/// What a member needs to start. Built by the binary from the configuration.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub name: String,
    pub data_dir: PathBuf,
    /// A separate WAL directory (`--wal-dir`), if any.
    pub wal_dir: Option<PathBuf>,
    /// This member's client URLs, published to the cluster.
    pub advertise_client_urls: Vec<String>,
    /// The cluster to create when the data dir is new; ignored on restart (as etcd does).
    pub bootstrap: BootstrapCluster,
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    /// Applied entries between raft snapshots (`--snapshot-count`).
    pub snapshot_count: u64,
    pub quota_backend_bytes: u64,
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    pub backend: BackendOptions,
    pub wal: WalLogOptions,
    /// Idle time after which a watcher that asked for progress notifications gets one
    /// (`--experimental-watch-progress-notify-interval`, etcd's 10 minutes).
    pub watch_progress_notify_interval: Duration,
    /// Remaining-TTL checkpoints of leases (`--experimental-enable-lease-checkpoint`), if on.
    pub lease_checkpointing: Option<Checkpointing>,
    /// `--strict-reconfig-check` (etcd's default: on).
    pub strict_reconfig_check: bool,
    /// `--force-new-cluster`: a restarting member makes itself the only member of its cluster
    /// (disaster recovery); ignored when the data dir is new, as etcd does.
    pub force_new_cluster: bool,
}

/// The initial cluster of a new member, with etcd's IDs.
#[derive(Clone, Debug)]
pub struct BootstrapCluster {
    pub member_id: u64,
    pub cluster_id: u64,
    /// Every initial member: ID, name and peer URLs (client URLs come when each publishes).
    pub members: Vec<Member>,
    /// Joining a running cluster (`--initial-cluster-state=existing`): `members` are its
    /// members as a peer told them; the log starts empty and comes from the leader.
    pub existing: bool,
}

/// Why a member could not start. The message names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Node(#[from] stead_node::NodeError),
    #[error("{0}")]
    Backend(#[from] stead_backend::BackendError),
    #[error("{0}")]
    Mvcc(#[from] stead_mvcc::MvccError),
    #[error("{0}")]
    Lease(#[from] stead_lease::RecordError),
    #[error("cannot start member: {0}")]
    DataDir(String),
    #[error("cannot start thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot start member: {0}")]
    Peers(String),
}

/// What an applied proposal answers.
#[derive(Debug)]
pub(crate) enum Applied {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    Compaction {
        response: CompactionResponse,
        /// Resolves when the physical compaction finished.
        physical: oneshot::Receiver<()>,
    },
    /// A request with nothing to answer (member attributes).
    Done,
    /// A membership change: the members after it.
    Members(Vec<Member>),
}

pub(crate) type ApplyOutcome = Result<Applied, EtcdError>;

/// An input of the driver thread.
#[derive(Debug)]
pub(crate) enum DriverInput {
    Tick,
    Propose {
        id: u64,
        data: Vec<u8>,
    },
    ReadIndex {
        context: u64,
    },
    /// The state machine is durable up to `index` (an entry of `term`): snapshot and compact the
    /// log there.
    Snapshot {
        index: u64,
        term: u64,
    },
    /// A membership change, answered by the apply thread under `change.id`. With
    /// `learner_must_be_ready` (a promotion) the leader first checks that the learner caught
    /// up, and a member that does not lead answers "not leader".
    ProposeConfChange {
        change: ConfChange,
        learner_must_be_ready: bool,
    },
    /// Whether `learner` caught up enough with the leader to be promoted (etcd's
    /// `isLearnerReady`): "not leader" on a member that does not lead, "learner not ready" when
    /// the leader tracks it and its log lags; a member the leader does not track is ready.
    LearnerReadiness {
        learner: u64,
        answer: oneshot::Sender<Result<(), EtcdError>>,
    },
    /// Hand leadership to this member (the leader only).
    TransferLeader(u64),
    /// A raft message from a peer.
    Step(Message),
    /// A MsgSnapshot from the leader whose data arrived whole at `data`.
    SnapshotReceived {
        message: Message,
        data: PathBuf,
    },
    /// A message to this peer was dropped: raft probes it again.
    Unreachable(u64),
    /// A snapshot sent to `to` arrived, or did not.
    SnapshotSent {
        to: u64,
        arrived: bool,
    },
    Stop,
}

/// An input of the apply thread, in raft's order.
#[derive(Debug)]
pub(crate) enum ApplyInput {
    /// Committed entries, in log order.
    Entries(Vec<Entry>),
    /// Raft installed the leader's snapshot at `index`: the store is replaced by `data` (a
    /// backend dump) before any later entry.
    Snapshot {
        index: u64,
        term: u64,
        data: PathBuf,
    },
    /// Raft needs a snapshot for a follower: commit and snapshot at what is applied now.
    SnapshotRequest,
}

/// Raft's state, as the driver last saw it, for headers and Status.
#[derive(Default)]
pub(crate) struct RaftStatus {
    pub(crate) term: AtomicU64,
    pub(crate) leader: AtomicU64,
    pub(crate) commit: AtomicU64,
}

/// State shared by the threads and tasks of a member.
pub(crate) struct Shared {
    pub(crate) member_id: u64,
    pub(crate) cluster_id: u64,
    pub(crate) name: String,
    pub(crate) advertise_client_urls: Vec<String>,
    pub(crate) store: Store,
    pub(crate) lessor: Arc<Lessor>,
    pub(crate) backend: Arc<Backend>,
    pub(crate) watch_hub: Arc<WatchHub>,
    pub(crate) watch_progress_notify_interval: Duration,
    /// Set when the member begins to shut down: long-lived streams end.
    pub(crate) closing: watch::Sender<bool>,
    pub(crate) raft: RaftStatus,
    pub(crate) driver: mpsc::Sender<DriverInput>,
    /// Carries raft messages to and from the peers.
    pub(crate) transport: Transport,
    /// Lease renewals and lookups this member sends to the leader.
    pub(crate) leader_client: crate::forward::LeaderClient,
    /// Whether this member is a learner (it refuses client writes and linearizable reads).
    pub(crate) is_learner: AtomicBool,
    /// `--strict-reconfig-check`: refuse membership changes that would leave too few started
    /// members for a quorum.
    pub(crate) strict_reconfig_check: bool,
    pub(crate) proposals: Waiters<ApplyOutcome>,
    pub(crate) read_states: Waiters<u64>,
    pub(crate) applied: watch::Sender<u64>,
    pub(crate) ids: IdGenerator,
    pub(crate) read_indexer: ReadIndexer,
    pub(crate) request_timeout: Duration,
    /// How long an election may take: leases are extended by it when this member leads.
    pub(crate) election_timeout: Duration,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_txn_ops: usize,
    pub(crate) quota_backend_bytes: u64,
    pub(crate) snapshot_count: u64,
    /// Set when the member stops (or fails): new requests are refused.
    pub(crate) stopped: AtomicBool,
    /// Set once this member's attributes are applied: it serves clients from then on.
    pub(crate) published: watch::Sender<bool>,
    /// Bumped when require-leader streams must end (no leader for a while).
    pub(crate) leader_lost: crate::require_leader::LeaderLost,
}

impl Shared {
    /// The members of the cluster, from the store; the error says what is corrupt.
    pub(crate) fn members(&self) -> Result<Vec<Member>, String> {
        crate::peers::read_members(&self.backend)
    }

    /// Waits until the apply thread has applied `index`; past `deadline` answers
    /// `timeout` (each caller has etcd's own text for it).
    pub(crate) async fn wait_applied(
        &self,
        index: u64,
        deadline: tokio::time::Instant,
        timeout: EtcdError,
    ) -> Result<(), EtcdError> {
        let mut applied = self.applied.subscribe();
        match tokio::time::timeout_at(deadline, applied.wait_for(|&applied| applied >= index)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(timeout),
        }
    }
}

/// This member as a forced `AddNode` would add it (only when its log does not hold it as a
/// voter): its entry in `--initial-cluster` if there is one, else its name alone.
fn own_member_for_force(options: &ServerOptions, member_id: u64) -> InitialMember {
    let bootstrap = &options.bootstrap;
    let member = bootstrap
        .members
        .iter()
        .find(|m| m.id == member_id || m.name == options.name)
        .map_or_else(
            || Member {
                id: member_id,
                name: options.name.clone(),
                ..Member::default()
            },
            |m| Member {
                id: member_id,
                ..m.clone()
            },
        );
    InitialMember {
        id: member_id,
        context: member.encode_to_vec(),
    }
}

/// A running member. Cheap to clone: the services hold one each.
#[derive(Clone)]
pub struct EtcdServer {
    pub(crate) shared: Arc<Shared>,
    threads: Arc<std::sync::Mutex<Option<Threads>>>,
}

struct Threads {
    driver: JoinHandle<Result<(), driver::DriverError>>,
    apply: JoinHandle<Result<(), apply::ApplyError>>,
}

impl EtcdServer {
    /// Opens (or bootstraps) the member's data dir and starts its threads and tasks on
    /// `runtime`.
    pub fn start(
        options: ServerOptions,
        peer_listeners: Vec<tokio::net::TcpListener>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<EtcdServer, StartError> {
        let dirs = MemberDirs::new(&options.data_dir, options.wal_dir.as_deref());
        let db_path = dirs.snap.join("db");
        let (log, recovered) = if WalLog::exists(&dirs.wal) {
            let (mut log, mut recovered) = WalLog::open(&dirs.wal, &dirs.snap, options.wal)?;
            if let Some(torn) = &recovered.torn_tail {
                warn!(path = %torn.path.display(), offset = torn.offset,
                    "the WAL ended in a torn write (never acknowledged); it was cut off");
            }
            if options.force_new_cluster {
                let own = own_member_for_force(&options, recovered.metadata.member_id);
                let forced = stead_node::force_new_cluster(&mut log, &mut recovered, &own)?;
                warn!(cluster_id = %format_id(recovered.metadata.cluster_id),
                    local_member_id = %format_id(recovered.metadata.member_id),
                    commit_index = forced.commit,
                    commit_index_recorded = forced.commit_recorded,
                    removed = ?forced.removed.iter().map(|&id| format_id(id)).collect::<Vec<_>>(),
                    "forcing restart member: a new one-member cluster from this member's log");
            }
            info!(data_dir = %options.data_dir.display(),
                member_id = %format_id(recovered.metadata.member_id),
                cluster_id = %format_id(recovered.metadata.cluster_id),
                "restarting member");
            (log, recovered)
        } else {
            if db_path.exists() {
                return Err(StartError::DataDir(format!(
                    "{} exists but the WAL directory {} holds no WAL: refusing to overwrite \
                     a data dir stead did not create",
                    db_path.display(),
                    dirs.wal.display()
                )));
            }
            let bootstrap = &options.bootstrap;
            let members: Vec<InitialMember> = bootstrap
                .members
                .iter()
                .filter(|_| !bootstrap.existing)
                .map(|member| InitialMember {
                    id: member.id,
                    context: member.encode_to_vec(),
                })
                .collect();
            let metadata = WalMetadata {
                member_id: bootstrap.member_id,
                cluster_id: bootstrap.cluster_id,
            };
            info!(data_dir = %options.data_dir.display(),
                member_id = %format_id(bootstrap.member_id),
                cluster_id = %format_id(bootstrap.cluster_id),
                "starting a member of a new cluster");
            WalLog::bootstrap(&dirs.wal, &dirs.snap, metadata, &members, options.wal)?
        };
        let metadata = recovered.metadata;
        let backend = Arc::new(Backend::open(&db_path, options.backend.clone())?);
        let heartbeat_ms = options.heartbeat_interval.as_millis().max(1);
        let election_ticks = (options.election_timeout.as_millis() / heartbeat_ms).max(2) as usize;
        // The lessor first: recovering the store attaches its keys to their leases.
        let lessor = Arc::new(Lessor::new(
            LessorConfig {
                min_ttl_s: stead_lease::min_lease_ttl_s(
                    options.heartbeat_interval,
                    election_ticks as u64,
                ),
                checkpointing: options.lease_checkpointing,
            },
            stead_lease::load(&backend)?,
        ));
        let snapshot_index = recovered
            .snapshot
            .as_ref()
            .map_or(0, |s| s.get_metadata().index);
        // A crash between raft saving the leader's snapshot and the store installing it: the
        // snapshot's data file is still there; install it now.
        if backend.consistent_index()?.index < snapshot_index {
            crate::peers::install_pending_snapshot(&backend, &dirs.snap, snapshot_index)?;
            lessor.reset(stead_lease::load(&backend)?);
        }
        let store = Store::open(
            Arc::clone(&backend),
            Arc::clone(&lessor) as Arc<dyn stead_mvcc::Lessor>,
            StoreOptions::default(),
        )?;
        let watch_hub = WatchHub::start(store.history())?;
        let consistent_index = backend.consistent_index()?.index;
        let node = RaftNode::new(
            &NodeConfig::new(metadata.member_id, election_ticks, 1),
            recovered,
            log,
        )?;

        let (driver_tx, driver_rx) = mpsc::channel(DRIVER_INBOX_MAX);
        let (peer_events_tx, peer_events_rx) = mpsc::channel(PEER_EVENTS_MAX);
        let transport = Transport::start(
            TransportConfig::new(metadata.member_id, metadata.cluster_id, dirs.snap.clone()),
            peer_listeners,
            Arc::new(crate::peers::BackendDump::new(
                Arc::clone(&backend),
                dirs.snap.clone(),
            )),
            Arc::new(crate::peers::MembersInfo::new(Arc::clone(&backend))),
            peer_events_tx,
            runtime,
        );
        let (apply_tx, apply_rx) = std::sync::mpsc::sync_channel(APPLY_QUEUE_MAX);
        let applied = consistent_index.max(snapshot_index);
        let shared = Arc::new(Shared {
            member_id: metadata.member_id,
            cluster_id: metadata.cluster_id,
            name: options.name.clone(),
            advertise_client_urls: options.advertise_client_urls.clone(),
            store,
            lessor,
            backend,
            watch_hub,
            watch_progress_notify_interval: options
                .watch_progress_notify_interval
                .max(Duration::from_millis(1)),
            closing: watch::Sender::new(false),
            raft: RaftStatus::default(),
            driver: driver_tx,
            transport,
            leader_client: crate::forward::LeaderClient::default(),
            is_learner: AtomicBool::new(false),
            strict_reconfig_check: options.strict_reconfig_check,
            proposals: Waiters::default(),
            read_states: Waiters::default(),
            applied: watch::Sender::new(applied),
            ids: IdGenerator::new(metadata.member_id),
            read_indexer: ReadIndexer::default(),
            // etcd's ReqTimeout: 5 s plus two election timeouts.
            request_timeout: Duration::from_secs(5) + 2 * options.election_timeout,
            election_timeout: options.election_timeout,
            max_request_bytes: options.max_request_bytes,
            max_txn_ops: options.max_txn_ops,
            quota_backend_bytes: options.quota_backend_bytes,
            snapshot_count: options.snapshot_count.max(1),
            stopped: AtomicBool::new(false),
            published: watch::Sender::new(false),
            leader_lost: watch::Sender::new(0),
        });

        crate::peers::refresh(&shared)?;
        if shared.members().map_err(StartError::Peers)?.is_empty() {
            // Joining: nothing applied yet; the members a peer told of answer the leader.
            crate::peers::set_peers(&shared, &options.bootstrap.members);
        }
        runtime.spawn(crate::peers::forward_events(
            Arc::clone(&shared),
            peer_events_rx,
        ));
        let driver = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("raft-driver".into())
                .spawn(move || driver::run(node, driver_rx, apply_tx, &shared))
                .map_err(StartError::Thread)?
        };
        let apply = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("apply".into())
                .spawn(move || apply::run(apply_rx, consistent_index, snapshot_index, &shared))
                .map_err(StartError::Thread)?
        };
        let server = EtcdServer {
            shared,
            threads: Arc::new(std::sync::Mutex::new(Some(Threads { driver, apply }))),
        };
        runtime.spawn(driver::tick(
            Arc::clone(&server.shared),
            options.heartbeat_interval,
        ));
        runtime.spawn(crate::read_index::run(Arc::clone(&server.shared)));
        runtime.spawn(publish(server.clone()));
        runtime.spawn(crate::lease::expire(server.clone()));
        runtime.spawn(crate::require_leader::monitor(Arc::clone(&server.shared)));
        Ok(server)
    }

    /// This member's ID.
    pub fn member_id(&self) -> u64 {
        self.shared.member_id
    }

    /// The cluster's ID.
    pub fn cluster_id(&self) -> u64 {
        self.shared.cluster_id
    }

    /// Waits until this member serves clients: its attributes are published through raft
    /// (etcd's `ReadyNotify`). Returns false if it stopped first.
    pub async fn ready(&self) -> bool {
        let mut published = self.shared.published.subscribe();
        published.wait_for(|published| *published).await.is_ok()
            && !self.shared.stopped.load(Ordering::SeqCst)
    }

    /// Proposes `request` through raft and waits for it to be applied, at most the request
    /// timeout.
    pub(crate) async fn propose(&self, request: InternalRaftRequest) -> ApplyOutcome {
        self.propose_waiting(request, Patience::RequestTimeout)
            .await
    }

    async fn propose_waiting(
        &self,
        mut request: InternalRaftRequest,
        patience: Patience,
    ) -> ApplyOutcome {
        let shared = &self.shared;
        if shared.stopped.load(Ordering::SeqCst) {
            return Err(EtcdError::Stopped);
        }
        let id = shared.ids.next();
        request.header = Some(RequestHeader {
            id,
            ..RequestHeader::default()
        });
        let data = request.encode_to_vec();
        if data.len() > shared.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        self.submit(id, DriverInput::Propose { id, data }, patience)
            .await
    }

    /// Registers a waiter under `id`, hands `input` (a proposal carrying `id`) to the driver,
    /// and waits for the apply thread's answer: at most the request timeout, or longer while
    /// this member leads if `patience` says so.
    async fn submit(&self, id: u64, input: DriverInput, patience: Patience) -> ApplyOutcome {
        let shared = &self.shared;
        let answer = shared.proposals.register(id);
        let mut deadline = tokio::time::Instant::now() + shared.request_timeout;
        match tokio::time::timeout_at(deadline, shared.driver.send(input)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                shared.proposals.cancel(id);
                return Err(EtcdError::Stopped);
            }
            Err(_) => {
                shared.proposals.cancel(id);
                return Err(EtcdError::Timeout);
            }
        }
        tokio::pin!(answer);
        loop {
            match tokio::time::timeout_at(deadline, &mut answer).await {
                Ok(Ok(outcome)) => return outcome,
                Ok(Err(_)) => return Err(EtcdError::Stopped),
                Err(_) => {
                    let leads = shared.raft.leader.load(Ordering::Relaxed) == shared.member_id;
                    if patience == Patience::WhileLeader && leads {
                        deadline += shared.request_timeout;
                        continue;
                    }
                    shared.proposals.cancel(id);
                    return Err(EtcdError::Timeout);
                }
            }
        }
    }

    /// Proposes a membership change and waits (at most the request timeout) for it to be
    /// applied; answers the members after it.
    pub(crate) async fn configure(
        &self,
        mut change: ConfChange,
        learner_must_be_ready: bool,
    ) -> Result<Vec<Member>, EtcdError> {
        if self.shared.stopped.load(Ordering::SeqCst) {
            return Err(EtcdError::Stopped);
        }
        change.id = self.shared.ids.next();
        let id = change.id;
        let input = DriverInput::ProposeConfChange {
            change,
            learner_must_be_ready,
        };
        match self.submit(id, input, Patience::RequestTimeout).await? {
            Applied::Members(members) => Ok(members),
            other => Err(EtcdError::Internal(format!(
                "a membership change answered {other:?}"
            ))),
        }
    }

    /// etcd's learner rule: a learner serves only Status and serializable ranges.
    pub(crate) fn refuse_on_learner(&self) -> Result<(), EtcdError> {
        if self.shared.is_learner.load(Ordering::Relaxed) {
            return Err(EtcdError::NotSupportedForLearner);
        }
        Ok(())
    }

    /// Waits until this member has applied everything committed before the call: the
    /// linearizable read barrier (a ReadIndex round shared by all reads waiting).
    pub(crate) async fn linearizable_read(&self) -> Result<(), EtcdError> {
        if self.shared.stopped.load(Ordering::SeqCst) {
            return Err(EtcdError::Stopped);
        }
        self.shared.read_indexer.wait().await
    }

    /// A response header: cluster and member ID, raft term, and `revision` (or the store's).
    pub(crate) fn header(&self, revision: Option<i64>) -> ResponseHeader {
        self.header_at(
            revision
                .filter(|&revision| revision != 0)
                .unwrap_or_else(|| self.shared.store.current_revision()),
        )
    }

    /// A response header with exactly `revision` (watch responses may carry 0, as etcd's).
    pub(crate) fn header_at(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.shared.cluster_id,
            member_id: self.shared.member_id,
            revision,
            raft_term: self.shared.raft.term.load(Ordering::Relaxed),
        }
    }

    /// Fills the cluster fields of a header the store produced (its revision stays).
    pub(crate) fn fill_header(&self, header: &mut Option<ResponseHeader>) {
        let revision = header.as_ref().map(|h| h.revision);
        *header = Some(self.header(revision));
    }

    /// The members of the cluster, from the store.
    pub(crate) fn members(&self) -> Result<Vec<Member>, EtcdError> {
        self.shared.members().map_err(EtcdError::Internal)
    }

    /// Raft's current term, leader, commit and applied index.
    pub(crate) fn raft_status(&self) -> (u64, u64, u64, u64) {
        let raft = &self.shared.raft;
        (
            raft.term.load(Ordering::Relaxed),
            raft.leader.load(Ordering::Relaxed),
            raft.commit.load(Ordering::Relaxed),
            *self.shared.applied.borrow(),
        )
    }

    /// The store.
    pub(crate) fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The backend under the store.
    pub(crate) fn backend(&self) -> &Backend {
        &self.shared.backend
    }

    /// Ends long-lived client streams (watches), as the first step of a shutdown: a graceful
    /// gRPC shutdown waits for every stream to end.
    pub fn close_streams(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Stops the member: no new requests, the raft log is synced, everything committed so far
    /// is applied, the backend committed. Returns an error if a thread had failed.
    pub async fn stop(&self) -> Result<(), String> {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.close_streams();
        let _ = self.shared.driver.send(DriverInput::Stop).await;
        let threads = self
            .threads
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        let Some(Threads { driver, apply }) = threads else {
            return Ok(());
        };
        let joined = tokio::task::spawn_blocking(move || {
            let driver = driver.join();
            let apply = apply.join();
            (driver, apply)
        })
        .await
        .map_err(|e| format!("joining threads: {e}"))?;
        self.shared
            .proposals
            .trigger_all(|| Err(EtcdError::Stopped));
        self.shared.published.send_replace(false);
        self.shared.transport.stop().await;
        self.shared.watch_hub.stop();
        let mut failures = Vec::new();
        match joined.0 {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("raft driver: {e}")),
            Err(_) => failures.push("raft driver panicked".to_owned()),
        }
        match joined.1 {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("apply: {e}")),
            Err(_) => failures.push("apply panicked".to_owned()),
        }
        let (reads, rounds) = self.shared.read_indexer.counts();
        info!(reads, rounds, "linearizable reads served");
        if failures.is_empty() {
            info!("member stopped cleanly");
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Resolves when the member stopped on its own (a thread failed).
    pub async fn failed(&self) {
        loop {
            if self.shared.stopped.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// How long a proposer waits for its proposal to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// Gives up after the request timeout ("etcdserver: request timed out").
    RequestTimeout,
    /// Past the request timeout, waits on while this member leads (a leader's own proposal
    /// is in its log: it is applied unless leadership moves); gives up once it does not.
    WhileLeader,
}

/// As leader, sets the cluster version through raft if it is not set yet (etcd's
/// `monitorVersions`: every member runs this version, so it is the cluster's).
async fn set_cluster_version(server: &EtcdServer) {
    use stead_proto::membershippb::ClusterVersionSetRequest;
    let shared = &server.shared;
    let is_leader = shared.raft.leader.load(Ordering::Relaxed) == shared.member_id;
    let already_set = matches!(
        shared
            .backend
            .read()
            .get(Bucket::Cluster, CLUSTER_VERSION_KEY),
        Ok(Some(_))
    );
    if !is_leader || already_set {
        return;
    }
    info!(
        cluster_version = CLUSTER_VERSION,
        "setting up the initial cluster version"
    );
    let request = InternalRaftRequest {
        cluster_version_set: Some(ClusterVersionSetRequest {
            ver: CLUSTER_VERSION.to_owned(),
        }),
        ..InternalRaftRequest::default()
    };
    if let Err(err) = server.propose_waiting(request, Patience::WhileLeader).await {
        warn!(error = %err, "failed to set the cluster version");
    }
}

/// Publishes this member's name and client URLs through raft (etcd's `publishV3`), retrying
/// until it is applied; then the member serves clients.
async fn publish(server: EtcdServer) {
    use stead_proto::membershippb::{Attributes, ClusterMemberAttrSetRequest};
    let shared = &server.shared;
    loop {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let request = InternalRaftRequest {
            cluster_member_attr_set: Some(ClusterMemberAttrSetRequest {
                member_id: shared.member_id,
                member_attributes: Some(Attributes {
                    name: shared.name.clone(),
                    client_urls: shared.advertise_client_urls.clone(),
                }),
            }),
            ..InternalRaftRequest::default()
        };
        // A slow apply must not make this member publish twice: its own proposal, as leader,
        // is applied unless it loses the lead.
        match server.propose_waiting(request, Patience::WhileLeader).await {
            Ok(_) => {
                info!(member_id = %format_id(shared.member_id), name = %shared.name,
                    "published local member to cluster through raft");
                set_cluster_version(&server).await;
                shared.published.send_replace(true);
                return;
            }
            Err(EtcdError::Stopped) => return,
            Err(err) => {
                warn!(error = %err, "failed to publish local member; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

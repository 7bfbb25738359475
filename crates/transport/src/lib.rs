//! The peer transport: carries raft messages between the members of a cluster (etcd's
//! `rafthttp`, without HTTP).
//!
//! Owns: the TCP connections between members, the wire format on them, the bounded per-peer
//! queues, reconnecting with backoff, refusing members of another cluster or removed members,
//! moving snapshot data from a [`SnapshotSource`] on the leader to a verified, fsynced file
//! on the follower, and telling a member that is joining the cluster's ID and members (from a
//! [`ClusterInfoSource`], fetched with [`fetch_cluster_info`]). Does not own: raft itself or
//! what a message means (the node and its driver in `stead-server` step what arrives and react
//! to the events), which members exist (the server calls [`Transport::set_peers`] and
//! [`Transport::mark_removed`]), or what snapshot data and the member list are (opaque bytes
//! here: read from the source and written to a file, or answered as given).
//!
//! # Design
//!
//! Length-prefixed frames over plain TCP. No gRPC or HTTP/2: raft messages gain nothing from
//! per-message HTTP/2 framing and flow-control windows, batching is just writing several frames
//! before one flush, and interop with etcd peers is not a goal.
//!
//! Each member dials each peer. One long-lived outbound **raft stream** per peer carries this
//! member's messages to that peer; the peer's messages come back on the peer's own outbound
//! stream, so each connection has one writer and one reader and no request/response pairing.
//! A peer task owns the stream: it takes the messages queued by [`Transport::send`], writes all
//! of them, then flushes once, so messages queued together leave in one syscall batch. A peer
//! that is down or slow only fills its own queue; [`Transport::send`] never waits.
//!
//! Snapshots (`MsgSnapshot`) travel on a **separate connection per snapshot**, chunked and
//! checksummed, so a large snapshot never delays heartbeats. At most one is in flight per peer.
//!
//! A member joining a running cluster (`--initial-cluster-state existing`) knows only the other
//! members' peer URLs. Before it starts raft it asks them, one **cluster info** connection each
//! until one answers, for the cluster's ID and member list (etcd's `GET <peerURL>/members`).
//!
//! # Wire format
//!
//! All integers are big-endian.
//!
//! Handshake, on every kind of connection. The dialer sends 33 bytes:
//!
//! ```text
//! magic "STEADPR1" (8) | kind u8 | cluster_id u64 | from u64 | to u64
//!     kind: 1 raft stream, 2 snapshot, 3 cluster info
//! ```
//!
//! `from` is the dialer's member ID, `to` the member it means to reach. The listener answers
//! `code u8 | text length u16 | UTF-8 text`, code 0 accepting, any other refusing and closing:
//! 1 cluster ID mismatch, 2 `to` is not this member, 3 `from` was removed from the cluster,
//! 4 bad magic or protocol version (or an unknown kind). A refused dialer logs the text once per
//! distinct refusal and retries with backoff, except on code 3: then it emits
//! [`TransportEvent::Removed`] and stops dialing that peer.
//!
//! Cluster info, kind 3: the dialer is not a started member and knows no IDs, so it sends
//! `cluster_id`, `from` and `to` as 0 and the listener checks none of them (only the magic and
//! the kind: code 4). The listener accepts (code 0, empty text), then writes
//!
//! ```text
//! cluster_id u64 | length u32 | members    (length <= frame_bytes_max)
//! ```
//!
//! and closes: [`TransportConfig::cluster_id`], then the bytes [`ClusterInfoSource`] gives. The
//! listener closes without them when they are over its `frame_bytes_max`; the dialer refuses
//! more than 64 MiB.
//!
//! Raft stream, after the handshake, dialer to listener only:
//!
//! ```text
//! frame = length u32 | protobuf bytes of one eraftpb::Message    (length <= frame_bytes_max)
//! ```
//!
//! A frame of length 0 is a **link heartbeat** and carries nothing: the dialer sends one when it
//! has written nothing for a third of [`TransportConfig::stream_read_timeout`], and the listener
//! closes a stream on which nothing arrives for that timeout (etcd's `linkHeartbeatMessage` and
//! `ConnReadTimeout`), so a peer that vanished without closing its connections (a power cut, a
//! network partition) is noticed within seconds even between two followers, which send each
//! other no raft messages. The dialer's socket also gives up on data the peer has not
//! acknowledged for that timeout (`TCP_USER_TIMEOUT`), so the writing side notices as well.
//!
//! The listener never writes on a raft stream after its answer; the dialer reads it only to
//! notice at once that the peer closed it. A frame over the limit, a message that does not
//! decode, or a `MsgSnapshot` closes the connection.
//!
//! Snapshot stream, after the handshake:
//!
//! ```text
//! dialer:   frame (the MsgSnapshot, as above)
//!           chunk*        chunk = length u32 (1..=1 MiB) | bytes | crc32c(bytes) u32
//!           0 u32         end of chunks
//!           total u64     sum of the chunk lengths
//!           crc u32       crc32c of all chunk bytes, in order
//! listener: result u8     0 stored, 1 failed
//! ```
//!
//! The listener writes the chunks to a temporary file in [`TransportConfig::snapshot_dir`],
//! verifies every CRC and the totals, fsyncs the file, renames it to
//! `{from:016x}-{index:016x}.received` (index: the snapshot's metadata index), fsyncs the
//! directory, answers 0 and emits [`TransportEvent::Snapshot`]. On any mismatch it deletes the
//! temporary file, answers 1 and emits nothing (temporary files a crashed process left behind
//! are removed when the transport starts). Either side gives up when no byte moves for
//! [`TransportConfig::snapshot_idle_timeout`]; nothing bounds the total time, so a large
//! snapshot on a slow link still gets through.

mod cluster_info;
mod error;
mod listener;
mod peer;
mod snapshot;
mod transport;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use cluster_info::{ClusterInfo, FetchError, UrlFailure, fetch_cluster_info};
pub use transport::Transport;

/// [`TransportConfig::frame_bytes_max`] by default, and the most [`fetch_cluster_info`] takes.
const FRAME_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;

/// How a [`Transport`] behaves. [`TransportConfig::new`] fills in etcd-like defaults.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This member's ID; never 0.
    pub local_id: u64,
    /// The cluster's ID; dialers from another cluster are refused, joining members are told it.
    pub cluster_id: u64,
    /// Raft messages queued per peer; when full, new messages to that peer are dropped (raft
    /// retries) and the peer is reported unreachable.
    pub peer_queue_max: usize,
    /// The largest raft message frame accepted or sent, and the largest cluster info answered,
    /// in bytes.
    pub frame_bytes_max: usize,
    /// Bound on connecting to a peer and completing the handshake, per address tried.
    pub dial_timeout: Duration,
    /// The first wait before redialing a peer; doubled after each failure.
    pub backoff_min: Duration,
    /// The longest wait between dials of a peer.
    pub backoff_max: Duration,
    /// Where received snapshots are written (created if missing).
    pub snapshot_dir: PathBuf,
    /// A snapshot exchange fails when no byte moves for this long.
    pub snapshot_idle_timeout: Duration,
    /// How long a listener waits for a dialer's handshake before closing the connection.
    pub handshake_timeout: Duration,
    /// A raft stream whose socket cannot take the next 64 KiB (or the rest of a larger frame)
    /// for this long is closed (etcd's `ConnWriteTimeout`), and the peer reported unreachable.
    pub stream_write_timeout: Duration,
    /// A raft stream on which nothing arrives for this long is closed by the listener, and one
    /// whose sent bytes the peer has not acknowledged for this long by the dialer (etcd's
    /// `ConnReadTimeout`). Dialers send a link heartbeat after a third of it without a message.
    pub stream_read_timeout: Duration,
}

impl TransportConfig {
    /// A configuration with the defaults: 4096 queued messages per peer, 64 MiB frames, 1 s dial
    /// timeout, 50 ms to 1 s backoff, 30 s snapshot idle timeout, 5 s handshake and stream
    /// read and write timeouts.
    pub fn new(local_id: u64, cluster_id: u64, snapshot_dir: PathBuf) -> Self {
        TransportConfig {
            local_id,
            cluster_id,
            peer_queue_max: 4096,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            dial_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            snapshot_dir,
            snapshot_idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            stream_write_timeout: Duration::from_secs(5),
            stream_read_timeout: Duration::from_secs(5),
        }
    }
}

/// Where the state machine data sent with a snapshot comes from (the leader's side).
pub trait SnapshotSource: Send + Sync + 'static {
    /// The state machine data to send with `message` (a MsgSnapshot). Called, and the reader
    /// read, on a blocking thread, never on a tokio worker.
    fn open(
        &self,
        message: &raft::eraftpb::Message,
    ) -> std::io::Result<Box<dyn std::io::Read + Send>>;
}

/// What a member tells a member that is joining: the cluster's members, encoded by the server
/// (opaque here).
pub trait ClusterInfoSource: Send + Sync + 'static {
    /// The bytes to answer a cluster info query with (see [`fetch_cluster_info`]). Called on a
    /// blocking thread, never on a tokio worker, once per query.
    fn cluster_info(&self) -> Vec<u8>;
}

/// What the transport tells its owner, through the `events` channel given to
/// [`Transport::start`].
#[derive(Clone, Debug, PartialEq)]
pub enum TransportEvent {
    /// A raft message from a peer (never a MsgSnapshot: those come as `Snapshot`).
    Message(raft::eraftpb::Message),
    /// A snapshot message whose data arrived whole, verified and fsynced at `data`.
    Snapshot {
        message: raft::eraftpb::Message,
        data: PathBuf,
    },
    /// A message to this peer was dropped (queue full, unknown peer, or lost with a broken
    /// connection) or was queued while there is no connection to the peer; at most one report
    /// per peer per 100 ms. Reports are advisory: when the events channel is full they are
    /// dropped.
    Unreachable(u64),
    /// A snapshot to `to` was delivered (`ok`) or failed.
    SnapshotSent { to: u64, ok: bool },
    /// A peer refused this member: it was removed from the cluster.
    Removed,
}

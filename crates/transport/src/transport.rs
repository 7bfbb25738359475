//! The [`Transport`] handle and the state its tasks share. Owns the peer table (one queue, one
//! raft stream task and at most one snapshot task per peer), the set of removed members, the
//! listener tasks, and the rate limit on unreachable reports. Does not own the wire (`wire`),
//! dialing and writing a raft stream (`peer`), serving inbound connections (`listener`), or
//! moving snapshots (`snapshot`).
//!
//! The state sits behind one std `Mutex`, not a tokio one: [`Transport::send`] runs on the raft
//! driver's plain thread and must never await. Every critical section is a few map lookups and
//! `try_send`s; no lock is held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use raft::eraftpb::{Message, MessageType};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::{
    ClusterInfoSource, SnapshotSource, TransportConfig, TransportEvent, listener, peer, snapshot,
};

/// The shortest time between two unreachable reports for one peer.
const UNREACHABLE_REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// Unknown peer IDs remembered for rate-limiting their unreachable reports; the memory is
/// cleared when it grows past this (raft only addresses members it knows, so this is a guard).
const UNKNOWN_PEERS_REMEMBERED_MAX: usize = 1024;

/// A cheap, cloneable handle to the transport of this member.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

/// What every task of the transport reads.
pub(crate) struct Shared {
    pub(crate) config: TransportConfig,
    pub(crate) source: Arc<dyn SnapshotSource>,
    /// What cluster info queries are answered with.
    pub(crate) info: Arc<dyn ClusterInfoSource>,
    /// The owner's channel. Readers of peer streams `send().await` into it (backpressure onto
    /// TCP); reports from [`Transport::send`] use `try_send` and are dropped when it is full.
    pub(crate) events: mpsc::Sender<TransportEvent>,
    runtime: Handle,
    /// Bumped by [`Transport::mark_removed`], so inbound streams from a removed member close.
    removed_generation: watch::Sender<u64>,
    /// The zero of the millisecond clock in [`PeerLink`]'s report times.
    epoch: Instant,
    state: Mutex<State>,
}

struct State {
    stopped: bool,
    peers: HashMap<u64, Peer>,
    /// Members refused with code 3 and never dialed again.
    removed: HashSet<u64>,
    /// When an unreachable report was last sent for an ID that is not a peer.
    unknown_reported: HashMap<u64, Instant>,
    listeners: Vec<JoinHandle<()>>,
}

/// One peer in the table.
struct Peer {
    /// Bounded by [`TransportConfig::peer_queue_max`]; when full, messages are dropped and the
    /// peer reported unreachable.
    queue: mpsc::Sender<Message>,
    link: Arc<PeerLink>,
    /// The task dialing the peer and writing its raft stream.
    stream_task: JoinHandle<()>,
    /// The snapshot task started last (maybe finished).
    snapshot_task: Option<JoinHandle<()>>,
}

impl Peer {
    fn abort(&self) {
        self.stream_task.abort();
        if let Some(task) = &self.snapshot_task {
            task.abort();
        }
    }
}

/// What [`Transport::send`] and a peer's tasks share about one peer.
pub(crate) struct PeerLink {
    pub(crate) id: u64,
    /// The peer's URLs, tried in order on each dial; replaced by [`Transport::set_peers`].
    urls: Mutex<Vec<String>>,
    /// Since when the raft stream has been up: milliseconds since [`Shared::epoch`], plus one;
    /// 0 while it is down. Messages queued while it is down are reported.
    pub(crate) connected_since_ms: AtomicU64,
    /// Whether a snapshot task runs for this peer (at most one does).
    snapshot_in_flight: AtomicBool,
    /// Milliseconds since [`Shared::epoch`] of the last unreachable report, plus one; 0: never.
    unreachable_reported_ms: AtomicU64,
}

impl PeerLink {
    pub(crate) fn urls(&self) -> Vec<String> {
        lock(&self.urls).clone()
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected_since_ms.load(Ordering::Acquire) != 0
    }
}

/// Clears a peer's snapshot-in-flight flag when the snapshot task ends, however it ends.
pub(crate) struct SnapshotInFlight(Arc<PeerLink>);

impl Drop for SnapshotInFlight {
    fn drop(&mut self) {
        self.0.snapshot_in_flight.store(false, Ordering::Release);
    }
}

/// Locks `mutex`. A panic while it was held is a bug elsewhere; the maps stay usable, so go on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Milliseconds since [`Shared::epoch`], plus one (never 0, which means "never" in the
    /// [`PeerLink`] fields that hold it).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Whether `id` was marked removed.
    pub(crate) fn is_removed(&self, id: u64) -> bool {
        lock(&self.state).removed.contains(&id)
    }

    /// A receiver that changes whenever a member is marked removed.
    pub(crate) fn removed_changes(&self) -> watch::Receiver<u64> {
        self.removed_generation.subscribe()
    }

    /// Reports `link`'s peer unreachable unless it was reported in the last 100 ms; whether it
    /// did. The report is dropped when the events channel is full: raft only uses it to slow
    /// down, and hears again soon.
    pub(crate) fn report_unreachable(&self, link: &PeerLink) -> bool {
        let now_ms = self.now_ms();
        let last_ms = link.unreachable_reported_ms.load(Ordering::Acquire);
        let interval_ms = UNREACHABLE_REPORT_INTERVAL.as_millis() as u64;
        if last_ms != 0 && now_ms.saturating_sub(last_ms) < interval_ms {
            return false;
        }
        if link
            .unreachable_reported_ms
            .compare_exchange(last_ms, now_ms, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let _ = self.events.try_send(TransportEvent::Unreachable(link.id));
        true
    }

    /// Emits `event` without waiting: when the channel is full, a task delivers it later. For
    /// the rare events that must not be lost (a failed snapshot), sent from a plain thread.
    fn emit_soon(&self, event: TransportEvent) {
        match self.events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let events = self.events.clone();
                self.runtime.spawn(async move {
                    let _ = events.send(event).await;
                });
            }
        }
    }
}

impl Transport {
    /// Starts serving `listeners` (already bound by the caller) and returns the handle. Snapshot
    /// data sent to peers comes from `source`; cluster info queries from joining members are
    /// answered with `config.cluster_id` and what `info` gives. Events go to `events` (a bounded
    /// tokio mpsc the caller owns; when it is full, the reader task waits: TCP backpressure,
    /// never the driver).
    pub fn start(
        config: TransportConfig,
        listeners: Vec<TcpListener>,
        source: Arc<dyn SnapshotSource>,
        info: Arc<dyn ClusterInfoSource>,
        events: mpsc::Sender<TransportEvent>,
        runtime: &Handle,
    ) -> Transport {
        debug_assert_ne!(config.local_id, 0, "member IDs are never 0");
        let (removed_generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            source,
            info,
            events,
            runtime: runtime.clone(),
            removed_generation,
            epoch: Instant::now(),
            state: Mutex::new(State {
                stopped: false,
                peers: HashMap::new(),
                removed: HashSet::new(),
                unknown_reported: HashMap::new(),
                listeners: Vec::new(),
            }),
        });
        let snapshot_dir = shared.config.snapshot_dir.clone();
        drop(runtime.spawn_blocking(move || snapshot::remove_stale_temp_files(&snapshot_dir)));
        let tasks: Vec<JoinHandle<()>> = listeners
            .into_iter()
            .map(|tcp| runtime.spawn(listener::serve(shared.clone(), tcp)))
            .collect();
        lock(&shared.state).listeners = tasks;
        Transport { shared }
    }

    /// Sets the peers (ID -> peer URLs like "http://127.0.0.1:2380"; dial the first URL that
    /// works, trying them in order); starts tasks for new ones, stops removed ones (their queued
    /// messages are dropped). Does not include this member. Members marked removed are skipped.
    pub fn set_peers(&self, peers: &[(u64, Vec<String>)]) {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        if state.stopped {
            return;
        }
        let State {
            peers: table,
            removed,
            ..
        } = &mut *state;
        let wanted: HashMap<u64, &Vec<String>> = peers
            .iter()
            .filter(|(id, _)| *id != shared.config.local_id && *id != 0 && !removed.contains(id))
            .map(|(id, urls)| (*id, urls))
            .collect();
        table.retain(|id, peer| {
            let keep = wanted.contains_key(id);
            if !keep {
                info!("stopped sending to peer {id:x}: no longer a peer");
                peer.abort();
            }
            keep
        });
        for (id, urls) in wanted {
            if let Some(peer) = table.get(&id) {
                *lock(&peer.link.urls) = urls.clone();
                continue;
            }
            let (queue, receiver) = mpsc::channel(shared.config.peer_queue_max.max(1));
            let link = Arc::new(PeerLink {
                id,
                urls: Mutex::new(urls.clone()),
                connected_since_ms: AtomicU64::new(0),
                snapshot_in_flight: AtomicBool::new(false),
                unreachable_reported_ms: AtomicU64::new(0),
            });
            let stream_task =
                shared
                    .runtime
                    .spawn(peer::run(shared.clone(), link.clone(), receiver));
            table.insert(
                id,
                Peer {
                    queue,
                    link,
                    stream_task,
                    snapshot_task: None,
                },
            );
        }
    }

    /// How long the raft stream to peer `id` has been up without a break; `None` while it is
    /// down or when `id` is not a peer (etcd's `Transporter.ActiveSince`, which the strict
    /// reconfiguration checks read).
    pub fn connected_for(&self, id: u64) -> Option<Duration> {
        let since_ms = lock(&self.shared.state)
            .peers
            .get(&id)?
            .link
            .connected_since_ms
            .load(Ordering::Acquire);
        (since_ms != 0)
            .then(|| Duration::from_millis(self.shared.now_ms().saturating_sub(since_ms)))
    }

    /// Marks `id` removed: its connections are refused with code 3 from now on (open inbound
    /// streams from it are closed), and it is no longer dialed.
    pub fn mark_removed(&self, id: u64) {
        let mut state = lock(&self.shared.state);
        state.removed.insert(id);
        if let Some(peer) = state.peers.remove(&id) {
            peer.abort();
        }
        drop(state);
        info!("member {id:x} marked removed: refusing its connections");
        self.shared.removed_generation.send_modify(|generation| {
            *generation += 1;
        });
    }

    /// Queues messages for their peers. Never blocks and never awaits: callable from a plain
    /// (non-tokio) thread such as the raft driver. Messages to unknown peers are dropped (debug
    /// log) and reported unreachable. A `MsgSnapshot` starts a snapshot task instead.
    pub fn send(&self, messages: Vec<Message>) {
        let shared = &self.shared;
        let mut state = lock(&shared.state);
        if state.stopped {
            return;
        }
        for message in messages {
            let to = message.get_to();
            let is_snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            let Some(peer) = state.peers.get_mut(&to) else {
                if report_unknown_unreachable(shared, &mut state.unknown_reported, to) {
                    debug!(
                        "dropped {:?} to unknown peer {to:x}",
                        message.get_msg_type()
                    );
                }
                if is_snapshot {
                    shared.emit_soon(TransportEvent::SnapshotSent { to, ok: false });
                }
                continue;
            };
            if is_snapshot {
                start_snapshot(shared, peer, message);
                continue;
            }
            // Drops are logged with the unreachable report they cause, at most every 100 ms
            // per peer, not once per message.
            match peer.queue.try_send(message) {
                Ok(()) => {
                    if !peer.link.is_connected() {
                        shared.report_unreachable(&peer.link);
                    }
                }
                Err(mpsc::error::TrySendError::Full(message)) => {
                    if shared.report_unreachable(&peer.link) {
                        debug!(
                            "dropped {:?} to peer {to:x}: its queue is full",
                            message.get_msg_type()
                        );
                    }
                }
                Err(mpsc::error::TrySendError::Closed(message)) => {
                    if shared.report_unreachable(&peer.link) {
                        debug!(
                            "dropped {:?} to peer {to:x}: no longer dialed",
                            message.get_msg_type()
                        );
                    }
                }
            }
        }
    }

    /// Stops all tasks and listeners; in-flight snapshot tasks are cancelled. Queued messages
    /// are dropped; later calls to `send` and `set_peers` do nothing. Dropping every handle
    /// does not stop the tasks: this does.
    pub async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = lock(&self.shared.state);
            state.stopped = true;
            let mut tasks: Vec<JoinHandle<()>> = state.listeners.drain(..).collect();
            for (_, peer) in state.peers.drain() {
                tasks.push(peer.stream_task);
                tasks.extend(peer.snapshot_task);
            }
            tasks
        };
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // A cancelled task's error is the expected outcome; a panicked one was logged by
            // tokio's panic hook already.
            let _ = task.await;
        }
        debug!(
            "transport of member {:x} stopped",
            self.shared.config.local_id
        );
    }
}

/// Reports an ID that is not a peer unreachable, at most once per 100 ms per ID; whether it
/// did.
fn report_unknown_unreachable(
    shared: &Shared,
    reported: &mut HashMap<u64, Instant>,
    to: u64,
) -> bool {
    let now = Instant::now();
    if let Some(last) = reported.get(&to)
        && now.duration_since(*last) < UNREACHABLE_REPORT_INTERVAL
    {
        return false;
    }
    if reported.len() >= UNKNOWN_PEERS_REMEMBERED_MAX {
        reported.clear();
    }
    reported.insert(to, now);
    let _ = shared.events.try_send(TransportEvent::Unreachable(to));
    true
}

/// Starts a snapshot task for `peer`, or reports the snapshot failed at once when one is
/// already in flight.
fn start_snapshot(shared: &Arc<Shared>, peer: &mut Peer, message: Message) {
    let to = peer.link.id;
    if peer.link.snapshot_in_flight.swap(true, Ordering::AcqRel) {
        debug!("dropped a snapshot to peer {to:x}: one is already in flight");
        shared.emit_soon(TransportEvent::SnapshotSent { to, ok: false });
        return;
    }
    let in_flight = SnapshotInFlight(peer.link.clone());
    let task = shared.runtime.spawn(snapshot::send(
        shared.clone(),
        peer.link.clone(),
        message,
        in_flight,
    ));
    peer.snapshot_task = Some(task);
}

//! The watchable store: etcd's `watchableStore`. Who is watching which keys, and getting every
//! change to them to each watcher, in revision order, with no gap and no duplicate.
//!
//! What it owns: the watchers of every watch stream, grouped as etcd groups them, each stream's
//! bounded outbox, and the catch-up thread. What it does not own: the gRPC stream (the server
//! turns [`WatchMessage`]s into `WatchResponse`s, adds `prev_kv`, fragments), request
//! validation, and the store itself (it reads history through a [`History`] handle and is told
//! of new changes by [`WatchHub::notify`]).
//!
//! # Groups
//! - **Synced** watchers have received every matching change up to the last revision the hub
//!   was notified of. The apply thread hands them new changes directly ([`WatchHub::notify`]):
//!   a lookup by key (single-key watchers) plus a scan of the range watchers, then one
//!   `try_send` per watcher that matched. Nothing in it waits.
//! - **Unsynced** watchers are behind: they started in the past, or fell behind as victims. The
//!   catch-up thread reads their missing revisions from the backend, at most
//!   [`SYNC_WATCHERS_MAX`] watchers and [`SYNC_EVENTS_MAX`] events per round, and moves each
//!   to synced once it reached the last notified revision.
//! - **Victims** found their stream's outbox full. The response that did not fit is held (one
//!   per watcher) and retried every [`VICTIM_RETRY`]; once it is out, the watcher catches up
//!   from the backend like an unsynced one. Nothing is dropped and the apply thread never waits.
//!
//! # Bounds
//! A stream's outbox holds [`STREAM_OUTBOX_CAPACITY`] messages. A slow watcher holds at most one
//! response (the changes of one revision, or one catch-up batch: at most
//! [`SYNC_REVISIONS_PER_RESPONSE_MAX`] revisions, as etcd); everything after it is
//! left in the backend and read again when the watcher has room. So a watcher that never reads
//! costs one response, not a growing queue. It is cancelled only when a compaction removes the
//! history it still needs: it then gets a response with `compact_revision` set (etcd's
//! behaviour), and the client may re-watch from the compaction revision.
//!
//! # Why no gap and no duplicate
//! The apply thread publishes a revision, then notifies the hub; `last_notified` is the newest
//! revision notified. Every watcher carries `next_rev`, the first revision it has not had.
//! Synced watchers get a notified revision only if it is at least their `next_rev`. The
//! catch-up thread reads up to a `last_notified` it saw under the lock (published, so
//! readable), delivers under the lock, sets `next_rev` past what it read, and makes the watcher
//! synced only if nothing was notified meanwhile (else it goes round again).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use stead_proto::mvccpb::{Event, event::EventType};
use tokio::sync::mpsc::{self, error::TrySendError};
use tracing::{debug, error, warn};

use crate::range_index::{RangeEnd, RangeIndex};
use crate::{History, KeyRange, MvccError};

/// Messages a stream's outbox holds (etcd's `chanBufLen` is 128).
pub const STREAM_OUTBOX_CAPACITY: usize = 256;
/// Unsynced watchers caught up per round (etcd's `maxWatchersPerSync`).
pub const SYNC_WATCHERS_MAX: usize = 512;
/// Events read from the backend per catch-up round (whole revisions: the last one read may
/// bring more).
pub const SYNC_EVENTS_MAX: usize = 10_000;
/// Revisions one catch-up response of one watcher holds at most (etcd's `watchBatchMaxRevs`);
/// the rest comes in the next round.
pub const SYNC_REVISIONS_PER_RESPONSE_MAX: usize = 1_000;
/// How often held responses of victims are retried (etcd: 10 ms).
pub const VICTIM_RETRY: Duration = Duration::from_millis(10);
/// How often the catch-up thread looks for work when nobody woke it (etcd: 100 ms).
const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// The watch ID that asks the stream to choose one (etcd's `AutoWatchID`).
pub const AUTO_WATCH_ID: i64 = 0;
/// The watch ID of a response not about one watcher (etcd's `InvalidWatchID`).
pub const INVALID_WATCH_ID: i64 = -1;

/// Why a watch could not be created; the text is etcd's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error("mvcc: watcher range is empty")]
    EmptyRange,
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateId,
    #[error("mvcc: watcher does not exist")]
    NotExist,
    #[error("mvcc: watch stream closed")]
    Closed,
}

/// Which events a watcher does not want.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub no_put: bool,
    pub no_delete: bool,
}

impl EventFilter {
    fn wants(self, event: &Event) -> bool {
        if event.r#type == EventType::Delete as i32 {
            !self.no_delete
        } else {
            !self.no_put
        }
    }
}

/// How the stream's sender presents a watcher's events; carried, not interpreted, here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Presentation {
    pub prev_kv: bool,
    pub fragment: bool,
    pub progress_notify: bool,
}

/// What a new watcher watches.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    /// Client-chosen ID, or [`AUTO_WATCH_ID`].
    pub watch_id: i64,
    pub range: KeyRange,
    /// The first revision to deliver; 0: the next one.
    pub start_revision: i64,
    pub filter: EventFilter,
    pub presentation: Presentation,
}

/// What a stream's outbox carries, in the order its watchers must see it.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchMessage {
    /// The answer to a create: the watcher's ID, or why there is none.
    Created {
        watch_id: i64,
        revision: i64,
        presentation: Presentation,
        error: Option<WatchError>,
    },
    /// Changes for one watcher, in revision order (one revision when live, several when
    /// catching up). `revision` is the store revision the response speaks for.
    Events {
        watch_id: i64,
        revision: i64,
        events: Vec<Event>,
    },
    /// Everything up to `revision` was delivered (a progress notification; `watch_id` is
    /// [`INVALID_WATCH_ID`] for an answer to a stream's progress request).
    Progress { watch_id: i64, revision: i64 },
    /// The watcher needed history below the compaction revision; it is cancelled.
    Compacted {
        watch_id: i64,
        compact_revision: i64,
    },
    /// The answer to a cancel.
    Canceled { watch_id: i64, revision: i64 },
}

type StreamId = u64;
type WatcherKey = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Synced,
    Unsynced,
    Victim,
}

struct Watcher {
    stream: StreamId,
    watch_id: i64,
    range: KeyRange,
    filter: EventFilter,
    /// The first revision this watcher has not had.
    next_rev: i64,
    group: Group,
    /// A victim's response that did not fit in the outbox.
    held: Option<WatchMessage>,
    outbox: mpsc::Sender<WatchMessage>,
}

impl Watcher {
    fn wants(&self, event: &Event) -> bool {
        event
            .kv
            .as_ref()
            .is_some_and(|kv| kv.mod_revision >= self.next_rev && self.range.contains(&kv.key))
            && self.filter.wants(event)
    }
}

struct StreamState {
    outbox: mpsc::Sender<WatchMessage>,
    /// Watch IDs in use on the stream (including watchers a compaction cancelled, as etcd
    /// keeps them until the client cancels), and the hub's key for live ones.
    ids: HashMap<i64, Option<WatcherKey>>,
    next_id: i64,
    /// A progress request waits for every watcher of the stream to be synced.
    progress_requested: bool,
}

#[derive(Default)]
struct HubState {
    watchers: HashMap<WatcherKey, Watcher>,
    /// Synced single-key watchers by key.
    key_watchers: HashMap<Bytes, Vec<WatcherKey>>,
    /// Synced range watchers.
    range_watchers: RangeIndex,
    unsynced: BTreeSet<WatcherKey>,
    victims: BTreeSet<WatcherKey>,
    streams: HashMap<StreamId, StreamState>,
    /// The newest revision the apply thread notified (or the store's revision at start).
    last_notified: i64,
    next_key: u64,
    stopping: bool,
}

impl HubState {
    fn add_synced(&mut self, key: WatcherKey) {
        let Some(watcher) = self.watchers.get_mut(&key) else {
            return;
        };
        watcher.group = Group::Synced;
        match &watcher.range {
            KeyRange::Single(single) => self
                .key_watchers
                .entry(single.clone())
                .or_default()
                .push(key),
            KeyRange::Between { start, end } => {
                self.range_watchers
                    .insert(start.clone(), RangeEnd::Key(end.clone()), key)
            }
            KeyRange::From(start) => {
                self.range_watchers
                    .insert(start.clone(), RangeEnd::Unbounded, key)
            }
        }
    }

    /// Takes the watcher out of whatever group it is in.
    fn ungroup(&mut self, key: WatcherKey) {
        let Some(watcher) = self.watchers.get(&key) else {
            return;
        };
        match watcher.group {
            Group::Synced => match &watcher.range {
                KeyRange::Single(single) => {
                    if let Some(list) = self.key_watchers.get_mut(single) {
                        list.retain(|&other| other != key);
                        if list.is_empty() {
                            self.key_watchers.remove(single);
                        }
                    }
                }
                KeyRange::Between { start, .. } | KeyRange::From(start) => {
                    self.range_watchers.remove(start, key);
                }
            },
            Group::Unsynced => {
                self.unsynced.remove(&key);
            }
            Group::Victim => {
                self.victims.remove(&key);
            }
        }
    }

    fn move_to(&mut self, key: WatcherKey, group: Group) {
        self.ungroup(key);
        match group {
            Group::Synced => self.add_synced(key),
            Group::Unsynced => {
                if let Some(watcher) = self.watchers.get_mut(&key) {
                    watcher.group = Group::Unsynced;
                    self.unsynced.insert(key);
                }
            }
            Group::Victim => {
                if let Some(watcher) = self.watchers.get_mut(&key) {
                    watcher.group = Group::Victim;
                    self.victims.insert(key);
                }
            }
        }
    }

    /// Removes the watcher; its stream keeps the ID (`keep_id`) or forgets it.
    fn remove(&mut self, key: WatcherKey, keep_id: bool) -> Option<Watcher> {
        self.ungroup(key);
        let watcher = self.watchers.remove(&key)?;
        if let Some(stream) = self.streams.get_mut(&watcher.stream) {
            if keep_id {
                stream.ids.insert(watcher.watch_id, None);
            } else {
                stream.ids.remove(&watcher.watch_id);
            }
        }
        Some(watcher)
    }

    /// Where a watcher goes once it has nothing held: synced if it is not behind.
    fn settle(&mut self, key: WatcherKey) {
        let Some(watcher) = self.watchers.get(&key) else {
            return;
        };
        if watcher.next_rev > self.last_notified {
            self.move_to(key, Group::Synced);
        } else {
            self.move_to(key, Group::Unsynced);
        }
    }

    /// Sends `message` to the watcher, or holds it and makes the watcher a victim.
    fn deliver(&mut self, key: WatcherKey, message: WatchMessage) -> bool {
        let Some(watcher) = self.watchers.get_mut(&key) else {
            return false;
        };
        match watcher.outbox.try_send(message) {
            Ok(()) => true,
            Err(TrySendError::Full(message)) => {
                watcher.held = Some(message);
                self.move_to(key, Group::Victim);
                false
            }
            Err(TrySendError::Closed(_)) => {
                self.remove(key, false);
                false
            }
        }
    }

    /// Answers the stream's pending progress request if every watcher of it is synced.
    fn answer_progress(&mut self, stream_id: StreamId) {
        let last_notified = self.last_notified;
        let Some(stream) = self.streams.get(&stream_id) else {
            return;
        };
        if !stream.progress_requested {
            return;
        }
        let all_synced = stream.ids.values().flatten().all(|key| {
            self.watchers
                .get(key)
                .is_none_or(|watcher| watcher.group == Group::Synced)
        });
        if !all_synced {
            return;
        }
        if stream.ids.values().flatten().next().is_none() {
            // Nothing to report progress of: etcd (≥ 3.5.8) answers nothing either.
            if let Some(stream) = self.streams.get_mut(&stream_id) {
                stream.progress_requested = false;
            }
            return;
        }
        let sent = stream.outbox.try_send(WatchMessage::Progress {
            watch_id: INVALID_WATCH_ID,
            revision: last_notified,
        });
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            // A full outbox: retried with the victims.
            stream.progress_requested = matches!(sent, Err(TrySendError::Full(_)));
        }
    }
}

struct HubShared {
    state: Mutex<HubState>,
    /// Wakes the catch-up thread.
    work: Condvar,
    history: History,
}

impl HubShared {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The watchable store's hub. Shared by the apply thread (which notifies it), the watch
/// streams, and its catch-up thread (stopped when the hub is dropped).
pub struct WatchHub {
    shared: Arc<HubShared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

impl WatchHub {
    /// Starts the hub over the store's history.
    pub fn start(history: History) -> Result<Arc<WatchHub>, MvccError> {
        let state = HubState {
            last_notified: history.current_revision(),
            next_key: 1,
            ..HubState::default()
        };
        let shared = Arc::new(HubShared {
            state: Mutex::new(state),
            work: Condvar::new(),
            history,
        });
        let syncer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("watch-sync".into())
                .spawn(move || run_syncer(&shared))
                .map_err(|e| MvccError::Corrupt(format!("cannot start watch thread: {e}")))?
        };
        Ok(Arc::new(WatchHub {
            shared,
            syncer: Mutex::new(Some(syncer)),
        }))
    }

    /// Hands the changes of one write transaction (one revision, in order) to the synced
    /// watchers. Called by the apply thread after the revision is published.
    pub fn notify(&self, events: &[Event]) {
        let Some(revision) = events
            .first()
            .and_then(|event| event.kv.as_ref())
            .map(|kv| kv.mod_revision)
        else {
            return;
        };
        let mut state = self.shared.lock();
        state.last_notified = revision;
        if state.key_watchers.is_empty() && state.range_watchers.is_empty() {
            return;
        }
        // Each matching watcher's events, in the order the watchers first matched.
        let mut batches: Vec<(WatcherKey, Vec<Event>)> = Vec::new();
        let mut position: HashMap<WatcherKey, usize> = HashMap::new();
        let mut matched: Vec<WatcherKey> = Vec::new();
        for event in events {
            let Some(kv) = &event.kv else { continue };
            matched.clear();
            if let Some(single) = state.key_watchers.get(&kv.key) {
                matched.extend_from_slice(single);
            }
            state
                .range_watchers
                .for_each_containing(&kv.key, |key| matched.push(key));
            for &key in &matched {
                let Some(watcher) = state.watchers.get(&key) else {
                    continue;
                };
                if !watcher.wants(event) {
                    continue;
                }
                let at = *position.entry(key).or_insert_with(|| {
                    batches.push((key, Vec::new()));
                    batches.len() - 1
                });
                batches[at].1.push(event.clone());
            }
        }
        let mut victims = false;
        for (key, events) in batches {
            let Some(watcher) = state.watchers.get_mut(&key) else {
                continue;
            };
            let message = WatchMessage::Events {
                watch_id: watcher.watch_id,
                revision,
                events,
            };
            watcher.next_rev = revision + 1;
            if !state.deliver(key, message) {
                victims = true;
            }
        }
        drop(state);
        if victims {
            self.shared.work.notify_one();
        }
    }

    /// After the store was replaced by a snapshot's (its revision jumped): every synced
    /// watcher is caught up from the new store's history by the catch-up thread, as etcd's
    /// watchable store does on restore (a watcher whose next revision was compacted away
    /// there gets the compaction answer).
    pub fn restore(&self) {
        let mut state = self.shared.lock();
        state.last_notified = self.shared.history.current_revision();
        let synced: Vec<WatcherKey> = state
            .watchers
            .iter()
            .filter(|(_, watcher)| watcher.group == Group::Synced)
            .map(|(&key, _)| key)
            .collect();
        for key in synced {
            state.move_to(key, Group::Unsynced);
        }
        drop(state);
        self.shared.work.notify_one();
    }

    /// Stops the catch-up thread; streams get no more messages from it.
    pub fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.work.notify_all();
        let syncer = self
            .syncer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(syncer) = syncer
            && syncer.join().is_err()
        {
            error!("watch catch-up thread panicked");
        }
    }
}

impl Drop for WatchHub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One watch stream: its watchers, its outbox. Dropping it cancels every watcher of it.
pub struct WatchStream {
    hub: Arc<WatchHub>,
    id: StreamId,
    outbox: mpsc::Sender<WatchMessage>,
}

/// A handle for a stream's sender side: periodic progress notifications.
#[derive(Clone)]
pub struct StreamProgress {
    hub: Arc<WatchHub>,
    id: StreamId,
}

impl WatchStream {
    /// Opens a stream; the receiver is its outbox.
    pub fn open(hub: &Arc<WatchHub>) -> (WatchStream, mpsc::Receiver<WatchMessage>) {
        let (outbox, receiver) = mpsc::channel(STREAM_OUTBOX_CAPACITY);
        let mut state = hub.shared.lock();
        let id = state.next_key;
        state.next_key += 1;
        state.streams.insert(
            id,
            StreamState {
                outbox: outbox.clone(),
                ids: HashMap::new(),
                next_id: 0,
                progress_requested: false,
            },
        );
        drop(state);
        let stream = WatchStream {
            hub: Arc::clone(hub),
            id,
            outbox,
        };
        (stream, receiver)
    }

    /// Resolves when the stream's outbox is gone (the client went away).
    pub async fn closed(&self) {
        self.outbox.closed().await
    }

    /// A handle for periodic progress notifications of this stream's watchers.
    pub fn progress_handle(&self) -> StreamProgress {
        StreamProgress {
            hub: Arc::clone(&self.hub),
            id: self.id,
        }
    }

    /// Creates a watcher: answers `Created` through the outbox (waiting for room), then starts
    /// delivering. Returns the watch ID, or why there is none (also answered).
    pub async fn watch(&mut self, spec: WatchSpec) -> Result<i64, WatchError> {
        let revision = self.hub.shared.history.current_revision();
        let chosen = self.choose_id(&spec);
        let created = WatchMessage::Created {
            watch_id: *chosen.as_ref().unwrap_or(&INVALID_WATCH_ID),
            revision,
            presentation: spec.presentation,
            error: chosen.as_ref().err().cloned(),
        };
        if self.outbox.send(created).await.is_err() {
            return Err(WatchError::Closed);
        }
        let watch_id = chosen?;
        let start = if spec.start_revision == 0 {
            revision + 1
        } else {
            spec.start_revision.max(1)
        };
        let mut state = self.hub.shared.lock();
        let key = state.next_key;
        state.next_key += 1;
        let Some(stream) = state.streams.get_mut(&self.id) else {
            return Err(WatchError::Closed);
        };
        stream.ids.insert(watch_id, Some(key));
        let behind = start <= state.last_notified;
        state.watchers.insert(
            key,
            Watcher {
                stream: self.id,
                watch_id,
                range: spec.range,
                filter: spec.filter,
                next_rev: start,
                group: Group::Unsynced,
                held: None,
                outbox: self.outbox.clone(),
            },
        );
        if behind {
            state.move_to(key, Group::Unsynced);
            drop(state);
            self.hub.shared.work.notify_one();
        } else {
            state.move_to(key, Group::Synced);
        }
        Ok(watch_id)
    }

    /// Reserves the spec's ID, or the next free one.
    fn choose_id(&self, spec: &WatchSpec) -> Result<i64, WatchError> {
        if let KeyRange::Between { start, end } = &spec.range
            && start >= end
        {
            return Err(WatchError::EmptyRange);
        }
        let mut state = self.hub.shared.lock();
        let Some(stream) = state.streams.get_mut(&self.id) else {
            return Err(WatchError::Closed);
        };
        let id = if spec.watch_id == AUTO_WATCH_ID {
            while stream.ids.contains_key(&stream.next_id) {
                stream.next_id += 1;
            }
            let id = stream.next_id;
            stream.next_id += 1;
            id
        } else if stream.ids.contains_key(&spec.watch_id) {
            return Err(WatchError::DuplicateId);
        } else {
            spec.watch_id
        };
        // Reserved (no watcher yet) until `watch` registers it.
        stream.ids.insert(id, None);
        Ok(id)
    }

    /// Cancels a watcher of this stream and answers `Canceled` through the outbox.
    pub async fn cancel(&mut self, watch_id: i64) -> Result<(), WatchError> {
        let revision = {
            let mut state = self.hub.shared.lock();
            let Some(stream) = state.streams.get_mut(&self.id) else {
                return Err(WatchError::Closed);
            };
            let Some(entry) = stream.ids.remove(&watch_id) else {
                return Err(WatchError::NotExist);
            };
            if let Some(key) = entry {
                state.remove(key, false);
            }
            self.hub.shared.history.current_revision()
        };
        self.outbox
            .send(WatchMessage::Canceled { watch_id, revision })
            .await
            .map_err(|_| WatchError::Closed)
    }

    /// Asks for a progress notification for the whole stream: sent as soon as every watcher of
    /// the stream is synced, after every event before it.
    pub fn request_progress(&self) {
        let mut state = self.hub.shared.lock();
        if let Some(stream) = state.streams.get_mut(&self.id) {
            stream.progress_requested = true;
        }
        state.answer_progress(self.id);
        let still_waiting = state
            .streams
            .get(&self.id)
            .is_some_and(|stream| stream.progress_requested);
        drop(state);
        if still_waiting {
            self.hub.shared.work.notify_one();
        }
    }
}

impl StreamProgress {
    /// A periodic progress notification for one watcher: sent only if it is synced and its
    /// stream has room (a watcher with anything in flight gets events soon anyway).
    pub fn notify_progress(&self, watch_id: i64) {
        let state = self.hub.shared.lock();
        let Some(Some(key)) = state
            .streams
            .get(&self.id)
            .and_then(|stream| stream.ids.get(&watch_id))
        else {
            return;
        };
        let Some(watcher) = state.watchers.get(key) else {
            return;
        };
        if watcher.group == Group::Synced {
            let _ = watcher.outbox.try_send(WatchMessage::Progress {
                watch_id,
                revision: state.last_notified,
            });
        }
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        let mut state = self.hub.shared.lock();
        if let Some(stream) = state.streams.remove(&self.id) {
            for key in stream.ids.into_values().flatten() {
                state.ungroup(key);
                state.watchers.remove(&key);
            }
        }
    }
}

fn run_syncer(shared: &HubShared) {
    // Whether the last catch-up round read anything: then go again at once.
    let mut busy = false;
    loop {
        {
            let state = shared.lock();
            if state.stopping {
                return;
            }
            let pending = !state.victims.is_empty()
                || !state.unsynced.is_empty()
                || state.streams.values().any(|s| s.progress_requested);
            let wait = match (busy, pending) {
                (true, _) => None,
                (false, true) => Some(VICTIM_RETRY),
                (false, false) => Some(SYNC_INTERVAL),
            };
            if let Some(wait) = wait {
                let (state, _) = shared
                    .work
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|poison| poison.into_inner());
                if state.stopping {
                    return;
                }
            }
        }
        retry_victims(shared);
        busy = match catch_up(shared) {
            Ok(read) => read,
            Err(err) => {
                warn!(error = %err, "watch catch-up failed; retrying");
                false
            }
        };
        answer_progress_requests(shared);
    }
}

fn retry_victims(shared: &HubShared) {
    let mut state = shared.lock();
    let victims: Vec<WatcherKey> = state.victims.iter().copied().collect();
    for key in victims {
        let Some(watcher) = state.watchers.get_mut(&key) else {
            continue;
        };
        let Some(held) = watcher.held.take() else {
            state.settle(key);
            continue;
        };
        match watcher.outbox.try_send(held) {
            Ok(()) => state.settle(key),
            Err(TrySendError::Full(held)) => watcher.held = Some(held),
            Err(TrySendError::Closed(_)) => {
                state.remove(key, false);
            }
        }
    }
}

fn answer_progress_requests(shared: &HubShared) {
    let mut state = shared.lock();
    let waiting: Vec<StreamId> = state
        .streams
        .iter()
        .filter(|(_, stream)| stream.progress_requested)
        .map(|(&id, _)| id)
        .collect();
    for id in waiting {
        state.answer_progress(id);
    }
}

/// One round of catch-up for up to [`SYNC_WATCHERS_MAX`] unsynced watchers. Returns whether it
/// read history (whether another round may have work at once).
fn catch_up(shared: &HubShared) -> Result<bool, MvccError> {
    let compact = shared.history.compact_revision();
    let (chosen, from, to) = {
        let mut state = shared.lock();
        let to = state.last_notified;
        let candidates: Vec<WatcherKey> = state
            .unsynced
            .iter()
            .take(SYNC_WATCHERS_MAX)
            .copied()
            .collect();
        let mut chosen = Vec::with_capacity(candidates.len());
        let mut from = i64::MAX;
        for key in candidates {
            let Some(watcher) = state.watchers.get(&key) else {
                continue;
            };
            if watcher.next_rev < compact {
                let message = WatchMessage::Compacted {
                    watch_id: watcher.watch_id,
                    compact_revision: compact,
                };
                match watcher.outbox.try_send(message) {
                    Ok(()) => {
                        debug!(watch_id = watcher.watch_id, compact, "watcher compacted");
                        state.remove(key, true);
                    }
                    Err(TrySendError::Full(_)) => {} // next round
                    Err(TrySendError::Closed(_)) => {
                        state.remove(key, false);
                    }
                }
            } else if watcher.next_rev > to {
                state.move_to(key, Group::Synced);
            } else {
                from = from.min(watcher.next_rev);
                chosen.push(key);
            }
        }
        (chosen, from, to)
    };
    if chosen.is_empty() {
        return Ok(false);
    }
    let batch = match shared.history.events(from, to, SYNC_EVENTS_MAX) {
        Ok(batch) => batch,
        // A compaction overtook the read: the next round cancels whom it concerns.
        Err(MvccError::Compacted) => return Ok(false),
        Err(err) => return Err(err),
    };
    let mut state = shared.lock();
    let compact = shared.history.compact_revision();
    for key in chosen {
        let Some(watcher) = state.watchers.get_mut(&key) else {
            continue;
        };
        if watcher.group != Group::Unsynced || watcher.next_rev < compact {
            continue;
        }
        if watcher.next_rev > batch.read_to {
            continue; // nothing for it in what was read: it started later
        }
        let mut events: Vec<Event> = Vec::new();
        let mut revisions = 0;
        let mut next_rev = batch.read_to + 1;
        for event in batch.events.iter().filter(|event| watcher.wants(event)) {
            let revision = event.kv.as_ref().map_or(0, |kv| kv.mod_revision);
            let last = events
                .last()
                .and_then(|e: &Event| e.kv.as_ref())
                .map(|kv| kv.mod_revision);
            if last != Some(revision) {
                if revisions == SYNC_REVISIONS_PER_RESPONSE_MAX {
                    // The rest in the next round: the watcher stays unsynced.
                    next_rev = revision;
                    break;
                }
                revisions += 1;
            }
            events.push(event.clone());
        }
        watcher.next_rev = next_rev;
        let delivered = if events.is_empty() {
            true
        } else {
            let message = WatchMessage::Events {
                watch_id: watcher.watch_id,
                revision: to,
                events,
            };
            state.deliver(key, message)
        };
        if delivered && state.watchers.contains_key(&key) {
            state.settle(key);
        }
    }
    Ok(true)
}

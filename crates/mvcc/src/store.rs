//! The multi-version store: etcd's `mvcc.store`.
//!
//! What it owns: the store revision, the compaction revision, the key index, and the `key`
//! bucket's contents (revision → encoded `mvccpb.KeyValue`), plus the compaction bookkeeping in
//! the `meta` bucket. What it does not own: the backend's batching and durability (the backend
//! crate), the meaning of requests (the `request` module), leases (behind [`Lessor`]).
//!
//! # Concurrency
//! One writer: a [`WriteTxn`] holds the backend's batch writer for its life, so the apply loop
//! and the compactor take turns. Readers take no lock across a read: a read at revision `r`
//! loads the published store revision, looks revisions up in the index and fetches key-values
//! from a backend view. A writer publishes a new store revision only after its changes are in
//! the index and the backend, so every revision a reader may ask for is already there. A
//! compaction raises the compaction revision *before* it touches the index or the backend, and
//! a read checks it again at the end: a read that raced a compaction below its revision answers
//! "compacted" rather than a partial result.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use bytes::Bytes;
use prost::Message;
use stead_backend::{Backend, BatchTx, Bucket, ConsistentIndex};
use stead_proto::mvccpb::{Event, KeyValue, event::EventType};
use tracing::{error, info, warn};

use crate::index::{StoredChange, TreeIndex};
use crate::revision::RevisionKey;
use crate::{KeyRange, Lessor, MvccError, Revision};

/// Meta key of the compaction revision that has been requested (etcd's name).
const META_SCHEDULED_COMPACT: &[u8] = b"scheduledCompactRev";
/// Meta key of the compaction revision whose physical compaction finished (etcd's name).
const META_FINISHED_COMPACT: &[u8] = b"finishedCompactRev";
/// Compactions waiting for the compactor thread. A full queue makes `compact` wait: compactions
/// come through raft one by one, so this bound is never reached in practice.
const COMPACTION_QUEUE_MAX: usize = 16;

/// Tuning of the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Revisions deleted from the backend per batch during a physical compaction (etcd:
    /// `--experimental-compaction-batch-limit`, 1000).
    pub compaction_batch_limit: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            compaction_batch_limit: 1000,
        }
    }
}

/// What a range reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// At most this many key-values (0: no limit). `count` still counts every match.
    pub limit: usize,
    /// The store revision to read at (0 or less: the newest).
    pub revision: i64,
    /// Count only; return no key-values.
    count_only: bool,
}

impl RangeOptions {
    /// Options reading every match at the newest revision.
    pub fn latest() -> RangeOptions {
        RangeOptions::default()
    }

    pub fn with_limit(mut self, limit: usize) -> RangeOptions {
        self.limit = limit;
        self
    }

    pub fn at_revision(mut self, revision: i64) -> RangeOptions {
        self.revision = revision;
        self
    }

    pub fn count_only(mut self) -> RangeOptions {
        self.count_only = true;
        self
    }
}

/// What a range found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeResult {
    /// The key-values, in key order.
    pub kvs: Vec<KeyValue>,
    /// How many keys matched, regardless of the limit.
    pub count: usize,
    /// The store revision of the view the range read in (not the revision read at).
    pub revision: i64,
}

/// The outcome of a hash of the store's contents (etcd's `HashKV`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    pub hash: u32,
    /// The store revision when the hash was taken.
    pub current_revision: i64,
    /// The compaction revision when the hash was taken.
    pub compact_revision: i64,
}

/// Called when a physical compaction finished (or was abandoned at shutdown).
pub type CompactionDone = Box<dyn FnOnce() + Send>;

/// The store. Reads and writes borrow it; it owns a compactor thread, stopped on drop.
pub struct Store {
    shared: Arc<Shared>,
    compactor: Option<Compactor>,
}

struct Shared {
    backend: Arc<Backend>,
    index: TreeIndex,
    /// The newest published store revision. Starts at 1: an empty store is at revision 1.
    current_revision: AtomicI64,
    /// The compaction revision; -1 before the first compaction.
    compact_revision: AtomicI64,
    lessor: Arc<dyn Lessor>,
    options: StoreOptions,
    stopping: AtomicBool,
}

struct Compactor {
    jobs: SyncSender<CompactionJob>,
    thread: JoinHandle<()>,
}

struct CompactionJob {
    revision: i64,
    done: Option<CompactionDone>,
}

impl Store {
    /// Opens the store over `backend`: rebuilds the key index from the `key` bucket, attaches
    /// leased keys to `lessor`, and resumes a compaction that a crash interrupted.
    pub fn open(
        backend: Arc<Backend>,
        lessor: Arc<dyn Lessor>,
        options: StoreOptions,
    ) -> Result<Store, MvccError> {
        let shared = Arc::new(Shared {
            backend,
            index: TreeIndex::default(),
            current_revision: AtomicI64::new(1),
            compact_revision: AtomicI64::new(-1),
            lessor,
            options,
            stopping: AtomicBool::new(false),
        });
        let resume_compaction = shared.restore()?;
        let (jobs, queue) = std::sync::mpsc::sync_channel(COMPACTION_QUEUE_MAX);
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("mvcc-compact".into())
                .spawn(move || shared.run_compactor(queue))
                .map_err(|e| MvccError::Corrupt(format!("cannot start compactor thread: {e}")))?
        };
        let store = Store {
            shared,
            compactor: Some(Compactor { jobs, thread }),
        };
        if let Some(revision) = resume_compaction {
            info!(revision, "resuming interrupted compaction");
            store.schedule_compaction(revision, None)?;
        }
        Ok(store)
    }

    /// Rebuilds what the store keeps in memory after the backend's contents were replaced (a
    /// leader's snapshot installed): the key index, the revisions, the leased keys (the caller
    /// resets the lessor first). Called by the only writer, holding no [`WriteTxn`].
    pub fn reload(&self) -> Result<(), MvccError> {
        self.shared.compact_revision.store(-1, Ordering::SeqCst);
        let resume_compaction = self.shared.restore()?;
        if let Some(revision) = resume_compaction {
            self.schedule_compaction(revision, None)?;
        }
        Ok(())
    }

    /// The newest store revision.
    pub fn current_revision(&self) -> i64 {
        self.shared.current_revision.load(Ordering::Acquire)
    }

    /// The compaction revision (-1 before any compaction).
    pub fn compact_revision(&self) -> i64 {
        self.shared.compact_revision.load(Ordering::Acquire)
    }

    /// Number of keys with history in the index.
    pub fn key_count(&self) -> usize {
        self.shared.index.len()
    }

    /// The backend under the store.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.shared.backend
    }

    /// A read view at the current revision. Cheap: no lock is held.
    pub fn read(&self) -> ReadTxn<'_> {
        ReadTxn {
            shared: &self.shared,
            revision: self.current_revision(),
            first_revision: self.compact_revision(),
        }
    }

    /// Starts the one write transaction; blocks while the compactor holds the backend writer.
    /// Every change made through it gets the same main revision; it is published by
    /// [`WriteTxn::end`].
    pub fn write(&self) -> Result<WriteTxn<'_>, MvccError> {
        let batch = self.shared.backend.batch()?;
        Ok(WriteTxn {
            shared: &self.shared,
            batch: Some(batch),
            begin_revision: self.current_revision(),
            events: Vec::new(),
            published: false,
        })
    }

    /// Compacts the history at `revision`: afterwards no read below it is possible. Index and
    /// backend are cleaned in the background; `done` runs when that finished. Must not be called
    /// while this thread holds a [`WriteTxn`].
    pub fn compact(&self, revision: i64, done: Option<CompactionDone>) -> Result<(), MvccError> {
        if revision <= self.compact_revision() {
            return Err(MvccError::Compacted);
        }
        if revision > self.current_revision() {
            return Err(MvccError::FutureRevision);
        }
        self.schedule_compaction(revision, done)
    }

    fn schedule_compaction(
        &self,
        revision: i64,
        done: Option<CompactionDone>,
    ) -> Result<(), MvccError> {
        // Raised first: reads below it fail from now on (see the module doc).
        self.shared
            .compact_revision
            .store(revision, Ordering::SeqCst);
        let mut batch = self.shared.backend.batch()?;
        batch.put(
            Bucket::Meta,
            Bytes::from_static(META_SCHEDULED_COMPACT),
            Revision::new(revision, 0).to_key(false),
        );
        batch.end()?;
        // The scheduled compaction must survive a crash, so that it is resumed.
        self.shared.backend.commit()?;
        let Some(compactor) = &self.compactor else {
            return Err(MvccError::Closed);
        };
        let mut job = CompactionJob { revision, done };
        loop {
            match compactor.jobs.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(returned)) => {
                    job = returned;
                    std::thread::yield_now();
                }
                Err(TrySendError::Disconnected(_)) => return Err(MvccError::Closed),
            }
        }
    }

    /// A CRC32C over the store's contents up to `revision` (0: the newest), as etcd's `HashKV`
    /// computes it, so members can compare their stores.
    pub fn hash_kv(&self, revision: i64) -> Result<KvHash, MvccError> {
        let compact = self.compact_revision();
        let current = self.current_revision();
        if revision > 0 && revision <= compact {
            return Err(MvccError::Compacted);
        }
        if revision > 0 && revision > current {
            return Err(MvccError::FutureRevision);
        }
        let revision = if revision == 0 { current } else { revision };
        let keep = self.shared.index.keep(revision);
        let view = self.shared.backend.read();
        let upper = Revision::new(revision + 1, 0);
        let lower = Revision::new(compact + 1, 0);
        let mut hash = crc32c::crc32c(Bucket::Key.name().as_bytes());
        let mut corrupt = None;
        view.for_each(Bucket::Key, &[], None, |key, value| {
            let Some(decoded) = RevisionKey::decode(key) else {
                corrupt = Some(key.to_vec());
                return ControlFlow::Break(());
            };
            let at = decoded.revision;
            if at >= upper {
                return ControlFlow::Break(());
            }
            // Revisions a compaction removes (or is about to) do not count, nor does a
            // tombstone at the compaction revision, which older etcd versions removed (see
            // key_index). etcd counts every revision below the compaction when `keep` is empty
            // (no key is live), which makes its hash depend on how far the background
            // compaction got; we skip them always, and agree with etcd whenever a key is live.
            if at < lower && !keep.contains(&at) {
                return ControlFlow::Continue(());
            }
            if at.main == compact && decoded.tombstone {
                return ControlFlow::Continue(());
            }
            hash = crc32c::crc32c_append(hash, key);
            hash = crc32c::crc32c_append(hash, value);
            ControlFlow::Continue(())
        })?;
        if let Some(key) = corrupt {
            return Err(MvccError::Corrupt(format!("bad revision key {key:?}")));
        }
        Ok(KvHash {
            hash,
            current_revision: current,
            compact_revision: compact,
        })
    }
}

/// The store's history as watchers read it: every change of a range of revisions, as events.
/// A cheap handle; the watch hub's catch-up thread holds one.
#[derive(Clone)]
pub struct History {
    shared: Arc<Shared>,
}

/// Events read from the history: whole revisions, in revision order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryBatch {
    pub events: Vec<Event>,
    /// Every change up to this revision (from the first one asked for) is in `events`.
    pub read_to: i64,
}

impl History {
    /// The newest published store revision.
    pub fn current_revision(&self) -> i64 {
        self.shared.current_revision.load(Ordering::Acquire)
    }

    /// The compaction revision (-1 before any compaction).
    pub fn compact_revision(&self) -> i64 {
        self.shared.compact_revision.load(Ordering::Acquire)
    }

    /// The changes of revisions `from..=to` as events (deletions carry the key and revision
    /// only), stopping at the end of the first revision that brings the count to
    /// `max_events`: a revision is never split. `to` must be published. Fails with
    /// [`MvccError::Compacted`] if `from` is below the compaction revision, before or after
    /// the read.
    pub fn events(&self, from: i64, to: i64, max_events: usize) -> Result<HistoryBatch, MvccError> {
        let from = from.max(1);
        self.shared.check_not_compacted(from)?;
        let mut batch = HistoryBatch {
            events: Vec::new(),
            read_to: to,
        };
        if to < from {
            batch.read_to = from - 1;
            return Ok(batch);
        }
        let start = Revision::bound(from);
        let end = Revision::bound(to.saturating_add(1));
        let mut failure = None;
        self.shared
            .backend
            .read()
            .for_each(Bucket::Key, &start, Some(&end), |key, value| {
                let Some(decoded) = RevisionKey::decode(key) else {
                    failure = Some(MvccError::Corrupt(format!("bad revision key {key:?}")));
                    return ControlFlow::Break(());
                };
                let main = decoded.revision.main;
                if batch.events.len() >= max_events.max(1)
                    && batch.events.last().is_some_and(|last: &Event| {
                        last.kv.as_ref().is_some_and(|kv| kv.mod_revision != main)
                    })
                {
                    // The revision before this one is complete: stop there.
                    batch.read_to = main - 1;
                    return ControlFlow::Break(());
                }
                let mut kv = match KeyValue::decode(value) {
                    Ok(kv) => kv,
                    Err(e) => {
                        failure = Some(MvccError::Corrupt(format!(
                            "bad key-value at {:?}: {e}",
                            decoded.revision
                        )));
                        return ControlFlow::Break(());
                    }
                };
                let kind = if decoded.tombstone {
                    kv.mod_revision = main;
                    EventType::Delete
                } else {
                    EventType::Put
                };
                batch.events.push(Event {
                    r#type: kind as i32,
                    kv: Some(kv),
                    prev_kv: None,
                });
                ControlFlow::Continue(())
            })?;
        if let Some(failure) = failure {
            return Err(failure);
        }
        // A compaction that raced the read may have removed some of what it should have found.
        self.shared.check_not_compacted(from)?;
        Ok(batch)
    }
}

impl Store {
    /// A handle on the store's history, for the watch hub.
    pub fn history(&self) -> History {
        History {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(Compactor { jobs, thread }) = self.compactor.take() {
            drop(jobs);
            if thread.join().is_err() {
                error!("mvcc compactor thread panicked");
            }
        }
    }
}

impl Shared {
    /// Rebuilds the index and revisions from the backend. Returns a compaction to resume.
    fn restore(&self) -> Result<Option<i64>, MvccError> {
        let view = self.backend.read();
        let finished = read_meta_revision(&view, META_FINISHED_COMPACT)?;
        let scheduled = read_meta_revision(&view, META_SCHEDULED_COMPACT)?;
        if let Some(finished) = finished {
            self.compact_revision.store(finished, Ordering::SeqCst);
        }
        let mut current = 1;
        let mut leases: HashMap<Bytes, i64> = HashMap::new();
        // Sized exactly: a vector grown by doubling would briefly hold two copies at the end,
        // the peak memory of a restart.
        let stored_changes = usize::try_from(view.committed_len(Bucket::Key)?).unwrap_or(0);
        let mut changes = Vec::with_capacity(stored_changes);
        let mut corrupt = None;
        view.for_each(Bucket::Key, &[], None, |key, value| {
            let Some(decoded) = RevisionKey::decode(key) else {
                corrupt = Some(format!("bad revision key {key:?}"));
                return ControlFlow::Break(());
            };
            let Some(stored) = StoredKeyValue::decode(value) else {
                corrupt = Some(format!("bad key-value at {:?}", decoded.revision));
                return ControlFlow::Break(());
            };
            changes.push(StoredChange {
                key: Box::from(stored.key),
                revision: decoded.revision,
                tombstone: decoded.tombstone,
                created: stored.create_revision,
                version: stored.version,
            });
            if decoded.tombstone || stored.lease == 0 {
                leases.remove(stored.key);
            } else {
                leases.insert(Bytes::copy_from_slice(stored.key), stored.lease);
            }
            current = current.max(decoded.revision.main);
            ControlFlow::Continue(())
        })?;
        if let Some(corrupt) = corrupt {
            return Err(MvccError::Corrupt(corrupt));
        }
        self.index.restore(changes);
        let compact = self.compact_revision.load(Ordering::SeqCst);
        // Every key at or below the compaction may be gone: the store is at least there.
        current = current.max(compact);
        self.current_revision.store(current, Ordering::Release);
        for (key, lease) in leases {
            self.lessor.attach(lease, &key);
        }
        info!(
            revision = current,
            compact_revision = compact,
            keys = self.index.len(),
            "restored mvcc store"
        );
        Ok(scheduled.filter(|&scheduled| scheduled > compact))
    }

    fn run_compactor(&self, jobs: Receiver<CompactionJob>) {
        while let Ok(job) = jobs.recv() {
            if let Err(err) = self.compact_physically(job.revision) {
                // Resumed at the next start from the scheduled revision in meta.
                error!(revision = job.revision, error = %err, "compaction failed");
            }
            if let Some(done) = job.done {
                done();
            }
        }
    }

    /// Removes compacted revisions from the index, then from the backend in batches, then marks
    /// the compaction finished.
    fn compact_physically(&self, revision: i64) -> Result<(), MvccError> {
        let keep = self.index.compact(revision);
        let end = Revision::bound(revision + 1);
        let mut start: Vec<u8> = Vec::new();
        let batch_limit = self.options.compaction_batch_limit.max(1);
        let mut deleted = 0usize;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                warn!(revision, "compaction interrupted by shutdown");
                return Ok(());
            }
            let mut doomed: Vec<Bytes> = Vec::new();
            let mut last_seen: Option<Vec<u8>> = None;
            let view = self.backend.read();
            view.for_each(Bucket::Key, &start, Some(&end), |key, _| {
                last_seen = Some(key.to_vec());
                let kept = RevisionKey::decode(key)
                    .is_some_and(|decoded| keep.contains(&decoded.revision));
                if !kept {
                    doomed.push(Bytes::copy_from_slice(key));
                }
                if doomed.len() >= batch_limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            drop(view);
            let finished = doomed.len() < batch_limit;
            deleted += doomed.len();
            let mut batch = self.backend.batch()?;
            for key in doomed {
                batch.delete(Bucket::Key, key);
            }
            if finished {
                batch.put(
                    Bucket::Meta,
                    Bytes::from_static(META_FINISHED_COMPACT),
                    Revision::new(revision, 0).to_key(false),
                );
            }
            batch.end()?;
            if finished {
                info!(revision, deleted, "finished compaction");
                return Ok(());
            }
            // Resume just after the last key looked at.
            start = last_seen.unwrap_or_default();
            start.push(0);
        }
    }

    /// A range at `revision_of_view`: the store revision the caller's view is at.
    fn range(
        &self,
        range: &KeyRange,
        options: &RangeOptions,
        revision_of_view: i64,
    ) -> Result<RangeResult, MvccError> {
        let at = match options.revision {
            revision if revision > revision_of_view => return Err(MvccError::FutureRevision),
            revision if revision <= 0 => revision_of_view,
            revision => revision,
        };
        self.check_not_compacted(at)?;
        if options.count_only {
            let count = self.index.count(range, at);
            self.check_not_compacted(at)?;
            return Ok(RangeResult {
                kvs: Vec::new(),
                count,
                revision: revision_of_view,
            });
        }
        let view = self.backend.read();
        let (revisions, count) = self.index.revisions(range, at, options.limit);
        let mut kvs = Vec::with_capacity(revisions.len());
        for revision in revisions {
            let Some(bytes) = view.get(Bucket::Key, &revision.to_key(false))? else {
                self.check_not_compacted(at)?;
                return Err(MvccError::Corrupt(format!(
                    "revision {revision:?} is in the index but not in the backend"
                )));
            };
            let kv = KeyValue::decode(bytes)
                .map_err(|e| MvccError::Corrupt(format!("bad key-value at {revision:?}: {e}")))?;
            kvs.push(kv);
        }
        self.check_not_compacted(at)?;
        Ok(RangeResult {
            kvs,
            count,
            revision: revision_of_view,
        })
    }

    fn check_not_compacted(&self, at: i64) -> Result<(), MvccError> {
        if at < self.compact_revision.load(Ordering::SeqCst) {
            Err(MvccError::Compacted)
        } else {
            Ok(())
        }
    }
}

/// The fields of a stored `mvccpb.KeyValue` that a restore needs, read in place: the value,
/// most of the bytes, is skipped rather than copied.
struct StoredKeyValue<'a> {
    key: &'a [u8],
    create_revision: i64,
    version: i64,
    lease: i64,
}

impl<'a> StoredKeyValue<'a> {
    /// Walks the protobuf fields (key = 1, create_revision = 2, version = 4, lease = 6; others
    /// skipped by wire type). `None` if the bytes are not a well-formed message.
    fn decode(mut bytes: &'a [u8]) -> Option<StoredKeyValue<'a>> {
        let mut stored = StoredKeyValue {
            key: &[],
            create_revision: 0,
            version: 0,
            lease: 0,
        };
        while !bytes.is_empty() {
            let tag = read_varint(&mut bytes)?;
            match (tag >> 3, tag & 7) {
                (field, 0) => {
                    let number = read_varint(&mut bytes)? as i64;
                    match field {
                        2 => stored.create_revision = number,
                        4 => stored.version = number,
                        6 => stored.lease = number,
                        _ => {}
                    }
                }
                (field, 2) => {
                    let length = usize::try_from(read_varint(&mut bytes)?).ok()?;
                    let (field_bytes, rest) = bytes.split_at_checked(length)?;
                    if field == 1 {
                        stored.key = field_bytes;
                    }
                    bytes = rest;
                }
                (_, 1) => bytes = bytes.get(8..)?,
                (_, 5) => bytes = bytes.get(4..)?,
                _ => return None,
            }
        }
        Some(stored)
    }
}

/// A protobuf base-128 varint.
fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn read_meta_revision(
    view: &stead_backend::ReadTx,
    key: &'static [u8],
) -> Result<Option<i64>, MvccError> {
    match view.get(Bucket::Meta, key)? {
        None => Ok(None),
        Some(bytes) => RevisionKey::decode(&bytes)
            .map(|decoded| Some(decoded.revision.main))
            .ok_or_else(|| {
                MvccError::Corrupt(format!(
                    "meta key {} holds {bytes:?}",
                    String::from_utf8_lossy(key)
                ))
            }),
    }
}

/// A read view fixed at the store revision current when it was taken.
pub struct ReadTxn<'a> {
    shared: &'a Shared,
    revision: i64,
    first_revision: i64,
}

/// Something ranges can be read from: a [`ReadTxn`], or a [`WriteTxn`] (which sees its own
/// changes).
pub trait KvView {
    /// Reads `range` as `options` say.
    fn range(&self, range: &KeyRange, options: &RangeOptions) -> Result<RangeResult, MvccError>;
    /// The store revision this view reads at.
    fn revision(&self) -> i64;
    /// The compaction revision when the view was taken: reads below it fail.
    fn first_revision(&self) -> i64;
}

impl KvView for ReadTxn<'_> {
    fn range(&self, range: &KeyRange, options: &RangeOptions) -> Result<RangeResult, MvccError> {
        self.shared.range(range, options, self.revision)
    }
    fn revision(&self) -> i64 {
        self.revision
    }
    fn first_revision(&self) -> i64 {
        self.first_revision
    }
}

/// The write transaction: every change gets main revision `begin + 1`, sub revisions in order.
/// Readers see nothing of it until [`WriteTxn::end`] publishes the new revision. Dropping it
/// without `end` publishes too (the changes are already in the index and backend batch), but
/// loses the batch-limit commit check and the events.
pub struct WriteTxn<'a> {
    shared: &'a Shared,
    batch: Option<BatchTx<'a>>,
    begin_revision: i64,
    events: Vec<Event>,
    published: bool,
}

impl<'a> WriteTxn<'a> {
    /// Puts `key` = `value` (attached to `lease`, 0 for none); returns the revision.
    pub fn put(&mut self, key: &[u8], value: Bytes, lease: i64) -> Result<i64, MvccError> {
        let main = self.begin_revision + 1;
        let revision = Revision::new(main, self.events.len() as i64);
        let batch = self.batch.as_mut().ok_or(MvccError::Closed)?;
        let (create_revision, version, old_lease) = match self.shared.index.put(key, revision) {
            Some(found) => (
                found.created.main,
                found.version + 1,
                self.shared.lessor.lease_of(key),
            ),
            None => (main, 1, 0),
        };
        let kv = KeyValue {
            key: Bytes::copy_from_slice(key),
            create_revision,
            mod_revision: main,
            version,
            value,
            lease,
        };
        batch.put(Bucket::Key, revision.to_key(false), kv.encode_to_vec());
        if old_lease != 0 {
            self.shared.lessor.detach(old_lease, key);
        }
        if lease != 0 {
            self.shared.lessor.attach(lease, key);
        }
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: None,
        });
        Ok(main)
    }

    /// Deletes every key in `range` that exists; returns how many and the revision.
    pub fn delete_range(&mut self, range: &KeyRange) -> Result<(i64, i64), MvccError> {
        let keys = self.shared.index.keys(range, self.revision());
        let deleted = keys.len() as i64;
        for key in keys {
            self.delete(key)?;
        }
        if deleted != 0 || !self.events.is_empty() {
            Ok((deleted, self.begin_revision + 1))
        } else {
            Ok((0, self.begin_revision))
        }
    }

    fn delete(&mut self, key: Bytes) -> Result<(), MvccError> {
        let main = self.begin_revision + 1;
        let revision = Revision::new(main, self.events.len() as i64);
        // A tombstone stores the key alone, as etcd does.
        let stored = KeyValue {
            key: key.clone(),
            ..KeyValue::default()
        };
        self.batch_mut()?
            .put(Bucket::Key, revision.to_key(true), stored.encode_to_vec());
        self.shared
            .index
            .tombstone(&key, revision)
            .map_err(|_| MvccError::Corrupt(format!("deleting {key:?}, which is not live")))?;
        let lease = self.shared.lessor.lease_of(&key);
        if lease != 0 {
            self.shared.lessor.detach(lease, &key);
        }
        self.events.push(Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key,
                mod_revision: main,
                ..KeyValue::default()
            }),
            prev_kv: None,
        });
        Ok(())
    }

    /// Records the raft entry this transaction applies, committed atomically with its changes.
    pub fn set_consistent_index(
        &mut self,
        consistent_index: ConsistentIndex,
    ) -> Result<(), MvccError> {
        self.batch_mut()?.set_consistent_index(consistent_index);
        Ok(())
    }

    /// The lessor the store attaches keys to.
    pub fn lessor(&self) -> &dyn Lessor {
        self.shared.lessor.as_ref()
    }

    /// Deletes a record of another bucket (a revoked lease's) in this transaction's backend
    /// batch, so that it commits atomically with the key changes. The key bucket belongs to
    /// the store: refused.
    pub fn delete_record(&mut self, bucket: Bucket, key: &[u8]) -> Result<(), MvccError> {
        if bucket == Bucket::Key {
            return Err(MvccError::Corrupt(
                "the key bucket is written by the store only".into(),
            ));
        }
        self.batch_mut()?
            .delete(bucket, Bytes::copy_from_slice(key));
        Ok(())
    }

    /// Whether any change was made.
    pub fn changed(&self) -> bool {
        !self.events.is_empty()
    }

    /// Publishes the new revision (if anything changed) and releases the writer. Returns the
    /// changes as watch events, in order; deletions carry the key and revision only.
    pub fn end(mut self) -> Result<Vec<Event>, MvccError> {
        self.publish();
        let events = std::mem::take(&mut self.events);
        if let Some(batch) = self.batch.take() {
            batch.end()?;
        }
        Ok(events)
    }

    fn publish(&mut self) {
        if !self.events.is_empty() && !self.published {
            let revision = self.begin_revision + 1;
            debug_assert!(revision > self.shared.current_revision.load(Ordering::Acquire));
            self.shared
                .current_revision
                .store(revision, Ordering::Release);
            self.published = true;
        }
    }

    fn batch_mut(&mut self) -> Result<&mut BatchTx<'a>, MvccError> {
        // Only absent after end(), which consumes self.
        self.batch.as_mut().ok_or(MvccError::Closed)
    }
}

impl KvView for WriteTxn<'_> {
    fn range(&self, range: &KeyRange, options: &RangeOptions) -> Result<RangeResult, MvccError> {
        self.shared.range(range, options, self.revision())
    }
    /// The revision the transaction reads at: its own once it changed something.
    fn revision(&self) -> i64 {
        if self.events.is_empty() {
            self.begin_revision
        } else {
            self.begin_revision + 1
        }
    }
    fn first_revision(&self) -> i64 {
        self.shared.compact_revision.load(Ordering::Acquire)
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_decoder_reads_what_prost_wrote() {
        for kv in [
            KeyValue {
                key: Bytes::from_static(b"key"),
                create_revision: 2,
                mod_revision: 9,
                version: 3,
                value: Bytes::from(vec![7u8; 300]),
                lease: 0x1234_5678_9abc,
            },
            KeyValue {
                key: Bytes::from_static(b"tombstone"),
                ..KeyValue::default()
            },
            KeyValue {
                key: Bytes::from_static(b"negative"),
                create_revision: -1,
                version: i64::MAX,
                lease: -5,
                ..KeyValue::default()
            },
        ] {
            let bytes = kv.encode_to_vec();
            let stored = StoredKeyValue::decode(&bytes).expect("decodes");
            assert_eq!(stored.key, &kv.key[..]);
            assert_eq!(stored.create_revision, kv.create_revision);
            assert_eq!(stored.version, kv.version);
            assert_eq!(stored.lease, kv.lease);
            // Truncated input is refused, never misread.
            for cut in 1..bytes.len() {
                if let Some(partial) = StoredKeyValue::decode(&bytes[..cut]) {
                    assert!(partial.key.len() <= kv.key.len());
                }
            }
        }
        assert!(
            StoredKeyValue::decode(&[0x0a, 0x05, b'a']).is_none(),
            "length past the end"
        );
        assert!(StoredKeyValue::decode(&[0x0b]).is_none(), "wire type 3");
    }
}

//! The backend handle, its writer ([`BatchTx`]), its read views ([`ReadTx`]) and the committer.
//!
//! Locks, always taken in this order, each held briefly:
//! 1. `commit_lock`: one commit at a time (redb allows one write transaction).
//! 2. `writer`: one writer of the open batch at a time; held by a [`BatchTx`] for its life.
//! 3. `view`: which batches and which redb snapshot a new [`ReadTx`] sees; swapped by commits.
//!
//! A [`BatchTx`] must be ended (or dropped) before its thread calls [`Backend::commit`].

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{
    Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
};
use tracing::{debug, error, info};

use crate::batch::{Batch, Change};
use crate::{BackendError, Bucket};

/// Meta key of the last applied raft index (etcd's name).
const META_CONSISTENT_INDEX: &[u8] = b"consistent_index";
/// Meta key of the term of the last applied raft entry (etcd's name).
const META_TERM: &[u8] = b"term";
/// Meta key of stead's storage format; a database of another format is refused.
const META_STORAGE_FORMAT: &[u8] = b"stead_storage_format";
const STORAGE_FORMAT: &str = "1";

/// Tuning of the backend.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// Commit the open batch at least this often (etcd: `--backend-batch-interval`, 100 ms).
    pub batch_interval: Duration,
    /// Commit once the open batch holds this many changes (etcd: `--backend-batch-limit`,
    /// 10,000).
    pub batch_limit: usize,
    /// Memory redb may use to cache pages.
    pub cache_bytes: usize,
    /// How often a commit recounts the bytes in use: redb counts them by walking every page of
    /// the database, which a commit cannot afford each time.
    pub size_in_use_refresh: Duration,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            batch_interval: Duration::from_millis(100),
            batch_limit: 10_000,
            cache_bytes: 64 * 1024 * 1024,
            size_in_use_refresh: Duration::from_secs(30),
        }
    }
}

/// The raft position the backend's contents correspond to: every entry up to `index` has been
/// applied, none after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsistentIndex {
    pub index: u64,
    pub term: u64,
}

/// The backend. Dropping it stops the background committer without committing the open batch:
/// what was not committed is lost, as in a crash, and is replayed from the WAL on restart.
pub struct Backend {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
}

pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) path: Arc<Path>,
    options: BackendOptions,
    pub(crate) commit_lock: Mutex<()>,
    pub(crate) writer: Mutex<WriterState>,
    view: RwLock<View>,
    size_bytes: AtomicU64,
    size_in_use_bytes: AtomicU64,
    /// When the bytes in use were last counted.
    size_in_use_counted: Mutex<Instant>,
    /// Commits made since open.
    commits: AtomicU64,
    /// What the committer thread is asked to do, and its wake-up call.
    committer_orders: Mutex<CommitterOrders>,
    committer_wake: Condvar,
    /// Set by a failed commit; every later write or commit returns it.
    poison: Mutex<Option<String>>,
}

pub(crate) struct WriterState {
    /// Distinct keys changed in the open batch.
    pub(crate) pending_changes: usize,
}

#[derive(Default)]
struct CommitterOrders {
    /// Commit now: the open batch reached the batch limit.
    commit: bool,
    /// Stop.
    stop: bool,
}

/// The open batch may grow to this many times the batch limit while the committer is busy;
/// past it the writer commits itself, so memory stays bounded.
const PENDING_CHANGES_MAX_FACTOR: usize = 4;

#[derive(Clone)]
struct View {
    /// The open batch, written by the [`BatchTx`].
    open: Arc<Batch>,
    /// The batch being written to redb, if a commit is under way.
    committing: Option<Arc<Batch>>,
    /// The state of the last commit.
    snapshot: Arc<Snapshot>,
}

/// Every bucket's table, opened in one redb read transaction.
struct Snapshot {
    tables: Vec<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl Backend {
    /// Opens the database at `path`, creating it (and its directory) if absent.
    pub fn open(path: &Path, options: BackendOptions) -> Result<Backend, BackendError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| BackendError::Open {
                path: path.to_path_buf(),
                source: Box::new(redb::Error::Io(source)),
            })?;
        }
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(|source| BackendError::Open {
                path: path.to_path_buf(),
                source: Box::new(source.into()),
            })?;
        let shared = Arc::new(Shared::new(db, path.to_path_buf(), options)?);
        let committer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("backend-commit".into())
                .spawn(move || shared.run_committer())
                .map_err(|source| BackendError::Open {
                    path: path.to_path_buf(),
                    source: Box::new(redb::Error::Io(source)),
                })?
        };
        info!(path = %path.display(), size_bytes = shared.size_bytes.load(Ordering::Relaxed), "opened backend");
        Ok(Backend {
            shared,
            committer: Some(committer),
        })
    }

    /// Takes the writer. Blocks while another writer holds it.
    pub fn batch(&self) -> Result<BatchTx<'_>, BackendError> {
        self.shared.check_poison()?;
        let writer = lock(&self.shared.writer);
        let open = Arc::clone(&read(&self.shared.view).open);
        Ok(BatchTx {
            shared: &self.shared,
            writer: Some(writer),
            open,
        })
    }

    /// A consistent view of everything applied so far, committed or not.
    pub fn read(&self) -> ReadTx {
        let view = read(&self.shared.view).clone();
        ReadTx {
            view,
            path: Arc::clone(&self.shared.path),
        }
    }

    /// Commits the open batch now, durably. Must not be called while this thread holds a
    /// [`BatchTx`].
    pub fn commit(&self) -> Result<(), BackendError> {
        self.shared.commit()
    }

    /// The consistent index as of the newest applied change.
    pub fn consistent_index(&self) -> Result<ConsistentIndex, BackendError> {
        self.read().consistent_index()
    }

    /// Size of the database file in bytes (etcd's `dbSize`), as of the last commit.
    pub fn size_bytes(&self) -> u64 {
        self.shared.size_bytes.load(Ordering::Relaxed)
    }

    /// Bytes of the file holding live pages (etcd's `dbSizeInUse`), counted at open and then
    /// at most every 30 seconds.
    pub fn size_in_use_bytes(&self) -> u64 {
        self.shared.size_in_use_bytes.load(Ordering::Relaxed)
    }

    /// How many batches were committed since open (empty batches are not committed).
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        lock(&self.shared.committer_orders).stop = true;
        self.shared.committer_wake.notify_all();
        if let Some(committer) = self.committer.take()
            && committer.join().is_err()
        {
            error!("backend committer thread panicked");
        }
    }
}

impl Shared {
    fn new(db: Database, path: PathBuf, options: BackendOptions) -> Result<Shared, BackendError> {
        let storage = |operation| {
            let path = path.clone();
            move |source: redb::Error| BackendError::Storage {
                operation,
                path,
                source: Box::new(source),
            }
        };
        // Create every table, and check or stamp the storage format, in one durable commit.
        let mut txn = db
            .begin_write()
            .map_err(|e| storage("begin write transaction")(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| storage("set durability")(e.into()))?;
        {
            for bucket in Bucket::ALL {
                txn.open_table(bucket.table())
                    .map_err(|e| storage("create table")(e.into()))?;
            }
            let mut meta = txn
                .open_table(Bucket::Meta.table())
                .map_err(|e| storage("open meta table")(e.into()))?;
            let found = meta
                .get(META_STORAGE_FORMAT)
                .map_err(|e| storage("read storage format")(e.into()))?
                .map(|value| String::from_utf8_lossy(value.value()).into_owned());
            match found {
                Some(found) if found != STORAGE_FORMAT => {
                    return Err(BackendError::IncompatibleFormat {
                        path,
                        found,
                        expected: STORAGE_FORMAT.to_owned(),
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(META_STORAGE_FORMAT, STORAGE_FORMAT.as_bytes())
                        .map_err(|e| storage("write storage format")(e.into()))?;
                }
            }
        }
        let in_use = size_in_use(&txn).map_err(storage("read statistics"))?;
        txn.commit().map_err(|e| storage("commit")(e.into()))?;
        let snapshot = Snapshot::open(&db).map_err(storage("begin read transaction"))?;
        let size_bytes = file_size(&path);
        Ok(Shared {
            db,
            path: path.into(),
            options,
            commit_lock: Mutex::new(()),
            writer: Mutex::new(WriterState { pending_changes: 0 }),
            view: RwLock::new(View {
                open: Arc::new(Batch::default()),
                committing: None,
                snapshot: Arc::new(snapshot),
            }),
            size_bytes: AtomicU64::new(size_bytes),
            size_in_use_bytes: AtomicU64::new(in_use),
            size_in_use_counted: Mutex::new(Instant::now()),
            commits: AtomicU64::new(0),
            committer_orders: Mutex::new(CommitterOrders::default()),
            committer_wake: Condvar::new(),
            poison: Mutex::new(None),
        })
    }

    pub(crate) fn check_poison(&self) -> Result<(), BackendError> {
        match lock(&self.poison).as_ref() {
            Some(reason) => Err(BackendError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Freezes the open batch, writes it to redb in one durable transaction, and moves views to
    /// the new snapshot.
    fn commit(&self) -> Result<(), BackendError> {
        let _commit = lock(&self.commit_lock);
        self.check_poison()?;
        let (frozen, changes) = {
            let mut writer = lock(&self.writer);
            if writer.pending_changes == 0 {
                return Ok(());
            }
            let changes = std::mem::take(&mut writer.pending_changes);
            let mut view = write(&self.view);
            let frozen = std::mem::take(&mut view.open);
            view.committing = Some(Arc::clone(&frozen));
            (frozen, changes)
        };
        match self.write_batch(&frozen) {
            Ok(in_use) => {
                if let Some(in_use) = in_use {
                    self.size_in_use_bytes.store(in_use, Ordering::Relaxed);
                }
                self.size_bytes
                    .store(file_size(&self.path), Ordering::Relaxed);
            }
            Err(err) => {
                error!(path = %self.path.display(), error = %err, "backend commit failed");
                *lock(&self.poison) = Some(err.to_string());
                return Err(err);
            }
        }
        let snapshot = Snapshot::open(&self.db).map_err(|source| BackendError::Storage {
            operation: "begin read transaction",
            path: self.path.to_path_buf(),
            source: Box::new(source),
        })?;
        let mut view = write(&self.view);
        view.snapshot = Arc::new(snapshot);
        view.committing = None;
        self.commits.fetch_add(1, Ordering::Relaxed);
        debug!(changes, "backend batch committed");
        Ok(())
    }

    /// Points new views at the database as committed, with an empty open batch (after the
    /// whole contents were replaced). The caller holds the commit lock and the writer.
    pub(crate) fn reset_view(&self) -> Result<(), BackendError> {
        let snapshot = Snapshot::open(&self.db).map_err(|source| BackendError::Storage {
            operation: "begin read transaction",
            path: self.path.to_path_buf(),
            source: Box::new(source),
        })?;
        let mut view = write(&self.view);
        view.open = Arc::new(Batch::default());
        view.committing = None;
        view.snapshot = Arc::new(snapshot);
        drop(view);
        self.size_bytes
            .store(file_size(&self.path), Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes a frozen batch in one durable transaction; returns the bytes in use after it if
    /// they were due for a recount (see [`SIZE_IN_USE_REFRESH`]).
    fn write_batch(&self, batch: &Batch) -> Result<Option<u64>, BackendError> {
        let storage = |operation| {
            move |source: redb::Error| BackendError::Storage {
                operation,
                path: self.path.to_path_buf(),
                source: Box::new(source),
            }
        };
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| storage("begin write transaction")(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| storage("set durability")(e.into()))?;
        // Each commit also saves redb's allocator state (and commits in two phases), so opening
        // after a crash skips redb's full repair: a walk of the whole file that took 2.5 s and
        // 80 MB with 1M keys. Commits are batched off the apply thread; the cost lands there.
        txn.set_quick_repair(true);
        batch.for_each_bucket(|bucket, changes| {
            let mut table = txn
                .open_table(bucket.table())
                .map_err(|e| storage("open table")(e.into()))?;
            for (key, change) in changes {
                match change {
                    Some(value) => table
                        .insert(key.as_ref(), value.as_ref())
                        .map(drop)
                        .map_err(|e| storage("insert")(e.into()))?,
                    None => table
                        .remove(key.as_ref())
                        .map(drop)
                        .map_err(|e| storage("remove")(e.into()))?,
                }
            }
            Ok(())
        })?;
        let in_use = {
            let mut counted = lock(&self.size_in_use_counted);
            if counted.elapsed() >= self.options.size_in_use_refresh {
                *counted = Instant::now();
                Some(size_in_use(&txn).map_err(storage("read statistics"))?)
            } else {
                None
            }
        };
        txn.commit().map_err(|e| storage("commit")(e.into()))?;
        Ok(in_use)
    }

    fn run_committer(&self) {
        loop {
            // Orders are checked before waiting: one given while this thread was committing
            // (or not yet waiting) is not lost.
            let mut orders = lock(&self.committer_orders);
            if !orders.stop && !orders.commit {
                orders = self
                    .committer_wake
                    .wait_timeout(orders, self.options.batch_interval)
                    .unwrap_or_else(|poison| poison.into_inner())
                    .0;
            }
            if orders.stop {
                return;
            }
            orders.commit = false;
            drop(orders);
            // A failure poisons the backend and is logged by commit(); writers see it.
            let _ = self.commit();
        }
    }

    /// Asks the committer thread to commit now.
    fn wake_committer(&self) {
        lock(&self.committer_orders).commit = true;
        self.committer_wake.notify_one();
    }
}

/// The writer of the open batch. Only one exists at a time; readers see each change as soon as
/// it is made. Call [`BatchTx::end`] when done: it commits if the batch is full.
#[must_use = "end() the batch so that a full batch gets committed"]
pub struct BatchTx<'a> {
    shared: &'a Shared,
    writer: Option<MutexGuard<'a, WriterState>>,
    open: Arc<Batch>,
}

impl BatchTx<'_> {
    /// Sets `key` to `value` in `bucket`.
    pub fn put(&mut self, bucket: Bucket, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.record(bucket, key.into(), Some(value.into()));
    }

    /// Removes `key` from `bucket` (a no-op if absent).
    pub fn delete(&mut self, bucket: Bucket, key: impl Into<Bytes>) {
        self.record(bucket, key.into(), None);
    }

    /// Records the raft position the batch's contents correspond to; committed atomically with
    /// them.
    pub fn set_consistent_index(&mut self, consistent_index: ConsistentIndex) {
        self.put(
            Bucket::Meta,
            Bytes::from_static(META_CONSISTENT_INDEX),
            Bytes::copy_from_slice(&consistent_index.index.to_be_bytes()),
        );
        self.put(
            Bucket::Meta,
            Bytes::from_static(META_TERM),
            Bytes::copy_from_slice(&consistent_index.term.to_be_bytes()),
        );
    }

    /// Releases the writer. A batch that reached the batch limit is handed to the committer
    /// thread, so the writer (the apply loop) does not wait for redb; only if the batch grew to
    /// several times the limit (the committer is far behind) does the writer commit itself.
    pub fn end(mut self) -> Result<(), BackendError> {
        let pending = match self.writer.take() {
            Some(writer) => writer.pending_changes,
            None => return Ok(()),
        };
        let limit = self.shared.options.batch_limit;
        if pending >= limit.saturating_mul(PENDING_CHANGES_MAX_FACTOR) {
            self.shared.commit()
        } else {
            if pending >= limit {
                self.shared.wake_committer();
            }
            Ok(())
        }
    }

    fn record(&mut self, bucket: Bucket, key: Bytes, change: Change) {
        let new_key = self.open.set(bucket, key, change);
        if let Some(writer) = self.writer.as_mut()
            && new_key
        {
            writer.pending_changes += 1;
        }
    }
}

/// A consistent read view: the open batch over the batch being committed over the last commit.
/// Holding it pins a redb snapshot; keep it short-lived.
#[derive(Clone)]
pub struct ReadTx {
    view: View,
    path: Arc<Path>,
}

impl ReadTx {
    /// The value of `key` in `bucket`.
    pub fn get(&self, bucket: Bucket, key: &[u8]) -> Result<Option<Bytes>, BackendError> {
        for batch in self.batches() {
            if let Some(change) = batch.get(bucket, key) {
                return Ok(change);
            }
        }
        let table = &self.view.snapshot.tables[bucket.position()];
        let value = table.get(key).map_err(|e| self.error("get", e.into()))?;
        Ok(value.map(|value| Bytes::copy_from_slice(value.value())))
    }

    /// Entries of `bucket` as of the last commit (the open batch not counted): a size hint.
    pub fn committed_len(&self, bucket: Bucket) -> Result<u64, BackendError> {
        self.view.snapshot.tables[bucket.position()]
            .len()
            .map_err(|e| self.error("count entries", e.into()))
    }

    /// Visits every key-value with `start <= key < end` (`end` `None`: no upper bound), in key
    /// order, until `visit` breaks.
    pub fn for_each(
        &self,
        bucket: Bucket,
        start: &[u8],
        end: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), BackendError> {
        if end.is_some_and(|end| end <= start) {
            return Ok(());
        }
        // The batches' changes in range, the newer batch winning.
        let mut overlay: BTreeMap<Bytes, Change> = BTreeMap::new();
        for batch in self.batches().rev() {
            overlay.extend(batch.changes_in(bucket, start, end));
        }
        let mut overlay = overlay.into_iter().peekable();
        let table = &self.view.snapshot.tables[bucket.position()];
        let committed = match end {
            Some(end) => table.range::<&[u8]>(start..end),
            None => table.range::<&[u8]>(start..),
        }
        .map_err(|e| self.error("range", e.into()))?;
        for item in committed {
            let (key, value) = item.map_err(|e| self.error("range", e.into()))?;
            let key = key.value();
            // Changes to keys before this one come first.
            while let Some((changed, change)) =
                overlay.next_if(|(changed, _)| changed.as_ref() < key)
            {
                if let Some(value) = change
                    && visit(&changed, &value).is_break()
                {
                    return Ok(());
                }
            }
            // A change to this very key replaces the committed value.
            let flow = match overlay.next_if(|(changed, _)| changed.as_ref() == key) {
                Some((_, Some(changed_value))) => visit(key, &changed_value),
                Some((_, None)) => ControlFlow::Continue(()),
                None => visit(key, value.value()),
            };
            if flow.is_break() {
                return Ok(());
            }
        }
        for (changed, change) in overlay {
            if let Some(value) = change
                && visit(&changed, &value).is_break()
            {
                break;
            }
        }
        Ok(())
    }

    /// The consistent index in this view.
    pub fn consistent_index(&self) -> Result<ConsistentIndex, BackendError> {
        let read_u64 = |key: &'static [u8], name: &'static str| -> Result<u64, BackendError> {
            match self.get(Bucket::Meta, key)? {
                None => Ok(0),
                Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| BackendError::CorruptMeta {
                        key: name,
                        path: self.path.to_path_buf(),
                    }),
            }
        };
        Ok(ConsistentIndex {
            index: read_u64(META_CONSISTENT_INDEX, "consistent_index")?,
            term: read_u64(META_TERM, "term")?,
        })
    }

    /// The batches of this view, newest first.
    fn batches(&self) -> impl DoubleEndedIterator<Item = &Batch> {
        std::iter::once(self.view.open.as_ref()).chain(self.view.committing.as_deref())
    }

    fn error(&self, operation: &'static str, source: redb::Error) -> BackendError {
        BackendError::Storage {
            operation,
            path: self.path.to_path_buf(),
            source: Box::new(source),
        }
    }
}

impl Snapshot {
    fn open(db: &Database) -> Result<Snapshot, redb::Error> {
        let txn = db.begin_read()?;
        let tables = Bucket::ALL
            .iter()
            .map(|bucket| txn.open_table(bucket.table()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot { tables })
    }
}

fn size_in_use(txn: &redb::WriteTransaction) -> Result<u64, redb::Error> {
    let stats = txn.stats()?;
    Ok(stats.allocated_pages() * stats.page_size() as u64)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Locks a mutex; a panic elsewhere while holding it does not make the data unusable here (the
/// protected state is always left consistent between statements).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poison| poison.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poison| poison.into_inner())
}

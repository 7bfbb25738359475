//! Linearizable reads, batched: etcd's `linearizableReadLoop`.
//!
//! A read joins the current batch and wakes the read loop. The loop swaps in a fresh batch,
//! asks raft for one read index for the whole swapped batch (the leader confirms its
//! leadership with a heartbeat round; a follower asks the leader), waits until the member has
//! applied up to that index, and releases every read of the batch. Since the read index is
//! requested after every read of the batch arrived, each read sees every write acknowledged
//! before it started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::EtcdError;
use crate::server::{DriverInput, Shared};

/// How long to wait for raft's answer before asking again (raft-rs drops a read index
/// request that finds no leader; etcd retries as often).
const READ_INDEX_RETRY: Duration = Duration::from_millis(500);

type Outcome = Option<Result<(), EtcdError>>;

/// The reads waiting for the next read index round.
pub(crate) struct ReadIndexer {
    current: Mutex<Arc<watch::Sender<Outcome>>>,
    wake: Notify,
    /// Linearizable reads that waited, and read index rounds run for them.
    reads: AtomicU64,
    rounds: AtomicU64,
}

impl Default for ReadIndexer {
    fn default() -> Self {
        ReadIndexer {
            current: Mutex::new(Arc::new(watch::Sender::new(None))),
            wake: Notify::new(),
            reads: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
        }
    }
}

impl ReadIndexer {
    /// Waits for a read index round that started after this call, and for the member to
    /// apply up to its index.
    pub(crate) async fn wait(&self) -> Result<(), EtcdError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let mut done = self
            .current
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .subscribe();
        self.wake.notify_one();
        match done.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Err(EtcdError::Stopped)),
            Err(_) => Err(EtcdError::Stopped),
        }
    }

    /// Linearizable reads so far, and the read index rounds that served them.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.rounds.load(Ordering::Relaxed),
        )
    }

    fn take_batch(&self) -> Arc<watch::Sender<Outcome>> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        std::mem::replace(&mut *current, Arc::new(watch::Sender::new(None)))
    }
}

/// The read loop: one read index round per batch of waiting reads.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        shared.read_indexer.wake.notified().await;
        let batch = shared.read_indexer.take_batch();
        if batch.receiver_count() == 0 {
            continue; // everyone gave up already
        }
        shared.read_indexer.rounds.fetch_add(1, Ordering::Relaxed);
        let outcome = round(&shared).await;
        let stopped = matches!(outcome, Err(EtcdError::Stopped));
        batch.send_replace(Some(outcome));
        if stopped {
            // Answer whoever joined since, and stop.
            shared
                .read_indexer
                .take_batch()
                .send_replace(Some(Err(EtcdError::Stopped)));
            return;
        }
    }
}

async fn round(shared: &Shared) -> Result<(), EtcdError> {
    if shared.stopped.load(Ordering::SeqCst) {
        return Err(EtcdError::Stopped);
    }
    let deadline = tokio::time::Instant::now() + shared.request_timeout;
    let context = shared.ids.next();
    let mut answer = shared.read_states.register(context);
    let index = loop {
        if shared
            .driver
            .send(DriverInput::ReadIndex { context })
            .await
            .is_err()
        {
            shared.read_states.cancel(context);
            return Err(EtcdError::Stopped);
        }
        let retry = (tokio::time::Instant::now() + READ_INDEX_RETRY).min(deadline);
        match tokio::time::timeout_at(retry, &mut answer).await {
            Ok(Ok(index)) => break index,
            Ok(Err(_)) => return Err(EtcdError::Stopped),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                shared.read_states.cancel(context);
                return Err(EtcdError::Timeout);
            }
            Err(_) => continue,
        }
    };
    shared
        .wait_applied(index, deadline, EtcdError::Timeout)
        .await
}

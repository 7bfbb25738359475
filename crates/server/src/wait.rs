//! Requests waiting for an answer from another thread, by ID: a proposal waits for its entry
//! to be applied, a read for its read index. etcd's `wait.Wait`.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

pub(crate) struct Waiters<T> {
    waiting: Mutex<HashMap<u64, oneshot::Sender<T>>>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Waiters<T> {
    /// Registers `id`; the receiver gets what [`Waiters::trigger`] sends for it.
    pub(crate) fn register(&self, id: u64) -> oneshot::Receiver<T> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(id, sender);
        receiver
    }

    /// Answers `id`, if anyone still waits for it. Never blocks.
    pub(crate) fn trigger(&self, id: u64, value: T) {
        if let Some(sender) = self.lock().remove(&id) {
            // The waiter may have given up (timed out): nothing to do then.
            let _ = sender.send(value);
        }
    }

    /// Forgets `id` (its waiter gave up).
    pub(crate) fn cancel(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Answers everyone still waiting (at shutdown).
    pub(crate) fn trigger_all(&self, mut value: impl FnMut() -> T) {
        for (_, sender) in self.lock().drain() {
            let _ = sender.send(value());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<T>>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

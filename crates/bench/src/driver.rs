//! Runs a fixed number of requests over concurrent clients and times them.
//!
//! Owns the measuring loop every request/response workload shares: one
//! tokio task per client, each taking the next request index from a shared
//! counter until `total` are taken (so fast clients do more, as with etcd's
//! shared request channel, without a channel), waiting for the rate limit,
//! timing the request, and recording into its own [`Recorder`]; recorders
//! are merged once all tasks end.
//!
//! Does not own: what a request is (a [`Worker`] says), connections.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::BenchError;
use crate::limiter::RateLimiter;
use crate::progress::Progress;
use crate::report::{Recorder, Report};

/// A request's result: `Err` carries the message it is counted under.
pub type Outcome = Result<(), String>;

/// One client: makes request `index` when asked.
pub trait Worker: Send + 'static {
    /// Number of request classes this worker reports separately (e.g. reads
    /// and writes); each gets its own report.
    const CLASSES: usize = 1;

    /// The class of request `index`, below [`Worker::CLASSES`].
    fn class(&self, _index: u64) -> usize {
        0
    }

    /// Makes request `index` and waits for its response.
    fn request(&mut self, index: u64) -> impl Future<Output = Outcome> + Send;
}

/// Runs requests `0..total` over `workers` and returns one report per class.
pub async fn run<W: Worker>(
    workers: Vec<W>,
    total: u64,
    limiter: Option<Arc<RateLimiter>>,
    progress: Arc<Progress>,
) -> Result<Vec<Report>, BenchError> {
    let next_index = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(workers.len());
    for mut worker in workers {
        let next_index = Arc::clone(&next_index);
        let limiter = limiter.clone();
        let progress = Arc::clone(&progress);
        tasks.push(tokio::spawn(async move {
            let mut recorders: Vec<Recorder> = (0..W::CLASSES).map(|_| Recorder::new()).collect();
            loop {
                let index = next_index.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                if let Some(limiter) = &limiter {
                    limiter.wait().await;
                }
                let class = worker.class(index);
                debug_assert!(class < W::CLASSES);
                let sent = Instant::now();
                let outcome = worker.request(index).await;
                let recorder = &mut recorders[class];
                match outcome {
                    Ok(()) => recorder.record(sent.elapsed()),
                    Err(message) => recorder.record_error(message),
                }
                progress.add(1);
            }
            recorders
        }));
    }
    let mut merged: Vec<Recorder> = (0..W::CLASSES).map(|_| Recorder::new()).collect();
    for task in tasks {
        for (into, from) in merged.iter_mut().zip(task.await?) {
            into.merge(&from);
        }
    }
    let elapsed = started.elapsed();
    Ok(merged
        .into_iter()
        .map(|recorder| Report::new(recorder, elapsed))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use std::time::Duration;

    struct Echo {
        seen: Arc<Mutex<BTreeSet<u64>>>,
    }

    impl Worker for Echo {
        const CLASSES: usize = 2;

        fn class(&self, index: u64) -> usize {
            (index % 2) as usize
        }

        async fn request(&mut self, index: u64) -> Outcome {
            tokio::time::sleep(Duration::from_micros(50)).await;
            assert!(self.seen.lock().unwrap().insert(index), "{index} twice");
            if index % 10 == 9 {
                return Err("nine".into());
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_index_runs_once_and_lands_in_its_class() {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let workers: Vec<Echo> = (0..7)
            .map(|_| Echo {
                seen: Arc::clone(&seen),
            })
            .collect();
        let progress = Progress::new(100);
        let reports = run(workers, 100, None, Arc::clone(&progress))
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 100);
        assert_eq!(progress.done(), 100);
        assert_eq!(reports.len(), 2);
        // Evens: 50 ok. Odds: 40 ok, 10 ending in 9 failed.
        assert_eq!(reports[0].recorder.successes(), 50);
        assert_eq!(reports[0].recorder.failures(), 0);
        assert_eq!(reports[1].recorder.successes(), 40);
        assert_eq!(reports[1].recorder.failures(), 10);
        assert!(reports[0].percentile_ms(50.0) > 0.0);
    }

    #[tokio::test]
    async fn the_rate_limit_paces_all_clients_together() {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let workers: Vec<Echo> = (0..4)
            .map(|_| Echo {
                seen: Arc::clone(&seen),
            })
            .collect();
        let started = Instant::now();
        run(workers, 11, RateLimiter::new(50), Progress::new(11))
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "11 at 50/s took {took:?}"
        );
    }
}

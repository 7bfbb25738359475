//! Counting finished work, and the progress line on a terminal.
//!
//! Owns [`Progress`] (an atomic done counter the client tasks bump) and
//! [`ProgressBar`], which redraws the line every [`REDRAW_INTERVAL`] from a
//! background task while stderr is a terminal, and draws nothing otherwise.
//! The counter also serves the stall watchdog of the watch workloads.
//!
//! Does not own: writing (see `output`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::output;

/// How often the progress line is redrawn.
const REDRAW_INTERVAL: Duration = Duration::from_millis(200);

/// Work done out of a known total.
#[derive(Debug)]
pub struct Progress {
    done: AtomicU64,
    total: u64,
}

impl Progress {
    pub fn new(total: u64) -> Arc<Progress> {
        Arc::new(Progress {
            done: AtomicU64::new(0),
            total,
        })
    }

    pub fn add(&self, count: u64) {
        self.done.fetch_add(count, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// A progress line on stderr, drawn only when stderr is a terminal.
pub struct ProgressBar {
    label: &'static str,
    progress: Arc<Progress>,
    started: Instant,
    redraw: Option<JoinHandle<()>>,
}

impl ProgressBar {
    /// Starts counting (and drawing, on a terminal). Call inside the runtime.
    pub fn start(label: &'static str, total: u64) -> ProgressBar {
        let progress = Progress::new(total);
        let started = Instant::now();
        let redraw = output::stderr_is_terminal().then(|| {
            let progress = Arc::clone(&progress);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(REDRAW_INTERVAL);
                loop {
                    ticks.tick().await;
                    output::progress(label, progress.done(), progress.total(), started.elapsed());
                }
            })
        });
        ProgressBar {
            label,
            progress,
            started,
            redraw,
        }
    }

    /// The counter client tasks bump.
    pub fn counter(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// Stops redrawing, leaving the final count on its own line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(redraw) = self.redraw.take() {
            redraw.abort();
            output::progress(
                self.label,
                self.progress.done(),
                self.progress.total(),
                self.started.elapsed(),
            );
            output::progress_end();
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Resolves when `progress` has not moved for `idle` (checked every `idle`
/// / 10): the watchdog a phase races against when it waits on the server.
pub async fn stalled(progress: &Progress, idle: Duration) {
    let check = (idle / 10).max(Duration::from_millis(1));
    let mut last = progress.done();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(check).await;
        let done = progress.done();
        if done != last {
            last = done;
            since = Instant::now();
        } else if since.elapsed() >= idle {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_counter_adds_up_and_no_bar_is_drawn_off_a_terminal() {
        let bar = ProgressBar::start("test", 10);
        let counter = bar.counter();
        counter.add(3);
        counter.add(4);
        assert_eq!(counter.done(), 7);
        assert_eq!(counter.total(), 10);
        bar.finish();
    }

    #[tokio::test]
    async fn the_watchdog_fires_only_when_nothing_moves() {
        let progress = Progress::new(100);
        let mover = {
            let progress = Arc::clone(&progress);
            tokio::spawn(async move {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    progress.add(1);
                }
            })
        };
        let started = Instant::now();
        stalled(&progress, Duration::from_millis(50)).await;
        let waited = started.elapsed();
        assert!(mover.is_finished());
        assert_eq!(progress.done(), 10);
        assert!(
            waited >= Duration::from_millis(140),
            "fired after {waited:?}"
        );
    }
}

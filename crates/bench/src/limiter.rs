//! The `--rate` limit shared by all clients of a run.
//!
//! Owns [`RateLimiter`]: a token bucket of depth one, like the
//! `rate.NewLimiter(rate, 1)` etcd's tool uses. Each request reserves the
//! next free send slot, `1/rate` after the previous one; a client whose slot
//! lies in the future sleeps until it. Reservation is one atomic update, so
//! the limiter adds no lock to the hot path; the arithmetic is the pure
//! function [`reserve`], tested on its own.
//!
//! Does not own: what is sent, or measuring it (the clock for latencies
//! starts after the wait, as in etcd's tool).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds between two sends at `rate_per_second`; `None` when the rate
/// is 0 (unlimited).
pub fn interval_ns(rate_per_second: u64) -> Option<u64> {
    if rate_per_second == 0 {
        return None;
    }
    Some((1_000_000_000 / rate_per_second).max(1))
}

/// Reserves a send slot: given the earliest free slot `next_ns` and the time
/// `now_ns` (both on the limiter's clock), returns when this send may go and
/// the new earliest free slot. Unused slots do not accumulate: after an idle
/// spell a send goes at once, and the next one an interval later (a burst of
/// one).
pub fn reserve(next_ns: u64, now_ns: u64, interval_ns: u64) -> (u64, u64) {
    let send_ns = next_ns.max(now_ns);
    (send_ns, send_ns.saturating_add(interval_ns))
}

/// Spaces requests of all clients at least `1/rate` apart on average.
#[derive(Debug)]
pub struct RateLimiter {
    origin: Instant,
    interval_ns: u64,
    /// The earliest free send slot, in nanoseconds since `origin`.
    next_ns: AtomicU64,
}

impl RateLimiter {
    /// A limiter for `rate_per_second`, or `None` for no limit.
    pub fn new(rate_per_second: u64) -> Option<Arc<RateLimiter>> {
        let interval_ns = interval_ns(rate_per_second)?;
        Some(Arc::new(RateLimiter {
            origin: Instant::now(),
            interval_ns,
            next_ns: AtomicU64::new(0),
        }))
    }

    /// Waits for this caller's send slot.
    pub async fn wait(&self) {
        let now_ns = self.origin.elapsed().as_nanos() as u64;
        let mut send_ns = now_ns;
        // The closure always returns Some, so the update always succeeds
        // (the Result only says so); `send_ns` is the slot of the winning try.
        let _ = self
            .next_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next_ns| {
                let (send, next) = reserve(next_ns, now_ns, self.interval_ns);
                send_ns = send;
                Some(next)
            });
        debug_assert!(send_ns >= now_ns);
        if send_ns > now_ns {
            let at = self.origin + Duration::from_nanos(send_ns);
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rate_means_no_limit() {
        assert_eq!(interval_ns(0), None);
        assert!(RateLimiter::new(0).is_none());
    }

    #[test]
    fn interval_is_the_inverse_of_the_rate() {
        assert_eq!(interval_ns(1), Some(1_000_000_000));
        assert_eq!(interval_ns(100), Some(10_000_000));
        assert_eq!(interval_ns(3), Some(333_333_333));
        // Rates above 1e9/s still move the clock forward.
        assert_eq!(interval_ns(u64::MAX), Some(1));
    }

    #[test]
    fn back_to_back_requests_are_spaced_by_the_interval() {
        let interval = interval_ns(100).unwrap();
        let mut next = 0;
        let mut sends = Vec::new();
        for _ in 0..5 {
            let (send, new_next) = reserve(next, 0, interval);
            sends.push(send);
            next = new_next;
        }
        assert_eq!(sends, [0, 10, 20, 30, 40].map(|ms| ms * 1_000_000));
    }

    #[test]
    fn idle_time_does_not_build_a_burst() {
        let interval = 10;
        let (_, next) = reserve(0, 0, interval);
        // Long idle: the send goes now, and the next slot is one interval on.
        let (send, next) = reserve(next, 1_000, interval);
        assert_eq!((send, next), (1_000, 1_010));
        let (send, _) = reserve(next, 1_001, interval);
        assert_eq!(send, 1_010);
    }

    #[test]
    fn a_thousand_requests_at_a_thousand_per_second_take_a_second() {
        let interval = interval_ns(1000).unwrap();
        let mut next = 0;
        let mut last = 0;
        for _ in 0..1001 {
            let (send, new_next) = reserve(next, 0, interval);
            last = send;
            next = new_next;
        }
        assert_eq!(last, 1_000_000_000);
    }

    #[tokio::test]
    async fn the_limiter_sleeps_until_the_slot() {
        let limiter = RateLimiter::new(100).unwrap();
        let start = Instant::now();
        for _ in 0..21 {
            limiter.wait().await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_millis(400),
            "21 sends at 100/s should take about 200 ms, took {waited:?}"
        );
    }
}

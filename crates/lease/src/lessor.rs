//! The lessor: leases in memory, with the leader's expiry queue and checkpoint schedule.
//!
//! Every member holds every lease (granted and revoked by applied raft entries). Only the
//! primary (the leader's lessor) gives leases an expiry: on a follower a lease lasts forever
//! until a revoke is applied. On promotion every lease gets its remaining TTL anew, plus the
//! extension the caller gives (one election timeout in etcd), so a leader change never
//! expires a lease its owner kept alive.
//!
//! Expiry queue: a min-heap of (check time, lease). Renewals push a new entry rather than
//! updating the old one; an entry is current only while it matches the lease's `next_check`,
//! so stale entries are dropped when they surface. A lease found expired is reported once and
//! checked again after [`REVOKE_RETRY_INTERVAL`], in case its revoke proposal was lost.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stead_proto::etcdserverpb::LeaseCheckpoint;
use tracing::warn;

use crate::record::LeaseRecord;

/// The largest TTL a lease may be granted, seconds (etcd's `MaxLeaseTTL`).
pub const MAX_LEASE_TTL_S: i64 = 9_000_000_000;
/// Expired leases revoked per second at most (etcd's `leaseRevokeRate`): a mass expiry is
/// spread out rather than flooding raft, so other proposals keep their latency.
pub const REVOKES_PER_SECOND: usize = 1_000;
/// How often the leader looks for expired leases and due checkpoints (etcd's run loop).
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// After a lease was reported expired, when to report it again if it still exists (etcd's
/// `expiredLeaseRetryInterval`).
pub const REVOKE_RETRY_INTERVAL: Duration = Duration::from_secs(3);
/// Checkpoints carried by one proposal at most (etcd's `maxLeaseCheckpointBatchSize`).
const CHECKPOINTS_PER_PROPOSAL_MAX: usize = 1_000;
/// A TTL that no clock reaches: what a lease's remaining time reads on a follower.
const FOREVER_S: i64 = i64::MAX / 1_000_000_000;

/// The smallest TTL granted, seconds: one and a half election timeouts, rounded up (etcd:
/// a lease must outlive a leader election, or a failover could expire it).
pub fn min_lease_ttl_s(heartbeat: Duration, election_ticks: u64) -> i64 {
    let min = heartbeat.saturating_mul(u32::try_from(3 * election_ticks / 2).unwrap_or(u32::MAX));
    i64::try_from(min.as_millis().div_ceil(1_000)).unwrap_or(i64::MAX)
}

/// A lease operation refused. The texts are etcd's (clients match on them); `NotPrimary`
/// and `Expired` are internal answers the server turns into a wait or a forward.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("etcdserver: requested lease not found")]
    NotFound,
    #[error("etcdserver: lease already exists")]
    Exists,
    #[error("etcdserver: too large lease TTL")]
    TtlTooLarge,
    /// This lessor is not the leader's: renewals and lookups belong to the leader.
    #[error("lessor is not primary")]
    NotPrimary,
    /// The lease expired and its revoke is on its way: a renewal cannot save it.
    #[error("lease expired")]
    Expired,
}

/// Remaining-TTL checkpoints (`--experimental-enable-lease-checkpoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpointing {
    /// How often the leader checkpoints a long lease (etcd's 5 minutes).
    pub interval: Duration,
    /// Whether applied checkpoints are written to the lease table, so a restart resumes the
    /// remaining TTL (`--experimental-enable-lease-checkpoint-persist`).
    pub persist: bool,
}

/// How the lessor behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LessorConfig {
    /// The smallest TTL granted, seconds (see [`min_lease_ttl_s`]).
    pub min_ttl_s: i64,
    pub checkpointing: Option<Checkpointing>,
}

/// A renewal's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renewed {
    /// The lease's granted TTL, seconds: its new time to live.
    pub ttl: i64,
    /// The lease had a checkpointed remaining TTL, cleared here: the caller proposes a
    /// checkpoint of 0 so every member (and the lease table) forgets it too.
    pub clear_checkpoint: bool,
}

/// What LeaseTimeToLive reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub granted_ttl: i64,
    /// Whole seconds left, truncated (as etcd); negative once past expiry.
    pub remaining_s: i64,
    /// Attached keys, sorted; empty unless asked for.
    pub keys: Vec<Bytes>,
}

struct Lease {
    /// Granted TTL, seconds (at least the minimum).
    ttl: i64,
    /// Checkpointed remaining TTL, seconds; 0 = none.
    remaining_ttl: i64,
    /// When it expires; `None` (forever) unless this lessor is primary.
    expiry: Option<Instant>,
    /// The current expiry-queue entry's time.
    next_check: Option<Instant>,
    keys: HashSet<Bytes>,
}

impl Lease {
    /// The TTL a refresh starts from: the checkpointed remaining TTL if any.
    fn effective_ttl(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }

    fn record(&self, id: i64) -> LeaseRecord {
        LeaseRecord {
            id,
            ttl: self.ttl,
            remaining_ttl: self.remaining_ttl,
        }
    }
}

#[derive(Default)]
struct State {
    leases: HashMap<i64, Lease>,
    key_leases: HashMap<Bytes, i64>,
    primary: bool,
    expiry_queue: DueQueue,
    checkpoint_queue: DueQueue,
}

impl State {
    /// The leases of the lease table, none attached to keys, not primary.
    fn from_records(
        config: &LessorConfig,
        records: impl IntoIterator<Item = LeaseRecord>,
    ) -> State {
        let mut state = State::default();
        for record in records {
            state.leases.insert(
                record.id,
                Lease {
                    ttl: record.ttl.max(config.min_ttl_s),
                    remaining_ttl: record.remaining_ttl,
                    expiry: None,
                    next_check: None,
                    keys: HashSet::new(),
                },
            );
        }
        state
    }
}

/// The lessor. Shared by the apply thread (grants, revokes, checkpoints, attaching keys), the
/// gRPC tasks (renewals, lookups) and the leader's expiry task; one lock, held briefly.
pub struct Lessor {
    config: LessorConfig,
    state: Mutex<State>,
    /// Keys attached to any lease, readable without the lock: a store with no leased keys
    /// (the common case) answers [`stead_mvcc::Lessor::lease_of`] without taking it.
    attached_keys: AtomicUsize,
}

/// `now + seconds`, saturating far in the future.
fn after(now: Instant, seconds: i64) -> Instant {
    let seconds = u64::try_from(seconds.max(0)).unwrap_or(0);
    now.checked_add(Duration::from_secs(seconds))
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

impl Lessor {
    /// A lessor holding the leases of the lease table (not primary: no lease expires until
    /// [`Lessor::promote`]). Keys are attached afterwards, as the store recovers them.
    pub fn new(config: LessorConfig, records: impl IntoIterator<Item = LeaseRecord>) -> Lessor {
        let state = State::from_records(&config, records);
        Lessor {
            config,
            state: Mutex::new(state),
            attached_keys: AtomicUsize::new(0),
        }
    }

    /// Replaces every lease with those of `records` (a leader's snapshot was installed), not
    /// primary, no keys attached: the store attaches them as it reloads.
    pub fn reset(&self, records: impl IntoIterator<Item = LeaseRecord>) {
        *self.state() = State::from_records(&self.config, records);
        self.attached_keys.store(0, Ordering::SeqCst);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind, still usable.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Grants lease `id` (an applied LeaseGrant). Returns the record to persist.
    pub fn grant(&self, id: i64, ttl: i64, now: Instant) -> Result<LeaseRecord, LeaseError> {
        if id == 0 {
            return Err(LeaseError::NotFound);
        }
        if ttl > MAX_LEASE_TTL_S {
            return Err(LeaseError::TtlTooLarge);
        }
        let mut state = self.state();
        if state.leases.contains_key(&id) {
            return Err(LeaseError::Exists);
        }
        let mut lease = Lease {
            ttl: ttl.max(self.config.min_ttl_s),
            remaining_ttl: 0,
            expiry: None,
            next_check: None,
            keys: HashSet::new(),
        };
        let record = lease.record(id);
        if state.primary {
            let expiry = after(now, lease.ttl);
            lease.expiry = Some(expiry);
            lease.next_check = Some(expiry);
            state.expiry_queue.push(Reverse((expiry, id)));
            self.schedule_checkpoint(&mut state, id, lease.ttl, now);
        }
        state.leases.insert(id, lease);
        Ok(record)
    }

    /// The keys attached to lease `id`, sorted (the order every member deletes them in), for
    /// an applied revoke; then [`Lessor::remove`].
    pub fn keys_to_revoke(&self, id: i64) -> Result<Vec<Bytes>, LeaseError> {
        let state = self.state();
        let lease = state.leases.get(&id).ok_or(LeaseError::NotFound)?;
        let mut keys: Vec<Bytes> = lease.keys.iter().cloned().collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Forgets lease `id` once its keys were deleted (the end of an applied revoke).
    pub fn remove(&self, id: i64) {
        let mut state = self.state();
        if let Some(lease) = state.leases.remove(&id) {
            for key in &lease.keys {
                state.key_leases.remove(key);
            }
            self.attached_keys
                .store(state.key_leases.len(), Ordering::Relaxed);
        }
    }

    /// Records a checkpointed remaining TTL (an applied LeaseCheckpoint). Returns the record
    /// to persist when checkpoints persist.
    pub fn checkpoint(&self, id: i64, remaining_ttl: i64, now: Instant) -> Option<LeaseRecord> {
        let mut state = self.state();
        let lease = state.leases.get_mut(&id)?;
        lease.remaining_ttl = remaining_ttl;
        let record = lease.record(id);
        let effective_ttl = lease.effective_ttl();
        if state.primary {
            self.schedule_checkpoint(&mut state, id, effective_ttl, now);
        }
        self.config
            .checkpointing
            .is_some_and(|c| c.persist)
            .then_some(record)
    }

    /// Renews lease `id` (a keep-alive, on the leader).
    pub fn renew(&self, id: i64, now: Instant) -> Result<Renewed, LeaseError> {
        let mut state = self.state();
        if !state.primary {
            return Err(LeaseError::NotPrimary);
        }
        let lease = state.leases.get_mut(&id).ok_or(LeaseError::NotFound)?;
        if lease.expiry.is_some_and(|expiry| expiry <= now) {
            return Err(LeaseError::Expired);
        }
        let clear_checkpoint = self.config.checkpointing.is_some() && lease.remaining_ttl > 0;
        lease.remaining_ttl = 0;
        let ttl = lease.ttl;
        let expiry = after(now, ttl);
        lease.expiry = Some(expiry);
        lease.next_check = Some(expiry);
        state.expiry_queue.push(Reverse((expiry, id)));
        Ok(Renewed {
            ttl,
            clear_checkpoint,
        })
    }

    /// Lease `id` as LeaseTimeToLive reports it, `None` if it does not exist. Only the
    /// primary knows expiries: elsewhere `NotPrimary`.
    pub fn lookup(
        &self,
        id: i64,
        now: Instant,
        with_keys: bool,
    ) -> Result<Option<LeaseInfo>, LeaseError> {
        let state = self.state();
        if !state.primary {
            return Err(LeaseError::NotPrimary);
        }
        let Some(lease) = state.leases.get(&id) else {
            return Ok(None);
        };
        let remaining_s = match lease.expiry {
            // Every lease of a primary has an expiry.
            None => FOREVER_S,
            Some(expiry) if expiry >= now => {
                i64::try_from(expiry.duration_since(now).as_secs()).unwrap_or(FOREVER_S)
            }
            // Past expiry: truncated toward zero, as Go's int64(d.Seconds()).
            Some(expiry) => -i64::try_from(now.duration_since(expiry).as_secs()).unwrap_or(0),
        };
        let mut keys: Vec<Bytes> = if with_keys {
            lease.keys.iter().cloned().collect()
        } else {
            Vec::new()
        };
        keys.sort_unstable();
        Ok(Some(LeaseInfo {
            granted_ttl: lease.ttl,
            remaining_s,
            keys,
        }))
    }

    /// Every lease ID, soonest expiry first (etcd's order; ties by ID).
    pub fn leases(&self) -> Vec<i64> {
        let state = self.state();
        let mut leases: Vec<(Option<Instant>, i64)> = state
            .leases
            .iter()
            .map(|(&id, lease)| (lease.expiry, id))
            .collect();
        // `None` (forever) sorts last.
        leases.sort_unstable_by_key(|&(expiry, id)| (expiry.is_none(), expiry, id));
        leases.into_iter().map(|(_, id)| id).collect()
    }

    /// Makes this lessor primary (its member leads and has applied the previous terms'
    /// entries): every lease expires its remaining TTL plus `extend` from now. When many
    /// leases would expire within the same second, the later ones are pushed back so that no
    /// more than three quarters of [`REVOKES_PER_SECOND`] fall due per second (etcd's
    /// pile-up spreading).
    pub fn promote(&self, extend: Duration, now: Instant) {
        let mut state = self.state();
        let state = &mut *state;
        state.primary = true;
        state.expiry_queue.clear();
        state.checkpoint_queue.clear();
        let mut by_expiry = Vec::with_capacity(state.leases.len());
        let ids: Vec<i64> = state.leases.keys().copied().collect();
        for id in ids {
            let Some(lease) = state.leases.get_mut(&id) else {
                continue;
            };
            let effective_ttl = lease.effective_ttl();
            let expiry = after(now + extend, effective_ttl);
            lease.expiry = Some(expiry);
            lease.next_check = Some(expiry);
            by_expiry.push((expiry, id));
            self.schedule_checkpoint(state, id, effective_ttl, now);
        }
        if by_expiry.len() >= REVOKES_PER_SECOND {
            by_expiry.sort_unstable();
            spread_expiries(&mut by_expiry, now);
            for &(expiry, id) in &by_expiry {
                if let Some(lease) = state.leases.get_mut(&id) {
                    lease.expiry = Some(expiry);
                    lease.next_check = Some(expiry);
                }
            }
        }
        state
            .expiry_queue
            .extend(by_expiry.into_iter().map(Reverse));
    }

    /// Makes this lessor a follower's: leases no longer expire here.
    pub fn demote(&self) {
        let mut state = self.state();
        if !state.primary {
            return;
        }
        state.primary = false;
        for lease in state.leases.values_mut() {
            lease.expiry = None;
            lease.next_check = None;
        }
        state.expiry_queue.clear();
        state.checkpoint_queue.clear();
    }

    /// Up to `limit` leases past their expiry, to revoke (on the primary; none elsewhere).
    /// Each is reported again after [`REVOKE_RETRY_INTERVAL`] if it still exists.
    pub fn expired(&self, now: Instant, limit: usize) -> Vec<i64> {
        let mut state = self.state();
        let state = &mut *state;
        let mut expired = Vec::new();
        if !state.primary {
            return expired;
        }
        while expired.len() < limit {
            let Some((at, id)) = pop_due(&mut state.expiry_queue, now) else {
                break;
            };
            let Some(lease) = state.leases.get_mut(&id) else {
                continue;
            };
            if lease.next_check != Some(at) {
                continue;
            }
            match lease.expiry {
                Some(expiry) if expiry <= now => {
                    expired.push(id);
                    let retry = now + REVOKE_RETRY_INTERVAL;
                    lease.next_check = Some(retry);
                    state.expiry_queue.push(Reverse((retry, id)));
                }
                Some(expiry) => {
                    lease.next_check = Some(expiry);
                    state.expiry_queue.push(Reverse((expiry, id)));
                }
                None => lease.next_check = None,
            }
        }
        expired
    }

    /// The checkpoints due (on the primary with checkpointing on): each lease's remaining
    /// TTL, rounded up, for leases that have used part of their TTL. At most one proposal's
    /// worth.
    pub fn due_checkpoints(&self, now: Instant) -> Vec<LeaseCheckpoint> {
        let mut state = self.state();
        let state = &mut *state;
        let mut due = Vec::new();
        if !state.primary || self.config.checkpointing.is_none() {
            return due;
        }
        while due.len() < CHECKPOINTS_PER_PROPOSAL_MAX {
            let Some((_, id)) = pop_due(&mut state.checkpoint_queue, now) else {
                break;
            };
            let Some(lease) = state.leases.get(&id) else {
                continue;
            };
            let Some(expiry) = lease.expiry.filter(|&expiry| expiry > now) else {
                continue;
            };
            let left = expiry.duration_since(now);
            let remaining_ttl =
                i64::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0)).unwrap_or(0);
            if remaining_ttl >= lease.ttl {
                continue;
            }
            due.push(LeaseCheckpoint { id, remaining_ttl });
        }
        due
    }

    /// Schedules a checkpoint of a lease whose TTL outlasts the checkpoint interval.
    fn schedule_checkpoint(&self, state: &mut State, id: i64, effective_ttl: i64, now: Instant) {
        if let Some(checkpointing) = self.config.checkpointing
            && u64::try_from(effective_ttl).unwrap_or(0) > checkpointing.interval.as_secs()
        {
            state
                .checkpoint_queue
                .push(Reverse((now + checkpointing.interval, id)));
        }
    }
}

/// A time-ordered queue of leases: when each is next due for a look.
type DueQueue = BinaryHeap<Reverse<(Instant, i64)>>;

/// Takes the earliest entry of `queue` if it is due at `now`.
fn pop_due(queue: &mut DueQueue, now: Instant) -> Option<(Instant, i64)> {
    let &Reverse((at, _)) = queue.peek()?;
    if at > now {
        return None;
    }
    queue.pop().map(|Reverse(entry)| entry)
}

/// etcd's pile-up spreading over `(expiry, id)` sorted by expiry: within each window of one
/// second past a base expiry, leases beyond the target rate are delayed in proportion.
fn spread_expiries(by_expiry: &mut [(Instant, i64)], now: Instant) {
    let target_per_second = (3 * REVOKES_PER_SECOND / 4) as f64;
    let Some(&(first, _)) = by_expiry.first() else {
        return;
    };
    let mut base_window = first.saturating_duration_since(now).as_secs_f64();
    let mut next_window = base_window + 1.0;
    let mut expires = 0usize;
    for entry in by_expiry.iter_mut() {
        let remaining = entry.0.saturating_duration_since(now).as_secs_f64();
        if remaining > next_window {
            base_window = remaining;
            next_window = base_window + 1.0;
            expires = 1;
            continue;
        }
        expires += 1;
        if expires as f64 <= target_per_second {
            continue;
        }
        let delay = (expires as f64 / target_per_second - (remaining - base_window)).max(0.0);
        next_window = base_window + delay;
        entry.0 += Duration::from_secs_f64(delay);
    }
}

impl stead_mvcc::Lessor for Lessor {
    fn exists(&self, lease: i64) -> bool {
        self.state().leases.contains_key(&lease)
    }

    fn lease_of(&self, key: &[u8]) -> i64 {
        if self.attached_keys.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.state().key_leases.get(key).copied().unwrap_or(0)
    }

    fn attach(&self, lease: i64, key: &[u8]) {
        let mut state = self.state();
        let state = &mut *state;
        let Some(entry) = state.leases.get_mut(&lease) else {
            // Only recovery can get here (a put checks the lease first): a key whose lease
            // record is gone. etcd logs it and carries on; so do we.
            warn!(lease = %format_args!("{lease:016x}"), key = %String::from_utf8_lossy(key),
                "a key names a lease that does not exist; not attached");
            return;
        };
        let key = Bytes::copy_from_slice(key);
        entry.keys.insert(key.clone());
        state.key_leases.insert(key, lease);
        self.attached_keys
            .store(state.key_leases.len(), Ordering::Relaxed);
    }

    fn detach(&self, lease: i64, key: &[u8]) {
        let mut state = self.state();
        if let Some(entry) = state.leases.get_mut(&lease) {
            entry.keys.remove(key);
        }
        if state.key_leases.get(key) == Some(&lease) {
            state.key_leases.remove(key);
        }
        self.attached_keys
            .store(state.key_leases.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use stead_mvcc::Lessor as _;

    use super::*;

    fn lessor() -> Lessor {
        Lessor::new(
            LessorConfig {
                min_ttl_s: 2,
                checkpointing: None,
            },
            [],
        )
    }

    #[test]
    fn min_ttl_is_one_and_a_half_election_timeouts_rounded_up() {
        // etcd's defaults: 100 ms heartbeat, 10 ticks: 1.5 s -> 2 s.
        assert_eq!(min_lease_ttl_s(Duration::from_millis(100), 10), 2);
        assert_eq!(min_lease_ttl_s(Duration::from_millis(100), 20), 3);
        assert_eq!(min_lease_ttl_s(Duration::from_millis(10), 10), 1);
    }

    #[test]
    fn grant_checks_id_ttl_and_collisions() {
        let lessor = lessor();
        let now = Instant::now();
        assert_eq!(lessor.grant(0, 10, now), Err(LeaseError::NotFound));
        assert_eq!(
            lessor.grant(1, MAX_LEASE_TTL_S + 1, now),
            Err(LeaseError::TtlTooLarge)
        );
        let record = lessor.grant(1, 1, now);
        assert_eq!(
            record,
            Ok(LeaseRecord {
                id: 1,
                ttl: 2,
                remaining_ttl: 0
            })
        );
        assert_eq!(lessor.grant(1, 10, now), Err(LeaseError::Exists));
        assert!(lessor.exists(1));
        assert!(!lessor.exists(2));
    }

    #[test]
    fn only_the_primary_expires_and_renews() {
        let lessor = lessor();
        let start = Instant::now();
        lessor.grant(1, 10, start).ok();
        assert_eq!(lessor.renew(1, start), Err(LeaseError::NotPrimary));
        assert!(
            lessor
                .expired(start + Duration::from_secs(100), 10)
                .is_empty()
        );
        assert_eq!(lessor.lookup(1, start, false), Err(LeaseError::NotPrimary));

        lessor.promote(Duration::from_secs(1), start);
        // Expires at start + 1 s (extension) + 10 s.
        assert!(
            lessor
                .expired(start + Duration::from_secs(10), 10)
                .is_empty()
        );
        assert_eq!(lessor.expired(start + Duration::from_secs(11), 10), vec![1]);
        // Reported once, then again after the retry interval.
        assert!(
            lessor
                .expired(start + Duration::from_secs(12), 10)
                .is_empty()
        );
        assert_eq!(
            lessor.expired(start + Duration::from_secs(11) + REVOKE_RETRY_INTERVAL, 10),
            vec![1]
        );
        assert_eq!(
            lessor.renew(1, start + Duration::from_secs(20)),
            Err(LeaseError::Expired)
        );
        lessor.demote();
        assert!(
            lessor
                .expired(start + Duration::from_secs(100), 10)
                .is_empty()
        );
    }

    #[test]
    fn renewal_pushes_expiry_back() {
        let lessor = lessor();
        let start = Instant::now();
        lessor.promote(Duration::ZERO, start);
        lessor.grant(7, 10, start).ok();
        let renewed = lessor.renew(7, start + Duration::from_secs(9));
        assert_eq!(
            renewed,
            Ok(Renewed {
                ttl: 10,
                clear_checkpoint: false
            })
        );
        // The stale entry at start + 10 s is dropped; the lease lives to start + 19 s.
        assert!(
            lessor
                .expired(start + Duration::from_secs(18), 10)
                .is_empty()
        );
        let info = lessor
            .lookup(7, start + Duration::from_millis(12_500), false)
            .ok()
            .flatten();
        assert_eq!(info.map(|i| i.remaining_s), Some(6));
        assert_eq!(lessor.expired(start + Duration::from_secs(19), 10), vec![7]);
        assert_eq!(lessor.renew(8, start), Err(LeaseError::NotFound));
    }

    #[test]
    fn expired_is_bounded_and_soonest_first() {
        let lessor = lessor();
        let start = Instant::now();
        lessor.promote(Duration::ZERO, start);
        for id in 1..=10 {
            lessor.grant(id, 2 + id, start).ok();
        }
        let late = start + Duration::from_secs(100);
        assert_eq!(lessor.expired(late, 4), vec![1, 2, 3, 4]);
        assert_eq!(lessor.expired(late, 4), vec![5, 6, 7, 8]);
        assert_eq!(lessor.expired(late, 4), vec![9, 10]);
    }

    #[test]
    fn keys_attach_detach_and_revoke_sorted() {
        let lessor = lessor();
        let now = Instant::now();
        lessor.grant(1, 10, now).ok();
        lessor.grant(2, 10, now).ok();
        assert_eq!(lessor.lease_of(b"a"), 0);
        for key in [&b"c"[..], b"a", b"b"] {
            lessor.attach(1, key);
        }
        lessor.attach(2, b"z");
        // A key of a missing lease is not attached.
        lessor.attach(3, b"y");
        assert_eq!(lessor.lease_of(b"a"), 1);
        assert_eq!(lessor.lease_of(b"y"), 0);
        lessor.detach(1, b"b");
        assert_eq!(lessor.lease_of(b"b"), 0);
        let keys = lessor.keys_to_revoke(1);
        assert_eq!(
            keys,
            Ok(vec![Bytes::from_static(b"a"), Bytes::from_static(b"c")])
        );
        lessor.remove(1);
        assert_eq!(lessor.lease_of(b"a"), 0);
        assert_eq!(lessor.lease_of(b"z"), 2);
        assert_eq!(lessor.keys_to_revoke(1), Err(LeaseError::NotFound));
        lessor.promote(Duration::ZERO, now);
        let info = lessor.lookup(2, now, true).ok().flatten();
        assert_eq!(info.map(|i| i.keys), Some(vec![Bytes::from_static(b"z")]));
    }

    #[test]
    fn leases_list_soonest_expiry_first() {
        let lessor = lessor();
        let now = Instant::now();
        lessor.promote(Duration::ZERO, now);
        lessor.grant(5, 30, now).ok();
        lessor.grant(6, 10, now).ok();
        lessor.grant(7, 20, now).ok();
        assert_eq!(lessor.leases(), vec![6, 7, 5]);
    }

    #[test]
    fn recovered_leases_keep_their_checkpointed_ttl_on_promotion() {
        let lessor = Lessor::new(
            LessorConfig {
                min_ttl_s: 5,
                checkpointing: None,
            },
            [
                LeaseRecord {
                    id: 1,
                    ttl: 100,
                    remaining_ttl: 30,
                },
                // Below the minimum: raised to it.
                LeaseRecord {
                    id: 2,
                    ttl: 1,
                    remaining_ttl: 0,
                },
            ],
        );
        let now = Instant::now();
        lessor.promote(Duration::from_secs(1), now);
        let one = lessor.lookup(1, now, false).ok().flatten();
        assert_eq!(one.map(|i| (i.granted_ttl, i.remaining_s)), Some((100, 31)));
        let two = lessor.lookup(2, now, false).ok().flatten();
        assert_eq!(two.map(|i| (i.granted_ttl, i.remaining_s)), Some((5, 6)));
    }

    #[test]
    fn checkpoints_fall_due_for_leases_longer_than_the_interval() {
        let lessor = Lessor::new(
            LessorConfig {
                min_ttl_s: 2,
                checkpointing: Some(Checkpointing {
                    interval: Duration::from_secs(60),
                    persist: true,
                }),
            },
            [],
        );
        let start = Instant::now();
        lessor.promote(Duration::ZERO, start);
        lessor.grant(1, 300, start).ok();
        lessor.grant(2, 30, start).ok();
        assert!(
            lessor
                .due_checkpoints(start + Duration::from_secs(59))
                .is_empty()
        );
        let due = lessor.due_checkpoints(start + Duration::from_millis(60_500));
        assert_eq!(
            due,
            vec![LeaseCheckpoint {
                id: 1,
                remaining_ttl: 240
            }]
        );
        // Applying it persists and schedules the next.
        let record = lessor.checkpoint(1, 240, start + Duration::from_secs(61));
        assert_eq!(record.map(|r| r.remaining_ttl), Some(240));
        // A renewal clears it, and says so.
        let renewed = lessor.renew(1, start + Duration::from_secs(62));
        assert_eq!(renewed.map(|r| r.clear_checkpoint), Ok(true));
    }

    #[test]
    fn promotion_spreads_a_pile_up_of_expiries() {
        let lessor = lessor();
        let now = Instant::now();
        for id in 1..=4_000 {
            lessor.grant(id, 10, now).ok();
        }
        lessor.promote(Duration::ZERO, now);
        // 4,000 leases all due at +10 s: at most 750 expire per second once spread.
        let mut per_second = HashMap::<u64, usize>::new();
        let mut at = now + Duration::from_secs(10);
        let mut total = 0;
        while total < 4_000 {
            let expired = lessor.expired(at, usize::MAX);
            for &id in &expired {
                lessor.remove(id);
            }
            total += expired.len();
            *per_second
                .entry(at.duration_since(now).as_secs())
                .or_default() += expired.len();
            at += Duration::from_secs(1);
            assert!(at < now + Duration::from_secs(30), "never spread out");
        }
        assert!(per_second.values().all(|&n| n <= 751), "{per_second:?}");
    }
}

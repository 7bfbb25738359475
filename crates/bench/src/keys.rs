//! Keys, values and the random numbers that pick them.
//!
//! Owns how a request index becomes a key: [`KeySpace`] names the keys a
//! workload may touch, [`KeyPlan`] decides which key request `i` uses
//! (sequential, `i % key-space-size`, or uniformly random within the key
//! space, as etcd's `--sequential-keys` does), and keys are generated before
//! the clock starts, in one buffer that requests slice without copying.
//! Also [`Rng`], a small seeded generator (the tool needs speed and
//! reproducible tests, not cryptographic quality).
//!
//! Key format (stead's, not etcd's): key `n` is `n` in lowercase hex,
//! zero-padded on the left to `--key-size` bytes (`0000002a` for 42 with the
//! default size 8). etcd's tool writes a binary varint into a zeroed buffer;
//! hex keeps keys distinct just the same, sorts in index order, and can be
//! typed on a command line (`range 00000000 00000100`).
//!
//! Does not own: request construction (the workloads) or values' meaning.

use bytes::{Bytes, BytesMut};

use crate::error::BenchError;

/// Keys above this many bytes in total are generated per request instead of
/// up front, so a huge key space cannot exhaust memory.
const KEY_TABLE_BYTES_MAX: u64 = 64 << 20;

/// A splitmix64 generator: fast, seedable, good enough to spread keys.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed (tests, reproducible runs).
    pub fn with_seed(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded from the clock, different for each `stream`
    /// (each client task takes its own).
    pub fn from_clock(stream: u64) -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0x5eed);
        Rng::with_seed(nanos ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// A number in `0..bound` (`bound` > 0), by multiply-shift.
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// splitmix64's finaliser: a good bijective mix of 64 bits. Also used to
/// decide a request's class from its index without shared state.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The keys `0..count` of `size` bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpace {
    pub key_size: usize,
    pub count: u64,
}

impl KeySpace {
    /// Checks that `count` distinct keys fit in `key_size` hex digits.
    pub fn new(key_size: usize, count: u64) -> Result<KeySpace, BenchError> {
        if count == 0 {
            return Err(BenchError::InvalidArgument(
                "the key space must hold at least one key (--key-space-size > 0)".into(),
            ));
        }
        let digits = hex_digits(count - 1);
        if key_size < digits {
            return Err(BenchError::InvalidArgument(format!(
                "--key-size {key_size} is too small for {count} distinct keys \
                 (keys are hex numbers: {digits} bytes needed)"
            )));
        }
        Ok(KeySpace { key_size, count })
    }

    /// Writes key `index` into `buf` (exactly `key_size` bytes).
    pub fn write_key(&self, index: u64, buf: &mut [u8]) {
        debug_assert!(index < self.count);
        debug_assert_eq!(buf.len(), self.key_size);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut rest = index;
        for byte in buf.iter_mut().rev() {
            *byte = HEX[(rest & 0xf) as usize];
            rest >>= 4;
        }
        debug_assert_eq!(
            rest, 0,
            "key {index} does not fit in {} bytes",
            self.key_size
        );
    }

    /// Key `index` as a fresh buffer.
    pub fn key(&self, index: u64) -> Bytes {
        let mut buf = vec![0u8; self.key_size];
        self.write_key(index, &mut buf);
        Bytes::from(buf)
    }
}

/// Number of hex digits of `n` (at least one).
fn hex_digits(n: u64) -> usize {
    let bits = 64 - n.leading_zeros() as usize;
    bits.div_ceil(4).max(1)
}

/// Whether requests walk the key space in order or pick keys at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Sequential,
    Random,
}

/// Which key each request of a run uses, with the keys made in advance.
#[derive(Debug)]
pub struct KeyPlan {
    space: KeySpace,
    /// Keys laid end to end; slot `s` is `table[s*size..(s+1)*size]`.
    table: Bytes,
    slots: u64,
    pick: Pick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// Request `i` uses slot `i % slots`.
    Cycle,
    /// Request `i` uses a random slot.
    Random,
    /// The table is empty: request `i` builds key `i % count`, or a random
    /// key, on the spot (only for key spaces too big to tabulate).
    Generate(KeyOrder),
}

impl KeyPlan {
    /// Plans `requests` requests over `space`.
    ///
    /// When the key space is no bigger than the run, the whole space is
    /// tabulated and each request picks a slot. When it is bigger, only the
    /// keys the run will use are tabulated, in request order (random keys
    /// are drawn here, before the clock starts).
    pub fn new(space: KeySpace, order: KeyOrder, requests: u64, rng: &mut Rng) -> KeyPlan {
        let whole_space = space.count <= requests.max(1);
        let slots = if whole_space { space.count } else { requests };
        if slots.saturating_mul(space.key_size as u64) > KEY_TABLE_BYTES_MAX {
            return KeyPlan {
                space,
                table: Bytes::new(),
                slots: 0,
                pick: Pick::Generate(order),
            };
        }
        let mut table = BytesMut::zeroed(slots as usize * space.key_size);
        // `KeySpace::new` guarantees key_size >= 1.
        for (slot, buf) in table.chunks_exact_mut(space.key_size).enumerate() {
            let index = match (whole_space, order) {
                (true, _) | (false, KeyOrder::Sequential) => slot as u64,
                (false, KeyOrder::Random) => rng.below(space.count),
            };
            space.write_key(index, buf);
        }
        let pick = match (whole_space, order) {
            (true, KeyOrder::Random) => Pick::Random,
            _ => Pick::Cycle,
        };
        KeyPlan {
            space,
            table: table.freeze(),
            slots,
            pick,
        }
    }

    /// The key of request `request`. Allocation-free unless the key space
    /// was too big to tabulate.
    pub fn key(&self, request: u64, rng: &mut Rng) -> Bytes {
        let slot = match self.pick {
            Pick::Cycle => request % self.slots,
            Pick::Random => rng.below(self.slots),
            Pick::Generate(KeyOrder::Sequential) => {
                return self.space.key(request % self.space.count);
            }
            Pick::Generate(KeyOrder::Random) => return self.space.key(rng.below(self.space.count)),
        };
        let start = slot as usize * self.space.key_size;
        self.table.slice(start..start + self.space.key_size)
    }
}

/// A value of `size` random printable bytes (so `etcdctl get` shows it).
pub fn random_value(size: usize, rng: &mut Rng) -> Bytes {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let value: Vec<u8> = (0..size)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
        .collect();
    Bytes::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(key_size: usize, count: u64, order: KeyOrder, requests: u64) -> KeyPlan {
        let space = KeySpace::new(key_size, count).unwrap();
        KeyPlan::new(space, order, requests, &mut Rng::with_seed(7))
    }

    #[test]
    fn keys_are_zero_padded_hex_of_the_key_size() {
        let space = KeySpace::new(8, 1000).unwrap();
        assert_eq!(space.key(0), Bytes::from_static(b"00000000"));
        assert_eq!(space.key(42), Bytes::from_static(b"0000002a"));
        assert_eq!(space.key(999), Bytes::from_static(b"000003e7"));
        let wide = KeySpace::new(20, 1).unwrap();
        assert_eq!(wide.key(0).len(), 20);
    }

    #[test]
    fn key_size_must_hold_the_key_space() {
        assert!(KeySpace::new(1, 16).is_ok());
        assert!(KeySpace::new(1, 17).is_err());
        assert!(KeySpace::new(2, 256).is_ok());
        assert!(KeySpace::new(2, 257).is_err());
        assert!(KeySpace::new(8, 0).is_err());
        assert!(KeySpace::new(16, u64::MAX).is_ok());
    }

    #[test]
    fn sequential_keys_cycle_through_the_key_space() {
        let plan = plan(8, 3, KeyOrder::Sequential, 10);
        let mut rng = Rng::with_seed(1);
        let keys: Vec<Bytes> = (0..7).map(|i| plan.key(i, &mut rng)).collect();
        let expected = ["0", "1", "2", "0", "1", "2", "0"]
            .map(|k| Bytes::from(format!("{k:0>8}")))
            .to_vec();
        assert_eq!(keys, expected);
    }

    #[test]
    fn sequential_keys_in_a_key_space_bigger_than_the_run_are_distinct() {
        let plan = plan(8, 1_000_000, KeyOrder::Sequential, 100);
        let mut rng = Rng::with_seed(1);
        let keys: std::collections::BTreeSet<Bytes> =
            (0..100).map(|i| plan.key(i, &mut rng)).collect();
        assert_eq!(keys.len(), 100);
        assert_eq!(keys.first(), Some(&Bytes::from_static(b"00000000")));
        assert_eq!(keys.last(), Some(&Bytes::from_static(b"00000063")));
    }

    #[test]
    fn random_keys_stay_within_the_key_space_and_cover_it() {
        for requests in [10, 100_000] {
            let plan = plan(8, 50, KeyOrder::Random, requests);
            let mut rng = Rng::with_seed(3);
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..5_000 {
                let key = plan.key(i % requests, &mut rng);
                assert_eq!(key.len(), 8);
                let index = u64::from_str_radix(std::str::from_utf8(&key).unwrap(), 16).unwrap();
                assert!(index < 50, "key {index} outside the key space");
                seen.insert(index);
            }
            if requests > 50 {
                assert_eq!(seen.len(), 50, "uniform picks should reach every key");
            }
        }
    }

    #[test]
    fn random_keys_beyond_the_run_are_drawn_from_the_whole_space() {
        let plan = plan(16, u64::MAX, KeyOrder::Random, 1000);
        let mut rng = Rng::with_seed(1);
        let high = (0..1000)
            .filter(|&i| plan.key(i, &mut rng)[0] != b'0')
            .count();
        assert!(high > 800, "random keys should use the high digits too");
    }

    #[test]
    fn huge_key_spaces_are_generated_per_request() {
        let plan = plan(1 << 20, 1000, KeyOrder::Sequential, 1000);
        assert!(plan.table.is_empty());
        let key = plan.key(1001, &mut Rng::with_seed(1));
        assert_eq!(key.len(), 1 << 20);
        assert!(key.ends_with(b"001"));
    }

    #[test]
    fn rng_below_is_in_range() {
        let mut rng = Rng::with_seed(9);
        for bound in [1, 2, 3, 1000, u64::MAX] {
            for _ in 0..1000 {
                assert!(rng.below(bound) < bound);
            }
        }
    }

    #[test]
    fn values_have_the_requested_size() {
        let mut rng = Rng::with_seed(2);
        assert_eq!(random_value(0, &mut rng).len(), 0);
        let value = random_value(256, &mut rng);
        assert_eq!(value.len(), 256);
        assert!(value.iter().all(u8::is_ascii_alphanumeric));
    }
}

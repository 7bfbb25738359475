//! Unique request IDs, as etcd's `idutil.Generator` makes them: the low 16 bits of the member
//! ID, 40 bits of the start time in milliseconds, and an 8-bit counter that carries into the
//! time bits. IDs are unique per member across restarts (the clock moves on) and never 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const TIMESTAMP_BITS: u32 = 5 * 8;
const COUNTER_BITS: u32 = 8;
const SUFFIX_BITS: u32 = TIMESTAMP_BITS + COUNTER_BITS;

pub(crate) struct IdGenerator {
    prefix: u64,
    suffix: AtomicU64,
}

impl IdGenerator {
    pub(crate) fn new(member_id: u64) -> IdGenerator {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        IdGenerator {
            prefix: (member_id & 0xffff) << SUFFIX_BITS,
            suffix: AtomicU64::new(low_bits(now_ms, TIMESTAMP_BITS) << COUNTER_BITS),
        }
    }

    pub(crate) fn next(&self) -> u64 {
        let suffix = self.suffix.fetch_add(1, Ordering::Relaxed) + 1;
        self.prefix | low_bits(suffix, SUFFIX_BITS)
    }
}

fn low_bits(value: u64, bits: u32) -> u64 {
    value & ((1u64 << bits) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_member_and_count_up() {
        let ids = IdGenerator::new(0x8e9e05c52164694d);
        let first = ids.next();
        let second = ids.next();
        assert_eq!(first >> SUFFIX_BITS, 0x694d);
        assert_eq!(second, first + 1);
        assert_ne!(first, 0);
    }
}

//! A tiny seeded PRNG (SplitMix64): every random choice of the simulation comes from one of
//! these, so a seed fixes the whole schedule.

/// SplitMix64: one 64-bit state, a fixed increment and a mixing function. Plenty for choosing
/// faults; not for anything cryptographic.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for one purpose (the schedule, one network link), so that how many
    /// draws one consumer makes does not shift the draws of another.
    pub fn stream(seed: u64, purpose: u64) -> Rng {
        let mut mixer = Rng::new(seed ^ purpose.wrapping_mul(0xA076_1D64_78BD_642F));
        Rng::new(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range");
        // The modulo bias is at most bound / 2^64: irrelevant here.
        self.next_u64() % bound
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with probability `probability`.
    pub fn chance(&mut self, probability: f64) -> bool {
        // 53 random bits make an exact f64 in [0, 1).
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < probability
    }

    /// One of `choices`, uniformly.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    let mut a = Rng::new(7);
    let mut b = Rng::new(7);
    let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
    assert_eq!(first, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
    assert_ne!(Rng::stream(7, 1).next_u64(), Rng::stream(7, 2).next_u64());
    assert!((0..1000).all(|_| a.between(3, 5) >= 3 && b.between(3, 5) <= 5));
}

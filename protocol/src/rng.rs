//! SplitMix64: the one small seeded random number generator every part of Rallypoint uses
//! (the simulation's spawn choices, the bots' decisions, property tests).
//!
//! Pure and platform-independent: the same seed gives the same sequence everywhere, which
//! replays, determinism checks and `--seed` runs rely on. Must not read entropy, the clock
//! or any global, and must not be used for anything security-related (tokens and secrets
//! come from the OS generator).

/// SplitMix64 (Steele, Lea and Flood): one `u64` of state, no bad seeds, good statistical
/// quality for a handful of instructions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed (any value, zero included).
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0). Multiply-shift rather than modulo: no division,
    /// and the bias for the small `n` used here is below 2^-50.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// A seed for a derived generator (one per bot, say), decorrelated from this one.
    pub fn fork(&mut self) -> u64 {
        self.next_u64()
    }

    /// The raw state, for state hashes.
    pub fn state(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn same_seed_same_sequence_and_values_stay_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut c = SplitMix64::new(8);
        let mut differs = false;
        for _ in 0..1000 {
            let x = a.next_u64();
            assert_eq!(x, b.next_u64());
            differs |= x != c.next_u64();
            assert!(a.below(5) < 5);
            assert_eq!(a.below(0), 0);
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            assert!((2.0..3.0).contains(&a.range(2.0, 3.0)));
            b.below(5);
            b.below(0);
            b.unit();
            b.range(2.0, 3.0);
        }
        assert!(differs);
        // The published first output for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}

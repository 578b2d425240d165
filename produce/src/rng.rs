//! The generator's randomness, on `rand`: [`Rng`], a seeded generator whose output rand
//! promises to keep (Xoshiro256++, one of its "named portable generators"), so the same
//! seed gives the same events on every platform; the samplers drawn from it (weighted
//! choice by rand_distr's alias table, popularity ranks by `rand_distr::Zipf`); and
//! [`mix`], which is no generator but a fixed hash (a bijection of `u64`) for values
//! derived from a number: ids unique by construction, a product or an IP of a rank.

use rand::distr::Distribution;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_distr::weighted::WeightedAliasIndex;

/// The generator every random choice is drawn from.
pub(crate) type Rng = rand::rngs::Xoshiro256PlusPlus;

/// The generator of `seed` (rand's documented expansion of a `u64` into the state).
pub(crate) fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// One of `items` (not empty), uniformly.
pub(crate) fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    *items.choose(rng).expect("pick from an empty list")
}

/// The SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijection on u64 that scrambles
/// its input, so `mix(a) != mix(b)` whenever `a != b`.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Indices `0..n` with given weights (negative ones count as 0), in O(1) per sample.
#[derive(Debug)]
pub(crate) struct Weighted(WeightedAliasIndex<f64>);

impl Weighted {
    /// Panics unless some weight is positive (and all are finite): the tables here are
    /// fixed, so that is a bug, not an input error.
    pub(crate) fn new(weights: impl Iterator<Item = f64>) -> Weighted {
        let w: Vec<f64> = weights.map(|w| w.max(0.0)).collect();
        Weighted(WeightedAliasIndex::new(w).expect("Weighted needs a positive weight"))
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        self.0.sample(rng)
    }
}

/// Popularity ranks `0..n`, rank `r` drawn with a weight of `(r + 1)^-s` (Zipf's law):
/// rank 0 is the most popular.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zipf {
    n: u64,
    zipf: rand_distr::Zipf<f64>,
}

impl Zipf {
    /// `n` at least 1, `s` at least 0 (fixed tables here: a bug otherwise).
    pub(crate) fn new(n: u64, s: f64) -> Zipf {
        Zipf {
            n,
            zipf: rand_distr::Zipf::new(n as f64, s).expect("Zipf needs n >= 1 and s >= 0"),
        }
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> u64 {
        // rand_distr draws 1..=n
        (self.zipf.sample(rng) as u64)
            .saturating_sub(1)
            .min(self.n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samplers_follow_their_weights() {
        let w = Weighted::new([1.0, 0.0, 3.0, 6.0].into_iter());
        let mut rng = seeded(11);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[w.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        for (i, want) in [(0, 10_000.0), (2, 30_000.0), (3, 60_000.0)] {
            let got = f64::from(counts[i]);
            assert!((got - want).abs() < want * 0.05, "{counts:?}");
        }
        let z = Zipf::new(1_000, 1.0);
        let mut top = 0;
        let mut seen = [false; 1_000];
        for _ in 0..100_000 {
            let k = z.sample(&mut rng) as usize;
            seen[k] = true;
            top += u32::from(k == 0);
        }
        // 1 / H(1000) = 13.4%
        assert!((12_400..14_400).contains(&top), "{top}");
        assert!(seen.iter().filter(|s| **s).count() > 900);
        let z = Zipf::new(40_000, 0.8);
        let mut ranks = std::collections::HashSet::new();
        for _ in 0..10_000 {
            ranks.insert(z.sample(&mut rng));
        }
        assert!(ranks.len() > 3_000 && ranks.iter().all(|r| *r < 40_000));
    }

    #[test]
    fn the_same_seed_gives_the_same_draws() {
        let draw = |seed| {
            let mut rng = seeded(seed);
            let z = Zipf::new(4_000, 1.0);
            (0..100).map(|_| z.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }
}

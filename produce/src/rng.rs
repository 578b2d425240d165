//! A small deterministic PRNG (SplitMix64) and a weighted sampler; no crate, so the same
//! seed gives the same events on every platform and every version of the dependencies.

/// SplitMix64 (Steele, Lea, Flood 2014): fast, 64-bit state, passes BigCrush.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n` > 0), by multiply-shift (bias below 2^-32 for our `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One of `items`, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The SplitMix64 finaliser: a bijection on u64 that scrambles its input.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Samples indices `0..n` with given weights in O(1): Walker's alias method (Vose's
/// construction). One uniform column, one biased coin.
#[derive(Debug)]
pub struct Weighted {
    /// chance (scaled to 2^32) of keeping the column rather than taking its alias
    keep: Vec<u32>,
    alias: Vec<u32>,
}

impl Weighted {
    pub fn new(weights: impl Iterator<Item = f64>) -> Weighted {
        let w: Vec<f64> = weights.map(|w| w.max(0.0)).collect();
        let n = w.len();
        let total: f64 = w.iter().sum();
        assert!(total > 0.0, "Weighted needs a positive weight");
        let mut scaled: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        let mut keep = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s] = (scaled[s] * 4_294_967_296.0).min(4_294_967_295.0) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // leftovers are 1 up to rounding: always kept
        Weighted { keep, alias }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next_u64();
        let col = ((u128::from(r >> 32) * self.keep.len() as u128) >> 32) as usize;
        if (r as u32) < self.keep[col] {
            col
        } else {
            self.alias[col] as usize
        }
    }
}

/// Zipf-like popularity ranks `0..n` without a table: the continuous density x^-s on
/// [1, n + 1) sampled by inversion, floored. Rank 0 is the most popular.
#[derive(Debug, Clone, Copy)]
pub(super) struct Zipf {
    n: u64,
    s: f64,
    /// s = 1: ln(n + 1); otherwise (n + 1)^(1 - s) - 1
    span: f64,
}

impl Zipf {
    pub(super) fn new(n: u64, s: f64) -> Zipf {
        let top = n as f64 + 1.0;
        let span = if (s - 1.0).abs() < 1e-9 {
            top.ln()
        } else {
            top.powf(1.0 - s) - 1.0
        };
        Zipf { n, s, span }
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let x = if (self.s - 1.0).abs() < 1e-9 {
            (u * self.span).exp()
        } else {
            (1.0 + u * self.span).powf(1.0 / (1.0 - self.s))
        };
        (x as u64).saturating_sub(1).min(self.n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_sampler_follows_the_weights() {
        let w = Weighted::new([1.0, 0.0, 3.0, 6.0].into_iter());
        let mut rng = Rng::new(11);
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
        // ln 2 / ln 1001 = 10.0%
        assert!((9_000..11_000).contains(&top), "{top}");
        assert!(seen.iter().filter(|s| **s).count() > 900);
        let z = Zipf::new(40_000, 0.8);
        let mut ranks = std::collections::HashSet::new();
        for _ in 0..10_000 {
            ranks.insert(z.sample(&mut rng));
        }
        assert!(ranks.len() > 3_000 && ranks.iter().all(|r| *r < 40_000));
    }
}

//! Fact keys this process committed recently, as a bounded set of 64-bit fingerprints: it
//! lets the sink COPY a batch straight into `fact_sales` when none of its keys can be there
//! yet. Promises: no false negative for a key among the last `capacity / 2` inserted (at
//! least); a false positive only sends that row through an exact existence check.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// The fingerprints are already hashes: a HashSet of them needs no second hash.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Set = HashSet<u64, BuildHasherDefault<Identity>>;

/// Two generations: inserts go to `current`; when it holds half the capacity it becomes
/// `previous` and the older generation is dropped.
pub struct RecentKeys {
    generations: Mutex<(Set, Set)>,
    half: usize,
    /// seeded at random per process: fingerprints are never stored
    hasher: foldhash::quality::RandomState,
}

impl RecentKeys {
    pub fn new(capacity: usize) -> Self {
        RecentKeys {
            generations: Mutex::new((Set::default(), Set::default())),
            half: (capacity / 2).max(1),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Set, Set)> {
        // Poisoned or not, the sets only ever hold committed keys.
        crate::lock::lock(&self.generations)
    }

    /// The keys of `keys` that may have been committed already (one lock per call).
    pub fn maybe_seen<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let g = self.lock();
        keys.into_iter()
            .filter(|k| {
                let f = self.hasher.hash_one(k);
                g.0.contains(&f) || g.1.contains(&f)
            })
            .collect()
    }

    /// Remember committed keys.
    pub fn insert_all<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut g = self.lock();
        for k in keys {
            if g.0.len() >= self.half {
                g.1 = std::mem::take(&mut g.0);
            }
            let f = self.hasher.hash_one(k);
            g.0.insert(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_half_capacity_keys_at_least() {
        let r = RecentKeys::new(8);
        let keys: Vec<String> = (0..20).map(|i| format!("key-{i}")).collect();
        r.insert_all(keys.iter().map(String::as_str));
        let seen = r.maybe_seen(keys.iter().map(String::as_str));
        for k in &keys[16..] {
            assert!(seen.contains(&k.as_str()), "{k} forgotten");
        }
        // Bounded: at most two generations of four.
        assert!(seen.len() <= 8, "{seen:?}");
        assert!(r.maybe_seen(["never-inserted"]).is_empty());
    }
}

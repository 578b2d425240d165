//! Fact keys this process committed recently, as a bounded set of 64-bit fingerprints: it
//! lets the sink COPY a batch straight into `fact_sales` when none of its keys can be there
//! yet. Promises: no false negative for a key among the last `capacity / 2` inserted (at
//! least); a false positive only sends that row through an exact existence check. It
//! also remembers when another writer last stored keys this process was about to COPY
//! (another process of the group loading the same duplicates): for a while after that,
//! every key of a batch is looked up before its COPY.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bounded::Bounded;

/// The fingerprints, in one shard: the last `capacity / 2` inserted are always there.
pub(crate) struct RecentKeys {
    fingerprints: Bounded<u64>,
    /// seeded at random per process: fingerprints are never stored
    hasher: foldhash::quality::RandomState,
    started: Instant,
    /// until when (ms after `started`) other writers count as storing our keys
    others_until: AtomicU64,
}

/// How long one key found stored by someone else makes every key of a batch looked up.
const OTHERS_FOR: Duration = Duration::from_secs(10);

impl RecentKeys {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentKeys {
            fingerprints: Bounded::with_shards(capacity, 1),
            hasher: foldhash::quality::RandomState::default(),
            started: Instant::now(),
            others_until: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A COPY found a key stored that this process had not committed (or forgot).
    pub(crate) fn others_stored(&self) {
        let until = self.now_ms() + OTHERS_FOR.as_millis() as u64;
        self.others_until.fetch_max(until, Ordering::Relaxed);
    }

    /// Whether another writer stored keys of ours lately: then the keys it may have stored
    /// are looked up before a COPY (a lookup costs less than a COPY that fails): all of
    /// them until its published keys have been read (`shared.rs`), then those.
    pub(crate) fn others_writing(&self) -> bool {
        self.now_ms() < self.others_until.load(Ordering::Relaxed)
    }

    /// The items of `keys` (each with its key's [`crate::transform::Fact::key_prefix`])
    /// whose keys may have been committed already. Fingerprints are taken of the prefixes,
    /// so that the keys' text is only read for the few that may have been.
    pub(crate) fn maybe_seen<T>(&self, keys: impl IntoIterator<Item = (u128, T)>) -> Vec<T> {
        let keys: Vec<(T, u64)> = keys
            .into_iter()
            .map(|(p, k)| (k, self.hasher.hash_one(p)))
            .collect();
        let seen: std::collections::HashSet<u64> = self
            .fingerprints
            .contained(keys.iter().map(|(_, f)| f))
            .into_iter()
            .copied()
            .collect();
        keys.into_iter()
            .filter(|(_, f)| seen.contains(f))
            .map(|(k, _)| k)
            .collect()
    }

    /// Remember committed keys, by their prefixes.
    pub(crate) fn insert_all(&self, prefixes: impl IntoIterator<Item = u128>) {
        self.fingerprints
            .insert_all(prefixes.into_iter().map(|p| (self.hasher.hash_one(p), ())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_half_capacity_keys_at_least() {
        let r = RecentKeys::new(8);
        let keys: Vec<(u128, String)> = (0..20).map(|i| (i, format!("key-{i}"))).collect();
        r.insert_all(keys.iter().map(|k| k.0));
        let seen = r.maybe_seen(keys.iter().map(|(p, k)| (*p, k.as_str())));
        for (_, k) in &keys[16..] {
            assert!(seen.contains(&k.as_str()), "{k} forgotten");
        }
        // Bounded: at most two generations of four.
        assert!(seen.len() <= 8, "{seen:?}");
        assert!(r.maybe_seen([(99, "never-inserted")]).is_empty());
    }

    #[test]
    fn a_key_stored_by_someone_else_makes_every_key_looked_up_for_a_while() {
        let r = RecentKeys::new(8);
        assert!(!r.others_writing());
        r.others_stored();
        assert!(r.others_writing());
    }
}

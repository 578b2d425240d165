//! Fact keys this process committed recently, as a bounded set of 64-bit fingerprints: it
//! lets the sink COPY a batch straight into `fact_sales` when none of its keys can be there
//! yet. Promises: no false negative for a key among the last `capacity / 2` inserted (at
//! least); a false positive only sends that row through an exact existence check.

use std::hash::BuildHasher;

use crate::bounded::Bounded;

/// The fingerprints, in one shard: the last `capacity / 2` inserted are always there.
pub(crate) struct RecentKeys {
    fingerprints: Bounded<u64>,
    /// seeded at random per process: fingerprints are never stored
    hasher: foldhash::quality::RandomState,
}

impl RecentKeys {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentKeys {
            fingerprints: Bounded::with_shards(capacity, 1),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// The keys of `keys` that may have been committed already.
    pub(crate) fn maybe_seen<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let keys: Vec<(&'a str, u64)> = keys
            .into_iter()
            .map(|k| (k, self.hasher.hash_one(k)))
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

    /// Remember committed keys.
    pub(crate) fn insert_all<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        self.fingerprints
            .insert_all(keys.into_iter().map(|k| (self.hasher.hash_one(k), ())));
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

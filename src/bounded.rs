//! The one bounded map of the crate, behind every cache (committed dimension keys, recently
//! committed fact keys, enrichment lookups): safe to share between threads, never holding
//! more than its capacity, and forgetting the oldest entries first.
//!
//! Keys are spread over up to [`MAX_SHARDS`] mutex-guarded shards. Each shard keeps two
//! generations: inserts go to the current one; when it is full it becomes the previous one
//! and the older generation is dropped. So a shard remembers at least the last half of
//! its share of the capacity, and a lookup costs at most two probes. A forgotten entry is
//! only ever recomputed or written again (`ON CONFLICT DO NOTHING`), never wrong.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

use crate::hash::{Map, State};
use crate::lock::lock;

/// Number of independently locked shards, at most (fewer when the capacity is smaller).
pub(crate) const MAX_SHARDS: usize = 16;

struct Generations<K, V> {
    current: Map<K, V>,
    previous: Map<K, V>,
}

/// A bounded, sharded map; see the module documentation.
pub(crate) struct Bounded<K, V = ()> {
    shards: Box<[Mutex<Generations<K, V>>]>,
    /// entries of one generation of one shard
    generation: usize,
    /// whether the previous generation is kept (not with a shard capacity of 1)
    keep_previous: bool,
    hasher: State,
}

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    /// A map of at most `capacity` entries over up to [`MAX_SHARDS`] shards; 0 holds
    /// nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Bounded::with_shards(capacity, MAX_SHARDS)
    }

    /// A map of at most `capacity` entries over up to `shards` shards (1: the last
    /// `capacity / 2` entries inserted are always remembered).
    pub(crate) fn with_shards(capacity: usize, shards: usize) -> Self {
        let shards = shards.clamp(1, MAX_SHARDS).min(capacity);
        let per_shard = capacity.checked_div(shards).unwrap_or(0);
        let keep_previous = per_shard >= 2;
        let generation = if keep_previous {
            per_shard / 2
        } else {
            per_shard
        };
        Bounded {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Generations {
                        current: Map::default(),
                        previous: Map::default(),
                    })
                })
                .collect(),
            generation,
            keep_previous,
            hasher: State::default(),
        }
    }

    /// Upper bound on [`Bounded::len`].
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        let per_shard = if self.keep_previous {
            2 * self.generation
        } else {
            self.generation
        };
        self.shards.len() * per_shard
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> Option<&Mutex<Generations<K, V>>> {
        if self.shards.is_empty() {
            return None;
        }
        let index = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        self.shards.get(index)
    }

    /// The value of `key`, if remembered.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let g = lock(self.shard(key)?);
        g.current.get(key).or_else(|| g.previous.get(key)).cloned()
    }

    /// Whether `key` is remembered.
    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).is_some_and(|s| {
            let g = lock(s);
            g.current.contains_key(key) || g.previous.contains_key(key)
        })
    }

    /// The keys of `keys` that are remembered, in the order given (one lock per call
    /// with one shard).
    pub(crate) fn contained<'a, Q>(&self, keys: impl IntoIterator<Item = &'a Q>) -> Vec<&'a Q>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'a,
    {
        if let [only] = &*self.shards {
            let g = lock(only);
            return keys
                .into_iter()
                .filter(|k| g.current.contains_key(*k) || g.previous.contains_key(*k))
                .collect();
        }
        keys.into_iter().filter(|k| self.contains(*k)).collect()
    }

    fn insert_into(&self, g: &mut Generations<K, V>, key: K, value: V) {
        if g.current.len() >= self.generation && !g.current.contains_key(&key) {
            let full = std::mem::take(&mut g.current);
            g.previous = if self.keep_previous {
                full
            } else {
                Map::default()
            };
        }
        g.previous.remove(&key);
        g.current.insert(key, value);
    }

    /// Remember `key` (its value replaced if it was there).
    pub(crate) fn insert(&self, key: K, value: V) {
        if let Some(shard) = self.shard(&key) {
            self.insert_into(&mut lock(shard), key, value);
        }
    }

    /// Remember every entry (one lock per call with one shard).
    pub(crate) fn insert_all(&self, entries: impl IntoIterator<Item = (K, V)>) {
        if let [only] = &*self.shards {
            let mut g = lock(only);
            for (k, v) in entries {
                self.insert_into(&mut g, k, v);
            }
            return;
        }
        for (k, v) in entries {
            self.insert(k, v);
        }
    }

    /// The remembered value of `key`, or `compute()` (then remembered) when absent.
    /// Computed outside the lock, so two threads may compute one missing key at once.
    pub(crate) fn get_or_insert_with<Q>(&self, key: &Q, compute: impl FnOnce() -> V) -> V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(hit) = self.get(key) {
            return hit;
        }
        let value = compute();
        self.insert(key.to_owned(), value.clone());
        value
    }

    /// Forget every entry.
    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            let mut g = lock(s);
            g.current = Map::default();
            g.previous = Map::default();
        }
    }

    /// Entries held now.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let g = lock(s);
                g.current.len() + g.previous.len()
            })
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_capacity_and_forgets_the_oldest_first() {
        let m: Bounded<String, usize> = Bounded::new(100);
        assert_eq!(m.capacity(), 96); // 16 shards of 6
        for i in 0..10_000 {
            m.insert(format!("key-{i}"), i);
            assert!(m.len() <= 96);
        }
        assert_eq!(m.get("key-9999"), Some(9999));
        assert_eq!(m.get("key-0"), None);
    }

    #[test]
    fn one_shard_remembers_the_last_half_of_its_capacity() {
        let m: Bounded<u32> = Bounded::with_shards(8, 1);
        for i in 0..20 {
            m.insert(i, ());
        }
        for i in 16..20 {
            assert!(m.contains(&i), "{i} forgotten");
        }
        assert!(m.len() <= 8);
    }

    #[test]
    fn small_and_zero_capacity() {
        let one: Bounded<String, i32> = Bounded::new(1);
        one.insert("a".into(), 1);
        one.insert("b".into(), 2);
        assert_eq!(one.len(), 1);
        assert_eq!(one.get("b"), Some(2));
        assert_eq!(one.get("a"), None);
        let none: Bounded<String, i32> = Bounded::new(0);
        none.insert("a".into(), 1);
        assert!(none.is_empty());
        assert_eq!(none.get_or_insert_with("a", || 7), 7);
    }

    #[test]
    fn a_value_is_replaced() {
        let m: Bounded<String, i32> = Bounded::new(10);
        m.insert("k".into(), 1);
        m.insert("k".into(), 2);
        assert_eq!(m.get("k"), Some(2));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn bounded_under_concurrency() {
        let m: Bounded<String, usize> = Bounded::new(64);
        std::thread::scope(|s| {
            for t in 0..8 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..2_000 {
                        let key = format!("{t}-{i}");
                        assert_eq!(m.get_or_insert_with(key.as_str(), || i), i);
                    }
                });
            }
        });
        assert!(m.len() <= 64);
    }
}

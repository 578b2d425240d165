//! Enrichment for the dimensions (contract §5): owns the shared [`Enricher`] and its bounded
//! caches; promises that each distinct user agent / IP is parsed or looked up at most once
//! while its cache has room, that lookups never fail (unknown → all `None`), and that the
//! whole thing is `Send + Sync` for the worker threads. User agents: [`agent`] (woothee);
//! geography: [`geo`] (maxminddb, MaxMind and DB-IP layouts); products: [`product`].

pub mod agent;
pub mod geo;
pub mod product;

use crate::lock::lock;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::Result;

pub use product::{language_for_host, product_url, SHOP_LANGUAGES};

/// Distinct user agents kept parsed (a few hundred to tens of thousands in practice).
pub const DEFAULT_AGENT_CACHE: usize = 20_000;
/// Distinct IP addresses kept looked up (~250 bytes each: about 25 MB when full).
pub const DEFAULT_LOCATION_CACHE: usize = 100_000;
/// Keys longer than this are computed every time rather than cached, so that a flood of
/// huge junk user agents cannot make the cache hold megabytes per entry.
const MAX_CACHED_KEY_LEN: usize = 1024;

/// Parsed user agent for `dim_user_agent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// woothee category: pc, smartphone, mobilephone, crawler, appliance, misc
    pub device_category: Option<String>,
}

/// Geography for `dim_location`; all None when unknown, private or unparsable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub region_name: Option<String>,
    pub city_name: Option<String>,
}

/// Shared by all workers (`Send + Sync`).
pub struct Enricher {
    /// false: every lookup answers "unknown" at once (`[pipeline] enrich = false`)
    enabled: bool,
    geo: Option<geo::GeoDb>,
    agents: BoundedCache<Agent>,
    locations: BoundedCache<Location>,
}

impl Enricher {
    /// Open the GeoIP databases (none: geography stays NULL, said once in the log).
    pub fn open(geoip_paths: &[PathBuf]) -> Result<Enricher> {
        Enricher::open_with_capacity(geoip_paths, DEFAULT_AGENT_CACHE, DEFAULT_LOCATION_CACHE)
    }

    /// [`Enricher::open`] with explicit cache sizes (0 disables that cache).
    pub fn open_with_capacity(
        geoip_paths: &[PathBuf],
        agent_capacity: usize,
        location_capacity: usize,
    ) -> Result<Enricher> {
        let geo = if geoip_paths.is_empty() {
            log::warn!(
                "no [geoip] path configured: country, region and city will be NULL in dim_location"
            );
            None
        } else {
            Some(geo::GeoDb::open(geoip_paths)?)
        };
        Ok(Enricher {
            enabled: true,
            geo,
            agents: BoundedCache::new(agent_capacity),
            locations: BoundedCache::new(location_capacity),
        })
    }

    /// True when at least one GeoIP database is loaded.
    pub fn has_geoip(&self) -> bool {
        self.geo.is_some()
    }

    /// Browser, OS and device category of `user_agent`; all None when woothee knows nothing.
    pub fn agent(&self, user_agent: &str) -> Agent {
        if !self.enabled {
            return Agent::default();
        }
        self.agents
            .get_or_insert_with(user_agent, || agent::parse(user_agent))
    }

    /// Geography of `ip`; all None without a database, for private/reserved/unparsable
    /// addresses and for addresses the databases do not know.
    pub fn location(&self, ip: &str) -> Location {
        if !self.enabled {
            return Location::default();
        }
        match &self.geo {
            None => Location::default(),
            Some(db) => self.locations.get_or_insert_with(ip, || db.lookup(ip)),
        }
    }

    /// Turn every lookup off (browser, OS and geography stay NULL).
    pub fn disabled(mut self) -> Enricher {
        self.enabled = false;
        self
    }

    /// Entries currently cached: (user agents, IP addresses).
    pub fn cached(&self) -> (usize, usize) {
        (self.agents.len(), self.locations.len())
    }
}

/// Number of independently locked shards (fewer when the capacity is smaller).
const SHARDS: usize = 16;

/// A string-keyed map of bounded size, safe to share between threads.
///
/// Keys are spread over up to [`SHARDS`] mutex-guarded maps; a shard that reaches its share
/// of the capacity is cleared before the next insert (cheap, and correct: an entry is only
/// ever recomputed). The total never exceeds `capacity`. Values are computed outside the
/// lock, so two threads may compute the same missing key at once; both get equal values.
pub struct BoundedCache<V> {
    shards: Box<[Mutex<HashMap<String, V>>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl<V: Clone> BoundedCache<V> {
    /// A cache holding at most `capacity` entries; 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        let shards = SHARDS.min(capacity);
        let per_shard = capacity.checked_div(shards).unwrap_or(0);
        BoundedCache {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            hasher: RandomState::new(),
        }
    }

    /// Upper bound on [`BoundedCache::len`].
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.per_shard
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> Option<&Mutex<HashMap<String, V>>> {
        if self.shards.is_empty() || key.len() > MAX_CACHED_KEY_LEN {
            return None;
        }
        let index = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        self.shards.get(index)
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.shard(key).and_then(|s| lock(s).get(key).cloned())
    }

    pub fn insert(&self, key: &str, value: V) {
        if let Some(shard) = self.shard(key) {
            let mut map = lock(shard);
            if map.len() >= self.per_shard && !map.contains_key(key) {
                map.clear();
            }
            map.insert(key.to_owned(), value);
        }
    }

    /// The cached value of `key`, or `compute()` (then cached) when absent.
    pub fn get_or_insert_with(&self, key: &str, compute: impl FnOnce() -> V) -> V {
        if let Some(hit) = self.get(key) {
            return hit;
        }
        let value = compute();
        self.insert(key, value.clone());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enricher_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Enricher>();
    }

    #[test]
    fn cache_stays_within_capacity() {
        let cache = BoundedCache::new(100);
        assert_eq!(cache.capacity(), 96); // 16 shards of 6
        for i in 0..10_000 {
            cache.insert(&format!("key-{i}"), i);
            assert!(cache.len() <= 100);
        }
        assert!(cache.len() <= cache.capacity());
        assert!(!cache.is_empty());
    }

    #[test]
    fn small_and_zero_capacity() {
        let one = BoundedCache::new(1);
        one.insert("a", 1);
        one.insert("b", 2);
        assert_eq!(one.len(), 1);
        assert_eq!(one.get("b"), Some(2));
        assert_eq!(one.get("a"), None);

        let none = BoundedCache::new(0);
        none.insert("a", 1);
        assert_eq!(none.len(), 0);
        assert_eq!(none.get_or_insert_with("a", || 7), 7);
    }

    #[test]
    fn get_or_insert_computes_once_per_key() {
        let cache = BoundedCache::new(1000);
        let mut calls = 0;
        for _ in 0..5 {
            let v = cache.get_or_insert_with("k", || {
                calls += 1;
                42
            });
            assert_eq!(v, 42);
        }
        assert_eq!(calls, 1);
    }

    #[test]
    fn overlong_keys_are_not_cached() {
        let cache = BoundedCache::new(1000);
        cache.insert(&"x".repeat(MAX_CACHED_KEY_LEN + 1), 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_is_bounded_under_concurrency() {
        let cache = BoundedCache::new(64);
        std::thread::scope(|s| {
            for t in 0..8 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..2_000 {
                        let key = format!("{t}-{i}");
                        assert_eq!(cache.get_or_insert_with(&key, || i), i);
                    }
                });
            }
        });
        assert!(cache.len() <= 64);
    }

    #[test]
    fn enricher_agent_cache_is_bounded() {
        let enricher = match Enricher::open_with_capacity(&[], 32, 32) {
            Ok(e) => e,
            Err(e) => panic!("open without databases failed: {e}"),
        };
        for i in 0..500 {
            let ua =
                format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/{i}.0 Safari/537.36");
            assert_eq!(enricher.agent(&ua).browser.as_deref(), Some("Chrome"));
        }
        let (agents, locations) = enricher.cached();
        assert!(agents <= 32, "{agents} cached agents");
        assert_eq!(locations, 0);
        assert!(!enricher.has_geoip());
        assert_eq!(enricher.location("8.8.8.8"), Location::default());
    }
}

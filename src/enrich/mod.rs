//! Enrichment for the dimensions (contract §5): owns the shared [`Enricher`] and its bounded
//! caches; promises that each distinct user agent / IP is parsed or looked up at most once
//! while its cache has room, that lookups never fail (unknown → all `None`), and that the
//! whole thing is `Send + Sync` for the worker threads. User agents: [`agent`] (woothee);
//! geography: [`geo`] (maxminddb, MaxMind and DB-IP layouts); products: [`product`].

pub mod agent;
pub mod geo;
pub mod product;

use crate::bounded::Bounded;
use std::path::PathBuf;

use crate::error::Result;

pub use product::{language_for_host, product_url, SHOP_LANGUAGES};

/// Distinct user agents kept parsed (a few hundred to tens of thousands in practice).
pub const DEFAULT_AGENT_CACHE: usize = 20_000;
/// Distinct IP addresses kept looked up (~250 bytes each: about 5 MB when full). Only an
/// address the loaders' cache of committed `dim_location` keys (200,000, with its
/// country) does not hold is looked up here, so this one catches the few that two
/// batches in flight bring at once; at 100,000 it held 25 MB of RSS for almost no hits.
pub const DEFAULT_LOCATION_CACHE: usize = 20_000;
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
    agents: Bounded<String, Agent>,
    locations: Bounded<String, Location>,
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
            agents: Bounded::new(agent_capacity),
            locations: Bounded::new(location_capacity),
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
        cached(&self.agents, user_agent, || agent::parse(user_agent))
    }

    /// Geography of `ip`; all None without a database, for private/reserved/unparsable
    /// addresses and for addresses the databases do not know.
    pub fn location(&self, ip: &str) -> Location {
        if !self.enabled {
            return Location::default();
        }
        match &self.geo {
            None => Location::default(),
            Some(db) => cached(&self.locations, ip, || db.lookup(ip)),
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

/// The cached value of `key` in `cache`, or `compute()` (then cached); a key longer than
/// [`MAX_CACHED_KEY_LEN`] is computed every time.
fn cached<V: Clone>(cache: &Bounded<String, V>, key: &str, compute: impl FnOnce() -> V) -> V {
    if key.len() > MAX_CACHED_KEY_LEN {
        return compute();
    }
    cache.get_or_insert_with(key, compute)
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
    fn cached_computes_once_per_key() {
        let cache = Bounded::new(1000);
        let mut calls = 0;
        for _ in 0..5 {
            let v = cached(&cache, "k", || {
                calls += 1;
                42
            });
            assert_eq!(v, 42);
        }
        assert_eq!(calls, 1);
    }

    #[test]
    fn overlong_keys_are_not_cached() {
        let cache = Bounded::new(1000);
        assert_eq!(cached(&cache, &"x".repeat(MAX_CACHED_KEY_LEN + 1), || 1), 1);
        assert!(cache.is_empty());
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

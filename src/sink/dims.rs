//! Dimension rows for a batch: only keys this process has not committed before (a bounded
//! cache), enriched once, upserted with array parameters in a fixed table and key order.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::NaiveDate;
use postgres::Transaction;

use crate::enrich::{product_url, Enricher};
use crate::error::{Error, Result};
use crate::transform::Fact;

/// Keys known to be committed in a dimension. Bounded: cleared when full, which only
/// costs a few redundant `ON CONFLICT DO NOTHING` rows.
pub struct KnownKeys<K> {
    set: Mutex<HashSet<K>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> KnownKeys<K> {
    pub fn new(capacity: usize) -> Self {
        KnownKeys {
            set: Mutex::new(HashSet::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<K>> {
        // A poisoned cache is still a valid cache: it only ever holds committed keys.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys of `keys` that are not known, in the order given (one lock per call).
    pub fn unknown<'a, Q>(&self, keys: impl IntoIterator<Item = &'a Q>) -> Vec<&'a Q>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'a,
    {
        let set = self.lock();
        keys.into_iter().filter(|k| !set.contains(*k)).collect()
    }

    pub fn insert_all(&self, keys: impl IntoIterator<Item = K>) {
        let mut set = self.lock();
        for k in keys {
            if set.len() >= self.capacity {
                set.clear();
            }
            set.insert(k);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The caches of all four dimensions, shared by every worker.
pub struct DimCaches {
    pub dates: KnownKeys<NaiveDate>,
    pub products: KnownKeys<String>,
    pub locations: KnownKeys<String>,
    pub agents: KnownKeys<String>,
}

impl DimCaches {
    pub fn new(capacity: usize) -> Self {
        DimCaches {
            dates: KnownKeys::new(capacity),
            products: KnownKeys::new(capacity),
            locations: KnownKeys::new(capacity),
            agents: KnownKeys::new(capacity),
        }
    }
}

/// Dimension rows a batch must write, sorted by key (a fixed order avoids deadlocks
/// between concurrent writers of the same new keys).
#[derive(Debug, Default)]
pub struct DimRows {
    pub dates: Vec<NaiveDate>,
    /// (product_key, current_url without query, language_code)
    pub products: Vec<(String, Option<String>, Option<String>)>,
    /// (ip_key, ip, country_code, country_name, region, city)
    pub locations: Vec<[Option<String>; 6]>,
    /// (key, agent, browser, browser_version, os, os_version, device_category)
    pub agents: Vec<[Option<String>; 7]>,
}

impl DimRows {
    /// Collect the rows of keys not yet known to be committed, enriching each new key once.
    pub fn collect(facts: &[Fact], caches: &DimCaches, enricher: &Enricher) -> DimRows {
        let mut dates = BTreeSet::new();
        let mut products: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        let mut ips: BTreeMap<&str, &str> = BTreeMap::new();
        let mut agents: BTreeMap<&str, &str> = BTreeMap::new();
        for f in facts {
            dates.insert(f.full_date);
            if let Some(p) = &f.product_key {
                let url = products.entry(p.as_str()).or_insert(None);
                if url.is_none() {
                    *url = f.current_url.as_deref().filter(|u| !u.is_empty());
                }
            }
            if let (Some(k), Some(ip)) = (&f.ip_key, &f.ip) {
                ips.entry(k.as_str()).or_insert(ip.as_str());
            }
            if let (Some(k), Some(ua)) = (&f.user_agent_key, &f.user_agent) {
                agents.entry(k.as_str()).or_insert(ua.as_str());
            }
        }
        let mut rows = DimRows {
            dates: caches.dates.unknown(dates.iter()).into_iter().copied().collect(),
            ..DimRows::default()
        };
        let new_products = caches.products.unknown(products.keys().copied());
        for key in new_products {
            let url = products.get(key).copied().flatten();
            let (url, lang) = match url {
                Some(u) => {
                    let (u, l) = product_url(u);
                    (Some(u), l.map(str::to_string))
                }
                None => (None, None),
            };
            rows.products.push((key.to_string(), url, lang));
        }
        for key in caches.locations.unknown(ips.keys().copied()) {
            let ip = ips.get(key).copied().unwrap_or_default();
            let l = enricher.location(ip);
            rows.locations.push([
                Some(key.to_string()),
                Some(ip.to_string()),
                l.country_code,
                l.country_name,
                l.region_name,
                l.city_name,
            ]);
        }
        for key in caches.agents.unknown(agents.keys().copied()) {
            let ua = agents.get(key).copied().unwrap_or_default();
            let a = enricher.agent(ua);
            rows.agents.push([
                Some(key.to_string()),
                Some(ua.to_string()),
                a.browser,
                a.browser_version,
                a.os,
                a.os_version,
                a.device_category,
            ]);
        }
        rows
    }

    /// Upsert every row, dimensions in a fixed order: date, product, location, agent.
    pub fn write(&self, tx: &mut Transaction<'_>) -> Result<()> {
        if !self.dates.is_empty() {
            tx.execute("SELECT streamer_add_dates($1::date[])", &[&self.dates])
                .map_err(|e| Error::from_pg("writing dim_date", e))?;
        }
        if !self.products.is_empty() {
            let col = |i: usize| -> Vec<Option<&str>> {
                self.products
                    .iter()
                    .map(|r| match i {
                        0 => Some(r.0.as_str()),
                        1 => r.1.as_deref(),
                        _ => r.2.as_deref(),
                    })
                    .collect()
            };
            tx.execute(
                "INSERT INTO dim_product AS d (product_key, current_url, language_code) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) \
                 ON CONFLICT (product_key) DO UPDATE SET \
                   current_url = COALESCE(d.current_url, EXCLUDED.current_url), \
                   language_code = COALESCE(d.language_code, EXCLUDED.language_code) \
                 WHERE (d.current_url IS NULL AND EXCLUDED.current_url IS NOT NULL) \
                    OR (d.language_code IS NULL AND EXCLUDED.language_code IS NOT NULL)",
                &[&col(0), &col(1), &col(2)],
            )
            .map_err(|e| Error::from_pg("writing dim_product", e))?;
        }
        if !self.locations.is_empty() {
            let c = columns(&self.locations);
            tx.execute(
                "INSERT INTO dim_location (ip_key, ip_address, country_code, country_name, \
                   region_name, city_name) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                   $5::text[], $6::text[]) \
                 ON CONFLICT (ip_key) DO NOTHING",
                &[&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]],
            )
            .map_err(|e| Error::from_pg("writing dim_location", e))?;
        }
        if !self.agents.is_empty() {
            let c = columns(&self.agents);
            tx.execute(
                "INSERT INTO dim_user_agent (user_agent_key, user_agent, browser, \
                   browser_version, os, os_version, device_category) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                   $5::text[], $6::text[], $7::text[]) \
                 ON CONFLICT (user_agent_key) DO NOTHING",
                &[&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6]],
            )
            .map_err(|e| Error::from_pg("writing dim_user_agent", e))?;
        }
        Ok(())
    }

    /// After the commit: remember what is now known to exist. A product is only
    /// remembered once it has a URL, so a later event can still fill it in.
    pub fn remember(&self, caches: &DimCaches) {
        caches.dates.insert_all(self.dates.iter().copied());
        caches.products.insert_all(
            self.products
                .iter()
                .filter(|p| p.1.is_some())
                .map(|p| p.0.clone()),
        );
        caches
            .locations
            .insert_all(self.locations.iter().filter_map(|r| r[0].clone()));
        caches
            .agents
            .insert_all(self.agents.iter().filter_map(|r| r[0].clone()));
    }

    pub fn len(&self) -> usize {
        self.dates.len() + self.products.len() + self.locations.len() + self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Row-major fixed-width rows to column arrays for `unnest`.
fn columns<const N: usize>(rows: &[[Option<String>; N]]) -> Vec<Vec<Option<&str>>> {
    (0..N)
        .map(|i| rows.iter().map(|r| r[i].as_deref()).collect())
        .collect()
}

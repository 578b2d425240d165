//! Dimension rows for a batch: only keys this process has not committed before (a bounded
//! cache), enriched once, upserted with array parameters in a fixed table and key order.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use postgres::types::{ToSql, Type};
use postgres::Transaction;
use rayon::prelude::*;

use crate::bounded::Bounded;
use crate::enrich::{product_url, Enricher};
use crate::error::{column, Error, Result};
use crate::hash::Map;
use crate::lock::lock;
use crate::transform::{hex_key_prefix, Fact};

/// Keys known to be committed in a dimension, with a value each (a bounded cache:
/// forgetting one only costs a redundant `ON CONFLICT` row).
pub(crate) type Known<K, V = ()> = Bounded<K, V>;

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    /// The keys of `keys` that `keep` says still need writing, given what is known of
    /// them (None: not known), in the order given.
    pub(crate) fn needed<'a, Q>(
        &self,
        keys: impl IntoIterator<Item = &'a Q>,
        keep: impl Fn(&'a Q, Option<&V>) -> bool,
    ) -> Vec<&'a Q>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'a,
    {
        keys.into_iter()
            .filter(|k| keep(k, self.get(*k).as_ref()))
            .collect()
    }

    /// The keys of `keys` that are not known.
    pub(crate) fn unknown<'a, Q>(&self, keys: impl IntoIterator<Item = &'a Q>) -> Vec<&'a Q>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'a,
    {
        keys.into_iter().filter(|k| !self.contains(*k)).collect()
    }
}

/// The country of a committed `dim_location` row: (country_code, country_name), interned
/// by [`DimCaches::country`] so that equal countries share one allocation (the location
/// cache holds one per address, and the loaders group counts by it).
pub(crate) type Country = Arc<CountryName>;

/// (country_code, country_name) as `dim_location` holds them.
pub(crate) type CountryName = (Option<String>, Option<String>);

/// Distinct countries interned at most; past it the interner starts again (equal
/// countries then may not share an allocation, which costs memory, never a count).
const INTERNED_COUNTRIES: usize = 4096;

/// The advisory lock every loader's transaction takes shared, first, and a warmup that
/// loads a locations catalog takes exclusively: no batch is in flight while a catalog
/// changes the geography of committed addresses (and bumps `streamer_location_epoch`).
pub(crate) const LOCATIONS_LOCK: i64 = 0x5354_524c_4f43; // "STRLOC"

/// The caches of all four dimensions, shared by every worker.
pub struct DimCaches {
    pub(crate) dates: Known<NaiveDate>,
    /// product key → (time_stamp, URL) of the earliest event whose URL is committed
    pub(crate) products: Known<String, (i64, String)>,
    /// ip_keys committed in dim_location (by [`Fact::ip_key_prefix`]), with the country
    /// committed for each
    locations: Known<u128, Country>,
    /// the `streamer_location_epoch` whose countries `locations` holds (None: none seen)
    location_epoch: Mutex<Option<i64>>,
    /// one [`Country`] per distinct (code, name)
    interned: Mutex<Map<CountryName, Country>>,
    pub(crate) agents: Known<String>,
}

impl DimCaches {
    pub fn new(capacity: usize) -> Self {
        DimCaches {
            dates: Known::new(capacity),
            products: Known::new(capacity),
            locations: Known::new(capacity),
            location_epoch: Mutex::new(None),
            interned: Mutex::new(Map::default()),
            agents: Known::new(capacity),
        }
    }

    /// The one [`Country`] of (code, name).
    pub(crate) fn country(&self, code: Option<String>, name: Option<String>) -> Country {
        let mut interned = lock(&self.interned);
        let key = (code, name);
        if let Some(c) = interned.get(&key) {
            return c.clone();
        }
        if interned.len() >= INTERNED_COUNTRIES {
            interned.clear();
        }
        let c = Arc::new(key.clone());
        interned.insert(key, c.clone());
        c
    }

    /// A transaction read `epoch` under [`LOCATIONS_LOCK`]: a newer one than the cached
    /// countries' means a catalog changed addresses since, so they are all forgotten.
    /// (Epochs only grow; a transaction reading an older one committed before the change.)
    pub(crate) fn saw_location_epoch(&self, epoch: i64) {
        let mut known = lock(&self.location_epoch);
        if known.is_none_or(|k| k < epoch) {
            self.locations.clear();
            *known = Some(epoch);
        }
    }

    /// The committed countries of the ip_keys of these prefixes as of `epoch`, from the
    /// cache (None for a key not cached, or for all when the cache holds another epoch).
    pub(crate) fn countries(
        &self,
        epoch: i64,
        ip_keys: impl IntoIterator<Item = u128>,
    ) -> Map<u128, Country> {
        let known = lock(&self.location_epoch);
        if *known != Some(epoch) {
            return Map::default();
        }
        ip_keys
            .into_iter()
            .filter_map(|k| Some((k, self.locations.get(&k)?)))
            .collect()
    }

    /// After a commit under `epoch`: remember the committed countries of the addresses it
    /// wrote (unless the cache has moved on to a newer epoch meanwhile).
    pub(crate) fn remember_countries(&self, epoch: i64, countries: &Map<u128, Country>) {
        let known = lock(&self.location_epoch);
        if *known == Some(epoch) {
            self.locations
                .insert_all(countries.iter().map(|(k, c)| (*k, c.clone())));
        }
    }
}

/// A `dim_product` row from events. The URL kept is the one of the earliest event (by
/// `time_stamp`, then URL text), so the row does not depend on which partition or which
/// restart saw the product first.
#[derive(Debug, Clone)]
pub struct ProductRow {
    pub key: String,
    pub url: Option<String>,
    pub language: Option<String>,
    pub first_seen: Option<i64>,
}

/// The earliest URL seen for a product in a batch: (time_stamp, URL without query,
/// language of its shop domain).
type FirstUrl = (i64, String, Option<&'static str>);

/// Dimension rows a batch must write, sorted by key (a fixed order avoids deadlocks
/// between concurrent writers of the same new keys).
#[derive(Debug, Default)]
pub struct DimRows {
    pub dates: Vec<NaiveDate>,
    /// (product_key, current_url without query, language_code, time_stamp of that event)
    pub products: Vec<ProductRow>,
    /// (ip_key, ip, country_code, country_name, region, city)
    pub locations: Vec<[Option<String>; 6]>,
    /// (key, agent, browser, browser_version, os, os_version, device_category)
    pub agents: Vec<[Option<String>; 7]>,
}

/// dim_product columns as array parameters: key, url, language, first_seen.
type ProductColumns<'a> = (
    Vec<&'a str>,
    Vec<Option<&'a str>>,
    Vec<Option<&'a str>>,
    Vec<Option<i64>>,
);

impl DimRows {
    /// Collect the rows of keys not yet known to be committed, enriching each new key once
    /// (in parallel on the current rayon pool).
    pub fn collect(facts: &[Fact], caches: &DimCaches, enricher: &Enricher) -> DimRows {
        let mut dates = BTreeSet::new();
        let mut products: Map<&str, Option<FirstUrl>> = Map::default();
        // by ip_key prefix: a known address's text is not read
        let mut ips: Map<u128, &Fact> = Map::default();
        let mut agents: Map<&str, &str> = Map::default();
        for f in facts {
            dates.insert(f.full_date);
            if let Some(p) = f.product_key() {
                let first = products.entry(p).or_insert(None);
                if let Some(url) = f.current_url().filter(|u| !u.is_empty()) {
                    if first.as_ref().is_none_or(|known| f.time_stamp <= known.0) {
                        let (url, lang) = product_url(url);
                        let candidate = (f.time_stamp, url, lang);
                        if first
                            .as_ref()
                            .is_none_or(|k| (k.0, &k.1) > (candidate.0, &candidate.1))
                        {
                            *first = Some(candidate);
                        }
                    }
                }
            }
            if let Some(k) = f.ip_key_prefix() {
                ips.entry(k).or_insert(f);
            }
            if let (Some(k), Some(ua)) = (f.user_agent_key(), f.user_agent()) {
                agents.entry(k).or_insert(ua);
            }
        }
        let mut rows = DimRows {
            dates: caches
                .dates
                .unknown(dates.iter())
                .into_iter()
                .copied()
                .collect(),
            ..DimRows::default()
        };
        // A known product needs writing again only when this batch saw it earlier.
        let mut new_products = caches
            .products
            .needed(products.keys().copied(), |k, known| {
                match (known, products.get(k).and_then(Option::as_ref)) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(known), Some((ts, url, _))) => (*ts, url) < (known.0, &known.1),
                }
            });
        // Rows go in key order (see DimRows); only the new keys are sorted.
        new_products.sort_unstable();
        for key in new_products {
            let first = products.get(key).and_then(Option::as_ref);
            rows.products.push(ProductRow {
                key: key.to_string(),
                url: first.map(|f| f.1.clone()),
                language: first.and_then(|f| f.2.map(str::to_string)),
                first_seen: first.map(|f| f.0),
            });
        }
        // Lookups of new keys run on the rayon pool (the first batches hold thousands).
        let mut new_ips: Vec<(&str, &str)> = caches
            .locations
            .unknown(ips.keys())
            .into_iter()
            .filter_map(|k| {
                let f = ips.get(k)?;
                Some((f.ip_key()?, f.ip()?))
            })
            .collect();
        new_ips.sort_unstable();
        rows.locations = new_ips
            .into_par_iter()
            .with_min_len(64)
            .map(|(key, ip)| {
                let l = enricher.location(ip);
                [
                    Some(key.to_string()),
                    Some(ip.to_string()),
                    l.country_code,
                    l.country_name,
                    l.region_name,
                    l.city_name,
                ]
            })
            .collect();
        let mut new_agents = caches.agents.unknown(agents.keys().copied());
        new_agents.sort_unstable();
        rows.agents = new_agents
            .into_par_iter()
            .with_min_len(64)
            .map(|key| {
                let ua = agents.get(key).copied().unwrap_or_default();
                let a = enricher.agent(ua);
                [
                    Some(key.to_string()),
                    Some(ua.to_string()),
                    a.browser,
                    a.browser_version,
                    a.os,
                    a.os_version,
                    a.device_category,
                ]
            })
            .collect();
        rows
    }

    /// Insert the rows of new keys (existing rows are left alone), dimensions in a fixed
    /// order: date, product, location, agent.
    /// Returns the rows that were new, per table (date, product, location, agent).
    pub fn write(&self, tx: &mut Transaction<'_>, caches: &DimCaches) -> Result<Added> {
        let mut added = [0u64; 4];
        let mut countries = Map::default();
        if !self.dates.is_empty() {
            let n: i64 = tx
                .query_typed_one(
                    "SELECT streamer_add_dates($1::date[])",
                    &[(&self.dates, Type::DATE_ARRAY)],
                )
                .map_err(|e| Error::from_pg("writing dim_date", e))
                .and_then(|row| column(&row, 0, "streamer_add_dates()", "result"))?;
            added[0] = n.max(0) as u64;
        }
        if !self.products.is_empty() {
            let product = self.product_columns();
            // New keys only: an existing row is neither locked nor waited for here (see
            // `improve_products`).
            added[1] = tx
                .execute_typed(
                    "INSERT INTO dim_product (product_key, current_url, language_code, first_seen) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
                     ON CONFLICT (product_key) DO NOTHING",
                    &product_params(&product),
                )
                .map_err(|e| Error::from_pg("writing dim_product", e))?;
        }
        if !self.locations.is_empty() {
            let c = columns(&self.locations);
            let rows = tx
                .query_typed(
                    "INSERT INTO dim_location (ip_key, ip_address, country_code, country_name, \
                   region_name, city_name) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                   $5::text[], $6::text[]) \
                 ON CONFLICT (ip_key) DO NOTHING \
                 RETURNING ip_key",
                    &text_params(&c),
                )
                .map_err(|e| Error::from_pg("writing dim_location", e))?;
            added[2] = rows.len() as u64;
            // The rows inserted have this batch's countries; the others someone committed
            // before (another loader, a catalog, an earlier run): their countries are read.
            let mut ours: Map<&str, &[Option<String>; 6]> = self
                .locations
                .iter()
                .filter_map(|r| Some((r[0].as_deref()?, r)))
                .collect();
            for row in rows {
                let key: String = column(&row, 0, "dim_location", "ip_key")?;
                if let Some(r) = ours.remove(key.as_str()) {
                    if let Some(p) = hex_key_prefix(&key) {
                        countries.insert(p, caches.country(r[2].clone(), r[3].clone()));
                    }
                }
            }
            if !ours.is_empty() {
                let mut others: Vec<&str> = ours.into_keys().collect();
                others.sort_unstable();
                let rows = tx
                    .query_typed(
                        "SELECT ip_key, country_code, country_name FROM dim_location \
                         WHERE ip_key = ANY($1::text[])",
                        &[(&others, Type::TEXT_ARRAY)],
                    )
                    .map_err(|e| Error::from_pg("reading dim_location", e))?;
                for row in rows {
                    let key: String = column(&row, 0, "dim_location", "ip_key")?;
                    let code = column(&row, 1, "dim_location", "country_code")?;
                    let name = column(&row, 2, "dim_location", "country_name")?;
                    if let Some(p) = hex_key_prefix(&key) {
                        countries.insert(p, caches.country(code, name));
                    }
                }
            }
        }
        if !self.agents.is_empty() {
            let c = columns(&self.agents);
            added[3] = tx
                .execute_typed(
                    "INSERT INTO dim_user_agent (user_agent_key, user_agent, browser, \
                   browser_version, os, os_version, device_category) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                   $5::text[], $6::text[], $7::text[]) \
                 ON CONFLICT (user_agent_key) DO NOTHING",
                    &text_params(&c),
                )
                .map_err(|e| Error::from_pg("writing dim_user_agent", e))?;
        }
        Ok(Added {
            rows: added,
            countries,
        })
    }

    fn product_columns(&self) -> ProductColumns<'_> {
        let p = &self.products;
        (
            p.iter().map(|r| r.key.as_str()).collect(),
            p.iter().map(|r| r.url.as_deref()).collect(),
            p.iter().map(|r| r.language.as_deref()).collect(),
            p.iter().map(|r| r.first_seen).collect(),
        )
    }

    /// Give existing products this batch's URL where it was seen earlier (by time_stamp,
    /// then URL), unless a catalog set them. Run last in the transaction, just before the
    /// commit: a row is locked only when it really changes, and only until the commit, so
    /// loaders of other partitions seldom wait for each other here. Rows are locked in key
    /// order, so they never deadlock. (The UPDATE checks again: it reads the rows as of its
    /// start, and a row another loader changed meanwhile is re-read under that condition.)
    pub fn improve_products(&self, tx: &mut Transaction<'_>) -> Result<()> {
        if self.products.is_empty() {
            return Ok(());
        }
        let product = self.product_columns();
        tx.execute_typed(
            "WITH c AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
                          AS c(k, u, l, s) WHERE s IS NOT NULL), \
                  earlier AS (SELECT d.product_key FROM dim_product d JOIN c ON c.k = d.product_key \
                              WHERE NOT d.from_catalog \
                                AND (d.first_seen IS NULL \
                                     OR (c.s, c.u COLLATE \"C\") < (d.first_seen, d.current_url COLLATE \"C\")) \
                              ORDER BY d.product_key FOR UPDATE OF d) \
             UPDATE dim_product d SET current_url = c.u, language_code = c.l, first_seen = c.s \
             FROM c, earlier e \
             WHERE d.product_key = c.k AND e.product_key = c.k \
               AND NOT d.from_catalog \
               AND (d.first_seen IS NULL \
                    OR (c.s, c.u COLLATE \"C\") < (d.first_seen, d.current_url COLLATE \"C\"))",
            &product_params(&product),
        )
        .map_err(|e| Error::from_pg("updating dim_product URLs", e))?;
        Ok(())
    }

    /// After the commit: remember what is now known to exist (locations with their
    /// countries, through [`DimCaches::remember_countries`]). A product is only
    /// remembered once it has a URL, so a later event can still fill it in.
    pub fn remember(&self, caches: &DimCaches) {
        caches.dates.insert_all(self.dates.iter().map(|d| (*d, ())));
        caches
            .products
            .insert_all(self.products.iter().filter_map(|p| {
                let url = p.url.as_deref()?;
                Some((p.key.clone(), (p.first_seen?, url.to_string())))
            }));
        caches
            .agents
            .insert_all(self.agents.iter().filter_map(|r| Some((r[0].clone()?, ()))));
    }

    pub fn len(&self) -> usize {
        self.dates.len() + self.products.len() + self.locations.len() + self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`DimRows::write`] added: new rows per table (date, product, location, agent),
/// and the committed country of every location row it wrote, by ip_key prefix.
pub struct Added {
    pub rows: [u64; 4],
    pub countries: Map<u128, Country>,
}

/// Row-major fixed-width rows to column arrays for `unnest`.
/// Each column an array of text, typed (one round trip: `execute_typed` needs no prepare).
fn text_params<'a>(c: &'a [Vec<Option<&'a str>>]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    c.iter()
        .map(|col| (col as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
        .collect()
}

/// A product's columns as typed parameters: key, URL, language, first seen.
fn product_params<'a>(c: &'a ProductColumns<'a>) -> [(&'a (dyn ToSql + Sync), Type); 4] {
    [
        (&c.0, Type::TEXT_ARRAY),
        (&c.1, Type::TEXT_ARRAY),
        (&c.2, Type::TEXT_ARRAY),
        (&c.3, Type::INT8_ARRAY),
    ]
}

fn columns<const N: usize>(rows: &[[Option<String>; N]]) -> Vec<Vec<Option<&str>>> {
    (0..N)
        .map(|i| rows.iter().map(|r| r[i].as_deref()).collect())
        .collect()
}

//! The loader's own rollup counts: for the facts a batch inserted, the pending counts
//! fact_sales' insert trigger would append (`streamer_rollup_statements` in schema.sql, by
//! the same raw keys), computed here and appended in the batch's transaction, which tells
//! the trigger to skip its statements (`SET LOCAL streamer.rollups_counted = on`). The
//! trigger's four GROUP BYs over each COPY's transition table cost PostgreSQL some 20 ms per
//! batch of 5,000, a third of its time beyond the COPY itself, and in batch mode on the one
//! writer's path; counted here they cost under a millisecond. Every other writer is still
//! counted by the trigger, and the fold treats both alike. The tests check every rollup
//! against a recount of fact_sales after each load (`assert_rollups`).
//!
//! Store/country counts go by country, not by address: the country `dim_location` holds
//! for each address, which the batch's own transaction inserted or read
//! ([`super::dims::DimRows::write`]) or the location cache holds for the epoch the
//! transaction read under [`LOCATIONS_LOCK`] (so no catalog changes it before the commit).
//! An address known neither way is left to the fold to resolve, as the trigger's are.

use chrono::{NaiveDate, Timelike};
use postgres::{SimpleQueryMessage, Transaction};

#[cfg(test)]
use super::dims::LOCATIONS_LOCK;
use super::dims::{Country, DimCaches};
use crate::error::{Error, Result};
use crate::hash::Map;
use crate::transform::Fact;

/// A loader transaction's first statements: tell the trigger that this transaction counts
/// its own inserts (reset at its end), give its statements 64 MB of `work_mem` (the insert
/// trigger's transition table holds every row a COPY inserts; at the default 4 MB a batch of
/// 10,000 spilled to a temporary file, 120 MB written and read back per 200k events), plan
/// without parallel workers (a lookup of a batch's 10,000 keys, made while another process
/// writes ours, was planned parallel at times, and each worker is a process started for it;
/// the loaders run side by side anyway), take
/// [`LOCATIONS_LOCK`] shared, then read the location epoch (a statement of its own, so its
/// snapshot follows the lock).
const BEGIN: &str = "SET LOCAL streamer.rollups_counted = on; SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0; \
                     SELECT pg_advisory_xact_lock_shared(91621623091011); \
                     SELECT coalesce(max(epoch), 0) FROM streamer_location_epoch";

/// Run [`BEGIN`] in a loader's transaction; returns the location epoch it read.
pub(super) fn begin(tx: &mut Transaction<'_>) -> Result<i64> {
    let pg = |e| Error::from_pg("beginning the batch transaction", e);
    let messages = tx.simple_query(BEGIN).map_err(pg)?;
    let epoch = messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).and_then(|v| v.parse::<i64>().ok()),
        _ => None,
    });
    epoch.ok_or_else(|| {
        Error::fatal(
            "beginning the batch transaction",
            "no row read from streamer_location_epoch",
        )
    })
}

/// The four pending rows of one batch (one element per key), as the trigger builds them.
#[derive(Default)]
struct Counts<'a> {
    product_hour: Map<(NaiveDate, i16, &'a str), i64>,
    /// by (day, store, ip_key prefix): the views, and the ip_key
    store_country: Map<(NaiveDate, Option<&'a str>, Option<u128>), StoreViews<'a>>,
    referrer: Map<(NaiveDate, &'a str), i64>,
    browser_hour: Map<(NaiveDate, i16, Option<&'a str>), i64>,
}

impl<'a> Counts<'a> {
    fn of(facts: &[&'a Fact]) -> Self {
        let mut c = Counts::default();
        for f in facts {
            let (day, hour) = (f.full_date, f.full_time.hour() as i16);
            if let Some(product) = f.product_key() {
                *c.product_hour.entry((day, hour, product)).or_default() += 1;
            }
            let e = c
                .store_country
                .entry((day, f.store_id(), f.ip_key_prefix()))
                .or_insert_with(|| (0, f.ip_key()));
            e.0 += 1;
            if let Some(referrer) = f.referrer_url() {
                *c.referrer.entry((day, referrer)).or_default() += 1;
            }
            *c.browser_hour
                .entry((day, hour, f.user_agent_key()))
                .or_default() += 1;
        }
        c
    }
}

/// A store/country count by address: the views, and the address's ip_key.
type StoreViews<'a> = (i64, Option<&'a str>);

/// Columns of a pending row: one array per key part, then the views.
fn split3<A: Copy, B: Copy, C: Copy>(
    m: &Map<(A, B, C), i64>,
) -> (Vec<A>, Vec<B>, Vec<C>, Vec<i64>) {
    let mut out = (
        Vec::with_capacity(m.len()),
        Vec::with_capacity(m.len()),
        Vec::with_capacity(m.len()),
        Vec::with_capacity(m.len()),
    );
    for (&(a, b, c), &n) in m {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(n);
    }
    out
}

/// A pending row's arrays: three key parts and the views.
type Columns<A, B, C> = (Vec<A>, Vec<B>, Vec<C>, Vec<i64>);

/// The four pending rows of a batch's inserted facts, as arrays ready to bind.
pub(super) struct Pending<'a> {
    product_hour: Columns<NaiveDate, i16, &'a str>,
    /// by (day, store, ip_key prefix): resolved to countries when appended
    store_country: Map<(NaiveDate, Option<&'a str>, Option<u128>), StoreViews<'a>>,
    referrer: (Vec<NaiveDate>, Vec<&'a str>, Vec<i64>),
    browser_hour: Columns<NaiveDate, i16, Option<&'a str>>,
}

impl<'a> Pending<'a> {
    /// Count `inserted` (facts new to fact_sales, written in this transaction after
    /// [`COUNTED_HERE`]).
    pub(super) fn of(inserted: &[&'a Fact]) -> Self {
        let c = Counts::of(inserted);
        let mut referrer = (Vec::new(), Vec::new(), Vec::new());
        for (&(d, u), &n) in &c.referrer {
            referrer.0.push(d);
            referrer.1.push(u);
            referrer.2.push(n);
        }
        Pending {
            product_hour: split3(&c.product_hour),
            store_country: c.store_country,
            referrer,
            browser_hour: split3(&c.browser_hour),
        }
    }

    /// The store/country counts by country where it is known (`written`: the countries
    /// of the location rows this transaction wrote; then the cache's, for `epoch`), by
    /// address for the fold to resolve where not.
    fn store_countries(
        &self,
        epoch: i64,
        caches: &DimCaches,
        written: &Map<u128, Country>,
    ) -> StoreCountries<'a> {
        let cached = caches.countries(
            epoch,
            self.store_country
                .keys()
                .filter_map(|k| k.2)
                .filter(|ip| !written.contains_key(ip)),
        );
        let mut by_country: Map<(NaiveDate, Option<&'a str>, Option<Interned<'_>>), i64> =
            Map::default();
        let mut by_address = Vec::new();
        for (&(day, store, prefix), &(n, ip)) in &self.store_country {
            let country = match (prefix, ip) {
                (Some(p), Some(ip)) => match written.get(&p).or_else(|| cached.get(&p)) {
                    Some(c) => Some(Interned(c)),
                    None => {
                        by_address.push((day, store, ip, n));
                        continue;
                    }
                },
                _ => None,
            };
            *by_country.entry((day, store, country)).or_default() += n;
        }
        let mut out = StoreCountries::default();
        let mut push = |day, store, ip, views, (code, name)| {
            out.date.push(day);
            out.store.push(store);
            out.ip.push(ip);
            out.views.push(views);
            out.code.push(code);
            out.name.push(name);
        };
        for ((day, store, country), n) in by_country {
            let known = country.map(|c| (**c.0).clone()).unwrap_or_default();
            push(day, store, None, n, known);
        }
        for (day, store, ip, n) in by_address {
            push(day, store, Some(ip), n, (None, None));
        }
        out
    }

    /// Append them to the pending tables (nothing for a batch that inserted nothing), in
    /// the transaction [`begin`] began, which read `epoch`.
    pub(super) fn append(
        &self,
        tx: &mut Transaction<'_>,
        epoch: i64,
        caches: &DimCaches,
        written: &Map<u128, Country>,
    ) -> Result<()> {
        if self.store_country.is_empty() {
            return Ok(());
        }
        let s = self.store_countries(epoch, caches, written);
        let (p, r, b) = (&self.product_hour, &self.referrer, &self.browser_hour);
        // NULL arrays where no element has a value (unnest pads them with NULLs)
        let ip = s.ip.iter().any(Option::is_some).then_some(&s.ip);
        let code = s.ip.iter().any(Option::is_none).then_some(&s.code);
        let name = code.map(|_| &s.name);
        use postgres::types::Type as T;
        let (date, int2, text, int8) = (T::DATE_ARRAY, T::INT2_ARRAY, T::TEXT_ARRAY, T::INT8_ARRAY);
        tx.execute_typed(
            "WITH p AS (INSERT INTO rollup_product_hour_pending \
                        SELECT $1, $2, $3, $4 WHERE cardinality($4::bigint[]) > 0), \
                  s AS (INSERT INTO rollup_store_country_day_pending \
                          (full_date, store_id, ip_key, views, country_code, country_name) \
                        SELECT $5, $6, $7, $8, $16, $17 WHERE cardinality($8::bigint[]) > 0), \
                  r AS (INSERT INTO rollup_referrer_day_pending \
                        SELECT $9, $10, $11 WHERE cardinality($11::bigint[]) > 0) \
             INSERT INTO rollup_browser_hour_pending \
             SELECT $12, $13, $14, $15 WHERE cardinality($15::bigint[]) > 0",
            &[
                (&p.0, date.clone()),
                (&p.1, int2.clone()),
                (&p.2, text.clone()),
                (&p.3, int8.clone()),
                (&s.date, date.clone()),
                (&s.store, text.clone()),
                (&ip, text.clone()),
                (&s.views, int8.clone()),
                (&r.0, date.clone()),
                (&r.1, text.clone()),
                (&r.2, int8.clone()),
                (&b.0, date),
                (&b.1, int2),
                (&b.2, text.clone()),
                (&b.3, int8),
                (&code, text.clone()),
                (&name, text),
            ],
        )
        .map_err(|e| Error::from_pg("appending the batch's rollup counts", e))?;
        Ok(())
    }
}

/// A country compared and hashed by its allocation: countries are interned
/// ([`DimCaches::country`]), and two equal ones that are not (the interner started
/// again) only make two elements of one key, which the fold and the reports sum.
#[derive(Clone, Copy)]
struct Interned<'c>(&'c Country);

impl PartialEq for Interned<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(self.0, other.0)
    }
}

impl Eq for Interned<'_> {}

impl std::hash::Hash for Interned<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::sync::Arc::as_ptr(self.0).hash(state);
    }
}

/// The store/country pending row's arrays: an element has an ip_key (for the fold to
/// resolve) or its country.
#[derive(Default)]
struct StoreCountries<'a> {
    date: Vec<NaiveDate>,
    store: Vec<Option<&'a str>>,
    ip: Vec<Option<&'a str>>,
    views: Vec<i64>,
    code: Vec<Option<String>>,
    name: Vec<Option<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::transform;

    fn fact(json: &str) -> Fact {
        transform(Some(json.as_bytes())).expect("a valid event")
    }

    #[test]
    fn the_transaction_takes_the_locations_lock() {
        let call = format!("pg_advisory_xact_lock_shared({LOCATIONS_LOCK})");
        assert!(BEGIN.contains(&call), "{BEGIN}");
    }

    #[test]
    fn counts_are_by_the_triggers_keys() {
        let a = fact(
            r#"{"id":"a","time_stamp":1591266092,"product_id":"1","store_id":"5","ip":"1.2.3.4","referrer_url":"https://www.google.com/x"}"#,
        );
        let b = fact(
            r#"{"id":"b","time_stamp":1591266093,"product_id":"1","store_id":"5","ip":"1.2.3.4"}"#,
        );
        let c = fact(r#"{"id":"c","time_stamp":1591269692}"#);
        let counts = Counts::of(&[&a, &b, &c]);
        let day = a.full_date;
        assert_eq!(counts.product_hour.len(), 1, "c has no product");
        assert_eq!(counts.product_hour[&(day, 10, "1")], 2);
        assert_eq!(
            counts.store_country[&(day, Some("5"), a.ip_key_prefix())],
            (2, a.ip_key())
        );
        assert_eq!(counts.store_country[&(day, None, None)], (1, None));
        assert_eq!(counts.referrer.len(), 1, "only a has a referrer");
        assert_eq!(counts.browser_hour[&(day, 10, None)], 2);
        assert_eq!(counts.browser_hour[&(day, 11, None)], 1);
    }
}

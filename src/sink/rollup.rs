//! The report rollups for the facts a batch inserted: counted here per rollup key, then
//! added by one statement (four upserts from array parameters, joining the dimension rows
//! written earlier in the transaction for browser/OS; countries as dim_location holds
//! them come resolved, see `DimRows::countries`), in the loader's own shard. Promises: every inserted fact is counted exactly once, with the same keys as the
//! `fact_sales` triggers of schema.sql would use (the insert trigger is told to leave this
//! writer's rows alone); loaders of different partitions never share a rollup row.

use chrono::{NaiveDate, Timelike};
use postgres::Transaction;

use crate::error::{Error, Result};
use crate::hash::Map;
use crate::sink::dims::{Countries, Country};
use crate::transform::Fact;

/// Tells fact_sales' insert trigger that this transaction counts its own rows.
pub const BY_WRITER: &str = "SET LOCAL streamer.rollups = 'by-writer'";

/// The rollup shard of a loader of `partition`: 1-32 (0 is the triggers').
pub fn shard(partition: i32) -> i16 {
    (partition.rem_euclid(32) + 1) as i16
}

/// The same keys as streamer_rollup_statements in schema.sql.
const ADD: &str = "\
WITH p AS (
    INSERT INTO rollup_product_hour AS r (full_date, hour, product_key, shard, views)
    SELECT u.d, u.h, u.k, $1, u.n
    FROM unnest($2::date[], $3::int2[], $4::text[], $5::int8[]) AS u(d, h, k, n)
    ORDER BY 1, 2, 3
    ON CONFLICT (full_date, hour, product_key, shard) DO UPDATE SET views = r.views + EXCLUDED.views
), s AS (
    INSERT INTO rollup_store_country_day AS r
        (full_date, store_id, country_code, country_name, shard, views)
    SELECT u.d, u.s, u.c, min(u.cn), $1, sum(u.n)::bigint
    FROM unnest($6::date[], $7::text[], $8::text[], $9::text[], $10::int8[]) AS u(d, s, c, cn, n)
    GROUP BY 1, 2, 3
    ORDER BY 1, u.s IS NULL, coalesce(u.s, ''), u.c IS NULL, coalesce(u.c, '')
    ON CONFLICT (full_date, (store_id IS NULL), coalesce(store_id, ''),
                 (country_code IS NULL), coalesce(country_code, ''), shard)
    DO UPDATE SET views = r.views + EXCLUDED.views,
                  country_name = least(r.country_name, EXCLUDED.country_name)
), f AS (
    INSERT INTO rollup_referrer_day AS r (full_date, referrer_url, shard, views)
    SELECT u.d, u.f, $1, u.n
    FROM unnest($11::date[], $12::text[], $13::int8[]) AS u(d, f, n)
    ORDER BY 1, 2
    ON CONFLICT (full_date, referrer_url, shard) DO UPDATE SET views = r.views + EXCLUDED.views
), b AS (
    INSERT INTO rollup_browser_hour AS r (full_date, hour, browser, os, shard, views)
    SELECT u.d, u.h, coalesce(a.browser, 'unknown'), coalesce(a.os, 'unknown'), $1,
           sum(u.n)::bigint
    FROM unnest($14::date[], $15::int2[], $16::text[], $17::int8[]) AS u(d, h, ua, n)
    LEFT JOIN dim_user_agent a ON a.user_agent_key = u.ua
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (full_date, hour, browser, os, shard) DO UPDATE SET views = r.views + EXCLUDED.views
)
SELECT 1";

/// Counts per key, as parallel columns for array parameters (in no particular order: each
/// upsert sorts its rows).
struct Columns<A, B, C> {
    a: Vec<A>,
    b: Vec<B>,
    c: Vec<C>,
    n: Vec<i64>,
}

fn columns<A: Clone, B: Clone, C: Clone>(counts: Map<(A, B, C), i64>) -> Columns<A, B, C> {
    let mut out = Columns {
        a: Vec::with_capacity(counts.len()),
        b: Vec::with_capacity(counts.len()),
        c: Vec::with_capacity(counts.len()),
        n: Vec::with_capacity(counts.len()),
    };
    for ((a, b, c), n) in counts {
        out.a.push(a);
        out.b.push(b);
        out.c.push(c);
        out.n.push(n);
    }
    out
}

/// A store-country key: (day, store, country code, country name), the name as in
/// dim_location (the statement keeps the least per code, as the triggers do).
type Visitors<'a> = (NaiveDate, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// Count `facts` (rows this transaction inserted into fact_sales) in the rollups, in
/// `shard`, with the `countries` of their addresses.
pub fn add(
    tx: &mut Transaction<'_>,
    facts: &[&Fact],
    countries: &Countries<'_>,
    shard: i16,
) -> Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    type Day = NaiveDate;
    let none: Country = (None, None);
    let mut products: Map<(Day, i16, &str), i64> = Map::default();
    let mut visitors: Map<Visitors, i64> = Map::default();
    let mut referrers: Map<(Day, &str, ()), i64> = Map::default();
    let mut agents: Map<(Day, i16, Option<&str>), i64> = Map::default();
    for f in facts {
        let (day, hour) = (f.full_date, f.full_time.hour() as i16);
        if let Some(p) = f.product_key() {
            *products.entry((day, hour, p)).or_default() += 1;
        }
        let (code, name) = f
            .ip_key()
            .and_then(|k| countries.by_key.get(k))
            .unwrap_or(&none);
        *visitors
            .entry((day, f.store_id(), code.as_deref(), name.as_deref()))
            .or_default() += 1;
        if let Some(r) = f.referrer_url() {
            *referrers.entry((day, r, ())).or_default() += 1;
        }
        *agents.entry((day, hour, f.user_agent_key())).or_default() += 1;
    }
    let mut v = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((day, store, code, name), n) in visitors {
        v.0.push(day);
        v.1.push(store);
        v.2.push(code);
        v.3.push(name);
        v.4.push(n);
    }
    let (p, r, a) = (columns(products), columns(referrers), columns(agents));
    tx.execute(
        ADD,
        &[
            &shard, &p.a, &p.b, &p.c, &p.n, &v.0, &v.1, &v.2, &v.3, &v.4, &r.a, &r.b, &r.n, &a.a,
            &a.b, &a.c, &a.n,
        ],
    )
    .map_err(|e| Error::from_pg("adding the batch to the report rollups", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_one_to_thirty_two() {
        assert_eq!(shard(0), 1);
        assert_eq!(shard(31), 32);
        assert_eq!(shard(32), 1);
    }
}

//! The report rollups' counts of the facts a batch inserted: counted here per rollup key,
//! then appended to the pending tables by one statement in the batch's transaction (four
//! inserts from array parameters; countries as dim_location holds them come resolved, see
//! `DimRows::countries`; browser and OS are looked up by agent key when folded, see
//! [`super::fold`]). Promises: every inserted fact is counted exactly once, with the same
//! keys as the `fact_sales` triggers of schema.sql would use (the insert trigger is told to
//! leave this writer's rows alone); a loader never waits on a rollup row.

use chrono::{NaiveDate, Timelike};
use postgres::Transaction;

use crate::error::{Error, Result};
use crate::hash::Map;
use crate::sink::dims::{Countries, Country};
use crate::transform::Fact;

/// Tells fact_sales' insert trigger that this transaction counts its own rows.
pub const BY_WRITER: &str = "SET LOCAL streamer.rollups = 'by-writer'";

/// The same keys as streamer_rollup_statements in schema.sql; appends only (no index on
/// the pending tables, no upsert).
const ADD: &str = "\
WITH p AS (
    INSERT INTO rollup_product_hour_pending (full_date, hour, product_key, views)
    SELECT * FROM unnest($1::date[], $2::int2[], $3::text[], $4::int8[])
), s AS (
    INSERT INTO rollup_store_country_day_pending
        (full_date, store_id, country_code, country_name, views)
    SELECT * FROM unnest($5::date[], $6::text[], $7::text[], $8::text[], $9::int8[])
), f AS (
    INSERT INTO rollup_referrer_day_pending (full_date, referrer_url, views)
    SELECT * FROM unnest($10::date[], $11::text[], $12::int8[])
), b AS (
    INSERT INTO rollup_browser_hour_pending (full_date, hour, user_agent_key, views)
    SELECT * FROM unnest($13::date[], $14::int2[], $15::text[], $16::int8[])
)
SELECT 1";

/// Counts per key, as parallel columns for array parameters (in no particular order).
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

/// Count `facts` (rows this transaction inserted into fact_sales) in the pending rollup
/// tables, with the `countries` of their addresses.
pub fn add(tx: &mut Transaction<'_>, facts: &[&Fact], countries: &Countries<'_>) -> Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    type Day = NaiveDate;
    let none: Country = (None, None);
    let mut products: Map<(Day, i16, &str), i64> = Map::default();
    let mut visitors: Map<Visitors<'_>, i64> = Map::default();
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
            &p.a, &p.b, &p.c, &p.n, &v.0, &v.1, &v.2, &v.3, &v.4, &r.a, &r.b, &r.n, &a.a, &a.b,
            &a.c, &a.n,
        ],
    )
    .map_err(|e| Error::from_pg("adding the batch to the report rollups", e))?;
    Ok(())
}

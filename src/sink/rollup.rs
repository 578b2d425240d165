//! The loader's own rollup counts: for the facts a batch inserted, the pending counts
//! fact_sales' insert trigger would append (`streamer_rollup_statements` in schema.sql, by
//! the same raw keys), computed here and appended in the batch's transaction, which tells
//! the trigger to skip its statements (`SET LOCAL streamer.rollups_counted = on`). The
//! trigger's four GROUP BYs over each COPY's transition table cost PostgreSQL some 20 ms per
//! batch of 5,000, a third of its time beyond the COPY itself, and in batch mode on the one
//! writer's path; counted here they cost under a millisecond. Every other writer is still
//! counted by the trigger, and the fold treats both alike. The tests check every rollup
//! against a recount of fact_sales after each load (`assert_rollups`).

use chrono::{NaiveDate, Timelike};
use postgres::Transaction;

use crate::error::{Error, Result};
use crate::hash::Map;
use crate::transform::Fact;

/// Tells the trigger that this transaction counts its own inserts; reset at its end.
pub(super) const COUNTED_HERE: &str = "SET LOCAL streamer.rollups_counted = on";

/// The four pending rows of one batch (one element per key), as the trigger builds them.
#[derive(Default)]
struct Counts<'a> {
    product_hour: Map<(NaiveDate, i16, &'a str), i64>,
    store_country: Map<(NaiveDate, Option<&'a str>, Option<&'a str>), i64>,
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
            *c.store_country
                .entry((day, f.store_id(), f.ip_key()))
                .or_default() += 1;
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
    store_country: Columns<NaiveDate, Option<&'a str>, Option<&'a str>>,
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
            store_country: split3(&c.store_country),
            referrer,
            browser_hour: split3(&c.browser_hour),
        }
    }

    /// Append them to the pending tables (nothing for a batch that inserted nothing).
    pub(super) fn append(&self, tx: &mut Transaction<'_>) -> Result<()> {
        let (p, s, r, b) = (
            &self.product_hour,
            &self.store_country,
            &self.referrer,
            &self.browser_hour,
        );
        if s.3.is_empty() {
            return Ok(());
        }
        use postgres::types::Type as T;
        let (date, int2, text, int8) = (T::DATE_ARRAY, T::INT2_ARRAY, T::TEXT_ARRAY, T::INT8_ARRAY);
        tx.execute_typed(
            "WITH p AS (INSERT INTO rollup_product_hour_pending \
                        SELECT $1, $2, $3, $4 WHERE cardinality($4::bigint[]) > 0), \
                  s AS (INSERT INTO rollup_store_country_day_pending \
                        SELECT $5, $6, $7, $8 WHERE cardinality($8::bigint[]) > 0), \
                  r AS (INSERT INTO rollup_referrer_day_pending \
                        SELECT $9, $10, $11 WHERE cardinality($11::bigint[]) > 0) \
             INSERT INTO rollup_browser_hour_pending \
             SELECT $12, $13, $14, $15 WHERE cardinality($15::bigint[]) > 0",
            &[
                (&p.0, date.clone()),
                (&p.1, int2.clone()),
                (&p.2, text.clone()),
                (&p.3, int8.clone()),
                (&s.0, date.clone()),
                (&s.1, text.clone()),
                (&s.2, text.clone()),
                (&s.3, int8.clone()),
                (&r.0, date.clone()),
                (&r.1, text.clone()),
                (&r.2, int8.clone()),
                (&b.0, date),
                (&b.1, int2),
                (&b.2, text),
                (&b.3, int8),
            ],
        )
        .map_err(|e| Error::from_pg("appending the batch's rollup counts", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::transform;

    fn fact(json: &str) -> Fact {
        transform(Some(json.as_bytes())).expect("a valid event")
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
        assert_eq!(counts.store_country[&(day, Some("5"), a.ip_key())], 2);
        assert_eq!(counts.store_country[&(day, None, None)], 1);
        assert_eq!(counts.referrer.len(), 1, "only a has a referrer");
        assert_eq!(counts.browser_hour[&(day, 10, None)], 2);
        assert_eq!(counts.browser_hour[&(day, 11, None)], 1);
    }
}

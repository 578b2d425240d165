//! Binary COPY of fact rows and dead letters. Facts go, in key order, straight into `fact_sales` under a
//! savepoint, minus the keys found there already (looked up only for keys this process may
//! have committed: [`RecentKeys`]); when a key is there anyway (committed before a restart or
//! by another process), the batch falls back to a staging table and
//! `INSERT ... ON CONFLICT DO NOTHING`. Either way the first row written wins.

use std::collections::HashSet;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Transaction;

use super::recent::RecentKeys;
use crate::error::{column, Error, Result};
use crate::pipeline::DeadLetter;
use crate::transform::{Col, Fact};

const FACT_COLUMNS: &str = "sales_key, event_id, doc_id, time_stamp, full_date, full_time, \
    ip_key, user_agent_key, product_key, store_id, local_time, current_url, referrer_url, \
    email_address, resolution, user_id_db, device_id, api_version, show_recommendation, \
    recommendation, utm_source, utm_medium, collection, \"option\"";

/// The text columns of [`FACT_COLUMNS`] in order (the three after the third are the
/// times, written from the fact's own fields).
const FACT_TEXT: [Col; 21] = [
    Col::SalesKey,
    Col::EventId,
    Col::DocId,
    Col::IpKey,
    Col::UserAgentKey,
    Col::ProductKey,
    Col::StoreId,
    Col::LocalTime,
    Col::CurrentUrl,
    Col::ReferrerUrl,
    Col::EmailAddress,
    Col::Resolution,
    Col::UserIdDb,
    Col::DeviceId,
    Col::ApiVersion,
    Col::ShowRecommendation,
    Col::Recommendation,
    Col::UtmSource,
    Col::UtmMedium,
    Col::Collection,
    Col::Option,
];

fn fact_types() -> Vec<Type> {
    let mut t = vec![
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::DATE,
        Type::TIME,
    ];
    t.extend(std::iter::repeat_n(Type::TEXT, 18));
    t
}

fn copy_facts<'a>(
    tx: &mut Transaction<'_>,
    table: &str,
    facts: impl IntoIterator<Item = &'a Fact>,
) -> Result<(), postgres::Error> {
    let sink = tx.copy_in(&format!("COPY {table} ({FACT_COLUMNS}) FROM STDIN BINARY"))?;
    let types = fact_types();
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for f in facts {
        let text = FACT_TEXT.map(|c| f.get(c));
        let row: [&(dyn ToSql + Sync); 24] = [
            &text[0],
            &text[1],
            &text[2],
            &f.time_stamp,
            &f.full_date,
            &f.full_time,
            &text[3],
            &text[4],
            &text[5],
            &text[6],
            &text[7],
            &text[8],
            &text[9],
            &text[10],
            &text[11],
            &text[12],
            &text[13],
            &text[14],
            &text[15],
            &text[16],
            &text[17],
            &text[18],
            &text[19],
            &text[20],
        ];
        w.write(&row)?;
    }
    w.finish()?;
    Ok(())
}

/// Create a temporary table unless this session has it (no NOTICE, unlike IF NOT EXISTS).
fn ensure_temp_table(tx: &mut Transaction<'_>, name: &str, definition: &str) -> Result<()> {
    tx.batch_execute(&format!(
        "DO $$ BEGIN IF to_regclass('pg_temp.{name}') IS NULL THEN \
         CREATE TEMP TABLE {name} {definition} ON COMMIT DELETE ROWS; END IF; END $$"
    ))
    .map_err(|e| Error::from_pg(format!("creating {name}"), e))
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Write the facts (distinct keys) but those `held` by another open batch of this process
/// (see `in_flight.rs`); returns the ones that were new, in key order, and whether the
/// staging path was taken. Rows go in key order,
/// so two processes writing overlapping keys take their locks in one order: one waits for
/// the other instead of both deadlocking.
pub fn write_facts<'a>(
    tx: &mut Transaction<'_>,
    facts: &'a [Fact],
    recent: &RecentKeys,
    held: &HashSet<&str>,
) -> Result<(Vec<&'a Fact>, bool)> {
    let mut facts: Vec<&'a Fact> = facts
        .iter()
        .filter(|f| !held.contains(f.sales_key()))
        .collect();
    if facts.is_empty() {
        return Ok((Vec::new(), false));
    }
    facts.sort_unstable_by(|a, b| a.sales_key().cmp(b.sales_key()));
    let ctx = "writing fact_sales";
    let maybe = recent.maybe_seen(facts.iter().map(|f| f.sales_key()));
    let stored: HashSet<String> = if maybe.is_empty() {
        HashSet::new()
    } else {
        tx.query(
            "SELECT sales_key FROM fact_sales WHERE sales_key = ANY($1)",
            &[&maybe],
        )
        .map_err(|e| Error::from_pg("looking up recently written fact_sales keys", e))?
        .iter()
        .map(|r| column(r, 0, "fact_sales", "sales_key"))
        .collect::<Result<_>>()?
    };
    let fresh: Vec<&Fact> = facts
        .iter()
        .copied()
        .filter(|f| !stored.contains(f.sales_key()))
        .collect();
    tx.batch_execute("SAVEPOINT facts_direct")
        .map_err(|e| Error::from_pg(ctx, e))?;
    match copy_facts(tx, "fact_sales", fresh.iter().copied()) {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT facts_direct")
                .map_err(|e| Error::from_pg(ctx, e))?;
            return Ok((fresh, false));
        }
        Err(e) if is_unique_violation(&e) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT facts_direct")
                .map_err(|e| Error::from_pg(ctx, e))?;
        }
        Err(e) => return Err(Error::from_pg(ctx, e)),
    }
    log::debug!(
        "{} facts: some keys already stored, using the staging path",
        facts.len()
    );
    ensure_temp_table(
        tx,
        "stage_fact_sales",
        "(LIKE fact_sales INCLUDING DEFAULTS)",
    )?;
    copy_facts(tx, "stage_fact_sales", facts.iter().copied())
        .map_err(|e| Error::from_pg(ctx, e))?;
    let inserted: HashSet<String> = tx
        .query(
            &format!(
                "INSERT INTO fact_sales ({FACT_COLUMNS}) SELECT {FACT_COLUMNS} \
                 FROM stage_fact_sales ORDER BY sales_key \
                 ON CONFLICT (sales_key) DO NOTHING RETURNING sales_key"
            ),
            &[],
        )
        .map_err(|e| Error::from_pg(ctx, e))?
        .iter()
        .map(|r| column(r, 0, "fact_sales", "sales_key"))
        .collect::<Result<_>>()?;
    Ok((
        facts
            .into_iter()
            .filter(|f| inserted.contains(f.sales_key()))
            .collect(),
        true,
    ))
}

/// Append dead letters (the batch's offsets are fenced, so they are never written twice).
/// Should PostgreSQL refuse a reason's text (a database whose encoding cannot hold a
/// character an excerpt quotes: SQLSTATE 22P05), the reasons are written again with every
/// non-ASCII character escaped, so a dead letter is never lost to its own reason.
pub fn write_dead_letters(tx: &mut Transaction<'_>, dead: &[DeadLetter]) -> Result<()> {
    if dead.is_empty() {
        return Ok(());
    }
    let ctx = "writing dead_letter";
    let run = |tx: &mut Transaction<'_>, ascii: bool| -> Result<(), postgres::Error> {
        let sink = tx.copy_in(
            "COPY dead_letter (topic, partition, kafka_offset, reason, payload) FROM STDIN BINARY",
        )?;
        let types = [Type::TEXT, Type::INT4, Type::INT8, Type::TEXT, Type::BYTEA];
        let mut w = BinaryCopyInWriter::new(sink, &types);
        for d in dead {
            let topic: &str = d.tp.topic();
            let mut reason = d.rejection.text();
            if ascii {
                reason = ascii_only(&reason);
            }
            let payload: Option<&[u8]> = d.payload.as_deref();
            w.write(&[&topic, &d.tp.partition, &d.offset, &reason, &payload])?;
        }
        w.finish()?;
        Ok(())
    };
    tx.batch_execute("SAVEPOINT dead_letters")
        .map_err(|e| Error::from_pg(ctx, e))?;
    match run(tx, false).map_err(|e| Error::from_pg(ctx, e)) {
        Ok(()) => {}
        Err(e) if e.is_data_error() => {
            log::warn!("{e}; writing the dead letters' reasons in ASCII");
            tx.batch_execute("ROLLBACK TO SAVEPOINT dead_letters")
                .map_err(|e| Error::from_pg(ctx, e))?;
            run(tx, true).map_err(|e| Error::from_pg(ctx, e))?;
        }
        Err(e) => return Err(e),
    }
    tx.batch_execute("RELEASE SAVEPOINT dead_letters")
        .map_err(|e| Error::from_pg(ctx, e))
}

/// `text` with every non-ASCII character written as `\u{...}`.
fn ascii_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

//! The report rollups for the facts a batch inserted: the rows go by binary COPY into a
//! temporary table and `streamer_rollup_add` (schema.sql) counts them, after the batch's
//! dimension rows are written, in the batch's transaction. Promises: every inserted fact is
//! counted exactly once (the insert trigger is told to leave this writer's rows alone).

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Transaction;

use crate::error::{Error, Result};
use crate::transform::Fact;

/// Tells fact_sales' insert trigger that this transaction counts its own rows.
pub const BY_WRITER: &str = "SET LOCAL streamer.rollups = 'by-writer'";

/// Create a temporary table unless this session has it (no NOTICE, unlike IF NOT EXISTS).
pub fn ensure_temp_table(tx: &mut Transaction<'_>, name: &str, definition: &str) -> Result<()> {
    tx.batch_execute(&format!(
        "DO $$ BEGIN IF to_regclass('pg_temp.{name}') IS NULL THEN \
         CREATE TEMP TABLE {name} {definition} ON COMMIT DELETE ROWS; END IF; END $$"
    ))
    .map_err(|e| Error::from_pg(format!("creating {name}"), e))
}

/// The rollup shard of a loader of `partition`: 1-32 (0 is the triggers').
pub fn shard(partition: i32) -> i16 {
    (partition.rem_euclid(32) + 1) as i16
}

/// Count `facts` (rows this transaction inserted into fact_sales) in the rollups, in
/// `shard`.
pub fn add(tx: &mut Transaction<'_>, facts: &[&Fact], shard: i16) -> Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    ensure_temp_table(
        tx,
        "stage_rollup",
        "(full_date date, full_time time, product_key text, store_id text, ip_key text, \
         user_agent_key text, referrer_url text)",
    )?;
    let copy = |tx: &mut Transaction<'_>| -> Result<(), postgres::Error> {
        let sink = tx.copy_in(
            "COPY stage_rollup (full_date, full_time, product_key, store_id, ip_key, \
             user_agent_key, referrer_url) FROM STDIN BINARY",
        )?;
        let types = [
            Type::DATE,
            Type::TIME,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ];
        let mut w = BinaryCopyInWriter::new(sink, &types);
        for f in facts {
            let row: [&(dyn ToSql + Sync); 7] = [
                &f.full_date,
                &f.full_time,
                &f.product_key,
                &f.store_id,
                &f.ip_key,
                &f.user_agent_key,
                &f.referrer_url,
            ];
            w.write(&row)?;
        }
        w.finish()?;
        Ok(())
    };
    copy(tx).map_err(|e| Error::from_pg("copying the batch into stage_rollup", e))?;
    tx.execute("SELECT streamer_rollup_add('stage_rollup', $1)", &[&shard])
        .map_err(|e| Error::from_pg("adding the batch to the report rollups", e))?;
    Ok(())
}

//! Warmup: apply schema.sql (and check the columns the loaders COPY into), fill dim_date 2010-2030, load the catalog CSVs and rebuild the
//! report rollups when they miss facts or a catalog moved an address, idempotently
//! and under an advisory lock so that several processes starting at once do not race.

use std::time::{Duration, Instant};

use crate::config::CatalogConfig;
use crate::error::{column, retry, Error, Result};
use crate::sink::dims::LOCATIONS_LOCK;
use crate::sink::PgPool;

/// The DDL, compiled into the binary so a container needs no extra file.
pub const SCHEMA: &str = include_str!("../schema.sql");

/// Arbitrary constant: the advisory lock taken while the schema is applied.
const LOCK_KEY: i64 = 0x5354_5245_414d; // "STREAM"

/// Apply the schema, retrying while PostgreSQL is unreachable within `budget`.
pub fn run(pool: &PgPool, catalog: &CatalogConfig, budget: Duration) -> Result<()> {
    let started = Instant::now();
    retry("warmup", budget, |_| apply(pool, catalog), |_| {})?;
    log::info!("warmup done in {} ms", started.elapsed().as_millis());
    Ok(())
}

fn apply(pool: &PgPool, catalog: &CatalogConfig) -> Result<()> {
    let mut conn = pool.get("warmup: connecting to PostgreSQL")?;
    let mut tx = conn
        .transaction()
        .map_err(|e| Error::from_pg("warmup: beginning", e))?;
    // Warmup may rebuild the rollups from every fact: the loaders' statement timeout
    // ([postgres] statement_timeout_ms) is not for it.
    tx.batch_execute("SET LOCAL statement_timeout = 0")
        .map_err(|e| Error::from_pg("warmup: beginning", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .map_err(|e| Error::from_pg("warmup: taking the schema lock", e))?;
    if !catalog.locations.is_empty() {
        // Before anything else: running loaders finish their batches (they hold this lock
        // shared) and start no new one until the catalog's countries are committed.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCATIONS_LOCK])
            .map_err(|e| Error::from_pg("warmup: waiting for the loaders' batches", e))?;
    }
    tx.batch_execute(SCHEMA)
        .map_err(|e| Error::from_pg("warmup: applying schema.sql", e))?;
    crate::sink::check_copied_columns(&mut tx)?;
    tx.execute(
        "SELECT streamer_fill_dim_date(DATE '2010-01-01', DATE '2030-12-31') \
         WHERE (SELECT count(*) FROM dim_date \
                WHERE full_date BETWEEN DATE '2010-01-01' AND DATE '2030-12-31') < 7670",
        &[],
    )
    .map_err(|e| Error::from_pg("warmup: filling dim_date", e))?;
    let loaded = crate::catalog::load(&mut tx, catalog)?;
    let missing: bool = tx
        .query_one("SELECT streamer_rollups_missing()", &[])
        .map_err(|e| Error::from_pg("warmup: checking the report rollups", e))
        .and_then(|row| column(&row, 0, "streamer_rollups_missing()", "result"))?;
    if loaded.locations_changed > 0 {
        // Loaders forget the countries they cached (see LOCATIONS_LOCK).
        tx.execute("UPDATE streamer_location_epoch SET epoch = epoch + 1", &[])
            .map_err(|e| Error::from_pg("warmup: moving the location epoch", e))?;
    }
    if missing || loaded.locations_changed > 0 {
        let why = if missing {
            "fact_sales has rows the report rollups never counted".to_owned()
        } else {
            format!(
                "the locations catalog changed {} dim_location rows",
                loaded.locations_changed
            )
        };
        log::info!("warmup: rebuilding the report rollups ({why})");
        let counted: i64 = tx
            .query_one("SELECT streamer_rebuild_rollups()", &[])
            .map_err(|e| Error::from_pg("warmup: rebuilding the report rollups", e))
            .and_then(|row| column(&row, 0, "streamer_rebuild_rollups()", "result"))?;
        log::info!("warmup: report rollups rebuilt from {counted} fact rows");
    }
    tx.commit()
        .map_err(|e| Error::from_pg("warmup: committing", e))?;
    Ok(())
}

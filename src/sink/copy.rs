//! Binary COPY of fact rows and dead letters. Facts go straight into `fact_sales` under a
//! savepoint; when a key is already there, the batch falls back to a staging table and
//! `INSERT ... ON CONFLICT DO NOTHING`, so the first row written always wins.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Transaction;

use crate::error::{Error, Result};
use crate::pipeline::DeadLetter;
use crate::transform::Fact;

const FACT_COLUMNS: &str = "sales_key, event_id, doc_id, time_stamp, full_date, full_time, \
    ip_key, user_agent_key, product_key, store_id, local_time, current_url, referrer_url, \
    email_address, resolution, user_id_db, device_id, api_version, show_recommendation, \
    recommendation, utm_source, utm_medium, collection, \"option\"";

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

fn copy_facts(
    tx: &mut Transaction<'_>,
    table: &str,
    facts: &[Fact],
) -> Result<(), postgres::Error> {
    let sink = tx.copy_in(&format!("COPY {table} ({FACT_COLUMNS}) FROM STDIN BINARY"))?;
    let types = fact_types();
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for f in facts {
        let row: [&(dyn ToSql + Sync); 24] = [
            &f.sales_key,
            &f.event_id,
            &f.doc_id,
            &f.time_stamp,
            &f.full_date,
            &f.full_time,
            &f.ip_key,
            &f.user_agent_key,
            &f.product_key,
            &f.store_id,
            &f.local_time,
            &f.current_url,
            &f.referrer_url,
            &f.email_address,
            &f.resolution,
            &f.user_id_db,
            &f.device_id,
            &f.api_version,
            &f.show_recommendation,
            &f.recommendation,
            &f.utm_source,
            &f.utm_medium,
            &f.collection,
            &f.option,
        ];
        w.write(&row)?;
    }
    w.finish()?;
    Ok(())
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Write the facts; returns how many rows were new. `facts` holds distinct keys.
pub fn write_facts(tx: &mut Transaction<'_>, facts: &[Fact]) -> Result<u64> {
    if facts.is_empty() {
        return Ok(0);
    }
    let ctx = "writing fact_sales";
    tx.batch_execute("SAVEPOINT facts_direct")
        .map_err(|e| Error::from_pg(ctx, e))?;
    match copy_facts(tx, "fact_sales", facts) {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT facts_direct")
                .map_err(|e| Error::from_pg(ctx, e))?;
            return Ok(facts.len() as u64);
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
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_fact_sales \
         (LIKE fact_sales INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    )
    .map_err(|e| Error::from_pg("creating stage_fact_sales", e))?;
    copy_facts(tx, "stage_fact_sales", facts).map_err(|e| Error::from_pg(ctx, e))?;
    let inserted = tx
        .execute(
            &format!(
                "INSERT INTO fact_sales ({FACT_COLUMNS}) SELECT {FACT_COLUMNS} \
                 FROM stage_fact_sales ON CONFLICT (sales_key) DO NOTHING"
            ),
            &[],
        )
        .map_err(|e| Error::from_pg(ctx, e))?;
    Ok(inserted)
}

/// Append dead letters (the batch's offsets are fenced, so they are never written twice).
pub fn write_dead_letters(tx: &mut Transaction<'_>, dead: &[DeadLetter]) -> Result<()> {
    if dead.is_empty() {
        return Ok(());
    }
    let run = |tx: &mut Transaction<'_>| -> Result<(), postgres::Error> {
        let sink = tx.copy_in(
            "COPY dead_letter (topic, partition, kafka_offset, reason, payload) FROM STDIN BINARY",
        )?;
        let types = [Type::TEXT, Type::INT4, Type::INT8, Type::TEXT, Type::BYTEA];
        let mut w = BinaryCopyInWriter::new(sink, &types);
        for d in dead {
            let topic: &str = &d.topic;
            let reason = d.rejection.text();
            let payload: Option<&[u8]> = d.payload.as_deref();
            w.write(&[&topic, &d.partition, &d.offset, &reason, &payload])?;
        }
        w.finish()?;
        Ok(())
    };
    run(tx).map_err(|e| Error::from_pg("writing dead_letter", e))
}

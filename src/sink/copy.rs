//! Binary COPY of fact rows and dead letters. Facts go, in key order, straight into `fact_sales` under a
//! savepoint, minus the keys found there already (looked up only for keys this process may
//! have committed, [`RecentKeys`], or another process of the group, [`SharedKeys`]); when a
//! key is there anyway (committed before a restart or by another process), the batch looks
//! its keys up and COPYs again, then falls back to a staging table and
//! `INSERT ... ON CONFLICT DO NOTHING`. Either way the first row written wins.

use std::collections::HashSet;
use std::io::Write;
use std::sync::OnceLock;

use bytes::{BufMut, BytesMut};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, ToSql, Type};
use postgres::Transaction;

use super::recent::RecentKeys;
use super::shared::SharedKeys;
use crate::error::{column, Error, Result};
use crate::pipeline::DeadLetter;
use crate::transform::{Col, Fact, Stored, TEXT_COLUMNS, TIME_COLUMNS};

/// How many columns of `fact_sales` are text columns of the fact.
const FACT_TEXT_LEN: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < TEXT_COLUMNS {
        if matches!(Col::ALL[i].stored(), Stored::FactSales) {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The fact's text columns `fact_sales` has, in buffer order (the loader writes them
/// first, then [`TIME_COLUMNS`]).
const FACT_TEXT: [Col; FACT_TEXT_LEN] = {
    let mut out = [Col::SalesKey; FACT_TEXT_LEN];
    let (mut i, mut j) = (0, 0);
    while i < TEXT_COLUMNS {
        if matches!(Col::ALL[i].stored(), Stored::FactSales) {
            out[j] = Col::ALL[i];
            j += 1;
        }
        i += 1;
    }
    out
};

/// The column list of a fact row as the loader writes it (quoted: `option` is a keyword).
fn fact_columns() -> &'static str {
    static LIST: OnceLock<String> = OnceLock::new();
    LIST.get_or_init(|| {
        let names = FACT_TEXT.iter().map(|c| c.name()).chain(TIME_COLUMNS);
        names
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
fn fact_types() -> Vec<Type> {
    let mut t = vec![Type::TEXT; FACT_TEXT_LEN];
    t.extend([Type::INT8, Type::DATE, Type::TIME]);
    t
}

/// PostgreSQL types whose binary input reads what a binary COPY sends as text.
const TEXT_TYPES: [&str; 3] = ["text", "varchar", "bpchar"];

/// The columns the binary COPYs write, with the types (`pg_type.typname`) whose binary
/// form they send: a table made by another tool, or a column altered by hand, must have
/// them, or every row would be refused as if its data were bad.
fn copied_columns() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    let mut out: Vec<(&str, &str, &[&str])> = FACT_TEXT
        .iter()
        .map(|c| ("fact_sales", c.name(), &TEXT_TYPES[..]))
        .collect();
    out.extend([
        ("fact_sales", "time_stamp", &["int8"][..]),
        ("fact_sales", "full_date", &["date"][..]),
        ("fact_sales", "full_time", &["time"][..]),
        ("dead_letter", "topic", &TEXT_TYPES[..]),
        ("dead_letter", "partition", &["int4"][..]),
        ("dead_letter", "kafka_offset", &["int8"][..]),
        ("dead_letter", "reason", &TEXT_TYPES[..]),
        ("dead_letter", "payload", &["bytea"][..]),
    ]);
    out
}

/// Check that fact_sales and dead_letter have every column the COPYs write, each of a
/// type they can write (warmup runs it: a mismatch is the operator's to fix, not bad data).
pub(crate) fn check_copied_columns(client: &mut impl postgres::GenericClient) -> Result<()> {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, t.typname::text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid IN (to_regclass('fact_sales'), to_regclass('dead_letter')) \
               AND a.attnum > 0 AND NOT a.attisdropped",
            &[],
        )
        .map_err(|e| Error::from_pg("reading the columns of fact_sales and dead_letter", e))?;
    let mut found = Vec::with_capacity(rows.len());
    for r in &rows {
        let table: String = column(r, 0, "pg_class", "relname")?;
        let name: String = column(r, 1, "pg_attribute", "attname")?;
        let ty: String = column(r, 2, "pg_type", "typname")?;
        found.push((table, name, ty));
    }
    for (table, name, types) in copied_columns() {
        match found.iter().find(|(t, n, _)| t == table && n == name) {
            None => {
                return Err(Error::fatal(
                    format!("checking {table}"),
                    format!("{table} has no column {name}, which streamer writes"),
                ))
            }
            Some((_, _, ty)) if !types.contains(&ty.as_str()) => {
                return Err(Error::fatal(
                    format!("checking {table}"),
                    format!(
                        "{table}.{name} is of type {ty}, and streamer writes {}: \
                         ALTER TABLE {table} ALTER COLUMN {name} TYPE {} (or load into an \
                         empty schema)",
                        types[0], types[0]
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Bytes gathered before they are sent as one CopyData message.
const CHUNK: usize = 256 * 1024;

/// Why a COPY of facts failed: PostgreSQL's word (a unique violation among them), or a
/// value that would not encode.
pub(super) enum CopyError {
    Pg(postgres::Error),
    Encode(Box<dyn std::error::Error + Sync + Send>),
}

impl CopyError {
    fn into_error(self, context: &str) -> Error {
        match self {
            CopyError::Pg(e) => Error::from_pg(context, e),
            CopyError::Encode(e) => Error::fatal(context, e),
        }
    }

    fn is_unique_violation(&self) -> bool {
        matches!(self, CopyError::Pg(e) if is_unique_violation(e))
    }
}

/// The client's send failed: PostgreSQL's error when it is one (the writer wraps it in
/// `io::Error`).
fn from_io(e: std::io::Error) -> CopyError {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<postgres::Error>() {
            Ok(pg) => CopyError::Pg(*pg),
            Err(other) => CopyError::Encode(other),
        },
        None => CopyError::Encode("the COPY stream failed".into()),
    }
}

/// One value of a binary COPY row: its length, then the bytes its `ToSql` writes (-1 for
/// NULL), as PostgreSQL's binary COPY format has it.
fn put_value(buf: &mut BytesMut, value: &(dyn ToSql + Sync), ty: &Type) -> Result<(), CopyError> {
    let at = buf.len();
    buf.put_i32(0);
    let len = match value.to_sql_checked(ty, buf).map_err(CopyError::Encode)? {
        IsNull::Yes => -1,
        IsNull::No => i32::try_from(buf.len() - at - 4)
            .map_err(|_| CopyError::Encode("a value over 2 GB".into()))?,
    };
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A text value of a binary COPY row: text's binary form is its UTF-8 bytes (what `ToSql`
/// for `&str` writes), so they are put as they are, without a call through `dyn ToSql` for
/// each of a row's 22 text columns.
fn put_text(buf: &mut BytesMut, value: Option<&str>) -> Result<(), CopyError> {
    match value {
        None => buf.put_i32(-1),
        Some(v) => {
            let len = i32::try_from(v.len())
                .map_err(|_| CopyError::Encode("a value over 2 GB".into()))?;
            buf.put_i32(len);
            buf.put_slice(v.as_bytes());
        }
    }
    Ok(())
}

/// COPY the facts into `table` in binary. The rows are framed here and sent in chunks of
/// [`CHUNK`] bytes: postgres' `BinaryCopyInWriter` enters the client's runtime once per row,
/// a tenth of streamer's CPU at 5,000 rows a batch.
fn copy_facts<'a>(
    tx: &mut Transaction<'_>,
    table: &str,
    facts: impl IntoIterator<Item = &'a Fact>,
) -> Result<(), CopyError> {
    let mut sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN BINARY",
            fact_columns()
        ))
        .map_err(CopyError::Pg)?;
    const FIELDS: i16 = (FACT_TEXT_LEN + TIME_COLUMNS.len()) as i16;
    let mut buf = BytesMut::with_capacity(CHUNK + 8 * 1024);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0); // flags
    buf.put_i32(0); // header extension length
    for f in facts {
        buf.put_i16(FIELDS);
        for c in FACT_TEXT {
            put_text(&mut buf, f.get(c))?;
        }
        put_value(&mut buf, &f.time_stamp, &Type::INT8)?;
        put_value(&mut buf, &f.full_date, &Type::DATE)?;
        put_value(&mut buf, &f.full_time, &Type::TIME)?;
        if buf.len() >= CHUNK {
            sink.write_all(&buf).map_err(from_io)?;
            buf.clear();
        }
    }
    buf.put_i16(-1); // trailer
    sink.write_all(&buf).map_err(from_io)?;
    sink.finish().map_err(CopyError::Pg)?;
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

/// Lookups and COPYs of the keys not found, after a COPY found a key stored, before the
/// staging table.
const LOOKUP_ROUNDS: usize = 2;

/// The keys of `keys` that fact_sales holds (as this statement sees it).
fn stored_keys(tx: &mut Transaction<'_>, keys: &[&str]) -> Result<HashSet<String>> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    tx.query_typed(
        "SELECT sales_key FROM fact_sales WHERE sales_key = ANY($1)",
        &[(&keys, Type::TEXT_ARRAY)],
    )
    .map_err(|e| Error::from_pg("looking up stored fact_sales keys", e))?
    .iter()
    .map(|r| column(r, 0, "fact_sales", "sales_key"))
    .collect()
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Write the facts (distinct keys) but those `held` by another open batch of this process
/// (see `in_flight.rs`); returns the ones that were new, in key order, and whether the
/// staging path was taken. Rows go in key order,
/// so two processes writing overlapping keys take their locks in one order: one waits for
/// the other instead of both deadlocking.
pub(super) fn write_facts<'a, T: Send>(
    tx: &mut Transaction<'_>,
    facts: &'a [Fact],
    known: (&RecentKeys, &SharedKeys),
    held: &super::in_flight::Held,
    alongside: impl FnOnce(&[&'a Fact]) -> T + Send,
) -> Result<(Vec<&'a Fact>, bool, Option<T>)> {
    let (recent, shared) = known;
    let written = write_new(tx, facts, known, held, alongside)?;
    if recent.others_writing() {
        shared.publish(tx, &written.0)?;
    }
    Ok(written)
}

/// [`write_facts`] but the publishing of the keys written.
fn write_new<'a, T: Send>(
    tx: &mut Transaction<'_>,
    facts: &'a [Fact],
    (recent, shared): (&RecentKeys, &SharedKeys),
    held: &super::in_flight::Held,
    alongside: impl FnOnce(&[&'a Fact]) -> T + Send,
) -> Result<(Vec<&'a Fact>, bool, Option<T>)> {
    let mut facts: Vec<&'a Fact> = facts
        .iter()
        .filter(|f| !held.contains(&f.key_prefix()))
        .collect();
    if facts.is_empty() {
        return Ok((Vec::new(), false, None));
    }
    // key order: the prefixes' order is the keys' (the text only breaks their ties)
    facts.sort_unstable_by(|a, b| {
        (a.key_prefix().cmp(&b.key_prefix())).then_with(|| a.sales_key().cmp(b.sales_key()))
    });
    let ctx = "writing fact_sales";
    // what this process, or (while others write ours) another one by the keys it
    // published, may have stored; every key while the others' keys are not known
    let others = recent.others_writing();
    let maybe: Vec<&str> = if !others || shared.refresh(tx)? {
        let mut maybe = recent.maybe_seen(facts.iter().map(|f| (f.key_prefix(), *f)));
        if others {
            maybe.extend(facts.iter().copied().filter(|f| shared.maybe_theirs(f)));
        }
        maybe.into_iter().map(Fact::sales_key).collect()
    } else {
        facts.iter().map(|f| f.sales_key()).collect()
    };
    let stored = stored_keys(tx, &maybe)?;
    let mut fresh: Vec<&Fact> = facts
        .iter()
        .copied()
        .filter(|f| !stored.contains(f.sales_key()))
        .collect();
    tx.batch_execute("SAVEPOINT facts_direct")
        .map_err(|e| Error::from_pg(ctx, e))?;
    // `alongside` (what the caller derives from the rows written) runs on a thread of its
    // own while PostgreSQL takes the COPY, off the writer's path.
    let (copied, side) = std::thread::scope(|s| {
        let fresh = &fresh;
        let side = s.spawn(move || alongside(fresh));
        (
            copy_facts(tx, "fact_sales", fresh.iter().copied()),
            side.join(),
        )
    });
    let side = side.map_err(|_| Error::fatal(ctx, "a thread beside the COPY panicked"))?;
    match copied {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT facts_direct")
                .map_err(|e| Error::from_pg(ctx, e))?;
            return Ok((fresh, false, Some(side)));
        }
        Err(e) if e.is_unique_violation() => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT facts_direct")
                .map_err(|e| Error::from_pg(ctx, e))?;
        }
        Err(e) => return Err(e.into_error(ctx)),
    }
    // Someone else stored some of these keys (another process loading the same duplicates,
    // or this one before a restart): look them all up and COPY the rest, a few times
    // (keys committed by others meanwhile), then through the staging table.
    recent.others_stored();
    for _ in 0..LOOKUP_ROUNDS {
        let keys: Vec<&str> = fresh.iter().map(|f| f.sales_key()).collect();
        let stored = stored_keys(tx, &keys)?;
        fresh.retain(|f| !stored.contains(f.sales_key()));
        match copy_facts(tx, "fact_sales", fresh.iter().copied()) {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT facts_direct")
                    .map_err(|e| Error::from_pg(ctx, e))?;
                return Ok((fresh, false, None));
            }
            Err(e) if e.is_unique_violation() => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT facts_direct")
                    .map_err(|e| Error::from_pg(ctx, e))?;
            }
            Err(e) => return Err(e.into_error(ctx)),
        }
    }
    tx.batch_execute("RELEASE SAVEPOINT facts_direct")
        .map_err(|e| Error::from_pg(ctx, e))?;
    log::debug!(
        "{} facts: some keys already stored, using the staging path",
        facts.len()
    );
    ensure_temp_table(
        tx,
        "stage_fact_sales",
        "(LIKE fact_sales INCLUDING DEFAULTS)",
    )?;
    copy_facts(tx, "stage_fact_sales", facts.iter().copied()).map_err(|e| e.into_error(ctx))?;
    let inserted: HashSet<String> = tx
        .query(
            &format!(
                "INSERT INTO fact_sales ({cols}) SELECT {cols} \
                 FROM stage_fact_sales ORDER BY sales_key \
                 ON CONFLICT (sales_key) DO NOTHING RETURNING sales_key",
                cols = fact_columns()
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
        None,
    ))
}

/// Append dead letters (the batch's offsets are fenced, so they are never written twice).
/// Should PostgreSQL refuse a reason's text (a database whose encoding cannot hold a
/// character an excerpt quotes: SQLSTATE 22P05), the reasons are written again with every
/// non-ASCII character escaped, so a dead letter is never lost to its own reason.
pub(super) fn write_dead_letters(tx: &mut Transaction<'_>, dead: &[DeadLetter]) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Rule;

    /// `schema.sql`'s `fact_sales` columns and types, in order.
    fn schema_columns() -> Vec<(String, String)> {
        let schema = include_str!("../../schema.sql");
        let start = schema
            .find("CREATE TABLE IF NOT EXISTS fact_sales (")
            .expect("fact_sales in schema.sql");
        let body = &schema[start..];
        let body = &body[body.find('(').unwrap_or(0) + 1..body.find("\n);").unwrap_or(0)];
        body.lines()
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
            .map(|l| {
                let mut words = l.split_whitespace();
                let name = words.next().unwrap_or_default().trim_matches('"');
                (
                    name.to_string(),
                    words.next().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_loaders_columns_are_schema_sqls() {
        let mut want: Vec<(String, String)> = FACT_TEXT
            .iter()
            .map(|c| (c.name().to_string(), "text".to_string()))
            .collect();
        want.extend(
            TIME_COLUMNS
                .iter()
                .zip(["bigint", "date", "time"])
                .map(|(n, t)| (n.to_string(), t.to_string())),
        );
        let mut got = schema_columns();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(fact_types().len(), FACT_TEXT_LEN + TIME_COLUMNS.len());
    }

    #[test]
    fn every_text_column_but_the_computed_comes_from_a_json_key() {
        for c in Col::ALL {
            assert_eq!(c.json_key().is_none(), c.rule() == Rule::Computed, "{c:?}");
        }
    }
}

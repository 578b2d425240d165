//! Checks of the final tables shared by the end-to-end and fault tests: the exact outcome a
//! [`DataSet`] must leave behind, whole-table snapshots for comparing two runs, and the
//! "committed prefix" check (what a partially run pipeline may hold).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use super::events::{sha_hex, DataSet};
use super::{spawn_streamer, write_config, Broker, TempDir, TestDb};

/// Anything the checks can open a connection to: a [`TestDb`] on the shared server, or a
/// database on a throwaway cluster.
pub(crate) trait Database {
    fn connect(&self) -> postgres::Client;
}

impl Database for TestDb {
    fn connect(&self) -> postgres::Client {
        self.client()
    }
}

/// The single `bigint` value returned by `sql`.
pub(crate) fn scalar<D: Database + ?Sized>(db: &D, sql: &str) -> i64 {
    db.connect()
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<_, i64>(0)
}

/// `SELECT count(*) FROM <table>`.
pub(crate) fn count<D: Database + ?Sized>(db: &D, table: &str) -> i64 {
    scalar(db, &format!("SELECT count(*) FROM {table}"))
}

/// `stream_offsets` of `topic`: partition → next_offset (all groups; tests use one).
pub(crate) fn stored_offsets<D: Database + ?Sized>(db: &D, topic: &str) -> BTreeMap<i32, i64> {
    db.connect()
        .query(
            "SELECT partition, next_offset FROM stream_offsets WHERE topic = $1 ORDER BY partition",
            &[&topic],
        )
        .unwrap_or_else(|e| panic!("reading stream_offsets: {e}"))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// `dir/config.ini` for `topic` on `broker` and database `db` (see [`write_config`]).
pub(crate) fn cfg_path(
    dir: &TempDir,
    broker: &Broker,
    db: &TestDb,
    topic: &str,
    extra: &str,
) -> String {
    write_config(dir.path(), &broker.bootstrap(), db.name(), topic, extra)
        .to_string_lossy()
        .into_owned()
}

/// `streamer warmup`, which must succeed within a minute.
pub(crate) fn warmup(dir: &Path, cfg: &str, envs: &[(&str, &str)]) -> String {
    let mut w = spawn_streamer(dir, &["warmup", cfg], envs);
    let st = w.wait_or_fail(Duration::from_secs(60));
    assert!(st.success(), "warmup failed: {}", w.output());
    w.output()
}

/// `streamer run --until-caught-up`, which must exit 0 within four minutes; returns its output.
pub(crate) fn drain(dir: &Path, cfg: &str, envs: &[(&str, &str)]) -> String {
    let mut s = spawn_streamer(dir, &["run", cfg, "--until-caught-up"], envs);
    let st = s.wait_or_fail(Duration::from_secs(240));
    assert!(st.success(), "run failed ({st}): {}", s.output());
    s.output()
}

/// [`warmup`] then [`drain`]; returns the run's output.
pub(crate) fn warmup_and_drain(dir: &Path, cfg: &str, envs: &[(&str, &str)]) -> String {
    warmup(dir, cfg, envs);
    drain(dir, cfg, envs)
}

/// Highest produced offset + 1 per partition.
pub(crate) fn produced_ends(positions: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, o) in positions {
        let e = ends.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    ends
}

/// The exact outcome of loading all of `ds` (whose messages ended at `ends`) from `topic`.
pub(crate) fn assert_tables<D: Database + ?Sized>(
    db: &D,
    ds: &DataSet,
    ends: &BTreeMap<i32, i64>,
    topic: &str,
) {
    let mut c = db.connect();
    assert_eq!(
        count(db, "fact_sales"),
        ds.facts.len() as i64,
        "fact_sales rows"
    );
    let dead_total: usize = ds.dead.values().sum();
    assert_eq!(
        count(db, "dead_letter"),
        dead_total as i64,
        "dead_letter rows"
    );
    for (reason, n) in &ds.dead {
        let got: i64 = c
            .query_one(
                "SELECT count(*) FROM dead_letter WHERE split_part(reason, ':', 1) = $1",
                &[reason],
            )
            .unwrap()
            .get(0);
        assert_eq!(got, *n as i64, "dead letters with reason {reason}");
    }
    assert_eq!(
        count(db, "dim_product"),
        ds.products.len() as i64,
        "dim_product rows"
    );
    assert_eq!(
        count(db, "dim_location"),
        ds.ips.len() as i64,
        "dim_location rows"
    );
    assert_eq!(
        count(db, "dim_user_agent"),
        ds.agents.len() as i64,
        "dim_user_agent rows"
    );

    // Every key of every fact exists in its dimension.
    assert_no_orphans(db);
    assert_rollups(db);

    // Offsets: every partition resumes right after its last message.
    assert_eq!(&stored_offsets(db, topic), ends, "stream_offsets");

    // Every expected fact is there with the first message's values.
    let rows = c
        .query(
            "SELECT sales_key, event_id, store_id, time_stamp FROM fact_sales",
            &[],
        )
        .unwrap();
    let got: BTreeMap<String, (String, Option<String>, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    for (key, e) in &ds.facts {
        let row = got
            .get(key)
            .unwrap_or_else(|| panic!("fact {key} ({}) missing", e.id));
        assert_eq!(row.0, e.id);
        assert_eq!(
            row.1.as_deref(),
            Some(e.store_id.as_str()),
            "first write wins for {}",
            e.id
        );
        assert_eq!(row.2, e.ts);
    }
}

/// The report rollups with their pending counts, as the reports read them (summed over
/// rollup and pending rows), hold exactly what a recount of fact_sales and its dimensions
/// gives (keys left at 0 views aside).
pub(crate) fn assert_rollups<D: Database + ?Sized>(db: &D) {
    rollups_match(db, "_all");
}

/// Like [`assert_rollups`], and nothing is pending: the rollup tables alone hold every
/// count (after a run has stopped and folded).
pub(crate) fn assert_rollups_folded<D: Database + ?Sized>(db: &D) {
    for table in [
        "rollup_product_hour_pending",
        "rollup_store_country_day_pending",
        "rollup_referrer_day_pending",
        "rollup_browser_hour_pending",
    ] {
        let n: i64 = db
            .connect()
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} after the run's last fold");
    }
    rollups_match(db, "");
}

/// Compare each rollup (table name + `suffix`) with a recount of fact_sales.
fn rollups_match<D: Database + ?Sized>(db: &D, suffix: &str) {
    let checks = [
        (
            "rollup_product_hour",
            "SELECT full_date, hour::integer, product_key, sum(views)::bigint \
             FROM rollup_product_hour{suffix} GROUP BY 1, 2, 3 HAVING sum(views) <> 0",
            "SELECT full_date, extract(hour FROM full_time)::integer, product_key, count(*) \
             FROM fact_sales WHERE product_key IS NOT NULL GROUP BY 1, 2, 3",
        ),
        (
            "rollup_store_country_day",
            "SELECT full_date, store_id, country_code, min(country_name), sum(views)::bigint \
             FROM rollup_store_country_day{suffix} GROUP BY 1, 2, 3 HAVING sum(views) <> 0",
            "SELECT f.full_date, f.store_id, l.country_code, min(l.country_name), count(*) \
             FROM fact_sales f LEFT JOIN dim_location l ON l.ip_key = f.ip_key \
             GROUP BY 1, 2, 3",
        ),
        (
            "rollup_referrer_day",
            "SELECT full_date, referrer_url, sum(views)::bigint FROM rollup_referrer_day{suffix} \
             GROUP BY 1, 2 HAVING sum(views) <> 0",
            "SELECT full_date, referrer_url, count(*) FROM fact_sales \
             WHERE referrer_url IS NOT NULL GROUP BY 1, 2",
        ),
        (
            "rollup_browser_hour",
            "SELECT full_date, hour::integer, browser, os, sum(views)::bigint \
             FROM rollup_browser_hour{suffix} GROUP BY 1, 2, 3, 4 HAVING sum(views) <> 0",
            "SELECT f.full_date, extract(hour FROM f.full_time)::integer, \
                    coalesce(u.browser, 'unknown'), coalesce(u.os, 'unknown'), count(*) \
             FROM fact_sales f LEFT JOIN dim_user_agent u ON u.user_agent_key = f.user_agent_key \
             GROUP BY 1, 2, 3, 4",
        ),
    ];
    let mut c = db.connect();
    for (table, got, want) in checks {
        let got = got.replace("{suffix}", suffix);
        let diff = format!(
            "SELECT 'missing' AS side, w.*::text FROM ({want} EXCEPT {got}) w \
             UNION ALL SELECT 'extra', g.*::text FROM ({got} EXCEPT {want}) g \
             ORDER BY 2 LIMIT 10"
        );
        let rows: Vec<String> = c
            .query(&diff, &[])
            .unwrap_or_else(|e| panic!("{diff}: {e}"))
            .iter()
            .map(|r| format!("{} {}", r.get::<_, &str>(0), r.get::<_, &str>(1)))
            .collect();
        assert!(
            rows.is_empty(),
            "{table} differs from fact_sales: {rows:#?}"
        );
    }
}

/// Every non-NULL key of every fact exists in its dimension.
pub(crate) fn assert_no_orphans<D: Database + ?Sized>(db: &D) {
    for (col, dim, key) in [
        ("ip_key", "dim_location", "ip_key"),
        ("user_agent_key", "dim_user_agent", "user_agent_key"),
        ("product_key", "dim_product", "product_key"),
        ("full_date", "dim_date", "full_date"),
    ] {
        let orphans = scalar(
            db,
            &format!(
                "SELECT count(*) FROM fact_sales f WHERE f.{col} IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM {dim} d WHERE d.{key} = f.{col})"
            ),
        );
        assert_eq!(orphans, 0, "facts whose {col} is missing from {dim}");
    }
}

/// The sales_key a valid message yields (computed here, independently of the code under
/// test), or None for a message that must become a dead letter. Only for [`DataSet`]
/// messages, whose malformed ones carry a `bad-` key.
pub(crate) fn message_sales_key(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<String> {
    if key.is_some_and(|k| k.starts_with(b"bad-")) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(value?).ok()?;
    let id = v.get("id")?.as_str()?;
    let product = match v.get("product_id") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Some(sha_hex(&format!("{id}{product}")))
}

/// What the tables must hold when exactly the messages below `committed[p]` of every
/// partition `p` are in (none of a partition without an entry): the fact keys and the
/// (partition, offset) of the dead letters. `positions[i]` is where `ds.messages[i]` went.
pub(crate) fn expected_prefix(
    ds: &DataSet,
    positions: &[(i32, i64)],
    committed: &BTreeMap<i32, i64>,
) -> (BTreeSet<String>, BTreeSet<(i32, i64)>) {
    let mut facts = BTreeSet::new();
    let mut dead = BTreeSet::new();
    for ((k, v), (p, o)) in ds.messages.iter().zip(positions) {
        if *o >= committed.get(p).copied().unwrap_or(0) {
            continue;
        }
        match message_sales_key(k.as_deref(), v.as_deref()) {
            Some(key) => {
                facts.insert(key);
            }
            None => {
                dead.insert((*p, *o));
            }
        }
    }
    (facts, dead)
}

/// The tables hold exactly the rows of the messages below each partition's stored
/// `next_offset`: a batch is either wholly committed with its offsets or not at all.
pub(crate) fn assert_committed_prefix<D: Database + ?Sized>(
    db: &D,
    ds: &DataSet,
    positions: &[(i32, i64)],
    topic: &str,
) {
    let committed = stored_offsets(db, topic);
    let (want_facts, want_dead) = expected_prefix(ds, positions, &committed);
    let mut c = db.connect();
    let got_facts: BTreeSet<String> = c
        .query("SELECT sales_key FROM fact_sales", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let got_dead: Vec<(i32, i64)> = c
        .query(
            "SELECT partition, kafka_offset FROM dead_letter WHERE topic = $1",
            &[&topic],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let got_dead_set: BTreeSet<(i32, i64)> = got_dead.iter().copied().collect();
    assert_eq!(
        got_dead.len(),
        got_dead_set.len(),
        "a dead letter was written twice"
    );
    let extra: Vec<_> = got_facts.difference(&want_facts).take(5).collect();
    let missing: Vec<_> = want_facts.difference(&got_facts).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "fact_sales ({} rows) is not the committed prefix {committed:?} ({} facts): \
         extra {extra:?}, missing {missing:?}",
        got_facts.len(),
        want_facts.len()
    );
    let extra: Vec<_> = got_dead_set.difference(&want_dead).take(5).collect();
    let missing: Vec<_> = want_dead.difference(&got_dead_set).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "dead_letter ({} rows) is not the committed prefix {committed:?} ({} rows): \
         extra {extra:?}, missing {missing:?}",
        got_dead_set.len(),
        want_dead.len()
    );
    assert_no_orphans(db);
    assert_rollups(db);
}

/// Every table's content (minus ids and clocks) as sorted text, for whole-table comparison.
pub(crate) fn snapshot<D: Database + ?Sized>(db: &D) -> Vec<String> {
    let mut c = db.connect();
    let mut out = Vec::new();
    for q in [
        "SELECT f::text FROM fact_sales f ORDER BY sales_key",
        "SELECT d::text FROM dim_product d ORDER BY product_key",
        "SELECT d::text FROM dim_location d ORDER BY ip_key",
        "SELECT d::text FROM dim_user_agent d ORDER BY user_agent_key",
        "SELECT d::text FROM dim_date d ORDER BY full_date",
        "SELECT topic || '/' || partition || '/' || kafka_offset || '/' || reason || '/' || \
         coalesce(encode(payload, 'hex'), 'null') FROM dead_letter ORDER BY topic, partition, kafka_offset",
        "SELECT topic || '/' || partition || '/' || next_offset FROM stream_offsets ORDER BY topic, partition",
    ] {
        for r in c.query(q, &[]).unwrap() {
            out.push(r.get::<_, String>(0));
        }
        out.push("--".into());
    }
    out
}

/// Compare two snapshots, printing only the rows that differ.
pub(crate) fn assert_same(got: &[String], want: &[String]) {
    let g: BTreeSet<&String> = got.iter().collect();
    let w: BTreeSet<&String> = want.iter().collect();
    let extra: Vec<_> = g.difference(&w).take(5).collect();
    let missing: Vec<_> = w.difference(&g).take(5).collect();
    assert!(
        got.len() == want.len() && extra.is_empty() && missing.is_empty(),
        "tables differ from the reference run ({} vs {} rows); extra {extra:#?}; missing {missing:#?}",
        got.len(),
        want.len()
    );
}

//! Errors say what the server said (issue 16, contract §8): a PostgreSQL error passed through
//! `Error::from_pg` shows its SQLSTATE, message, detail, hint and table or constraint, keeps
//! the `postgres::Error` as its source, and is classed retriable or fatal; a missing schema
//! says to run `streamer warmup`; a column whose type was changed by hand is a fatal error
//! naming table and column, never a panic; a fact table another tool made without its key,
//! or with a column of another type, stops warmup instead of taking duplicates or turning
//! every row into a dead letter.

use std::error::Error as _;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use streamer::error::{column, Error};

use crate::harness;
use crate::harness::check::{assert_tables, cfg_path, count, drain, produced_ends, warmup};
use crate::harness::events::data_set;
use crate::harness::{run_to_exit, Broker, TempDir, TestDb};

fn pg_err(db: &TestDb, sql: &str) -> postgres::Error {
    match db.client().batch_execute(sql) {
        Ok(()) => panic!("{sql} succeeded"),
        Err(e) => e,
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "{p:?} missing from {text:?}");
    }
}

#[test]
fn a_duplicate_key_shows_sqlstate_message_detail_and_constraint() {
    let db = TestDb::create();
    db.client()
        .batch_execute("CREATE TABLE t (k int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .unwrap();
    let e = Error::from_pg("writing t", pg_err(&db, "INSERT INTO t VALUES (1)"));
    assert!(!e.is_retriable());
    assert!(e.is_data_error(), "class 23 is a data error");
    assert_eq!(e.sqlstate(), Some("23505"));
    assert_eq!(
        e.to_string(),
        "writing t: duplicate key value violates unique constraint \"t_pkey\" (SQLSTATE 23505, \
         table public.t, constraint t_pkey); detail: Key (k)=(1) already exists."
    );
    // the chain is kept: PgError, then the postgres::Error, then the server's DbError
    let pg = e.source().expect("a source");
    let client = pg.source().expect("the postgres::Error");
    assert!(client.downcast_ref::<postgres::Error>().is_some());
    assert!(!e.to_string().contains("db error"));
}

#[test]
fn a_deadlock_is_retriable_with_postgres_words() {
    let db = Arc::new(TestDb::create());
    db.client()
        .batch_execute(
            "CREATE TABLE d (k int PRIMARY KEY, v int); INSERT INTO d VALUES (1, 0), (2, 0)",
        )
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let lock_in_order = |first: i32, second: i32| {
        let (db, barrier) = (Arc::clone(&db), Arc::clone(&barrier));
        std::thread::spawn(move || -> Result<(), postgres::Error> {
            let mut c = db.client();
            let mut tx = c.transaction()?;
            tx.execute("UPDATE d SET v = v + 1 WHERE k = $1", &[&first])?;
            barrier.wait();
            tx.execute("UPDATE d SET v = v + 1 WHERE k = $1", &[&second])?;
            std::thread::sleep(Duration::from_millis(200));
            tx.commit()
        })
    };
    let a = lock_in_order(1, 2);
    let b = lock_in_order(2, 1);
    let results = [a.join().unwrap(), b.join().unwrap()];
    let err = results
        .into_iter()
        .find_map(Result::err)
        .expect("one of the two transactions is the deadlock victim");
    let e = Error::from_pg("writing d", err);
    assert!(e.is_retriable());
    assert!(!e.is_data_error());
    assert_eq!(e.sqlstate(), Some("40P01"));
    assert_contains(
        &e.to_string(),
        &[
            "writing d: deadlock detected (SQLSTATE 40P01",
            "; detail: Process ",
        ],
    );
}

#[test]
fn a_missing_table_says_to_run_warmup() {
    let db = TestDb::create();
    let e = Error::from_pg(
        "reading stream_offsets",
        pg_err(&db, "SELECT next_offset FROM stream_offsets"),
    );
    assert!(!e.is_retriable());
    assert_contains(
        &e.to_string(),
        &[
            "relation \"stream_offsets\" does not exist (SQLSTATE 42P01",
            "run `streamer warmup CONFIG`",
        ],
    );
    // a table that is not streamer's gets no such hint
    let e = Error::from_pg("reading", pg_err(&db, "SELECT * FROM not_ours"));
    assert!(!e.to_string().contains("warmup"), "{e}");
}

#[test]
fn errors_without_sqlstate_are_classified() {
    // nothing listens on port 1: an I/O error connecting, which may pass
    let err = postgres::Config::new()
        .host("127.0.0.1")
        .port(1)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2))
        .connect(postgres::NoTls)
        .err()
        .expect("port 1 refuses");
    let e = Error::from_pg("connecting", err);
    assert!(e.is_retriable(), "{e}");
    assert!(e.sqlstate().is_none());
    assert_contains(
        &e.to_string(),
        &["connecting: error connecting to server: "],
    );

    // a conversion error (an int4 read as i64) is fatal and names table and column
    let db = TestDb::create();
    let row = db.client().query_one("SELECT 1::int4", &[]).unwrap();
    let e = column::<i64>(&row, 0, "stream_offsets", "next_offset").unwrap_err();
    assert!(!e.is_retriable());
    assert_contains(
        &e.to_string(),
        &[
            "reading column next_offset of stream_offsets",
            "error deserializing column 0: cannot convert between the Rust type `i64` and the \
             Postgres type `int4`",
        ],
    );
}

#[test]
fn run_before_warmup_exits_1_naming_the_table_and_warmup() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("errors-no-schema");
    let topic = harness::unique_name("no_schema");
    broker.create_topic(&topic, 1);
    let cfg = cfg_path(
        &dir,
        broker,
        &db,
        &topic,
        "[pipeline]\nretry_budget_s = 2\n",
    );
    let out = run_to_exit(&["run", &cfg, "--until-caught-up"], Duration::from_secs(90));
    out.assert_code(1);
    assert_contains(
        &out.output,
        &[
            "does not exist (SQLSTATE 42P01",
            "run `streamer warmup CONFIG`",
        ],
    );
    assert!(!out.output.contains("db error"), "{}", out.output);
}

/// The Spark job's writers (pandas `to_sql`) create `fact_sales` without a key, and
/// `CREATE TABLE IF NOT EXISTS` keeps such a table: warmup then stops naming the key it
/// needs (a replay would otherwise add every row again). With a unique index on
/// `sales_key` under a name of its own, a load and a replay of it from the log's start
/// leave one row per key.
#[test]
fn a_fact_table_made_without_its_key_stops_warmup() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("errors-keyless-facts");
    let topic = harness::unique_name("keyless_facts");
    broker.create_topic(&topic, 2);
    let ds = data_set(1_000, 100, 2, 44);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let columns = "sales_key text, event_id text, doc_id text, time_stamp bigint, \
                   full_date date, full_time time, ip_key text, user_agent_key text, \
                   product_key text, store_id text, local_time text, current_url text, \
                   referrer_url text, email_address text, resolution text, user_id_db text, \
                   device_id text, api_version text, show_recommendation text, \
                   recommendation text, utm_source text, utm_medium text, collection text, \
                   \"option\" text";
    db.client()
        .batch_execute(&format!("CREATE TABLE fact_sales ({columns})"))
        .expect("creating a keyless fact_sales");
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    let out = run_to_exit(&["warmup", &cfg], Duration::from_secs(60));
    out.assert_code(1);
    assert_contains(
        &out.output,
        &[
            "table fact_sales exists without a unique key on (sales_key)",
            "ALTER TABLE fact_sales ADD PRIMARY KEY (sales_key)",
        ],
    );
    db.client()
        .batch_execute("CREATE UNIQUE INDEX fact_sales_by_key ON fact_sales (sales_key)")
        .expect("adding a unique index");
    warmup(dir.path(), &cfg, &[]);
    drain(dir.path(), &cfg, &[]);
    assert_tables(&db, &ds, &ends, &topic);
    let out = run_to_exit(&["reset", "--to-earliest", &cfg], Duration::from_secs(60));
    out.assert_code(0);
    drain(dir.path(), &cfg, &[]);
    assert_eq!(
        count(&db, "fact_sales"),
        ds.facts.len() as i64,
        "facts after a replay"
    );
    // its violation is the fact key's (the loader's own business), not bad data
    let e = pg_err(
        &db,
        "INSERT INTO fact_sales (sales_key) SELECT sales_key FROM fact_sales LIMIT 1",
    );
    assert!(
        !Error::from_pg("test", e).is_data_error(),
        "a duplicate sales_key taken for bad data"
    );
}

/// A `fact_sales` column of a type the binary COPY cannot write (a date kept as text, as
/// pandas `to_sql` may leave it): PostgreSQL refused every row, and each became a dead
/// letter, the run exiting 0 with no fact. Warmup now stops, naming column, type and the
/// fix; a `varchar` column, which takes the COPY's text, is accepted, and loads exactly.
#[test]
fn a_fact_column_of_another_type_stops_warmup() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("errors-fact-type");
    let topic = harness::unique_name("fact_type");
    broker.create_topic(&topic, 2);
    let ds = data_set(500, 50, 2, 47);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    warmup(dir.path(), &cfg, &[]);
    db.client()
        .batch_execute("ALTER TABLE fact_sales ALTER COLUMN full_date TYPE text")
        .expect("altering full_date");
    let out = run_to_exit(&["warmup", &cfg], Duration::from_secs(60));
    out.assert_code(1);
    assert_contains(
        &out.output,
        &[
            "fact_sales.full_date is of type text, and streamer writes date",
            "ALTER TABLE fact_sales ALTER COLUMN full_date TYPE date",
        ],
    );
    db.client()
        .batch_execute(
            "ALTER TABLE fact_sales ALTER COLUMN full_date TYPE date USING full_date::date, \
             ALTER COLUMN store_id TYPE varchar(40)",
        )
        .expect("altering back, store_id to varchar");
    warmup(dir.path(), &cfg, &[]);
    drain(dir.path(), &cfg, &[]);
    assert_tables(&db, &ds, &ends, &topic);
}

#[test]
fn a_column_type_changed_by_hand_is_fatal_not_a_panic() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("errors-changed-type");
    let topic = harness::unique_name("changed_type");
    broker.create_topic(&topic, 1);
    let cfg = cfg_path(
        &dir,
        broker,
        &db,
        &topic,
        "[pipeline]\nretry_budget_s = 2\n",
    );
    warmup(dir.path(), &cfg, &[]);
    let event = |id: &str| {
        let json = format!(r#"{{"id":"{id}","time_stamp":1591266092}}"#);
        (None, Some(json.into_bytes()))
    };
    // A first run stores the partition's offset; then an operator changes its type.
    broker.produce(&topic, &[event("a")]);
    run_to_exit(&["run", &cfg, "--until-caught-up"], Duration::from_secs(90)).assert_code(0);
    db.client()
        .batch_execute("ALTER TABLE stream_offsets ALTER COLUMN next_offset TYPE numeric")
        .unwrap();
    broker.produce(&topic, &[event("b")]);
    let out = run_to_exit(&["run", &cfg, "--until-caught-up"], Duration::from_secs(90));
    out.assert_code(1);
    assert_contains(
        &out.output,
        &[
            "reading column next_offset of stream_offsets",
            "cannot convert between the Rust type `i64` and the Postgres type `numeric`",
        ],
    );
    assert!(!out.output.contains("panicked"), "{}", out.output);
}

#[test]
fn an_unreachable_broker_is_named_with_librdkafkas_words() {
    let db = TestDb::create();
    let dir = TempDir::new("errors-no-broker");
    let port = harness::free_port();
    let brokers = format!("127.0.0.1:{port}");
    let cfg = harness::write_config(
        dir.path(),
        &brokers,
        db.name(),
        "nowhere",
        "[pipeline]\nretry_budget_s = 2\n",
    )
    .to_string_lossy()
    .into_owned();
    warmup(dir.path(), &cfg, &[]);
    let out = run_to_exit(&["run", &cfg, "--until-caught-up"], Duration::from_secs(90));
    out.assert_code(1);
    // the error names the brokers as configured, and what librdkafka said about the one
    // it tried
    let last = out.output.lines().rev().find(|l| !l.trim().is_empty());
    assert_contains(
        last.unwrap_or_default(),
        &[
            &format!("(brokers {brokers}"),
            &format!("{brokers}/bootstrap: Connect to ipv4#{brokers} failed: Connection refused"),
        ],
    );
    let out = run_to_exit(&["check", &cfg], Duration::from_secs(60));
    out.assert_code(1);
    assert_contains(
        &out.output,
        &[&format!(
            "kafka: FAILED to reach the brokers {brokers} for topic nowhere"
        )],
    );
}

//! Operations (contract §8): /metrics counters match the rows in PostgreSQL during a real run,
//! /healthz answers, TLS to PostgreSQL with `sslmode = require`, no password reaches
//! logs, errors, metrics or `check` output, a database whose defaults are SERIALIZABLE
//! and a short lock timeout is loaded under READ COMMITTED without one, and connections
//! the server closes when idle are replaced before they fail a batch or a fold.

use std::time::{Duration, Instant};

use crate::harness;
use crate::harness::check::{assert_tables, cfg_path, drain, produced_ends, warmup};
use crate::harness::events::data_set;
use crate::harness::http::get;
use crate::harness::{free_port, spawn_streamer, Broker, TempDir, TestDb};

const SECRET: &str = "Pa55-w0rd-never-shown";

/// The value of one sample line (`name{labels} value`) in a Prometheus exposition.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_match_the_rows_in_postgres() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("ops-metrics");
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 3);
    let ds = data_set(2500, 200, 3, 21);
    let ends = produced_ends(&broker.produce(topic, &ds.messages));
    let total: i64 = ends.values().sum();

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cfg = cfg_path(&dir, broker, &db, topic, "");
    let envs = [
        ("STREAMER__METRICS__LISTEN", listen.as_str()),
        ("STREAMER__DOCKER_POSTGRES__PASSWORD", SECRET),
    ];
    warmup(dir.path(), &cfg, &envs);
    let mut s = spawn_streamer(dir.path(), &["run", &cfg], &envs);

    // Wait until everything is committed and the lag has been measured (stats every 5 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    let body = loop {
        assert!(
            Instant::now() < deadline,
            "metrics never caught up: {}",
            s.output()
        );
        std::thread::sleep(Duration::from_millis(250));
        let Some((200, body)) = get(port, "/metrics") else {
            continue;
        };
        let done = sample(&body, "streamer_messages_total") == Some(total as f64);
        let lagged = (0..3).all(|p| {
            sample(
                &body,
                &format!("streamer_consumer_lag{{topic=\"{topic}\",partition=\"{p}\"}}"),
            )
            .is_some()
        });
        if done && lagged {
            break body;
        }
    };
    assert_tables(&db, &ds, &ends, topic);
    let rows = |table: &str| sample(&body, &format!("streamer_rows_total{{table=\"{table}\"}}"));
    assert_eq!(rows("fact_sales"), Some(db.count("fact_sales") as f64));
    assert_eq!(rows("dead_letter"), Some(db.count("dead_letter") as f64));
    assert_eq!(rows("dim_product"), Some(db.count("dim_product") as f64));
    assert_eq!(
        rows("dim_user_agent"),
        Some(db.count("dim_user_agent") as f64)
    );
    assert_eq!(rows("dim_location"), Some(db.count("dim_location") as f64));
    for (reason, n) in &ds.dead {
        let got = sample(
            &body,
            &format!("streamer_dead_letters_total{{reason=\"{reason}\"}}"),
        );
        assert_eq!(got, Some(*n as f64), "dead letters with reason {reason}");
    }
    let dups = total - db.count("fact_sales") - db.count("dead_letter");
    assert_eq!(
        sample(&body, "streamer_duplicates_total"),
        Some(dups as f64)
    );
    for p in 0..3 {
        let lag = sample(
            &body,
            &format!("streamer_consumer_lag{{topic=\"{topic}\",partition=\"{p}\"}}"),
        );
        assert_eq!(lag, Some(0.0), "partition {p} lag once caught up");
    }
    let batches = sample(&body, "streamer_batches_total").unwrap_or(0.0);
    assert!(batches >= 1.0);
    assert_eq!(sample(&body, "streamer_batch_seconds_count"), Some(batches));
    assert!(sample(&body, "streamer_process_resident_memory_bytes").unwrap_or(0.0) > 0.0);
    assert!(!body.contains(SECRET), "password in /metrics");
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(port, "/nope").map(|r| r.0), Some(404));

    s.signal("TERM");
    let st = s.wait_or_fail(Duration::from_secs(30));
    assert!(st.success(), "exit after SIGTERM: {st}; {}", s.output());
    assert!(!s.output().contains(SECRET), "password in the log");
}

#[test]
fn sslmode_require_connects_with_tls() {
    // The machine's PostgreSQL has ssl = on (Debian's default snakeoil certificate).
    let db = TestDb::create();
    let text = format!(
        "[local_spark]\napp_name = tls_test\n[docker_postgres]\nhost_in = db\nhost_out = 127.0.0.1\n\
         database = {}\nuser = postgres\npassword = {SECRET}\nport_in = 5432\nport_out = 5432\n\
         [remote_kafka]\nkafka.bootstrap.servers = 127.0.0.1:1\nsubscribe = t\n\
         [postgres]\nsslmode = require\n",
        db.name()
    );
    let cfg = streamer::config::Config::parse(&text, &[]).expect("config");
    let pool = streamer::sink::pool(&cfg, 1).expect("pool");
    let mut conn = pool.get("test").expect("connect with sslmode=require");
    let ssl: bool = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(ssl, "the connection is encrypted");
    // And `disable` does not encrypt.
    let plain = streamer::config::Config::parse(&text.replace("require", "disable"), &[]).unwrap();
    let pool = streamer::sink::pool(&plain, 1).unwrap();
    let ssl: bool = pool
        .get("test")
        .unwrap()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!ssl);
}

#[test]
fn passwords_never_appear_in_any_output() {
    let db = TestDb::create();
    let dir = TempDir::new("ops-secrets");
    // A wrong user makes PostgreSQL refuse the login, so the error path is exercised too.
    let text = format!(
        "[local_spark]\napp_name = secrets_test\n[docker_postgres]\nhost_in = db\nhost_out = 127.0.0.1\n\
         database = {}\nuser = no_such_user\npassword = {SECRET}\nport_in = 5432\nport_out = 5432\n\
         [remote_kafka]\nkafka.bootstrap.servers = 127.0.0.1:1\nkafka.security.protocol = SASL_PLAINTEXT\n\
         kafka.sasl.mechanism = PLAIN\n\
         kafka.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"{SECRET}-kafka\";\n\
         subscribe = t\n[pipeline]\nretry_budget_s = 1\n",
        db.name()
    );
    let cfg = dir.join("config.ini");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let env_secret = format!("{SECRET}-env");
    for args in [
        vec!["check", cfg.as_str()],
        vec!["warmup", cfg.as_str()],
        vec!["run", cfg.as_str(), "--until-caught-up"],
        vec![cfg.as_str()],
        vec!["status", cfg.as_str(), "--format", "json"],
        vec!["reset", cfg.as_str(), "--to-earliest", "--dry-run"],
        vec!["report", cfg.as_str()],
    ] {
        let mut s = spawn_streamer(
            dir.path(),
            &args,
            &[
                ("RUST_LOG", "debug"),
                ("STREAMER__DOCKER_POSTGRES__PASSWORD", env_secret.as_str()),
            ],
        );
        let st = s.wait_or_fail(Duration::from_secs(60));
        let out = s.output();
        assert!(!st.success(), "{args:?} cannot succeed here: {out}");
        assert!(!out.contains(SECRET), "{args:?} printed a password: {out}");
    }
}

/// A DBA's `ALTER DATABASE ... SET default_transaction_isolation = serializable` and
/// `lock_timeout = 20ms` do not reach the loaders: their transactions are READ COMMITTED
/// and wait for locks (up to the statement timeout), which their fences and upserts are
/// built on. Otherwise concurrent batches failed one another (`could not serialize
/// access`, `lock timeout`) and were retried whole, three times slower. Both modes load
/// exactly without either failure.
#[test]
fn serializable_and_lock_timeout_database_defaults_do_not_reach_the_loaders() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view_serializable");
    broker.create_topic(&topic, 4);
    let ds = data_set(6_000, 300, 4, 45);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    for mode in ["partition", "batch"] {
        let db = TestDb::create();
        db.client()
            .batch_execute(&format!(
                "ALTER DATABASE {0} SET default_transaction_isolation = 'serializable'; \
                 ALTER DATABASE {0} SET lock_timeout = '20ms'",
                db.name()
            ))
            .expect("setting the database default");
        let dir = TempDir::new(&format!("serializable-{mode}"));
        let extra = "[pipeline]\nbatch_max_messages = 200\n";
        let cfg = cfg_path(&dir, broker, &db, &topic, extra);
        let envs = [("MODE", mode)];
        warmup(dir.path(), &cfg, &envs);
        let out = drain(dir.path(), &cfg, &envs);
        assert!(
            !out.contains("could not serialize") && !out.contains("lock timeout"),
            "{mode}: a serialization failure or lock timeout:\n{out}"
        );
        assert_tables(&db, &ds, &ends, &topic);
    }
}

/// A server that closes idle sessions (`idle_session_timeout`, as managed PostgreSQL
/// services set it): the pool's and the rollup folder's connections die between batches
/// and folds. Loads before and after an idle spell are exact, and no fold fails for it
/// (the folder held its connection between folds, and every other fold failed).
#[test]
fn connections_closed_by_idle_session_timeout_are_replaced() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view_idle_session");
    broker.create_topic(&topic, 2);
    let ds = data_set(2_000, 100, 2, 46);
    let (first, second) = ds.messages.split_at(1_000);
    let db = TestDb::create();
    let dir = TempDir::new("idle-session");
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    warmup(dir.path(), &cfg, &[]);
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE {} SET idle_session_timeout = '200ms'",
            db.name()
        ))
        .expect("setting idle_session_timeout");
    let mut positions = broker.produce(&topic, first);
    let mut s = spawn_streamer(dir.path(), &["run", &cfg], &[]);
    let committed = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while crate::harness::check::stored_offsets(&db, &topic)
            .values()
            .sum::<i64>()
            < n as i64
        {
            assert!(Instant::now() < deadline, "{n} messages not committed");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    committed(first.len());
    // idle: several folds, every connection past the server's timeout
    std::thread::sleep(Duration::from_secs(3));
    positions.extend(broker.produce(&topic, second));
    committed(ds.messages.len());
    std::thread::sleep(Duration::from_secs(2));
    s.signal("TERM");
    let st = s.wait_or_fail(Duration::from_secs(60));
    let out = s.output();
    assert!(st.success(), "exit {st}:\n{out}");
    assert!(
        !out.contains("the pending counts wait for the next fold") && !out.contains("retrying"),
        "a fold or a batch failed:\n{out}"
    );
    assert_tables(&db, &ds, &produced_ends(&positions), &topic);
}

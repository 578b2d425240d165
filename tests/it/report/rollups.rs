//! The rollup tables behind the reports: they follow deletes, updates, truncates and
//! pending counts, and warmup rebuilds them.

use std::time::Duration;

use crate::harness;
use crate::harness::{TempDir, TestDb};

use super::{rows, seeded};

/// (product_key, views) of report 1 for the test day.
fn top_products(db: &TestDb) -> Vec<(String, i64)> {
    rows(
        db,
        "SELECT product_key, views FROM report_top_products('2020-03-10')",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn rollups_follow_deletes_updates_and_truncate() {
    let db = seeded();
    harness::check::assert_rollups(&db);
    let mut c = db.client();
    // Product "10" loses two views, "7" gains one (moved from "2"), a store moves country.
    c.batch_execute(
        "DELETE FROM fact_sales WHERE sales_key IN ('fact-0', 'fact-1');
         UPDATE fact_sales SET product_key = '7' WHERE sales_key = 'fact-5';
         UPDATE fact_sales SET ip_key = 'ip-e', store_id = '9' WHERE sales_key = 'fact-3';",
    )
    .unwrap();
    harness::check::assert_rollups(&db);
    let top = top_products(&db);
    assert_eq!(
        top[..3],
        [
            ("7".to_owned(), 5),
            ("2".to_owned(), 4),
            ("1".to_owned(), 3)
        ]
    );
    assert!(top.contains(&("10".to_owned(), 3)));
    let stores: Vec<(String, Option<String>, i64)> = rows(
        &db,
        "SELECT store_id, country_code, views FROM report_store_performance('2020-03-10') \
         WHERE store_id = '9'",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(stores, vec![("9".to_owned(), Some("US".to_owned()), 1)]);
    c.batch_execute("TRUNCATE fact_sales").unwrap();
    for table in [
        "rollup_product_hour",
        "rollup_store_country_day",
        "rollup_referrer_day",
        "rollup_browser_hour",
        "rollup_product_hour_pending",
        "rollup_store_country_day_pending",
        "rollup_referrer_day_pending",
        "rollup_browser_hour_pending",
    ] {
        assert_eq!(db.count(table), 0, "{table} after TRUNCATE fact_sales");
    }
}

#[test]
fn pending_counts_are_reported_and_folded_exactly_once_by_concurrent_folds() {
    let db = seeded();
    let want = top_products(&db);
    let mut c = db.client();
    // Every count moved from the rollups to pending rows, each split over two rows (as two
    // loaders' batches would leave them).
    c.batch_execute(
        "TRUNCATE rollup_product_hour, rollup_store_country_day, rollup_referrer_day,
                  rollup_browser_hour;
         CREATE TEMP TABLE split (part bigint);
         INSERT INTO split VALUES (0), (1);
         INSERT INTO rollup_product_hour_pending
         SELECT array_agg(full_date), array_agg(hour), array_agg(product_key), array_agg(views)
         FROM (SELECT full_date, extract(hour FROM full_time)::smallint AS hour, product_key,
                      CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END AS views, part
               FROM fact_sales, split WHERE product_key IS NOT NULL
               GROUP BY 1, 2, 3, part) g GROUP BY part;
         INSERT INTO rollup_store_country_day_pending (full_date, store_id, ip_key, views)
         SELECT array_agg(full_date), array_agg(store_id), array_agg(ip_key), array_agg(views)
         FROM (SELECT full_date, store_id, ip_key, count(*) - 1 AS views
               FROM fact_sales GROUP BY 1, 2, 3) g;
         -- the other part by country, as the loaders count (one element by address, too)
         INSERT INTO rollup_store_country_day_pending
             (full_date, store_id, ip_key, views, country_code, country_name)
         SELECT array_agg(full_date), array_agg(store_id),
                array_agg(CASE WHEN n = 1 THEN ip_key END), array_agg(views),
                array_agg(CASE WHEN n > 1 THEN country_code END),
                array_agg(CASE WHEN n > 1 THEN country_name END)
         FROM (SELECT f.full_date, f.store_id, f.ip_key, l.country_code, l.country_name,
                      1 AS views, row_number() OVER () AS n
               FROM (SELECT full_date, store_id, ip_key FROM fact_sales GROUP BY 1, 2, 3) f
               LEFT JOIN dim_location l ON l.ip_key = f.ip_key) g;
         INSERT INTO rollup_referrer_day_pending
         SELECT array_agg(full_date), array_agg(referrer_url), array_agg(views)
         FROM (SELECT full_date, referrer_url,
                      CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END AS views, part
               FROM fact_sales, split WHERE referrer_url IS NOT NULL
               GROUP BY 1, 2, part) g GROUP BY part;
         INSERT INTO rollup_browser_hour_pending
         SELECT array_agg(full_date), array_agg(hour), array_agg(user_agent_key), array_agg(views)
         FROM (SELECT full_date, extract(hour FROM full_time)::smallint AS hour, user_agent_key,
                      CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END AS views, part
               FROM fact_sales, split GROUP BY 1, 2, 3, part) g GROUP BY part;",
    )
    .unwrap();
    assert!(db.count("rollup_browser_hour_pending") > 0);
    harness::check::assert_rollups(&db);
    assert_eq!(top_products(&db), want, "the reports read pending counts");

    // Two folds at once: the second waits for the first's rows, then finds none.
    let mut first = c.transaction().unwrap();
    let folded: i64 = first
        .query_one("SELECT streamer_fold_rollups()", &[])
        .unwrap()
        .get(0);
    assert!(folded > 0);
    let mut other = db.client();
    let second = std::thread::spawn(move || -> i64 {
        other
            .query_one("SELECT streamer_fold_rollups()", &[])
            .unwrap()
            .get(0)
    });
    std::thread::sleep(Duration::from_millis(200));
    first.commit().unwrap();
    assert_eq!(
        second.join().unwrap(),
        0,
        "nothing left for the second fold"
    );
    harness::check::assert_rollups_folded(&db);
    assert_eq!(top_products(&db), want);
}

/// Folds of one rollup on two connections take turns (streamer_fold_rollup's advisory
/// lock, not the rollup's row locks), and a fold that updates keys already there and
/// inserts new ones gives the recount.
#[test]
fn folds_of_one_rollup_take_turns_and_add_up() {
    let db = seeded();
    let mut c = db.client();
    c.execute("SELECT streamer_fold_rollups()", &[]).unwrap();
    harness::check::assert_rollups_folded(&db);
    // The facts once more under new keys, in two statements (two pending rows per rollup,
    // as two batches leave them): half on their own day (keys in the rollups), half on the
    // next (keys not yet there).
    c.batch_execute(
        "CREATE TEMP TABLE again AS SELECT * FROM fact_sales;
         UPDATE again SET sales_key = 'again-' || sales_key;
         UPDATE again SET full_date = full_date + 1 WHERE sales_key LIKE '%1' OR sales_key LIKE '%3';
         INSERT INTO fact_sales SELECT * FROM again WHERE full_date = '2020-03-10';
         INSERT INTO fact_sales SELECT * FROM again WHERE full_date <> '2020-03-10';",
    )
    .unwrap();
    assert_eq!(db.count("rollup_product_hour_pending"), 2);
    let mut first = c.transaction().unwrap();
    let folded: i64 = first
        .query_one("SELECT streamer_fold_rollup('rollup_product_hour')", &[])
        .unwrap()
        .get(0);
    assert!(folded > 0);
    let mut other = db.client();
    let other_pid: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let second = std::thread::spawn(move || -> i64 {
        other
            .query_one("SELECT streamer_fold_rollups()", &[])
            .unwrap()
            .get(0)
    });
    // the second fold waits for the first's advisory lock (without it: for its row locks)
    let mut watch = db.client();
    let waits_for = loop {
        let row = watch
            .query_one(
                "SELECT coalesce(wait_event_type, '') || ':' || coalesce(wait_event, '')
                 FROM pg_stat_activity WHERE pid = $1",
                &[&other_pid],
            )
            .unwrap();
        let w: String = row.get(0);
        if w.starts_with("Lock:") {
            break w;
        }
        assert!(!second.is_finished(), "the second fold did not wait");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(waits_for, "Lock:advisory");
    first.commit().unwrap();
    assert!(
        second.join().unwrap() > 0,
        "the other rollups were left to it"
    );
    harness::check::assert_rollups_folded(&db);
    let day_after: i64 = c
        .query_one(
            "SELECT count(*) FROM rollup_product_hour WHERE full_date = '2020-03-11'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(day_after > 0, "the new day's keys were inserted");
}

#[test]
fn warmup_rebuilds_rollups_that_miss_facts() {
    // A database loaded before the rollups existed: facts, no rollup rows.
    let db = seeded();
    let want = top_products(&db);
    db.client()
        .batch_execute(
            "TRUNCATE rollup_product_hour, rollup_store_country_day, rollup_referrer_day, \
             rollup_browser_hour",
        )
        .unwrap();
    assert!(top_products(&db).is_empty());
    let dir = TempDir::new("report-rebuild");
    let cfg = harness::write_config(dir.path(), "127.0.0.1:9", db.name(), "unused", "");
    let out = harness::check::warmup(dir.path(), cfg.to_str().unwrap(), &[("RUST_LOG", "info")]);
    assert!(out.contains("rebuilding the report rollups"), "{out}");
    harness::check::assert_rollups(&db);
    assert_eq!(top_products(&db), want);
    // Rebuilt once: the next warmup leaves them alone.
    let out = harness::check::warmup(dir.path(), cfg.to_str().unwrap(), &[("RUST_LOG", "info")]);
    assert!(!out.contains("rebuilding the report rollups"), "{out}");
}

#[test]
fn a_locations_catalog_that_moves_an_address_moves_its_views() {
    let db = seeded();
    let key = harness::events::sha_hex("5.9.9.9");
    let mut c = db.client();
    c.execute(
        "INSERT INTO dim_location (ip_key, ip_address, country_code, country_name) \
         VALUES ($1, '5.9.9.9', 'FR', 'France')",
        &[&key],
    )
    .unwrap();
    for i in 0..9 {
        c.execute(
            "INSERT INTO fact_sales (sales_key, event_id, time_stamp, full_date, full_time, \
             ip_key, store_id) VALUES ($1, $1, 0, '2020-03-10', '12:00', $2, '1')",
            &[&format!("moved-{i}"), &key],
        )
        .unwrap();
    }
    let countries = |db: &TestDb| -> Vec<(Option<String>, i64)> {
        rows(
            db,
            "SELECT country_code, views FROM report_top_countries('2020-03-10')",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(countries(&db)[0], (Some("FR".to_owned()), 17));
    let dir = TempDir::new("report-catalog");
    let csv = dir.join("locations.csv");
    std::fs::write(
        &csv,
        "ip,country_short,country_long,region,city\n5.9.9.9,AT,Austria,Wien,Wien\n",
    )
    .unwrap();
    let extra = format!("[catalog]\nlocations = {}\n", csv.display());
    let cfg = harness::write_config(dir.path(), "127.0.0.1:9", db.name(), "unused", &extra);
    let out = harness::check::warmup(dir.path(), cfg.to_str().unwrap(), &[("RUST_LOG", "info")]);
    assert!(out.contains("changed 1 dim_location rows"), "{out}");
    harness::check::assert_rollups(&db);
    let got = countries(&db);
    assert_eq!(got[0], (Some("DE".to_owned()), 12));
    assert!(got.contains(&(Some("AT".to_owned()), 9)), "{got:?}");
    assert!(got.contains(&(Some("FR".to_owned()), 8)), "{got:?}");
}

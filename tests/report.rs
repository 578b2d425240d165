//! The six reports (SPEC 7) on a small hand-made data set inserted with plain INSERTs: each
//! SQL function returns exactly the rows and order worked out by hand below; `report::run`
//! prints every format; the HTML page is self-contained and renders in headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::{TempDir, TestDb};
use streamer::report::{self, Format};

const DAY: &str = "2020-03-10";

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 3, 10).unwrap()
}

/// One fact of the test day: product, UTC hour, ip, user agent, store, referrer host.
type Fact = (
    Option<&'static str>,
    i32,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

// ip keys: ip-a DE, ip-b FR, ip-c DE, ip-d no geography, ip-e US (None: no ip).
// agents: cw Chrome/Windows 10, si Safari/iOS, fl Firefox/Linux, ew Edge/Windows 10,
// ca Chrome/Android, om Opera/Mac OS X, un unrecognised (browser and os NULL).
#[rustfmt::skip]
const FACTS: [Fact; 32] = [
    // product "10": 5 views
    (Some("10"),  0, Some("ip-a"), Some("cw"), Some("1"), Some("www.google.com")),   // 1
    (Some("10"),  0, Some("ip-a"), Some("cw"), Some("1"), Some("www.google.com")),   // 2
    (Some("10"),  5, Some("ip-b"), Some("si"), Some("1"), Some("www.bing.com")),     // 3
    (Some("10"), 23, Some("ip-c"), Some("cw"), Some("2"), None),                     // 4
    (Some("10"), 23, Some("ip-d"), Some("fl"), Some("2"), Some("www.google.com")),   // 5
    // product "2": 5 views
    (Some("2"),   1, Some("ip-b"), Some("si"), Some("2"), Some("www.bing.com")),     // 6
    (Some("2"),   1, Some("ip-b"), Some("si"), Some("2"), None),                     // 7
    (Some("2"),   5, Some("ip-e"), Some("ew"), Some("3"), Some("t.co")),             // 8
    (Some("2"),  10, Some("ip-a"), Some("cw"), Some("1"), Some("www.facebook.com")), // 9
    (Some("2"),  10, None,         Some("ca"), Some("1"), None),                     // 10
    // product "7": 4 views
    (Some("7"),   5, Some("ip-a"), Some("cw"), Some("1"), Some("www.google.com")),   // 11
    (Some("7"),   5, Some("ip-c"), Some("om"), Some("1"), Some("t.co")),             // 12
    (Some("7"),  12, Some("ip-d"), Some("un"), Some("3"), None),                     // 13
    (Some("7"),  12, None,         None,       None,      None),                     // 14
    // product "1": 3 views
    (Some("1"),  23, Some("ip-e"), Some("ew"), Some("3"), Some("www.bing.com")),     // 15
    (Some("1"),  23, Some("ip-b"), Some("fl"), Some("2"), Some("www.facebook.com")), // 16
    (Some("1"),   0, Some("ip-a"), Some("cw"), Some("1"), None),                     // 17
    // products "11", "3", "4", "5", "6", "8", "9": 2 views each
    (Some("11"),  2, Some("ip-a"), Some("cw"), Some("1"), Some("a.example")),        // 18
    (Some("11"),  2, Some("ip-a"), Some("cw"), Some("1"), None),                     // 19
    (Some("3"),   3, Some("ip-b"), Some("si"), Some("2"), Some("b.example")),        // 20
    (Some("3"),   3, Some("ip-b"), Some("si"), Some("2"), None),                     // 21
    (Some("4"),   4, Some("ip-d"), Some("fl"), Some("3"), None),                     // 22
    (Some("4"),   4, Some("ip-d"), Some("fl"), Some("3"), None),                     // 23
    (Some("5"),   6, Some("ip-e"), Some("ca"), Some("3"), None),                     // 24
    (Some("5"),   6, Some("ip-e"), Some("ca"), Some("3"), None),                     // 25
    (Some("6"),   7, Some("ip-a"), Some("ew"), Some("1"), None),                     // 26
    (Some("6"),   7, Some("ip-b"), Some("om"), Some("1"), None),                     // 27
    (Some("8"),   8, Some("ip-b"), Some("cw"), Some("2"), None),                     // 28
    (Some("8"),   8, None,         Some("un"), Some("2"), None),                     // 29
    (Some("9"),   9, Some("ip-a"), Some("cw"), Some("1"), None),                     // 30
    (Some("9"),   9, Some("ip-d"), None,       Some("1"), None),                     // 31
    // no product
    (None,       11, Some("ip-a"), Some("cw"), Some("1"), Some("www.google.com")),   // 32
];

/// A database with the schema and the data set: FACTS on 2020-03-10, plus 3 views of
/// product "9" on each neighbouring day (US, Opera/Mac OS X, store 3, www.yahoo.com) that
/// would top every report if the day filter leaked, and dead letters around the day.
fn seeded() -> TestDb {
    let db = TestDb::create();
    let mut c = db.client();
    c.batch_execute(streamer::warmup::SCHEMA).unwrap();
    c.batch_execute(streamer::warmup::SCHEMA).unwrap(); // idempotent
    c.execute(
        "SELECT streamer_fill_dim_date('2020-01-01', '2020-12-31')",
        &[],
    )
    .unwrap();
    c.batch_execute(
        r#"
        INSERT INTO dim_product (product_key, name, current_url, language_code) VALUES
          ('10', 'Ring <b>&"''', 'https://www.glamira.de/ring-10.html', 'de'),
          ('2', 'Necklace', 'https://www.glamira.fr/necklace-2.html', 'fr'),
          ('7', 'Bague élégante', NULL, 'fr'),
          ('1', NULL, NULL, NULL), ('3', NULL, NULL, NULL), ('4', NULL, NULL, NULL),
          ('5', NULL, NULL, NULL), ('6', NULL, NULL, NULL), ('8', NULL, NULL, NULL),
          ('9', NULL, NULL, NULL), ('11', NULL, NULL, NULL);
        INSERT INTO dim_location (ip_key, ip_address, country_code, country_name) VALUES
          ('ip-a', '5.1.1.1', 'DE', 'Germany'),
          ('ip-b', '5.2.2.2', 'FR', 'France'),
          ('ip-c', '5.3.3.3', 'DE', 'Germany'),
          ('ip-d', '10.0.0.1', NULL, NULL),
          ('ip-e', '5.5.5.5', 'US', 'United States');
        INSERT INTO dim_user_agent (user_agent_key, user_agent, browser, os) VALUES
          ('cw', 'ua cw', 'Chrome', 'Windows 10'),
          ('si', 'ua si', 'Safari', 'iOS'),
          ('fl', 'ua fl', 'Firefox', 'Linux'),
          ('ew', 'ua ew', 'Edge', 'Windows 10'),
          ('ca', 'ua ca', 'Chrome', 'Android'),
          ('om', 'ua om', 'Opera', 'Mac OS X'),
          ('un', 'ua un', NULL, NULL);
        INSERT INTO dead_letter (topic, partition, kafka_offset, received_at, reason) VALUES
          ('t', 0, 1, '2020-03-09 23:59:59+00', 'before'),
          ('t', 0, 2, '2020-03-10 00:00:00+00', 'first second'),
          ('t', 0, 3, '2020-03-10 23:59:59+00', 'last second'),
          ('t', 0, 4, '2020-03-11 00:00:00+00', 'after');
        "#,
    )
    .unwrap();
    let insert = c
        .prepare(
            "INSERT INTO fact_sales (sales_key, event_id, time_stamp, full_date, full_time, \
             ip_key, user_agent_key, product_key, store_id, referrer_url) \
             VALUES ($1, $1, 0, $2::text::date, make_time($3, 30, 0), $4, $5, $6, $7, $8)",
        )
        .unwrap();
    for (i, (product, hour, ip, ua, store, referrer)) in FACTS.iter().enumerate() {
        let key = format!("fact-{i}");
        c.execute(
            &insert,
            &[&key, &DAY, hour, ip, ua, product, store, referrer],
        )
        .unwrap();
    }
    for (j, other_day) in ["2020-03-09", "2020-03-11"].iter().enumerate() {
        for k in 0..3 {
            let key = format!("other-{j}-{k}");
            c.execute(
                &insert,
                &[
                    &key,
                    other_day,
                    &9i32,
                    &Some("ip-e"),
                    &Some("om"),
                    &Some("9"),
                    &Some("3"),
                    &Some("www.yahoo.com"),
                ],
            )
            .unwrap();
        }
    }
    db
}

fn rows(db: &TestDb, sql: &str) -> Vec<postgres::Row> {
    db.client()
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn top_products_ranks_by_views_then_key_bytes() {
    let db = seeded();
    type Row = (i32, String, Option<String>, Option<String>, i64);
    let got: Vec<Row> = rows(&db, "SELECT * FROM report_top_products('2020-03-10')")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let s = |x: &str| Some(x.to_owned());
    // "10" and "2" tie at 5 ("10" < "2" in byte order); seven products tie at 2, of which
    // "9" (last in byte order) falls off the top 10; the view without product is not counted.
    let want = vec![
        (
            1,
            "10".into(),
            s("Ring <b>&\"'"),
            s("https://www.glamira.de/ring-10.html"),
            5,
        ),
        (
            2,
            "2".into(),
            s("Necklace"),
            s("https://www.glamira.fr/necklace-2.html"),
            5,
        ),
        (3, "7".into(), s("Bague élégante"), None, 4),
        (4, "1".into(), None, None, 3),
        (5, "11".into(), None, None, 2),
        (6, "3".into(), None, None, 2),
        (7, "4".into(), None, None, 2),
        (8, "5".into(), None, None, 2),
        (9, "6".into(), None, None, 2),
        (10, "8".into(), None, None, 2),
    ];
    assert_eq!(got, want);
}

#[test]
fn top_countries_counts_unknown_geography_as_one_row() {
    let db = seeded();
    let got: Vec<(i32, Option<String>, String, i64)> =
        rows(&db, "SELECT * FROM report_top_countries('2020-03-10')")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
    // DE: ip-a 10 + ip-c 2; FR: ip-b 8; unknown: ip-d 5 + no ip 3 = 8 (after FR on the tie);
    // US: ip-e 4.
    let want = vec![
        (1, Some("DE".to_owned()), "Germany".to_owned(), 12),
        (2, Some("FR".to_owned()), "France".to_owned(), 8),
        (3, None, "unknown".to_owned(), 8),
        (4, Some("US".to_owned()), "United States".to_owned(), 4),
    ];
    assert_eq!(got, want);
}

#[test]
fn top_referrers_skips_null_and_keeps_five() {
    let db = seeded();
    let got: Vec<(i32, String, i64)> =
        rows(&db, "SELECT * FROM report_top_referrers('2020-03-10')")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    // google 5, bing 3, t.co 2 = www.facebook.com 2, a.example 1 = b.example 1 (cut).
    let want = vec![
        (1, "www.google.com".to_owned(), 5),
        (2, "www.bing.com".to_owned(), 3),
        (3, "t.co".to_owned(), 2),
        (4, "www.facebook.com".to_owned(), 2),
        (5, "a.example".to_owned(), 1),
    ];
    assert_eq!(got, want);
}

#[test]
fn store_performance_by_store_and_country() {
    let db = seeded();
    type Row = (i32, String, Option<String>, String, i64, f64);
    let got: Vec<Row> = rows(&db, "SELECT * FROM report_store_performance('2020-03-10')")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    // Store totals: 1 → 15, 2 → 9, 3 → 7 (fact 14 has no store).
    let de = || Some("DE".to_owned());
    let fr = || Some("FR".to_owned());
    let us = || Some("US".to_owned());
    let want: Vec<Row> = vec![
        (1, "1".into(), de(), "Germany".into(), 11, 73.3),
        (2, "2".into(), fr(), "France".into(), 6, 66.7),
        (3, "3".into(), us(), "United States".into(), 4, 57.1),
        (4, "3".into(), None, "unknown".into(), 3, 42.9),
        (5, "1".into(), fr(), "France".into(), 2, 13.3),
        (6, "1".into(), None, "unknown".into(), 2, 13.3),
        (7, "2".into(), None, "unknown".into(), 2, 22.2),
        (8, "2".into(), de(), "Germany".into(), 1, 11.1),
    ];
    assert_eq!(got, want);
}

/// 24 values, zero except the given (hour, views).
fn hours(nonzero: &[(i32, i64)]) -> Vec<i64> {
    let mut v = vec![0; 24];
    for (h, n) in nonzero {
        v[*h as usize] = *n;
    }
    v
}

#[test]
fn hourly_product_views_has_24_hours_per_top_product() {
    let db = seeded();
    let got = rows(
        &db,
        "SELECT * FROM report_hourly_product_views('2020-03-10')",
    );
    let want: Vec<(&str, Vec<i64>)> = vec![
        ("10", hours(&[(0, 2), (5, 1), (23, 2)])),
        ("2", hours(&[(1, 2), (5, 1), (10, 2)])),
        ("7", hours(&[(5, 2), (12, 2)])),
        ("1", hours(&[(0, 1), (23, 2)])),
        ("11", hours(&[(2, 2)])),
        ("3", hours(&[(3, 2)])),
        ("4", hours(&[(4, 2)])),
        ("5", hours(&[(6, 2)])),
        ("6", hours(&[(7, 2)])),
        ("8", hours(&[(8, 2)])),
    ];
    let mut expected = Vec::new();
    for (i, (key, views)) in want.iter().enumerate() {
        for (h, n) in views.iter().enumerate() {
            expected.push((i as i32 + 1, key.to_string(), h as i32, *n));
        }
    }
    let got: Vec<(i32, String, i32, i64)> = got
        .iter()
        .map(|r| {
            (
                r.get("rank"),
                r.get("product_key"),
                r.get("hour"),
                r.get("views"),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn hourly_browser_os_keeps_five_pairs_and_folds_the_rest() {
    let db = seeded();
    let got = rows(&db, "SELECT * FROM report_hourly_browser_os('2020-03-10')");
    // Pair totals: Chrome/Windows 10 11, Safari/iOS 5, Firefox/Linux 4 = unknown 4
    // ("Firefox" < "unknown"), Chrome/Android 3 = Edge/Windows 10 3 ("Chrome" < "Edge": Edge
    // is folded), Opera/Mac OS X 2 (folded). Unrecognised and absent agents are "unknown".
    let want: Vec<(&str, &str, Vec<i64>)> = vec![
        (
            "Chrome",
            "Windows 10",
            hours(&[
                (0, 3),
                (2, 2),
                (5, 1),
                (8, 1),
                (9, 1),
                (10, 1),
                (11, 1),
                (23, 1),
            ]),
        ),
        ("Safari", "iOS", hours(&[(1, 2), (3, 2), (5, 1)])),
        ("Firefox", "Linux", hours(&[(4, 2), (23, 2)])),
        ("unknown", "unknown", hours(&[(8, 1), (9, 1), (12, 2)])),
        ("Chrome", "Android", hours(&[(6, 2), (10, 1)])),
        ("other", "other", hours(&[(5, 2), (7, 2), (23, 1)])),
    ];
    let mut expected = Vec::new();
    for (i, (browser, os, views)) in want.iter().enumerate() {
        for (h, n) in views.iter().enumerate() {
            expected.push((
                i as i32 + 1,
                browser.to_string(),
                os.to_string(),
                h as i32,
                *n,
            ));
        }
    }
    let got: Vec<(i32, String, String, i32, i64)> = got
        .iter()
        .map(|r| {
            (
                r.get("rank"),
                r.get("browser"),
                r.get("os"),
                r.get("hour"),
                r.get("views"),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

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
    common::check::assert_rollups(&db);
    let mut c = db.client();
    // Product "10" loses two views, "7" gains one (moved from "2"), a store moves country.
    c.batch_execute(
        "DELETE FROM fact_sales WHERE sales_key IN ('fact-0', 'fact-1');
         UPDATE fact_sales SET product_key = '7' WHERE sales_key = 'fact-5';
         UPDATE fact_sales SET ip_key = 'ip-e', store_id = '9' WHERE sales_key = 'fact-3';",
    )
    .unwrap();
    common::check::assert_rollups(&db);
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
         SELECT full_date, extract(hour FROM full_time)::smallint, product_key,
                CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END
         FROM fact_sales, split WHERE product_key IS NOT NULL GROUP BY 1, 2, 3, part;
         INSERT INTO rollup_store_country_day_pending
         SELECT f.full_date, f.store_id, l.country_code, min(l.country_name),
                CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END
         FROM fact_sales f LEFT JOIN dim_location l ON l.ip_key = f.ip_key, split
         GROUP BY 1, 2, 3, part;
         INSERT INTO rollup_referrer_day_pending
         SELECT full_date, referrer_url, CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END
         FROM fact_sales, split WHERE referrer_url IS NOT NULL GROUP BY 1, 2, part;
         INSERT INTO rollup_browser_hour_pending
         SELECT full_date, extract(hour FROM full_time)::smallint, user_agent_key,
                CASE part WHEN 0 THEN count(*) - 1 ELSE 1 END
         FROM fact_sales, split GROUP BY 1, 2, 3, part;",
    )
    .unwrap();
    assert!(db.count("rollup_browser_hour_pending") > 0);
    common::check::assert_rollups(&db);
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
    common::check::assert_rollups_folded(&db);
    assert_eq!(top_products(&db), want);
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
    let cfg = common::write_config(dir.path(), "127.0.0.1:9", db.name(), "unused", "");
    let out = common::check::warmup(dir.path(), cfg.to_str().unwrap(), &[("RUST_LOG", "info")]);
    assert!(out.contains("rebuilding the report rollups"), "{out}");
    common::check::assert_rollups(&db);
    assert_eq!(top_products(&db), want);
    // Rebuilt once: the next warmup leaves them alone.
    let out = common::check::warmup(dir.path(), cfg.to_str().unwrap(), &[("RUST_LOG", "info")]);
    assert!(!out.contains("rebuilding the report rollups"), "{out}");
}

#[test]
fn a_locations_catalog_that_moves_an_address_moves_its_views() {
    let db = seeded();
    let key = common::events::sha_hex("5.9.9.9");
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
    let cfg = common::write_config(dir.path(), "127.0.0.1:9", db.name(), "unused", &extra);
    let out = common::check::warmup(dir.path(), cfg.to_str().unwrap(), &[("RUST_LOG", "info")]);
    assert!(out.contains("changed 1 dim_location rows"), "{out}");
    common::check::assert_rollups(&db);
    let got = countries(&db);
    assert_eq!(got[0], (Some("DE".to_owned()), 12));
    assert!(got.contains(&(Some("AT".to_owned()), 9)), "{got:?}");
    assert!(got.contains(&(Some("FR".to_owned()), 8)), "{got:?}");
}

#[test]
fn functions_default_to_the_current_utc_day() {
    let db = seeded();
    let mut c = db.client();
    let today: NaiveDate = c
        .query_one("SELECT (now() AT TIME ZONE 'utc')::date", &[])
        .unwrap()
        .get(0);
    // Move two facts to today: the argument-less calls see exactly them.
    c.execute(
        "UPDATE fact_sales SET full_date = $1 WHERE sales_key IN ('fact-0', 'fact-1')",
        &[&today],
    )
    .unwrap();
    c.execute("SELECT streamer_add_dates(ARRAY[$1::date])", &[&today])
        .unwrap();
    let top: Vec<(String, i64)> = c
        .query("SELECT product_key, views FROM report_top_products()", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(top, vec![("10".to_owned(), 2)]);
    for f in [
        "report_top_countries",
        "report_top_referrers",
        "report_store_performance",
        "report_hourly_product_views",
        "report_hourly_browser_os",
    ] {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {f}()"), &[])
            .unwrap()
            .get(0);
        assert!(n > 0, "{f}() is empty on the current day");
    }
}

fn run_to_string(db: &TestDb, date: Option<NaiveDate>, format: Format) -> String {
    let mut out = Vec::new();
    report::run(&mut db.client(), date, format, None, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn table_format_prints_each_report_or_says_it_is_empty() {
    let db = seeded();
    let text = run_to_string(&db, Some(day()), Format::Table);
    assert!(
        text.starts_with("2020-03-10 (UTC): 32 views, 11 products, 2 dead letters\n"),
        "{text}"
    );
    for kind in report::REPORTS {
        assert!(text.contains(kind.title()), "no {}: {text}", kind.title());
    }
    assert!(!text.contains("no views on"), "{text}");
    // Aligned: every line of the top products table has the same width.
    let table: Vec<&str> = text
        .split("Top 10 products by views\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 10 + 4, "{}", table.join("\n")); // borders, header, separator
    let width = table[0].chars().count();
    assert!(table.iter().all(|l| l.chars().count() == width), "{text}");
    assert!(table[1].contains("product_key") && table[1].contains("views"));
    assert!(table[3].contains("Ring <b>&\"'"));

    // Hourly reports turned around: a row per hour, a column per series, then totals.
    let hourly: Vec<&str> = text
        .split("Hourly views by browser and OS (UTC)\n")
        .nth(1)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(
        hourly.len(),
        1 + 2 + 1 + 24 + 1 + 1,
        "{}",
        hourly.join("\n")
    );
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches(|c| c == '│' || c == ' ')
            .split('┆')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    assert_eq!(
        cells(hourly[1]),
        ["hour", "Chrome", "Safari", "Firefox", "unknown", "Chrome", "other"]
    );
    assert_eq!(
        cells(hourly[2]),
        [
            "",
            "Windows 10",
            "iOS",
            "Linux",
            "unknown",
            "Android",
            "other"
        ]
    );
    assert_eq!(cells(hourly[4]), ["00", "3", "0", "0", "0", "0", "0"]);
    assert_eq!(cells(hourly[27]), ["23", "1", "0", "2", "0", "0", "1"]);
    assert_eq!(cells(hourly[28]), ["total", "11", "5", "4", "4", "3", "5"]);

    let empty = run_to_string(&db, NaiveDate::from_ymd_opt(2020, 6, 1), Format::Table);
    assert!(
        empty.starts_with("2020-06-01 (UTC): 0 views, 0 products, 0 dead letters\n"),
        "{empty}"
    );
    assert_eq!(
        empty.matches("no views on 2020-06-01\n").count(),
        6,
        "{empty}"
    );
}

#[test]
fn default_date_is_the_current_utc_day() {
    let db = seeded();
    let before = chrono::Utc::now().date_naive();
    let text = run_to_string(&db, None, Format::Table);
    let after = chrono::Utc::now().date_naive();
    let ok = [before, after]
        .iter()
        .any(|d| text.matches(&format!("no views on {d}\n")).count() == 6);
    assert!(ok, "{text}");
}

#[test]
fn csv_format_has_one_block_per_report() {
    let db = seeded();
    let text = run_to_string(&db, Some(day()), Format::Csv);
    let blocks: Vec<&str> = text.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 6, "{text}");
    let headers: Vec<&str> = blocks.iter().map(|b| b.lines().next().unwrap()).collect();
    assert_eq!(
        headers,
        [
            "report,rank,product_key,name,current_url,views",
            "report,rank,country_code,country_name,views",
            "report,rank,referrer_host,views",
            "report,rank,store_id,country_code,country_name,views,store_share",
            "report,rank,product_key,hour,views",
            "report,rank,browser,os,hour,views",
        ]
    );
    let lines = |i: usize| blocks[i].lines().skip(1).collect::<Vec<_>>();
    assert_eq!(lines(0).len(), 10);
    assert_eq!(
        lines(0)[0],
        r#"top_products,1,10,"Ring <b>&""'",https://www.glamira.de/ring-10.html,5"#
    );
    assert_eq!(lines(1)[2], "top_countries,3,,unknown,8");
    assert_eq!(lines(3)[0], "store_performance,1,1,DE,Germany,11,73.3");
    assert_eq!(lines(4).len(), 240);
    assert_eq!(lines(5).len(), 6 * 24);
    // Every block parses as CSV with as many fields as its header.
    for block in &blocks {
        let mut r = csv::Reader::from_reader(block.as_bytes());
        let n = r.headers().unwrap().len();
        for rec in r.records() {
            assert_eq!(rec.unwrap().len(), n);
        }
    }

    let empty = run_to_string(&db, NaiveDate::from_ymd_opt(2020, 6, 1), Format::Csv);
    let blocks: Vec<&str> = empty.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 6, "{empty}");
    assert!(blocks.iter().all(|b| b.lines().count() == 1), "{empty}");
}

#[test]
fn json_format_is_one_object() {
    let db = seeded();
    let text = run_to_string(&db, Some(day()), Format::Json);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["date"], "2020-03-10");
    assert_eq!(v["totals"]["views"], 32);
    assert_eq!(v["totals"]["products"], 11);
    assert_eq!(v["totals"]["dead_letters"], 2);
    let len = |k: &str| v[k].as_array().unwrap_or_else(|| panic!("{k}")).len();
    assert_eq!(len("top_products"), 10);
    assert_eq!(len("top_countries"), 4);
    assert_eq!(len("top_referrers"), 5);
    assert_eq!(len("store_performance"), 8);
    assert_eq!(len("hourly_product_views"), 240);
    assert_eq!(len("hourly_browser_os"), 144);
    assert_eq!(v["top_products"][0]["name"], "Ring <b>&\"'");
    assert_eq!(v["top_products"][3]["name"], serde_json::Value::Null);
    assert_eq!(
        v["top_countries"][2]["country_code"],
        serde_json::Value::Null
    );
    assert_eq!(
        v["store_performance"][0]["store_share"].as_f64(),
        Some(73.3)
    );
    // Row keys keep the function's column order.
    let first_row = text.split("\"top_products\": [").nth(1).unwrap();
    let rank = first_row.find("\"rank\"").unwrap();
    let key = first_row.find("\"product_key\"").unwrap();
    let views = first_row.find("\"views\"").unwrap();
    assert!(rank < key && key < views, "{first_row}");

    let empty = run_to_string(&db, NaiveDate::from_ymd_opt(2020, 6, 1), Format::Json);
    let v: serde_json::Value = serde_json::from_str(&empty).unwrap();
    assert_eq!(v["date"], "2020-06-01");
    for kind in report::REPORTS {
        assert_eq!(v[kind.key()], serde_json::json!([]), "{}", kind.key());
    }
}

/// Writes the page for `date` into `dir` and returns its path and text.
fn write_page(db: &TestDb, dir: &TempDir, date: NaiveDate) -> (PathBuf, String) {
    let path = dir.join(&format!("report-{date}.html"));
    let mut out = Vec::new();
    report::run(
        &mut db.client(),
        Some(date),
        Format::Table,
        Some(&path),
        &mut out,
    )
    .unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    (path, html)
}

/// The page's text with the allowed URLs (the attribution and the data's product URLs)
/// removed: nothing that could make a browser fetch anything may be left.
fn assert_self_contained(html: &str) {
    let mut rest = html.replace("https://db-ip.com", "");
    for url in [
        "https://www.glamira.de/ring-10.html",
        "https://www.glamira.fr/necklace-2.html",
    ] {
        rest = rest.replace(url, "");
    }
    for needle in [
        "http://", "https://", "src=", "href=", "url(", "@import", "<script", "<link",
    ] {
        assert!(!rest.contains(needle), "page contains {needle}");
    }
}

#[test]
fn html_page_is_self_contained_with_six_charts() {
    let db = seeded();
    let dir = TempDir::new("streamer-report");
    let (_, html) = write_page(&db, &dir, day());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 6);
    assert_eq!(html.matches("</svg>").count(), 6);
    assert_eq!(html.matches("<table").count(), 6);
    assert!(html.contains("Product views on 2020-03-10 (UTC)"));
    assert!(html.contains("<b>32</b>views"));
    assert!(html.contains("<b>11</b>distinct products"));
    assert!(html.contains("<b>2</b>dead letters"));
    assert!(html.contains("Generated "));
    assert!(html.contains("IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"));
    // Text from the database is escaped, in the tables and in the charts.
    assert!(!html.contains("<b>&"));
    assert!(html.contains("Ring &lt;b&gt;&amp;&quot;&#39;"));
    assert!(html.contains("Bague élégante"));
    assert_self_contained(&html);

    let (_, empty) = write_page(&db, &dir, NaiveDate::from_ymd_opt(2020, 6, 1).unwrap());
    assert_eq!(empty.matches("<svg").count(), 6);
    assert_eq!(empty.matches("no views on 2020-06-01").count(), 6);
    assert_eq!(empty.matches("<table").count(), 0);
    assert_self_contained(&empty);
}

fn chromium() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/bin/chromium")];
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            candidates.push(dir.join("chromium"));
            candidates.push(dir.join("chromium-browser"));
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Screenshot of `page` by headless Chromium, logging to stderr and its network activity to a
/// NetLog file; returns (stderr, NetLog JSON).
///
/// Chromium's own background services (component updater, account list) create requests to
/// Google hosts despite the `--disable-*` flags, so every request is sent to a proxy whose
/// host the resolver rule maps to "not found": nothing leaves the process (no DNS query, no
/// connection), while the NetLog still records each request the page would have made.
fn screenshot(chromium: &Path, page: &Path, png: &Path, dir: &Path) -> (String, String) {
    let profile = dir.join("profile");
    let err_path = dir.join("chromium.stderr");
    let netlog = dir.join("netlog.json");
    std::fs::create_dir_all(&profile).unwrap();
    let stderr = std::fs::File::create(&err_path).unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--disable-breakpad",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,\
             Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", chromium.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium took over 120 s; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium exited with {status}:\n{log}");
    let net = std::fs::read_to_string(&netlog)
        .unwrap_or_else(|e| panic!("no NetLog {}: {e}\n{log}", netlog.display()));
    (log, net)
}

/// URLs of the network requests made on behalf of a `file://` page, from a NetLog: requests
/// whose network isolation key is the file:// site (Chromium's own requests have others).
fn page_requests(netlog: &str) -> Vec<String> {
    let log: serde_json::Value =
        serde_json::from_str(netlog).unwrap_or_else(|e| panic!("NetLog is not JSON: {e}"));
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_i64()
        .expect("NetLog constants name URL_REQUEST_START_JOB");
    let events = log["events"].as_array().expect("NetLog events");
    assert!(!events.is_empty(), "empty NetLog");
    events
        .iter()
        .filter(|e| e["type"].as_i64() == Some(start_job))
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("file://"))
        })
        .map(|e| e["params"]["url"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The page loads in headless Chromium without any failed request and renders to a real
/// screenshot. Needs Debian's `chromium` package; skipped without it unless CI is set.
#[test]
fn html_page_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("chromium not found but CI is set: install Debian's chromium package");
        }
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return;
    };
    let db = seeded();
    let dir = TempDir::new("streamer-report-chromium");
    let (page, _) = write_page(&db, &dir, day());
    let png = dir.join("report.png");
    let (log, netlog) = screenshot(&chromium, &page, &png, dir.path());
    for bad in ["Failed to load resource", "net::ERR"] {
        assert!(!log.contains(bad), "chromium reported {bad}:\n{log}");
    }
    assert_eq!(
        page_requests(&netlog),
        Vec::<String>::new(),
        "the page fetched something"
    );
    // The check sees fetches: a page with one remote image (to a dead loopback port, and
    // stopped by the resolver rule anyway) shows exactly that request.
    let control_dir = TempDir::new("streamer-report-control");
    let control = control_dir.join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><p>control</p><img src=\"http://127.0.0.1:9/x.png\">",
    )
    .unwrap();
    let (_, control_log) = screenshot(
        &chromium,
        &control,
        &control_dir.join("control.png"),
        control_dir.path(),
    );
    assert_eq!(page_requests(&control_log), ["http://127.0.0.1:9/x.png"]);
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{log}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank 1200x3000 page compresses to a few KB; six charts and tables do not.
    assert!(
        bytes.len() > 50_000,
        "screenshot only {} bytes: page blank?",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("STREAMER_REPORT_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

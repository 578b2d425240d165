//! The six reports (contract §7) on a small hand-made data set inserted with plain INSERTs (this
//! file: the data set); `functions`: each SQL function returns exactly the rows and order
//! worked out by hand; `rollups`: the rollup tables follow the facts; `formats`:
//! `report::run` prints every format; `html`: the page is self-contained and renders in
//! headless Chromium.

mod formats;
mod functions;
mod html;
mod rollups;

use crate::harness::TestDb;
use chrono::NaiveDate;

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
          ('1', NULL, 'https://www.glamira.de/glamira-armband-seldor-skug870198.html', 'de'),
          ('3', NULL, NULL, NULL), ('4', NULL, NULL, NULL),
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
    // The triggers counted the inserts as pending; fold them, as the folder would.
    c.execute("SELECT streamer_fold_rollups()", &[]).unwrap();
    db
}

fn rows(db: &TestDb, sql: &str) -> Vec<postgres::Row> {
    db.client()
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

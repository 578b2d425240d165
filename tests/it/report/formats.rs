//! `report::run` in the table, CSV and JSON formats.

use crate::harness::TestDb;
use chrono::NaiveDate;
use streamer::report::{self, Format};

use super::{day, seeded};

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
            "report,rank,product_key,name,current_url,views,name_source",
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
        r#"top_products,1,10,"Ring <b>&""'",https://www.glamira.de/ring-10.html,5,catalog"#
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
    assert_eq!(v["top_products"][3]["name"], "Glamira Armband Seldor");
    assert_eq!(v["top_products"][3]["name_source"], "derived");
    assert_eq!(v["top_products"][4]["name"], serde_json::Value::Null);
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

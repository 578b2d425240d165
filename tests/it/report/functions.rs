//! Each report's SQL function on the test day: exactly the rows and order worked out by hand.

use chrono::NaiveDate;

use super::{rows, seeded};

#[test]
fn top_products_ranks_by_views_then_key_bytes() {
    let db = seeded();
    type Row = (
        i32,
        String,
        Option<String>,
        Option<String>,
        i64,
        Option<String>,
    );
    let got: Vec<Row> = rows(&db, "SELECT * FROM report_top_products('2020-03-10')")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
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
            s("catalog"),
        ),
        (
            2,
            "2".into(),
            s("Necklace"),
            s("https://www.glamira.fr/necklace-2.html"),
            5,
            s("catalog"),
        ),
        (3, "7".into(), s("Bague élégante"), None, 4, s("catalog")),
        // no catalog name: derived from the URL's slug, its SKU token dropped
        (
            4,
            "1".into(),
            s("Glamira Armband Seldor"),
            s("https://www.glamira.de/glamira-armband-seldor-skug870198.html"),
            3,
            s("derived"),
        ),
        (5, "11".into(), None, None, 2, None),
        (6, "3".into(), None, None, 2, None),
        (7, "4".into(), None, None, 2, None),
        (8, "5".into(), None, None, 2, None),
        (9, "6".into(), None, None, 2, None),
        (10, "8".into(), None, None, 2, None),
    ];

    assert_eq!(got, want);
}

#[test]
fn product_names_are_derived_from_the_url_slug() {
    let db = seeded();
    for (url, want) in [
        (
            "https://www.glamira.de/glamira-armband-seldor-skug870198.html",
            Some("Glamira Armband Seldor"),
        ),
        (
            "https://www.glamira.fr/glamira-anillo-saphira-skug100335.html?alloy=white",
            Some("Glamira Anillo Saphira"),
        ),
        (
            "https://www.glamira.de/glamira_pendant__love-SKU12.htm#x",
            Some("Glamira Pendant Love"),
        ),
        (
            "https://www.glamira.de/glamira-ring-100123.html",
            Some("Glamira Ring 100123"),
        ),
        // no segment, or one without a letter, or no URL at all: no name
        ("https://www.glamira.de/", None),
        ("https://www.glamira.de", None),
        (
            "https://www.glamira.de/catalog/product/view/id/110474",
            None,
        ),
        ("not a url", None),
    ] {
        let got: Option<String> = db
            .client()
            .query_one("SELECT streamer_product_name($1)", &[&url])
            .unwrap()
            .get(0);
        assert_eq!(got.as_deref(), want, "{url}");
    }
    // A catalog name wins over the slug.
    let mut c = db.client();
    c.execute(
        "UPDATE dim_product SET name = 'Armband Seldor 585 Weißgold' WHERE product_key = '1'",
        &[],
    )
    .unwrap();
    let row = c
        .query_one(
            "SELECT name, name_source FROM report_top_products('2020-03-10') \
             WHERE product_key = '1'",
            &[],
        )
        .unwrap();
    let got: (String, String) = (row.get(0), row.get(1));
    assert_eq!(
        got,
        ("Armband Seldor 585 Weißgold".into(), "catalog".into())
    );
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

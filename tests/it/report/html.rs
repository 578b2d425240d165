//! The HTML page: self-contained, six charts, renders in headless Chromium.

use std::path::{Path, PathBuf};

use crate::harness::chromium::{self, Output};
use crate::harness::{TempDir, TestDb};
use chrono::NaiveDate;
use streamer::report::{self, Format};

use super::{day, seeded};

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
        "https://www.glamira.de/glamira-armband-seldor-skug870198.html",
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

/// Screenshot of `page` by headless Chromium; returns (its log, its NetLog).
fn screenshot(chromium: &Path, page: &Path, png: &Path, dir: &Path) -> (String, String) {
    let url = format!("file://{}", page.display());
    let run = chromium::run(chromium, &url, None, dir, Output::Screenshot(png));
    (run.stderr, run.netlog)
}

fn page_requests(netlog: &str) -> Vec<String> {
    chromium::page_requests(netlog, "file://")
}

/// The page loads in headless Chromium without any failed request and renders to a real
/// screenshot. Needs Debian's `chromium` package; skipped without it unless CI is set.
#[test]
fn html_page_renders_in_headless_chromium() {
    let Some(chromium) = chromium::require() else {
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

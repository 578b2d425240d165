//! `/dashboard` of a running `streamer run`: the `report --html` page of today, read live
//! from PostgreSQL, as headless Chromium renders it; its views follow each load exactly;
//! its structure (the six charts, the totals, the reload) stays; it fetches nothing; a bad
//! date is a 400, an unreachable PostgreSQL a 503 with its words and no password.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::harness::check::{cfg_path, warmup};
use crate::harness::chromium::{self, Output};
use crate::harness::http::get;
use crate::harness::produce;
use crate::harness::{free_port, spawn_streamer, unique_name, Broker, TempDir, TestDb};
use streamer::config::Config;
use streamer::report::live::Dashboard;
use streamer::report::REPORTS;
use streamer_produce::{Keys, ProduceArgs};

/// Events of today (UTC), spread over its hours by the day's shape.
fn today_events(events: u64, seed: u64) -> ProduceArgs {
    let midnight = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    ProduceArgs {
        events: Some(events),
        duration: None,
        rate: 0,
        seed,
        dup_rate: 0.02,
        bad_rate: 0.01,
        start: Some(midnight),
        span: Some(86_400),
        file: None,
        topic: None,
        ack_log: None,
        keys: Keys::Id,
    }
}

/// Produces `args` and returns the fact rows they will make.
fn produce_facts(cfg: &Config, args: &ProduceArgs) -> i64 {
    let r = produce::run(cfg, args).expect("produce");
    assert!(r.duplicates > 0 && r.malformed > 0, "{r:?}");
    (r.sent - r.duplicates - r.malformed) as i64
}

fn wait_for_facts(db: &TestDb, want: i64, streamer: &crate::harness::Streamer) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = db.count("fact_sales");
        if n == want {
            return;
        }
        assert!(n < want, "{n} facts, more than the {want} produced");
        assert!(
            Instant::now() < deadline,
            "{n} of {want} facts after 120 s: {}",
            streamer.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `data-value` of the element with id `id` in a serialised DOM.
fn value_of(dom: &str, id: &str) -> i64 {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let rest = &dom[at..];
    let tag_end = rest.find('>').unwrap_or(rest.len());
    let attr = "data-value=\"";
    let v = rest[..tag_end]
        .find(attr)
        .map(|i| &rest[i + attr.len()..tag_end])
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("#{id} has no data-value: {}", &rest[..tag_end]));
    v.parse()
        .unwrap_or_else(|e| panic!("#{id} data-value {v:?}: {e}"))
}

/// The DOM of `/dashboard<query>` once headless Chromium has loaded it, checking that the
/// page made no request but its own.
fn dump(chromium: &Path, port: u16, query: &str, dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let url = format!("http://127.0.0.1:{port}/dashboard{query}");
    let hostport = format!("127.0.0.1:{port}");
    let run = chromium::run(chromium, &url, Some(&hostport), dir, Output::DumpDom);
    assert_only_its_own_requests(&run.netlog, &url);
    assert!(
        run.stdout.contains("</html>"),
        "no DOM on stdout: {}\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// Every request the page made is the page itself (or the favicon Chromium asks its host
/// for): no script, style, image or font is fetched.
fn assert_only_its_own_requests(netlog: &str, url: &str) {
    let requests = chromium::page_requests(netlog, "http://127.0.0.1");
    assert!(requests.iter().any(|r| r == url), "{requests:?}");
    let origin = url.split("/dashboard").next().unwrap_or_default();
    for r in &requests {
        assert!(
            r == url || *r == format!("{origin}/favicon.ico"),
            "the page fetched {r}"
        );
    }
}

/// The six charts, the totals, the date and the reload are on the page.
fn assert_structure(dom: &str, date: &str) {
    assert!(dom.contains(&format!("data-date=\"{date}\"")), "date");
    assert!(dom.contains(&format!("Product views on {date} (UTC)")));
    assert!(
        dom.contains("<meta http-equiv=\"refresh\" content=\"10\">"),
        "no reload"
    );
    for id in ["total-views", "total-products", "total-dead-letters"] {
        value_of(dom, id);
    }
    for kind in REPORTS {
        let key = kind.key();
        let section = dom
            .find(&format!("<section id=\"{key}\">"))
            .unwrap_or_else(|| panic!("no section {key}"));
        let chart = dom
            .find(&format!("id=\"chart-{key}\""))
            .unwrap_or_else(|| panic!("no chart {key}"));
        assert!(chart > section, "chart {key} outside its section");
        let svg = dom[chart..].find("<svg").map(|i| chart + i);
        let next = dom[chart..].find("</section>").map(|i| chart + i);
        assert!(svg.is_some() && svg < next, "chart {key} has no inline SVG");
    }
    assert_eq!(dom.matches("<svg").count(), REPORTS.len());
    for id in ["previous-day", "next-day", "today"] {
        assert!(dom.contains(&format!("id=\"{id}\" href=\"?")), "link {id}");
    }
    for needle in ["<script", "<link", "<img", "src=", "@import", "url("] {
        assert!(!dom.contains(needle), "the page holds {needle}");
    }
}

#[test]
fn dashboard_follows_the_loads_in_headless_chromium() {
    let Some(chromium) = chromium::require() else {
        return;
    };
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("dashboard");
    let topic = unique_name("dashboard");
    broker.create_topic(&topic, 2);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    let envs = [("STREAMER__METRICS__LISTEN", listen.as_str())];
    warmup(dir.path(), &cfg, &envs);
    let mut s = spawn_streamer(dir.path(), &["run", &cfg], &envs);
    s.wait_for_output(
        &format!("dashboard on http://{listen}/dashboard"),
        Duration::from_secs(60),
    );
    let config = Config::load(Path::new(&cfg)).expect("config");
    let today = Utc::now().date_naive().to_string();

    let first = produce_facts(&config, &today_events(1_500, 1));
    wait_for_facts(&db, first, &s);
    let dom = dump(&chromium, port, "", &dir.join("first"));
    assert_structure(&dom, &today);
    assert_eq!(
        value_of(&dom, "total-views"),
        first,
        "views of the first load"
    );
    assert!(value_of(&dom, "total-dead-letters") > 0);

    let second = produce_facts(&config, &today_events(700, 2));
    wait_for_facts(&db, first + second, &s);
    let again = dump(&chromium, port, "", &dir.join("second"));
    assert_structure(&again, &today);
    assert_eq!(
        value_of(&again, "total-views") - value_of(&dom, "total-views"),
        second,
        "views grew by the second load"
    );

    // A screenshot of the live page: a real rendering, not a blank window.
    let png = dir.join("dashboard.png");
    let url = format!("http://127.0.0.1:{port}/dashboard?refresh=0");
    let shot = chromium::run(
        &chromium,
        &url,
        Some(&listen),
        &dir.join("shot"),
        Output::Screenshot(&png),
    );
    assert_only_its_own_requests(&shot.netlog, &url);
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot: {e}"));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 50_000,
        "screenshot only {} bytes",
        bytes.len()
    );

    // Another day by ?date=, no reload by ?refresh=0, and a bad date.
    let (status, other) = get(port, "/dashboard?date=2020-02-29&refresh=0").expect("GET");
    assert_eq!(status, 200);
    assert!(other.contains("data-date=\"2020-02-29\""));
    assert!(other.contains("id=\"total-views\" data-value=\"0\""));
    assert!(!other.contains("http-equiv=\"refresh\""));
    for bad in ["date=2020-02-30", "date=today", "refresh=soon"] {
        let (status, body) = get(port, &format!("/dashboard?{bad}")).expect("GET");
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(bad), "{bad}: {body}");
    }
    // The other endpoints are as they were.
    assert_eq!(get(port, "/healthz"), Some((200, "ok\n".into())));
    let (status, metrics) = get(port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("streamer_messages_total"));
    assert_eq!(get(port, "/dashboardx").map(|r| r.0), Some(404));

    s.signal("TERM");
    let st = s.wait_or_fail(Duration::from_secs(30));
    assert!(st.success(), "exit after SIGTERM: {st}; {}", s.output());
}

/// PostgreSQL unreachable: 503 with what the client said, never the password.
#[test]
fn dashboard_without_postgres_answers_503() {
    const SECRET: &str = "Dash-b0ard-secret";
    let port = free_port(); // nothing listens there
    let text = format!(
        "[local_spark]\napp_name = dashboard_test\n[docker_postgres]\nhost_in = db\n\
         host_out = 127.0.0.1\ndatabase = d\nuser = u\npassword = {SECRET}\nport_in = 5432\n\
         port_out = {port}\n[remote_kafka]\nkafka.bootstrap.servers = 127.0.0.1:1\nsubscribe = t\n"
    );
    let cfg = Config::parse(&text, &[]).expect("config");
    let page = Dashboard::new(&cfg.postgres)
        .expect("dashboard")
        .page("refresh=3");
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.content_type.starts_with("text/html"));
    assert!(
        page.body.contains("connecting to PostgreSQL") && page.body.contains("refused"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("content=\"3\""),
        "reloads: {}",
        page.body
    );
    assert!(!page.body.contains(SECRET));
}

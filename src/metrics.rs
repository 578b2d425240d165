//! Operational counters (SPEC 8): the Prometheus registry behind `/metrics`, the health
//! state behind `/healthz`, and the numbers of the progress line. Cheap to update from
//! any thread; never holds a lock across I/O. [`serve`] is the HTTP server on `[metrics]
//! listen`, which also hands `/dashboard` to `report::live` on a thread of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::topic_partition::TopicPartition;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: String,
}

fn label(tp: &TopicPartition) -> PartitionLabel {
    PartitionLabel {
        topic: tp.topic().to_string(),
        partition: tp.partition.to_string(),
    }
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub messages: Counter,
    pub rows: Family<TableLabel, Counter>,
    pub duplicates: Counter,
    pub dead_letters: Family<ReasonLabel, Counter>,
    pub batches: Counter,
    pub batch_seconds: Histogram,
    pub transform_seconds: Counter<f64, AtomicU64>,
    pub load_seconds: Counter<f64, AtomicU64>,
    pub pg_retries: Counter,
    /// batches whose facts went through the staging table (a key was stored already)
    pub staging: Counter,
    pub lag: Family<PartitionLabel, Gauge>,
    /// offsets skipped because the log no longer held them (`on_offset_out_of_range`)
    pub skipped: Family<PartitionLabel, Counter>,
    pub rss_bytes: Gauge,
    /// dead letters over all reasons (the labelled family cannot be summed cheaply)
    dead_total: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// high watermark per partition, from librdkafka statistics
    high: HashMap<TopicPartition, i64>,
    /// next offset committed to PostgreSQL per partition this process owns
    committed: HashMap<TopicPartition, i64>,
    /// when the current run of failed writes began
    failing_since: Option<Instant>,
    /// the last commit
    last_commit: Option<Instant>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("streamer");
        let m = Metrics {
            messages: Counter::default(),
            rows: Family::default(),
            duplicates: Counter::default(),
            dead_letters: Family::default(),
            batches: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            transform_seconds: Counter::default(),
            load_seconds: Counter::default(),
            pg_retries: Counter::default(),
            staging: Counter::default(),
            lag: Family::default(),
            skipped: Family::default(),
            rss_bytes: Gauge::default(),
            registry: Registry::default(),
            dead_total: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        };
        registry.register(
            "messages",
            "Kafka messages consumed and committed",
            m.messages.clone(),
        );
        registry.register("rows", "Rows written, per table", m.rows.clone());
        registry.register(
            "duplicates",
            "Fact rows skipped because their sales_key was already written",
            m.duplicates.clone(),
        );
        registry.register(
            "dead_letters",
            "Dead letters written, per reason",
            m.dead_letters.clone(),
        );
        registry.register("batches", "Batches committed", m.batches.clone());
        registry.register(
            "batch_seconds",
            "Time from cutting a batch to its commit",
            m.batch_seconds.clone(),
        );
        registry.register(
            "transform_seconds",
            "Time spent transforming",
            m.transform_seconds.clone(),
        );
        registry.register(
            "load_seconds",
            "Time spent writing to PostgreSQL",
            m.load_seconds.clone(),
        );
        registry.register(
            "staging_batches",
            "Batches whose facts went through the staging table because a key was stored already",
            m.staging.clone(),
        );
        registry.register(
            "pg_retries",
            "PostgreSQL write attempts that failed and were retried",
            m.pg_retries.clone(),
        );
        registry.register(
            "consumer_lag",
            "High watermark minus the next offset committed to PostgreSQL",
            m.lag.clone(),
        );
        registry.register(
            "offsets_skipped",
            "Offsets skipped because the log no longer held them (on_offset_out_of_range)",
            m.skipped.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident set size",
            m.rss_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }

    pub fn add_rows(&self, table: &str, n: u64) {
        if n > 0 {
            self.rows
                .get_or_create(&TableLabel {
                    table: table.to_string(),
                })
                .inc_by(n);
        }
    }

    pub fn add_dead_letter(&self, reason: &str) {
        self.dead_letters
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
        self.dead_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Dead letters over all reasons.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_total.load(Ordering::Relaxed)
    }

    pub fn rows_of(&self, table: &str) -> u64 {
        self.rows
            .get_or_create(&TableLabel {
                table: table.to_string(),
            })
            .get()
    }

    /// A write failed (it will be retried or given up).
    pub fn write_failed(&self) {
        self.pg_retries.inc();
        let mut s = self.state();
        s.failing_since.get_or_insert_with(Instant::now);
    }

    /// A batch committed at `next` for these partitions.
    pub fn committed(&self, offsets: &[(TopicPartition, i64)]) {
        let mut s = self.state();
        s.failing_since = None;
        s.last_commit = Some(Instant::now());
        for (tp, n) in offsets {
            s.committed.insert(tp.clone(), *n);
        }
        Self::update_lag(&s, &self.lag);
    }

    /// Partitions now owned, at the offsets PostgreSQL holds for them.
    pub fn assigned(&self, offsets: &[(TopicPartition, i64)]) {
        let mut s = self.state();
        for (tp, n) in offsets {
            s.committed.insert(tp.clone(), *n);
        }
        Self::update_lag(&s, &self.lag);
    }

    /// Partitions no longer owned: lag, the progress line and /healthz leave them out.
    pub fn revoked(&self, parts: &[TopicPartition]) {
        let mut s = self.state();
        for tp in parts {
            s.committed.remove(tp);
            s.high.remove(tp);
            self.lag.remove(&label(tp));
        }
    }

    /// `n` offsets of `tp` were skipped (the log no longer held them).
    pub fn offsets_skipped(&self, tp: &TopicPartition, n: u64) {
        self.skipped.get_or_create(&label(tp)).inc_by(n);
    }

    /// librdkafka statistics: the high watermark of each partition.
    pub fn high_watermarks(&self, marks: impl IntoIterator<Item = (String, i32, i64)>) {
        let mut s = self.state();
        for (t, p, h) in marks {
            let tp = TopicPartition::new(t, p);
            if h >= 0 && s.committed.contains_key(&tp) {
                s.high.insert(tp, h);
            }
        }
        Self::update_lag(&s, &self.lag);
    }

    fn update_lag(s: &State, lag: &Family<PartitionLabel, Gauge>) {
        for (tp, next) in &s.committed {
            if let Some(h) = s.high.get(tp) {
                lag.get_or_create(&label(tp)).set((h - next).max(0));
            }
        }
    }

    /// Lag per owned partition where both ends are known, sorted (for the progress line).
    pub fn lags(&self) -> Vec<(String, i32, i64)> {
        let s = self.state();
        let mut v: Vec<_> = s
            .committed
            .iter()
            .filter_map(|(tp, next)| {
                let h = s.high.get(tp)?;
                Some((tp.topic().to_string(), tp.partition, (h - next).max(0)))
            })
            .collect();
        v.sort();
        v
    }

    /// Lag summed over partitions.
    pub fn total_lag(&self) -> i64 {
        self.lags().iter().map(|l| l.2).sum()
    }

    /// How long PostgreSQL writes have been failing without a success (None: they are not).
    pub fn failing_for(&self) -> Option<Duration> {
        self.state().failing_since.map(|t| t.elapsed())
    }

    /// Why the pipeline is unhealthy, if it is: PostgreSQL writes failing for longer than
    /// `after`, or a lag that no commit has reduced for longer than `after`.
    pub fn unhealthy(&self, after: Duration) -> Option<String> {
        if let Some(d) = self.failing_for().filter(|d| *d > after) {
            return Some(format!("PostgreSQL writes failing for {} s", d.as_secs()));
        }
        let lag = self.total_lag();
        let s = self.state();
        let idle = s.last_commit.map(|t| t.elapsed());
        if lag > 0 && idle.is_some_and(|d| d > after) {
            return Some(format!(
                "lag {lag} and no commit for {} s",
                idle.unwrap_or_default().as_secs()
            ));
        }
        None
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.rss_bytes.set(rss);
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Resident set size from /proc/self/statm (Linux); None elsewhere.
pub(crate) fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Dashboard requests waiting for the dashboard thread; more are answered 503 at once.
const DASHBOARD_QUEUE: usize = 4;

/// Serve `/metrics` and `/healthz` on `listen` from a small blocking thread, and
/// `/dashboard` (when given) from a thread of its own, so that a slow PostgreSQL never holds
/// up the other two. An empty address or `off` disables it. Returns the bound address (port
/// 0 picks a free one).
pub(crate) fn serve(
    listen: &str,
    metrics: std::sync::Arc<Metrics>,
    unhealthy_after: Duration,
    dashboard: Option<crate::report::live::Dashboard>,
) -> crate::error::Result<Option<std::net::SocketAddr>> {
    if listen.is_empty() || listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let server = tiny_http::Server::http(listen)
        .map_err(|e| crate::error::Error::fatal(format!("[metrics] listen {listen}"), e))?;
    let addr = server.server_addr().to_ip();
    let pages = dashboard.map(spawn_dashboard).transpose()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let is_dashboard = req.url().split('?').next() == Some("/dashboard");
                let req = match (&pages, is_dashboard) {
                    (Some(queue), true) => match queue.try_send(req) {
                        Ok(()) => continue,
                        Err(e) => e.into_inner(),
                    },
                    _ => req,
                };
                let (status, body, kind) = match req.url() {
                    "/metrics" => (200, metrics.render(), "text/plain; version=0.0.4"),
                    "/healthz" => match metrics.unhealthy(unhealthy_after) {
                        None => (200, "ok\n".to_string(), "text/plain"),
                        Some(why) => (503, format!("{why}\n"), "text/plain"),
                    },
                    _ if is_dashboard && pages.is_some() => (
                        503,
                        "the dashboard is busy with earlier requests; try again\n".to_string(),
                        "text/plain",
                    ),
                    _ => (404, "not found\n".to_string(), "text/plain"),
                };
                respond(req, status, body, kind, false);
            }
        })
        .map_err(|e| crate::error::Error::fatal("starting the metrics server", e))?;
    Ok(addr)
}

/// The dashboard's thread: answers queued `/dashboard` requests one at a time.
fn spawn_dashboard(
    dashboard: crate::report::live::Dashboard,
) -> crate::error::Result<crossbeam_channel::Sender<tiny_http::Request>> {
    let (tx, rx) = crossbeam_channel::bounded::<tiny_http::Request>(DASHBOARD_QUEUE);
    std::thread::Builder::new()
        .name("dashboard".into())
        .spawn(move || {
            for req in rx {
                let query = req.url().split_once('?').map_or("", |(_, q)| q).to_owned();
                let page = dashboard.page(&query);
                respond(req, page.status, page.body, page.content_type, true);
            }
        })
        .map_err(|e| crate::error::Error::fatal("starting the dashboard thread", e))?;
    Ok(tx)
}

/// Answers `req`; `no_store` asks browsers and proxies not to keep the page (a live one).
fn respond(req: tiny_http::Request, status: u16, body: String, kind: &str, no_store: bool) {
    let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
    let mut headers = vec![("Content-Type", kind)];
    if no_store {
        headers.push(("Cache-Control", "no-store"));
    }
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            resp = resp.with_header(h);
        }
    }
    if let Err(e) = req.respond(resp) {
        log::debug!("metrics response: {e}");
    }
}

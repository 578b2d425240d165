//! Test harness shared by the integration tests (`mod common;` in each `tests/*.rs`).
//!
//! Everything here talks to real services on loopback only:
//! - PostgreSQL at 127.0.0.1:5432 as `postgres` with trust auth (`scripts/ensure-postgres`);
//!   [`TestDb`] creates a fresh database per test and drops it afterwards.
//! - Tansu, a Kafka-protocol broker (`scripts/install-tansu`); [`Broker`] starts a private
//!   in-memory broker per test on a free port and kills it afterwards.
//!
//! Logs and scratch files go to per-test temp dirs ([`TempDir`]) that are kept (and their
//! path printed) when the test panics, and removed otherwise. Set `STREAMER_KEEP_TEST_DIRS=1`
//! to keep them always.
#![allow(dead_code)]

pub mod check;
pub mod events;
pub mod pg_cluster;

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

/// One Kafka record to produce: (key, value); None is no key / a tombstone.
pub type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

/// PostgreSQL endpoint used by every test.
pub const PG_HOST: &str = "127.0.0.1";
pub const PG_PORT: u16 = 5432;
pub const PG_USER: &str = "postgres";

/// How long the harness waits for a broker to come up or a topic to appear.
const SERVICE_WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Names and temp dirs
// ---------------------------------------------------------------------------------------

/// A process-unique, hard-to-collide lowercase hex suffix (pid, time, counter, random seed).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(n);
    format!("{:016x}", h.finish())
}

/// `prefix_<unique suffix>`: safe as a PostgreSQL identifier, topic, group or app name.
pub fn unique_name(prefix: &str) -> String {
    format!("{}_{}", prefix, unique_suffix())
}

fn keep_dirs() -> bool {
    std::env::var_os("STREAMER_KEEP_TEST_DIRS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A directory under the system temp dir, removed on drop unless the test is panicking
/// (then its path is printed so logs can be read).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        for _ in 0..16 {
            let path = std::env::temp_dir().join(format!("{}-{}", prefix, unique_suffix()));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create temp dir {}: {e}", path.display()),
            }
        }
        panic!("cannot create a unique temp dir with prefix {prefix}");
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            // kept via TempDir::keep: owns nothing any more
        } else if std::thread::panicking() || keep_dirs() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// Connection string for database `db` on the test server.
pub fn pg_conn_string(db: &str) -> String {
    format!("host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={db} connect_timeout=10")
}

fn pg_admin() -> postgres::Client {
    postgres::Client::connect(&pg_conn_string("postgres"), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to PostgreSQL at {PG_HOST}:{PG_PORT} as {PG_USER} \
             (run scripts/ensure-postgres): {e}"
        )
    })
}

/// A fresh database with a random name, dropped (WITH (FORCE)) when this value is dropped.
pub struct TestDb {
    name: String,
}

impl TestDb {
    pub fn create() -> TestDb {
        let name = unique_name("streamer_test");
        let mut admin = pg_admin();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// libpq-style connection string for this database.
    pub fn conn_string(&self) -> String {
        pg_conn_string(&self.name)
    }

    /// A new connection to this database.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conn_string(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.name))
    }

    /// The single `bigint` (or castable) value returned by `sql`, e.g. `SELECT count(*) FROM t`.
    pub fn scalar_i64(&self, sql: &str) -> i64 {
        let row = self
            .client()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.get::<_, i64>(0)
    }

    /// `SELECT count(*) FROM <table>`.
    pub fn count(&self, table: &str) -> i64 {
        self.scalar_i64(&format!("SELECT count(*) FROM {table}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        match postgres::Client::connect(&pg_conn_string("postgres"), postgres::NoTls) {
            Ok(mut admin) => {
                if let Err(e) = admin.batch_execute(&sql) {
                    eprintln!("warning: {sql}: {e}");
                }
            }
            Err(e) => eprintln!(
                "warning: cannot connect to drop database {}: {e}",
                self.name
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tansu broker
// ---------------------------------------------------------------------------------------

/// Path of the `tansu` binary: `$TANSU_BIN`, then `PATH`, then `$CARGO_HOME/bin`, `~/.cargo/bin`.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("tansu")));
    }
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(home).join("bin/tansu"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/tansu"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("tansu not found in PATH or ~/.cargo/bin: run scripts/install-tansu")
        })
}

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0 and released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Whether process `pid` holds a listening TCP socket on 127.0.0.1:`port` (Linux /proc);
/// `None` when that cannot be determined.
fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" {
                continue; // not LISTEN
            }
            let local_port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.insert(cols[9].to_string());
            }
        }
    }
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if let Ok(target) = fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                if inodes.contains(inode) {
                    return Some(true);
                }
            }
        }
    }
    Some(false)
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
    assert!(status.success(), "kill -{sig} {pid} failed: {status}");
}

/// A private Tansu broker (in-memory storage) on a free loopback port, killed on drop.
pub struct Broker {
    child: Child,
    port: u16,
    log_path: PathBuf,
    paused: AtomicBool,
    dir: TempDir,
}

impl Broker {
    /// Starts Tansu and waits (up to ~30 s) until it answers a Kafka metadata request.
    /// Retries with a new port when the chosen one turns out to be taken.
    pub fn start() -> Broker {
        let mut last_err = String::new();
        for attempt in 1..=5 {
            match Broker::start_on_port(free_port()) {
                Ok(broker) => return broker,
                Err(e) => {
                    eprintln!("broker start attempt {attempt} failed: {e}");
                    last_err = e;
                }
            }
        }
        panic!("could not start a Tansu broker: {last_err}");
    }

    /// One attempt to start Tansu on 127.0.0.1:`port`. On failure the child is killed and
    /// the error carries its log.
    pub fn start_on_port(port: u16) -> Result<Broker, String> {
        let bin = tansu_bin();
        let dir = TempDir::new("streamer-broker");
        let log_path = dir.join("tansu.log");
        let log = File::create(&log_path).expect("create broker log");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg("broker")
            .args(tansu_broker_args(&url))
            .env(
                "RUST_LOG",
                std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // Tansu reads these too; the flags win, but keep telemetry strictly off.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("SCHEMA_REGISTRY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut broker = Broker {
            child,
            port,
            log_path,
            paused: AtomicBool::new(false),
            dir,
        };
        match broker.wait_ready(SERVICE_WAIT) {
            Ok(()) => Ok(broker),
            Err(e) => {
                broker.kill();
                let err = format!(
                    "tansu on port {port}: {e}; log {}:\n{}",
                    broker.log_path.display(),
                    broker.log()
                );
                Err(err)
            }
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let consumer: BaseConsumer = self
            .base_config()
            .create()
            .map_err(|e| format!("create metadata client: {e}"))?;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("tansu exited early with {status}"));
            }
            if self.log().contains("Address already in use") {
                return Err(format!("port {} already in use", self.port));
            }
            match consumer.fetch_metadata(None, Duration::from_millis(1000)) {
                // The answer must come from our child, not from another process that
                // happened to grab the port (Tansu does not exit when its bind fails).
                // (A collision shows up in the log above on the next round.)
                Ok(md)
                    if !md.brokers().is_empty()
                        && listens_on(self.child.id(), self.port) != Some(false) =>
                {
                    return Ok(())
                }
                Ok(_) => {}
                Err(_) if Instant::now() < deadline => {}
                Err(e) => return Err(format!("no metadata within {timeout:?}: {e}")),
            }
            if Instant::now() >= deadline {
                return Err(format!("no broker in metadata within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// "127.0.0.1:PORT"
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Freezes the broker process (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Client config with just the bootstrap servers (and short socket timeouts).
    pub fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("socket.timeout.ms", "10000")
            .set("broker.address.family", "v4");
        c
    }

    /// Consumer config for group `group`: earliest, partition EOF events on, no auto commit,
    /// `fetch.wait.max.ms=10` (Tansu holds every fetch that long).
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.base_config();
        c.set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .set("session.timeout.ms", "10000");
        c
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.base_config().create().expect("create AdminClient")
    }

    /// Number of partitions of `topic` in the broker's metadata (0 when unknown).
    pub fn partition_count(&self, topic: &str) -> usize {
        let consumer: BaseConsumer = self.base_config().create().expect("metadata client");
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
                .unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Creates `topic` with `partitions` partitions (replication 1) and waits until the
    /// metadata shows all of them with a leader.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin = self.admin();
        let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = futures_executor::block_on(admin.create_topics([&new_topic], &opts))
            .unwrap_or_else(|e| {
                panic!(
                    "create topic {topic}: {e}\nbroker log: {}",
                    self.log_path.display()
                )
            });
        for r in results {
            if let Err((name, code)) = r {
                if code != RDKafkaErrorCode::TopicAlreadyExists {
                    panic!(
                        "create topic {name}: {code:?}\nbroker log: {}",
                        self.log_path.display()
                    );
                }
            }
        }
        let consumer: BaseConsumer = self.base_config().create().expect("metadata client");
        let deadline = Instant::now() + SERVICE_WAIT;
        loop {
            if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                let ready = md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0)
                });
                if ready {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "topic {topic} did not show {partitions} partitions within {SERVICE_WAIT:?}; broker log: {}",
                self.log_path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn producer(&self) -> FutureProducer {
        let mut c = self.base_config();
        c.set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("enable.idempotence", "false");
        c.create().expect("create producer")
    }

    /// Produces keyed messages (the default partitioner spreads them by key), flushes, and
    /// panics on any delivery error. Returns `(partition, offset)` of each message, in order.
    pub fn produce(&self, topic: &str, messages: &[Record]) -> Vec<(i32, i64)> {
        let producer = self.producer();
        let records = messages.iter().map(|(k, v)| {
            let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = k {
                r = r.key(k.as_slice());
            }
            if let Some(v) = v {
                r = r.payload(v.as_slice());
            }
            r
        });
        self.send_all(&producer, topic, records.collect())
    }

    /// Produces values (no key) to one partition; same guarantees as [`Broker::produce`].
    pub fn produce_to_partition(
        &self,
        topic: &str,
        partition: i32,
        values: &[Vec<u8>],
    ) -> Vec<(i32, i64)> {
        let producer = self.producer();
        let records = values.iter().map(|v| {
            FutureRecord::<'_, [u8], [u8]>::to(topic)
                .partition(partition)
                .payload(v.as_slice())
        });
        self.send_all(&producer, topic, records.collect())
    }

    fn send_all(
        &self,
        producer: &FutureProducer,
        topic: &str,
        records: Vec<FutureRecord<'_, [u8], [u8]>>,
    ) -> Vec<(i32, i64)> {
        let mut futures = Vec::with_capacity(records.len());
        for mut record in records {
            let deadline = Instant::now() + SERVICE_WAIT;
            loop {
                match producer.send_result(record) {
                    Ok(f) => {
                        futures.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                        if Instant::now() < deadline =>
                    {
                        record = r;
                        producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => panic!(
                        "produce to {topic}: {e}; broker log: {}",
                        self.log_path.display()
                    ),
                }
            }
        }
        producer.flush(Duration::from_secs(60)).unwrap_or_else(|e| {
            panic!(
                "flush to {topic}: {e}; broker log: {}",
                self.log_path.display()
            )
        });
        futures
            .into_iter()
            .map(|f| match futures_executor::block_on(f) {
                Ok(Ok(d)) => (d.partition, d.offset),
                Ok(Err((e, m))) => panic!(
                    "delivery to {topic}/{} failed: {e}; broker log: {}",
                    m.partition(),
                    self.log_path.display()
                ),
                Err(_) => panic!("delivery future for {topic} cancelled"),
            })
            .collect()
    }

    /// Reads `topic` from the beginning with a fresh group until partition EOF has been seen
    /// on all `partitions` partitions (and nothing new arrived since), or panics after
    /// `timeout`. Returns the messages in arrival order.
    pub fn consume_all(
        &self,
        topic: &str,
        partitions: usize,
        timeout: Duration,
    ) -> Vec<OwnedMessage> {
        let group = unique_name("harness_reader");
        let consumer: BaseConsumer = self
            .consumer_config(&group)
            .create()
            .expect("create consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut eof: HashSet<i32> = HashSet::new();
        while eof.len() < partitions {
            assert!(
                Instant::now() < deadline,
                "consume {topic}: EOF on {eof:?} of {partitions} partitions, {} messages after {timeout:?}; broker log: {}",
                out.len(),
                self.log_path.display()
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    eof.remove(&m.partition());
                    out.push(m.detach());
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    eof.insert(p);
                }
                Some(Err(e)) => eprintln!("consume {topic}: {e} (continuing)"),
            }
        }
        out
    }

    fn kill(&mut self) {
        if self.paused.load(Ordering::SeqCst) {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(self.child.id().to_string())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TempDir {
    /// Gives up ownership: the directory stays on disk; returns its path.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("broker log: {}", self.log_path.display());
        }
    }
}

/// The flags Tansu is started with (after `tansu broker`).
fn tansu_broker_args(url: &str) -> Vec<String> {
    vec![
        "--listener-url".into(),
        url.into(),
        "--advertised-listener-url".into(),
        url.into(),
        "--storage-engine".into(),
        "memory://tansu/".into(),
    ]
}

// ---------------------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------------------

/// Writes `dir/config.ini` in the seed's format (SPEC 3) for a local run against `bootstrap`
/// and database `db_name`, subscribing to `topic` from the earliest offset; `extra_ini`
/// (e.g. a `[pipeline]` section) is appended verbatim.
pub fn write_config(
    dir: &Path,
    bootstrap: &str,
    db_name: &str,
    topic: &str,
    extra_ini: &str,
) -> PathBuf {
    let app = unique_name("streamer_it");
    let mut text = format!(
        "[local_spark]\n\
         app_name = {app}\n\
         \n\
         [docker_postgres]\n\
         host_in = db\n\
         host_out = {PG_HOST}\n\
         database = {db_name}\n\
         user = {PG_USER}\n\
         password =\n\
         port_in = 5432\n\
         port_out = {PG_PORT}\n\
         \n\
         [remote_kafka]\n\
         kafka.bootstrap.servers = {bootstrap}\n\
         kafka.fetch.wait.max.ms = 10\n\
         kafka.session.timeout.ms = 6000\n\
         kafka.heartbeat.interval.ms = 500\n\
         subscribe = {topic}\n\
         startingOffsets = earliest\n"
    );
    if !extra_ini.is_empty() {
        text.push('\n');
        text.push_str(extra_ini);
        if !extra_ini.ends_with('\n') {
            text.push('\n');
        }
    }
    let path = dir.join("config.ini");
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

// ---------------------------------------------------------------------------------------
// The streamer binary
// ---------------------------------------------------------------------------------------

/// Path of the `streamer` binary built by cargo for these tests.
pub fn streamer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_streamer"))
}

/// A running `streamer` whose stdout and stderr go to `output_path`. Killed on drop if
/// still running.
pub struct Streamer {
    pub child: Child,
    pub output_path: PathBuf,
}

impl Streamer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Output (stdout and stderr interleaved) so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.output_path).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for exit; `None` when still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }

    /// Waits for exit; on timeout kills it and panics with its output.
    pub fn wait_or_fail(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(s) => s,
            None => {
                self.kill();
                panic!(
                    "streamer did not exit within {timeout:?}; output ({}):\n{}",
                    self.output_path.display(),
                    self.output()
                );
            }
        }
    }

    /// Polls the output until it contains `needle` or panics after `timeout`.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "streamer exited ({status}) before printing {needle:?}; output:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "streamer did not print {needle:?} within {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => panic!("wait for child {}: {e}", child.id()),
        }
    }
}

/// Starts `streamer <args>` with `RUST_LOG=info` (unless `envs` sets it) plus `envs`, cwd
/// the crate root, stdout+stderr to `output_path`.
pub fn spawn_streamer_to(output_path: &Path, args: &[&str], envs: &[(&str, &str)]) -> Streamer {
    let out = File::create(output_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", output_path.display()));
    let mut cmd = Command::new(streamer_bin());
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "info")
        // Tests run many streamers at once: each gets its own metrics port.
        .env("STREAMER__METRICS__LISTEN", "127.0.0.1:0")
        .env_remove("MODE")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone output handle"))
        .stderr(out);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", streamer_bin().display()));
    Streamer {
        child,
        output_path: output_path.to_path_buf(),
    }
}

/// Like [`spawn_streamer_to`], with the output in `dir/streamer-<n>.out`.
pub fn spawn_streamer(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Streamer {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    spawn_streamer_to(&dir.join(format!("streamer-{n}.out")), args, envs)
}

/// Result of [`run_to_exit`].
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    /// stdout and stderr interleaved.
    pub output: String,
}

impl RunOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the output unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit code {code}, got {}; output:\n{}",
            self.status,
            self.output
        );
        self
    }
}

/// Runs `streamer <args>` to completion (RUST_LOG=info); kills it and panics on timeout.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> RunOutput {
    run_to_exit_env(args, &[], timeout)
}

/// [`run_to_exit`] with extra environment variables.
pub fn run_to_exit_env(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> RunOutput {
    let dir = TempDir::new("streamer-run");
    let mut s = spawn_streamer(dir.path(), args, envs);
    let status = s.wait_or_fail(timeout);
    let output = s.output();
    RunOutput { status, output }
}

/// Appends a line to a file (handy for building event files).
pub fn append_line(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    writeln!(f, "{line}").unwrap();
}

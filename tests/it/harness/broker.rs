//! Apache Kafka for the tests: [`Broker::shared`] (the one broker of the test run) and
//! [`Broker::start`] (a private broker a test may freeze, kill or restart), both run by
//! `scripts/kafka-node`, plus the admin, produce and consume helpers the tests use.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::process::{listens_on, signal};
use super::temp::{keep_dirs, unique_name, TempDir};

/// One Kafka record to produce: (key, value); None is no key / a tombstone.
pub(crate) type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

/// How long the harness waits for a broker to come up.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long the harness waits for a topic to appear or a produce to finish.
const SERVICE_WAIT: Duration = Duration::from_secs(30);

/// The four loopback ports of one node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ports {
    pub plaintext: u16,
    pub sasl_plain: u16,
    pub sasl_scram: u16,
    pub controller: u16,
}

impl Ports {
    /// Four distinct loopback ports that were free a moment ago.
    pub(crate) fn free() -> Ports {
        let listeners: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let p: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("local_addr").port())
            .collect();
        Ports {
            plaintext: p[0],
            sasl_plain: p[1],
            sasl_scram: p[2],
            controller: p[3],
        }
    }
}

/// A JVM this harness started (absent for a broker given by `STREAMER_TEST_KAFKA`).
struct Node {
    /// The `scripts/kafka-node` child, which execs java: its pid is the JVM's.
    child: Mutex<Child>,
    /// Kills the JVM and removes `data_dir` once the test process is gone.
    watchdog: Mutex<Child>,
    data_dir: PathBuf,
    ports: Ports,
    paused: AtomicBool,
    /// Owns the data dir of a private broker (removed on drop); None for the shared one,
    /// whose dir the watchdog removes.
    _dir: Option<TempDir>,
}

/// A Kafka broker: PLAINTEXT, SASL_PLAINTEXT/PLAIN and SASL_PLAINTEXT/SCRAM-SHA-512
/// listeners on loopback (credentials in `scripts/kafka-node`).
pub(crate) struct Broker {
    bootstrap: String,
    sasl_plain: String,
    sasl_scram: String,
    log_path: PathBuf,
    node: Option<Node>,
}

fn kafka_node_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-node")
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn spawn_node(data_dir: &Path, ports: Ports, log_path: &Path) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .unwrap_or_else(|e| panic!("open broker log {}: {e}", log_path.display()));
    let script = kafka_node_script();
    Command::new(&script)
        .arg(data_dir)
        .arg(ports.plaintext.to_string())
        .arg(ports.sasl_plain.to_string())
        .arg(ports.sasl_scram.to_string())
        .arg(ports.controller.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", script.display()))
}

/// `sh` that SIGKILLs `jvm` (and removes `dir`, unless empty) once this test process is gone.
fn spawn_watchdog(jvm: u32, dir: &Path) -> Child {
    let dir = if keep_dirs() {
        String::new()
    } else {
        dir.to_string_lossy().into_owned()
    };
    Command::new("sh")
        .arg("-c")
        .arg(
            "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \
             kill -9 \"$2\" 2>/dev/null; [ -z \"$3\" ] || rm -rf \"$3\"",
        )
        .arg("broker-watchdog")
        .arg(std::process::id().to_string())
        .arg(jvm.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn broker watchdog")
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Broker {
    /// The one broker of this test run: the one `scripts/test` started when
    /// `STREAMER_TEST_KAFKA`, `STREAMER_TEST_KAFKA_SASL_PLAIN` and
    /// `STREAMER_TEST_KAFKA_SASL_SCRAM` are set (log: `STREAMER_TEST_KAFKA_LOG`), else one
    /// started on first use that lives as long as the test process. Tests using it must
    /// use their own topics and consumer groups ([`unique_name`]), and must not freeze,
    /// kill or restart it.
    pub(crate) fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(|| {
            if let Some(bootstrap) = env_nonempty("STREAMER_TEST_KAFKA") {
                let need = |name: &str| {
                    env_nonempty(name)
                        .unwrap_or_else(|| panic!("STREAMER_TEST_KAFKA is set but {name} is not"))
                };
                let broker = Broker {
                    bootstrap,
                    sasl_plain: need("STREAMER_TEST_KAFKA_SASL_PLAIN"),
                    sasl_scram: need("STREAMER_TEST_KAFKA_SASL_SCRAM"),
                    log_path: env_nonempty("STREAMER_TEST_KAFKA_LOG")
                        .map(PathBuf::from)
                        .unwrap_or_default(),
                    node: None,
                };
                if let Err(e) = broker.wait_ready(START_WAIT) {
                    panic!(
                        "the broker of STREAMER_TEST_KAFKA={}: {e}\n{}",
                        broker.bootstrap,
                        broker.log_tail()
                    );
                }
                broker
            } else {
                Broker::start_with(false)
            }
        })
    }

    /// A private broker (own JVM, temp dir and free ports), killed on drop. Retries with
    /// new ports when one turns out to be taken.
    pub(crate) fn start() -> Broker {
        Broker::start_with(true)
    }

    fn start_with(private: bool) -> Broker {
        let mut last_err = String::new();
        for attempt in 1..=5 {
            match Broker::start_on(Ports::free(), private) {
                Ok(broker) => return broker,
                Err(e) => {
                    eprintln!("broker start attempt {attempt} failed: {e}");
                    last_err = e;
                }
            }
        }
        panic!("could not start a Kafka broker: {last_err}");
    }

    /// One attempt to start a private broker on `ports`. On failure the JVM is killed and
    /// the error carries the tail of its log.
    pub(crate) fn start_on_ports(ports: Ports) -> Result<Broker, String> {
        Broker::start_on(ports, true)
    }

    fn start_on(ports: Ports, private: bool) -> Result<Broker, String> {
        let dir = TempDir::new("streamer-kafka");
        let data_dir = dir.join("node");
        let log_path = dir.join("kafka.log");
        File::create(&log_path).expect("create broker log");
        let child = spawn_node(&data_dir, ports, &log_path);
        let watchdog = spawn_watchdog(child.id(), dir.path());
        let (dir, data_dir) = if private {
            (Some(dir), data_dir)
        } else {
            // Lives as long as the process; the watchdog removes it.
            let path = dir.keep();
            (None, path.join("node"))
        };
        let broker = Broker {
            bootstrap: format!("127.0.0.1:{}", ports.plaintext),
            sasl_plain: format!("127.0.0.1:{}", ports.sasl_plain),
            sasl_scram: format!("127.0.0.1:{}", ports.sasl_scram),
            log_path,
            node: Some(Node {
                child: Mutex::new(child),
                watchdog: Mutex::new(watchdog),
                data_dir,
                ports,
                paused: AtomicBool::new(false),
                _dir: dir,
            }),
        };
        match broker.wait_ready(START_WAIT) {
            Ok(()) => Ok(broker),
            Err(e) => {
                broker.stop_node();
                Err(format!(
                    "kafka on {ports:?}: {e}; log {}:\n{}",
                    broker.log_path.display(),
                    broker.log_tail()
                ))
            }
        }
    }

    /// Waits until a metadata request over PLAINTEXT lists the broker (answered by our JVM,
    /// not by whatever else might hold the port) and both SASL ports accept connections.
    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let consumer: BaseConsumer = self
            .base_config()
            .create()
            .map_err(|e| format!("create metadata client: {e}"))?;
        let sasl: Vec<SocketAddr> = [&self.sasl_plain, &self.sasl_scram]
            .iter()
            .map(|a| a.parse().map_err(|e| format!("address {a}: {e}")))
            .collect::<Result<_, String>>()?;
        loop {
            if let Some(node) = &self.node {
                let mut child = node.child.lock().unwrap();
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    let log = self.log();
                    if log.contains("Address already in use") {
                        return Err(format!("a port of {:?} already in use", node.ports));
                    }
                    return Err(format!("kafka exited early with {status}"));
                }
            }
            let ours = match &self.node {
                Some(node) => {
                    listens_on(node.child.lock().unwrap().id(), node.ports.plaintext) != Some(false)
                }
                None => true,
            };
            let listed = ours
                && consumer
                    .fetch_metadata(None, Duration::from_millis(1000))
                    .is_ok_and(|md| !md.brokers().is_empty());
            if listed
                && sasl
                    .iter()
                    .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no broker in metadata of {} (and SASL ports open) within {timeout:?}",
                    self.bootstrap
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// PLAINTEXT bootstrap, "127.0.0.1:PORT".
    pub(crate) fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// SASL_PLAINTEXT bootstrap with mechanism PLAIN (`streamer` / `streamer-plain-secret`).
    pub(crate) fn sasl_plain_bootstrap(&self) -> String {
        self.sasl_plain.clone()
    }

    /// SASL_PLAINTEXT bootstrap with SCRAM-SHA-512 (`streamer-scram` / `streamer-scram-secret`).
    pub(crate) fn sasl_scram_bootstrap(&self) -> String {
        self.sasl_scram.clone()
    }

    /// The PLAINTEXT port.
    pub(crate) fn port(&self) -> u16 {
        self.bootstrap
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in bootstrap {}", self.bootstrap))
    }

    /// The JVM's pid, when this harness started it.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.node.as_ref().map(|n| n.child.lock().unwrap().id())
    }

    /// The broker's log file (empty when unknown).
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The broker's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last lines of the log, for panic messages.
    fn log_tail(&self) -> String {
        tail(&self.log(), 40)
    }

    fn private_node(&self, what: &str) -> &Node {
        match &self.node {
            Some(node) if node._dir.is_some() => node,
            _ => panic!("{what}: only a private broker (Broker::start) may be {what}d"),
        }
    }

    /// The first log segment of `topic`'s `partition` on a private broker's disk.
    pub(crate) fn first_segment(&self, topic: &str, partition: i32) -> PathBuf {
        let node = self.private_node("corrupt");
        node.data_dir
            .join("logs")
            .join(format!("{topic}-{partition}"))
            .join("00000000000000000000.log")
    }

    /// Freezes the broker process (SIGSTOP): connections stay open but nothing answers.
    pub(crate) fn pause(&self) {
        let node = self.private_node("pause");
        signal(node.child.lock().unwrap().id(), "STOP");
        node.paused.store(true, Ordering::SeqCst);
    }

    /// Thaws a paused broker (SIGCONT).
    pub(crate) fn resume(&self) {
        let node = self.private_node("resume");
        signal(node.child.lock().unwrap().id(), "CONT");
        node.paused.store(false, Ordering::SeqCst);
    }

    /// SIGKILLs the broker (no clean shutdown); [`Broker::restart`] brings it back.
    pub(crate) fn kill9(&self) {
        let node = self.private_node("kill");
        let mut child = node.child.lock().unwrap();
        if node.paused.swap(false, Ordering::SeqCst) {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the broker (SIGKILL) if running and starts it again on the same ports and
    /// storage; waits until it is ready.
    pub(crate) fn restart(&self) {
        self.kill9();
        let node = self.private_node("restart");
        let child = spawn_node(&node.data_dir, node.ports, &self.log_path);
        let watchdog = spawn_watchdog(child.id(), Path::new(""));
        *node.child.lock().unwrap() = child;
        let old = std::mem::replace(&mut *node.watchdog.lock().unwrap(), watchdog);
        reap(old);
        if let Err(e) = self.wait_ready(START_WAIT) {
            panic!("restarted broker: {e}\n{}", self.log_tail());
        }
    }

    /// Kills the JVM and its watchdog (a private broker's drop, or a failed start).
    fn stop_node(&self) {
        if let Some(node) = &self.node {
            let mut child = node.child.lock().unwrap();
            if node.paused.load(Ordering::SeqCst) {
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(child.id().to_string())
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
            let mut watchdog = node.watchdog.lock().unwrap();
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Client config with just the bootstrap servers (and short socket timeouts).
    pub(crate) fn base_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("socket.timeout.ms", "10000")
            .set("broker.address.family", "v4");
        c
    }

    /// Consumer config for group `group`: earliest, partition EOF events on, no auto commit,
    /// `fetch.wait.max.ms=10` (EOF is seen soon after the last message).
    pub(crate) fn consumer_config(&self, group: &str) -> ClientConfig {
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

    fn admin_options() -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(30)))
    }

    /// Number of partitions of `topic` in the broker's metadata (0 when unknown).
    pub(crate) fn partition_count(&self, topic: &str) -> usize {
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
    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) {
        self.create(NewTopic::new(topic, partitions, TopicReplication::Fixed(1)));
    }

    /// Like [`Broker::create_topic`], with `cleanup.policy=compact` and settings that let
    /// the log cleaner run within a test: segments roll after 100 ms (on the next append)
    /// and a partition is cleaned once 1% of it is dirty.
    pub(crate) fn create_compacted_topic(&self, topic: &str, partitions: i32) {
        self.create(
            NewTopic::new(topic, partitions, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
                .set("segment.ms", "100")
                .set("segment.bytes", "1048576")
                .set("min.cleanable.dirty.ratio", "0.01")
                .set("min.compaction.lag.ms", "0")
                .set("delete.retention.ms", "100"),
        );
    }

    /// Adds partitions to `topic` until it has `partitions`, and waits until the metadata
    /// shows all of them with a leader.
    pub(crate) fn add_partitions(&self, topic: &str, partitions: usize) {
        let results = futures_executor::block_on(self.admin().create_partitions(
            [&NewPartitions::new(topic, partitions)],
            &Broker::admin_options(),
        ))
        .unwrap_or_else(|e| panic!("add partitions to {topic}: {e}\n{}", self.log_tail()));
        for r in results {
            if let Err((name, code)) = r {
                panic!("add partitions to {name}: {code:?}\n{}", self.log_tail());
            }
        }
        self.wait_for_partitions(topic, partitions as i32);
    }

    fn create(&self, new_topic: NewTopic<'_>) {
        let topic = new_topic.name;
        let partitions = new_topic.num_partitions;
        let results = futures_executor::block_on(
            self.admin()
                .create_topics([&new_topic], &Broker::admin_options()),
        )
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}\n{}", self.log_tail()));
        for r in results {
            if let Err((name, code)) = r {
                if code != RDKafkaErrorCode::TopicAlreadyExists {
                    panic!("create topic {name}: {code:?}\n{}", self.log_tail());
                }
            }
        }
        self.wait_for_partitions(topic, partitions);
    }

    fn wait_for_partitions(&self, topic: &str, partitions: i32) {
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

    /// Deletes `topic` and waits until the metadata no longer lists it.
    pub(crate) fn delete_topic(&self, topic: &str) {
        let results = futures_executor::block_on(
            self.admin()
                .delete_topics(&[topic], &Broker::admin_options()),
        )
        .unwrap_or_else(|e| panic!("delete topic {topic}: {e}\n{}", self.log_tail()));
        for r in results {
            if let Err((name, code)) = r {
                panic!("delete topic {name}: {code:?}\n{}", self.log_tail());
            }
        }
        let deadline = Instant::now() + SERVICE_WAIT;
        while self.partition_count(topic) > 0 {
            assert!(
                Instant::now() < deadline,
                "topic {topic} still in the metadata {SERVICE_WAIT:?} after its deletion"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Deletes the records of `topic`/`partition` before `before_offset` (DeleteRecords);
    /// returns the partition's new low watermark.
    pub(crate) fn delete_records(&self, topic: &str, partition: i32, before_offset: i64) -> i64 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(before_offset))
            .expect("delete_records offset");
        let result =
            futures_executor::block_on(self.admin().delete_records(&tpl, &Broker::admin_options()))
                .unwrap_or_else(|e| panic!("delete records of {topic}/{partition}: {e}"));
        let elem = result
            .find_partition(topic, partition)
            .unwrap_or_else(|| panic!("delete records: no result for {topic}/{partition}"));
        elem.error()
            .unwrap_or_else(|e| panic!("delete records of {topic}/{partition}: {e}"));
        match elem.offset() {
            Offset::Offset(low) => low,
            other => panic!("delete records of {topic}/{partition}: low watermark {other:?}"),
        }
    }

    /// The tests' producer. One request in flight per broker connection: a request
    /// retried (a timeout on a loaded machine) then cannot land after the one sent behind
    /// it, so each partition holds the messages in the order given, which the expected
    /// tables rely on (a changed re-send after its original loses). Without idempotence,
    /// librdkafka's retries may reorder otherwise. That is the likeliest reading of one CI
    /// run where a late duplicate won: every message was read once, in order within its
    /// partition, with no fence refused.
    fn producer_config(&self) -> ClientConfig {
        let mut c = self.base_config();
        c.set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1");
        c
    }

    fn producer(&self) -> FutureProducer {
        self.producer_config().create().expect("create producer")
    }

    fn record<'a>(topic: &'a str, (k, v): &'a Record) -> FutureRecord<'a, [u8], [u8]> {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(k) = k {
            r = r.key(k.as_slice());
        }
        if let Some(v) = v {
            r = r.payload(v.as_slice());
        }
        r
    }

    /// Produces keyed messages (the default partitioner spreads them by key), flushes, and
    /// panics on any delivery error. Returns `(partition, offset)` of each message, in order.
    pub(crate) fn produce(&self, topic: &str, messages: &[Record]) -> Vec<(i32, i64)> {
        let producer = self.producer();
        let records = messages.iter().map(|m| Broker::record(topic, m));
        self.send_all(&producer, topic, records.collect())
    }

    /// Like [`Broker::produce`], in record batches compressed with `codec` (`gzip`,
    /// `snappy`, `lz4`, `zstd`); the broker keeps them as sent (`compression.type` is
    /// `producer` by default).
    pub(crate) fn produce_compressed(
        &self,
        topic: &str,
        messages: &[Record],
        codec: &str,
    ) -> Vec<(i32, i64)> {
        let mut c = self.producer_config();
        c.set("compression.codec", codec);
        let producer: FutureProducer = c.create().expect("create producer");
        let records = messages.iter().map(|m| Broker::record(topic, m));
        self.send_all(&producer, topic, records.collect())
    }

    /// Produces values (no key) to one partition; same guarantees as [`Broker::produce`].
    pub(crate) fn produce_to_partition(
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

    /// Produces each batch in a transaction of its own (one transactional producer), which
    /// is committed when its flag is true and aborted otherwise (after its records are in
    /// the log). Returns `(partition, offset)` of the committed records, in order.
    pub(crate) fn produce_transactional(
        &self,
        topic: &str,
        batches: &[(Vec<Record>, bool)],
    ) -> Vec<(i32, i64)> {
        let mut c = self.base_config();
        c.set("transactional.id", unique_name("harness_tx"))
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("transaction.timeout.ms", "60000");
        let producer: FutureProducer = c.create().expect("create transactional producer");
        let tx = |what: &str, r: Result<(), KafkaError>| {
            r.unwrap_or_else(|e| panic!("{what} on {topic}: {e}\n{}", self.log_tail()))
        };
        tx(
            "init_transactions",
            producer.init_transactions(SERVICE_WAIT),
        );
        let mut committed = Vec::new();
        for (records, commit) in batches {
            tx("begin_transaction", producer.begin_transaction());
            let records = records.iter().map(|m| Broker::record(topic, m)).collect();
            let positions = self.send_all(&producer, topic, records);
            if *commit {
                tx(
                    "commit_transaction",
                    producer.commit_transaction(SERVICE_WAIT),
                );
                committed.extend(positions);
            } else {
                tx(
                    "abort_transaction",
                    producer.abort_transaction(SERVICE_WAIT),
                );
            }
        }
        committed
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
                    Err((e, _)) => panic!("produce to {topic}: {e}\n{}", self.log_tail()),
                }
            }
        }
        producer
            .flush(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("flush to {topic}: {e}\n{}", self.log_tail()));
        futures
            .into_iter()
            .map(|f| match futures_executor::block_on(f) {
                Ok(Ok(d)) => (d.partition, d.offset),
                Ok(Err((e, m))) => panic!(
                    "delivery to {topic}/{} failed: {e}\n{}",
                    m.partition(),
                    self.log_tail()
                ),
                Err(_) => panic!("delivery future for {topic} cancelled"),
            })
            .collect()
    }

    /// Reads `topic` from the beginning with a fresh group until partition EOF has been seen
    /// on all `partitions` partitions (and nothing new arrived since), or panics after
    /// `timeout`. Returns the messages in arrival order.
    pub(crate) fn consume_all(
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
}

fn reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop_node();
        if std::thread::panicking() && self.node.is_some() {
            eprintln!("broker log: {}", self.log_path.display());
        }
    }
}

//! The Kafka side: the consumer and its context, rebalance events handed to the mode's loop
//! (assignment happens there, after partition queues are split and offsets are read from
//! PostgreSQL), per-partition readers that filter replays, report EOF (with a gap marker
//! when the end lies past the last record, e.g. after a transaction marker) and report a
//! stored offset that the log no longer holds instead of letting librdkafka skip it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::config::{Config, StartingOffsets};
use crate::error::{Error, Result};
use crate::lock::lock;
use crate::metrics::Metrics;
use crate::pipeline::Msg;
use crate::topic_partition::TopicPartition;

/// A rebalance, as librdkafka announced it; the loop acts on it after `poll` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    Assign(Vec<TopicPartition>),
    Revoke(Vec<TopicPartition>),
    Error(String),
}

/// Consumer context: records rebalances instead of assigning inside the callback.
#[derive(Default)]
pub struct Ctx {
    events: Mutex<Vec<Rebalance>>,
    /// where librdkafka's statistics (high watermarks) go
    metrics: Option<Arc<Metrics>>,
    /// since when no broker has been reachable (None: some broker is up)
    down_since: Mutex<Option<Instant>>,
    /// librdkafka's words when the broker refused our SASL login
    auth_failed: Mutex<Option<String>>,
    /// librdkafka's words for its last error (they name the broker: `host:port/id: ...`)
    last_error: Mutex<Option<String>>,
    /// set once the loop has stopped its readers: revocations are then answered at once
    /// (librdkafka's close waits for them)
    closing: AtomicBool,
}

impl Ctx {
    fn take(&self) -> Vec<Rebalance> {
        std::mem::take(&mut *lock(&self.events))
    }
}

impl ClientContext for Ctx {
    /// librdkafka's log, at [`crate::logging::librdkafka_level`].
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let level = crate::logging::librdkafka_level(fac, level);
        if fac == "COMMITFAIL" {
            log::log!(target: "librdkafka", level,
                "librdkafka: {fac} {log_message} (the group's offsets are for lag tools only; \
                 PostgreSQL holds the stream's)");
        } else {
            log::log!(target: "librdkafka", level, "librdkafka: {fac} {log_message}");
        }
    }

    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|b| b.state == "UP") {
            *lock(&self.down_since) = None;
        }
        if let Some(m) = &self.metrics {
            m.high_watermarks(statistics.topics.into_iter().flat_map(|(topic, t)| {
                t.partitions
                    .into_iter()
                    .filter(|(p, _)| *p >= 0)
                    .map(move |(p, part)| (topic.clone(), p, part.hi_offset))
            }));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            // Every end of partition also comes through here; it is not an error.
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                log::trace!("kafka: {reason}")
            }
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown) => {
                lock(&self.down_since).get_or_insert_with(Instant::now);
                log::warn!("kafka: {error}: {reason}");
            }
            _ if reason.is_empty() => log::warn!("kafka: {error}"),
            // A refused login does not pass by retrying: the loop stops on it.
            KafkaError::Global(RDKafkaErrorCode::Authentication) => {
                lock(&self.auth_failed).get_or_insert_with(|| reason.to_string());
                log::debug!("kafka: {error}: {reason}");
            }
            _ => {
                *lock(&self.last_error) = Some(reason.to_string());
                log::warn!("kafka: {error}: {reason}");
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if self.closing.load(Ordering::Acquire) {
            if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
                let res = match consumer.rebalance_protocol() {
                    RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
                    _ => consumer.unassign(),
                };
                if let Err(e) = res {
                    log::debug!("unassign while closing: {e}");
                }
            }
            return;
        }
        let parts: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition()))
            .collect();
        let event = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(parts),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(parts),
            other => Rebalance::Error(format!("{other:?}")),
        };
        lock(&self.events).push(event);
    }
}

pub type Consumer_ = BaseConsumer<Ctx>;

/// The metadata client's context: its errors repeat the consumer's, so they stay at debug.
pub struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        log::debug!("kafka (metadata client): {error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

/// The subscribed consumer, shared by the loop and its partition readers.
pub struct Source {
    pub consumer: Arc<Consumer_>,
    /// `security.protocol` and `sasl.mechanism(s)` as configured, for error messages
    auth: String,
    /// `bootstrap.servers` as configured, for error messages
    brokers: String,
    /// A second client of the same configuration that never fetches, for metadata and
    /// watermarks: the consumer's connection is often held by a fetch that the broker
    /// keeps waiting up to `fetch.wait.max.ms`, and requests on it queue behind that.
    /// (None only while the Source is dropped)
    meta: Option<BaseConsumer<Quiet>>,
    /// per assigned partition, the offset after the last message its reader handed out
    /// (where fetching resumes when the assignment is renewed, see [`Source::restart_at`])
    fetching: Mutex<HashMap<TopicPartition, Arc<AtomicI64>>>,
    starting: StartingOffsets,
    retry_budget: Duration,
}

/// How long [`Source::close`] waits for librdkafka to close the consumer (leave the group,
/// answer the revocation) before leaving the rest to the drop.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

impl Drop for Source {
    /// librdkafka sleeps 100 ms while it destroys a client (its issue #1895): the metadata
    /// client, which never joined the group, is destroyed on a thread of its own while the
    /// consumer is, instead of after it.
    fn drop(&mut self) {
        if let Some(meta) = self.meta.take() {
            let closing = std::thread::Builder::new()
                .name("kafka-meta-close".into())
                .spawn(move || drop(meta));
            if let Err(e) = closing {
                log::debug!("closing the metadata client inline: {e}");
            }
        }
    }
}

/// librdkafka settings that our delivery guarantee depends on; the user may not override
/// them. Start positions are chosen by us (`startingOffsets`, stored before anything is
/// read) and a stored offset outside the log is reported to us: librdkafka's own
/// `auto.offset.reset` would skip to an end silently.
const OWNED: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "true"),
    ("auto.offset.reset", "error"),
];

pub fn client_config(cfg: &Config) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("client.id", &cfg.kafka.client_id);
    cc.set("group.id", &cfg.kafka.group_id);
    for (k, v) in &cfg.kafka.properties {
        cc.set(k, &v.0);
    }
    for (k, v) in OWNED {
        if cc.get(k).is_some_and(|set| set != *v) {
            log::warn!(
                "[remote_kafka] kafka.{k} is ignored: streamer needs {k} = {v} \
                 (see startingOffsets and [pipeline] on_offset_out_of_range)"
            );
        }
        cc.set(*k, *v);
    }
    cc
}

/// `fetch.wait.max.ms` of a run `--until-caught-up`: the broker holds an empty fetch this
/// long, and the run ends at the fetch that finds each partition's end, so an idle run took
/// 150-270 ms with 50 ms and 100-190 ms with this; the run ends soon after, so its empty
/// fetches (a hundred a second) do not last.
const END_WAIT_MS: &str = "10";

impl Source {
    /// Create the consumer and subscribe to the configured topics; `until_caught_up`: for a
    /// run that ends at the partitions' ends (see [`END_WAIT_MS`]).
    pub fn subscribe(cfg: &Config, metrics: Arc<Metrics>, until_caught_up: bool) -> Result<Source> {
        let mut cc = client_config(cfg);
        // Defaults the user may override: statistics feed the lag metric; librdkafka's
        // prefetch (64 MiB per partition by default) would dominate our memory, and 1 MiB
        // per partition keeps the loaders fed as long as it is refilled at once. Once a
        // partition's prefetch queue is over that bound, librdkafka waits
        // fetch.queue.backoff.ms (1 s by default) before fetching it again, while a
        // loader drains it in a fraction of that: with the default, the loaders sat idle
        // three quarters of the time waiting for messages. A partition's end is only
        // known from a fetch that comes back empty, which the broker holds for
        // fetch.wait.max.ms when no partition has data (500 ms by default): a batch at the
        // end of a partition, and `--until-caught-up`, waited that long for it; 50 ms
        // costs an idle consumer some twenty empty fetches a second (a run
        // `--until-caught-up`, which ends there, waits END_WAIT_MS). A member learns of a
        // rebalance (another member joining, e.g. a second process started from cron) from
        // its next heartbeat: every 3 s by default, which held a joining member's first
        // assignment that long; 500 ms is two small requests a second. Partitions added
        // to a topic are seen at the next metadata refresh, every 5 minutes by default
        // (Spark looks at every micro-batch): every 10 s, one small request.
        for (k, v) in [
            ("statistics.interval.ms", "5000"),
            ("topic.metadata.refresh.interval.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
            ("queued.max.messages.kbytes", "1024"),
            ("fetch.queue.backoff.ms", "10"),
            (
                "fetch.wait.max.ms",
                if until_caught_up { END_WAIT_MS } else { "50" },
            ),
        ] {
            // under the consumer group protocol of KIP-848 (`group.protocol = consumer`)
            // the broker sets the heartbeat, and librdkafka refuses the property
            let broker_side = k == "heartbeat.interval.ms"
                && cc
                    .get("group.protocol")
                    .is_some_and(|p| p.eq_ignore_ascii_case("consumer"));
            if cc.get(k).is_none() && !broker_side {
                cc.set(k, v);
            }
        }
        let ctx = Ctx {
            metrics: Some(metrics),
            ..Ctx::default()
        };
        let mut meta_cc = cc.clone();
        meta_cc.set("statistics.interval.ms", "0");
        let meta: BaseConsumer<Quiet> = meta_cc.create_with_context(Quiet).map_err(|e| {
            Error::Config(format!(
                "[remote_kafka]: cannot create consumer: {}",
                crate::config::kafka_error_text(&e)
            ))
        })?;
        let consumer: Consumer_ = cc.create_with_context(ctx).map_err(|e| {
            Error::Config(format!(
                "[remote_kafka]: cannot create consumer: {}",
                crate::config::kafka_error_text(&e)
            ))
        })?;
        let topics: Vec<&str> = cfg.kafka.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| Error::fatal(format!("subscribing to {topics:?}"), e))?;
        let setting = |k: &str| cc.get(k).map(str::to_string);
        let auth = format!(
            "security.protocol {}, SASL mechanism {}",
            setting("security.protocol").unwrap_or_else(|| "plaintext".into()),
            setting("sasl.mechanism")
                .or_else(|| setting("sasl.mechanisms"))
                .unwrap_or_else(|| "none".into())
        );
        let brokers = setting("bootstrap.servers").unwrap_or_default();
        Ok(Source {
            consumer: Arc::new(consumer),
            auth,
            brokers,
            meta: Some(meta),
            fetching: Mutex::new(HashMap::new()),
            starting: cfg.kafka.starting_offsets.clone(),
            retry_budget: cfg.pipeline.retry_budget,
        })
    }

    /// A retriable Kafka error in `context`, naming the brokers and what librdkafka last
    /// said about them (which broker, which failure), when it said something.
    fn kafka_error(&self, context: String, e: KafkaError) -> Error {
        let said = lock(&self.consumer.context().last_error).clone();
        let context = match said {
            Some(said) => format!(
                "{context} (brokers {}; librdkafka's last error: {said})",
                self.brokers
            ),
            None => format!("{context} (brokers {})", self.brokers),
        };
        Error::retriable(context, e)
    }

    /// How long no broker has been reachable (None: one is).
    pub fn down_for(&self) -> Option<Duration> {
        lock(&self.consumer.context().down_since).map(|t| t.elapsed())
    }

    /// Serve the main queue for up to `timeout`; returns the rebalances it announced.
    /// A message on the main queue means a partition queue was not split in time: that
    /// is reported as an error so the caller can stop safely rather than lose it.
    pub fn poll_events(&self, timeout: Duration) -> Result<Vec<Rebalance>> {
        match self.consumer.poll(timeout) {
            None => {}
            Some(Ok(m)) => {
                return Err(Error::fatal(
                    format!("{}/{} offset {}", m.topic(), m.partition(), m.offset()),
                    "message arrived on the main queue instead of its partition queue",
                ))
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                    return Err(Error::fatal(
                        format!("kafka consumer (brokers {})", self.brokers),
                        e,
                    ));
                }
                log::warn!("kafka (brokers {}): {e}", self.brokers);
            }
        }
        if let Some(reason) = lock(&self.consumer.context().auth_failed).clone() {
            return Err(Error::fatal(
                format!("kafka: logging in ({})", self.auth),
                format!("the broker refused the credentials: {reason}"),
            ));
        }
        if let Some(d) = self.down_for().filter(|d| *d > self.retry_budget) {
            let said = lock(&self.consumer.context().last_error).clone();
            return Err(Error::fatal(
                format!("kafka (brokers {})", self.brokers),
                format!(
                    "no broker reachable for {} s (retry budget spent); librdkafka's last \
                     error: {}",
                    d.as_secs(),
                    said.as_deref().unwrap_or("none")
                ),
            ));
        }
        Ok(self.consumer.context().take())
    }

    /// The offset a partition with no stored row starts from (`startingOffsets`): the
    /// log's start or end now (under `isolation.level=read_committed`, the end is the last
    /// stable offset), or the one Spark's JSON form gives it.
    pub fn start_offset(&self, tp: &TopicPartition) -> Result<i64> {
        let ends = self.watermarks(tp)?;
        self.starting
            .start(tp.topic(), tp.partition, ends)
            .ok_or_else(|| {
                Error::fatal(
                    format!("the start of {tp}"),
                    "startingOffsets gives no offset for this partition (its JSON form must \
                     name every partition, as in Spark)",
                )
            })
    }

    fn meta(&self) -> Result<&BaseConsumer<Quiet>> {
        self.meta
            .as_ref()
            .ok_or_else(|| Error::fatal("asking Kafka", "the metadata client is closed"))
    }

    /// The log's start and end of a partition, asked of the broker.
    /// A partition added to the topic since this client last read its metadata is unknown
    /// to it: the metadata is read again, then the offsets once more.
    pub fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        let meta = self.meta()?;
        let ask = || meta.fetch_watermarks(tp.topic(), tp.partition, Duration::from_secs(10));
        let res = match ask() {
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownPartition) => {
                log::debug!("{tp} unknown to the metadata client; reading the metadata again");
                meta.fetch_metadata(Some(tp.topic()), Duration::from_secs(10))
                    .map_err(|e| {
                        self.kafka_error(format!("reading the metadata of {}", tp.topic()), e)
                    })?;
                ask()
            }
            res => res,
        };
        res.map_err(|e| self.kafka_error(format!("reading the offsets of {tp} from Kafka"), e))
    }

    /// Partitions of the subscribed topics, as the broker's metadata has them now.
    pub fn partitions_of(&self, topics: &[String]) -> Result<Vec<TopicPartition>> {
        let mut out = Vec::new();
        for topic in topics {
            let md = self
                .meta()?
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(|e| self.kafka_error(format!("reading the metadata of {topic}"), e))?;
            for t in md.topics().iter().filter(|t| t.name() == topic) {
                if t.error().is_none() {
                    out.extend(
                        t.partitions()
                            .iter()
                            .map(|p| TopicPartition::new(topic.as_str(), p.id())),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Split the queues of `parts`, then assign them at the offsets PostgreSQL holds.
    pub fn assign(&self, parts: &[(TopicPartition, i64)]) -> Result<Vec<PartitionReader>> {
        let mut readers = Vec::with_capacity(parts.len());
        let tpl = at_offsets(parts.iter().map(|(tp, next)| (tp, *next)))
            .map_err(|e| Error::fatal("assigning partitions", e))?;
        for (tp, next) in parts {
            let queue = self
                .consumer
                .split_partition_queue(tp.topic(), tp.partition)
                .ok_or_else(|| Error::fatal(tp.to_string(), "cannot split partition queue"))?;
            let delivered = Arc::new(AtomicI64::new(*next));
            lock(&self.fetching).insert(tp.clone(), delivered.clone());
            readers.push(PartitionReader {
                tp: tp.clone(),
                consumer: self.consumer.clone(),
                queue,
                next: *next,
                delivered,
                at_eof: false,
            });
        }
        let res = if self.cooperative() {
            self.consumer.incremental_assign(&tpl)
        } else {
            self.consumer.assign(&tpl)
        };
        res.map_err(|e| Error::fatal("assigning partitions", e))?;
        Ok(readers)
    }

    /// Give partitions back after their readers are stopped.
    pub fn unassign(&self, parts: &[TopicPartition]) -> Result<()> {
        {
            let mut fetching = lock(&self.fetching);
            if self.cooperative() {
                parts.iter().for_each(|tp| drop(fetching.remove(tp)));
            } else {
                fetching.clear();
            }
        }
        let res = if self.cooperative() {
            let mut tpl = TopicPartitionList::new();
            for tp in parts {
                tpl.add_partition(tp.topic(), tp.partition);
            }
            self.consumer.incremental_unassign(&tpl)
        } else {
            self.consumer.unassign()
        };
        res.map_err(|e| Error::fatal("unassigning partitions", e))
    }

    fn cooperative(&self) -> bool {
        matches!(
            self.consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        )
    }

    /// Called when every reader has stopped: leave the group cleanly (partitions go to
    /// the other members at once instead of after the session timeout), and close the
    /// consumer here, polling every few milliseconds until librdkafka says it is closed
    /// (at most [`CLOSE_WAIT`]). rust-rdkafka's drop would close it otherwise, polling
    /// 100 ms at a time, and its poll returns only at a message or its timeout: every run
    /// ended 100 ms later than its consumer had closed. That drop then finds the consumer
    /// closed and logs librdkafka's answer, which `main` leaves out of the log.
    pub fn close(&self) {
        self.consumer
            .context()
            .closing
            .store(true, Ordering::Release);
        self.consumer.unsubscribe();
        // Under the cooperative protocol the unsubscribe's revocation, served by the
        // polls below, unassigns incrementally; a plain unassign is refused there
        // (librdkafka warns of it), and one of its own before the revocation left the
        // group unleft at times (the others waited out the session timeout).
        if !self.cooperative() {
            if let Err(e) = self.consumer.unassign() {
                log::debug!("unassign on close: {e}");
            }
        }
        let started = Instant::now();
        if let Err(e) = self.consumer.close_queue() {
            log::debug!("closing the consumer: {e}");
            return;
        }
        while !self.consumer.closed() && started.elapsed() < CLOSE_WAIT {
            // rebalance callbacks are served here (answered at once, see `closing`); the
            // assignment is gone, so no message comes
            let _ = self.consumer.poll(Duration::from_millis(5));
        }
        if !self.consumer.closed() {
            log::debug!("the consumer did not close within {CLOSE_WAIT:?}; dropping it");
        }
    }

    /// Tell the Kafka group how far PostgreSQL has committed (for lag tools only).
    pub fn commit_group_offsets(&self, offsets: &[(TopicPartition, i64)]) {
        let tpl = match at_offsets(offsets.iter().map(|(tp, o)| (tp, *o))) {
            Ok(tpl) => tpl,
            Err(e) => {
                log::debug!("group offsets: {e}");
                return;
            }
        };
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            log::debug!("committing group offsets: {e}");
        }
    }

    /// Move a partition's reader to `next`, the offset PostgreSQL holds for it.
    pub fn seek(&self, reader: &mut PartitionReader, next: i64) -> Result<()> {
        self.consumer
            .seek(
                reader.tp.topic(),
                reader.tp.partition,
                Offset::Offset(next),
                Duration::from_secs(10),
            )
            .map_err(|e| Error::fatal(format!("seeking {} to {next}", reader.tp), e))?;
        reader.next = next;
        reader.delivered.store(next, Ordering::Release);
        reader.at_eof = false;
        Ok(())
    }

    /// Fetch `reader`'s partition again from `next` after librdkafka stopped it (an offset
    /// out of range leaves it stopped, where a seek is refused). With the eager protocol
    /// the whole assignment is renewed: the other partitions resume where their readers
    /// are, and what they see again is skipped as a replay.
    pub fn restart_at(&self, reader: &mut PartitionReader, next: i64) -> Result<()> {
        let ctx = || format!("fetching {} again from {next}", reader.tp);
        reader.delivered.store(next, Ordering::Release);
        if self.cooperative() {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(reader.tp.topic(), reader.tp.partition);
            self.consumer
                .incremental_unassign(&tpl)
                .map_err(|e| Error::fatal(ctx(), e))?;
            let tpl = at_offsets([(&reader.tp, next)]).map_err(|e| Error::fatal(ctx(), e))?;
            self.consumer
                .incremental_assign(&tpl)
                .map_err(|e| Error::fatal(ctx(), e))?;
        } else {
            let fetching = lock(&self.fetching);
            let tpl = at_offsets(
                fetching
                    .iter()
                    .map(|(tp, at)| (tp, at.load(Ordering::Acquire))),
            )
            .map_err(|e| Error::fatal(ctx(), e))?;
            drop(fetching);
            self.consumer
                .assign(&tpl)
                .map_err(|e| Error::fatal(ctx(), e))?;
        }
        reader.next = next;
        reader.at_eof = false;
        Ok(())
    }
}

/// A partition list of `tp`s, each at its offset: the one mapping of our offsets to
/// librdkafka's.
fn at_offsets<'a>(
    parts: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
) -> std::result::Result<TopicPartitionList, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (tp, offset) in parts {
        tpl.add_partition_offset(tp.topic(), tp.partition, Offset::Offset(offset))?;
    }
    Ok(tpl)
}

/// What one poll of a partition gave.
pub enum Polled {
    /// a record, or a gap marker at the end of the partition
    Msg(Msg),
    Eof,
    Nothing,
    /// the offset to fetch is no longer in the log (librdkafka's words)
    OutOfRange(String),
    /// the log at the fetch position cannot be read by this build (a compression codec it
    /// lacks, a batch it cannot decompress): librdkafka reports it on every fetch and never
    /// moves past it, so the stream cannot go on without skipping records
    Unreadable(String),
}

/// One assigned partition's queue, with the offset PostgreSQL holds for it.
pub struct PartitionReader {
    pub tp: TopicPartition,
    consumer: Arc<Consumer_>,
    queue: PartitionQueue<Ctx>,
    /// `next_offset` in `stream_offsets` as this owner last committed or read it
    pub next: i64,
    /// the offset after the last message (or gap marker) handed out; messages below it are
    /// replays (after a seek, a renewed assignment) and are skipped
    delivered: Arc<AtomicI64>,
    /// the last poll reached the end of the partition and nothing came since
    pub at_eof: bool,
}

impl PartitionReader {
    pub fn poll(&mut self, timeout: Duration) -> Polled {
        match self.queue.poll(timeout) {
            None => Polled::Nothing,
            Some(Ok(m)) => {
                if m.offset() < self.delivered.load(Ordering::Acquire) {
                    return Polled::Nothing;
                }
                self.at_eof = false;
                self.delivered.store(m.offset() + 1, Ordering::Release);
                Polled::Msg(Msg {
                    tp: self.tp.clone(),
                    offset: m.offset(),
                    payload: m.payload().map(<[u8]>::to_vec),
                    gap: false,
                })
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                self.at_eof = true;
                // librdkafka's position passes transaction markers and records it filtered
                // (aborted ones under read_committed); every record below it was handed out.
                match self.position_now() {
                    Some(end) if end > self.delivered.load(Ordering::Acquire) => {
                        self.delivered.store(end, Ordering::Release);
                        Polled::Msg(Msg {
                            tp: self.tp.clone(),
                            offset: end - 1,
                            payload: None,
                            gap: true,
                        })
                    }
                    _ => Polled::Eof,
                }
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                Polled::OutOfRange("the offset is out of range".into())
            }
            Some(Err(e)) => {
                if let KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange) = e {
                    return Polled::OutOfRange(e.to_string());
                }
                if let KafkaError::MessageConsumption(
                    RDKafkaErrorCode::NotImplemented | RDKafkaErrorCode::BadCompression,
                ) = e
                {
                    let said = lock(&self.consumer.context().last_error).clone();
                    return Polled::Unreadable(format!(
                        "{e} at offset {}; librdkafka's last error: {}",
                        self.delivered.load(Ordering::Acquire),
                        said.as_deref().unwrap_or("no detail")
                    ));
                }
                log::warn!("kafka {}: {e}", self.tp);
                Polled::Nothing
            }
        }
    }

    /// librdkafka's position of this partition: the offset after the last record or
    /// control record the application was given.
    fn position_now(&self) -> Option<i64> {
        let tpl = self.consumer.position().ok()?;
        let e = tpl.find_partition(self.tp.topic(), self.tp.partition)?;
        match e.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        }
    }

    /// Record a commit: PostgreSQL now holds `next`.
    pub fn committed(&mut self, next: i64) {
        self.next = next;
    }
}

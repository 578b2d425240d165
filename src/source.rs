//! The Kafka side: the consumer and its context, rebalance events handed to the mode's loop
//! (assignment happens there, after partition queues are split and offsets are read from
//! PostgreSQL), per-partition readers that filter replays and report EOF.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::config::{Config, StartingOffsets};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pipeline::Msg;

/// A rebalance, as librdkafka announced it; the loop acts on it after `poll` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    Assign(Vec<(String, i32)>),
    Revoke(Vec<(String, i32)>),
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
    /// set once the loop has stopped its readers: revocations are then answered at once
    /// (librdkafka's close waits for them)
    closing: AtomicBool,
}

impl Ctx {
    fn take(&self) -> Vec<Rebalance> {
        std::mem::take(&mut *lock(&self.events))
    }
}

/// A poisoned lock still guards valid data here (plain values, no invariants).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientContext for Ctx {
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
            _ => log::warn!("kafka: {error}: {reason}"),
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
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
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

/// The subscribed consumer, shared by the loop and its partition readers.
pub struct Source {
    pub consumer: Arc<Consumer_>,
    starting: StartingOffsets,
    retry_budget: Duration,
}

/// librdkafka settings that our delivery guarantee depends on; the user may not override them.
const OWNED: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "true"),
];

pub fn client_config(cfg: &Config) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("client.id", &cfg.kafka.client_id);
    cc.set("group.id", &cfg.kafka.group_id);
    cc.set(
        "auto.offset.reset",
        match cfg.kafka.starting_offsets {
            StartingOffsets::Earliest => "earliest",
            StartingOffsets::Latest => "latest",
        },
    );
    for (k, v) in &cfg.kafka.properties {
        cc.set(k, &v.0);
    }
    for (k, v) in OWNED {
        cc.set(*k, *v);
    }
    cc
}

impl Source {
    /// Create the consumer and subscribe to the configured topics.
    pub fn subscribe(cfg: &Config, metrics: Arc<Metrics>) -> Result<Source> {
        let mut cc = client_config(cfg);
        // Defaults the user may override: statistics feed the lag metric; librdkafka's
        // prefetch (64 MiB per partition by default) would dominate our memory, and 1 MiB
        // per partition keeps the loaders fed as long as it is refilled at once. Once a
        // partition's prefetch queue is over that bound, librdkafka waits
        // fetch.queue.backoff.ms (1 s by default) before fetching it again, while a
        // loader drains it in a fraction of that: with the default, the loaders sat idle
        // three quarters of the time waiting for messages.
        for (k, v) in [
            ("statistics.interval.ms", "5000"),
            ("queued.max.messages.kbytes", "1024"),
            ("fetch.queue.backoff.ms", "10"),
        ] {
            if cc.get(k).is_none() {
                cc.set(k, v);
            }
        }
        let ctx = Ctx {
            metrics: Some(metrics),
            ..Ctx::default()
        };
        let consumer: Consumer_ = cc
            .create_with_context(ctx)
            .map_err(|e| Error::Config(format!("[remote_kafka]: cannot create consumer: {e}")))?;
        let topics: Vec<&str> = cfg.kafka.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| Error::fatal(format!("subscribing to {topics:?}"), e))?;
        Ok(Source {
            consumer: Arc::new(consumer),
            starting: cfg.kafka.starting_offsets,
            retry_budget: cfg.pipeline.retry_budget,
        })
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
                    return Err(Error::fatal("kafka consumer", e));
                }
                log::warn!("kafka: {e}");
            }
        }
        if let Some(d) = self.down_for().filter(|d| *d > self.retry_budget) {
            return Err(Error::fatal(
                "kafka",
                format!(
                    "no broker reachable for {} s (retry budget spent)",
                    d.as_secs()
                ),
            ));
        }
        Ok(self.consumer.context().take())
    }

    /// Split the queues of `parts`, then assign them at the given next offsets
    /// (None: no stored offset, `startingOffsets` applies).
    pub fn assign(&self, parts: &[(String, i32, Option<i64>)]) -> Result<Vec<PartitionReader>> {
        let mut readers = Vec::with_capacity(parts.len());
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in parts {
            let queue = self
                .consumer
                .split_partition_queue(topic, *partition)
                .ok_or_else(|| {
                    Error::fatal(
                        format!("{topic}/{partition}"),
                        "cannot split partition queue",
                    )
                })?;
            let offset = match (next, self.starting) {
                (Some(n), _) => Offset::Offset(*n),
                (None, StartingOffsets::Earliest) => Offset::Beginning,
                (None, StartingOffsets::Latest) => Offset::End,
            };
            tpl.add_partition_offset(topic, *partition, offset)
                .map_err(|e| Error::fatal(format!("{topic}/{partition}"), e))?;
            readers.push(PartitionReader {
                topic: Arc::from(topic.as_str()),
                partition: *partition,
                consumer: self.consumer.clone(),
                queue,
                expected: *next,
                position: *next,
                at_eof: false,
                resume: Resume::new(*next),
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
    pub fn unassign(&self, parts: &[(String, i32)]) -> Result<()> {
        let res = if self.cooperative() {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in parts {
                tpl.add_partition(t, *p);
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
    /// the other members at once instead of after the session timeout).
    pub fn close(&self) {
        self.consumer
            .context()
            .closing
            .store(true, Ordering::Release);
        self.consumer.unsubscribe();
        if let Err(e) = self.consumer.unassign() {
            log::debug!("unassign on close: {e}");
        }
    }

    /// Tell the Kafka group how far PostgreSQL has committed (for lag tools only).
    pub fn commit_group_offsets(&self, offsets: &[(&str, i32, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
                log::debug!("group offset {t}/{p}: {e}");
            }
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            log::debug!("committing group offsets: {e}");
        }
    }

    /// Move a partition to `next` after a fence (None: back to `startingOffsets`).
    pub fn seek(&self, reader: &mut PartitionReader, next: Option<i64>) -> Result<()> {
        let offset = match (next, self.starting) {
            (Some(n), _) => Offset::Offset(n),
            (None, StartingOffsets::Earliest) => Offset::Beginning,
            (None, StartingOffsets::Latest) => Offset::End,
        };
        self.consumer
            .seek(
                &reader.topic,
                reader.partition,
                offset,
                Duration::from_secs(10),
            )
            .map_err(|e| {
                Error::fatal(format!("seeking {}/{}", reader.topic, reader.partition), e)
            })?;
        reader.expected = next;
        reader.position = next;
        reader.at_eof = false;
        reader.resume = Resume::new(next);
        Ok(())
    }
}

/// What one poll of a partition gave.
pub enum Polled {
    Msg(Msg),
    Eof,
    Nothing,
}

/// How long a partition resumed at a stored offset may stay silent (no message, no EOF)
/// before the reader concludes the broker cannot fetch from there.
const RESUME_STALL: Duration = Duration::from_secs(3);

/// Checking the first fetch after (re)positioning at a stored offset. Some brokers (the
/// Tansu test broker) cannot fetch from inside a record batch: they return nothing, or
/// silently the next batch, skipping records. So the first message must be exactly the
/// stored offset; otherwise the reader re-reads the partition from its beginning, skipping
/// what is committed. On Kafka proper this never triggers except on compacted topics,
/// where it costs one re-read.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// positioned where any first offset is fine
    Verified,
    /// positioned at a stored offset; nothing seen yet
    Pending(Instant),
    /// re-reading from the beginning; gaps from here on are real
    Rewound,
}

impl Resume {
    fn new(stored: Option<i64>) -> Resume {
        match stored {
            Some(n) if n > 0 => Resume::Pending(Instant::now()),
            _ => Resume::Verified,
        }
    }
}

/// One assigned partition's queue, with the offset PostgreSQL holds for it.
pub struct PartitionReader {
    pub topic: Arc<str>,
    pub partition: i32,
    consumer: Arc<Consumer_>,
    queue: PartitionQueue<Ctx>,
    resume: Resume,
    /// next_offset in `stream_offsets` as last seen (None: no row)
    pub expected: Option<i64>,
    /// messages below this offset are replays of committed ones and are skipped
    position: Option<i64>,
    /// the last poll reached the end of the partition and nothing came since
    pub at_eof: bool,
}

impl PartitionReader {
    pub fn poll(&mut self, timeout: Duration) -> Polled {
        match self.queue.poll(timeout) {
            None => {
                if matches!(self.resume, Resume::Pending(t) if t.elapsed() > RESUME_STALL) {
                    self.rewind("no data");
                }
                Polled::Nothing
            }
            Some(Ok(m)) => {
                if self.position.is_some_and(|p| m.offset() < p) {
                    return Polled::Nothing;
                }
                if let Resume::Pending(_) = self.resume {
                    if self.position.is_some_and(|p| m.offset() > p) {
                        self.rewind("a gap");
                        return Polled::Nothing;
                    }
                    self.resume = Resume::Verified;
                }
                self.at_eof = false;
                Polled::Msg(Msg {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    offset: m.offset(),
                    payload: m.payload().map(<[u8]>::to_vec),
                })
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                if let Resume::Pending(_) = self.resume {
                    self.resume = Resume::Verified;
                }
                self.at_eof = true;
                Polled::Eof
            }
            Some(Err(e)) => {
                log::warn!("kafka {}/{}: {e}", self.topic, self.partition);
                Polled::Nothing
            }
        }
    }

    /// The fetch at the stored offset gave `what`: read again from the partition's
    /// beginning; everything below the stored offset is skipped as already committed.
    fn rewind(&mut self, what: &str) {
        log::info!(
            "{}/{}: fetching at stored offset {:?} gave {what}; re-reading from the beginning \
             and skipping what is committed",
            self.topic,
            self.partition,
            self.position
        );
        let res = self.consumer.seek(
            &self.topic,
            self.partition,
            Offset::Beginning,
            Duration::from_secs(10),
        );
        match res {
            Ok(()) => self.resume = Resume::Rewound,
            Err(e) => {
                log::warn!(
                    "{}/{}: seek to the beginning: {e}",
                    self.topic,
                    self.partition
                );
                self.resume = Resume::Pending(Instant::now());
            }
        }
    }

    /// Record a commit: PostgreSQL now holds `next`.
    pub fn committed(&mut self, next: i64) {
        self.expected = Some(next);
        self.position = Some(next);
    }

    pub fn key(&self) -> (String, i32) {
        (self.topic.to_string(), self.partition)
    }
}

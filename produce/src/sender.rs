//! The Kafka side of `streamer produce`: owns the producer, its settings, pacing and
//! progress lines. Promises: a message counts as sent only once the broker acknowledged
//! it (acks=all, idempotent producer); any delivery error surfaces as an `Err` from
//! [`Sender::send`] or [`Sender::finish`]; a full local queue is waited out, not dropped.
//! With an ack log (benchmarks), every acknowledged message adds one line
//! `partition offset send_unix_nanos` to it, or `finish` fails.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::error::{Error, Result};
use crate::Target;

/// Lock `m`, poisoned or not: every mutex here holds plain values with no invariant a
/// panic could break halfway, so a panic elsewhere never turns into a second one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Delivery bookkeeping shared with librdkafka's callbacks.
#[derive(Default)]
struct Ctx {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// `--ack-log`: one line per acknowledged message
    ack_log: Option<Mutex<AckLog>>,
}

/// The `--ack-log` file and its first write error (reported by [`Sender::finish`]).
struct AckLog {
    path: PathBuf,
    out: BufWriter<File>,
    error: Option<std::io::Error>,
}

impl AckLog {
    fn create(path: &Path) -> Result<AckLog> {
        let file = File::create(path)
            .map_err(|e| Error::fatal(format!("produce: --ack-log {}", path.display()), e))?;
        Ok(AckLog {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            error: None,
        })
    }

    fn write(&mut self, partition: i32, offset: i64, sent_ns: usize) {
        if self.error.is_none() {
            if let Err(e) = writeln!(self.out, "{partition} {offset} {sent_ns}") {
                self.error = Some(e);
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        let flushed = self.out.flush();
        match self.error.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::fatal(
                format!("produce: --ack-log {}", self.path.display()),
                e,
            )),
        }
    }
}

/// Now, in nanoseconds since the Unix epoch (the ack log's send time; a 64-bit `usize`
/// holds it until the year 2554).
fn unix_nanos() -> usize {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as usize)
}

impl Ctx {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = lock(&self.first_error);
        if first.is_none() {
            *first = Some(what);
        }
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        // A fatal error (idempotence broken) fails every message after it: report it now.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.fail(format!("fatal producer error: {reason}"));
        }
        log::warn!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for Ctx {
    /// The send time (unix nanoseconds) when there is an ack log, else 0.
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        match result {
            Ok(m) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                if let Some(log) = &self.ack_log {
                    use rdkafka::Message as _;
                    lock(log).write(m.partition(), m.offset(), sent_ns);
                }
            }
            Err((e, m)) => {
                use rdkafka::Message as _;
                self.fail(format!(
                    "delivery to {}/{} failed: {e}",
                    m.topic(),
                    m.partition()
                ))
            }
        }
    }
}

/// librdkafka consumer-only properties: dropped from the target's properties for the
/// producer (librdkafka would warn about each).
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "auto.offset.reset",
    "offset.store.method",
    "consume.callback.max.messages",
];

/// Producer settings: throughput defaults the user may override, then the target's
/// cluster properties, then the settings our guarantees rely on.
pub fn producer_config(target: &Target) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("client.id", &target.client_id)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("message.timeout.ms", "60000");
    for (k, v) in &target.properties {
        if CONSUMER_ONLY.contains(&k.as_str()) {
            log::debug!("produce: ignoring consumer property {k}");
        } else {
            cc.set(k, v);
        }
    }
    cc.set("acks", "all").set("enable.idempotence", "true");
    cc
}

/// The producer with rate limiting, queue-full handling and progress lines.
pub(super) struct Sender {
    producer: BaseProducer<Ctx>,
    topic: String,
    rate: u64,
    sent: u64,
    began: Instant,
    last_log: (Instant, u64),
    /// partitions of the topic, and keyless messages sent: those go round the partitions
    /// one by one (librdkafka's sticky partitioner would put a fast run on one partition)
    partitions: usize,
    keyless: u64,
}

/// Time between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long the final flush may wait for outstanding acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

impl Sender {
    pub(super) fn connect(
        target: &Target,
        topic: &str,
        rate: u64,
        ack_log: Option<&Path>,
    ) -> Result<Sender> {
        let ctx = Ctx {
            ack_log: ack_log.map(AckLog::create).transpose()?.map(Mutex::new),
            ..Ctx::default()
        };
        let producer: BaseProducer<Ctx> = producer_config(target)
            .create_with_context(ctx)
            .map_err(|e| {
                Error::Config(format!(
                    "[remote_kafka]: cannot create producer: {}",
                    (target.describe_error)(&e)
                ))
            })?;
        let md = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(15))
            .map_err(|e| Error::fatal(format!("produce: metadata of topic {topic}"), e))?;
        let partitions = match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().len(),
            Some(t) => {
                return Err(Error::fatal(
                    format!("produce: topic {topic}"),
                    match t.error() {
                        Some(e) => format!(
                            "not available ({:?}); create it first",
                            RDKafkaErrorCode::from(e)
                        ),
                        None => "has no partitions".to_string(),
                    },
                ))
            }
            None => {
                return Err(Error::fatal(
                    format!("produce: topic {topic}"),
                    "not in the cluster's metadata; create it first",
                ))
            }
        };
        log::info!("produce: writing to topic {topic} ({partitions} partitions)");
        let now = Instant::now();
        Ok(Sender {
            producer,
            topic: topic.to_string(),
            rate,
            sent: 0,
            began: now,
            last_log: (now, 0),
            partitions,
            keyless: 0,
        })
    }

    /// Restart the clocks (rate pacing, progress, elapsed) just before the first message.
    pub(super) fn start(&mut self) {
        let now = Instant::now();
        self.began = now;
        self.last_log = (now, self.sent);
    }

    fn check(&self) -> Result<()> {
        let ctx = self.producer.context();
        if ctx.failed.load(Ordering::Relaxed) > 0 {
            let first = lock(&ctx.first_error).clone().unwrap_or_default();
            return Err(Error::fatal(
                format!("produce to {}", self.topic),
                format!(
                    "{} message(s) not delivered; first: {first}",
                    ctx.failed.load(Ordering::Relaxed)
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn send(&mut self, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        if self.rate > 0 {
            // message n is due at began + n / rate
            let due = self.began + Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
            let now = Instant::now();
            if due > now {
                self.producer.poll(due - now);
            }
            self.progress();
        } else if self.sent % 1024 == 0 {
            self.progress();
        }
        let sent_ns = if self.producer.context().ack_log.is_some() {
            unix_nanos()
        } else {
            0
        };
        let mut record = BaseRecord::with_opaque_to(&self.topic, sent_ns).payload(payload);
        match key {
            Some(k) => record = record.key(k),
            None => {
                let p = self.keyless % self.partitions.max(1) as u64;
                record = record.partition(i32::try_from(p).unwrap_or(0));
                self.keyless += 1;
            }
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(5));
                    self.check()?;
                }
                Err((e, _)) => {
                    return Err(Error::fatal(format!("produce to {}", self.topic), e));
                }
            }
        }
        self.sent += 1;
        if self.sent % 512 == 0 {
            self.producer.poll(Duration::ZERO);
            self.check()?;
        }
        Ok(())
    }

    fn progress(&mut self) {
        let now = Instant::now();
        let since = now.duration_since(self.last_log.0);
        if since < PROGRESS_EVERY {
            return;
        }
        let acked = self.producer.context().acked.load(Ordering::Relaxed);
        log::info!(
            "produce: {} sent, {} acknowledged, {:.0} messages/s",
            self.sent,
            acked,
            (self.sent - self.last_log.1) as f64 / since.as_secs_f64()
        );
        self.last_log = (now, self.sent);
    }

    /// Wait for every acknowledgement; returns (sent, elapsed).
    pub(super) fn finish(self) -> Result<(u64, Duration)> {
        let flushed = self.producer.flush(FLUSH_TIMEOUT);
        self.check()?;
        if let Err(e) = flushed {
            return Err(Error::fatal(
                format!("produce to {}", self.topic),
                format!(
                    "{e}: {} message(s) unacknowledged after {FLUSH_TIMEOUT:?}",
                    self.producer.in_flight_count()
                ),
            ));
        }
        let elapsed = self.began.elapsed();
        if let Some(log) = &self.producer.context().ack_log {
            lock(log).finish()?;
        }
        let acked = self.producer.context().acked.load(Ordering::Relaxed);
        if acked != self.sent {
            return Err(Error::fatal(
                format!("produce to {}", self.topic),
                format!("{} sent but {acked} acknowledged", self.sent),
            ));
        }
        log::info!(
            "produce: done: {} messages to {} in {:.1} s ({:.0} messages/s)",
            self.sent,
            self.topic,
            elapsed.as_secs_f64(),
            self.sent as f64 / elapsed.as_secs_f64().max(1e-9)
        );
        Ok((self.sent, elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_log_writes_one_line_per_message() {
        let path = std::env::temp_dir().join(format!("streamer-acks-{}.log", std::process::id()));
        let mut log = AckLog::create(&path).unwrap();
        log.write(3, 41, 1_700_000_000_123_456_789);
        log.write(0, 0, 5);
        log.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, "3 41 1700000000123456789\n0 0 5\n");
        assert!(unix_nanos() > 1_700_000_000_000_000_000);
        let missing = Path::new("/nonexistent-dir/acks.log");
        let err = AckLog::create(missing).err().expect("no such directory");
        assert!(err.to_string().contains("--ack-log"), "{err}");
    }
}

//! `streamer produce`: owns writing synthetic or file-replayed events to the topic.
//! Promises: messages are keyed by event `id` (so they spread over all partitions and a
//! duplicate lands in its original's partition); every message is acknowledged by the
//! broker (acks=all, idempotent producer) before `run` returns Ok, and any delivery error
//! makes it return Err; synthetic output is deterministic for a seed (timestamps aside
//! when they follow the wall clock).

mod event;
mod pools;
mod rng;
mod synth;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

pub use synth::{Kind, Message, Synth};

use crate::config::Config;
use crate::error::{Error, Result};

/// What to produce; built from the command line by [`ProduceCli::args`].
#[derive(Debug, Clone)]
pub struct ProduceArgs {
    /// synthetic: this many messages (duplicates and malformed ones included)
    pub events: Option<u64>,
    /// synthetic: produce for this long
    pub duration: Option<Duration>,
    /// messages per second; 0 = as fast as possible
    pub rate: u64,
    pub seed: u64,
    /// share of messages that re-send an earlier event verbatim
    pub dup_rate: f64,
    /// share of malformed messages (dead letters)
    pub bad_rate: f64,
    /// first event time, epoch seconds; None = the wall clock
    pub start: Option<i64>,
    /// replay: send each non-empty line of this file as one message
    pub file: Option<PathBuf>,
    /// default: the first subscribed topic
    pub topic: Option<String>,
}

/// What was sent; `sent` counts every acknowledged message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceReport {
    pub sent: u64,
    /// messages whose event (same `id` and `product_id`) was sent before
    pub duplicates: u64,
    /// messages the consumer will store as dead letters
    pub malformed: u64,
    pub elapsed: Duration,
}

/// Command-line flags of `streamer produce CONFIG ...` (flatten into the subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProduceCli {
    /// Synthetic: number of messages to send.
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,
    /// Synthetic: produce for this long (seconds, or with a suffix: 90s, 5m, 1h).
    #[arg(long, value_name = "S")]
    pub duration: Option<String>,
    /// Messages per second; 0 = as fast as possible.
    #[arg(long, value_name = "R", default_value_t = 0)]
    pub rate: u64,
    /// Seed of the synthetic events (default: from the clock, and logged).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Share of messages re-sending an earlier event verbatim [default: 0.01].
    #[arg(long, value_name = "F")]
    pub dup_rate: Option<f64>,
    /// Share of malformed messages (dead letters) [default: 0.001].
    #[arg(long, value_name = "F")]
    pub bad_rate: Option<f64>,
    /// Time of the first event: YYYY-MM-DD (00:00 UTC) or epoch seconds [default: now].
    #[arg(long, value_name = "WHEN")]
    pub start: Option<String>,
    /// Replay: send each line of this file (JSON Lines) as one message.
    #[arg(long, value_name = "events.jsonl")]
    pub file: Option<PathBuf>,
    /// Topic to write to [default: the first topic of `subscribe`].
    #[arg(long, value_name = "T")]
    pub topic: Option<String>,
}

pub const DEFAULT_DUP_RATE: f64 = 0.01;
pub const DEFAULT_BAD_RATE: f64 = 0.001;

impl ProduceCli {
    /// Validate the flags: exactly one of --events / --duration / --file; shares in [0, 1]
    /// summing to at most 1; synthetic-only flags rejected with --file.
    pub fn args(self) -> Result<ProduceArgs> {
        let bad = |m: String| Err(Error::Config(format!("produce: {m}")));
        let modes = [
            self.events.is_some(),
            self.duration.is_some(),
            self.file.is_some(),
        ];
        if modes.iter().filter(|&&m| m).count() != 1 {
            return bad("give exactly one of --events N, --duration S, --file FILE".into());
        }
        if self.events == Some(0) {
            return bad("--events must be at least 1".into());
        }
        let duration = match &self.duration {
            Some(text) => Some(parse_duration(text).ok_or_else(|| {
                Error::Config(format!(
                    "produce: --duration {text:?}: expected seconds (e.g. 30, 90s, 5m, 1h), more than 0"
                ))
            })?),
            None => None,
        };
        if self.file.is_some() {
            let given = [
                ("--seed", self.seed.is_some()),
                ("--dup-rate", self.dup_rate.is_some()),
                ("--bad-rate", self.bad_rate.is_some()),
                ("--start", self.start.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                return bad(format!(
                    "{flag} applies to synthetic events, not to --file replay"
                ));
            }
        }
        let dup_rate = self.dup_rate.unwrap_or(DEFAULT_DUP_RATE);
        let bad_rate = self.bad_rate.unwrap_or(DEFAULT_BAD_RATE);
        for (flag, v) in [("--dup-rate", dup_rate), ("--bad-rate", bad_rate)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{flag} {v}: expected a share between 0 and 1"));
            }
        }
        if dup_rate + bad_rate > 1.0 {
            return bad(format!(
                "--dup-rate {dup_rate} plus --bad-rate {bad_rate} exceeds 1"
            ));
        }
        let start = match &self.start {
            Some(text) => Some(parse_start(text).ok_or_else(|| {
                Error::Config(format!(
                    "produce: --start {text:?}: expected YYYY-MM-DD or epoch seconds"
                ))
            })?),
            None => None,
        };
        let seed = self.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        Ok(ProduceArgs {
            events: self.events,
            duration,
            rate: self.rate,
            seed,
            dup_rate,
            bad_rate,
            start,
            file: self.file,
            topic: self.topic,
        })
    }
}

impl TryFrom<ProduceCli> for ProduceArgs {
    type Error = Error;
    fn try_from(cli: ProduceCli) -> Result<ProduceArgs> {
        cli.args()
    }
}

/// `30`, `2.5`, `90s`, `5m`, `1h` → a positive duration.
fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last()? {
        (i, 's') => (&t[..i], 1.0),
        (i, 'm') => (&t[..i], 60.0),
        (i, 'h') => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    let secs = num.trim().parse::<f64>().ok()? * unit;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// `YYYY-MM-DD` (midnight UTC) or epoch seconds.
fn parse_start(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .ok()
            .filter(|s| *s <= crate::transform::MAX_TIME_STAMP);
    }
    let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// Event time of message `index`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    /// the wall clock when the message is made
    Wall,
    /// `start + index * num / den` (a rate, or a day spread over a known count)
    Paced { start: i64, num: u64, den: u64 },
    /// `start` plus the elapsed share of `over`, stretched to a day
    Stretched {
        start: i64,
        over: Duration,
        began: Instant,
    },
}

impl Clock {
    fn new(args: &ProduceArgs) -> Clock {
        match (args.start, args.rate, args.events) {
            (None, _, _) => Clock::Wall,
            (Some(start), rate, _) if rate > 0 => Clock::Paced {
                start,
                num: 1,
                den: rate,
            },
            (Some(start), _, Some(n)) => Clock::Paced {
                start,
                num: 86_400,
                den: n.max(1),
            },
            (Some(start), _, None) => Clock::Stretched {
                start,
                over: args.duration.unwrap_or(Duration::from_secs(86_400)),
                began: Instant::now(),
            },
        }
    }

    pub(crate) fn at(&self, index: u64) -> i64 {
        match *self {
            Clock::Wall => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            Clock::Paced { start, num, den } => {
                start + (u128::from(index) * u128::from(num) / u128::from(den)) as i64
            }
            Clock::Stretched { start, over, began } => {
                let share = began.elapsed().as_secs_f64() / over.as_secs_f64().max(1e-9);
                start + (share.min(1.0) * 86_399.0) as i64
            }
        }
    }
}

/// Produce the events `args` describe to the configured cluster.
pub fn run(cfg: &Config, args: &ProduceArgs) -> Result<ProduceReport> {
    let topic = match &args.topic {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        Some(_) => return Err(Error::Config("produce: --topic is empty".into())),
        None => cfg.kafka.topics.first().cloned().ok_or_else(|| {
            Error::Config("[remote_kafka] subscribe: no topic to produce to".into())
        })?,
    };
    let mut out = Sender::connect(cfg, &topic, args.rate)?;
    let (duplicates, malformed) = match &args.file {
        Some(path) => replay(&mut out, path)?,
        None => synthetic(&mut out, args)?,
    };
    let (sent, elapsed) = out.finish()?;
    Ok(ProduceReport {
        sent,
        duplicates,
        malformed,
        elapsed,
    })
}

/// Synthetic mode; returns (duplicates, malformed).
fn synthetic(out: &mut Sender, args: &ProduceArgs) -> Result<(u64, u64)> {
    log::info!(
        "produce: synthetic events, seed {} (dup-rate {}, bad-rate {}, {})",
        args.seed,
        args.dup_rate,
        args.bad_rate,
        match args.rate {
            0 => "as fast as possible".to_string(),
            r => format!("{r} messages/s"),
        }
    );
    let clock = Clock::new(args);
    let mut synth = Synth::new(args.seed, args.dup_rate, args.bad_rate);
    out.start();
    let deadline = args.duration.map(|d| Instant::now() + d);
    // the clock is cheap next to a message, but not free: look every 64 at full speed
    let look_every = if args.rate > 0 { 1 } else { 64 };
    let (mut dups, mut bad) = (0u64, 0u64);
    let mut index = 0u64;
    loop {
        if args.events.is_some_and(|n| index >= n) {
            break;
        }
        if index % look_every == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let m = synth.next(index, clock.at(index));
        match m.kind {
            Kind::Fresh => {}
            Kind::Duplicate => dups += 1,
            Kind::Malformed(_) => bad += 1,
        }
        out.send(Some(m.key), m.payload)?;
        index += 1;
    }
    Ok((dups, bad))
}

/// Replay mode: each non-empty line is one message, keyed by its event `id` when it is a
/// valid event (unkeyed otherwise). Returns (duplicates, malformed) as the consumer will
/// count them: malformed = rejected by the transform; duplicates = valid lines whose
/// `sales_key` came before.
fn replay(out: &mut Sender, path: &std::path::Path) -> Result<(u64, u64)> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Config(format!("produce: --file {}: {e}", path.display())))?;
    log::info!("produce: replaying {}", path.display());
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    out.start();
    let mut seen: HashSet<u64> = HashSet::new();
    let (mut dups, mut bad, mut blank) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::fatal(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            blank += 1;
            continue;
        }
        match crate::transform::transform(Some(&line)) {
            Ok(fact) => {
                let h = u64::from_str_radix(&fact.sales_key[..16], 16).unwrap_or(0);
                if !seen.insert(h) {
                    dups += 1;
                }
                out.send(Some(fact.event_id.as_bytes()), &line)?;
            }
            Err(_) => {
                bad += 1;
                out.send(None, &line)?;
            }
        }
    }
    if blank > 0 {
        log::info!("produce: skipped {blank} blank lines");
    }
    Ok((dups, bad))
}

/// Delivery bookkeeping shared with librdkafka's callbacks.
#[derive(Default)]
struct Ctx {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Ctx {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
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
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
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

/// librdkafka consumer-only properties: dropped from `[remote_kafka]` for the producer
/// (librdkafka would warn about each).
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

/// Producer settings: throughput defaults the user may override, then the cluster
/// properties of `[remote_kafka]`, then the settings our guarantees rely on.
pub fn producer_config(cfg: &Config) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("client.id", &cfg.kafka.client_id)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "60000");
    for (k, v) in &cfg.kafka.properties {
        if CONSUMER_ONLY.contains(&k.as_str()) {
            log::debug!("produce: ignoring consumer property {k}");
        } else {
            cc.set(k, &v.0);
        }
    }
    cc.set("acks", "all").set("enable.idempotence", "true");
    cc
}

/// The producer with rate limiting, queue-full handling and progress lines.
struct Sender {
    producer: BaseProducer<Ctx>,
    topic: String,
    rate: u64,
    sent: u64,
    began: Instant,
    last_log: (Instant, u64),
}

/// Time between progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long the final flush may wait for outstanding acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

impl Sender {
    fn connect(cfg: &Config, topic: &str, rate: u64) -> Result<Sender> {
        let producer: BaseProducer<Ctx> = producer_config(cfg)
            .create_with_context(Ctx::default())
            .map_err(|e| Error::Config(format!("[remote_kafka]: cannot create producer: {e}")))?;
        let md = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(15))
            .map_err(|e| Error::fatal(format!("produce: metadata of topic {topic}"), e))?;
        let partitions = match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().len(),
            Some(t) => {
                return Err(Error::fatal(
                    format!("produce: topic {topic}"),
                    format!(
                        "not available ({:?}); create it first",
                        t.error().map(RDKafkaErrorCode::from)
                    ),
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
        })
    }

    /// Restart the clocks (rate pacing, progress, elapsed) just before the first message.
    fn start(&mut self) {
        let now = Instant::now();
        self.began = now;
        self.last_log = (now, self.sent);
    }

    fn check(&self) -> Result<()> {
        let ctx = self.producer.context();
        if ctx.failed.load(Ordering::Relaxed) > 0 {
            let first = ctx
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
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

    fn send(&mut self, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
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
        let mut record = BaseRecord::to(&self.topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
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
    fn finish(self) -> Result<(u64, Duration)> {
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

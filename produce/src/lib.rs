//! streamer-produce: writes synthetic or file-replayed product-view events to streamer's
//! Kafka topic (`streamer produce`: the demo, load tests, the bench). Promises: messages
//! are keyed by event `id` (so they spread over all partitions and a duplicate lands in
//! its original's partition) unless `--keys` says otherwise; every message is
//! acknowledged by the broker (acks=all, idempotent producer) before [`run`] returns Ok,
//! and any delivery error makes it return Err; synthetic output is deterministic for a
//! seed (timestamps aside when they follow the wall clock).
//!
//! It knows nothing of streamer's configuration or pipeline: the caller hands it a
//! [`Target`] (the cluster's client settings, and how the consumer will judge a message).
//!
//! With `--start`, event times follow the shape of a shop's day over `--span` (`day`).
//!
//! Layout: `args` (flags), `sender` (the Kafka producer), `synth` (message stream: fresh,
//! duplicate, malformed), `day` (when events happen and from which shop), `event` (one
//! event's JSON, written by serde_json), `pools` + `agents` (products, IPs, shops, user
//! agents), `rng` (the seeded generator and samplers, from rand), `error`.

mod agents;
mod args;
mod day;
#[cfg(test)]
mod day_tests;
mod error;
mod event;
mod pools;
mod rng;
mod sender;
mod synth;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use args::{Keys, ProduceArgs, ProduceCli, DEFAULT_BAD_RATE, DEFAULT_DUP_RATE, MAX_START};
pub use error::{Error, Result};
pub use sender::producer_config;
pub use synth::{Defect, Kind, Message, Synth};

use day::Day;
use sender::Sender;

/// Where and for whom to produce, as the consumer's configuration says.
#[derive(Debug, Clone)]
pub struct Target {
    /// librdkafka `client.id`
    pub client_id: String,
    /// the cluster's librdkafka properties (bootstrap servers, TLS, SASL, ...); the
    /// consumer-only ones among them are dropped, see [`producer_config`]
    pub properties: Vec<(String, String)>,
    /// the topic when `--topic` is not given
    pub default_topic: Option<String>,
    /// Words for a client error (so the caller can keep secret values out of them).
    pub describe_error: fn(&rdkafka::error::KafkaError) -> String,
    /// How the consumer will read a message: the event it stores, or None for a dead
    /// letter. Replay keys lines, and counts duplicates and malformed ones, by it.
    pub judge: fn(&[u8]) -> Option<Judged>,
}

/// A message the consumer stores: its event id (the key), and what makes two messages
/// the same event (the consumer keeps one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub id: String,
    pub identity: String,
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

/// The summary line `streamer produce` prints (scripts/bench and scripts/demo read it):
/// `sent N messages (D duplicates, M malformed) in S s`.
impl std::fmt::Display for ProduceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} messages ({} duplicates, {} malformed) in {:.1} s",
            self.sent,
            self.duplicates,
            self.malformed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Event time of message `index`.
#[derive(Debug, Clone)]
pub(crate) enum Clock {
    /// the wall clock when the message is made
    Wall,
    /// `start + index / rate`: event time advances with the send rate
    Paced { start: i64, rate: u64 },
    /// message `index` of `n`, spread over the day's shape
    Counted { day: Arc<Day>, n: u64 },
    /// the elapsed share of `over`, spread over the day's shape
    Stretched {
        day: Arc<Day>,
        over: Duration,
        began: Instant,
    },
}

impl Clock {
    /// The shape `args` ask for: with `--start`, unless `--rate` paces event time (no
    /// `--span` given).
    fn day(args: &ProduceArgs) -> Option<Arc<Day>> {
        let start = args.start?;
        if args.span.is_none() && args.rate > 0 {
            return None;
        }
        let span = args.span.unwrap_or(day::DAY);
        Some(Arc::new(Day::new(&pools::shops(), start, span)))
    }

    fn new(args: &ProduceArgs, day: Option<Arc<Day>>) -> Clock {
        match (args.start, day, args.events) {
            (None, _, _) => Clock::Wall,
            (Some(start), None, _) => Clock::Paced {
                start,
                rate: args.rate.max(1),
            },
            (Some(_), Some(day), Some(n)) => Clock::Counted { day, n: n.max(1) },
            (Some(_), Some(day), None) => Clock::Stretched {
                day,
                over: args.duration.unwrap_or(Duration::from_secs(86_400)),
                began: Instant::now(),
            },
        }
    }

    pub(crate) fn at(&self, index: u64) -> i64 {
        match self {
            Clock::Wall => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            Clock::Paced { start, rate } => start + (index / rate) as i64,
            Clock::Counted { day, n } => day.time_at(index as f64 / *n as f64),
            Clock::Stretched { day, over, began } => {
                day.time_at(began.elapsed().as_secs_f64() / over.as_secs_f64().max(1e-9))
            }
        }
    }
}

/// Produce the events `args` describe to `target`'s cluster.
pub fn run(target: &Target, args: &ProduceArgs) -> Result<ProduceReport> {
    let topic = match &args.topic {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        Some(_) => return Err(Error::Config("produce: --topic is empty".into())),
        None => target.default_topic.clone().ok_or_else(|| {
            Error::Config("[remote_kafka] subscribe: no topic to produce to".into())
        })?,
    };
    let mut out = Sender::connect(target, &topic, args.rate, args.ack_log.as_deref())?;
    let (duplicates, malformed) = match &args.file {
        Some(path) => replay(&mut out, path, target.judge)?,
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
    let day = Clock::day(args);
    if let Some(d) = &day {
        log::info!(
            "produce: event times from {} to {} in the shape of a shop's day{}",
            fmt_time(d.start()),
            fmt_time(d.end()),
            match d.burst() {
                Some((from, _)) => format!(", a burst at {}", fmt_time(from)),
                None => String::new(),
            }
        );
    }
    let clock = Clock::new(args, day.clone());
    let mut synth = Synth::new(args.seed, args.dup_rate, args.bad_rate).with_day(day);
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
        let key = match (args.keys, &m.kind) {
            (Keys::Id, _) => Some(m.key),
            (Keys::DupAnywhere, Kind::Duplicate) | (Keys::None, _) => None,
            (Keys::DupAnywhere, _) => Some(m.key),
        };
        out.send(key, m.payload)?;
        index += 1;
    }
    Ok((dups, bad))
}

/// `2024-05-01 10:00:00 UTC` (epoch seconds as given when out of chrono's range).
fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Replay mode: each non-empty line is one message, keyed by its event `id` when it is a
/// valid event (unkeyed otherwise). Returns (duplicates, malformed) as the consumer will
/// count them (`judge`): malformed = rejected; duplicates = valid lines whose identity
/// came before.
fn replay(
    out: &mut Sender,
    path: &std::path::Path,
    judge: fn(&[u8]) -> Option<Judged>,
) -> Result<(u64, u64)> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Config(format!("produce: --file {}: {e}", path.display())))?;
    log::info!("produce: replaying {}", path.display());
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    out.start();
    let mut seen: HashSet<String> = HashSet::new();
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
        match judge(&line) {
            Some(event) => {
                out.send(Some(event.id.as_bytes()), &line)?;
                if !seen.insert(event.identity) {
                    dups += 1;
                }
            }
            None => {
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

//! The `streamer produce` command line: owns the flags and their validation. Promises:
//! [`ProduceCli::args`] returns a [`ProduceArgs`] with exactly one of events / duration /
//! file set, shares in [0, 1] summing to at most 1, or a `Error::Config` naming the flag.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// with `start`: event times spread over this many seconds in the shape of a shop's
    /// day (None: one day, unless `rate` paces event time)
    pub span: Option<i64>,
    /// replay: send each non-empty line of this file as one message
    pub file: Option<PathBuf>,
    /// default: the first subscribed topic
    pub topic: Option<String>,
    /// benchmarks: write `partition offset send_unix_nanos` per acknowledged message here
    pub ack_log: Option<PathBuf>,
    /// how messages are keyed, and so where a duplicate lands
    pub keys: Keys,
}

/// `--keys`: how synthetic messages are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Keys {
    /// by event `id`: a duplicate lands on its original's partition, after it
    #[default]
    Id,
    /// by event `id`, but a duplicate is sent without a key, so it lands on any partition
    /// (a client retry through another producer, a replay keyed differently)
    DupAnywhere,
    /// no key at all (a keyless producer): every message lands on any partition
    None,
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
    /// Synthetic, with --start: spread event times over this long (1d, 36h, 90m, seconds)
    /// in the shape of a shop's day: quiet nights, busy evenings in each shop's time zone,
    /// one burst [default: 1d; with --rate and no --span, event time follows the rate].
    #[arg(long, value_name = "LEN")]
    pub span: Option<String>,
    /// Replay: send each line of this file (JSON Lines) as one message.
    #[arg(long, value_name = "events.jsonl")]
    pub file: Option<PathBuf>,
    /// Topic to write to [default: the first topic of `subscribe`].
    #[arg(long, value_name = "T")]
    pub topic: Option<String>,
    /// Benchmarks: write one line `partition offset send_unix_nanos` per acknowledged
    /// message to this file (send time: when the message was handed to librdkafka).
    #[arg(long, value_name = "FILE", hide = true)]
    pub ack_log: Option<PathBuf>,
    /// Synthetic: key messages by event id (`id`: a duplicate follows its original on its
    /// partition), send duplicates without a key (`dup-anywhere`: on any partition), or
    /// send every message without a key (`none`).
    #[arg(long, value_enum, default_value_t = Keys::Id)]
    pub keys: Keys,
}

/// The latest `--start`: 9999-12-31 23:59:59 UTC, the last `time_stamp` the consumer
/// accepts (streamer's `transform::MAX_TIME_STAMP`).
pub const MAX_START: i64 = 253_402_300_799;

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
                ("--span", self.span.is_some()),
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
        let span = match &self.span {
            Some(text) => Some(
                parse_duration(text)
                    .map(|d| d.as_secs_f64().round() as i64)
                    .filter(|s| (1..=crate::day::MAX_SPAN).contains(s))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "produce: --span {text:?}: expected a length from 1 s to 366 d \
                             (e.g. 1d, 36h, 90m, 3600)"
                        ))
                    })?,
            ),
            None => None,
        };
        if span.is_some() && start.is_none() {
            return bad("--span needs --start (the first event time)".into());
        }
        if self
            .ack_log
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return bad("--ack-log: empty file name".into());
        }
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
            span,
            file: self.file,
            topic: self.topic,
            ack_log: self.ack_log,
            keys: self.keys,
        })
    }
}

impl TryFrom<ProduceCli> for ProduceArgs {
    type Error = Error;
    fn try_from(cli: ProduceCli) -> Result<ProduceArgs> {
        cli.args()
    }
}

/// `30`, `2.5`, `90s`, `5m`, `1h`, `1d` → a positive duration.
fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last()? {
        (i, 's') => (&t[..i], 1.0),
        (i, 'm') => (&t[..i], 60.0),
        (i, 'h') => (&t[..i], 3600.0),
        (i, 'd') => (&t[..i], 86_400.0),
        _ => (t, 1.0),
    };
    let secs = num.trim().parse::<f64>().ok()? * unit;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// `YYYY-MM-DD` (midnight UTC) or epoch seconds.
fn parse_start(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().ok().filter(|s| *s <= MAX_START);
    }
    let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

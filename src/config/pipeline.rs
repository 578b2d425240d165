//! `[pipeline]`: the mode (`MODE` in the environment winning), batch limits, timeouts, pool
//! and thread sizes, the retry budget, enrichment and the offset-out-of-range policy, read
//! into [`PipelineConfig`]. (`consumer_group` is read with the Kafka settings.)

use std::time::Duration;

use super::document::Entry;
use super::env_var;
use super::reader::{at, shown, Reader};
use crate::error::{Error, Result};

/// `[pipeline] batch_max_messages` default in partition mode (one partition's batch). A
/// transaction's fixed cost (offset fence, dimension and rollup statements, commit) is
/// paid once per batch: at 10,000 rather than 5,000, a 4-partition load of 1M events ran
/// 10% faster on 2 cores (mean of four pairs), for some 30 MB more peak RSS.
pub const DEFAULT_BATCH_MAX_MESSAGES: usize = 10_000;
/// `[pipeline] batch_max_messages` default in batch mode: a micro-batch spans every
/// assigned partition, and its transaction's fixed cost is paid once per micro-batch.
pub const DEFAULT_MICRO_BATCH_MAX_MESSAGES: usize = 10_000;
/// `[pipeline] batch_max_bytes` default: 16 MiB.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 16 * 1024 * 1024;
/// `[pipeline] buffer_max_bytes` default: 48 MiB of message payload held at once by all of
/// partition mode's partitions together. A batch's memory is about twice its payload
/// (the messages, then their facts); with the caches and the GeoIP pages that keeps a
/// process under 256 MB whatever the number of partitions (12 partitions of 10,000-message
/// batches had peaked at 412 MB). Four partitions of this project's 1.1 kB events stay under
/// their 10,000-message bound.
pub const DEFAULT_BUFFER_MAX_BYTES: usize = 48 * 1024 * 1024;
/// `[pipeline] batch_max_latency_ms` default.
pub const DEFAULT_BATCH_MAX_LATENCY_MS: u64 = 100;
/// `[pipeline] batch_linger_ms` default: at a partition's end, a batch younger than this
/// waits for more messages (at most this long) before it is written, so a steady stream
/// is written in a few dozen transactions per partition and second instead of hundreds.
pub const DEFAULT_BATCH_LINGER_MS: u64 = 20;
/// `[pipeline] trigger_interval_ms` default.
pub const DEFAULT_TRIGGER_INTERVAL_MS: u64 = 5_000;
/// `[pipeline] shutdown_timeout_ms` default.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// `[pipeline] pg_pool_size` default.
pub const DEFAULT_PG_POOL_SIZE: u32 = 4;
/// `[pipeline] retry_budget_s` default.
pub const DEFAULT_RETRY_BUDGET_S: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Partition,
    Batch,
}

/// `[pipeline] on_offset_out_of_range`: a stored offset that the log no longer holds
/// (retention, deleted records, a recreated topic) is never skipped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRange {
    /// stop with an error naming topic, partition, stored offset and the log's range
    Fail,
    /// go on from the log's start (logged at error level, counted in a metric)
    Earliest,
    /// go on from the log's end (logged at error level, counted in a metric)
    Latest,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub mode: Mode,
    pub batch_max_messages: usize,
    pub batch_max_bytes: usize,
    /// partition mode: the message bytes all partitions' batches hold at once (each
    /// partition's batch is cut at its share, see `modes::budget`)
    pub buffer_max_bytes: usize,
    pub batch_max_latency: Duration,
    /// partition mode: how long a batch may wait at the partition's end for more messages
    pub batch_linger: Duration,
    pub trigger_interval: Duration,
    pub shutdown_timeout: Duration,
    /// connections in the r2d2 pool
    pub pg_pool_size: u32,
    /// how long PostgreSQL / Kafka failures are retried before exit 1
    pub retry_budget: Duration,
    /// threads in the rayon transform pool (0 = number of CPUs)
    pub transform_threads: usize,
    /// parse user agents and look up geography (false: those columns stay NULL)
    pub enrich: bool,
    /// what to do when a stored offset is no longer in the log
    pub on_offset_out_of_range: OutOfRange,
}

const S: &str = "pipeline";

pub(super) fn pipeline_section(r: &Reader<'_>, env: &[(String, String)]) -> Result<PipelineConfig> {
    let mode = mode(r, env)?;
    let batch_max_bytes = match r.get(S, "batch_max_bytes") {
        None => DEFAULT_BATCH_MAX_BYTES,
        Some(e) => bytes_of(e)?,
    };
    let buffer_max_bytes = match r.get(S, "buffer_max_bytes") {
        None => DEFAULT_BUFFER_MAX_BYTES,
        Some(e) => bytes_of(e)?,
    };
    let millis = |key, default| r.number(S, key, default, 1).map(Duration::from_millis);
    Ok(PipelineConfig {
        mode,
        batch_max_messages: r.number(
            S,
            "batch_max_messages",
            match mode {
                Mode::Partition => DEFAULT_BATCH_MAX_MESSAGES,
                Mode::Batch => DEFAULT_MICRO_BATCH_MAX_MESSAGES,
            },
            1,
        )?,
        batch_max_bytes,
        buffer_max_bytes,
        batch_max_latency: millis("batch_max_latency_ms", DEFAULT_BATCH_MAX_LATENCY_MS)?,
        batch_linger: Duration::from_millis(r.number(
            S,
            "batch_linger_ms",
            DEFAULT_BATCH_LINGER_MS,
            0,
        )?),
        trigger_interval: millis("trigger_interval_ms", DEFAULT_TRIGGER_INTERVAL_MS)?,
        shutdown_timeout: millis("shutdown_timeout_ms", DEFAULT_SHUTDOWN_TIMEOUT_MS)?,
        pg_pool_size: r.number(S, "pg_pool_size", DEFAULT_PG_POOL_SIZE, 1)?,
        retry_budget: Duration::from_secs(r.number(
            S,
            "retry_budget_s",
            DEFAULT_RETRY_BUDGET_S,
            0,
        )?),
        transform_threads: r.number(S, "transform_threads", 0, 0)?,
        enrich: r.boolean(S, "enrich", true)?,
        on_offset_out_of_range: out_of_range(r)?,
    })
}

/// `MODE` from the environment when set and not blank, else `[pipeline] mode`.
fn mode(r: &Reader<'_>, env: &[(String, String)]) -> Result<Mode> {
    let mode_of = |text: &str| match text.trim().to_ascii_lowercase().as_str() {
        "partition" => Some(Mode::Partition),
        "batch" => Some(Mode::Batch),
        _ => None,
    };
    if let Some(v) = env_var(env, "MODE").filter(|v| !v.trim().is_empty()) {
        return mode_of(v).ok_or_else(|| {
            Error::Config(format!(
                "[pipeline] mode (from environment MODE): expected partition or batch, got {v:?}"
            ))
        });
    }
    match r.get(S, "mode") {
        None => Ok(Mode::Partition),
        Some(e) => mode_of(&e.value).ok_or_else(|| {
            at(
                S,
                e,
                format!("expected partition or batch, got {}", shown(e)),
            )
        }),
    }
}

fn out_of_range(r: &Reader<'_>) -> Result<OutOfRange> {
    let Some(e) = r.get(S, "on_offset_out_of_range") else {
        return Ok(OutOfRange::Fail);
    };
    match e.value.trim().to_ascii_lowercase().as_str() {
        "fail" => Ok(OutOfRange::Fail),
        "earliest" => Ok(OutOfRange::Earliest),
        "latest" => Ok(OutOfRange::Latest),
        _ => Err(at(
            S,
            e,
            format!("expected fail, earliest or latest, got {}", shown(e)),
        )),
    }
}

/// A byte size: a whole number with an optional binary unit (K, KiB, M, MiB, G, GiB).
fn bytes_of(e: &Entry) -> Result<usize> {
    let bad = || {
        at(
            S,
            e,
            format!(
                "expected a positive byte count such as 16777216 or 16MiB, got {}",
                shown(e)
            ),
        )
    };
    let text = e.value.trim().replace('_', "");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(factor)
        .filter(|&b| b > 0)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(bad)
}

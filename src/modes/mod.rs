//! What both modes share: the run context (sink, transform pool, limits, stop flag,
//! counters), cutting batches, and flushing one batch: transform, one transaction, then
//! the Kafka group commit.

pub mod batch;
pub mod partition;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, Mode};
use crate::error::{retry, Error, Result};
use crate::metrics::Metrics;
use crate::offsets;
use crate::pipeline::{prepare, Msg, Prepared};
use crate::sink::dims::DimRows;
use crate::sink::{Outcome, Sink};
use crate::source::{PartitionReader, Source};

/// Everything a loop needs, shared between threads.
pub struct Run {
    pub cfg: Config,
    pub sink: Sink,
    pub pool: rayon::ThreadPool,
    pub stop: Arc<AtomicBool>,
    pub until_caught_up: bool,
    pub metrics: Arc<Metrics>,
    /// set once the process has torn down after its loop (see [`Run::bound_teardown`])
    pub torn_down: Arc<AtomicBool>,
}

impl Run {
    /// Called when a loop has ended, with whether it ended well: what it committed is
    /// committed, and what is left (closing the Kafka consumer, the last rollup fold) gets
    /// `shutdown_timeout` before the process exits anyway, with the loop's outcome.
    /// librdkafka's consumer close can hang with split partition queues (its issue #3470);
    /// a process run from cron must not.
    pub fn bound_teardown(&self, ok: bool) {
        let timeout = self.cfg.pipeline.shutdown_timeout;
        let done = self.torn_down.clone();
        let spawned = std::thread::Builder::new()
            .name("teardown-watchdog".into())
            .spawn(move || {
                let deadline = Instant::now() + timeout;
                while Instant::now() < deadline {
                    if done.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                log::warn!(
                    "closing the Kafka consumer and the last rollup fold took over {timeout:?}; \
                     exiting anyway (every batch is committed or was never started)"
                );
                std::process::exit(if ok { 0 } else { 1 });
            });
        if let Err(e) = spawned {
            log::debug!("teardown watchdog not started: {e}");
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Read the stored offsets of newly assigned partitions, retrying while PostgreSQL is away.
    pub fn load_offsets(&self, parts: &[(String, i32)]) -> Result<Vec<(String, i32, Option<i64>)>> {
        let budget = self.cfg.pipeline.retry_budget;
        retry(
            "reading stream_offsets",
            budget,
            |_| self.try_load_offsets(parts),
            |_| {},
        )
    }

    fn try_load_offsets(&self, parts: &[(String, i32)]) -> Result<Vec<(String, i32, Option<i64>)>> {
        let mut conn = self
            .sink
            .pool()
            .get()
            .map_err(|e| Error::from_pool("connecting to PostgreSQL", e))?;
        let mut out = Vec::with_capacity(parts.len());
        for (topic, p) in parts {
            for (partition, next) in offsets::load(&mut *conn, self.sink.group(), topic, &[*p])? {
                out.push((topic.clone(), partition, next));
            }
        }
        Ok(out)
    }

    /// Transform and write one batch, then tell Kafka. Fenced partitions are re-seeked
    /// to what PostgreSQL holds.
    pub fn flush(
        &self,
        source: &Source,
        readers: &mut [&mut PartitionReader],
        msgs: Vec<Msg>,
    ) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare(msgs, |t, p| {
            readers
                .iter()
                .find(|r| &*r.topic == t && r.partition == p)
                .and_then(|r| r.expected)
        });
        let written = self.write(prepared)?;
        self.settle(source, readers, written)?;
        Ok(())
    }

    /// Transform a batch on the pool. `expected` gives the offset PostgreSQL holds (or
    /// will hold once the batch before commits) per partition.
    pub fn prepare(&self, msgs: Vec<Msg>, expected: impl Fn(&str, i32) -> Option<i64>) -> Ready {
        let started = Instant::now();
        let prepared = prepare(&self.pool, msgs, expected);
        let dims = self.pool.install(|| self.sink.dims(&prepared));
        Ready {
            prepared,
            dims,
            started,
            transformed: started.elapsed(),
        }
    }

    /// Write a transformed batch in one transaction (thread-safe: no reader state).
    pub fn write(&self, ready: Ready) -> Result<Written> {
        let outcome = self.sink.write(&ready.prepared, &ready.dims)?;
        Ok(Written { ready, outcome })
    }

    /// Act on a written batch: on commit, advance the readers and the Kafka group and
    /// count it; when fenced, re-seek the partitions to what PostgreSQL holds. Returns
    /// whether the batch was committed.
    pub fn settle(
        &self,
        source: &Source,
        readers: &mut [&mut PartitionReader],
        written: Written,
    ) -> Result<bool> {
        let Written { ready, outcome } = written;
        let Ready {
            prepared,
            started,
            transformed,
            ..
        } = ready;
        let w = match outcome {
            Outcome::Committed(w) => w,
            Outcome::Fenced(moved) => {
                for (topic, partition, now) in moved {
                    log::warn!(
                        "{topic}/{partition}: stream_offsets moved by another owner (now {now:?}); \
                         batch dropped uncommitted, resuming from there"
                    );
                    if let Some(r) = readers
                        .iter_mut()
                        .find(|r| *r.topic == *topic && r.partition == partition)
                    {
                        source.seek(r, now)?;
                    }
                }
                return Ok(false);
            }
        };
        let mut group = Vec::with_capacity(prepared.offsets.len());
        for adv in &prepared.offsets {
            if let Some(r) = readers
                .iter_mut()
                .find(|r| *r.topic == *adv.topic && r.partition == adv.partition)
            {
                r.committed(adv.next);
            }
            group.push((adv.topic.as_str(), adv.partition, adv.next));
        }
        source.commit_group_offsets(&group);
        let m = &self.metrics;
        let n = prepared.messages;
        m.committed(&group);
        m.messages.inc_by(n as u64);
        m.batches.inc();
        m.batch_seconds.observe(started.elapsed().as_secs_f64());
        m.transform_seconds.inc_by(transformed.as_secs_f64());
        m.load_seconds
            .inc_by((started.elapsed() - transformed).as_secs_f64());
        m.add_rows("fact_sales", w.facts);
        m.add_rows("dim_date", w.dim_dates);
        m.add_rows("dim_product", w.dim_products);
        m.add_rows("dim_location", w.dim_locations);
        m.add_rows("dim_user_agent", w.dim_agents);
        m.add_rows("dead_letter", w.dead_letters);
        m.duplicates.inc_by(w.duplicates);
        if w.dead_letters > 0 {
            for d in &prepared.dead {
                m.add_dead_letter(d.rejection.reason.code());
            }
        }
        let line = format!(
            "batch {}: {n} messages, {} facts, {} duplicates, {} dead letters, \
             dims {}/{}/{}/{} (date/product/location/agent), transform {} ms, total {} ms",
            m.batches.get(),
            w.facts,
            w.duplicates,
            w.dead_letters,
            w.dim_dates,
            w.dim_products,
            w.dim_locations,
            w.dim_agents,
            transformed.as_millis(),
            started.elapsed().as_millis()
        );
        if self.cfg.pipeline.mode == Mode::Batch {
            log::info!("{line}");
        } else {
            log::debug!("{line}");
        }
        Ok(true)
    }
}

/// A transformed batch and its new dimension rows, waiting to be written.
pub struct Ready {
    pub prepared: Prepared,
    dims: DimRows,
    started: Instant,
    transformed: Duration,
}

/// A batch after its transaction: committed or fenced.
pub struct Written {
    ready: Ready,
    outcome: Outcome,
}

/// Accumulates messages until a limit is reached.
pub struct Batcher {
    pub msgs: Vec<Msg>,
    bytes: usize,
    first_at: Option<Instant>,
    max_messages: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Batcher {
    pub fn new(max_messages: usize, max_bytes: usize, max_age: Duration) -> Self {
        Batcher {
            msgs: Vec::new(),
            bytes: 0,
            first_at: None,
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            max_age,
        }
    }

    pub fn push(&mut self, m: Msg) {
        self.first_at.get_or_insert_with(Instant::now);
        self.bytes += m.size();
        self.msgs.push(m);
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Messages that still fit under the count bound.
    pub fn room(&self) -> usize {
        self.max_messages.saturating_sub(self.msgs.len())
    }

    pub fn full(&self) -> bool {
        self.msgs.len() >= self.max_messages || self.bytes >= self.max_bytes
    }

    /// Time left before the oldest message has waited `max_age` (None: empty batch).
    pub fn time_left(&self) -> Option<Duration> {
        self.first_at
            .map(|t| self.max_age.saturating_sub(t.elapsed()))
    }

    pub fn due(&self) -> bool {
        self.full() || self.time_left().is_some_and(|d| d.is_zero())
    }

    pub fn take(&mut self) -> Vec<Msg> {
        self.bytes = 0;
        self.first_at = None;
        std::mem::take(&mut self.msgs)
    }

    /// Drop the messages of partitions no longer ours (revoked): they stay uncommitted.
    pub fn retain(&mut self, keep: impl Fn(&Msg) -> bool) {
        self.msgs.retain(keep);
        self.bytes = self.msgs.iter().map(Msg::size).sum();
        if self.msgs.is_empty() {
            self.first_at = None;
        }
    }
}

/// Run the configured mode until stopped (or caught up, when asked).
pub fn run(run: Arc<Run>) -> Result<()> {
    match run.cfg.pipeline.mode {
        Mode::Partition => partition::run(run),
        Mode::Batch => batch::run(run),
    }
}

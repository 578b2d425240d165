//! What both modes share: the run context (sink, transform pool, limits, stop flag,
//! counters), where assigned partitions start, cutting batches, and flushing one batch:
//! transform, one transaction, then the Kafka group commit (`commit.rs`). The two mode
//! loops keep only how a batch is cut.

pub(crate) mod batch;
mod behind;
pub(crate) mod budget;
mod caught_up;
mod commit;
pub(crate) mod partition;
mod reposition;

pub(crate) use caught_up::CaughtUp;

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
use crate::topic_partition::TopicPartition;

/// Everything a loop needs, shared between threads.
pub(crate) struct Run {
    pub cfg: Config,
    pub sink: Sink,
    pub pool: rayon::ThreadPool,
    pub stop: Arc<AtomicBool>,
    pub until_caught_up: bool,
    pub metrics: Arc<Metrics>,
    /// partition mode's payload bound across partitions (`buffer_max_bytes`)
    pub budget: budget::Budget,
    /// set once the process has torn down after its loop (see [`Run::bound_teardown`])
    pub torn_down: Arc<AtomicBool>,
    /// starts the rollup folder's last fold (see [`Run::loaders_stopped`])
    pub last_fold: Option<crossbeam_channel::Sender<()>>,
}

impl Run {
    /// Called when a loop's loaders have stopped writing: the folder's last fold starts
    /// now, while the Kafka consumer closes (librdkafka takes 100-200 ms to leave the
    /// group and stop its threads), instead of after it.
    pub(crate) fn loaders_stopped(&self) {
        if let Some(last) = &self.last_fold {
            let _ = last.try_send(());
        }
    }

    /// Called when a loop has ended, with whether it ended well: what it committed is
    /// committed, and what is left (closing the Kafka consumer, the last rollup fold) gets
    /// `shutdown_timeout` before the process exits anyway, with the loop's outcome.
    /// librdkafka's consumer close can hang with split partition queues (its issue #3470);
    /// a process run from cron must not.
    pub(crate) fn bound_teardown(&self, ok: bool) {
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

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Where newly assigned partitions resume: the offsets stored in PostgreSQL. A
    /// partition with no row gets its start position stored first, so a restart before
    /// its first batch skips nothing that arrived meanwhile: `startingOffsets` (from the
    /// broker) for every partition of a topic the group has no row of yet, the log's
    /// start for a partition added to a topic it has. Retried while PostgreSQL or the
    /// broker is away.
    pub(crate) fn load_offsets(
        &self,
        source: &Source,
        parts: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>> {
        let budget = self.cfg.pipeline.retry_budget;
        retry(
            "reading stream_offsets",
            budget,
            |_| self.try_load_offsets(source, parts),
            |_| {},
        )
    }

    fn try_load_offsets(
        &self,
        source: &Source,
        parts: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>> {
        let mut conn = self.sink.pool().get("connecting to PostgreSQL")?;
        let group = self.sink.group();
        let mut found: Vec<Option<i64>> = vec![None; parts.len()];
        let mut topics: Vec<&str> = parts.iter().map(TopicPartition::topic).collect();
        topics.sort_unstable();
        topics.dedup();
        // One read per topic, and one statement for the partitions it has no row of.
        for topic in topics {
            let of_topic: Vec<usize> = (0..parts.len())
                .filter(|&i| parts[i].topic() == topic)
                .collect();
            let partitions: Vec<i32> = of_topic.iter().map(|&i| parts[i].partition).collect();
            let stored = offsets::load(&mut *conn, group, topic, &partitions)?;
            let mut missing = Vec::new();
            for (&i, (_, n)) in of_topic.iter().zip(stored) {
                match n {
                    Some(n) => found[i] = Some(n),
                    None => missing.push(i),
                }
            }
            if missing.is_empty() {
                continue;
            }
            let added = offsets::has_rows(&mut *conn, group, topic)?;
            let starts = if added {
                // Partitions added to a topic this group reads: from their log's start,
                // as Spark starts partitions it discovers during a query, whatever
                // startingOffsets says (`latest` would skip what arrived before the
                // group saw them).
                missing
                    .iter()
                    .map(|&i| Ok((parts[i].partition, source.watermarks(&parts[i])?.0)))
                    .collect::<Result<Vec<_>>>()?
            } else {
                // The group's first contact with the topic: every partition it has now
                // starts at startingOffsets, so that one another member is given later
                // is not taken for an added one. Those of other members are stored as
                // far as the broker answers for them (one whose leader is away now is
                // stored when it is assigned).
                let mut starts = missing
                    .iter()
                    .map(|&i| Ok((parts[i].partition, source.start_offset(&parts[i])?)))
                    .collect::<Result<Vec<_>>>()?;
                let others = source.partitions_of(&[topic.to_string()]);
                for tp in others.unwrap_or_default() {
                    if starts.iter().any(|(p, _)| *p == tp.partition) {
                        continue;
                    }
                    match source.start_offset(&tp) {
                        Ok(n) => starts.push((tp.partition, n)),
                        Err(e) => log::debug!("{tp}: start position not stored yet: {e}"),
                    }
                }
                starts
            };
            let now = offsets::store_starts(&mut *conn, group, topic, &starts)?;
            for &i in &missing {
                let tp = &parts[i];
                let n = now
                    .iter()
                    .find(|(p, _)| *p == tp.partition)
                    .map(|(_, n)| *n);
                match (n, added) {
                    (Some(n), false) => log::info!(
                        "{tp}: first assignment for group {group}, starting at offset {n}"
                    ),
                    (Some(n), true) => log::info!(
                        "{tp}: a partition added to the topic, new to group {group}: starting \
                         at its log's start, offset {n}"
                    ),
                    (None, _) => {}
                }
                found[i] = n;
            }
        }
        parts
            .iter()
            .zip(found)
            .map(|(tp, n)| {
                n.map(|n| (tp.clone(), n)).ok_or_else(|| {
                    Error::fatal(
                        format!("reading stream_offsets of {group}/{tp}"),
                        "no offset read or stored",
                    )
                })
            })
            .collect()
    }

    /// Transform and write one batch, then tell Kafka. Fenced partitions are re-seeked
    /// to what PostgreSQL holds.
    /// A partition whose ownership was lost meanwhile (`owned` false) is not touched
    /// after the transaction: PostgreSQL's fence already decided whether it counted.
    pub(crate) fn flush(
        &self,
        source: &Source,
        readers: &mut [&mut PartitionReader],
        msgs: Vec<Msg>,
        owned: &AtomicBool,
    ) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare(msgs, |tp| {
            readers.iter().find(|r| r.tp == *tp).map_or(0, |r| r.next)
        });
        let written = self.write(prepared)?;
        if owned.load(Ordering::Acquire) {
            self.settle(source, readers, written)?;
        }
        Ok(())
    }

    /// Transform a batch on the pool. `expected` gives the offset PostgreSQL holds (or
    /// will hold once the batch before commits) per partition.
    pub(crate) fn prepare(
        &self,
        msgs: Vec<Msg>,
        expected: impl Fn(&TopicPartition) -> i64,
    ) -> Ready {
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
    pub(crate) fn write(&self, ready: Ready) -> Result<Written> {
        self.write_after(ready, None, None)
    }

    /// [`Run::write`] pipelined behind the batch whose write ends when `prior`
    /// disconnects (see [`Sink::write_after`]), its keys claimed ahead (`claim`).
    pub(crate) fn write_after(
        &self,
        ready: Ready,
        prior: Option<crossbeam_channel::Receiver<()>>,
        claim: Option<crate::sink::Claim>,
    ) -> Result<Written> {
        let outcome = self
            .sink
            .write_after(&ready.prepared, &ready.dims, prior.as_ref(), claim)?;
        Ok(Written { ready, outcome })
    }
}

/// A transformed batch and its new dimension rows, waiting to be written.
pub(crate) struct Ready {
    pub prepared: Prepared,
    dims: DimRows,
    started: Instant,
    transformed: Duration,
}

/// A batch after its transaction: committed or fenced.
pub(crate) struct Written {
    ready: Ready,
    outcome: Outcome,
}

/// Accumulates messages until a limit is reached.
pub(crate) struct Batcher {
    pub msgs: Vec<Msg>,
    bytes: usize,
    first_at: Option<Instant>,
    max_messages: usize,
    max_bytes: usize,
    max_age: Duration,
    linger: Duration,
    /// the next batch's message bound while it is lower than `max_messages` (see
    /// [`Batcher::ramp_from`])
    ramp: Option<usize>,
}

/// The first batch a reader cuts after an assignment, as a share of `batch_max_messages`
/// (see [`Batcher::ramp_from`]).
pub(crate) const RAMP_START: usize = 4;

impl Batcher {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, max_age: Duration) -> Self {
        Batcher {
            msgs: Vec::new(),
            bytes: 0,
            first_at: None,
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            max_age,
            linger: Duration::ZERO,
            ramp: None,
        }
    }

    /// Cut the next batch at `n` messages (at least one), each one after at twice the
    /// one before, up to the bound. A pipeline starts empty: PostgreSQL waits while its
    /// first batch is read and transformed, and the loaders wait for PostgreSQL at the
    /// end. Small batches first get PostgreSQL working sooner; doubling, each batch is
    /// read and transformed while the one before, half its size, is written. After an
    /// assignment of a backlog, the first batch of 10,000 committed 230 ms after the
    /// assignment, and one of 2,500 after 120 ms (see docs/performance.md).
    pub(crate) fn ramp_from(&mut self, n: usize) {
        self.ramp = (n < self.max_messages).then_some(n.max(1));
    }

    /// The message bound of the batch being read.
    fn bound(&self) -> usize {
        self.ramp.unwrap_or(self.max_messages)
    }

    /// At a partition's end, wait up to `linger` for more messages (see [`Batcher::lingered`]).
    pub(crate) fn lingering(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Time left before the oldest message has waited the linger (None: empty batch).
    pub(crate) fn linger_left(&self) -> Option<Duration> {
        self.first_at
            .map(|t| self.linger.saturating_sub(t.elapsed()))
    }

    /// Whether a batch at the partition's end is written now: it is not empty and its
    /// oldest message has waited the linger.
    pub(crate) fn lingered(&self) -> bool {
        self.linger_left().is_some_and(|d| d.is_zero())
    }

    pub(crate) fn push(&mut self, m: Msg) {
        self.first_at.get_or_insert_with(Instant::now);
        self.bytes += m.size();
        self.msgs.push(m);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// The payload bytes the batch holds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages that still fit under the count bound.
    pub(crate) fn room(&self) -> usize {
        self.bound().saturating_sub(self.msgs.len())
    }

    pub(crate) fn full(&self) -> bool {
        self.msgs.len() >= self.bound() || self.bytes >= self.max_bytes
    }

    /// Time left before the oldest message has waited `max_age` (None: empty batch).
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.first_at
            .map(|t| self.max_age.saturating_sub(t.elapsed()))
    }

    pub(crate) fn due(&self) -> bool {
        self.full() || self.time_left().is_some_and(|d| d.is_zero())
    }

    pub(crate) fn take(&mut self) -> Vec<Msg> {
        self.bytes = 0;
        self.first_at = None;
        if let Some(r) = self.ramp {
            self.ramp_from(r.saturating_mul(2));
        }
        std::mem::take(&mut self.msgs)
    }

    /// Drop the messages of partitions no longer ours (revoked): they stay uncommitted.
    pub(crate) fn retain(&mut self, keep: impl Fn(&Msg) -> bool) {
        self.msgs.retain(keep);
        self.bytes = self.msgs.iter().map(Msg::size).sum();
        if self.msgs.is_empty() {
            self.first_at = None;
        }
    }
}

/// Run the configured mode until stopped (or caught up, when asked), reading `source`
/// (subscribed already, so that the group join overlaps the process's setup).
pub(crate) fn run(run: Arc<Run>, source: Source) -> Result<()> {
    match run.cfg.pipeline.mode {
        Mode::Partition => partition::run(run, source),
        Mode::Batch => batch::run(run, source),
    }
}

/// A partition whose log cannot be read past its fetch position (see
/// [`crate::source::Polled::Unreadable`]) stops the run: skipping the records would lose
/// them, waiting would never end. What was read before it has been committed.
pub(crate) fn unreadable(tp: &TopicPartition, what: String) -> Error {
    Error::fatal(
        format!("reading {tp}"),
        format!(
            "{what}: the records there cannot be decoded (a compression codec this build \
             lacks, or a corrupt batch); nothing past them is read"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: i64) -> Msg {
        Msg {
            tp: TopicPartition::new("t", 0),
            offset,
            payload: Some(b"{}".to_vec()),
            gap: false,
        }
    }

    /// The messages a batcher takes per batch from a backlog of `n`.
    fn cuts(b: &mut Batcher, n: i64) -> Vec<usize> {
        let mut sizes = Vec::new();
        for o in 0..n {
            b.push(msg(o));
            if b.full() {
                assert!(b.due());
                sizes.push(b.take().len());
            }
        }
        sizes
    }

    #[test]
    fn a_ramp_doubles_each_batch_up_to_the_bound() {
        let mut b = Batcher::new(10, usize::MAX, Duration::from_secs(60));
        b.ramp_from(2);
        assert_eq!(b.room(), 2);
        assert_eq!(cuts(&mut b, 30), [2, 4, 8, 10], "and 6 left in the batch");
        // a ramp again (a new assignment) starts over; one from zero starts at one message
        b.take();
        b.ramp_from(0);
        assert_eq!(cuts(&mut b, 17), [1, 2, 4, 8]);
        // a ramp from the bound or past it is no ramp
        let mut flat = Batcher::new(3, usize::MAX, Duration::from_secs(60));
        flat.ramp_from(7);
        assert_eq!(cuts(&mut flat, 9), [3, 3, 3]);
    }
}

//! MODE=batch, the foreachBatch analogue: one thread drains every assigned partition into
//! one micro-batch per trigger interval (or size bound) and writes it in one transaction,
//! on a writer thread while the next micro-batch is read and transformed.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::{unreadable, Batcher, CaughtUp, Run, Written, RAMP_START};
use crate::error::{Error, Result};
use crate::source::{PartitionReader, Polled, Rebalance, Source};
use crate::topic_partition::{describe, TopicPartition};

/// Most messages taken from one partition before moving to the next.
const PER_PARTITION_TURN: usize = 512;

pub(crate) fn run(run: Arc<Run>, source: Source) -> Result<()> {
    let result = Loop {
        run: &run,
        source: &source,
        batch: {
            let p = &run.cfg.pipeline;
            Batcher::new(p.batch_max_messages, p.batch_max_bytes, p.trigger_interval)
        },
        readers: Vec::new(),
        writing: None,
        settled: false,
    }
    .drain();
    run.loaders_stopped();
    run.bound_teardown(result.is_ok());
    source.close();
    result
}

/// A micro-batch whose transaction runs on its own thread while the next one is read
/// and transformed, and while the next one COPYs its facts (the writer is the bound of
/// this mode: a batch's COPY is most of its transaction). Micro-batches still commit one
/// at a time, in order: the next one moves its offsets only once this one's write ended.
struct InFlight {
    /// per partition, the next offset PostgreSQL will hold once this batch commits
    next: Vec<(TopicPartition, i64)>,
    handle: JoinHandle<Result<Written>>,
    /// disconnects when the write has ended (its thread drops the sender)
    ended: Receiver<()>,
}

struct Loop<'a> {
    run: &'a Arc<Run>,
    source: &'a Source,
    batch: Batcher,
    readers: Vec<PartitionReader>,
    writing: Option<InFlight>,
    /// an assignment has been received and no revoke since
    settled: bool,
}

/// Ownership is never lost under this loop's feet: revokes are handled here, in turn.
static OWNED: AtomicBool = AtomicBool::new(true);

impl Loop<'_> {
    fn drain(&mut self) -> Result<()> {
        let mut caught_up = CaughtUp::default();
        loop {
            if self.run.stopping() {
                // A batch read past a fence was trimmed by `settle`; the rest commits.
                self.settle()?;
                return self.flush();
            }
            let got = self.read()?;
            let wait = if got {
                Duration::ZERO
            } else {
                self.batch
                    .time_left()
                    .map_or(Duration::from_millis(10), |t| {
                        t.min(Duration::from_millis(10))
                    })
            };
            for event in self.source.poll_events(wait)? {
                self.rebalance(event)?;
            }
            let all_eof = self.readers.iter().all(|r| r.at_eof);
            if self.batch.due() || (self.run.until_caught_up && all_eof && !self.batch.is_empty()) {
                self.write_next()?;
            } else if self.run.until_caught_up && all_eof && self.writing.is_some() {
                self.settle()?;
            } else if self.run.until_caught_up {
                let own_done = self.settled && all_eof && self.batch.is_empty();
                if caught_up.check(self.run, self.source, own_done)? {
                    log::info!(
                        "caught up: every partition of {:?} is committed to its end",
                        self.run.cfg.kafka.topics
                    );
                    return Ok(());
                }
            }
        }
    }

    /// One round over the partitions; true when a message was taken.
    fn read(&mut self) -> Result<bool> {
        let mut got = false;
        // Each partition's turn is its share of the room left, so a small batch bound
        // does not let the first partition fill every batch.
        let turn = (self.batch.room() / self.readers.len().max(1)).clamp(1, PER_PARTITION_TURN);
        for i in 0..self.readers.len() {
            for _ in 0..turn {
                if self.batch.full() {
                    break;
                }
                match self.readers[i].poll(Duration::ZERO) {
                    Polled::Msg(m) => {
                        self.batch.push(m);
                        got = true;
                    }
                    Polled::OutOfRange(what) => {
                        // What was read before the missing offsets commits first.
                        self.settle()?;
                        self.flush()?;
                        let r = &mut self.readers[i];
                        self.run.out_of_range(self.source, r, &what)?;
                        break;
                    }
                    Polled::Unreadable(what) => {
                        self.settle()?;
                        self.flush()?;
                        return Err(unreadable(&self.readers[i].tp, what));
                    }
                    Polled::Eof | Polled::Nothing => break,
                }
            }
        }
        Ok(got)
    }

    fn rebalance(&mut self, event: Rebalance) -> Result<()> {
        let parts = match event {
            Rebalance::Assign(parts) => {
                log::info!("assigned {}", describe(&parts));
                let offsets = self.run.load_offsets(self.source, &parts)?;
                self.run.metrics.assigned(&offsets);
                self.readers.extend(self.source.assign(&offsets)?);
                self.settled = true;
                // the pipeline starts again (a backlog is likely after a rebalance)
                let max = self.run.cfg.pipeline.batch_max_messages;
                self.batch.ramp_from(max / RAMP_START);
                return Ok(());
            }
            Rebalance::Revoke(parts) => parts,
            Rebalance::Error(e) => {
                log::warn!("rebalance error {e}: dropping the assignment");
                self.readers.iter().map(|r| r.tp.clone()).collect()
            }
        };
        // The batch being written still commits (or is fenced) as ours.
        self.settle()?;
        self.settled = false;
        log::info!(
            "revoked {}; their uncommitted messages are dropped",
            describe(&parts)
        );
        self.batch.retain(|m| !parts.contains(&m.tp));
        self.readers.retain(|r| !parts.contains(&r.tp));
        self.run.metrics.revoked(&parts);
        self.source.unassign(&parts)
    }

    /// Transform the cut batch and start writing it behind the one in flight (it COPYs
    /// while that one finishes), then wait for the one in flight. If that one was fenced,
    /// this one (read past the fence) is fenced too: its partitions are read again from
    /// what PostgreSQL holds.
    fn write_next(&mut self) -> Result<()> {
        let msgs = self.batch.take();
        let ready = {
            let (writing, readers) = (&self.writing, &self.readers);
            self.run.prepare(msgs, |tp| {
                let chained = writing
                    .as_ref()
                    .and_then(|w| w.next.iter().find(|(wtp, _)| wtp == tp).map(|x| x.1));
                chained
                    .unwrap_or_else(|| readers.iter().find(|r| r.tp == *tp).map_or(0, |r| r.next))
            })
        };
        let next = ready
            .prepared
            .offsets
            .iter()
            .map(|a| (a.tp.clone(), a.next))
            .collect();
        let prior = self
            .writing
            .as_ref()
            .filter(|_| !self.run.sink.others_writing())
            .map(|w| w.ended.clone());
        if prior.is_none() && !self.settle()? {
            // Not pipelined (another process writes our keys): the one before first.
            for adv in &ready.prepared.offsets {
                if let Some(r) = self.readers.iter_mut().find(|r| r.tp == adv.tp) {
                    let next = r.next;
                    self.source.seek(r, next)?;
                }
            }
            return Ok(());
        }
        let (ends, ended) = crossbeam_channel::bounded::<()>(0);
        let writer = self.run.clone();
        // Claimed here, in batch order: a writer thread scheduled late must not find its
        // keys claimed by the next micro-batch's (see `sink::in_flight`).
        let claim = self.run.sink.claim(&ready.prepared);
        let handle = std::thread::Builder::new()
            .name("batch-writer".into())
            .spawn(move || {
                let _ends = ends; // dropped when the write has ended, however it ended
                #[cfg(debug_assertions)]
                late_writer_for_tests();
                writer.write_after(ready, prior, Some(claim))
            })
            .map_err(|e| Error::fatal("starting the batch writer", e))?;
        let this = InFlight {
            next,
            handle,
            ended,
        };
        // The one before, then this one's turn: fenced with it if it was fenced.
        if !self.settle()? {
            self.writing = Some(this);
            self.settle()?;
            return Ok(());
        }
        self.writing = Some(this);
        Ok(())
    }

    /// Wait for the batch in flight (if any) and act on its outcome. False: it was fenced,
    /// its partitions now resume from what PostgreSQL holds, and the messages of theirs
    /// read since are dropped from the batch (they will be read again).
    fn settle(&mut self) -> Result<bool> {
        let Some(w) = self.writing.take() else {
            return Ok(true);
        };
        let written = w
            .handle
            .join()
            .map_err(|_| Error::fatal("batch writer", "panicked"))??;
        let mut refs: Vec<&mut PartitionReader> = self.readers.iter_mut().collect();
        let committed = self.run.settle(self.source, &mut refs, written)?;
        if !committed {
            self.batch
                .retain(|m| !w.next.iter().any(|(tp, _)| *tp == m.tp));
        }
        Ok(committed)
    }

    /// Write the batch as it is, synchronously (nothing may be in flight).
    fn flush(&mut self) -> Result<()> {
        let mut refs: Vec<&mut PartitionReader> = self.readers.iter_mut().collect();
        self.run
            .flush(self.source, &mut refs, self.batch.take(), &OWNED)
    }
}

/// Test builds only: with `STREAMER_TEST_LATE_WRITER_MS` set, every other writer (a
/// micro-batch's, or a partition's batch written behind another) starts that late, as a
/// thread the scheduler runs late on a loaded machine does (its tests:
/// `modes::late_batch_writers_keep_first_writes_first`,
/// `modes::one_partition_writes_behind_in_order`).
#[cfg(debug_assertions)]
pub(super) fn late_writer_for_tests() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let ms = std::env::var("STREAMER_TEST_LATE_WRITER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = ms {
        if STARTED.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

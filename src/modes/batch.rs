//! MODE=batch, the foreachBatch analogue: one thread drains every assigned partition into
//! one micro-batch per trigger interval (or size bound) and writes it in one transaction,
//! on a writer thread while the next micro-batch is read and transformed.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Batcher, Run, Written};
use crate::error::{Error, Result};
use crate::source::{PartitionReader, Polled, Rebalance, Source};

/// Most messages taken from one partition before moving to the next.
const PER_PARTITION_TURN: usize = 512;

pub fn run(run: Arc<Run>) -> Result<()> {
    let source = Source::subscribe(&run.cfg, run.metrics.clone())?;
    let result = drain(&run, &source);
    run.bound_teardown(result.is_ok());
    source.close();
    result
}

fn drain(run: &Arc<Run>, source: &Source) -> Result<()> {
    let p = &run.cfg.pipeline;
    let mut batch = Batcher::new(p.batch_max_messages, p.batch_max_bytes, p.trigger_interval);
    let mut readers: Vec<PartitionReader> = Vec::new();
    let mut writing: Option<InFlight> = None;
    let mut assigned_once = false;
    loop {
        if run.stopping() {
            // A batch read past a fence was trimmed by `settle`; the rest commits.
            settle(run, source, &mut readers, &mut writing, &mut batch)?;
            return flush(run, source, &mut readers, &mut batch);
        }
        let mut got = false;
        // Each partition's turn is its share of the room left, so a small batch bound
        // does not let the first partition fill every batch.
        let turn = (batch.room() / readers.len().max(1)).clamp(1, PER_PARTITION_TURN);
        for r in readers.iter_mut() {
            for _ in 0..turn {
                if batch.full() {
                    break;
                }
                match r.poll(Duration::ZERO) {
                    Polled::Msg(m) => {
                        batch.push(m);
                        got = true;
                    }
                    Polled::Eof | Polled::Nothing => break,
                }
            }
        }
        let wait = if got {
            Duration::ZERO
        } else {
            batch.time_left().map_or(Duration::from_millis(10), |t| {
                t.min(Duration::from_millis(10))
            })
        };
        for event in source.poll_events(wait)? {
            match event {
                Rebalance::Assign(parts) => {
                    log::info!("assigned {} partitions", parts.len());
                    let offsets = run.load_offsets(&parts)?;
                    readers.extend(source.assign(&offsets)?);
                    assigned_once = true;
                }
                Rebalance::Revoke(_) | Rebalance::Error(_) => {
                    // The batch being written still commits (or is fenced) as ours.
                    settle(run, source, &mut readers, &mut writing, &mut batch)?;
                    let parts = match event {
                        Rebalance::Revoke(parts) => parts,
                        other => {
                            log::warn!("rebalance error {other:?}: dropping the assignment");
                            readers.iter().map(PartitionReader::key).collect()
                        }
                    };
                    log::info!(
                        "revoked {} partitions; their uncommitted messages are dropped",
                        parts.len()
                    );
                    batch.retain(|m| {
                        !parts
                            .iter()
                            .any(|(t, p)| **t == *m.topic && *p == m.partition)
                    });
                    readers.retain(|r| !parts.contains(&r.key()));
                    source.unassign(&parts)?;
                }
            }
        }
        let all_eof = readers.iter().all(|r| r.at_eof);
        if batch.due() || (run.until_caught_up && all_eof && !batch.is_empty()) {
            write_next(run, source, &mut readers, &mut batch, &mut writing)?;
        } else if run.until_caught_up && all_eof && writing.is_some() {
            settle(run, source, &mut readers, &mut writing, &mut batch)?;
        } else if run.until_caught_up && assigned_once && all_eof && batch.is_empty() {
            log::info!("caught up: every assigned partition is read to its end and committed");
            return Ok(());
        }
    }
}

/// A micro-batch whose transaction runs on its own thread while the next one is read
/// and transformed. Micro-batches still commit one at a time, in order.
struct InFlight {
    /// per partition, the next offset PostgreSQL will hold once this batch commits
    next: Vec<(Arc<str>, i32, i64)>,
    handle: JoinHandle<Result<Written>>,
}

/// Transform the cut batch, wait for the one in flight, then start writing this one.
/// If the one in flight was fenced, this one (read past the fence) is dropped and its
/// partitions are read again from what PostgreSQL holds.
fn write_next(
    run: &Arc<Run>,
    source: &Source,
    readers: &mut [PartitionReader],
    batch: &mut Batcher,
    writing: &mut Option<InFlight>,
) -> Result<()> {
    let msgs = batch.take();
    let ready = run.prepare(msgs, |t, p| {
        let chained = writing.as_ref().and_then(|w| {
            w.next
                .iter()
                .find(|(wt, wp, _)| &**wt == t && *wp == p)
                .map(|x| x.2)
        });
        chained.or_else(|| {
            readers
                .iter()
                .find(|r| &*r.topic == t && r.partition == p)
                .and_then(|r| r.expected)
        })
    });
    if !settle(run, source, readers, writing, batch)? {
        for adv in &ready.prepared.offsets {
            if let Some(r) = readers
                .iter_mut()
                .find(|r| *r.topic == *adv.topic && r.partition == adv.partition)
            {
                let now = r.expected;
                source.seek(r, now)?;
            }
        }
        return Ok(());
    }
    let next = ready
        .prepared
        .offsets
        .iter()
        .map(|a| (Arc::from(a.topic.as_str()), a.partition, a.next))
        .collect();
    let writer = run.clone();
    let handle = std::thread::Builder::new()
        .name("batch-writer".into())
        .spawn(move || writer.write(ready))
        .map_err(|e| Error::fatal("starting the batch writer", e))?;
    *writing = Some(InFlight { next, handle });
    Ok(())
}

/// Wait for the batch in flight (if any) and act on its outcome. False: it was fenced,
/// its partitions now resume from what PostgreSQL holds, and the messages of theirs
/// read since are dropped from `batch` (they will be read again).
fn settle(
    run: &Run,
    source: &Source,
    readers: &mut [PartitionReader],
    writing: &mut Option<InFlight>,
    batch: &mut Batcher,
) -> Result<bool> {
    let Some(w) = writing.take() else {
        return Ok(true);
    };
    let written = w
        .handle
        .join()
        .map_err(|_| Error::fatal("batch writer", "panicked"))??;
    let mut refs: Vec<&mut PartitionReader> = readers.iter_mut().collect();
    let committed = run.settle(source, &mut refs, written)?;
    if !committed {
        batch.retain(|m| {
            !w.next
                .iter()
                .any(|(t, p, _)| **t == *m.topic && *p == m.partition)
        });
    }
    Ok(committed)
}

fn flush(
    run: &Run,
    source: &Source,
    readers: &mut [PartitionReader],
    batch: &mut Batcher,
) -> Result<()> {
    let mut refs: Vec<&mut PartitionReader> = readers.iter_mut().collect();
    run.flush(source, &mut refs, batch.take())
}

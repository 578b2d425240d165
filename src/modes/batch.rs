//! MODE=batch, the foreachBatch analogue: one thread drains every assigned partition into
//! one micro-batch per trigger interval (or size bound) and writes it in one transaction.

use std::sync::Arc;
use std::time::Duration;

use super::{Batcher, Run};
use crate::error::Result;
use crate::source::{PartitionReader, Polled, Rebalance, Source};

/// Most messages taken from one partition before moving to the next.
const PER_PARTITION_TURN: usize = 512;

pub fn run(run: Arc<Run>) -> Result<()> {
    let source = Source::subscribe(&run.cfg, run.metrics.clone())?;
    let result = drain(&run, &source);
    source.close();
    result
}

fn drain(run: &Run, source: &Source) -> Result<()> {
    let p = &run.cfg.pipeline;
    let mut batch = Batcher::new(p.batch_max_messages, p.batch_max_bytes, p.trigger_interval);
    let mut readers: Vec<PartitionReader> = Vec::new();
    let mut assigned_once = false;
    loop {
        if run.stopping() {
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
            flush(run, source, &mut readers, &mut batch)?;
        }
        if run.until_caught_up && assigned_once && all_eof && batch.is_empty() {
            log::info!("caught up: every assigned partition is read to its end and committed");
            return Ok(());
        }
    }
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

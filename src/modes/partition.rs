//! MODE=partition, the foreachPartition analogue: the main thread serves the consumer
//! (rebalances) while one thread per assigned partition cuts, transforms and writes batches.
//! A worker that does not stop in time on revoke is abandoned: it may still finish its
//! transaction (fenced like any other), but never seeks or commits the partition to the
//! Kafka group again, and the partition is not handed to a new worker until it has ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::behind::Behind;
use super::{Batcher, CaughtUp, Run, RAMP_START};
use crate::error::{Error, Result};
use crate::source::{PartitionReader, Polled, Rebalance, Source};
use crate::topic_partition::{describe, TopicPartition};

struct Worker {
    flags: Arc<Flags>,
    handle: JoinHandle<Result<()>>,
}

/// What a partition's thread and the main thread share.
#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    /// set with `stop` when the partition was revoked: the batch not yet written is
    /// dropped, not written (its messages are read again by the next owner)
    revoked: AtomicBool,
    /// cleared when the partition is revoked from under a worker that did not stop
    owned: AtomicBool,
    /// read to the end, nothing uncommitted
    done: AtomicBool,
}

/// The main thread's view: workers of owned partitions, and abandoned ones still running.
#[derive(Default)]
struct Workers {
    live: HashMap<TopicPartition, Worker>,
    abandoned: Vec<(TopicPartition, Worker)>,
    /// an assignment has been received and no revoke since
    settled: bool,
}

pub(crate) fn run(run: Arc<Run>, source: Source) -> Result<()> {
    let source = Arc::new(source);
    let mut workers = Workers::default();
    let mut caught_up = CaughtUp::default();
    let result = loop {
        if run.stopping() {
            break Ok(());
        }
        if let Err(e) = serve(&run, &source, &mut workers) {
            break Err(e);
        }
        if let Some(e) = reap_failed(&mut workers.live, run.stopping()) {
            break Err(e);
        }
        workers.abandoned.retain(|(_, w)| !w.handle.is_finished());
        if run.until_caught_up {
            let own_done = workers.settled
                && workers.abandoned.is_empty()
                && workers
                    .live
                    .values()
                    .all(|w| w.flags.done.load(Ordering::Acquire));
            match caught_up.check(&run, &source, own_done) {
                Ok(true) => {
                    log::info!(
                        "caught up: every partition of {:?} is committed to its end",
                        run.cfg.kafka.topics
                    );
                    break Ok(());
                }
                Ok(false) => {}
                Err(e) => break Err(e),
            }
        }
    };
    let started = Instant::now();
    let live = std::mem::take(&mut workers.live);
    let result = result.and(stop_all(&run, live, &mut workers.abandoned, false));
    log::debug!("partition workers stopped in {:?}", started.elapsed());
    run.loaders_stopped();
    run.bound_teardown(result.is_ok());
    source.close();
    log::debug!("consumer closed after {:?}", started.elapsed());
    result
}

/// How long the main thread's poll of the consumer waits. librdkafka serves a rebalance
/// inside the poll and returns only at a message or the timeout, so an assignment (the
/// start, another member joining) was acted on up to this late, and so was the end of a
/// run `--until-caught-up` (the workers' "done" is looked at between polls): at 100 ms,
/// an idle run waited some 100 ms twice. A poll of an empty queue costs microseconds.
const SERVE_POLL: Duration = Duration::from_millis(10);

/// Poll the consumer once and act on the rebalances it announced.
fn serve(run: &Arc<Run>, source: &Arc<Source>, workers: &mut Workers) -> Result<()> {
    for event in source.poll_events(SERVE_POLL)? {
        match event {
            Rebalance::Assign(parts) => {
                log::info!("assigned {}", describe(&parts));
                wait_abandoned(run, &parts, &mut workers.abandoned)?;
                let offsets = run.load_offsets(source, &parts)?;
                run.metrics.assigned(&offsets);
                let readers = source.assign(&offsets)?;
                let n = readers.len();
                for (i, reader) in readers.into_iter().enumerate() {
                    let tp = reader.tp.clone();
                    let stagger = (i + 1, n);
                    workers
                        .live
                        .insert(tp, spawn(run.clone(), source.clone(), reader, stagger)?);
                }
                workers.settled = true;
            }
            Rebalance::Revoke(parts) => {
                log::info!(
                    "revoked {}; their messages not yet written are dropped",
                    describe(&parts)
                );
                workers.settled = false;
                let revoked: HashMap<_, _> = parts
                    .iter()
                    .filter_map(|tp| workers.live.remove_entry(tp))
                    .collect();
                let stopped = stop_all(run, revoked, &mut workers.abandoned, true);
                run.metrics.revoked(&parts);
                source.unassign(&parts)?;
                stopped?;
            }
            Rebalance::Error(e) => {
                log::warn!("rebalance error {e}: dropping the assignment");
                workers.settled = false;
                let parts: Vec<_> = workers.live.keys().cloned().collect();
                let live = std::mem::take(&mut workers.live);
                let stopped = stop_all(run, live, &mut workers.abandoned, true);
                run.metrics.revoked(&parts);
                source.unassign(&parts)?;
                stopped?;
            }
        }
    }
    Ok(())
}

/// A partition assigned again while its abandoned worker still runs waits for it, so
/// that one partition never has two readers.
fn wait_abandoned(
    run: &Run,
    parts: &[TopicPartition],
    abandoned: &mut Vec<(TopicPartition, Worker)>,
) -> Result<()> {
    let deadline =
        Instant::now() + run.cfg.pipeline.retry_budget + run.cfg.pipeline.shutdown_timeout;
    for (tp, w) in abandoned.iter().filter(|(tp, _)| parts.contains(tp)) {
        while !w.handle.is_finished() {
            if Instant::now() >= deadline {
                return Err(Error::fatal(
                    tp.to_string(),
                    "assigned again while its previous worker is still writing",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    abandoned.retain(|(_, w)| !w.handle.is_finished());
    Ok(())
}

/// Start a partition's thread; it is the `stagger.0`th of `stagger.1` assigned together
/// (see [`work`]).
fn spawn(
    run: Arc<Run>,
    source: Arc<Source>,
    reader: PartitionReader,
    stagger: (usize, usize),
) -> Result<Worker> {
    let flags = Arc::new(Flags {
        owned: AtomicBool::new(true),
        ..Flags::default()
    });
    let shared = flags.clone();
    let name = reader.tp.to_string();
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || work(&run, &source, reader, &shared, stagger))
        .map_err(|e| Error::fatal(format!("starting worker {name}"), e))?;
    Ok(Worker { flags, handle })
}

/// One partition: poll, cut by count/bytes/latency/EOF, flush. On stop, the batch being
/// read is written before the thread ends, unless the partition was revoked: then it is
/// dropped, since the rebalance (every member of the group) waits for this thread, and
/// the next owner reads those messages again from the offset PostgreSQL holds. A batch
/// whose transaction has begun always ends it first.
///
/// Partitions assigned together with a backlog would read, transform and write their
/// first batches in step, PostgreSQL waiting while they all read and transform: the
/// `i`th of `n` ramps up from `i/n` of the first batch's bound ([`RAMP_START`]), which
/// puts them out of step from the start.
fn work(
    run: &Arc<Run>,
    source: &Source,
    mut reader: PartitionReader,
    flags: &Flags,
    (i, n): (usize, usize),
) -> Result<()> {
    let (stop, owned, done) = (&flags.stop, &flags.owned, &flags.done);
    let p = &run.cfg.pipeline;
    let mut batch = Batcher::new(p.batch_max_messages, p.batch_max_bytes, p.batch_max_latency)
        .lingering(p.batch_linger);
    batch.ramp_from(p.batch_max_messages.saturating_mul(i) / n.max(1) / RAMP_START);
    // this partition's part of `buffer_max_bytes`, held from a batch's first message until
    // it is written
    let mut share = run.budget.share();
    // how long an idle worker waits for a message before it looks at `stop` again (the end
    // of a run waits for it; a poll of an empty queue costs microseconds)
    let tick = Duration::from_millis(10);
    // the batch written while the next is read (with a few partitions; see `behind`)
    let mut behind = Behind::default();
    loop {
        if flags.revoked.load(Ordering::Acquire) {
            behind.finish_revoked(run, source)?;
            if !batch.is_empty() {
                log::debug!(
                    "{}: revoked; {} messages not yet written are left to the next owner",
                    reader.tp,
                    batch.msgs.len()
                );
            }
            return Ok(());
        }
        if stop.load(Ordering::Acquire) || run.stopping() {
            if !behind.settle(run, source, &mut reader, owned)? {
                return Ok(()); // read past a fence: the next owner reads it again
            }
            return run.flush(source, &mut [&mut reader], batch.take(), owned);
        }
        let mut timeout = batch.time_left().map_or(tick, |t| t.min(tick));
        if reader.at_eof {
            // at the end: wake when the batch has lingered long enough to be written
            timeout = batch.linger_left().map_or(timeout, |t| t.min(timeout));
        }
        match reader.poll(timeout) {
            Polled::Msg(m) => {
                done.store(false, Ordering::Release);
                share.hold();
                batch.push(m);
            }
            Polled::OutOfRange(what) => {
                done.store(false, Ordering::Release);
                if !behind.settle(run, source, &mut reader, owned)? {
                    batch.take(); // read past a fence, and read again from it
                    share.release();
                    continue;
                }
                run.flush(source, &mut [&mut reader], batch.take(), owned)?;
                share.release();
                if !owned.load(Ordering::Acquire) {
                    return Ok(());
                }
                run.out_of_range(source, &mut reader, &what)?;
                continue;
            }
            Polled::Unreadable(what) => {
                if behind.settle(run, source, &mut reader, owned)? {
                    run.flush(source, &mut [&mut reader], batch.take(), owned)?;
                }
                return Err(super::unreadable(&reader.tp, what));
            }
            Polled::Eof | Polled::Nothing => {}
        }
        if batch.due()
            || share.reached(batch.bytes() + behind.bytes())
            || (reader.at_eof && batch.lingered())
        {
            behind.write(run, source, &mut reader, owned, batch.take(), &share)?;
            if behind.idle() {
                share.release();
            }
        }
        if reader.at_eof && batch.is_empty() {
            if !behind.idle() {
                let committed = behind.settle(run, source, &mut reader, owned)?;
                share.release();
                if !committed {
                    continue; // read again from what PostgreSQL holds
                }
            }
            done.store(true, Ordering::Release);
        }
    }
}

/// Join workers that ended on their own (or, `stopping`, on the run's stop, which they
/// may see first); the first error ends the run.
fn reap_failed(workers: &mut HashMap<TopicPartition, Worker>, stopping: bool) -> Option<Error> {
    let ended: Vec<_> = workers
        .iter()
        .filter(|(_, w)| w.handle.is_finished())
        .map(|(k, _)| k.clone())
        .collect();
    for tp in ended {
        if let Some(w) = workers.remove(&tp) {
            match w.handle.join() {
                Ok(Ok(())) if stopping => log::debug!("worker {tp} stopped"),
                Ok(Ok(())) => log::warn!("worker {tp} ended early"),
                Ok(Err(e)) => return Some(e),
                Err(_) => return Some(Error::fatal(format!("worker {tp}"), "panicked")),
            }
        }
    }
    None
}

/// Ask workers to stop, writing what they hold unless `revoked` (then only a batch
/// whose transaction has begun ends); wait up to the shutdown timeout. Those still
/// running then are abandoned: they lose ownership and are kept in `abandoned`.
fn stop_all(
    run: &Run,
    workers: HashMap<TopicPartition, Worker>,
    abandoned: &mut Vec<(TopicPartition, Worker)>,
    revoked: bool,
) -> Result<()> {
    for w in workers.values() {
        w.flags.revoked.store(revoked, Ordering::Release);
        w.flags.stop.store(true, Ordering::Release);
    }
    let deadline = Instant::now() + run.cfg.pipeline.shutdown_timeout;
    let mut first_err = None;
    for (tp, w) in workers {
        while !w.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if !w.handle.is_finished() {
            w.flags.owned.store(false, Ordering::Release);
            log::warn!(
                "worker {tp} did not finish within the shutdown timeout; abandoned: its batch \
                 commits only if no one else has moved the partition, and it no longer seeks"
            );
            abandoned.push((tp, w));
            continue;
        }
        match w.handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(Error::fatal(format!("worker {tp}"), "panicked"));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

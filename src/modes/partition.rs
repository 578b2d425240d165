//! MODE=partition, the foreachPartition analogue: the main thread serves the consumer
//! (rebalances) while one thread per assigned partition cuts, transforms and writes batches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Batcher, Run};
use crate::error::{Error, Result};
use crate::source::{PartitionReader, Polled, Rebalance, Source};

struct Worker {
    stop: Arc<AtomicBool>,
    caught_up: Arc<AtomicBool>,
    handle: JoinHandle<Result<()>>,
}

pub fn run(run: Arc<Run>) -> Result<()> {
    let source = Arc::new(Source::subscribe(&run.cfg, run.metrics.clone())?);
    let mut workers: HashMap<(String, i32), Worker> = HashMap::new();
    let mut assigned_once = false;
    let result = loop {
        if run.stopping() {
            break Ok(());
        }
        if let Err(e) = serve(&run, &source, &mut workers, &mut assigned_once) {
            break Err(e);
        }
        if let Some(e) = reap_failed(&mut workers) {
            break Err(e);
        }
        if run.until_caught_up
            && assigned_once
            && workers
                .values()
                .all(|w| w.caught_up.load(Ordering::Acquire))
        {
            log::info!("caught up: every assigned partition is read to its end and committed");
            break Ok(());
        }
    };
    let result = result.and(stop_all(&run, workers));
    run.bound_teardown(result.is_ok());
    source.close();
    result
}

/// Poll the consumer once and act on the rebalances it announced.
fn serve(
    run: &Arc<Run>,
    source: &Arc<Source>,
    workers: &mut HashMap<(String, i32), Worker>,
    assigned_once: &mut bool,
) -> Result<()> {
    for event in source.poll_events(Duration::from_millis(100))? {
        match event {
            Rebalance::Assign(parts) => {
                log::info!("assigned {}", describe(&parts));
                let offsets = run.load_offsets(&parts)?;
                for reader in source.assign(&offsets)? {
                    let key = reader.key();
                    workers.insert(key, spawn(run.clone(), source.clone(), reader)?);
                }
                *assigned_once = true;
            }
            Rebalance::Revoke(parts) => {
                log::info!("revoked {}", describe(&parts));
                let mut revoked = HashMap::new();
                for p in &parts {
                    if let Some(w) = workers.remove(p) {
                        revoked.insert(p.clone(), w);
                    }
                }
                let stopped = stop_all(run, revoked);
                source.unassign(&parts)?;
                stopped?;
            }
            Rebalance::Error(e) => {
                log::warn!("rebalance error {e}: dropping the assignment");
                let parts: Vec<_> = workers.keys().cloned().collect();
                let stopped = stop_all(run, std::mem::take(workers));
                source.unassign(&parts)?;
                stopped?;
            }
        }
    }
    Ok(())
}

fn describe(parts: &[(String, i32)]) -> String {
    let v: Vec<String> = parts.iter().map(|(t, p)| format!("{t}/{p}")).collect();
    format!("[{}]", v.join(", "))
}

fn spawn(run: Arc<Run>, source: Arc<Source>, reader: PartitionReader) -> Result<Worker> {
    let stop = Arc::new(AtomicBool::new(false));
    let caught_up = Arc::new(AtomicBool::new(false));
    let (s, c) = (stop.clone(), caught_up.clone());
    let name = format!("{}-{}", reader.topic, reader.partition);
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || work(&run, &source, reader, &s, &c))
        .map_err(|e| Error::fatal(format!("starting worker {name}"), e))?;
    Ok(Worker {
        stop,
        caught_up,
        handle,
    })
}

/// One partition: poll, cut by count/bytes/latency/EOF, flush. On stop, the batch in
/// flight is committed before the thread ends.
fn work(
    run: &Run,
    source: &Source,
    mut reader: PartitionReader,
    stop: &AtomicBool,
    caught_up: &AtomicBool,
) -> Result<()> {
    let p = &run.cfg.pipeline;
    let mut batch = Batcher::new(p.batch_max_messages, p.batch_max_bytes, p.batch_max_latency);
    let tick = Duration::from_millis(100);
    loop {
        if stop.load(Ordering::Acquire) || run.stopping() {
            return run.flush(source, &mut [&mut reader], batch.take());
        }
        let timeout = batch.time_left().map_or(tick, |t| t.min(tick));
        if let Polled::Msg(m) = reader.poll(timeout) {
            caught_up.store(false, Ordering::Release);
            batch.push(m);
        }
        if batch.due() || (reader.at_eof && !batch.is_empty()) {
            run.flush(source, &mut [&mut reader], batch.take())?;
        }
        if reader.at_eof && batch.is_empty() {
            caught_up.store(true, Ordering::Release);
        }
    }
}

/// Join workers that ended on their own; the first error ends the run.
fn reap_failed(workers: &mut HashMap<(String, i32), Worker>) -> Option<Error> {
    let done: Vec<_> = workers
        .iter()
        .filter(|(_, w)| w.handle.is_finished())
        .map(|(k, _)| k.clone())
        .collect();
    for k in done {
        if let Some(w) = workers.remove(&k) {
            match w.handle.join() {
                Ok(Ok(())) => log::warn!("worker {}/{} ended early", k.0, k.1),
                Ok(Err(e)) => return Some(e),
                Err(_) => return Some(Error::fatal(format!("worker {}/{}", k.0, k.1), "panicked")),
            }
        }
    }
    None
}

/// Ask workers to commit what they hold and stop; wait up to the shutdown timeout.
fn stop_all(run: &Run, workers: HashMap<(String, i32), Worker>) -> Result<()> {
    for w in workers.values() {
        w.stop.store(true, Ordering::Release);
    }
    let deadline = Instant::now() + run.cfg.pipeline.shutdown_timeout;
    let mut first_err = None;
    for ((t, p), w) in workers {
        while !w.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !w.handle.is_finished() {
            log::warn!("worker {t}/{p} did not finish within the shutdown timeout; its batch is left uncommitted");
            continue;
        }
        match w.handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(Error::fatal(format!("worker {t}/{p}"), "panicked"));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

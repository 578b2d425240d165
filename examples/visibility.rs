//! Benchmark helper for `scripts/bench` (latency): watches when committed offsets become
//! visible in PostgreSQL.
//!
//! ```text
//! visibility CONNINFO OUT [SECONDS] [INTERVAL_MS]
//! ```
//!
//! Polls `SELECT partition, next_offset FROM stream_offsets` every INTERVAL_MS (default 10)
//! and appends `unix_nanos partition next_offset` to OUT whenever a partition's value
//! changes (every row once on the first poll). `unix_nanos` is taken when the poll's result
//! has arrived, so a latency computed from it never comes out early; the resolution is
//! the poll interval. Runs until SIGTERM/SIGINT, or for SECONDS when given (0: no limit).
//! Since streamer commits `next_offset` in the same transaction as the fact rows, message
//! (partition p, offset o) is visible in `fact_sales` once `next_offset > o` for p.
//!
//! `cargo build --release --example visibility`

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("visibility: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(2..=4).contains(&args.len()) {
        return Err("usage: visibility CONNINFO OUT [SECONDS] [INTERVAL_MS]".into());
    }
    let seconds: f64 = args.get(2).map_or(Ok(0.0), |s| s.parse())?;
    let interval = Duration::from_millis(args.get(3).map_or(Ok(10), |s| s.parse())?);
    let deadline = (seconds > 0.0).then(|| Instant::now() + Duration::from_secs_f64(seconds));

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut client = postgres::Client::connect(&args[0], postgres::NoTls)?;
    let query = client.prepare("SELECT partition, next_offset FROM stream_offsets")?;
    let mut out = BufWriter::new(File::create(&args[1])?);
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut next_poll = Instant::now();
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let rows = client.query(&query, &[])?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        for row in rows {
            let (partition, next_offset): (i32, i64) = (row.get(0), row.get(1));
            if last.insert(partition, next_offset) != Some(next_offset) {
                writeln!(out, "{now} {partition} {next_offset}")?;
            }
        }
        // a fixed schedule; after a slow poll, poll again at once rather than in a burst
        next_poll += interval;
        let now = Instant::now();
        match next_poll.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            None => next_poll = now,
        }
    }
    out.flush()?;
    Ok(())
}

//! The rollup folder: a thread beside the loaders that moves the pending rollup counts into
//! the rollups (`streamer_fold_rollups()` of schema.sql) once per interval and once more when
//! stopped, on two connections of its own. Promises: a rollup's fold is one transaction,
//! so every count is in a pending row or in a rollup row, never both or neither; a failed
//! fold leaves the pending rows to the next one (the reports read both), so it costs a
//! warning, not data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use postgres::error::SqlState;
use postgres::Client;
use postgres_native_tls::MakeTlsConnector;

use crate::error::{column, Error, Result};

/// How often the folder runs while loaders stream, at least (see [`next_wait`]). The
/// reports read what is pending by unnesting its arrays (and resolving each count still by
/// address); a fold's upserts cost about 20 ms whatever it moves while traffic is light.
pub const FOLD_EVERY: Duration = Duration::from_millis(500);

/// The longest the folder waits between folds, and the share of its time a fold may take
/// before the wait grows past `every`. A fold's cost is mostly its upserts, one per rollup
/// row the pending counts touch, and during a load every interval touches nearly all of a
/// day's product/hour and referrer rows (some 6,000 updated per fold at 80,000 events a
/// second, 60-120 ms, whatever the interval): folding less often is less work, and the
/// reports, which read what is pending too, stay exact. Waiting 50 times the last fold's
/// duration keeps the folder near 2% of a core: about 1 s at a steady 2,000 events a
/// second (20 ms folds), up to 5 s during a backfill, when the reports unnest that much
/// more pending (some 300,000 counts at 100,000 events a second). At 20 times and 2 s,
/// folds took a tenth of PostgreSQL's CPU during a 200k load.
const MAX_FOLD_EVERY: Duration = Duration::from_secs(5);
const FOLD_SHARE: u32 = 50;

/// The wait before the next fold, after one that took `took`.
fn next_wait(every: Duration, took: Duration) -> Duration {
    every.max(took.saturating_mul(FOLD_SHARE).min(MAX_FOLD_EVERY))
}

/// Time between two vacuums of the pending tables. A fold deletes every pending row, and
/// until a vacuum the space stays dead: inserts extend the tables, and each fold and each
/// report scans them whole (autovacuum looks once a minute; 1M events leave ~35 MB).
const VACUUM_EVERY: Duration = Duration::from_secs(2);

/// Without truncating the tables' empty tails (new pending rows reuse that space): to
/// truncate, VACUUM needs an exclusive lock, and while loaders append it retries for up to
/// 5 s; with two processes the two folders' last folds waited 4.5 s for their vacuums.
const VACUUM: &str = "VACUUM (TRUNCATE false) rollup_product_hour_pending, \
     rollup_store_country_day_pending, rollup_referrer_day_pending, rollup_browser_hour_pending";

/// The running folder; stopping it (by [`Folder::finish`] or drop) folds once more.
pub struct Folder {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Folder {
    /// Start folding every `every` on connections made from `pg` (a fold waits at most
    /// 10 s for a lock, so it can never hold up a shutdown for long).
    pub fn spawn(
        mut pg: postgres::Config,
        tls: MakeTlsConnector,
        every: Duration,
    ) -> Result<Folder> {
        pg.options("-c lock_timeout=10s -c statement_timeout=0");
        let (stop, stopped) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("rollup-folder".into())
            .spawn(move || {
                let mut conns = [None, None];
                let mut wait = every;
                let mut vacuumed = Instant::now();
                loop {
                    let last =
                        !matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
                    let started = Instant::now();
                    match fold_halves(&pg, &tls, &mut conns) {
                        Ok(rows) => {
                            let took = started.elapsed();
                            log::debug!(
                                "rollup fold: {rows} rollup rows added or updated in {took:?}"
                            );
                            wait = next_wait(every, took);
                            // (not after the last fold: the next run's folder vacuums)
                            if !last && vacuumed.elapsed() >= VACUUM_EVERY {
                                vacuum(&mut conns[0]);
                                vacuumed = Instant::now();
                            }
                        }
                        Err(e) => {
                            conns = [None, None];
                            log::warn!("{e}; the pending counts wait for the next fold");
                        }
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(|e| Error::fatal("starting the rollup folder", e))?;
        Ok(Folder {
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    /// What starts the last fold early: the thread folds once more when it receives, and
    /// ends; [`Folder::finish`] then only waits for it.
    pub fn last_fold(&self) -> Option<Sender<()>> {
        self.stop.clone()
    }

    /// Fold once more (unless [`Folder::last_fold`] started it), then stop the thread.
    pub fn finish(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                log::warn!("the rollup folder panicked; the pending counts wait for the next run");
            }
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Vacuum the pending tables (a failure only costs the space until autovacuum comes).
fn vacuum(conn: &mut Option<Client>) {
    if let Some(client) = conn {
        if let Err(e) = client.batch_execute(VACUUM) {
            log::debug!("vacuuming the pending rollup tables: {e}");
        }
    }
}

/// A fold's halves, about equal in cost (product/hour and store/country are most of it),
/// each folded on a connection of its own, side by side: the last fold is the end of every
/// run, with the loaders stopped and a core free, and on one connection it took 60-90 ms
/// at the end of a 200k load. Each rollup is folded in a transaction of its own.
const HALVES: [&[&str]; 2] = [
    &["rollup_product_hour", "rollup_referrer_day"],
    &["rollup_store_country_day", "rollup_browser_hour"],
];

/// One fold, its halves side by side on `conns`; a half whose connection failed is folded
/// on the other once that one is done.
fn fold_halves(
    pg: &postgres::Config,
    tls: &MakeTlsConnector,
    conns: &mut [Option<Client>; 2],
) -> Result<u64> {
    let [first, second] = conns;
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("rollup-folder-2".into())
            .spawn_scoped(scope, || {
                fold_on_a_live_connection(pg, tls, second, HALVES[1])
            });
        let mine = fold_on_a_live_connection(pg, tls, first, HALVES[0]);
        let theirs = match other.map(|h| h.join()) {
            Ok(Ok(Ok(rows))) => Ok(rows),
            Ok(Ok(Err(e))) => {
                log::debug!("{e}; folding the rest on the other connection");
                fold_on_a_live_connection(pg, tls, first, HALVES[1])
            }
            Ok(Err(_)) | Err(_) => fold_on_a_live_connection(pg, tls, first, HALVES[1]),
        };
        Ok(mine? + theirs?)
    })
}

/// [`fold`], once more on a new connection when the one held since the last fold failed
/// for a reason that may pass: the server may have closed it meanwhile
/// (`idle_session_timeout`, a restart), and every other fold failed so. A fold that did
/// commit unseen is safe to repeat: it deletes the pending counts it folds.
fn fold_on_a_live_connection(
    pg: &postgres::Config,
    tls: &MakeTlsConnector,
    conn: &mut Option<Client>,
    rollups: &[&str],
) -> Result<u64> {
    let held = conn.is_some();
    match fold(pg, tls, conn, rollups) {
        Err(e) if held && e.is_retriable() => {
            log::debug!("{e}; folding again on a new connection");
            *conn = None;
            fold(pg, tls, conn, rollups)
        }
        res => res,
    }
}

/// Fold `rollups`, each in a transaction of its own, connecting first when `conn` is
/// None. Returns the rollup rows added or updated.
fn fold(
    pg: &postgres::Config,
    tls: &MakeTlsConnector,
    conn: &mut Option<Client>,
    rollups: &[&str],
) -> Result<u64> {
    let client = match conn {
        Some(client) => client,
        None => conn.insert(
            pg.connect(tls.clone())
                .map_err(|e| Error::from_pg("rollup folder: connecting to PostgreSQL", e))?,
        ),
    };
    let mut total = 0;
    for rollup in rollups {
        let row = match client.query_one("SELECT streamer_fold_rollup($1)", &[rollup]) {
            Ok(row) => row,
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_FUNCTION) => {
                return fold_all_as_before(client).map(|rows| total + rows)
            }
            Err(e) => {
                return Err(Error::from_pg(
                    format!("folding the pending {rollup} counts"),
                    e,
                ))
            }
        };
        let rows: i64 = column(&row, 0, "streamer_fold_rollup()", "result")?;
        total += rows.max(0) as u64;
    }
    Ok(total)
}

/// A database warmed up by an earlier streamer has `streamer_fold_rollups()` only (a
/// binary upgraded under `streamer run`, which does not warm up): every rollup in one
/// transaction, as that version folded, until the next warmup.
fn fold_all_as_before(client: &mut Client) -> Result<u64> {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log::info!(
            "this database's streamer schema predates streamer_fold_rollup(): folding every \
             rollup in one transaction until `streamer warmup` updates it"
        );
    }
    let row = client
        .query_one("SELECT streamer_fold_rollups()", &[])
        .map_err(|e| Error::from_pg("folding the pending rollup counts", e))?;
    let rows: i64 = column(&row, 0, "streamer_fold_rollups()", "result")?;
    Ok(rows.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_with_the_folds_cost_and_is_bounded() {
        let every = Duration::from_millis(500);
        assert_eq!(next_wait(every, Duration::from_millis(3)), every);
        assert_eq!(
            next_wait(every, Duration::from_millis(20)),
            Duration::from_secs(1)
        );
        assert_eq!(next_wait(every, Duration::from_secs(9)), MAX_FOLD_EVERY);
    }
}

//! The rollup folder: a thread beside the loaders that moves the pending rollup counts into
//! the rollups (`streamer_fold_rollups()` of schema.sql) once per interval and once more when
//! stopped, on a connection of its own. Promises: a fold is one transaction, so every count
//! is in a pending row or in a rollup row, never both or neither; a failed fold leaves the
//! pending rows to the next one (the reports read both), so it costs a warning, not data.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use postgres::Client;
use postgres_native_tls::MakeTlsConnector;

use crate::error::{column, Error, Result};

/// How often the folder runs while loaders stream. The reports read what is pending by
/// unnesting its arrays and resolving each address (about 1.5 µs a count): at 100,000
/// events a second, two seconds of pending counts made a country report take 200-250 ms,
/// half a second 60-100 ms. A fold's upserts cost about 20 ms whatever it moves.
pub const FOLD_EVERY: Duration = Duration::from_millis(500);

/// Folds between two vacuums of the pending tables. A fold deletes every pending row,
/// and until a vacuum the space stays dead: inserts extend the tables, and each fold and
/// each report scans them whole (autovacuum looks once a minute; 1M events leave ~35 MB).
const VACUUM_EVERY: u32 = 4; // every two seconds

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
                let mut conn = None;
                let mut folds = 0u32;
                loop {
                    let last =
                        !matches!(stopped.recv_timeout(every), Err(RecvTimeoutError::Timeout));
                    match fold(&pg, &tls, &mut conn) {
                        Ok(rows) => {
                            log::debug!("rollup fold: {rows} rollup rows added or updated");
                            folds += 1;
                            if folds % VACUUM_EVERY == 0 {
                                vacuum(&mut conn);
                            }
                        }
                        Err(e) => {
                            conn = None;
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

/// One fold in one transaction, connecting first when `conn` is None. Returns the rollup
/// rows added or updated.
pub fn fold(
    pg: &postgres::Config,
    tls: &MakeTlsConnector,
    conn: &mut Option<Client>,
) -> Result<u64> {
    let client = match conn {
        Some(client) => client,
        None => conn.insert(
            pg.connect(tls.clone())
                .map_err(|e| Error::from_pg("rollup folder: connecting to PostgreSQL", e))?,
        ),
    };
    let context = "folding the pending rollup counts";
    let row = client
        .query_one("SELECT streamer_fold_rollups()", &[])
        .map_err(|e| Error::from_pg(context, e))?;
    let rows: i64 = column(&row, 0, "streamer_fold_rollups()", "result")?;
    Ok(rows.max(0) as u64)
}

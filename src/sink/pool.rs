//! The pool of loader connections: lazily connecting r2d2 over `postgres`, whose checkout
//! failures say why the server could not be reached and are classified like any other
//! PostgreSQL error (a refused certificate or password is fatal, a server that is down is
//! retried), instead of r2d2's "timed out waiting for connection".

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres_native_tls::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

use crate::config::Config;
use crate::error::{Error, Message, Result};

type Manager = PostgresConnectionManager<MakeTlsConnector>;

/// A connection checked out of a [`PgPool`].
pub type PgConn = r2d2::PooledConnection<Manager>;

/// How long a checkout waits for a connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// The last failure to connect, as [`Error::from_pg`] classified it.
#[derive(Debug)]
struct Failure {
    at: Instant,
    retriable: bool,
    text: String,
}

/// r2d2's hook for connection errors: keeps the last one (logged at debug only: the
/// checkout that fails reports it, with its context).
#[derive(Debug, Clone, Default)]
struct LastFailure(Arc<Mutex<Option<Failure>>>);

impl LastFailure {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Failure>> {
        crate::lock::lock(&self.0)
    }
}

impl r2d2::HandleError<postgres::Error> for LastFailure {
    fn handle_error(&self, error: postgres::Error) {
        let e = Error::from_pg("connecting to PostgreSQL", error);
        log::debug!("{e}");
        let text = match &e {
            Error::Retriable { source, .. } | Error::Fatal { source, .. } => source.to_string(),
            Error::Config(m) => m.clone(),
        };
        *self.slot() = Some(Failure {
            at: Instant::now(),
            retriable: e.is_retriable(),
            text,
        });
    }
}

/// The loaders' connections (cheap to clone: one pool).
#[derive(Clone)]
pub struct PgPool {
    pool: r2d2::Pool<Manager>,
    last: LastFailure,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool")
            .field("state", &self.pool.state())
            .finish()
    }
}

/// Build the connection pool (lazily connecting, so a server that is down is retried);
/// its sessions have the loaders' statement timeout and TCP keepalives.
pub fn pool(cfg: &Config, size: u32) -> Result<PgPool> {
    let manager = PostgresConnectionManager::new(
        cfg.postgres.loader_pg_config(),
        super::tls::connector(&cfg.postgres)?,
    );
    let last = LastFailure::default();
    let pool = r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(0))
        .connection_timeout(CHECKOUT_TIMEOUT)
        .error_handler(Box::new(last.clone()))
        .build_unchecked(manager);
    Ok(PgPool { pool, last })
}

impl PgPool {
    /// Open `n` connections on a thread of its own and leave them idle in the pool, so
    /// that the first checkouts (the offsets read on assignment, the first batch) do not
    /// wait for a TCP, TLS and authentication handshake each. A failure is left to those
    /// checkouts, which report and classify it.
    pub fn preconnect(&self, n: u32) {
        let pool = self.pool.clone();
        let spawned = std::thread::Builder::new()
            .name("pg-preconnect".into())
            .spawn(move || {
                let mut held = Vec::new();
                for _ in 0..n.min(pool.max_size()) {
                    match pool.get() {
                        Ok(c) => held.push(c),
                        Err(e) => {
                            log::debug!("connecting ahead to PostgreSQL: {e}");
                            break;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            log::debug!("not connecting ahead to PostgreSQL: {e}");
        }
    }

    /// A connection, or why there is none: the server's (or TLS's) own words when
    /// connecting failed during this checkout, classified; otherwise (every connection
    /// busy) retriable.
    pub fn get(&self, context: &str) -> Result<PgConn> {
        let started = Instant::now();
        self.pool.get().map_err(|e| {
            let slot = self.last.slot();
            match slot.as_ref().filter(|f| f.at >= started) {
                Some(f) if f.retriable => Error::retriable(context, Message(f.text.clone())),
                Some(f) => Error::fatal_from(context, Message(f.text.clone())),
                None => Error::retriable(context, e),
            }
        })
    }
}

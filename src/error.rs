//! Error kinds of the whole program and how they map to exit codes (2 config, 1 runtime).

use std::fmt;

/// Every failure the program reports, classified so callers know whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line or configuration: exit code 2. The message names section, key, line.
    #[error("config: {0}")]
    Config(String),
    /// A failure that may pass (connection lost, server restarting, deadlock).
    #[error("{context}: {source}")]
    Retriable {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure that retrying will not fix (schema missing, permission denied, broker fatal).
    #[error("{context}: {message}")]
    Fatal { context: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn fatal(context: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Fatal {
            context: context.into(),
            message: message.to_string(),
        }
    }

    /// A failure that may pass, with its cause kept.
    pub fn retriable(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Retriable {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// Exit code for this error: 2 for configuration, 1 for everything at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            _ => 1,
        }
    }

    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::Retriable { .. })
    }

    /// Classify a PostgreSQL error: connection trouble, server shutdown, serialization
    /// failure, deadlock and resource exhaustion are retriable; the rest is fatal.
    pub fn from_pg(context: impl Into<String>, err: postgres::Error) -> Self {
        let context = context.into();
        let retriable = err.is_closed()
            || match err.code() {
                None => err.as_db_error().is_none(),
                Some(code) => {
                    let c = code.code();
                    c.starts_with("08") // connection exception
                        || c.starts_with("53") // insufficient resources
                        || c.starts_with("57P") // admin/crash shutdown, cannot connect now
                        || c == "40001" // serialization failure
                        || c == "40P01" // deadlock
                }
            };
        if retriable {
            Error::Retriable {
                context,
                source: Box::new(err),
            }
        } else {
            Error::Fatal {
                context,
                message: err.to_string(),
            }
        }
    }

    /// A pool checkout failure is always retriable: the server may come back.
    pub fn from_pool(context: impl Into<String>, err: r2d2::Error) -> Self {
        Error::Retriable {
            context: context.into(),
            source: Box::new(err),
        }
    }
}

/// Run `op` until it succeeds, fails for good, or `budget` has passed since the first
/// try; retriable failures are logged and retried after a backoff of 100 ms doubling up
/// to 5 s. `op` receives the attempt number (1-based); `on_fail` sees every failure.
pub fn retry<T>(
    what: &str,
    budget: std::time::Duration,
    mut op: impl FnMut(u32) -> Result<T>,
    mut on_fail: impl FnMut(&Error),
) -> Result<T> {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op(attempt) {
            Ok(v) => return Ok(v),
            Err(e) => {
                on_fail(&e);
                if !e.is_retriable() || started.elapsed() >= budget {
                    return Err(e);
                }
                log::warn!("{what} failed (attempt {attempt}), retrying in {delay:?}: {e}");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

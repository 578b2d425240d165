//! `[docker_postgres]` (where the database is and who logs in, `STREAMER_IN_DOCKER` picking
//! the host pair) and `[postgres]` (TLS as libpq's sslmode/sslrootcert, the loaders'
//! statement timeout), read into [`PostgresConfig`] and turned into `postgres` crate settings.

use std::path::PathBuf;
use std::time::Duration;

use super::reader::{at, shown, Reader};
use super::secret::Secret;
use crate::error::Result;

/// PostgreSQL port when `port_in` / `port_out` is absent.
pub const DEFAULT_PG_PORT: u16 = 5432;
/// `[postgres] sslmode` default.
pub const DEFAULT_SSLMODE: &str = "disable";
/// `[postgres] sslmode` values, libpq's minus `allow`.
const SSLMODES: [&str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];
/// `[postgres] statement_timeout_ms` default: one minute.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 60_000;
/// `application_name` of PostgreSQL sessions when the app name is empty.
pub const DEFAULT_APPLICATION_NAME: &str = "streamer";
/// Connect timeout of [`PostgresConfig::pg_config`].
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// empty: no password is sent (trust authentication)
    pub password: Secret,
    /// `disable` (default), `prefer`, `require`, `verify-ca` or `verify-full`
    pub sslmode: String,
    /// `[postgres] sslrootcert`: root certificates (a PEM file, or `system`)
    pub sslrootcert: Option<PathBuf>,
    /// `application_name` of the sessions: the app name
    pub application_name: String,
    /// `[postgres] statement_timeout_ms`: longest a statement may run on a connection of
    /// the pool (loaders, warmup excepted), 0 = no limit
    pub statement_timeout_ms: u64,
}

impl PostgresConfig {
    /// The connection settings for the `postgres` crate: host, port, dbname, user, password
    /// (when not empty), application_name, a 10 s connect timeout, the sslmode, and TCP
    /// keepalives (first probe after 10 s idle, then every 5 s, 3 probes), so a peer that
    /// vanished without closing the connection is noticed within about 25 s.
    pub fn pg_config(&self) -> postgres::Config {
        use postgres::config::SslMode;
        let mut c = postgres::Config::new();
        let app = if self.application_name.is_empty() {
            DEFAULT_APPLICATION_NAME
        } else {
            &self.application_name
        };
        c.host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .user(&self.user)
            .application_name(app)
            .connect_timeout(PG_CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .ssl_mode(match self.sslmode.as_str() {
                "require" | "verify-ca" | "verify-full" => SslMode::Require,
                "prefer" => SslMode::Prefer,
                _ => SslMode::Disable,
            });
        if !self.password.0.is_empty() {
            c.password(&self.password.0);
        }
        c
    }

    /// [`PostgresConfig::pg_config`] for the loaders' connections, with settings for every
    /// session. The statement timeout (when not 0): a statement stuck on a dead or wedged
    /// server fails (SQLSTATE 57014, retried) instead of hanging the pipeline. READ
    /// COMMITTED and no lock timeout, whatever the database's defaults: the loaders'
    /// fences and upserts are built on them. Under a database default of SERIALIZABLE
    /// their batches failed one another (40001), and under a short `lock_timeout` a batch
    /// that waited for another's new dimension rows failed (55P03); both were retried
    /// whole, the first three times slower. The statement timeout bounds their waits.
    pub fn loader_pg_config(&self) -> postgres::Config {
        let mut c = self.pg_config();
        let isolation = "-c default_transaction_isolation=read\\ committed -c lock_timeout=0";
        if self.statement_timeout_ms > 0 {
            c.options(&format!(
                "{isolation} -c statement_timeout={}",
                self.statement_timeout_ms
            ));
        } else {
            c.options(isolation);
        }
        c
    }
}

/// `[docker_postgres]` and `[postgres]`.
pub(super) fn postgres_section(
    r: &Reader<'_>,
    in_docker: bool,
    app_name: &str,
) -> Result<PostgresConfig> {
    const S: &str = "docker_postgres";
    // validate both ports when present, whichever pair is in use
    let port_in = r.number(S, "port_in", DEFAULT_PG_PORT, 1)?;
    let port_out = r.number(S, "port_out", DEFAULT_PG_PORT, 1)?;
    let (host_key, port) = if in_docker {
        ("host_in", port_in)
    } else {
        ("host_out", port_out)
    };
    let (_, host) = r.required(S, host_key)?;
    let (_, database) = r.required(S, "database")?;
    let (_, user) = r.required(S, "user")?;
    let password = r
        .get(S, "password")
        .map(|e| e.value.clone())
        .unwrap_or_default();
    let sslmode = sslmode(r)?;
    let sslrootcert = sslrootcert(r)?;
    let statement_timeout_ms = r.number(
        "postgres",
        "statement_timeout_ms",
        DEFAULT_STATEMENT_TIMEOUT_MS,
        0,
    )?;
    Ok(PostgresConfig {
        statement_timeout_ms,
        host: host.to_string(),
        port,
        database: database.to_string(),
        user: user.to_string(),
        password: Secret(password),
        sslmode,
        sslrootcert,
        application_name: app_name.to_string(),
    })
}

/// `[postgres] sslmode`, lowercase.
fn sslmode(r: &Reader<'_>) -> Result<String> {
    let Some(e) = r.get("postgres", "sslmode") else {
        return Ok(DEFAULT_SSLMODE.to_string());
    };
    let v = e.value.trim().to_ascii_lowercase();
    if !SSLMODES.contains(&v.as_str()) {
        return Err(at(
            "postgres",
            e,
            format!(
                "expected disable, prefer, require, verify-ca or verify-full, got {}",
                shown(e)
            ),
        ));
    }
    Ok(v)
}

/// `[postgres] sslrootcert`: a path (or `system`), never empty.
fn sslrootcert(r: &Reader<'_>) -> Result<Option<PathBuf>> {
    match r.get("postgres", "sslrootcert") {
        Some(e) if e.value.trim().is_empty() => Err(at(
            "postgres",
            e,
            "expected a file or `system`, got nothing",
        )),
        Some(e) => Ok(Some(PathBuf::from(e.value.trim()))),
        None => Ok(None),
    }
}

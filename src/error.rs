//! Error kinds of the whole program and how they map to exit codes (2 config, 1 runtime).

use std::fmt;

/// Every failure the program reports, classified so callers know whether to retry. Both
/// runtime kinds keep their cause (`source`), so the whole chain reaches the log.
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
    #[error("{context}: {source}")]
    Fatal {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cause that is only a message (no error value to keep).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Message(pub String);

/// A PostgreSQL error as the operator needs it: for an error the server sent, its
/// SQLSTATE, message, detail, hint, and the table, column or constraint it names (plus a
/// hint for the usual mistakes: no schema yet); otherwise what the client library said
/// and its cause (an I/O error, ...). The `postgres::Error` stays the source.
#[derive(Debug)]
pub struct PgError(pub postgres::Error);

impl PgError {
    /// The server's error, if the server sent one.
    pub fn db(&self) -> Option<&postgres::error::DbError> {
        self.0.as_db_error()
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(db) = self.db() else {
            // the client library's kind ("error connecting to server"), then its causes
            // (a cause whose words were already said, as TLS errors repeat theirs, is skipped)
            let mut said = self.0.to_string();
            let mut cause = std::error::Error::source(&self.0);
            while let Some(c) = cause {
                let text = c.to_string();
                if !said.contains(&text) {
                    said = format!("{said}: {text}");
                }
                cause = c.source();
            }
            return f.write_str(&said);
        };
        write!(f, "{} (SQLSTATE {}", db.message(), db.code().code())?;
        if let Some(table) = db.table() {
            match db.schema() {
                Some(schema) => write!(f, ", table {schema}.{table}")?,
                None => write!(f, ", table {table}")?,
            }
        }
        if let Some(column) = db.column() {
            write!(f, ", column {column}")?;
        }
        if let Some(constraint) = db.constraint() {
            write!(f, ", constraint {constraint}")?;
        }
        if let Some(datatype) = db.datatype() {
            write!(f, ", type {datatype}")?;
        }
        write!(f, ")")?;
        if let Some(detail) = db.detail() {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = db.hint() {
            write!(f, "; hint: {hint}")?;
        }
        if let Some(hint) = operator_hint(db) {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// streamer's own tables and functions: an error naming one of them as missing means the
/// schema was never created here.
const SCHEMA_OBJECTS: [&str; 9] = [
    "stream_offsets",
    "fact_sales",
    "dead_letter",
    "dim_date",
    "dim_product",
    "dim_location",
    "dim_user_agent",
    "streamer_",
    "rollup_",
];

/// What the operator most likely has to do about `db`, when it is one of the usual
/// mistakes.
fn operator_hint(db: &postgres::error::DbError) -> Option<&'static str> {
    use postgres::error::SqlState;
    let code = db.code();
    let missing = *code == SqlState::UNDEFINED_TABLE
        || *code == SqlState::UNDEFINED_FUNCTION
        || *code == SqlState::UNDEFINED_COLUMN;
    if missing && SCHEMA_OBJECTS.iter().any(|o| db.message().contains(o)) {
        return Some(
            "the streamer schema is missing or outdated in this database: \
             run `streamer warmup CONFIG` (or `streamer CONFIG`, which warms up first)",
        );
    }
    None
}

/// How a client-side PostgreSQL error (no SQLSTATE) is classified, by the library's kind:
/// I/O, connecting, a timeout and a closed connection may pass; conversion, protocol,
/// TLS set-up, authentication and configuration errors will not.
fn client_error_may_pass(err: &postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    // tokio-postgres has no public kind; its Display is the kind, and stable
    let kind = err.to_string();
    matches!(
        kind.as_str(),
        "error communicating with the server"
            | "error connecting to server"
            | "timeout waiting for server"
            | "connection closed"
    )
}

/// Whether a unique violation is of the fact key: `fact_sales_pkey`, or a unique key on
/// `sales_key` that another tool created under its own name (warmup checks that one
/// exists).
fn is_fact_key(db: &postgres::error::DbError) -> bool {
    db.constraint() == Some("fact_sales_pkey")
        || (db.table() == Some("fact_sales")
            && db
                .detail()
                .is_some_and(|d| d.starts_with("Key (sales_key)=")))
}

/// Whether a SQLSTATE names a failure that may pass: connection trouble, insufficient
/// resources, server shutdown, a cancelled statement (statement timeout), a lock not
/// available (lock timeout), serialization failure, deadlock.
fn sqlstate_may_pass(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "57014" // query canceled (statement_timeout)
        || code == "55P03" // lock not available (lock_timeout)
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock
}

impl Error {
    pub fn fatal(context: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Fatal {
            context: context.into(),
            source: Box::new(Message(message.to_string())),
        }
    }

    /// A failure that will not pass, with its cause kept.
    pub fn fatal_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Fatal {
            context: context.into(),
            source: Box::new(source),
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

    /// The context this error was raised in ("writing dim_product", ...).
    pub fn context(&self) -> &str {
        match self {
            Error::Config(_) => "config",
            Error::Retriable { context, .. } | Error::Fatal { context, .. } => context,
        }
    }

    /// The PostgreSQL error server sent, if this error is one.
    pub fn db_error(&self) -> Option<&postgres::error::DbError> {
        match self {
            Error::Config(_) => None,
            Error::Retriable { source, .. } | Error::Fatal { source, .. } => {
                source.downcast_ref::<PgError>().and_then(PgError::db)
            }
        }
    }

    /// The SQLSTATE of the PostgreSQL error, if this error is one the server sent.
    pub fn sqlstate(&self) -> Option<&str> {
        self.db_error().map(|db| db.code().code())
    }

    /// Whether PostgreSQL refused a row for what it holds (contract §4): SQLSTATE classes 22
    /// (data exception), 23 (integrity constraint violation; a unique violation of the fact
    /// key excepted, which the loader handles itself) and 54 (program limit
    /// exceeded, e.g. an index row too big).
    pub fn is_data_error(&self) -> bool {
        let Some(db) = self.db_error() else {
            return false;
        };
        let code = db.code().code();
        match &code[..2] {
            "22" | "54" => true,
            "23" => !(code == "23505" && is_fact_key(db)),
            _ => false,
        }
    }

    /// Classify a PostgreSQL error: connection trouble, server shutdown, serialization
    /// failure, deadlock and resource exhaustion are retriable; the rest is fatal. The
    /// error is kept as the source, shown with everything the server said.
    pub fn from_pg(context: impl Into<String>, err: postgres::Error) -> Self {
        let context = context.into();
        let retriable = match err.code() {
            Some(code) => sqlstate_may_pass(code.code()),
            None => client_error_may_pass(&err),
        };
        let source = Box::new(PgError(err));
        if retriable {
            Error::Retriable { context, source }
        } else {
            Error::Fatal { context, source }
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

/// Column `index` of `row`, read as `T`, or a fatal error naming the table (or function)
/// and column when PostgreSQL holds something else there (an operator changed a column's
/// type, a NULL where schema.sql has NOT NULL): never a panic.
pub fn column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    index: usize,
    table: &str,
    column: &str,
) -> Result<T> {
    row.try_get(index).map_err(|e| {
        Error::fatal_from(
            format!(
                "reading column {column} of {table}: it does not hold what schema.sql \
                 creates there (was its type changed?)"
            ),
            PgError(e),
        )
    })
}

//! The INI configuration of SPEC 3: the seed job's sections plus optional new ones,
//! environment overrides, validation (errors name section, key and line), no secrets in Debug.
//!
//! # File format
//!
//! `[section]` headers and `key = value` (or `key: value`) lines. Section and key names are
//! case-insensitive. Comments: a line starting with `;` or `#`, and an inline comment, i.e.
//! `;` or `#` after whitespace outside quotes (`port_in = 5432 ; the container port`). A value
//! wholly inside matching quotes loses them, so `password = "a ;b"` is `a ;b`; other quotes are
//! kept as they are (the JAAS value keeps its `username="..."`). A line ending in `\` continues
//! on the next line. Duplicate sections or keys, unknown sections or keys, bad numbers and bad
//! choices are errors ([`Error::Config`], exit 2) naming the section, the key and the line.
//! Relative paths are relative to the working directory.
//!
//! # Sections (defaults in parentheses)
//!
//! - `[local_spark]` / `[docker_spark]`: `app_name` (or `spark.app.name`) names the app: client
//!   id and default consumer group. Required in one of them; looked up in the order
//!   `[local_spark] app_name`, `[local_spark] spark.app.name`, `[docker_spark] app_name`,
//!   `[docker_spark] spark.app.name`. Other `spark.*` keys are accepted and listed in
//!   [`Config::ignored`].
//! - `[docker_postgres]` (required): `database`, `user` (required), `password` (empty: none,
//!   for trust auth), `host_in`/`port_in` when `STREAMER_IN_DOCKER=1`, else
//!   `host_out`/`port_out`; the host of the pair in use is required, its port defaults to
//!   5432.
//! - `[postgres]`: `sslmode` = `disable` | `prefer` | `require` | `verify-ca` | `verify-full`
//!   (`disable`: the local stack has no TLS), as libpq: `prefer` and `require` encrypt without
//!   verifying the server, `verify-ca` checks its certificate against `sslrootcert`,
//!   `verify-full` also that it names the host; `sslrootcert`: a PEM file of root
//!   certificates, or `system` for the system's trusted roots (libpq's
//!   `~/.postgresql/root.crt` when not given; given with `require`, `require` verifies like
//!   `verify-ca`, as in libpq); `statement_timeout_ms` (60000; 0 = none): the loaders'
//!   statement timeout.
//! - `[remote_kafka]` (required): `subscribe` (required: comma-separated topics),
//!   `startingOffsets` = `earliest` | `latest` (`latest`; only for partitions with no stored
//!   offset), and every `kafka.X` key, passed to librdkafka as `X`, except:
//!   `kafka.sasl.jaas.config` (PlainLoginModule / ScramLoginModule) becomes `sasl.username` and
//!   `sasl.password` (and `sasl.mechanism=PLAIN` for PlainLoginModule when no mechanism is
//!   given); `kafka.group.id` and `kafka.client.id` become [`KafkaConfig::group_id`] /
//!   [`KafkaConfig::client_id`]; `kafka.enable.auto.commit` and `kafka.auto.offset.reset` are
//!   refused (streamer owns them). `kafka.bootstrap.servers` is required. Options of Spark's
//!   Kafka source such as `failOnDataLoss` or `maxOffsetsPerTrigger` are accepted and ignored.
//! - `[pipeline]`: `mode` = `partition` | `batch` (`partition`), `batch_max_messages` (5000
//!   per partition batch; 10000 per micro-batch in batch mode),
//!   `batch_max_bytes` (16 MiB; a whole number with an optional `K`/`KiB`/`M`/`MiB`/`G`/`GiB`
//!   suffix, all binary), `batch_max_latency_ms` (100), `trigger_interval_ms` (5000),
//!   `shutdown_timeout_ms` (30000), `consumer_group` (`kafka.group.id`, else the app name),
//!   `pg_pool_size` (4), `retry_budget_s` (300; 0 = no retries), `on_offset_out_of_range` (fail | earliest | latest; default fail), `enrich` (true; false leaves
//!   browser/OS/geography NULL), `transform_threads` (0 = one per
//!   CPU).
//! - `[geoip]`: `path`: comma-separated `.mmdb` files, looked up in order (none: no geography).
//! - `[catalog]`: `products`, `locations`: comma-separated CSV paths for warmup (none).
//! - `[data_paths]` (the seed's spelling of `[catalog]`): `base_path` (working directory),
//!   `prod_csv_pattern`, `location_csv_pattern`: glob patterns relative to `base_path`, appended
//!   after the `[catalog]` entries.
//! - `[metrics]`: `listen` (`127.0.0.1:9187`; port 0 picks a free port; `off` disables it), `progress_interval_s`
//!   (10; 0 = no progress lines).
//!
//! Catalog entries ([`CatalogConfig`]) are stored as written: patterns may hold `*` and `?`
//! in their last component, which the warmup loader expands (no glob crate is available).
//!
//! # Environment
//!
//! - `MODE=partition|batch` overrides `[pipeline] mode` (also over `STREAMER__PIPELINE__MODE`).
//! - `STREAMER_IN_DOCKER=1` (or `true`/`yes`/`on`) selects `host_in`/`port_in`; unset, empty,
//!   `0`/`false`/`no`/`off` select `host_out`/`port_out`.
//! - `STREAMER__SECTION__KEY=value` overrides or adds any known key, e.g.
//!   `STREAMER__DOCKER_POSTGRES__PASSWORD`. Section and key are case-insensitive; since dots are
//!   awkward in variable names, `_` stands for `.` when no key matches exactly
//!   (`STREAMER__REMOTE_KAFKA__KAFKA_BOOTSTRAP_SERVERS` = `kafka.bootstrap.servers`; a
//!   `kafka.X` key absent from the file gets every `_` read as `.`). Values are taken verbatim.
//!   Errors about such a key say "from environment STREAMER__..." instead of a line.
//!
//! # Secrets
//!
//! No error message quotes the value of a key for which [`is_secret_key`] holds, the JAAS
//! value, or any line the scanner cannot read; [`Secret`] hides itself from Debug and Display.

mod document;
mod jaas;
mod schema;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use document::{Document, Entry};
use schema::KAFKA_PREFIX;

/// `[pipeline] batch_max_messages` default in partition mode (one partition's batch).
pub const DEFAULT_BATCH_MAX_MESSAGES: usize = 5_000;
/// `[pipeline] batch_max_messages` default in batch mode: a micro-batch spans every
/// assigned partition, and its transaction's fixed cost (offset fences, rollup upserts,
/// commit) is paid once per micro-batch.
pub const DEFAULT_MICRO_BATCH_MAX_MESSAGES: usize = 10_000;
/// `[pipeline] batch_max_bytes` default: 16 MiB.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 16 * 1024 * 1024;
/// `[pipeline] batch_max_latency_ms` default.
pub const DEFAULT_BATCH_MAX_LATENCY_MS: u64 = 100;
/// `[pipeline] trigger_interval_ms` default.
pub const DEFAULT_TRIGGER_INTERVAL_MS: u64 = 5_000;
/// `[pipeline] shutdown_timeout_ms` default.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// `[pipeline] pg_pool_size` default.
pub const DEFAULT_PG_POOL_SIZE: u32 = 4;
/// `[pipeline] retry_budget_s` default.
pub const DEFAULT_RETRY_BUDGET_S: u64 = 300;
/// `[metrics] listen` default.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9187";
/// `[metrics] progress_interval_s` default.
pub const DEFAULT_PROGRESS_INTERVAL_S: u64 = 10;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Partition,
    Batch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingOffsets {
    Earliest,
    Latest,
}

/// A string that never prints: Debug and Display show `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    /// The hidden string, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether the value of a key (config key or librdkafka property) must never be shown:
/// names containing `password`, `secret`, `jaas`, `token`, `key.pem` or `oauthbearer.config`.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "key.pem",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// librdkafka properties whose values are known not to be secret, so an error about one
/// may quote its value; every other property's value (a typo of `sasl.password`, an
/// unsupported `sasl.oauthbearer.client.secret`, ...) is hidden.
const PUBLIC_KAFKA_PROPERTIES: [&str; 16] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "client.id",
    "group.id",
    "auto.offset.reset",
    "enable.auto.commit",
    "isolation.level",
    "session.timeout.ms",
    "max.poll.interval.ms",
    "fetch.max.bytes",
    "statistics.interval.ms",
    "debug",
    "compression.type",
];

/// A librdkafka error as it may be shown: for a configuration error, the value is
/// replaced by `(hidden)` unless its property is known not to be secret (librdkafka's
/// error, as rdkafka formats it, quotes the value).
pub fn kafka_error_text(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, desc, key, value) => {
            let public = PUBLIC_KAFKA_PROPERTIES.contains(&key.as_str()) && !is_secret_key(key);
            if public || value.is_empty() {
                format!("client config error: {desc} ({key} = {value:?})")
            } else {
                let desc = desc.replace(value.as_str(), "(hidden)");
                format!("client config error: {desc} ({key} = (hidden))")
            }
        }
        other => other.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// librdkafka properties (every `kafka.X` key as `X`, JAAS mapped to sasl.username/password).
    /// Values of secret-bearing keys (sasl.password, ssl.key.password, ...) are not shown by Debug.
    /// Never holds `group.id` or `client.id`: see `group_id` and `client_id`.
    pub properties: Vec<(String, Secret)>,
    pub topics: Vec<String>,
    pub starting_offsets: StartingOffsets,
    /// consumer group: `[pipeline] consumer_group`, else `kafka.group.id`, else the app name
    pub group_id: String,
    /// client id: `kafka.client.id`, else the app name
    pub client_id: String,
}

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
    pub sslrootcert: Option<std::path::PathBuf>,
    /// `application_name` of the sessions: the app name
    pub application_name: String,
    /// `[postgres] statement_timeout_ms`: longest a statement may run on a connection of
    /// the pool (loaders, warmup excepted), 0 = no limit
    pub statement_timeout_ms: u64,
}

impl KafkaConfig {
    /// The value given for librdkafka property `key`, if any.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.0.as_str())
    }
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
            .keepalives_idle(std::time::Duration::from_secs(10))
            .keepalives_interval(std::time::Duration::from_secs(5))
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

    /// [`PostgresConfig::pg_config`] with the statement timeout (when not 0) set for every
    /// session: the loaders' connections, so a statement stuck on a dead or wedged server
    /// fails (SQLSTATE 57014, retried) instead of hanging the pipeline.
    pub fn loader_pg_config(&self) -> postgres::Config {
        let mut c = self.pg_config();
        if self.statement_timeout_ms > 0 {
            c.options(&format!(
                "-c statement_timeout={}",
                self.statement_timeout_ms
            ));
        }
        c
    }
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub mode: Mode,
    pub batch_max_messages: usize,
    pub batch_max_bytes: usize,
    pub batch_max_latency: Duration,
    pub trigger_interval: Duration,
    pub shutdown_timeout: Duration,
    /// connections in the r2d2 pool
    pub pg_pool_size: u32,
    /// how long PostgreSQL / Kafka failures are retried before exit 1
    pub retry_budget: Duration,
    /// threads in the rayon transform pool (0 = number of CPUs)
    pub transform_threads: usize,
    /// parse user agents and look up geography (false: those columns stay NULL)
    pub enrich: bool,
    /// what to do when a stored offset is no longer in the log
    pub on_offset_out_of_range: OutOfRange,
}

/// `[pipeline] on_offset_out_of_range`: a stored offset that the log no longer holds
/// (retention, deleted records, a recreated topic) is never skipped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRange {
    /// stop with an error naming topic, partition, stored offset and the log's range
    Fail,
    /// go on from the log's start (logged at error level, counted in a metric)
    Earliest,
    /// go on from the log's end (logged at error level, counted in a metric)
    Latest,
}

/// CSV files for warmup, in load order: `[catalog]` entries, then `[data_paths]` patterns
/// joined to `base_path`. An entry may be a pattern with `*` / `?` in its file name; the
/// loader expands it.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    pub products: Vec<PathBuf>,
    pub locations: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_name: String,
    pub kafka: KafkaConfig,
    pub postgres: PostgresConfig,
    pub pipeline: PipelineConfig,
    pub geoip_paths: Vec<PathBuf>,
    pub catalog: CatalogConfig,
    pub metrics_listen: String,
    /// `[metrics] progress_interval_s`: time between progress log lines (zero: none)
    pub progress_interval: Duration,
    /// keys accepted for compatibility but without effect, as `[section] key`; log them once
    pub ignored: Vec<String>,
}

impl Config {
    /// Parse from INI text; `env` supplies the environment (tests pass their own).
    pub fn parse(text: &str, env: &[(String, String)]) -> Result<Config> {
        let mut doc = Document::parse(text)?;
        doc.apply_env(env)?;
        let ignored = check_known(&doc)?;
        let r = Reader { doc: &doc };

        let app_name = app_name(&r)?;
        let in_docker = env_flag(env, "STREAMER_IN_DOCKER")?;
        let postgres = postgres_section(&r, in_docker, &app_name)?;
        let kafka = kafka_section(&r, &app_name)?;
        let pipeline = pipeline_section(&r, env)?;

        let geoip_paths = r
            .get("geoip", "path")
            .map(|e| path_list(&e.value))
            .unwrap_or_default();
        let catalog = catalog_sections(&r);
        let metrics_listen = match r.get("metrics", "listen") {
            Some(e) => listen_address(e)?,
            None => DEFAULT_METRICS_LISTEN.to_string(),
        };
        let progress_interval = Duration::from_secs(r.number(
            "metrics",
            "progress_interval_s",
            DEFAULT_PROGRESS_INTERVAL_S,
            0,
        )?);

        Ok(Config {
            app_name,
            kafka,
            postgres,
            pipeline,
            geoip_paths,
            catalog,
            metrics_listen,
            progress_interval,
            ignored,
        })
    }

    /// Read a file and parse it with the process environment.
    pub fn load(path: &std::path::Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::parse(&text, &env)
    }
}

/// The last value of an environment variable in `env`.
fn env_var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn env_flag(env: &[(String, String)], name: &str) -> Result<bool> {
    let value = env_var(env, name).unwrap_or("").trim().to_ascii_lowercase();
    match value.as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Config(format!(
            "environment {name}: expected 1 or 0, got {value:?}"
        ))),
    }
}

/// Unknown sections and keys are errors; returns the ignored keys as `[section] key`.
fn check_known(doc: &Document) -> Result<Vec<String>> {
    let mut ignored = Vec::new();
    for section in &doc.sections {
        let Some(schema) = schema::section(&section.name) else {
            return Err(Error::Config(format!(
                "[{}] ({}): unknown section; known sections: {}",
                section.name,
                section.origin,
                schema::describe_sections()
            )));
        };
        for e in &section.entries {
            if !schema.knows(&e.key) {
                return Err(Error::Config(format!(
                    "[{}] {} ({}): unknown key; known keys: {}",
                    section.name,
                    e.written,
                    e.origin,
                    schema.describe_keys()
                )));
            }
            if schema.is_ignored(&e.key) {
                ignored.push(format!("[{}] {}", section.name, e.written));
            }
        }
    }
    Ok(ignored)
}

/// Typed access to the document with error messages that name section, key and origin.
struct Reader<'a> {
    doc: &'a Document,
}

/// An error about an entry: `[section] key (line N): message`.
fn at(section: &str, e: &Entry, message: impl std::fmt::Display) -> Error {
    Error::Config(format!(
        "[{section}] {} ({}): {message}",
        e.written, e.origin
    ))
}

/// A value for a message: quoted, or `(hidden)` for secret keys.
fn shown(e: &Entry) -> String {
    if is_secret_key(&e.key) {
        "(hidden)".to_string()
    } else {
        format!("{:?}", e.value)
    }
}

impl<'a> Reader<'a> {
    fn get(&self, section: &str, key: &str) -> Option<&'a Entry> {
        self.doc.get(section, key)
    }

    /// An error for a required key that is absent.
    fn missing(&self, section: &str, key: &str) -> Error {
        let key = schema::display_key(key);
        match self.doc.section(section) {
            Some(s) => Error::Config(format!(
                "[{section}] {key}: required key missing (section [{section}] at {})",
                s.origin
            )),
            None => Error::Config(format!(
                "[{section}] {key}: required key missing; the file has no [{section}] section"
            )),
        }
    }

    /// A required key whose value, trimmed, is not empty.
    fn required(&self, section: &str, key: &str) -> Result<(&'a Entry, &'a str)> {
        let e = self
            .get(section, key)
            .ok_or_else(|| self.missing(section, key))?;
        let v = e.value.trim();
        if v.is_empty() {
            return Err(at(section, e, "must not be empty"));
        }
        Ok((e, v))
    }

    /// An optional boolean: true/false, yes/no, on/off, 1/0.
    fn boolean(&self, section: &str, key: &str, default: bool) -> Result<bool> {
        let Some(e) = self.get(section, key) else {
            return Ok(default);
        };
        match e.value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(at(
                section,
                e,
                format!("expected true or false, got {}", shown(e)),
            )),
        }
    }

    /// An optional whole number, at least `min`.
    fn number<T>(&self, section: &str, key: &str, default: T, min: T) -> Result<T>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match self.get(section, key) {
            None => Ok(default),
            Some(e) => number_of(section, e, min),
        }
    }
}

fn number_of<T>(section: &str, e: &Entry, min: T) -> Result<T>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let text = e.value.trim().replace('_', "");
    match text.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(at(
            section,
            e,
            format!(
                "expected a whole number of at least {min}, got {}",
                shown(e)
            ),
        )),
    }
}

/// A byte size: a whole number with an optional binary unit (K, KiB, M, MiB, G, GiB).
fn bytes_of(section: &str, e: &Entry) -> Result<usize> {
    let bad = || {
        at(
            section,
            e,
            format!(
                "expected a positive byte count such as 16777216 or 16MiB, got {}",
                shown(e)
            ),
        )
    };
    let text = e.value.trim().replace('_', "");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(factor)
        .filter(|&b| b > 0)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(bad)
}

/// A comma list: items trimmed, empty items dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn path_list(value: &str) -> Vec<PathBuf> {
    list(value).into_iter().map(PathBuf::from).collect()
}

fn app_name(r: &Reader<'_>) -> Result<String> {
    const PLACES: [(&str, &str); 4] = [
        ("local_spark", "app_name"),
        ("local_spark", "spark.app.name"),
        ("docker_spark", "app_name"),
        ("docker_spark", "spark.app.name"),
    ];
    for (section, key) in PLACES {
        if let Some(e) = r.get(section, key) {
            let v = e.value.trim();
            if v.is_empty() {
                return Err(at(section, e, "must not be empty"));
            }
            return Ok(v.to_string());
        }
    }
    if r.doc.section("local_spark").is_none() && r.doc.section("docker_spark").is_some() {
        return Err(r.missing("docker_spark", "app_name"));
    }
    Err(r.missing("local_spark", "app_name"))
}

fn postgres_section(r: &Reader<'_>, in_docker: bool, app_name: &str) -> Result<PostgresConfig> {
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
    let sslmode = match r.get("postgres", "sslmode") {
        None => DEFAULT_SSLMODE.to_string(),
        Some(e) => {
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
            v
        }
    };
    let sslrootcert = match r.get("postgres", "sslrootcert") {
        Some(e) if e.value.trim().is_empty() => {
            return Err(at(
                "postgres",
                e,
                "expected a file or `system`, got nothing",
            ))
        }
        Some(e) => Some(std::path::PathBuf::from(e.value.trim())),
        None => None,
    };
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

/// What `[remote_kafka]` yields besides what `[pipeline]` may override.
fn kafka_section(r: &Reader<'_>, app_name: &str) -> Result<KafkaConfig> {
    const S: &str = "remote_kafka";
    r.required(S, "kafka.bootstrap.servers")?;
    let (subscribe, value) = r.required(S, "subscribe")?;
    let topics = list(value);
    if topics.is_empty() {
        return Err(at(S, subscribe, "names no topic"));
    }
    if let Some(bad) = topics.iter().find(|t| {
        t.len() > 249
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }) {
        return Err(at(
            S,
            subscribe,
            format!("{bad:?} is not a Kafka topic name (letters, digits, '.', '_', '-')"),
        ));
    }
    let starting_offsets = match r.get(S, "startingoffsets") {
        None => StartingOffsets::Latest,
        Some(e) => match e.value.trim().to_ascii_lowercase().as_str() {
            "earliest" => StartingOffsets::Earliest,
            "latest" => StartingOffsets::Latest,
            _ => {
                return Err(at(
                    S,
                    e,
                    format!("expected earliest or latest, got {}", shown(e)),
                ))
            }
        },
    };

    let mut properties: Vec<(String, Secret)> = Vec::new();
    let mut group_id: Option<String> = None;
    let mut client_id: Option<String> = None;
    let mut jaas: Option<(&Entry, jaas::Jaas)> = None;
    let entries = r
        .doc
        .section(S)
        .map(|s| s.entries.as_slice())
        .unwrap_or(&[]);
    for e in entries {
        let Some(name) = e.key.strip_prefix(KAFKA_PREFIX) else {
            continue;
        };
        let value = e.value.trim();
        match name {
            "sasl.jaas.config" => {
                let parsed = jaas::parse(value).map_err(|why| {
                    at(
                        S,
                        e,
                        format!(
                            "cannot read the JAAS config: {why}; expected \
                             `org.apache.kafka.common.security.plain.PlainLoginModule required \
                             username=\"...\" password=\"...\";` (or ScramLoginModule)"
                        ),
                    )
                })?;
                properties.push(("sasl.username".into(), Secret(parsed.username.clone())));
                properties.push(("sasl.password".into(), Secret(parsed.password.clone())));
                jaas = Some((e, parsed));
            }
            "group.id" => group_id = Some(value.to_string()).filter(|v| !v.is_empty()),
            "client.id" => client_id = Some(value.to_string()).filter(|v| !v.is_empty()),
            "enable.auto.commit" | "auto.offset.reset" => {
                return Err(at(
                    S,
                    e,
                    "streamer sets this itself (offsets are committed with each batch; use \
                     startingOffsets for where to start)",
                ))
            }
            _ => properties.push((name.to_string(), Secret(value.to_string()))),
        }
    }

    if let Some((e, parsed)) = &jaas {
        for explicit in ["sasl.username", "sasl.password"] {
            let key = format!("{KAFKA_PREFIX}{explicit}");
            if let Some(other) = r.get(S, &key) {
                return Err(at(
                    S,
                    other,
                    format!(
                        "conflicts with kafka.sasl.jaas.config ({}); give only one of them",
                        e.origin
                    ),
                ));
            }
        }
        let mechanism = ["kafka.sasl.mechanism", "kafka.sasl.mechanisms"]
            .iter()
            .find_map(|k| r.get(S, k));
        let mech = mechanism.map(|m| m.value.trim().to_ascii_uppercase());
        match (parsed.module, mech.as_deref()) {
            (jaas::LoginModule::Plain, None) => {
                properties.push(("sasl.mechanism".into(), Secret("PLAIN".into())));
            }
            (jaas::LoginModule::Plain, Some("PLAIN")) => {}
            (jaas::LoginModule::Scram, Some(m)) if m.starts_with("SCRAM-SHA-") => {}
            (module, _) => {
                let wanted = match module {
                    jaas::LoginModule::Plain => "PLAIN",
                    jaas::LoginModule::Scram => "SCRAM-SHA-256 or SCRAM-SHA-512",
                };
                return Err(match mechanism {
                    Some(m) => at(
                        S,
                        m,
                        format!(
                            "the login module of kafka.sasl.jaas.config ({}) needs {wanted}",
                            e.origin
                        ),
                    ),
                    None => at(
                        S,
                        e,
                        format!("ScramLoginModule needs kafka.sasl.mechanism = {wanted}"),
                    ),
                });
            }
        }
    }

    let group_id = match r.get("pipeline", "consumer_group") {
        Some(e) => {
            let v = e.value.trim();
            if v.is_empty() {
                return Err(at("pipeline", e, "must not be empty"));
            }
            v.to_string()
        }
        None => group_id.unwrap_or_else(|| app_name.to_string()),
    };
    Ok(KafkaConfig {
        properties,
        topics,
        starting_offsets,
        group_id,
        client_id: client_id.unwrap_or_else(|| app_name.to_string()),
    })
}

fn pipeline_section(r: &Reader<'_>, env: &[(String, String)]) -> Result<PipelineConfig> {
    const S: &str = "pipeline";
    let mode_of = |text: &str| match text.trim().to_ascii_lowercase().as_str() {
        "partition" => Some(Mode::Partition),
        "batch" => Some(Mode::Batch),
        _ => None,
    };
    let mode = match env_var(env, "MODE").filter(|v| !v.trim().is_empty()) {
        Some(v) => mode_of(v).ok_or_else(|| {
            Error::Config(format!(
                "[pipeline] mode (from environment MODE): expected partition or batch, got {v:?}"
            ))
        })?,
        None => match r.get(S, "mode") {
            None => Mode::Partition,
            Some(e) => mode_of(&e.value).ok_or_else(|| {
                at(
                    S,
                    e,
                    format!("expected partition or batch, got {}", shown(e)),
                )
            })?,
        },
    };
    let batch_max_bytes = match r.get(S, "batch_max_bytes") {
        None => DEFAULT_BATCH_MAX_BYTES,
        Some(e) => bytes_of(S, e)?,
    };
    Ok(PipelineConfig {
        mode,
        batch_max_messages: r.number(
            S,
            "batch_max_messages",
            match mode {
                Mode::Partition => DEFAULT_BATCH_MAX_MESSAGES,
                Mode::Batch => DEFAULT_MICRO_BATCH_MAX_MESSAGES,
            },
            1,
        )?,
        batch_max_bytes,
        batch_max_latency: Duration::from_millis(r.number(
            S,
            "batch_max_latency_ms",
            DEFAULT_BATCH_MAX_LATENCY_MS,
            1,
        )?),
        trigger_interval: Duration::from_millis(r.number(
            S,
            "trigger_interval_ms",
            DEFAULT_TRIGGER_INTERVAL_MS,
            1,
        )?),
        shutdown_timeout: Duration::from_millis(r.number(
            S,
            "shutdown_timeout_ms",
            DEFAULT_SHUTDOWN_TIMEOUT_MS,
            1,
        )?),
        pg_pool_size: r.number(S, "pg_pool_size", DEFAULT_PG_POOL_SIZE, 1)?,
        retry_budget: Duration::from_secs(r.number(
            S,
            "retry_budget_s",
            DEFAULT_RETRY_BUDGET_S,
            0,
        )?),
        transform_threads: r.number(S, "transform_threads", 0, 0)?,
        enrich: r.boolean(S, "enrich", true)?,
        on_offset_out_of_range: match r.get(S, "on_offset_out_of_range") {
            None => OutOfRange::Fail,
            Some(e) => match e.value.trim().to_ascii_lowercase().as_str() {
                "fail" => OutOfRange::Fail,
                "earliest" => OutOfRange::Earliest,
                "latest" => OutOfRange::Latest,
                _ => {
                    return Err(at(
                        S,
                        e,
                        format!("expected fail, earliest or latest, got {}", shown(e)),
                    ))
                }
            },
        },
    })
}

fn catalog_sections(r: &Reader<'_>) -> CatalogConfig {
    let mut c = CatalogConfig::default();
    if let Some(e) = r.get("catalog", "products") {
        c.products.extend(path_list(&e.value));
    }
    if let Some(e) = r.get("catalog", "locations") {
        c.locations.extend(path_list(&e.value));
    }
    let base = r
        .get("data_paths", "base_path")
        .map(|e| PathBuf::from(e.value.trim()))
        .unwrap_or_default();
    if let Some(e) = r.get("data_paths", "prod_csv_pattern") {
        c.products
            .extend(list(&e.value).into_iter().map(|p| base.join(p)));
    }
    if let Some(e) = r.get("data_paths", "location_csv_pattern") {
        c.locations
            .extend(list(&e.value).into_iter().map(|p| base.join(p)));
    }
    c
}

/// `host:port` with a numeric port; IPv6 hosts in brackets; `off` disables the endpoint.
fn listen_address(e: &Entry) -> Result<String> {
    let v = e.value.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok("off".to_string());
    }
    let ok = v
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        return Err(at(
            "metrics",
            e,
            format!(
                "expected host:port such as 127.0.0.1:9187, or off, got {}",
                shown(e)
            ),
        ));
    }
    Ok(v.to_string())
}

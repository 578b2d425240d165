//! The INI configuration of contract §3: the seed job's sections plus optional new ones,
//! environment overrides, validation (errors name section, key and line), no secrets in Debug.
//!
//! # File format
//!
//! `[section]` headers and `key = value` (or `key: value`) lines. Section and key names are
//! case-insensitive. Comments: a line starting with `;` or `#`, and an inline comment, i.e.
//! `;` or `#` after whitespace outside quotes (`port_in = 5432 ; the container port`). A value
//! wholly inside matching quotes loses them, so `password = "a ;b"` is `a ;b`; other quotes are
//! kept as they are (the JAAS value keeps its `username="..."`). A line ending in `\` continues
//! on the next line. Lines may end in CRLF; any other carriage return is a syntax error.
//! Duplicate sections or keys, unknown sections or keys, bad numbers and bad choices are
//! errors ([`Error::Config`], exit 2) naming the section, the key and the line. Relative
//! paths are relative to the working directory.
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
//!   Kafka source such as `failOnDataLoss` or `maxOffsetsPerTrigger` are accepted and ignored,
//!   and so are the Java consumer's settings librdkafka has no property for (`src/config/java.rs`:
//!   `max.poll.records`, ...); Java names librdkafka spells otherwise are renamed
//!   (`fetch.max.wait.ms`), Java assignor class names translated.
//! - `[pipeline]`: `mode` = `partition` | `batch` (`partition`), `batch_max_messages` (10000
//!   per partition batch, or per micro-batch in batch mode),
//!   `batch_max_bytes` (16 MiB; a whole number with an optional `K`/`KiB`/`M`/`MiB`/`G`/`GiB`
//!   suffix, all binary), `buffer_max_bytes` (48 MiB, same form: in partition mode, the message
//!   bytes all partitions' batches hold at once; each partition's batch is cut at its share),
//!   `batch_max_latency_ms` (100), `batch_linger_ms` (20: in partition mode, how long a
//!   batch at the partition's end waits for more messages; 0 = written at once),
//!   `trigger_interval_ms` (5000),
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
//! Catalog entries ([`CatalogConfig`]) are stored as written. Warmup
//! (`catalog::expand`) expands an entry holding `*`, `?` or `[` with the `glob`
//! crate, anywhere in the path, into its matching files in sorted order (no match: a
//! warning); any other entry must be an existing file.
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
//!
//! # Layout
//!
//! [`Config::parse`] reads the text once, with the line scanner of `document`, into
//! sections of entries, each with its line; applies the environment; checks every section
//! and key against the `schema`; then a `reader` hands typed values to one module per
//! concern: `postgres`, `kafka` (with `jaas`), `pipeline`, `files` (GeoIP and catalogs) and
//! `metrics`. `secret` says what is never shown.

mod document;
mod files;
mod jaas;
mod java;
mod kafka;
mod metrics;
mod pipeline;
mod postgres;
mod reader;
mod schema;
mod secret;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_env;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_kafka;
#[cfg(test)]
mod tests_postgres;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use document::Document;
use reader::{at, Reader};

pub use files::CatalogConfig;
pub use kafka::{kafka_error_text, KafkaConfig, StartingOffsets};
pub use metrics::{DEFAULT_METRICS_LISTEN, DEFAULT_PROGRESS_INTERVAL_S};
pub use pipeline::{
    Mode, OutOfRange, PipelineConfig, DEFAULT_BATCH_LINGER_MS, DEFAULT_BATCH_MAX_BYTES,
    DEFAULT_BATCH_MAX_LATENCY_MS, DEFAULT_BATCH_MAX_MESSAGES, DEFAULT_BUFFER_MAX_BYTES,
    DEFAULT_MICRO_BATCH_MAX_MESSAGES, DEFAULT_PG_POOL_SIZE, DEFAULT_RETRY_BUDGET_S,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_TRIGGER_INTERVAL_MS,
};
pub use postgres::{
    PostgresConfig, DEFAULT_APPLICATION_NAME, DEFAULT_PG_PORT, DEFAULT_SSLMODE,
    DEFAULT_STATEMENT_TIMEOUT_MS, PG_CONNECT_TIMEOUT,
};
pub use secret::{is_secret_key, Secret};

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
    /// keys accepted for compatibility but without effect (Spark's, the Java consumer's), as
    /// `[section] key`; log them once
    pub ignored: Vec<String>,
}

impl Config {
    /// Parse from INI text; `env` supplies the environment (tests pass their own).
    pub fn parse(text: &str, env: &[(String, String)]) -> Result<Config> {
        let mut doc = Document::parse(text)?;
        doc.apply_env(env)?;
        let mut ignored = schema::check_known(&doc)?;
        let r = Reader { doc: &doc };

        let app_name = app_name(&r)?;
        let in_docker = env_flag(env, "STREAMER_IN_DOCKER")?;
        let postgres = postgres::postgres_section(&r, in_docker, &app_name)?;
        let kafka = kafka::kafka_section(&r, &app_name)?;
        ignored.extend(kafka.ignored.iter().map(|k| format!("[remote_kafka] {k}")));
        let pipeline = pipeline::pipeline_section(&r, env)?;
        let geoip_paths = files::geoip_paths(&r);
        let catalog = files::catalog_sections(&r);
        let (metrics_listen, progress_interval) = metrics::metrics_section(&r)?;

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

/// The app name from `[local_spark]` / `[docker_spark]`, in the order the module docs give.
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
    if r.section("local_spark").is_none() && r.section("docker_spark").is_some() {
        return Err(r.missing("docker_spark", "app_name"));
    }
    Err(r.missing("local_spark", "app_name"))
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

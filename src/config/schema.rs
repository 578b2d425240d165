//! The known sections and keys of the INI file (contract §3): which keys each section accepts,
//! which Spark-only keys are accepted and reported as ignored, and the open-ended `kafka.` /
//! `spark.` key prefixes; and [`check_known`], the check of a document against them. All
//! names are lowercase; matching is case-insensitive.

use super::document::Document;
use crate::error::{Error, Result};

/// What one section accepts.
pub(crate) struct SectionSchema {
    /// lowercase section name
    pub name: &'static str,
    /// lowercase keys with a meaning
    pub keys: &'static [&'static str],
    /// lowercase keys accepted only for compatibility with the seed's Spark job; reported as ignored
    pub ignored: &'static [&'static str],
    /// keys with this prefix are open-ended: `kafka.` (librdkafka properties) or `spark.` (ignored)
    pub open_prefix: Option<&'static str>,
}

impl SectionSchema {
    /// Whether `key` (lowercase) is accepted in this section.
    pub(super) fn knows(&self, key: &str) -> bool {
        self.keys.contains(&key)
            || self.ignored.contains(&key)
            || self
                .open_prefix
                .is_some_and(|p| key.len() > p.len() && key.starts_with(p))
    }

    /// Whether `key` (lowercase, known) is accepted but has no effect.
    pub(super) fn is_ignored(&self, key: &str) -> bool {
        self.ignored.contains(&key)
            || (self.open_prefix == Some(SPARK_PREFIX)
                && !self.keys.contains(&key)
                && key.starts_with(SPARK_PREFIX))
    }

    /// The keys for an "unknown key" message, as users spell them.
    pub(super) fn describe_keys(&self) -> String {
        let mut names: Vec<String> = self.keys.iter().map(|k| display_key(k)).collect();
        if let Some(p) = self.open_prefix {
            names.push(format!("{p}*"));
        }
        names.join(", ")
    }
}

pub(crate) const SPARK_PREFIX: &str = "spark.";
pub(crate) const KAFKA_PREFIX: &str = "kafka.";

const SPARK_KEYS: &[&str] = &["app_name", "spark.app.name"];

/// Options of Spark's Kafka source that mean nothing here.
const SPARK_KAFKA_OPTIONS: &[&str] = &[
    "failondataloss",
    "maxoffsetspertrigger",
    "minoffsetspertrigger",
    "maxtriggerdelay",
    "minpartitions",
    "kafkaconsumer.polltimeoutms",
    "fetchoffset.numretries",
    "fetchoffset.retryintervalms",
    "includeheaders",
    "groupidprefix",
];

pub(crate) const SCHEMA: &[SectionSchema] = &[
    SectionSchema {
        name: "local_spark",
        keys: SPARK_KEYS,
        ignored: &[],
        open_prefix: Some(SPARK_PREFIX),
    },
    SectionSchema {
        name: "docker_spark",
        keys: SPARK_KEYS,
        ignored: &[],
        open_prefix: Some(SPARK_PREFIX),
    },
    SectionSchema {
        name: "docker_postgres",
        keys: &[
            "host_in", "host_out", "database", "user", "password", "port_in", "port_out",
        ],
        ignored: &[],
        open_prefix: None,
    },
    SectionSchema {
        name: "postgres",
        keys: &["sslmode", "sslrootcert", "statement_timeout_ms"],
        ignored: &[],
        open_prefix: None,
    },
    SectionSchema {
        name: "remote_kafka",
        keys: &["subscribe", "startingoffsets"],
        ignored: SPARK_KAFKA_OPTIONS,
        open_prefix: Some(KAFKA_PREFIX),
    },
    SectionSchema {
        name: "data_paths",
        keys: &["base_path", "prod_csv_pattern", "location_csv_pattern"],
        ignored: &[],
        open_prefix: None,
    },
    SectionSchema {
        name: "pipeline",
        keys: &[
            "mode",
            "batch_max_messages",
            "batch_max_bytes",
            "buffer_max_bytes",
            "batch_max_latency_ms",
            "batch_linger_ms",
            "trigger_interval_ms",
            "shutdown_timeout_ms",
            "consumer_group",
            "pg_pool_size",
            "retry_budget_s",
            "transform_threads",
            "enrich",
            "on_offset_out_of_range",
        ],
        ignored: &[],
        open_prefix: None,
    },
    SectionSchema {
        name: "geoip",
        keys: &["path"],
        ignored: &[],
        open_prefix: None,
    },
    SectionSchema {
        name: "catalog",
        keys: &["products", "locations"],
        ignored: &[],
        open_prefix: None,
    },
    SectionSchema {
        name: "metrics",
        keys: &["listen", "progress_interval_s"],
        ignored: &[],
        open_prefix: None,
    },
];

/// The schema of a section (name lowercase).
pub(crate) fn section(name: &str) -> Option<&'static SectionSchema> {
    SCHEMA.iter().find(|s| s.name == name)
}

/// All section names, for an "unknown section" message.
pub(crate) fn describe_sections() -> String {
    SCHEMA.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// A key as the seed spells it (keys are matched case-insensitively).
pub(crate) fn display_key(key: &str) -> String {
    match key {
        "startingoffsets" => "startingOffsets".to_string(),
        other => other.to_string(),
    }
}

/// Unknown sections and keys are errors; returns the ignored keys as `[section] key`.
pub(crate) fn check_known(doc: &Document) -> Result<Vec<String>> {
    let mut ignored = Vec::new();
    for s in &doc.sections {
        let Some(schema) = section(&s.name) else {
            return Err(Error::Config(format!(
                "[{}] ({}): unknown section; known sections: {}",
                s.name,
                s.origin,
                describe_sections()
            )));
        };
        for e in &s.entries {
            if !schema.knows(&e.key) {
                return Err(Error::Config(format!(
                    "[{}] {} ({}): unknown key; known keys: {}",
                    s.name,
                    e.written,
                    e.origin,
                    schema.describe_keys()
                )));
            }
            if schema.is_ignored(&e.key) {
                ignored.push(format!("[{}] {}", s.name, e.written));
            }
        }
    }
    Ok(ignored)
}

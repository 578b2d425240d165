//! `streamer status`: for each partition of the subscribed topics, the group's committed
//! offset in `stream_offsets` against the broker's end, the lag, the last commit's time,
//! and what the committed batches held (records = facts + duplicates + dead letters),
//! reconciled with the rows in `fact_sales` and `dead_letter`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::source::Quiet;
use serde::Serialize;

use crate::config::Config;
use crate::error::{column, Error, Result};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition's state.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// where the group began (None: no row yet, or a row stored before it was kept)
    pub start_offset: Option<i64>,
    /// `stream_offsets.next_offset` (None: nothing stored yet)
    pub committed: Option<i64>,
    /// the broker's log start and end (the last stable offset under read_committed);
    /// None when the brokers could not be reached
    pub log_start: Option<i64>,
    pub log_end: Option<i64>,
    /// messages between the committed offset (or, with none, where the group would
    /// start) and the end (None: the end is not known)
    pub lag: Option<i64>,
    /// when the last batch committed (RFC 3339, UTC)
    pub last_commit: Option<String>,
    pub records: i64,
    pub facts: i64,
    pub duplicates: i64,
    pub dead_letters: i64,
    /// offsets between start and committed that held no record (transaction markers,
    /// aborted or compacted records, skipped offsets)
    pub gaps: Option<i64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Status {
    pub consumer_group: String,
    pub partitions: Vec<PartitionStatus>,
    /// None when the brokers could not be reached
    pub total_lag: Option<i64>,
    /// why the brokers' side is missing, when it is
    pub broker_error: Option<String>,
    pub records: i64,
    pub facts: i64,
    pub duplicates: i64,
    /// dead letters the committed batches wrote, by reason code, as `dead_letter` holds them
    pub dead_letters_by_reason: BTreeMap<String, i64>,
    pub dead_letters: i64,
    /// rows in `fact_sales` now (all groups, all topics)
    pub fact_rows: i64,
    /// every check below held
    pub reconciled: bool,
    /// the checks that did not hold
    pub problems: Vec<String>,
}

/// The broker's partitions of `topics` and their log start and end.
pub(crate) fn broker_offsets(cfg: &Config) -> Result<Vec<(String, i32, i64, i64)>> {
    let brokers = cfg.kafka.property("bootstrap.servers").unwrap_or_default();
    let consumer = client(cfg)?;
    let mut out = Vec::new();
    for topic in &cfg.kafka.topics {
        let ctx = || format!("reading the metadata of {topic} (brokers {brokers})");
        let md = consumer
            .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
            .map_err(|e| Error::retriable(ctx(), e))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            continue;
        };
        if let Some(e) = t.error() {
            return Err(Error::fatal(ctx(), format!("{e:?}")));
        }
        let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        parts.sort_unstable();
        for p in parts {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, KAFKA_TIMEOUT)
                .map_err(|e| {
                    Error::retriable(
                        format!("reading the offsets of {topic}/{p} (brokers {brokers})"),
                        e,
                    )
                })?;
            out.push((topic.clone(), p, low, high));
        }
    }
    Ok(out)
}

/// A Kafka client of `cfg` that never joins the group.
pub(crate) fn client(cfg: &Config) -> Result<BaseConsumer<Quiet>> {
    crate::source::client_config(cfg)
        .create_with_context(Quiet)
        .map_err(|e| {
            Error::Config(format!(
                "[remote_kafka]: cannot create a client: {}",
                crate::config::kafka_error_text(&e)
            ))
        })
}

/// Gather the status of `cfg`'s group.
pub(crate) fn gather(cfg: &Config, pg: &mut Client) -> Result<Status> {
    let group = cfg.kafka.group_id.clone();
    // Without the brokers, what PostgreSQL holds is still reported and reconciled.
    let (broker, broker_error) = match broker_offsets(cfg) {
        Ok(b) => (Some(b), None),
        Err(e) if e.is_retriable() => {
            log::warn!("{e}: the log ends and the lag are unknown");
            (None, Some(e.to_string()))
        }
        Err(e) => return Err(e),
    };
    let ctx = "reading stream_offsets";
    let rows = pg
        .query(
            "SELECT topic, partition, next_offset, start_offset, updated_at, records, facts, \
             dead_letters FROM stream_offsets WHERE consumer_group = $1 AND topic = ANY($2)",
            &[&group, &cfg.kafka.topics],
        )
        .map_err(|e| Error::from_pg(ctx, e))?;
    type Stored = (i64, Option<i64>, DateTime<Utc>, i64, i64, i64);
    let mut stored: BTreeMap<(String, i32), Stored> = BTreeMap::new();
    for r in &rows {
        let t = "stream_offsets";
        stored.insert(
            (column(r, 0, t, "topic")?, column(r, 1, t, "partition")?),
            (
                column(r, 2, t, "next_offset")?,
                column(r, 3, t, "start_offset")?,
                column(r, 4, t, "updated_at")?,
                column(r, 5, t, "records")?,
                column(r, 6, t, "facts")?,
                column(r, 7, t, "dead_letters")?,
            ),
        );
    }
    let mut problems = Vec::new();
    let mut partitions = Vec::new();
    let listed: Vec<(String, i32, Option<i64>, Option<i64>)> = match &broker {
        Some(b) => b
            .iter()
            .map(|(t, p, low, high)| (t.clone(), *p, Some(*low), Some(*high)))
            .collect(),
        None => stored
            .keys()
            .map(|(t, p)| (t.clone(), *p, None, None))
            .collect(),
    };
    for (topic, partition, low, high) in listed {
        let s = stored.remove(&(topic.clone(), partition));
        let committed = s.as_ref().map(|s| s.0);
        let lag = match (low, high) {
            (Some(low), Some(high)) => {
                let from = committed
                    .or_else(|| {
                        cfg.kafka
                            .starting_offsets
                            .start(&topic, partition, (low, high))
                    })
                    .unwrap_or(low);
                Some((high - from.max(low)).max(0))
            }
            _ => None,
        };
        let (records, facts, dead) = s.as_ref().map_or((0, 0, 0), |s| (s.3, s.4, s.5));
        let duplicates = records - facts - dead;
        if duplicates < 0 {
            problems.push(format!(
                "{topic}/{partition}: {facts} facts and {dead} dead letters from {records} \
                 records"
            ));
        }
        let start_offset = s.as_ref().and_then(|s| s.1);
        let gaps = match (start_offset, committed) {
            (Some(start), Some(next)) => Some(next - start - records),
            _ => None,
        };
        if let Some(g) = gaps.filter(|g| *g < 0) {
            problems.push(format!(
                "{topic}/{partition}: {records} records between offsets {} and {} ({g} gaps)",
                start_offset.unwrap_or_default(),
                committed.unwrap_or_default()
            ));
        }
        if let (Some(c), Some(high)) = (committed, high) {
            if c > high {
                problems.push(format!(
                    "{topic}/{partition}: committed offset {c} is past the log's end {high}"
                ));
            }
        }
        partitions.push(PartitionStatus {
            topic,
            partition,
            start_offset,
            committed,
            log_start: low,
            log_end: high,
            lag,
            last_commit: s
                .as_ref()
                .map(|s| s.2.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            records,
            facts,
            duplicates,
            dead_letters: dead,
            gaps,
        });
    }
    for ((topic, partition), _) in stored {
        problems.push(format!(
            "{topic}/{partition}: stored in stream_offsets, but the broker has no such partition"
        ));
    }
    let by_reason = pg
        .query(
            "SELECT split_part(reason, ':', 1), count(*) FROM dead_letter \
             WHERE topic = ANY($1) GROUP BY 1 ORDER BY 1",
            &[&cfg.kafka.topics],
        )
        .map_err(|e| Error::from_pg("counting dead_letter by reason", e))?;
    let mut dead_letters_by_reason = BTreeMap::new();
    for r in &by_reason {
        dead_letters_by_reason.insert(
            column(r, 0, "dead_letter", "reason")?,
            column(r, 1, "dead_letter", "count")?,
        );
    }
    let fact_rows: i64 = pg
        .query_one("SELECT count(*) FROM fact_sales", &[])
        .map_err(|e| Error::from_pg("counting fact_sales", e))
        .and_then(|r| column(&r, 0, "fact_sales", "count"))?;
    let sum = |f: fn(&PartitionStatus) -> i64| partitions.iter().map(f).sum::<i64>();
    let (records, facts, duplicates, dead) = (
        sum(|p| p.records),
        sum(|p| p.facts),
        sum(|p| p.duplicates),
        sum(|p| p.dead_letters),
    );
    let dead_rows: i64 = dead_letters_by_reason.values().sum();
    if dead_rows != dead {
        problems.push(format!(
            "dead_letter holds {dead_rows} rows of these topics, the committed batches wrote {dead}"
        ));
    }
    if fact_rows != facts {
        problems.push(format!(
            "fact_sales holds {fact_rows} rows, the committed batches of this group added \
             {facts} (other groups or topics load into it, or rows were changed by hand)"
        ));
    }
    Ok(Status {
        consumer_group: group,
        total_lag: partitions.iter().map(|p| p.lag).sum(),
        broker_error,
        partitions,
        records,
        facts,
        duplicates,
        dead_letters_by_reason,
        dead_letters: dead,
        fact_rows,
        reconciled: problems.is_empty(),
        problems,
    })
}

/// The status as an aligned table and a reconciliation paragraph.
pub(crate) fn table(s: &Status) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "topic",
        "partition",
        "committed",
        "log end",
        "lag",
        "last commit",
        "records",
        "facts",
        "duplicates",
        "dead letters",
        "gaps",
    ]);
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for p in &s.partitions {
        t.add_row([
            p.topic.clone(),
            p.partition.to_string(),
            opt(p.committed),
            opt(p.log_end),
            opt(p.lag),
            p.last_commit.clone().unwrap_or_else(|| "-".to_string()),
            p.records.to_string(),
            p.facts.to_string(),
            p.duplicates.to_string(),
            p.dead_letters.to_string(),
            opt(p.gaps),
        ]);
    }
    let reasons: Vec<String> = s
        .dead_letters_by_reason
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    let lag = match (s.total_lag, &s.broker_error) {
        (Some(lag), _) => lag.to_string(),
        (None, Some(e)) => format!("unknown ({e})"),
        (None, None) => "unknown".to_string(),
    };
    let mut out = format!(
        "consumer group {}\n{t}\nlag {}\nrecords {} = facts {} + duplicates {} + dead letters {}{}\n\
         fact_sales rows {}\n",
        s.consumer_group,
        lag,
        s.records,
        s.facts,
        s.duplicates,
        s.dead_letters,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        s.fact_rows,
    );
    if s.reconciled {
        out.push_str("reconciled: yes\n");
    } else {
        out.push_str("reconciled: NO\n");
        for p in &s.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

/// How `streamer status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

/// `streamer status`: print the status; an error (exit 1) when the total lag is over
/// `max_lag` or the counts do not reconcile, after printing it.
pub(crate) fn run(cfg: &Config, format: StatusFormat, max_lag: Option<i64>) -> Result<()> {
    let mut pg = cfg
        .postgres
        .pg_config()
        .connect(crate::sink::tls::connector(&cfg.postgres)?)
        .map_err(|e| Error::from_pg("status: connecting to PostgreSQL", e))?;
    let s = gather(cfg, &mut pg)?;
    match format {
        StatusFormat::Table => print!("{}", table(&s)),
        StatusFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&s)
                .map_err(|e| Error::fatal("status: writing JSON", e))?
        ),
    }
    if let Some(bound) = max_lag {
        match s.total_lag {
            Some(lag) if lag > bound => {
                return Err(Error::fatal(
                    "status",
                    format!("lag {lag} is over --max-lag {bound}"),
                ))
            }
            Some(_) => {}
            None => {
                return Err(Error::fatal(
                    "status",
                    "the lag is unknown (the brokers could not be reached), so --max-lag \
                     cannot be checked",
                ))
            }
        }
    }
    if !s.reconciled {
        return Err(Error::fatal(
            "status",
            format!("the counts do not reconcile: {}", s.problems.join("; ")),
        ));
    }
    Ok(())
}

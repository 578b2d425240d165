//! `streamer reset`: move this group's stored offsets in `stream_offsets` (to the log's
//! start or end, to the first message at or after a time by the broker's
//! offsets-for-times, or to a given offset), printing before and after; refused while a
//! member of the group is active unless forced. Facts are keyed, so replaying a range
//! loads no duplicate row.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::error::{column, Error, Result};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to move the offsets.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false)))]
pub struct ResetArgs {
    /// To the log's start.
    #[arg(long, group = "target")]
    pub to_earliest: bool,
    /// To the log's end (skip everything not yet loaded).
    #[arg(long, group = "target")]
    pub to_latest: bool,
    /// To the first message whose Kafka timestamp is at or after T (RFC 3339, or
    /// `YYYY-MM-DD[ HH:MM[:SS]]` in UTC); the end where there is none.
    #[arg(long, group = "target", value_name = "T", value_parser = parse_datetime)]
    pub to_datetime: Option<DateTime<Utc>>,
    /// To offset O of partition P (`P:O`).
    #[arg(long, group = "target", value_name = "P:O", value_parser = parse_partition_offset)]
    pub to_offset: Option<(i32, i64)>,
    /// Only this partition (repeatable); default: every partition of the subscribed topics.
    #[arg(long, value_name = "N")]
    pub partition: Vec<i32>,
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Move the offsets even while members of the group are active (they pick up the
    /// new offsets at their next batch).
    #[arg(long)]
    pub force: bool,
}

fn parse_datetime(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "{s:?} is not a time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC)"
    ))
}

fn parse_partition_offset(s: &str) -> std::result::Result<(i32, i64), String> {
    let (p, o) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not PARTITION:OFFSET"))?;
    let p = p
        .trim()
        .parse::<i32>()
        .map_err(|e| format!("partition {p:?}: {e}"))?;
    let o = o
        .trim()
        .parse::<i64>()
        .map_err(|e| format!("offset {o:?}: {e}"))?;
    if p < 0 || o < 0 {
        return Err(format!("{s:?}: partition and offset are never negative"));
    }
    Ok((p, o))
}

/// One partition's move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Move {
    pub topic: String,
    pub partition: i32,
    pub before: Option<i64>,
    pub after: i64,
    pub log_start: i64,
    pub log_end: i64,
}

/// `streamer reset`.
pub(crate) fn run(cfg: &Config, args: &ResetArgs) -> Result<()> {
    let group = &cfg.kafka.group_id;
    let kafka = crate::status::client(cfg)?;
    let members = active_members(&kafka, group)?;
    if !members.is_empty() && !args.force && !args.dry_run {
        return Err(Error::fatal(
            format!("reset: consumer group {group}"),
            format!(
                "{} member(s) active ({}): stop them first, or pass --force",
                members.len(),
                members.join(", ")
            ),
        ));
    }
    let mut parts = crate::status::broker_offsets(cfg)?;
    if let Some((p, _)) = args.to_offset {
        parts.retain(|(_, q, _, _)| *q == p);
    }
    if !args.partition.is_empty() {
        parts.retain(|(_, p, _, _)| args.partition.contains(p));
    }
    if parts.is_empty() {
        return Err(Error::Config(
            "reset: no partition of the subscribed topics matches".into(),
        ));
    }
    let targets = targets(&kafka, args, &parts)?;
    let mut pg = cfg
        .postgres
        .pg_config()
        .connect(crate::sink::tls::connector(&cfg.postgres)?)
        .map_err(|e| Error::from_pg("reset: connecting to PostgreSQL", e))?;
    let mut tx = pg
        .transaction()
        .map_err(|e| Error::from_pg("reset: beginning", e))?;
    let mut moves = Vec::new();
    for ((topic, partition, low, high), after) in parts.into_iter().zip(targets) {
        let row = tx
            .query_opt(
                "SELECT next_offset FROM stream_offsets \
                 WHERE consumer_group = $1 AND topic = $2 AND partition = $3 FOR UPDATE",
                &[group, &topic, &partition],
            )
            .map_err(|e| Error::from_pg("reset: reading stream_offsets", e))?;
        let before = match row {
            Some(r) => Some(column::<i64>(&r, 0, "stream_offsets", "next_offset")?),
            None => None,
        };
        moves.push(Move {
            topic,
            partition,
            before,
            after,
            log_start: low,
            log_end: high,
        });
    }
    for m in &moves {
        let before = m.before.map_or_else(|| "-".into(), |b| b.to_string());
        println!(
            "{}/{}: {before} -> {} (log {}..{}){}",
            m.topic,
            m.partition,
            m.after,
            m.log_start,
            m.log_end,
            if args.dry_run { " (dry run)" } else { "" }
        );
    }
    if args.dry_run {
        return Ok(());
    }
    for m in &moves {
        // start_offset moves back by what a move back re-reads, so that
        // next_offset - start_offset stays the offsets consumed (replays included)
        tx.execute(
            "INSERT INTO stream_offsets AS s \
             (consumer_group, topic, partition, next_offset, start_offset) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET \
               next_offset = EXCLUDED.next_offset, updated_at = now(), \
               start_offset = s.start_offset - greatest(s.next_offset - EXCLUDED.next_offset, 0)",
            &[group, &m.topic, &m.partition, &m.after],
        )
        .map_err(|e| Error::from_pg("reset: writing stream_offsets", e))?;
    }
    tx.commit()
        .map_err(|e| Error::from_pg("reset: committing", e))?;
    println!("reset: {} partition(s) of group {group} moved", moves.len());
    Ok(())
}

/// The members of `group` the broker's coordinator knows now (client id @ host).
fn active_members(
    kafka: &rdkafka::consumer::BaseConsumer<crate::source::Quiet>,
    group: &str,
) -> Result<Vec<String>> {
    let list = kafka
        .fetch_group_list(Some(group), KAFKA_TIMEOUT)
        .map_err(|e| Error::retriable(format!("reset: describing consumer group {group}"), e))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| format!("{}@{}", m.client_id(), m.client_host()))
        .collect())
}

/// The new offset of each of `parts`.
fn targets(
    kafka: &rdkafka::consumer::BaseConsumer<crate::source::Quiet>,
    args: &ResetArgs,
    parts: &[(String, i32, i64, i64)],
) -> Result<Vec<i64>> {
    if let Some(at) = args.to_datetime {
        let mut tpl = TopicPartitionList::new();
        for (t, p, _, _) in parts {
            tpl.add_partition_offset(t, *p, Offset::Offset(at.timestamp_millis()))
                .map_err(|e| Error::fatal("reset: offsets for times", e))?;
        }
        let found = kafka
            .offsets_for_times(tpl, KAFKA_TIMEOUT)
            .map_err(|e| Error::retriable("reset: asking the broker for offsets by time", e))?;
        return parts
            .iter()
            .map(
                |(t, p, _, high)| match found.find_partition(t, *p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Ok(o),
                    Some(Offset::End) | None => Ok(*high),
                    Some(other) => Err(Error::fatal(
                        format!("reset: {t}/{p}"),
                        format!("the broker answered {other:?} for {at}"),
                    )),
                },
            )
            .collect();
    }
    parts
        .iter()
        .map(|(t, p, low, high)| {
            if args.to_earliest {
                Ok(*low)
            } else if args.to_latest {
                Ok(*high)
            } else if let Some((_, o)) = args.to_offset {
                if o < *low || o > *high {
                    Err(Error::Config(format!(
                        "reset: offset {o} is outside {t}/{p}'s log {low}..{high}"
                    )))
                } else {
                    Ok(o)
                }
            } else {
                Err(Error::Config("reset: no target given".into()))
            }
        })
        .collect()
}

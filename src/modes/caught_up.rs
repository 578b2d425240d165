//! Caught up, for `run --until-caught-up`: every partition of the subscribed topics has
//! its `stream_offsets` row for this group at the partition's end (the high watermark;
//! under `isolation.level=read_committed` the last stable offset), whoever in the group
//! committed it. Asked only once this process's own share is done: it holds a settled
//! assignment (an empty one counts as settled, but never as done by itself) and every
//! partition it owns is read to its end with nothing uncommitted. Partition EOF is the
//! fast path for the partitions this process owns, never the definition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::offsets;
use crate::source::Source;
use crate::topic_partition::TopicPartition;

use super::Run;

/// How often the group-wide condition is asked of the broker and PostgreSQL.
const EVERY: Duration = Duration::from_millis(100);

/// The group-wide check, rate-limited.
pub(crate) struct CaughtUp {
    next_check: Instant,
}

impl Default for CaughtUp {
    fn default() -> Self {
        CaughtUp {
            next_check: Instant::now(),
        }
    }
}

impl CaughtUp {
    /// Whether the whole topic is committed; `own_done` says this process's share is.
    pub(crate) fn check(&mut self, run: &Run, source: &Source, own_done: bool) -> Result<bool> {
        if !own_done || Instant::now() < self.next_check {
            return Ok(false);
        }
        self.next_check = Instant::now() + EVERY;
        let started = Instant::now();
        let answer = whole_topic_committed(run, source);
        log::debug!("caught-up check took {:?}: {answer:?}", started.elapsed());
        match answer {
            Ok(Some(())) => Ok(true),
            Ok(None) => Ok(false),
            Err(e) if e.is_retriable() => {
                log::debug!("caught-up check: {e}");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Some(()) when every partition's stored offset lies at its end: at or past the end
/// read before the stored offsets, and not past the end read after them (a stored
/// offset beyond the log, e.g. of a recreated topic, is not caught up).
fn whole_topic_committed(run: &Run, source: &Source) -> Result<Option<()>> {
    let parts = source.partitions_of(&run.cfg.kafka.topics)?;
    if parts.is_empty() {
        return Ok(None);
    }
    let ends = |parts: &[TopicPartition]| -> Result<Vec<i64>> {
        parts
            .iter()
            .map(|tp| source.watermarks(tp).map(|(_, high)| high))
            .collect()
    };
    let before = ends(&parts)?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &parts {
        by_topic.entry(tp.topic()).or_default().push(tp.partition);
    }
    let mut conn = run.sink.pool().get("connecting to PostgreSQL")?;
    let mut stored: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for (topic, partitions) in by_topic {
        for (p, n) in offsets::load(&mut *conn, run.sink.group(), topic, &partitions)? {
            if let Some(n) = n {
                stored.insert(TopicPartition::new(topic, p), n);
            }
        }
    }
    drop(conn);
    let behind = parts
        .iter()
        .zip(&before)
        .filter(|(tp, end)| stored.get(*tp).is_none_or(|n| n < *end))
        .count();
    if behind > 0 {
        log::debug!("not caught up: {behind} partitions behind their end");
        return Ok(None);
    }
    let after = ends(&parts)?;
    let past = parts
        .iter()
        .zip(&after)
        .any(|(tp, end)| stored.get(tp).is_some_and(|n| n > end));
    Ok((!past).then_some(()))
}

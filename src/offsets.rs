//! `stream_offsets`: where each (group, topic, partition) resumes. A partition's row is
//! created when it is first assigned (its start position, before anything is read), read
//! on every assignment, and advanced inside each batch transaction with a fence, so that
//! two owners can never both commit the same offset range.

use postgres::types::Type;
use postgres::GenericClient;

use crate::error::{column, Error, Result};
use crate::topic_partition::TopicPartition;

/// The offset a batch starts from, and the one it leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAdvance {
    pub tp: TopicPartition,
    /// `next_offset` as this owner last saw it in PostgreSQL
    pub expected: i64,
    pub next: i64,
    /// records (not gap markers) the batch read from the partition
    pub records: u64,
}

/// What the fence found for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// the row was at `expected` and now says `next`
    Advanced,
    /// the row already says `next`: an earlier attempt of this very batch committed
    AlreadyCommitted,
    /// someone else moved the row (another owner after a rebalance); it now says this
    Moved(Option<i64>),
}

/// Stored next offsets of the given partitions of one topic (absent: no row).
pub(crate) fn load(
    client: &mut impl GenericClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, Option<i64>)>> {
    let ctx = || format!("reading stream_offsets for {group}/{topic}");
    let rows = client
        .query(
            "SELECT partition, next_offset FROM stream_offsets \
             WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3)",
            &[&group, &topic, &partitions],
        )
        .map_err(|e| Error::from_pg(ctx(), e))?;
    let mut stored = Vec::with_capacity(rows.len());
    for r in &rows {
        let p: i32 = column(r, 0, "stream_offsets", "partition")?;
        let n: i64 = column(r, 1, "stream_offsets", "next_offset")?;
        stored.push((p, n));
    }
    Ok(partitions
        .iter()
        .map(|p| (*p, stored.iter().find(|(sp, _)| sp == p).map(|(_, n)| *n)))
        .collect())
}

/// Whether the group has a row of any partition of `topic`.
pub(crate) fn has_rows(client: &mut impl GenericClient, group: &str, topic: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM stream_offsets WHERE consumer_group = $1 AND topic = $2)",
            &[&group, &topic],
        )
        .map_err(|e| Error::from_pg(format!("reading stream_offsets for {group}/{topic}"), e))?;
    column(&row, 0, "stream_offsets", "exists")
}

/// Store each `(partition, start)` of `topic` as that partition's next offset unless a row
/// exists already (another owner may have been first), in one statement; returns what
/// the rows say now, in the order given.
pub(crate) fn store_starts(
    client: &mut impl GenericClient,
    group: &str,
    topic: &str,
    starts: &[(i32, i64)],
) -> Result<Vec<(i32, i64)>> {
    let ctx = || format!("storing the start offsets of {group}/{topic}");
    let partitions: Vec<i32> = starts.iter().map(|s| s.0).collect();
    let offsets: Vec<i64> = starts.iter().map(|s| s.1).collect();
    client
        .execute(
            "INSERT INTO stream_offsets \
             (consumer_group, topic, partition, next_offset, start_offset) \
             SELECT $1, $2, u.p, u.n, u.n FROM unnest($3::int[], $4::bigint[]) AS u(p, n) \
             ON CONFLICT DO NOTHING",
            &[&group, &topic, &partitions, &offsets],
        )
        .map_err(|e| Error::from_pg(ctx(), e))?;
    load(client, group, topic, &partitions)?
        .into_iter()
        .map(|(p, n)| {
            n.map(|n| (p, n)).ok_or_else(|| {
                Error::fatal(
                    ctx(),
                    format!("the row of partition {p} is missing right after it was stored"),
                )
            })
        })
        .collect()
}

/// Advance one partition's row inside the caller's transaction. Takes the row lock first,
/// so concurrent writers of the same partition serialise here and the loser sees `Moved`.
pub(crate) fn advance(
    client: &mut impl GenericClient,
    group: &str,
    adv: &OffsetAdvance,
) -> Result<Fence> {
    let ctx = || {
        format!(
            "advancing stream_offsets {group}/{} from {} to {}",
            adv.tp, adv.expected, adv.next
        )
    };
    let changed = client
        .execute_typed(
            "UPDATE stream_offsets SET next_offset = $4, updated_at = now() \
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
            &[
                (&group, Type::TEXT),
                (&adv.tp.topic(), Type::TEXT),
                (&adv.tp.partition, Type::INT4),
                (&adv.next, Type::INT8),
                (&adv.expected, Type::INT8),
            ],
        )
        .map_err(|e| Error::from_pg(ctx(), e))?;
    if changed == 1 {
        return Ok(Fence::Advanced);
    }
    let current = load(client, group, adv.tp.topic(), &[adv.tp.partition])?
        .first()
        .and_then(|(_, o)| *o);
    Ok(if current == Some(adv.next) {
        Fence::AlreadyCommitted
    } else {
        Fence::Moved(current)
    })
}

/// What one committed batch held from one partition, added to its row's counters (in
/// the batch's transaction, after [`advance`] locked the row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    pub records: i64,
    pub facts: i64,
    pub dead_letters: i64,
}

/// Add `counts` to the rows of `group`, one statement for the whole batch.
pub(crate) fn count(
    client: &mut impl GenericClient,
    group: &str,
    counts: &std::collections::BTreeMap<TopicPartition, Counted>,
) -> Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = counts.keys().map(TopicPartition::topic).collect();
    let partitions: Vec<i32> = counts.keys().map(|tp| tp.partition).collect();
    let records: Vec<i64> = counts.values().map(|c| c.records).collect();
    let facts: Vec<i64> = counts.values().map(|c| c.facts).collect();
    let dead: Vec<i64> = counts.values().map(|c| c.dead_letters).collect();
    client
        .execute_typed(
            "UPDATE stream_offsets s SET records = s.records + u.r, facts = s.facts + u.f, \
             dead_letters = s.dead_letters + u.d \
             FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[]) \
                  AS u(t, p, r, f, d) \
             WHERE s.consumer_group = $1 AND s.topic = u.t AND s.partition = u.p",
            &[
                (&group, Type::TEXT),
                (&topics, Type::TEXT_ARRAY),
                (&partitions, Type::INT4_ARRAY),
                (&records, Type::INT8_ARRAY),
                (&facts, Type::INT8_ARRAY),
                (&dead, Type::INT8_ARRAY),
            ],
        )
        .map_err(|e| Error::from_pg(format!("counting a batch in stream_offsets of {group}"), e))?;
    Ok(())
}

//! `stream_offsets`: where each (group, topic, partition) resumes, read on assignment and
//! advanced inside the batch transaction with a fence so that two writers can never both
//! commit the same offset range.

use postgres::GenericClient;

use crate::error::{Error, Result};

/// The offset a batch expects to start from, and the one it leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAdvance {
    pub topic: String,
    pub partition: i32,
    /// `next_offset` as this worker last saw it in PostgreSQL; None when there was no row.
    pub expected: Option<i64>,
    pub next: i64,
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

/// Stored next offsets of the given partitions (absent: no row).
pub fn load(
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
    Ok(partitions
        .iter()
        .map(|p| {
            let stored = rows
                .iter()
                .find(|r| r.get::<_, i32>(0) == *p)
                .map(|r| r.get::<_, i64>(1));
            (*p, stored)
        })
        .collect())
}

/// Advance one partition's row inside the caller's transaction. Takes the row lock first,
/// so concurrent writers of the same partition serialise here and the loser sees `Moved`.
pub fn advance(client: &mut impl GenericClient, group: &str, adv: &OffsetAdvance) -> Result<Fence> {
    let ctx = || {
        format!(
            "advancing stream_offsets {group}/{}/{} to {}",
            adv.topic, adv.partition, adv.next
        )
    };
    let changed = match adv.expected {
        Some(expected) => client.execute(
            "UPDATE stream_offsets SET next_offset = $4, updated_at = now() \
             WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
            &[&group, &adv.topic, &adv.partition, &adv.next, &expected],
        ),
        None => client.execute(
            "INSERT INTO stream_offsets (consumer_group, topic, partition, next_offset) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&group, &adv.topic, &adv.partition, &adv.next],
        ),
    }
    .map_err(|e| Error::from_pg(ctx(), e))?;
    if changed == 1 {
        return Ok(Fence::Advanced);
    }
    let current = load(client, group, &adv.topic, &[adv.partition])?
        .first()
        .and_then(|(_, o)| *o);
    Ok(if current == Some(adv.next) {
        Fence::AlreadyCommitted
    } else {
        Fence::Moved(current)
    })
}

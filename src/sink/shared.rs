//! Fact keys shared between the processes of one consumer group. While another process
//! stores keys of ours ([`super::recent::RecentKeys::others_writing`]), each batch
//! publishes the keys it inserted (one `stream_recent_keys` row: the first 8 bytes of each
//! key's digest, in the batch's transaction, so visible exactly when the keys are) and
//! reads the other writers' rows; its lookup before the COPY then covers the keys someone
//! may have stored, not every key of the batch (a 10,000-key lookup costs PostgreSQL as much
//! as the COPY). A hint, never the truth: a key another process stored that is not here
//! (in a batch not committed yet, older than what was read, lost with the unlogged table
//! in a crash) is found by the COPY's unique check, and the batch goes through its lookup
//! rounds (`copy.rs`). Until another writer's row has been read lately, every key is looked
//! up, as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use postgres::types::Type;
use postgres::Transaction;

use crate::bounded::Bounded;
use crate::error::{column, Error, Result};
use crate::transform::Fact;

/// Other writers' key prefixes remembered (two generations of half each; some 8 MB).
const REMEMBERED: usize = 500_000;
/// How far behind the newest row read a read reaches back: a row becomes visible when its
/// batch commits, up to a transaction's duration after its `written_at`.
const SLACK: Duration = Duration::from_secs(30);
/// How long after the last row read from another writer the shared keys are trusted
/// (afterwards every key is looked up again, until another row comes).
const TRUSTED_FOR: Duration = Duration::from_secs(10);
/// Every this many rows published, the writer deletes rows older than ten minutes.
const PRUNE_EVERY: u64 = 64;

pub(super) struct SharedKeys {
    group: String,
    /// this process, among the group's writers
    writer: String,
    theirs: Bounded<u64>,
    read: Mutex<Read>,
    published: AtomicU64,
    started: Instant,
    /// when (ms after `started`, plus one) a row of another writer was last read; 0: never
    last_row: AtomicU64,
}

#[derive(Default)]
struct Read {
    /// rows read within [`SLACK`] of the newest, by id
    seen: HashMap<i64, SystemTime>,
    newest: Option<SystemTime>,
}

/// The 8 bytes of a key's digest that are shared.
fn shared_prefix(fact: &Fact) -> u64 {
    (fact.key_prefix() >> 64) as u64
}

impl SharedKeys {
    pub(super) fn new(group: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        SharedKeys {
            group: group.to_owned(),
            writer: format!("{}-{nanos}", std::process::id()),
            theirs: Bounded::with_shards(REMEMBERED, 1),
            read: Mutex::new(Read::default()),
            published: AtomicU64::new(0),
            started: Instant::now(),
            last_row: AtomicU64::new(0),
        }
    }

    /// Publish the keys `inserted` (in the batch's transaction), and now and then delete
    /// old rows (those another writer is deleting are skipped, never waited for).
    pub(super) fn publish(&self, tx: &mut Transaction<'_>, inserted: &[&Fact]) -> Result<()> {
        if inserted.is_empty() {
            return Ok(());
        }
        let mut prefixes = Vec::with_capacity(inserted.len() * 8);
        for f in inserted {
            prefixes.extend_from_slice(&shared_prefix(f).to_be_bytes());
        }
        let ctx = "publishing the batch's keys (stream_recent_keys)";
        tx.execute_typed(
            "INSERT INTO stream_recent_keys (consumer_group, writer, prefixes) \
             VALUES ($1, $2, $3)",
            &[
                (&self.group, Type::TEXT),
                (&self.writer, Type::TEXT),
                (&prefixes, Type::BYTEA),
            ],
        )
        .map_err(|e| Error::from_pg(ctx, e))?;
        if self.published.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == 0 {
            tx.execute_typed(
                "DELETE FROM stream_recent_keys WHERE id IN (SELECT id FROM stream_recent_keys \
                 WHERE consumer_group = $1 AND written_at < clock_timestamp() - interval '10 minutes' \
                 FOR UPDATE SKIP LOCKED)",
                &[(&self.group, Type::TEXT)],
            )
            .map_err(|e| Error::from_pg("deleting old rows of stream_recent_keys", e))?;
        }
        Ok(())
    }

    /// Read the other writers' rows not read yet. False when none has been read for
    /// [`TRUSTED_FOR`]: then the shared keys say nothing, and every key is looked up.
    pub(super) fn refresh(&self, tx: &mut Transaction<'_>) -> Result<bool> {
        let Ok(mut read) = self.read.try_lock() else {
            // another loader of this process is reading them now
            return Ok(self.trusted());
        };
        let since = read.newest.and_then(|t| t.checked_sub(SLACK));
        let seen: Vec<i64> = read.seen.keys().copied().collect();
        let rows = tx
            .query_typed(
                "SELECT id, written_at, prefixes FROM stream_recent_keys \
                 WHERE consumer_group = $1 AND writer <> $2 \
                   AND written_at > coalesce($3, clock_timestamp() - interval '30 seconds') \
                   AND id <> ALL($4)",
                &[
                    (&self.group, Type::TEXT),
                    (&self.writer, Type::TEXT),
                    (&since, Type::TIMESTAMPTZ),
                    (&seen, Type::INT8_ARRAY),
                ],
            )
            .map_err(|e| Error::from_pg("reading stream_recent_keys", e))?;
        let table = "stream_recent_keys";
        for row in &rows {
            let id: i64 = column(row, 0, table, "id")?;
            let at: SystemTime = column(row, 1, table, "written_at")?;
            let prefixes: Vec<u8> = column(row, 2, table, "prefixes")?;
            self.theirs.insert_all(prefixes.chunks_exact(8).map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                (u64::from_be_bytes(b), ())
            }));
            read.seen.insert(id, at);
            read.newest = read.newest.max(Some(at));
        }
        if !rows.is_empty() {
            let now = self.started.elapsed().as_millis() as u64 + 1;
            self.last_row.store(now, Ordering::Release);
        }
        if let Some(newest) = read.newest {
            read.seen
                .retain(|_, at| at.checked_add(SLACK).is_none_or(|t| t >= newest));
        }
        Ok(self.trusted())
    }

    /// Whether a row of another writer was read within [`TRUSTED_FOR`].
    fn trusted(&self) -> bool {
        let last = self.last_row.load(Ordering::Acquire);
        last > 0
            && (self.started.elapsed().as_millis() as u64 + 1).saturating_sub(last)
                < TRUSTED_FOR.as_millis() as u64
    }

    /// Whether another writer may have stored `fact`'s key (per the rows read).
    pub(super) fn maybe_theirs(&self, fact: &Fact) -> bool {
        self.theirs.contains(&shared_prefix(fact))
    }
}

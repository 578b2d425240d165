//! The PostgreSQL sink: one transaction per batch holding its offsets (fenced), fact rows,
//! dimension rows, report rollups and dead letters; retriable failures are retried with backoff within
//! the configured budget, so a batch is either wholly committed or not at all.

pub mod copy;
pub mod dims;
pub mod fold;
pub mod recent;
pub mod rollup;

use std::sync::Arc;
use std::time::Duration;

use postgres_native_tls::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

use crate::config::Config;
use crate::enrich::Enricher;
use crate::error::{retry, Error, Result};
use crate::metrics::Metrics;
use crate::offsets::{self, Fence};
use crate::pipeline::Prepared;
use crate::topic_partition::TopicPartition;
use crate::transform::Fact;
use dims::{Countries, DimCaches, DimRows};
use recent::RecentKeys;

/// Fact keys remembered as committed (two generations of half each; ~16 MB).
const RECENT_KEYS: usize = 1_000_000;

pub type PgPool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;

/// The TLS connector for `[postgres] sslmode`. As in libpq, `prefer` and `require`
/// encrypt without verifying the server certificate (`disable` never starts TLS).
pub fn tls() -> Result<MakeTlsConnector> {
    let connector = native_tls::TlsConnector::builder()
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true)
        .build()
        .map_err(|e| Error::fatal("setting up TLS for PostgreSQL", e))?;
    Ok(MakeTlsConnector::new(connector))
}

/// Build the connection pool (lazily connecting, so a server that is down is retried).
pub fn pool(cfg: &Config, size: u32) -> Result<PgPool> {
    let manager = PostgresConnectionManager::new(cfg.postgres.pg_config(), tls()?);
    Ok(r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(5))
        .build_unchecked(manager))
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// committed now (or by an earlier attempt whose commit reply was lost)
    Committed(WriteStats),
    /// another owner moved a partition's offset; nothing was written. The listed
    /// partitions resume from the offsets PostgreSQL holds for them (None: no row); the
    /// batch's other partitions resume from where this batch started.
    Fenced(Vec<(TopicPartition, Option<i64>)>),
}

/// Rows one batch added, per table (dimension rows that already existed do not count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub facts: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    pub dim_dates: u64,
    pub dim_products: u64,
    pub dim_locations: u64,
    pub dim_agents: u64,
    pub attempts: u32,
}

pub struct Sink {
    pool: PgPool,
    group: String,
    enricher: Arc<Enricher>,
    caches: DimCaches,
    recent: RecentKeys,
    retry_budget: Duration,
    metrics: Arc<Metrics>,
}

impl Sink {
    pub fn new(
        pool: PgPool,
        group: String,
        enricher: Arc<Enricher>,
        retry_budget: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Sink {
            pool,
            group,
            enricher,
            caches: DimCaches::new(200_000),
            recent: RecentKeys::new(RECENT_KEYS),
            retry_budget,
            metrics,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The dimension rows of `batch` not yet known to be committed, enriched (on the
    /// current rayon pool). Computed before [`Sink::write`], off the writer's critical path;
    /// rows a batch still in flight writes too are harmless (`ON CONFLICT DO NOTHING`).
    pub fn dims(&self, batch: &Prepared) -> DimRows {
        DimRows::collect(&batch.facts, &self.caches, &self.enricher)
    }

    /// Write one prepared batch and its dimension rows in one transaction, retrying
    /// retriable failures.
    pub fn write(&self, batch: &Prepared, dims: &DimRows) -> Result<Outcome> {
        let mut attempts = 0;
        let (outcome, countries) = retry(
            "PostgreSQL write",
            self.retry_budget,
            |n| {
                attempts = n;
                self.attempt(batch, dims)
            },
            |_| self.metrics.write_failed(),
        )?;
        Ok(match outcome {
            Outcome::Committed(mut stats) => {
                dims.remember(&self.caches);
                if let Some(countries) = countries {
                    self.caches.remember_countries(&countries);
                }
                self.recent
                    .insert_all(batch.facts.iter().map(Fact::sales_key));
                stats.attempts = attempts;
                if attempts > 1 {
                    log::info!("batch committed after {attempts} attempts");
                }
                Outcome::Committed(stats)
            }
            fenced => fenced,
        })
    }

    /// Move one partition's stored offset on its own (an out-of-range skip), fenced like
    /// a batch: `Moved` when another owner got there first.
    pub fn move_offset(&self, adv: &crate::offsets::OffsetAdvance) -> Result<Fence> {
        retry(
            "moving a stored offset",
            self.retry_budget,
            |_| {
                let mut conn = self
                    .pool
                    .get()
                    .map_err(|e| Error::from_pool("connecting to PostgreSQL", e))?;
                let mut tx = conn
                    .transaction()
                    .map_err(|e| Error::from_pg("beginning an offset move", e))?;
                let fence = offsets::advance(&mut tx, &self.group, adv)?;
                tx.commit()
                    .map_err(|e| Error::from_pg("committing an offset move", e))?;
                Ok(fence)
            },
            |_| self.metrics.write_failed(),
        )
    }

    /// One try. Committed: with the countries the rollups used.
    fn attempt<'a>(
        &self,
        batch: &'a Prepared,
        dims: &'a DimRows,
    ) -> Result<(Outcome, Option<Countries<'a>>)> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| Error::from_pool("connecting to PostgreSQL", e))?;
        let mut tx = conn
            .transaction()
            .map_err(|e| Error::from_pg("beginning the batch transaction", e))?;
        tx.batch_execute(rollup::BY_WRITER)
            .map_err(|e| Error::from_pg("beginning the batch transaction", e))?;

        // Offsets first: the row locks serialise writers of the same partition.
        let mut moved = Vec::new();
        let mut already = Vec::new();
        for adv in &batch.offsets {
            match offsets::advance(&mut tx, &self.group, adv)? {
                Fence::Advanced => {}
                Fence::AlreadyCommitted => already.push(adv),
                Fence::Moved(now) => moved.push((adv.tp.clone(), now)),
            }
        }
        if moved.is_empty() && !already.is_empty() && already.len() == batch.offsets.len() {
            // A lost commit reply: the whole batch is in already.
            return Ok((Outcome::Committed(WriteStats::default()), None));
        }
        if !moved.is_empty() || !already.is_empty() {
            // Only what this transaction did not change itself is reported: the rows of
            // the other partitions were updated by us and are rolled back with `tx`. A row
            // found at this batch's own end while others were not is someone else's move.
            moved.extend(already.iter().map(|adv| (adv.tp.clone(), Some(adv.next))));
            return Ok((Outcome::Fenced(moved), None)); // dropping `tx` rolls back
        }

        // Facts first, then what other partitions' loaders may wait for (new dimension
        // rows, changed products), so that is held only until the commit. Other sessions
        // see none of it before the commit, so the order within is free. The rollup counts
        // last: they are appended to the pending tables, which no one waits on.
        let inserted = copy::write_facts(&mut tx, &batch.facts, &self.recent)?;
        copy::write_dead_letters(&mut tx, &batch.dead)?;
        let added = dims.write(&mut tx)?;
        dims.improve_products(&mut tx)?;
        let countries = dims.countries(&mut tx, &inserted, &added, &self.caches)?;
        rollup::add(&mut tx, &inserted, &countries)?;
        let facts = inserted.len() as u64;
        tx.commit()
            .map_err(|e| Error::from_pg("committing the batch transaction", e))?;
        let stats = WriteStats {
            facts,
            duplicates: batch.facts.len() as u64 - facts + batch.in_batch_duplicates as u64,
            dead_letters: batch.dead.len() as u64,
            dim_dates: added.rows[0],
            dim_products: added.rows[1],
            dim_locations: added.rows[2],
            dim_agents: added.rows[3],
            attempts: 0,
        };
        Ok((Outcome::Committed(stats), Some(countries)))
    }
}

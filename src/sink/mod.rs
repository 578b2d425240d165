//! The PostgreSQL sink: one transaction per batch holding its offsets (fenced), fact rows,
//! dimension rows, report rollups and dead letters; retriable failures are retried with backoff within
//! the configured budget, so a batch is either wholly committed or not at all. Rows PostgreSQL
//! refuses for a data reason (SQLSTATE class 22, 23, 54) are isolated by bisecting the
//! batch in savepoints and become dead letters; the rest commits in the same transaction.

mod copy;
pub(crate) mod dims;
pub mod fold;
mod in_flight;
pub mod pool;
mod recent;
mod rollup;
mod shared;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use crate::enrich::Enricher;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::error::{retry, Error, Result};
use crate::hash::Map;
use crate::metrics::Metrics;
use crate::offsets::{self, Fence};
use crate::pipeline::{DeadLetter, Prepared};
use crate::topic_partition::TopicPartition;
use crate::transform::{DeadReason, Fact, Rejection};
use dims::{Added, Country, DimCaches, DimRows};
use in_flight::InFlight;
use recent::RecentKeys;

pub(crate) use copy::check_copied_columns;
pub(crate) use in_flight::Claim;
pub use pool::{pool, PgConn, PgPool};

/// Fact keys remembered as committed (two generations of half each; ~16 MB).
const RECENT_KEYS: usize = 1_000_000;

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
    /// keys other processes of the group committed lately, see [`shared`]
    shared: shared::SharedKeys,
    /// keys of the batches being written now, see [`in_flight`]
    in_flight: Arc<InFlight>,
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
            shared: shared::SharedKeys::new(&group),
            group,
            enricher,
            caches: DimCaches::new(200_000),
            recent: RecentKeys::new(RECENT_KEYS),
            in_flight: Arc::new(InFlight::default()),
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

    /// Whether another writer stored keys of ours lately (see `recent.rs`): batch mode
    /// does not pipeline its micro-batches then (a pipelined batch may have to let its
    /// keys go and COPY them again, see [`Sink::write_after`]).
    pub fn others_writing(&self) -> bool {
        self.recent.others_writing()
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
        self.write_after(batch, dims, None, None)
    }

    /// Claim a batch's fact keys ahead of its write (see `in_flight`): batch mode claims
    /// its micro-batches in order, on its loop thread.
    pub(crate) fn claim(&self, batch: &Prepared) -> Claim {
        self.in_flight.claim(&batch.facts)
    }

    /// [`Sink::write`], pipelined behind a batch still being written (batch mode's next
    /// micro-batch, whose offsets continue the prior's): `prior` disconnects once the
    /// prior batch's write has ended. This batch COPYs its facts meanwhile, then waits,
    /// then moves its offsets (fenced unless the prior committed) and writes the rest.
    /// Until the wait it holds only its new fact keys (none of the prior's: they are held
    /// elsewhere, see `in_flight`), pending counts and dead letters, none of which the
    /// prior can wait for; so the prior never waits for it. Another process may, though,
    /// while the prior waits for that process: so this batch waits at most
    /// [`PRIOR_WAIT`] holding its keys, then lets them go and writes them after the wait.
    /// `claim`: the batch's keys, claimed ahead ([`Sink::claim`]; None: claimed now).
    pub(crate) fn write_after(
        &self,
        batch: &Prepared,
        dims: &DimRows,
        prior: Option<&Receiver<()>>,
        claim: Option<Claim>,
    ) -> Result<Outcome> {
        let mut attempts = 0;
        // Held until the outcome is known and, on commit, the keys are in `recent`.
        let mut claim = claim.unwrap_or_else(|| self.claim(batch));
        let (outcome, isolated, learned) = retry(
            "PostgreSQL write",
            self.retry_budget,
            |n| {
                attempts = n;
                self.attempt(batch, dims, &claim, prior)
            },
            |_| self.metrics.write_failed(),
        )?;
        Ok(match outcome {
            Outcome::Committed(mut stats) => {
                self.caches
                    .remember_countries(learned.epoch, &learned.countries);
                match isolated {
                    None => {
                        dims.remember(&self.caches);
                        self.recent
                            .insert_all(batch.facts.iter().map(Fact::key_prefix));
                    }
                    Some(iso) => {
                        for d in &iso.dims {
                            d.remember(&self.caches);
                        }
                        self.recent
                            .insert_all(iso.facts.iter().map(|f| f.key_prefix()));
                        for _ in &iso.refused {
                            self.metrics.add_dead_letter(DeadReason::Rejected.code());
                        }
                    }
                }
                claim.committed();
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
                let mut conn = self.pool.get("connecting to PostgreSQL")?;
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

    /// One try. Committed: with what the isolation of refused rows wrote, if it ran.
    fn attempt<'a>(
        &self,
        batch: &'a Prepared,
        dims: &'a DimRows,
        claim: &Claim,
        prior: Option<&Receiver<()>>,
    ) -> Result<Tried<'a>> {
        if prior.is_some() || claim.unresolved() {
            if let Some(tried) = self.transaction(batch, dims, claim, prior)? {
                return Ok(tried);
            }
            // The batch before (or a holder of keys left to it) was slow: this one's
            // transaction ended, so no one waits for its keys any more; they first, then
            // this one on its own.
            log::debug!("a batch before took over {PRIOR_WAIT:?}; writing after it");
            if let Some(prior) = prior {
                let _ = prior.recv();
            }
            while !claim.wait(Some(HOLDER_WARN)) {
                log::warn!(
                    "a batch has waited over {HOLDER_WARN:?} for the batches of this process \
                     holding some of its keys (PostgreSQL slow or away?)"
                );
            }
        }
        self.transaction(batch, dims, claim, None)?
            .ok_or_else(|| Error::fatal("writing a batch", "unpipelined write gave way"))
    }

    /// One transaction. None: pipelined behind `prior`, or waiting for the holder of a
    /// key left to it (see `in_flight`), which took over [`PRIOR_WAIT`] (rolled back:
    /// PostgreSQL lets another process waiting for one of this batch's keys go only when
    /// the whole transaction ends, not at a savepoint).
    fn transaction<'a>(
        &self,
        batch: &'a Prepared,
        dims: &'a DimRows,
        claim: &Claim,
        prior: Option<&Receiver<()>>,
    ) -> Result<Option<Tried<'a>>> {
        let mut conn = self.pool.get("connecting to PostgreSQL")?;
        let mut tx = conn
            .transaction()
            .map_err(|e| Error::from_pg("beginning the batch transaction", e))?;
        let epoch = rollup::begin(&mut tx)?;
        self.caches.saw_location_epoch(epoch);
        let mut learned = Learned {
            epoch,
            countries: Map::default(),
        };

        // Offsets first: the row locks serialise writers of the same partition.
        // (Pipelined, or waiting for holders: after the wait, below.)
        let waits = prior.is_some() || claim.unresolved();
        let held = claim.held();
        if !waits {
            if let Some(out) = self.advance(&mut tx, batch)? {
                return Ok(Some((out, None, learned))); // dropping `tx` rolls back
            }
        }

        // The transform's dead letters, then the rows under a savepoint: should PostgreSQL
        // refuse one of them for a data reason, the batch's rows are written again in
        // halves (bisected) until each refused fact stands alone, and those become dead
        // letters; offsets, good rows and all dead letters still commit together.
        copy::write_dead_letters(&mut tx, &batch.dead)?;
        savepoint(&mut tx, "SAVEPOINT batch_rows")?;
        let whole = if !waits {
            self.write_rows(&mut tx, &batch.facts, dims, &held, epoch)
        } else {
            let copied = match self.copy_rows(&mut tx, &batch.facts, &held) {
                Err(e) if !e.is_data_error() => return Err(e),
                copied => copied,
            };
            if copied.is_err() {
                // refused for a data reason: isolated below, once the offsets moved
                savepoint(&mut tx, "ROLLBACK TO SAVEPOINT batch_rows")?;
            }
            // `prior` disconnects once the prior batch's transaction has ended either
            // way; the holders' outcomes are known when they end. Bounded while this one
            // holds its new keys: a batch waited for may be waiting for another process
            // that waits for one of them, a cycle PostgreSQL cannot see. Past the bound
            // this transaction ends (see `attempt`).
            if let Some(prior) = prior {
                if let Err(RecvTimeoutError::Timeout) = prior.recv_timeout(PRIOR_WAIT) {
                    return Ok(None); // dropping `tx` rolls back
                }
            }
            if !claim.wait(Some(PRIOR_WAIT)) {
                return Ok(None); // dropping `tx` rolls back
            }
            if let Some(out) = self.advance(&mut tx, batch)? {
                return Ok(Some((out, None, learned))); // dropping `tx` rolls back
            }
            // Keys whose holders did not commit are this batch's to write now.
            let now = claim.held();
            let passed: in_flight::Held = held.difference(&now).copied().collect();
            let copied = if passed.is_empty() {
                copied
            } else {
                copied.and_then(|c| self.copy_passed(&mut tx, batch, &passed, c))
            };
            copied.and_then(|c| self.finish_rows(&mut tx, c, dims, epoch))
        };
        let (facts, added, isolated) = match whole {
            Ok((inserted, added)) => {
                savepoint(&mut tx, "RELEASE SAVEPOINT batch_rows")?;
                offsets::count(&mut tx, &self.group, &counted(batch, &inserted, &[]))?;
                learned.countries = added.countries;
                (inserted.len() as u64, added.rows, None)
            }
            Err(e) if e.is_data_error() => {
                log::warn!(
                    "PostgreSQL refused a row of a batch of {} facts ({e}); isolating the \
                     refused messages",
                    batch.facts.len()
                );
                savepoint(&mut tx, "ROLLBACK TO SAVEPOINT batch_rows")?;
                savepoint(&mut tx, "RELEASE SAVEPOINT batch_rows")?;
                if waits {
                    // Pipelined (or after a wait), the offsets moved under the savepoint and
                    // were rolled back with it: again, outside it (fenced if moved
                    // meanwhile).
                    if let Some(out) = self.advance(&mut tx, batch)? {
                        return Ok(Some((out, None, learned))); // dropping `tx` rolls back
                    }
                }
                let mut iso = Isolated::default();
                let held = claim.held();
                self.isolate(&mut tx, &batch.facts, 0, &mut iso, &held, epoch)?;
                learned.countries = std::mem::take(&mut iso.countries);
                let refused: Vec<DeadLetter> = iso
                    .refused
                    .iter()
                    .filter_map(|(i, e)| refused_letter(batch, *i, e))
                    .collect();
                for d in &refused {
                    log::warn!(
                        "{} offset {}: dead letter: {}",
                        d.tp,
                        d.offset,
                        d.rejection.text()
                    );
                }
                copy::write_dead_letters(&mut tx, &refused)?;
                offsets::count(&mut tx, &self.group, &counted(batch, &iso.facts, &refused))?;
                (iso.facts.len() as u64, iso.added, Some(iso))
            }
            Err(e) => return Err(e),
        };
        #[cfg(debug_assertions)]
        if fence_for_tests(claim) {
            return Ok(Some((Outcome::Fenced(Vec::new()), None, learned))); // rolls back
        }
        tx.commit()
            .map_err(|e| Error::from_pg("committing the batch transaction", e))?;
        let refused = isolated.as_ref().map_or(0, |i| i.refused.len()) as u64;
        let stats = WriteStats {
            facts,
            duplicates: batch.facts.len() as u64 - refused - facts
                + batch.in_batch_duplicates as u64,
            dead_letters: batch.dead.len() as u64 + refused,
            dim_dates: added[0],
            dim_products: added[1],
            dim_locations: added[2],
            dim_agents: added[3],
            attempts: 0,
        };
        Ok(Some((Outcome::Committed(stats), isolated, learned)))
    }

    /// Facts first (fact_sales' trigger counts them in the pending rollup tables, which
    /// no one waits on), then what other partitions' loaders may wait for (new dimension
    /// rows, changed products), so that is held only until the commit. Other sessions see
    /// none of it before the commit, so the order within is free. Returns the facts that
    /// were new and the dimension rows added.
    fn write_rows<'f>(
        &self,
        tx: &mut postgres::Transaction<'_>,
        facts: &'f [Fact],
        dims: &DimRows,
        held: &in_flight::Held,
        epoch: i64,
    ) -> Result<(Vec<&'f Fact>, Added)> {
        let copied = self.copy_rows(tx, facts, held)?;
        self.finish_rows(tx, copied, dims, epoch)
    }

    /// The facts new to fact_sales (see [`Sink::write_rows`]), with their rollup counts.
    fn copy_rows<'f>(
        &self,
        tx: &mut postgres::Transaction<'_>,
        facts: &'f [Fact],
        held: &in_flight::Held,
    ) -> Result<Copied<'f>> {
        let (inserted, staged, pending) = copy::write_facts(
            tx,
            facts,
            (&self.recent, &self.shared),
            held,
            rollup::Pending::of,
        )?;
        if staged {
            self.metrics.staging.inc();
        }
        // counted beside the COPY, unless the staging path changed what was inserted
        let pending = pending.unwrap_or_else(|| rollup::Pending::of(&inserted));
        Ok(Copied { inserted, pending })
    }

    /// The facts of the keys `passed` to this batch by holders that did not commit,
    /// written after the others, and counted with them.
    fn copy_passed<'f>(
        &self,
        tx: &mut postgres::Transaction<'_>,
        batch: &'f Prepared,
        passed: &in_flight::Held,
        copied: Copied<'f>,
    ) -> Result<Copied<'f>> {
        let skip: in_flight::Held = batch
            .facts
            .iter()
            .map(Fact::key_prefix)
            .filter(|k| !passed.contains(k))
            .collect();
        let more = self.copy_rows(tx, &batch.facts, &skip)?;
        log::debug!(
            "{} facts of keys whose holders did not commit written by this batch",
            more.inserted.len()
        );
        let mut inserted = copied.inserted;
        inserted.extend(more.inserted);
        let pending = rollup::Pending::of(&inserted);
        Ok(Copied { inserted, pending })
    }

    /// After the facts: the dimension rows, the rollup counts, the product URLs.
    fn finish_rows<'f>(
        &self,
        tx: &mut postgres::Transaction<'_>,
        copied: Copied<'f>,
        dims: &DimRows,
        epoch: i64,
    ) -> Result<(Vec<&'f Fact>, Added)> {
        let added = dims.write(tx, &self.caches)?;
        copied
            .pending
            .append(tx, epoch, &self.caches, &added.countries)?;
        dims.improve_products(tx)?;
        Ok((copied.inserted, added))
    }

    /// Move the batch's offsets (fenced: the outcome to return, the transaction to be
    /// rolled back).
    fn advance(
        &self,
        tx: &mut postgres::Transaction<'_>,
        batch: &Prepared,
    ) -> Result<Option<Outcome>> {
        let mut moved = Vec::new();
        let mut already = Vec::new();
        for adv in &batch.offsets {
            match offsets::advance(tx, &self.group, adv)? {
                Fence::Advanced => {}
                Fence::AlreadyCommitted => already.push(adv),
                Fence::Moved(now) => moved.push((adv.tp.clone(), now)),
            }
        }
        if moved.is_empty() && !already.is_empty() && already.len() == batch.offsets.len() {
            // A lost commit reply: the whole batch is in already.
            return Ok(Some(Outcome::Committed(WriteStats::default())));
        }
        if !moved.is_empty() || !already.is_empty() {
            // Only what this transaction did not change itself is reported: the rows of
            // the other partitions were updated by us and are rolled back with `tx`. A row
            // found at this batch's own end while others were not is someone else's move.
            moved.extend(already.iter().map(|adv| (adv.tp.clone(), Some(adv.next))));
            return Ok(Some(Outcome::Fenced(moved)));
        }
        Ok(None)
    }

    /// Write `facts` (batch indexes from `base`) with their own dimension rows under a
    /// savepoint; when PostgreSQL refuses them for a data reason, roll back and do each
    /// half the same way, down to single facts, which are recorded as refused.
    fn isolate<'a>(
        &self,
        tx: &mut postgres::Transaction<'_>,
        facts: &'a [Fact],
        base: usize,
        iso: &mut Isolated<'a>,
        held: &in_flight::Held,
        epoch: i64,
    ) -> Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        let dims = DimRows::collect(facts, &self.caches, &self.enricher);
        savepoint(tx, "SAVEPOINT isolate")?;
        match self.write_rows(tx, facts, &dims, held, epoch) {
            Ok((inserted, added)) => {
                savepoint(tx, "RELEASE SAVEPOINT isolate")?;
                iso.facts.extend(inserted);
                iso.countries.extend(added.countries);
                for (sum, n) in iso.added.iter_mut().zip(added.rows) {
                    *sum += n;
                }
                iso.dims.push(dims);
                Ok(())
            }
            Err(e) if e.is_data_error() => {
                savepoint(tx, "ROLLBACK TO SAVEPOINT isolate")?;
                savepoint(tx, "RELEASE SAVEPOINT isolate")?;
                if facts.len() == 1 {
                    iso.refused.push((base, e));
                    return Ok(());
                }
                let mid = facts.len() / 2;
                self.isolate(tx, &facts[..mid], base, iso, held, epoch)?;
                self.isolate(tx, &facts[mid..], base + mid, iso, held, epoch)
            }
            Err(e) => Err(e),
        }
    }
}

/// What the isolation of refused rows wrote: the facts that were new, the dimension rows
/// added (date, product, location, agent) and written (to remember after the commit), and
/// the refused facts (batch index, PostgreSQL's refusal).
/// Per partition, what `batch` adds to the counters of `stream_offsets`: its records,
/// the facts of `inserted` that came from it, its dead letters (the transform's and
/// those PostgreSQL `refused`).
fn counted(
    batch: &Prepared,
    inserted: &[&Fact],
    refused: &[DeadLetter],
) -> std::collections::BTreeMap<TopicPartition, offsets::Counted> {
    let mut counts: Vec<(&TopicPartition, offsets::Counted)> = batch
        .offsets
        .iter()
        .map(|adv| {
            let c = offsets::Counted {
                records: adv.records as i64,
                ..Default::default()
            };
            (&adv.tp, c)
        })
        .collect();
    // A batch holds a few partitions: found by a scan, the partition number first.
    fn slot<'c>(
        counts: &'c mut [(&TopicPartition, offsets::Counted)],
        tp: &TopicPartition,
    ) -> Option<&'c mut offsets::Counted> {
        counts
            .iter_mut()
            .find(|(t, _)| t.partition == tp.partition && *t == tp)
            .map(|(_, c)| c)
    }
    // `inserted` borrows from `batch.facts`: a fact is new when its address is there.
    let new: crate::hash::Set<*const Fact> =
        inserted.iter().map(|f| std::ptr::from_ref(*f)).collect();
    for (fact, origin) in batch.facts.iter().zip(&batch.origins) {
        if new.contains(&std::ptr::from_ref(fact)) {
            if let Some(c) = slot(&mut counts, &origin.tp) {
                c.facts += 1;
            }
        }
    }
    for d in batch.dead.iter().chain(refused) {
        if let Some(c) = slot(&mut counts, &d.tp) {
            c.dead_letters += 1;
        }
    }
    counts.into_iter().map(|(tp, c)| (tp.clone(), c)).collect()
}

#[derive(Default)]
struct Isolated<'a> {
    facts: Vec<&'a Fact>,
    added: [u64; 4],
    dims: Vec<DimRows>,
    /// the committed countries of the location rows written
    countries: Map<u128, Country>,
    refused: Vec<(usize, Error)>,
}

/// How long a pipelined batch waits for the one before while holding its new fact keys
/// (see [`Sink::write_after`]); that one's remaining statements take tens of ms.
const PRIOR_WAIT: Duration = Duration::from_millis(500);

/// Test builds only: with `STREAMER_TEST_FENCE_WAITED_FOR=n`, up to `n` batches that
/// other open batches wait for are rolled back at their commit and reported fenced (their
/// messages are read again), as when another owner moved their offsets; those waiting then
/// write the keys themselves (test: `modes::holders_that_fail_pass_their_keys_on`).
#[cfg(debug_assertions)]
fn fence_for_tests(claim: &Claim) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static FENCED: AtomicU64 = AtomicU64::new(0);
    let Some(n) = std::env::var("STREAMER_TEST_FENCE_WAITED_FOR")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return false;
    };
    if !claim.waited_for() || FENCED.fetch_add(1, Ordering::Relaxed) >= n {
        return false;
    }
    log::info!("test hook: a batch other batches wait for is rolled back as if fenced");
    true
}

/// How long a batch waits for the holders of keys it left to them before it warns (it
/// waits on: they are retrying PostgreSQL within the retry budget).
const HOLDER_WARN: Duration = Duration::from_secs(30);

/// A batch's facts as COPYed: those new to fact_sales, and their rollup counts.
struct Copied<'f> {
    inserted: Vec<&'f Fact>,
    pending: rollup::Pending<'f>,
}

/// A committed or fenced try: its outcome, what the isolation of refused rows wrote (if
/// it ran), what it learnt of dim_location.
type Tried<'a> = (Outcome, Option<Isolated<'a>>, Learned);

/// What a batch's transaction learnt of dim_location: the epoch it read and the committed
/// countries of the rows it wrote (cached once it commits).
struct Learned {
    epoch: i64,
    countries: Map<u128, Country>,
}

fn savepoint(tx: &mut postgres::Transaction<'_>, sql: &str) -> Result<()> {
    tx.batch_execute(sql)
        .map_err(|e| Error::from_pg("isolating refused rows", e))
}

/// The dead letter of fact `index` of `batch`, which PostgreSQL refused with `err`.
fn refused_letter(batch: &Prepared, index: usize, err: &Error) -> Option<DeadLetter> {
    let origin = batch.origins.get(index)?;
    Some(DeadLetter {
        tp: origin.tp.clone(),
        offset: origin.offset,
        rejection: Rejection {
            reason: DeadReason::Rejected,
            detail: err.to_string(),
        },
        payload: origin.payload.clone(),
    })
}

//! The committer: what a written batch's outcome does to the partitions it covered, for
//! both modes. Committed: their readers advance, the Kafka group is told (for lag tools)
//! and the batch is counted. Fenced: a partition another owner moved resumes from what
//! PostgreSQL holds for it; the batch's other partitions resume from where the batch
//! started, since their messages were rolled back with it.

use crate::config::Mode;
use crate::error::Result;
use crate::sink::Outcome;
use crate::source::{PartitionReader, Source};
use crate::topic_partition::TopicPartition;

use super::{Ready, Run, Written};

impl Run {
    /// Act on a written batch; returns whether it was committed. Readers not in `readers`
    /// (revoked meanwhile) are neither seeked nor committed to the Kafka group.
    pub(crate) fn settle(
        &self,
        source: &Source,
        readers: &mut [&mut PartitionReader],
        written: Written,
    ) -> Result<bool> {
        let Written { ready, outcome } = written;
        let stats = match outcome {
            Outcome::Committed(w) => w,
            Outcome::Fenced(moved) => {
                self.fenced(source, readers, &ready, &moved)?;
                return Ok(false);
            }
        };
        let mut group = Vec::with_capacity(ready.prepared.offsets.len());
        for adv in &ready.prepared.offsets {
            if let Some(r) = readers.iter_mut().find(|r| r.tp == adv.tp) {
                r.committed(adv.next);
                group.push((adv.tp.clone(), adv.next));
            }
        }
        source.commit_group_offsets(&group);
        self.count(&ready, &stats, &group);
        Ok(true)
    }

    fn fenced(
        &self,
        source: &Source,
        readers: &mut [&mut PartitionReader],
        ready: &Ready,
        moved: &[(TopicPartition, Option<i64>)],
    ) -> Result<()> {
        for adv in &ready.prepared.offsets {
            let Some(r) = readers.iter_mut().find(|r| r.tp == adv.tp) else {
                continue;
            };
            let next = match moved.iter().find(|(tp, _)| *tp == adv.tp) {
                Some((tp, now)) => {
                    log::warn!(
                        "{tp}: stream_offsets moved by another owner (expected {}, now {}); \
                         batch rolled back, resuming from there",
                        adv.expected,
                        now.map_or("no row".to_string(), |n| n.to_string())
                    );
                    match now {
                        Some(n) => *n,
                        None => self.load_offsets(source, std::slice::from_ref(tp))?[0].1,
                    }
                }
                // Not moved: its messages went with the rolled-back batch; read them again.
                None => r.next,
            };
            source.seek(r, next)?;
        }
        Ok(())
    }

    fn count(&self, ready: &Ready, w: &crate::sink::WriteStats, group: &[(TopicPartition, i64)]) {
        let m = &self.metrics;
        let prepared = &ready.prepared;
        let n = prepared.messages;
        m.committed(group);
        m.messages.inc_by(n as u64);
        m.batches.inc();
        m.batch_seconds
            .observe(ready.started.elapsed().as_secs_f64());
        m.transform_seconds.inc_by(ready.transformed.as_secs_f64());
        m.load_seconds
            .inc_by((ready.started.elapsed() - ready.transformed).as_secs_f64());
        m.add_rows("fact_sales", w.facts);
        m.add_rows("dim_date", w.dim_dates);
        m.add_rows("dim_product", w.dim_products);
        m.add_rows("dim_location", w.dim_locations);
        m.add_rows("dim_user_agent", w.dim_agents);
        m.add_rows("dead_letter", w.dead_letters);
        m.duplicates.inc_by(w.duplicates);
        if w.dead_letters > 0 {
            for d in &prepared.dead {
                m.add_dead_letter(d.rejection.reason.code());
            }
        }
        let line = format!(
            "batch {}: {n} messages, {} facts, {} duplicates, {} dead letters, \
             dims {}/{}/{}/{} (date/product/location/agent), transform {} ms, total {} ms",
            m.batches.get(),
            w.facts,
            w.duplicates,
            w.dead_letters,
            w.dim_dates,
            w.dim_products,
            w.dim_locations,
            w.dim_agents,
            ready.transformed.as_millis(),
            ready.started.elapsed().as_millis()
        );
        if self.cfg.pipeline.mode == Mode::Batch {
            log::info!("{line}");
        } else {
            log::debug!("{line}");
        }
    }
}

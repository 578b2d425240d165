//! A stored offset that the log no longer holds (retention, deleted records, a recreated
//! topic). Never skipped silently: `[pipeline] on_offset_out_of_range = fail` (the
//! default) stops with an error naming topic, partition, offset and the log's range;
//! `earliest` or `latest` move the partition there, in PostgreSQL first (fenced), log the
//! skip at error level with the count of offsets skipped, and count it in a metric.

use crate::config::OutOfRange;
use crate::error::{retry, Error, Result};
use crate::offsets::{Fence, OffsetAdvance};
use crate::source::{PartitionReader, Source};

use super::Run;

impl Run {
    /// Called by a mode once the batch holding `reader`'s messages below the missing
    /// offset has been committed (or dropped) and nothing of it is in flight.
    pub(crate) fn out_of_range(
        &self,
        source: &Source,
        reader: &mut PartitionReader,
        what: &str,
    ) -> Result<()> {
        let tp = reader.tp.clone();
        let (low, high) = retry(
            "reading a partition's offsets",
            self.cfg.pipeline.retry_budget,
            |_| source.watermarks(&tp),
            |_| {},
        )?;
        let from = reader.next;
        let to = match self.cfg.pipeline.on_offset_out_of_range {
            OutOfRange::Fail => {
                return Err(Error::fatal(
                    format!("{tp}"),
                    format!(
                        "stored offset {from} is no longer in the log (log start {low}, end \
                         {high}; librdkafka: {what}); nothing was skipped. Set [pipeline] \
                         on_offset_out_of_range = earliest or latest to go on from there"
                    ),
                ))
            }
            OutOfRange::Earliest => low,
            OutOfRange::Latest => high,
        };
        let skipped = (to - from).max(0);
        log::error!(
            "{tp}: stored offset {from} is no longer in the log (log start {low}, end {high}); \
             going on from offset {to} as [pipeline] on_offset_out_of_range says: \
             {skipped} offsets skipped"
        );
        let adv = OffsetAdvance {
            tp: tp.clone(),
            expected: from,
            next: to,
            records: 0,
        };
        let next = match self.sink.move_offset(&adv)? {
            Fence::Advanced | Fence::AlreadyCommitted => {
                self.metrics.offsets_skipped(&tp, skipped as u64);
                to
            }
            Fence::Moved(now) => {
                log::warn!("{tp}: stream_offsets moved by another owner meanwhile; resuming there");
                match now {
                    Some(n) => n,
                    None => self.load_offsets(source, std::slice::from_ref(&tp))?[0].1,
                }
            }
        };
        source.restart_at(reader, next)
    }
}

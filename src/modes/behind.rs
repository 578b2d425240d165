//! A partition's writes behind one another (partition mode): a batch is written on a thread
//! of its own while the partition's next batch is read and transformed, when the
//! partition's share of `buffer_max_bytes` holds both. Promises what a synchronous write
//! does: batches commit one at a time, in offset order (the next one moves the offsets
//! only once this one's write has ended, see `Sink::write_after`); a batch read past a
//! fence is dropped and read again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use super::budget::Share;
use super::{Run, Written};
use crate::error::{Error, Result};
use crate::pipeline::Msg;
use crate::source::{PartitionReader, Source};

/// A batch whose transaction runs on its own thread.
struct InFlight {
    /// the partition's next offset once it commits
    next: i64,
    /// its messages' payload bytes
    bytes: usize,
    handle: JoinHandle<Result<Written>>,
    /// disconnects when the write has ended (its thread drops the sender)
    ended: Receiver<()>,
}

/// The batch a partition's worker has in flight, if any.
#[derive(Default)]
pub(super) struct Behind {
    writing: Option<InFlight>,
}

impl Behind {
    /// Nothing in flight.
    pub(super) fn idle(&self) -> bool {
        self.writing.is_none()
    }

    /// Payload bytes of the batch in flight.
    pub(super) fn bytes(&self) -> usize {
        self.writing.as_ref().map_or(0, |w| w.bytes)
    }

    /// Transform and write `msgs`: behind the batch in flight when `share` holds two
    /// batches of this size (with one partition, or a few: with four or more, the other
    /// partitions' phases overlap a batch's read, transform and write already) and no
    /// other process writes our keys; else after it, here.
    pub(super) fn write(
        &mut self,
        run: &Arc<Run>,
        source: &Source,
        reader: &mut PartitionReader,
        owned: &AtomicBool,
        msgs: Vec<Msg>,
        share: &Share<'_>,
    ) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let bytes: usize = msgs.iter().map(Msg::size).sum();
        let behind =
            !share.reached(bytes.max(self.bytes()).saturating_mul(2)) && !run.sink.others_writing();
        if !behind {
            if !self.settle(run, source, reader, owned)? {
                return Ok(()); // read past a fence: dropped, read again
            }
            return run.flush(source, &mut [reader], msgs, owned);
        }
        let expected = self.writing.as_ref().map_or(reader.next, |w| w.next);
        if self.writing.is_some() {
            log::debug!(
                "{}: a batch from {expected} written behind the one in flight",
                reader.tp
            );
        }
        let ready = run.prepare(msgs, |_| expected);
        let next = ready.prepared.offsets.first().map_or(expected, |a| a.next);
        let prior = self.writing.as_ref().map(|w| w.ended.clone());
        let (ends, ended) = crossbeam_channel::bounded::<()>(0);
        // claimed here, in offset order (see `sink::in_flight`)
        let claim = run.sink.claim(&ready.prepared);
        let writer = run.clone();
        let handle = std::thread::Builder::new()
            .name("partition-writer".into())
            .spawn(move || {
                let _ends = ends; // dropped when the write has ended, however it ended
                #[cfg(debug_assertions)]
                super::batch::late_writer_for_tests();
                writer.write_after(ready, prior, Some(claim))
            })
            .map_err(|e| Error::fatal(format!("starting the writer of {}", reader.tp), e))?;
        let this = InFlight {
            next,
            bytes,
            handle,
            ended,
        };
        // The one before, then this one's turn: fenced with it if it was fenced.
        let committed = self.settle(run, source, reader, owned)?;
        self.writing = Some(this);
        if !committed {
            self.settle(run, source, reader, owned)?;
        }
        Ok(())
    }

    /// Wait for the batch in flight (if any) and act on its outcome. False: it was
    /// fenced, the partition resumes from what PostgreSQL holds, and what was read since
    /// must be dropped (it is read again).
    pub(super) fn settle(
        &mut self,
        run: &Run,
        source: &Source,
        reader: &mut PartitionReader,
        owned: &AtomicBool,
    ) -> Result<bool> {
        let Some(written) = self.join()? else {
            return Ok(true);
        };
        if !owned.load(Ordering::Acquire) {
            return Ok(true); // abandoned: never seeks nor commits the partition again
        }
        run.settle(source, &mut [reader], written)
    }

    /// Wait for the batch in flight of a revoked partition: it commits (or is fenced) as
    /// ours, and the partition is neither read nor seeked again.
    pub(super) fn finish_revoked(&mut self, run: &Run, source: &Source) -> Result<()> {
        match self.join()? {
            Some(written) => run.settle(source, &mut [], written).map(drop),
            None => Ok(()),
        }
    }

    /// The outcome of the batch in flight, once its write has ended.
    fn join(&mut self) -> Result<Option<Written>> {
        match self.writing.take() {
            Some(w) => w
                .handle
                .join()
                .map_err(|_| Error::fatal("a partition's writer", "panicked"))?
                .map(Some),
            None => Ok(None),
        }
    }
}

//! A batch between the source and the sink: the raw messages cut by a mode, and their
//! transformed form (deduplicated facts, dead letters, next offsets) ready for one transaction.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::hash::Set;
use crate::offsets::OffsetAdvance;
use crate::topic_partition::TopicPartition;
use crate::transform::{transform, Fact, Rejection};

/// One Kafka message, owned; or a gap marker.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tp: TopicPartition,
    pub offset: i64,
    pub payload: Option<Vec<u8>>,
    /// Not a record: the partition's end was reached at `offset + 1`, past offsets that
    /// hold no record for us (transaction markers, aborted or compacted records). It only
    /// moves the partition's next offset, so that a caught-up partition is stored at its end.
    pub gap: bool,
}

impl Msg {
    pub fn size(&self) -> usize {
        self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// A message that could not become a row, kept whole for `dead_letter`.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub tp: TopicPartition,
    pub offset: i64,
    pub rejection: Rejection,
    pub payload: Option<Vec<u8>>,
}

/// The message a fact came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub tp: TopicPartition,
    pub offset: i64,
    pub payload: Option<Vec<u8>>,
}

/// A transformed batch: everything one transaction writes.
#[derive(Debug, Default)]
pub struct Prepared {
    /// records in the batch (gap markers not counted)
    pub messages: usize,
    /// facts in offset order, first occurrence of each sales_key only
    pub facts: Vec<Fact>,
    /// where each of `facts` came from (same index): for a dead letter, should
    /// PostgreSQL refuse the row (`Sink`'s safety net)
    pub origins: Vec<Origin>,
    /// facts dropped because an earlier message of the same batch had the same key
    pub in_batch_duplicates: usize,
    pub dead: Vec<DeadLetter>,
    pub offsets: Vec<OffsetAdvance>,
}

/// Transform a batch on the rayon pool. `expected` gives, per partition, the next offset
/// PostgreSQL holds (or will hold once the batch before commits) for this owner.
pub(crate) fn prepare(
    pool: &rayon::ThreadPool,
    msgs: Vec<Msg>,
    expected: impl Fn(&TopicPartition) -> i64,
) -> Prepared {
    // per partition: the next offset, and the records (gap markers are not)
    let mut next: BTreeMap<TopicPartition, (i64, u64)> = BTreeMap::new();
    for m in &msgs {
        let e = next.entry(m.tp.clone()).or_insert((m.offset + 1, 0));
        e.0 = e.0.max(m.offset + 1);
        e.1 += u64::from(!m.gap);
    }
    let mut msgs = msgs;
    msgs.retain(|m| !m.gap);

    let results: Vec<Result<Fact, Rejection>> = pool.install(|| {
        msgs.par_iter()
            .with_min_len(256)
            .map(|m| transform(m.payload.as_deref()))
            .collect()
    });

    let mut out = Prepared {
        messages: msgs.len(),
        facts: Vec::with_capacity(msgs.len()),
        origins: Vec::with_capacity(msgs.len()),
        ..Prepared::default()
    };
    // The first message of each sales_key in the batch is kept.
    let first: Vec<bool> = {
        let mut seen = Set::with_capacity_and_hasher(results.len(), Default::default());
        results
            .iter()
            .map(|r| r.as_ref().is_ok_and(|f| seen.insert(f.sales_key())))
            .collect()
    };
    for ((m, r), first) in msgs.into_iter().zip(results).zip(first) {
        match r {
            Ok(fact) => {
                if first {
                    out.facts.push(fact);
                    out.origins.push(Origin {
                        tp: m.tp,
                        offset: m.offset,
                        payload: m.payload,
                    });
                } else {
                    out.in_batch_duplicates += 1;
                }
            }
            Err(rejection) => out.dead.push(DeadLetter {
                tp: m.tp,
                offset: m.offset,
                rejection,
                payload: m.payload,
            }),
        }
    }
    out.offsets = next
        .into_iter()
        .map(|(tp, (n, records))| OffsetAdvance {
            expected: expected(&tp),
            tp,
            next: n,
            records,
        })
        .collect();
    out
}

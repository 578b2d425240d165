//! A batch between the source and the sink: the raw messages cut by a mode, and their
//! transformed form (deduplicated facts, dead letters, next offsets) ready for one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::hash::Set;
use crate::offsets::OffsetAdvance;
use crate::transform::{transform, Fact, Rejection};

/// One Kafka message, owned.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub payload: Option<Vec<u8>>,
}

impl Msg {
    pub fn size(&self) -> usize {
        self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// A message that could not become a row, kept whole for `dead_letter`.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub rejection: Rejection,
    pub payload: Option<Vec<u8>>,
}

/// A transformed batch: everything one transaction writes.
#[derive(Debug, Default)]
pub struct Prepared {
    pub messages: usize,
    /// facts in offset order, first occurrence of each sales_key only
    pub facts: Vec<Fact>,
    /// facts dropped because an earlier message of the same batch had the same key
    pub in_batch_duplicates: usize,
    pub dead: Vec<DeadLetter>,
    pub offsets: Vec<OffsetAdvance>,
}

/// Transform a batch on the rayon pool. `expected` gives, per (topic, partition), the
/// next offset PostgreSQL held when this owner last looked (None: no row yet).
pub fn prepare(
    pool: &rayon::ThreadPool,
    msgs: Vec<Msg>,
    expected: impl Fn(&str, i32) -> Option<i64>,
) -> Prepared {
    let results: Vec<Result<Fact, Rejection>> = pool.install(|| {
        msgs.par_iter()
            .with_min_len(256)
            .map(|m| transform(m.payload.as_deref()))
            .collect()
    });

    let mut next: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
    for m in &msgs {
        let e = next
            .entry((m.topic.clone(), m.partition))
            .or_insert(m.offset + 1);
        *e = (*e).max(m.offset + 1);
    }

    let mut out = Prepared {
        messages: msgs.len(),
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
                } else {
                    out.in_batch_duplicates += 1;
                }
            }
            Err(rejection) => out.dead.push(DeadLetter {
                topic: m.topic,
                partition: m.partition,
                offset: m.offset,
                rejection,
                payload: m.payload,
            }),
        }
    }
    out.offsets = next
        .into_iter()
        .map(|((topic, partition), n)| OffsetAdvance {
            expected: expected(&topic, partition),
            topic: topic.to_string(),
            partition,
            next: n,
        })
        .collect();
    out
}

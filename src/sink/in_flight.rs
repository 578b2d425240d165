//! Fact keys held by batches of this process whose transactions are still open. A batch
//! claims its keys before it writes; a key another open batch holds is left to that batch,
//! so no two loaders of one process ever COPY the same new key (which made them wait on
//! each other's uncommitted row, deadlock, or fall back to the staging path).
//!
//! Why the row still appears exactly once: the holder either commits (the row is in, and
//! this batch's copy was a duplicate) or does not; then its offsets are not committed
//! either, so its partition's range is read again, by this process or the partition's
//! next owner, and its copy of the key is written then, when this batch's is long
//! committed (first write wins). Claims are released only after the holder's outcome is
//! known and, on commit, after its keys are in the recent-keys set.
//!
//! A key is held by its [`Fact::key_prefix`], the first 128 bits of its SHA-256 digest:
//! two different keys sharing those (as likely as two random UUIDs being equal) would be
//! taken for one.

use std::sync::Mutex;

use crate::hash::Set;

use crate::transform::Fact;

#[derive(Default)]
pub(super) struct InFlight {
    keys: Mutex<Set<u128>>,
}

/// Key prefixes of a batch's facts that another open batch holds.
pub(super) type Held = Set<u128>;

/// The keys one batch claimed (those of its facts not held elsewhere); released when
/// dropped.
pub(super) struct Claim<'a> {
    owner: &'a InFlight,
    facts: &'a [Fact],
    /// keys of the batch that another open batch holds: not to be written by this one
    pub held_elsewhere: Held,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Set<u128>> {
        // Poisoned or not, the set only holds keys of open batches.
        crate::lock::lock(&self.keys)
    }

    /// Claim the keys of `facts` (distinct within the batch) that no open batch holds.
    pub(super) fn claim<'a>(&'a self, facts: &'a [Fact]) -> Claim<'a> {
        let mut keys = self.lock();
        let mut held_elsewhere = Set::default();
        for f in facts {
            let k = f.key_prefix();
            if !keys.insert(k) {
                held_elsewhere.insert(k);
            }
        }
        Claim {
            owner: self,
            facts,
            held_elsewhere,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut keys = self.owner.lock();
        for k in self.facts.iter().map(Fact::key_prefix) {
            if !self.held_elsewhere.contains(&k) {
                keys.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::transform;

    fn fact(id: &str) -> Fact {
        let json = format!(r#"{{"id":"{id}","time_stamp":1591266092,"product_id":"1"}}"#);
        transform(Some(json.as_bytes())).expect("a valid event")
    }

    #[test]
    fn a_key_held_by_an_open_batch_is_left_to_it_until_released() {
        let registry = InFlight::default();
        let a = [fact("a"), fact("b")];
        let b = [fact("b"), fact("c")];
        let first = registry.claim(&a);
        assert!(first.held_elsewhere.is_empty());
        let second = registry.claim(&b);
        assert_eq!(
            second.held_elsewhere.iter().copied().collect::<Vec<_>>(),
            vec![b[0].key_prefix()]
        );
        drop(first);
        assert_eq!(registry.len(), 1, "only c is still held");
        let third = registry.claim(&a);
        assert!(
            third.held_elsewhere.is_empty(),
            "released keys are free again"
        );
        drop((second, third));
        assert_eq!(registry.len(), 0);
    }
}

//! Fact keys held by batches of this process whose transactions are still open. A batch
//! claims its keys before it writes; a key another open batch holds is left to that batch,
//! so no two loaders of one process ever COPY the same new key (which made them wait on
//! each other's uncommitted row, deadlock, or fall back to the staging path).
//!
//! Why the row still appears exactly once, and with the value the first copy on its
//! partition carries: a batch that left a key to its holder (the *skipper*) does not
//! commit before the holder's outcome is known ([`Claim::wait`]).
//! - The holder committed: the row is in, and the skipper's copy is a duplicate.
//! - The holder did not commit: the key passes to the skipper (the first of them to have
//!   claimed, when several wait), which writes its own copy in its transaction. The
//!   holder's range is read again later and finds the row there.
//!
//! A skipper that committed before its holder's outcome would be wrong: were the holder to
//! fail, a later message of the skipper's partition with that key (a changed re-send)
//! could be written before the holder's range is read again, and win over the first one.
//!
//! No wait cycle: a batch only ever waits for batches that claimed before it (a key
//! passes to its earliest waiting skipper), and waits holding nothing another batch of
//! this process can wait for (only its new fact keys, see `Sink::transaction`). Batch
//! mode claims each micro-batch on its loop thread, in order, before its writer starts: a
//! micro-batch whose writer claimed after the next one's would leave its keys to that one,
//! whose changed re-sends then won.
//!
//! A key is held by its [`Fact::key_prefix`], the first 128 bits of its SHA-256 digest:
//! two different keys sharing those (as likely as two random UUIDs being equal) would be
//! taken for one.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::hash::{Map, Set};
use crate::lock::lock;
use crate::transform::Fact;

/// The registry of held keys.
#[derive(Default)]
pub(crate) struct InFlight {
    keys: Mutex<Map<u128, Entry>>,
}

/// Key prefixes of a batch's facts it is not to write (now).
pub(crate) type Held = Set<u128>;

/// One held key: its holder, and the batches that left it to the holder, in claim order.
struct Entry {
    holder: Arc<Token>,
    waiting: Vec<Arc<Token>>,
}

/// One claiming batch, as the registry and its skippers know it.
#[derive(Default)]
struct Token {
    state: Mutex<Waits>,
    changed: Condvar,
}

#[derive(Default)]
struct Waits {
    /// keys left to a holder whose outcome is not known yet
    pending: usize,
    /// keys left to a holder that did not commit, now this batch's to write
    passed: Set<u128>,
}

/// The keys one batch claimed, and those it left to other open batches. Dropped when the
/// batch's outcome is known (after [`Claim::committed`] if it committed).
pub(crate) struct Claim {
    registry: Arc<InFlight>,
    token: Arc<Token>,
    /// keys this batch was the first to claim
    owned: Vec<u128>,
    /// keys another open batch held when this one claimed
    left: Set<u128>,
    committed: bool,
}

impl InFlight {
    /// Claim the keys of `facts` that no open batch holds; the others are left to their
    /// holders, which this batch is then to wait for.
    pub(crate) fn claim(self: &Arc<Self>, facts: &[Fact]) -> Claim {
        let token = Arc::new(Token::default());
        let mut owned = Vec::with_capacity(facts.len());
        let mut left = Set::default();
        {
            let mut keys = lock(&self.keys);
            for f in facts {
                let k = f.key_prefix();
                match keys.get_mut(&k) {
                    None => {
                        keys.insert(
                            k,
                            Entry {
                                holder: token.clone(),
                                waiting: Vec::new(),
                            },
                        );
                        owned.push(k);
                    }
                    Some(e) if Arc::ptr_eq(&e.holder, &token) => {} // a prefix twice
                    Some(e) => {
                        if left.insert(k) {
                            e.waiting.push(token.clone());
                        }
                    }
                }
            }
            // under the registry's lock: no holder can end before this is set
            lock(&token.state).pending = left.len();
        }
        Claim {
            registry: self.clone(),
            token,
            owned,
            left,
            committed: false,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.keys).len()
    }
}

impl Claim {
    /// The keys not to write now: those left to holders, but those passed back to this
    /// batch.
    pub(crate) fn held(&self) -> Held {
        let w = lock(&self.token.state);
        if w.passed.is_empty() {
            return self.left.clone();
        }
        self.left.difference(&w.passed).copied().collect()
    }

    /// Whether a holder of a key left to it has not ended yet.
    pub(crate) fn unresolved(&self) -> bool {
        lock(&self.token.state).pending > 0
    }

    /// Wait up to `timeout` (None: for as long as it takes) for every holder of a key left
    /// to this batch to end; true when they have.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut w = lock(&self.token.state);
        while w.pending > 0 {
            w = match deadline {
                None => self
                    .token
                    .changed
                    .wait(w)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.token
                        .changed
                        .wait_timeout(w, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }

    /// Whether another open batch waits for one of the keys this one holds.
    #[cfg(debug_assertions)]
    pub(crate) fn waited_for(&self) -> bool {
        let keys = lock(&self.registry.keys);
        self.owned.iter().any(|k| {
            keys.get(k)
                .is_some_and(|e| Arc::ptr_eq(&e.holder, &self.token) && !e.waiting.is_empty())
        })
    }

    /// The batch committed: its keys are in (call after they are in the recent-keys set).
    pub(crate) fn committed(&mut self) {
        self.committed = true;
    }
}

/// Settle one of `waiter`'s left keys: its holder ended; `passed` when the key is now
/// the waiter's to write.
fn resolve(waiter: &Token, k: u128, passed: bool) {
    let mut w = lock(&waiter.state);
    w.pending = w.pending.saturating_sub(1);
    if passed {
        w.passed.insert(k);
    }
    drop(w);
    waiter.changed.notify_all();
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut keys = lock(&self.registry.keys);
        let passed: Vec<u128> = lock(&self.token.state).passed.iter().copied().collect();
        for k in self.owned.iter().chain(&passed) {
            let Some(e) = keys.get_mut(k) else { continue };
            if !Arc::ptr_eq(&e.holder, &self.token) {
                continue;
            }
            if self.committed || e.waiting.is_empty() {
                let e = keys.remove(k);
                for w in e.iter().flat_map(|e| &e.waiting) {
                    resolve(w, *k, false);
                }
            } else {
                // Not committed: the first batch that left it to this one writes it.
                let next = e.waiting.remove(0);
                resolve(&next, *k, true);
                e.holder = next;
            }
        }
        // Keys still left to a holder (this batch ended without waiting: an error).
        for k in &self.left {
            if let Some(e) = keys.get_mut(k) {
                e.waiting.retain(|w| !Arc::ptr_eq(w, &self.token));
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

    fn keys(facts: &[&Fact]) -> Held {
        facts.iter().map(|f| f.key_prefix()).collect()
    }

    #[test]
    fn a_key_left_to_a_holder_that_commits_is_not_written_again() {
        let registry = Arc::new(InFlight::default());
        let (a, b, c) = (fact("a"), fact("b"), fact("c"));
        let mut first = registry.claim(&[a.clone(), b.clone()]);
        assert!(first.held().is_empty() && !first.unresolved());
        let second = registry.claim(&[b.clone(), c.clone()]);
        assert_eq!(second.held(), keys(&[&b]));
        assert!(second.unresolved());
        assert!(!second.wait(Some(Duration::from_millis(10))), "a is open");
        first.committed();
        drop(first);
        assert!(second.wait(Some(Duration::ZERO)));
        assert_eq!(second.held(), keys(&[&b]), "b is in: still not to write");
        assert_eq!(registry.len(), 1, "only c is still held");
        let third = registry.claim(&[a.clone(), b]);
        assert!(third.held().is_empty(), "released keys are free again");
        drop((second, third));
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn a_key_whose_holder_fails_passes_to_the_first_batch_that_left_it() {
        let registry = Arc::new(InFlight::default());
        let k = fact("k");
        let holder = registry.claim(std::slice::from_ref(&k));
        let first = registry.claim(std::slice::from_ref(&k));
        let second = registry.claim(std::slice::from_ref(&k));
        // the holder ends on another thread while the first waits for it
        let waited = std::thread::scope(|s| {
            let w = s.spawn(|| first.wait(None));
            std::thread::sleep(Duration::from_millis(20));
            drop(holder); // not committed
            w.join().expect("the waiter")
        });
        assert!(waited);
        assert!(first.held().is_empty(), "k is the first's to write now");
        assert!(second.unresolved(), "the second now waits for the first");
        assert_eq!(second.held(), keys(&[&k]));
        drop(first); // fails too: k passes on
        assert!(second.wait(Some(Duration::ZERO)));
        assert!(second.held().is_empty());
        let mut second = second;
        second.committed();
        drop(second);
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn a_batch_that_ends_without_waiting_is_no_longer_a_waiter() {
        let registry = Arc::new(InFlight::default());
        let k = fact("k");
        let holder = registry.claim(std::slice::from_ref(&k));
        let gone = registry.claim(std::slice::from_ref(&k));
        let next = registry.claim(std::slice::from_ref(&k));
        drop(gone); // an error: it never waited
        drop(holder); // not committed: k passes to `next`, not to `gone`
        assert!(next.wait(Some(Duration::ZERO)));
        assert!(next.held().is_empty());
        drop(next);
        assert_eq!(registry.len(), 0);
    }
}

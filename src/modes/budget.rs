//! Partition mode's memory bound across partitions: `buffer_max_bytes` of message payload
//! shared by the partitions that hold a batch (open or being written), each cutting its
//! batch at its share, so a process's memory does not grow with the number of partitions.
//!
//! Each partition thread holds one batch at a time: it polls until its batch is cut, then
//! writes it before it polls again. A partition [`Share::hold`]s from its batch's first
//! message until the batch is written ([`Share::release`]); its share is the budget over
//! the partitions holding one then. When more partitions start holding, the ones over
//! their new share are cut at their next message, so the payload held together stays
//! within the budget but for one message per partition (a partition's first message is
//! always taken: every partition makes progress).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The process's budget (see the module docs).
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    holders: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget {
            limit: limit.max(1),
            holders: AtomicUsize::new(0),
        }
    }

    /// A partition's stake in the budget, holding nothing yet.
    pub(crate) fn share(&self) -> Share<'_> {
        Share {
            budget: self,
            holding: false,
        }
    }
}

/// One partition's stake in the [`Budget`]; released when dropped.
#[derive(Debug)]
pub(crate) struct Share<'a> {
    budget: &'a Budget,
    holding: bool,
}

impl Share<'_> {
    /// This partition holds a batch (from its first message on).
    pub(crate) fn hold(&mut self) {
        if !self.holding {
            self.holding = true;
            self.budget.holders.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// This partition's batch was written (or dropped): it holds nothing.
    pub(crate) fn release(&mut self) {
        if self.holding {
            self.holding = false;
            self.budget.holders.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Whether a batch of `bytes` is at this partition's share: the budget over the
    /// partitions holding a batch now (this one counted).
    pub(crate) fn reached(&self, bytes: usize) -> bool {
        let holders = self.budget.holders.load(Ordering::Acquire).max(1);
        bytes >= self.budget.limit / holders
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_the_budget_over_the_partitions_holding_a_batch() {
        let budget = Budget::new(1200);
        let mut a = budget.share();
        let mut b = budget.share();
        let mut c = budget.share();
        a.hold();
        assert!(!a.reached(1199), "alone, a partition has the whole budget");
        assert!(a.reached(1200));
        b.hold();
        b.hold(); // holding twice counts once
        assert!(!a.reached(599));
        assert!(a.reached(600), "two holders: half each");
        c.hold();
        assert!(
            a.reached(400) && !a.reached(399),
            "three holders: a third each"
        );
        drop(c);
        assert!(!a.reached(599), "a dropped share is released");
        b.release();
        b.release(); // releasing twice counts once
        assert!(!a.reached(1199));
        a.release();
        assert!(!budget.share().reached(1199), "no holder: the whole budget");
    }

    #[test]
    fn held_batches_together_stay_within_the_budget() {
        // four partitions cutting at their share as others start holding: what they hold
        // together never passes the budget by more than one message each
        let (limit, message) = (40_000usize, 1_000usize);
        let budget = Budget::new(limit);
        let mut shares: Vec<Share<'_>> = (0..4).map(|_| budget.share()).collect();
        let mut held = [0usize; 4];
        let mut peak = 0;
        for round in 0..200 {
            for p in 0..4 {
                if round < p * 5 {
                    continue; // partitions start holding one after another
                }
                shares[p].hold();
                held[p] += message;
                if shares[p].reached(held[p]) {
                    held[p] = 0; // written
                    shares[p].release();
                }
                peak = peak.max(held.iter().sum::<usize>());
            }
        }
        assert!(peak <= limit + 4 * message, "peak {peak} over {limit}");
        assert!(peak >= limit / 2, "the budget is used: peak {peak}");
    }
}

//! The shape of a shop's day, for synthetic events given a `--start`: owns when events
//! happen and which shop each comes from. Promises: [`Day::time_at`] maps a share of the
//! events (0 to 1) to an event time inside the span, never decreasing as the share grows,
//! so that times are as dense as the day's traffic; [`Day::shop_sampler`] gives the mix of
//! shops at a time, consistent with that traffic. The shape is fixed (no seed): each shop
//! is quiet at night and busiest in the evening of its own time zone (so the US shop's
//! evening falls in the European night), the UK shop is busiest at lunchtime, and the
//! French shop's newsletter makes a quarter-hour burst at 10:00 UTC on the span's first day.

use super::pools::Shop;
use super::rng::Weighted;

/// Seconds in a day.
pub(super) const DAY: i64 = 86_400;
/// The longest `--span`.
pub(super) const MAX_SPAN: i64 = 366 * DAY;
/// Resolution of the shape: traffic and shop mix are constant within a quarter of an hour
/// of the UTC grid.
const SLOT: i64 = 900;
const SLOTS_PER_DAY: usize = (DAY / SLOT) as usize;

/// Relative traffic by local hour (the hour's mean) of most shops: a quiet night, the
/// morning, a lunch bump, the busiest hours after dinner.
const EVENING: [f64; 24] = [
    30.0, 16.0, 9.0, 6.0, 5.0, 6.0, 12.0, 24.0, 38.0, 48.0, 55.0, 60.0, //
    66.0, 62.0, 58.0, 57.0, 60.0, 68.0, 80.0, 93.0, 100.0, 96.0, 78.0, 50.0,
];
/// Relative traffic by local hour of a shop browsed at work: busiest at lunchtime.
const LUNCH: [f64; 24] = [
    12.0, 7.0, 4.0, 3.0, 3.0, 5.0, 12.0, 32.0, 58.0, 74.0, 86.0, 97.0, //
    100.0, 94.0, 74.0, 62.0, 56.0, 48.0, 42.0, 40.0, 38.0, 33.0, 25.0, 17.0,
];
/// Shops whose curve is [`LUNCH`] (the others follow [`EVENING`]).
pub(super) const LUNCH_SHOPS: &[&str] = &["www.glamira.co.uk"];

/// The shop whose newsletter makes the burst.
pub(super) const BURST_SHOP: &str = "www.glamira.fr";
/// When the burst starts, in seconds of the UTC day (on the span's first day that has it).
pub(super) const BURST_AT: i64 = 10 * 3600;
/// How long it lasts.
pub(super) const BURST_LEN: i64 = SLOT;
/// During the burst the burst shop adds this many times the traffic of all shops.
const BURST_EXTRA: f64 = 6.0;

/// The shape of `[start, start + span)`; see the module documentation.
#[derive(Debug)]
pub struct Day {
    start: i64,
    end: i64,
    /// One per slot of the span, in order: its first second and the traffic from the
    /// span's start to the slot's end.
    slots: Vec<(i64, f64)>,
    /// The shop mix of each quarter of the UTC day.
    mixes: Vec<Weighted>,
    /// `[from, to)` of the burst, when the span holds it.
    burst: Option<(i64, i64)>,
    burst_mix: Weighted,
}

/// Which quarter of its UTC day `t` falls in.
fn quarter(t: i64) -> usize {
    (t.rem_euclid(DAY) / SLOT) as usize % SLOTS_PER_DAY
}

/// The relative traffic of `shop` in the middle of quarter `q` of the UTC day, from its
/// hourly curve in its local time, interpolated between the hours' middles.
fn traffic(shop: &Shop, q: usize) -> f64 {
    let curve = if LUNCH_SHOPS.contains(&shop.host) {
        &LUNCH
    } else {
        &EVENING
    };
    let local = q as i64 * SLOT + SLOT / 2 + shop.utc_offset_h * 3600;
    let hours = local.rem_euclid(DAY) as f64 / 3600.0 - 0.5;
    let below = hours.floor();
    let frac = hours - below;
    let i = (below as i64).rem_euclid(24) as usize;
    curve[i] * (1.0 - frac) + curve[(i + 1) % 24] * frac
}

impl Day {
    /// The shape of `span` seconds from `start` (clamped to 1 s .. [`MAX_SPAN`]) for these
    /// shops (in the order their indices refer to).
    pub fn new(shops: &[Shop], start: i64, span: i64) -> Day {
        let end = start.saturating_add(span.clamp(1, MAX_SPAN));
        let per_quarter: Vec<Vec<f64>> = (0..SLOTS_PER_DAY)
            .map(|q| shops.iter().map(|s| s.weight * traffic(s, q)).collect())
            .collect();
        let rate: Vec<f64> = per_quarter.iter().map(|w| w.iter().sum()).collect();
        let mixes = per_quarter
            .iter()
            .map(|w| Weighted::new(w.iter().copied()))
            .collect();
        let first = start - start.rem_euclid(DAY) + BURST_AT;
        let from = if first < start { first + DAY } else { first };
        let burst = (from < end).then(|| (from, (from + BURST_LEN).min(end)));
        let bq = quarter(BURST_AT);
        let mut weights = per_quarter[bq].clone();
        if let Some(i) = shops.iter().position(|s| s.host == BURST_SHOP) {
            weights[i] += BURST_EXTRA * rate[bq];
        }
        let burst_mix = Weighted::new(weights.into_iter());
        let mut slots = Vec::new();
        let (mut t, mut total) = (start, 0.0);
        while t < end {
            let next = ((t.div_euclid(SLOT) + 1) * SLOT).min(end);
            let mut r = rate[quarter(t)];
            if burst.is_some_and(|(a, b)| (a..b).contains(&t)) {
                r *= 1.0 + BURST_EXTRA;
            }
            total += r * (next - t) as f64;
            slots.push((t, total));
            t = next;
        }
        Day {
            start,
            end,
            slots,
            mixes,
            burst,
            burst_mix,
        }
    }

    /// The first second of the span.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The first second after the span.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// `[from, to)` of the burst, when the span holds it.
    pub fn burst(&self) -> Option<(i64, i64)> {
        self.burst
    }

    /// The event time by which `share` (clamped to 0..1) of the span's traffic has happened:
    /// the inverse of the traffic's running total, linear within a quarter hour.
    pub fn time_at(&self, share: f64) -> i64 {
        let total = self.slots.last().map_or(0.0, |s| s.1);
        let target = share.clamp(0.0, 1.0) * total;
        let last = self.slots.len().saturating_sub(1);
        let i = self.slots.partition_point(|s| s.1 <= target).min(last);
        let Some(&(t0, to_end)) = self.slots.get(i) else {
            return self.start;
        };
        let to_start = if i == 0 { 0.0 } else { self.slots[i - 1].1 };
        let t1 = self.slots.get(i + 1).map_or(self.end, |s| s.0);
        let frac = if to_end > to_start {
            (target - to_start) / (to_end - to_start)
        } else {
            0.0
        };
        (t0 + (frac * (t1 - t0) as f64) as i64).clamp(t0, t1 - 1)
    }

    /// The mix of shops (indices into the shops given to [`Day::new`]) at time `t`.
    pub(crate) fn shop_sampler(&self, t: i64) -> &Weighted {
        match self.burst {
            Some((a, b)) if (a..b).contains(&t) => &self.burst_mix,
            _ => &self.mixes[quarter(t)],
        }
    }
}

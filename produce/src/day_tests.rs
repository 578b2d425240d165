//! Unit tests of the day's shape: synthetic events made with `--start`, read back through
//! the transform and counted by UTC hour and shop.

use std::collections::HashMap;
use std::sync::Arc;

use super::day::{Day, BURST_AT, BURST_LEN, BURST_SHOP, DAY};
use super::pools::shops;
use super::synth::{Kind, Synth};
use super::Clock;
use streamer::transform::transform;

/// 2024-05-01 00:00:00 UTC
const START: i64 = 1_714_521_600;

/// One message: key, payload, kind, and the event time the clock gave it.
type Msg = (Vec<u8>, Vec<u8>, Kind, i64);

fn day(start: i64, span: i64) -> Arc<Day> {
    Arc::new(Day::new(&shops(), start, span))
}

/// `n` messages spread over `day` as `streamer produce --events n --start ... --span ...`.
fn run(seed: u64, n: u64, day: &Arc<Day>, dup: f64, bad: f64) -> Vec<Msg> {
    let clock = Clock::Counted {
        day: day.clone(),
        n,
    };
    let mut s = Synth::new(seed, dup, bad).with_day(Some(day.clone()));
    (0..n)
        .map(|i| {
            let ts = clock.at(i);
            let m = s.next(i, ts);
            (m.key.to_vec(), m.payload.to_vec(), m.kind, ts)
        })
        .collect()
}

/// Views of the fresh events by hour since `start` and by shop host.
struct Counts {
    hours: Vec<u64>,
    by_shop: HashMap<String, Vec<u64>>,
}

impl Counts {
    fn of(msgs: &[Msg], start: i64, hours: usize) -> Counts {
        let mut c = Counts {
            hours: vec![0; hours],
            by_shop: HashMap::new(),
        };
        for (_, payload, kind, ts) in msgs {
            if *kind != Kind::Fresh {
                continue;
            }
            let fact = transform(Some(payload)).expect("a fresh event is valid");
            assert_eq!(fact.time_stamp, *ts, "the event carries the clock's time");
            let h = ((fact.time_stamp - start) / 3600) as usize;
            c.hours[h] += 1;
            let host = fact
                .current_url()
                .and_then(|u| u.split('/').nth(2))
                .unwrap_or_default()
                .to_string();
            c.by_shop.entry(host).or_insert_with(|| vec![0; hours])[h] += 1;
        }
        c
    }

    fn shop(&self, host: &str) -> &[u64] {
        self.by_shop.get(host).map_or(&[], |v| v.as_slice())
    }
}

fn sum(v: &[u64], hours: std::ops::RangeInclusive<usize>) -> u64 {
    hours.map(|h| v[h]).sum()
}

#[test]
fn a_day_has_quiet_nights_busy_evenings_and_a_burst() {
    let d = day(START, DAY);
    let msgs = run(11, 40_000, &d, 0.0, 0.0);
    let times: Vec<i64> = msgs.iter().map(|m| m.3).collect();
    assert_eq!(times[0], START);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times decrease");
    assert!(times.iter().all(|t| (START..START + DAY).contains(t)));
    let c = Counts::of(&msgs, START, 24);
    let h = &c.hours;
    assert!(h.iter().all(|n| *n > 0), "an empty hour: {h:?}");
    // night (02-05 UTC) against the European evening (18-20 UTC)
    let evening = h[18..=20].iter().min().copied().unwrap_or(0);
    for night in 2..=5 {
        assert!(h[night] * 4 < evening, "hour {night} not quiet: {h:?}");
    }
    // the burst hour stands out from its neighbours, and is the French shop's
    assert_eq!(
        d.burst(),
        Some((START + BURST_AT, START + BURST_AT + BURST_LEN))
    );
    assert!(
        h[10] * 10 > h[9].max(h[11]) * 18,
        "the burst hour does not stand out: {h:?}"
    );
    let burst: Vec<&Msg> = msgs
        .iter()
        .filter(|m| (START + BURST_AT..START + BURST_AT + BURST_LEN).contains(&m.3))
        .collect();
    let from_fr = burst
        .iter()
        .filter(|m| {
            let p = String::from_utf8_lossy(&m.1);
            p.contains(&format!("\"current_url\":\"https://{BURST_SHOP}/"))
        })
        .count();
    assert!(
        from_fr * 10 > burst.len() * 7,
        "{from_fr} of {}",
        burst.len()
    );
}

#[test]
fn shops_and_time_zones_have_their_own_hours() {
    let msgs = run(12, 40_000, &day(START, DAY), 0.0, 0.0);
    let c = Counts::of(&msgs, START, 24);
    // the UK shop is browsed at work: busiest at lunchtime, not in the evening
    let uk = c.shop("www.glamira.co.uk");
    assert!(uk[12] > 2 * uk[20], "UK: {uk:?}");
    let peak = (0..24).max_by_key(|&h| uk[h]).unwrap_or(0);
    assert!((10..=14).contains(&peak), "UK peaks at {peak}: {uk:?}");
    // the German shop is busiest in its evening
    let de = c.shop("www.glamira.de");
    assert!(de[19] * 10 > de[12] * 13, "DE: {de:?}");
    // the US shop's evening (UTC-5) is the European night, its night the European morning
    let us = c.shop("www.glamira.com");
    assert!(sum(us, 0..=2) > 5 * sum(us, 8..=10), "US: {us:?}");
    assert!(us[1] > us[19], "US: {us:?}");
    // the Australian shop's evening (UTC+10) is the European morning
    let au = c.shop("www.glamira.com.au");
    assert!(sum(au, 7..=11) > 4 * sum(au, 15..=19), "AU: {au:?}");
}

#[test]
fn same_seed_same_day_other_seed_same_shape() {
    let d = day(START, DAY);
    let a = run(7, 5_000, &d, 0.02, 0.01);
    assert_eq!(a, run(7, 5_000, &day(START, DAY), 0.02, 0.01));
    let b = run(8, 5_000, &d, 0.02, 0.01);
    assert_ne!(a[1].1, b[1].1);
    // the clock depends on the index alone: the same times for any seed
    let times = |m: &[Msg]| m.iter().map(|m| m.3).collect::<Vec<_>>();
    assert_eq!(times(&a), times(&b));
}

#[test]
fn duplicates_keep_their_originals_time() {
    let msgs = run(5, 10_000, &day(START, DAY), 0.1, 0.0);
    let mut first: HashMap<&[u8], (i64, &[u8])> = HashMap::new();
    let mut dups = 0;
    for (key, payload, kind, ts) in &msgs {
        match kind {
            Kind::Fresh => {
                first.insert(key, (*ts, payload));
            }
            Kind::Duplicate => {
                dups += 1;
                let (orig_ts, orig) = first[key.as_slice()];
                assert_eq!(orig, payload.as_slice(), "not verbatim");
                let fact = transform(Some(payload)).expect("valid");
                assert_eq!(fact.time_stamp, orig_ts, "a resend keeps its time");
                assert!(orig_ts <= *ts, "resent before it was sent");
            }
            Kind::Malformed(_) => {}
        }
    }
    assert!(dups > 500, "{dups} duplicates");
}

#[test]
fn spans_of_several_days_and_partial_ones() {
    // two days: each has its evening, the burst is on the first only
    let d = day(START, 2 * DAY);
    let msgs = run(3, 40_000, &d, 0.0, 0.0);
    assert!(msgs.iter().all(|m| (START..START + 2 * DAY).contains(&m.3)));
    let h = Counts::of(&msgs, START, 48).hours;
    let (one, two) = (sum(&h, 0..=23), sum(&h, 24..=47));
    assert!(one > two && one < two * 12 / 10, "days {one} and {two}");
    for base in [0, 24] {
        assert!(h[base + 4] * 4 < h[base + 19], "day at {base}: {h:?}");
    }
    assert!(h[10] * 10 > h[9].max(h[11]) * 18, "{h:?}");
    assert!(h[34] < h[33].max(h[35]) * 13 / 10, "a second burst: {h:?}");
    // from noon: the burst is the next morning's
    let noon = START + DAY / 2;
    let d = day(noon, DAY);
    assert_eq!(d.burst().map(|b| b.0), Some(START + DAY + BURST_AT));
    let times: Vec<i64> = run(3, 2_000, &d, 0.0, 0.0).iter().map(|m| m.3).collect();
    assert_eq!(times[0], noon);
    assert!(times.iter().all(|t| (noon..noon + DAY).contains(t)));
    // six hours of night: no burst, still spread over the whole span
    let d = day(START, 6 * 3600);
    assert_eq!(d.burst(), None);
    let times: Vec<i64> = run(3, 2_000, &d, 0.0, 0.0).iter().map(|m| m.3).collect();
    assert!(times[1_999] > START + 5 * 3600 && times[1_999] < START + 6 * 3600);
    // a span of one second
    let d = day(START, 1);
    assert_eq!(
        (d.time_at(0.0), d.time_at(0.99), d.time_at(1.0)),
        (START, START, START)
    );
}

//! Synthetic SPEC 4 events: owns what one message looks like. Promises: the same seed and
//! timestamps give byte-identical messages; every `Fresh` event passes streamer's
//! transform; every `Malformed` one is rejected by it for the reason its [`Defect`]
//! names; a `Duplicate` is an earlier fresh message re-sent verbatim with its key;
//! each fresh event's `id` (its key) is unique within a run; with a [`Day`], the shop of
//! an event follows the day's mix at its time (otherwise the shops' overall weights).

use std::io::Write;
use std::sync::Arc;

use super::day::Day;
use super::event::{write_event, Tweak};
use super::pools::Pools;
use super::rng::{mix, pick, seeded, Rng};
use rand::RngExt;

/// What a message is, as the consumer will judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fresh,
    Duplicate,
    /// a dead letter for this reason
    Malformed(Defect),
}

/// Why the consumer turns a malformed message into a dead letter: its transform's reasons
/// of the same names (see [`Defect::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Defect {
    /// not JSON at all (cut off, HTML, a Python dict)
    NotJson,
    /// JSON, but not one object (an array, a string, a number)
    NotObject,
    /// `id` absent, empty, null or not a string
    MissingId,
    /// `time_stamp` absent, null, empty, ISO text, fractional or out of range
    BadTimeStamp,
    /// a U+0000 in a text field PostgreSQL would store
    NulCharacter,
}

impl Defect {
    /// The consumer's code for it (`dead_letter.reason`, metric labels).
    pub fn code(self) -> &'static str {
        match self {
            Defect::NotJson => "not_json",
            Defect::NotObject => "not_object",
            Defect::MissingId => "missing_id",
            Defect::BadTimeStamp => "bad_time_stamp",
            Defect::NulCharacter => "nul_character",
        }
    }
}

/// One message to send; borrows the generator's buffers until the next call.
pub struct Message<'a> {
    pub key: &'a [u8],
    pub payload: &'a [u8],
    pub kind: Kind,
}

#[derive(Default)]
struct Slot {
    key: String,
    payload: Vec<u8>,
}

/// How many recent fresh events a duplicate may re-send.
const RING: usize = 8192;

/// The event generator: one per producing thread.
pub struct Synth {
    pools: Pools,
    rng: Rng,
    salt: u64,
    dup_rate: f64,
    bad_rate: f64,
    ring: Vec<Slot>,
    fresh: u64,
    scratch: Slot,
    day: Option<Arc<Day>>,
}

/// The shop of an event at time `ts`.
fn pick_shop(day: Option<&Day>, pools: &Pools, rng: &mut Rng, ts: i64) -> usize {
    match day {
        Some(d) => d.shop_sampler(ts).sample(rng),
        None => pools.shop_w.sample(rng),
    }
}

impl Synth {
    /// `dup_rate` and `bad_rate` are shares of all messages (their sum at most 1).
    pub fn new(seed: u64, dup_rate: f64, bad_rate: f64) -> Synth {
        Synth {
            pools: Pools::build(),
            rng: seeded(seed),
            salt: mix(seed.wrapping_add(0x1d)),
            dup_rate,
            bad_rate,
            ring: Vec::with_capacity(RING),
            fresh: 0,
            scratch: Slot::default(),
            day: None,
        }
    }

    /// Shops follow `day`'s mix at each event's time (None: their overall weights).
    pub fn with_day(mut self, day: Option<Arc<Day>>) -> Synth {
        self.day = day;
        self
    }

    /// Message number `index` (0-based, counting every message) with event time `ts`.
    pub fn next(&mut self, index: u64, ts: i64) -> Message<'_> {
        let u = self.rng.random::<f64>();
        if u < self.bad_rate {
            let mut slot = std::mem::take(&mut self.scratch);
            let reason = self.malformed(index, ts, &mut slot);
            self.scratch = slot;
            return Message {
                key: self.scratch.key.as_bytes(),
                payload: &self.scratch.payload,
                kind: Kind::Malformed(reason),
            };
        }
        if u < self.bad_rate + self.dup_rate && self.fresh > 0 {
            let filled = self.fresh.min(RING as u64);
            let slot = &self.ring[self.rng.random_range(0..filled) as usize];
            return Message {
                key: slot.key.as_bytes(),
                payload: &slot.payload,
                kind: Kind::Duplicate,
            };
        }
        let i = (self.fresh % RING as u64) as usize;
        self.fresh += 1;
        if self.ring.len() <= i {
            self.ring.push(Slot::default());
        }
        let mut slot = std::mem::take(&mut self.ring[i]);
        event_id(self.salt, index, &mut slot.key);
        let shop = pick_shop(self.day.as_deref(), &self.pools, &mut self.rng, ts);
        write_event(
            &self.pools,
            &mut self.rng,
            shop,
            &slot.key,
            ts,
            Tweak::None,
            &mut slot.payload,
        );
        self.ring[i] = slot;
        let slot = &self.ring[i];
        Message {
            key: slot.key.as_bytes(),
            payload: &slot.payload,
            kind: Kind::Fresh,
        }
    }

    /// Writes a malformed message into `slot`; returns the reason the consumer will give.
    fn malformed(&mut self, index: u64, ts: i64, slot: &mut Slot) -> Defect {
        use Tweak::*;
        event_id(self.salt, index, &mut slot.key);
        let (p, rng, out) = (&self.pools, &mut self.rng, &mut slot.payload);
        let day = self.day.as_deref();
        let tweak = |rng: &mut Rng, out: &mut Vec<u8>, t: &[Tweak]| {
            let t = pick(rng, t);
            let shop = pick_shop(day, p, rng, ts);
            write_event(p, rng, shop, &slot.key, ts, t, out)
        };
        match rng.random_range(0..5) {
            0 => {
                match rng.random_range(0..4) {
                    0 | 1 => {
                        // cut off in transit
                        tweak(rng, out, &[None]);
                        let cut = rng.random_range(1..out.len() - 1);
                        out.truncate(cut);
                    }
                    2 => {
                        out.clear();
                        out.extend_from_slice(pick(
                            rng,
                            &[
                                &b"<html><body><h1>502 Bad Gateway</h1></body></html>"[..],
                                b"undefined",
                                b"id=1&time_stamp=1591266092",
                                b"{}}",
                            ],
                        ));
                    }
                    _ => {
                        // single quotes: a Python dict printed instead of JSON
                        out.clear();
                        write!(out, "{{'id': '{}', 'time_stamp': {ts}}}", slot.key).ok();
                    }
                }
                Defect::NotJson
            }
            1 => {
                tweak(rng, out, &[IdAbsent, IdEmpty, IdNumber, IdNull]);
                Defect::MissingId
            }
            2 => {
                tweak(
                    rng,
                    out,
                    &[TsAbsent, TsNull, TsIso, TsEmpty, TsFloat, TsHuge],
                );
                Defect::BadTimeStamp
            }
            3 => {
                match rng.random_range(0..4) {
                    0 => {
                        // a batch sent as one array
                        tweak(rng, out, &[None]);
                        out.insert(0, b'[');
                        out.push(b']');
                    }
                    1 => {
                        // the event JSON-encoded twice
                        let mut inner = Vec::new();
                        tweak(rng, &mut inner, &[None]);
                        out.clear();
                        let inner = String::from_utf8(inner).unwrap_or_default();
                        serde_json::to_writer(&mut *out, &inner).expect("a string serialises");
                    }
                    2 => {
                        out.clear();
                        out.extend_from_slice(pick(rng, &[&b"null"[..], b"true", b"42"]));
                    }
                    _ => {
                        out.clear();
                        out.extend_from_slice(b"\"product_view\"");
                    }
                }
                Defect::NotObject
            }
            _ => {
                tweak(rng, out, &[NulUserAgent, NulUrl, NulEmail, NulOption]);
                Defect::NulCharacter
            }
        }
    }
}

/// A unique, UUID-shaped id for message `index`: the last 64 bits are a bijection of the
/// index, so no two messages of a run share an id; the seed changes all of them.
fn event_id(salt: u64, index: u64, out: &mut String) {
    use std::fmt::Write as _;
    let lo = mix(index ^ salt);
    let hi = mix(lo ^ salt.rotate_left(17));
    out.clear();
    write!(
        out,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
    .ok();
}

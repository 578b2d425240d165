//! One synthetic product-view event as the shop's tracker sends it (SPEC 4), with the
//! oddities real producers have: `false` and numbers where strings are expected, empty
//! strings, missing fields, nulls, unknown extra fields. A [`Tweak`] injects one defect
//! that makes the event a dead letter. Written by serde_json from [`Event`], whose fields
//! are the event's keys in the order the tracker sends them.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{Datelike, Timelike};
use rand::RngExt;
use serde::Serialize;

use super::pools::{kind_word, push_ip, Pools, Product, ALLOYS, STONES};
use super::rng::{mix, pick, Rng};

/// A deliberate defect for a malformed message (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tweak {
    None,
    IdAbsent,
    IdEmpty,
    IdNumber,
    IdNull,
    TsAbsent,
    TsNull,
    TsIso,
    TsEmpty,
    TsFloat,
    TsHuge,
    NulUserAgent,
    NulUrl,
    NulEmail,
    NulOption,
}

const MOBILE_RES: &[&str] = &[
    "375x667", "414x896", "390x844", "360x800", "412x915", "393x873", "428x926", "360x780",
];
const DESKTOP_RES: &[&str] = &[
    "1920x1080",
    "1366x768",
    "1536x864",
    "1440x900",
    "2560x1440",
    "1280x720",
    "1680x1050",
    "768x1024",
];
const FIRST: &[&str] = &[
    "anna", "lena", "marie", "julia", "sophie", "laura", "emma", "lucas", "thomas", "pierre",
    "giulia", "marco", "sara", "jan", "eva", "olivia", "james", "chloe",
];
const LAST: &[&str] = &[
    "mueller", "schmidt", "martin", "bernard", "rossi", "garcia", "smith", "jones", "devries",
    "nowak", "jensen", "larsson", "dubois", "fischer",
];
const MAIL: &[&str] = &[
    "gmail.com",
    "web.de",
    "gmx.de",
    "orange.fr",
    "hotmail.com",
    "outlook.com",
    "yahoo.com",
    "libero.it",
];
/// `collection` values and their weights (per mille).
const COLLECTIONS: &[(&str, u64)] = &[
    ("view_product_detail", 800),
    ("select_product_option", 80),
    ("select_product_option_quality", 50),
    ("product_detail_recommendation_visible", 40),
    ("product_detail_recommendation_noticed", 30),
];

/// A JSON value of a field whose type varies between producers.
#[derive(Debug, Default, Serialize)]
#[serde(untagged)]
enum V<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    #[default]
    Null,
}

impl<'a> V<'a> {
    fn text(s: impl Into<Cow<'a, str>>) -> V<'a> {
        V::Text(s.into())
    }

    /// An integer as a string of digits.
    fn int_text(n: impl std::fmt::Display) -> V<'a> {
        V::Text(n.to_string().into())
    }
}

const EMPTY: V<'static> = V::Text(Cow::Borrowed(""));

/// One entry of `option`; ids are strings of digits, as the tracker sends them.
#[derive(Debug, Serialize)]
struct Choice<'a> {
    option_label: &'a str,
    option_id: String,
    value_label: &'a str,
    value_id: String,
}

/// `option`: a list, or null.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Choices<'a> {
    List(Vec<Choice<'a>>),
    Null,
}

/// An event, its keys in this order; a `None` field is absent.
#[derive(Debug, Default, Serialize)]
struct Event<'a> {
    #[serde(rename = "_id")]
    object_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_stamp: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<V<'a>>,
    resolution: V<'a>,
    user_id_db: V<'a>,
    device_id: String,
    api_version: V<'a>,
    store_id: V<'a>,
    local_time: String,
    show_recommendation: V<'a>,
    current_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer_url: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<V<'a>>,
    recommendation: V<'a>,
    utm_source: V<'a>,
    utm_medium: V<'a>,
    collection: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    option: Option<Choices<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_search: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat_id: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    viewing_product_id: Option<V<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<V<'a>>,
}

/// `YYYY-MM-DD<sep>HH:MM:SS` of epoch seconds `t` (UTC).
fn datetime(t: i64, sep: char) -> String {
    let d = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Writes one event of shop number `shop` (an index into `p.shops`) into `out` (cleared
/// first); `tweak` injects a defect.
pub(super) fn write_event(
    p: &Pools,
    rng: &mut Rng,
    shop: usize,
    id: &str,
    ts: i64,
    tweak: Tweak,
    out: &mut Vec<u8>,
) {
    let shop = &p.shops[shop % p.shops.len()];
    let product = Product::of_rank(p.product_z.sample(rng));
    let ip_i = p.ip_z.sample(rng);
    let agent_i = p.agent_w.sample(rng);
    let agent = &p.agents[agent_i];
    let word = kind_word(product.kind, shop.lang);
    let mut e = Event {
        // a MongoDB ObjectId: creation second, then random
        object_id: format!(
            "{:08x}{:016x}",
            ts as u64 & 0xffff_ffff,
            rng.random::<u64>()
        ),
        ..Event::default()
    };
    e.time_stamp = match tweak {
        Tweak::TsAbsent => None,
        Tweak::TsNull => Some(V::Null),
        Tweak::TsIso => Some(V::text(datetime(ts, 'T') + "Z")),
        Tweak::TsEmpty => Some(EMPTY),
        // half a second past `ts`, as the text `<ts>.5` says
        Tweak::TsFloat => Some(V::Float(ts as f64 + 0.5_f64.copysign(ts as f64))),
        Tweak::TsHuge => Some(V::Int(ts.saturating_mul(1_000_000))),
        _ if rng.random_bool(0.05) => Some(V::int_text(ts)),
        _ => Some(V::Int(ts)),
    };
    e.ip = match rng.random_range(0..1000) {
        0..=7 => Some(EMPTY),
        8..=10 => None,
        _ => {
            let mut ip = String::with_capacity(39);
            push_ip(&mut ip, ip_i);
            Some(V::text(ip))
        }
    };
    e.user_agent = match (tweak, rng.random_range(0..1000)) {
        (Tweak::NulUserAgent, _) => {
            let t = &agent.text;
            let cut = t.len() / 2;
            Some(V::text(format!("{}\0{}", &t[..cut], &t[cut..])))
        }
        (_, 0..=4) => Some(EMPTY),
        (_, 5..=6) => None,
        _ => Some(V::text(agent.text.as_str())),
    };
    e.resolution = match rng.random_range(0..100) {
        0..=2 => EMPTY,
        _ if agent.mobile => V::text(pick(rng, MOBILE_RES)),
        _ => V::text(pick(rng, DESKTOP_RES)),
    };
    e.user_id_db = match rng.random_range(0..100) {
        0..=84 => EMPTY,
        85..=94 => V::int_text(rng.random_range(100_000..1_000_000)),
        _ => V::Int(rng.random_range(100_000..1_000_000)),
    };
    // the same visitor (IP and agent) keeps its device id
    let dev = mix((ip_i << 20) ^ agent_i as u64);
    let dev2 = mix(dev);
    e.device_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        dev >> 32,
        (dev >> 16) & 0xffff,
        dev & 0xfff,
        (dev2 >> 52) & 0xfff,
        dev2 & 0xffff_ffff_ffff
    );
    e.api_version = if rng.random_bool(0.95) {
        V::text("1.0")
    } else {
        V::Float(1.0)
    };
    e.store_id = if rng.random_bool(0.92) {
        V::int_text(shop.store_id)
    } else {
        V::Int(shop.store_id.into())
    };
    e.local_time = datetime(ts + shop.utc_offset_h * 3600, ' ');
    e.show_recommendation = match rng.random_range(0..100) {
        0..=69 => V::text("false"),
        70..=94 => V::text("true"),
        _ => V::Bool(false),
    };

    let alloy = if rng.random_bool(0.6) {
        product.alloy
    } else {
        rng.random_range(0..ALLOYS.len())
    };
    let stone = if rng.random_bool(0.6) {
        product.stone
    } else {
        rng.random_range(0..STONES.len())
    };
    let url = &mut e.current_url;
    write!(url, "https://{}/glamira-{word}-", shop.host).ok();
    product.push_name(url);
    url.push_str(".html");
    if rng.random_bool(0.85) {
        write!(url, "?alloy={}&diamond={}", ALLOYS[alloy], STONES[stone]).ok();
        if rng.random_bool(0.2) {
            url.push_str("&stone2=diamond-Brillant");
        }
        if rng.random_bool(0.15) {
            url.push_str("&itm_source=recommendation&itm_medium=sorting");
        }
    }
    if tweak == Tweak::NulUrl {
        url.push('\0');
    }
    e.referrer_url = match rng.random_range(0..100) {
        0..=11 => None,
        12..=21 => Some(EMPTY),
        22..=46 => Some(V::text(format!("https://{}/", shop.google))),
        47..=66 => Some(V::text(format!("https://{}/{word}/", shop.host))),
        67..=74 => {
            let other = Product::of_rank(p.product_z.sample(rng));
            let w = kind_word(other.kind, shop.lang);
            let mut r = format!("https://{}/glamira-{w}-", shop.host);
            other.push_name(&mut r);
            r.push_str(".html");
            Some(V::text(r))
        }
        75..=79 => Some(V::text("https://www.bing.com/")),
        80..=84 => Some(V::text(pick(
            rng,
            &["https://m.facebook.com/", "https://l.facebook.com/"],
        ))),
        85..=87 => Some(V::text("https://www.instagram.com/")),
        88..=89 => Some(V::text("https://www.pinterest.com/")),
        90..=91 => Some(V::text("android-app://com.google.android.gm/")),
        92..=93 => Some(V::text(format!("{}/", shop.host))),
        _ => Some(V::text(format!("https://{}/", shop.host))),
    };
    e.email_address = match (tweak, rng.random_range(0..100)) {
        (Tweak::NulEmail, _) => Some(V::text("anna\0@gmail.com")),
        (_, 0..=74) => Some(EMPTY),
        (_, 75..=89) => {
            let first = pick(rng, FIRST);
            let last = pick(rng, LAST);
            let n = rng.random_range(0..100);
            let mail = pick(rng, MAIL);
            Some(V::text(format!("{first}.{last}{n}@{mail}")))
        }
        _ => None,
    };
    e.recommendation = match rng.random_range(0..100) {
        0..=89 => V::Bool(false),
        90..=94 => V::text("false"),
        _ => V::text("true"),
    };
    let (source, medium) = match rng.random_range(0..100) {
        0..=84 => (V::Bool(false), V::Bool(false)),
        85..=89 => (V::text("google"), V::text("cpc")),
        90..=92 => (V::text("facebook"), V::text("social")),
        93..=95 => (V::text("newsletter"), V::text("email")),
        96..=97 => (V::text("criteo"), V::text("retargeting")),
        _ => (EMPTY, V::Null),
    };
    (e.utm_source, e.utm_medium) = (source, medium);
    let mut roll = rng.random_range(0..1000);
    e.collection = COLLECTIONS
        .iter()
        .find(|(_, w)| {
            let hit = roll < *w;
            roll = roll.saturating_sub(*w);
            hit
        })
        .map_or(COLLECTIONS[0].0, |(c, _)| c);
    e.product_id = match rng.random_range(0..100) {
        0 => None,
        1..=5 => Some(V::Int(product.id.into())),
        _ => Some(V::int_text(product.id)),
    };
    let options = match (tweak, rng.random_range(0..100)) {
        (Tweak::NulOption, _) | (_, 0..=59) => 2,
        (_, 60..=74) => 1,
        (_, 75..=76) => 3,
        (_, 77..=86) => 0,
        (_, 87..=96) => -1, // absent
        _ => -2,            // null
    };
    e.option = match options {
        -1 => None,
        -2 => Some(Choices::Null),
        n => {
            let value_id = 3_000_000 + u64::from(product.option_ids[0]) * 7 % 1_000_000;
            let mut list = Vec::with_capacity(3);
            let blank = |label, value_label| Choice {
                option_label: label,
                option_id: String::new(),
                value_label,
                value_id: String::new(),
            };
            if n >= 1 {
                list.push(Choice {
                    option_label: "alloy",
                    option_id: product.option_ids[0].to_string(),
                    value_label: "",
                    value_id: (value_id + alloy as u64).to_string(),
                });
            }
            if n >= 2 {
                if tweak == Tweak::NulOption {
                    list.push(blank("diamond", "x\0"));
                } else if rng.random_bool(0.5) {
                    list.push(blank("diamond", ""));
                } else {
                    list.push(Choice {
                        option_label: "diamond",
                        option_id: product.option_ids[1].to_string(),
                        value_label: STONES[stone],
                        value_id: (value_id + 100 + stone as u64).to_string(),
                    });
                }
            }
            if n >= 3 {
                list.push(blank("pearlcolor", "white"));
            }
            Some(Choices::List(list))
        }
    };
    // unknown extra fields real producers add now and then
    match rng.random_range(0..100) {
        0..=4 => e.key_search = Some(EMPTY),
        5..=7 => e.cat_id = Some(V::int_text(rng.random_range(10..410))),
        8..=9 => e.viewing_product_id = Some(V::int_text(product.id)),
        _ => {}
    }
    e.id = match tweak {
        Tweak::IdAbsent => None,
        Tweak::IdEmpty => Some(EMPTY),
        Tweak::IdNumber => Some(V::Int((mix(ts as u64) >> 20) as i64)),
        Tweak::IdNull => Some(V::Null),
        _ => Some(V::text(id)),
    };
    out.clear();
    serde_json::to_writer(out, &e).expect("an event serialises");
}

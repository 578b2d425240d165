//! One synthetic product-view event as the shop's tracker sends it (SPEC 4), with the
//! oddities real producers have: `false` and numbers where strings are expected, empty
//! strings, missing fields, nulls, unknown extra fields. A [`Tweak`] injects one defect
//! that makes the event a dead letter.

use super::pools::{kind_word, push_ip, Pools, Product, ALLOYS, STONES};
use super::rng::{mix, pick, Rng};
use super::write::{push_datetime, push_hex, push_i64, push_u64, Obj};
use rand::RngExt;

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
    let mut o = Obj::new(out);

    // `_id`: a MongoDB ObjectId (creation second, then random)
    let b = o.key("_id");
    b.push(b'"');
    push_hex(b, ts as u64, 8);
    push_hex(b, rng.random::<u64>(), 16);
    b.push(b'"');

    match tweak {
        Tweak::TsAbsent => {}
        Tweak::TsNull => o.raw("time_stamp", "null"),
        Tweak::TsIso => {
            let b = o.key("time_stamp");
            b.push(b'"');
            push_datetime(b, ts, b'T');
            b.extend_from_slice(b"Z\"");
        }
        Tweak::TsEmpty => o.raw("time_stamp", "\"\""),
        Tweak::TsFloat => {
            let b = o.key("time_stamp");
            push_i64(b, ts);
            b.extend_from_slice(b".5");
        }
        Tweak::TsHuge => o.int("time_stamp", ts.saturating_mul(1_000_000)),
        _ if rng.random_bool(0.05) => o.int_text("time_stamp", ts),
        _ => o.int("time_stamp", ts),
    }
    match rng.random_range(0..1000) {
        0..=7 => o.raw("ip", "\"\""),
        8..=10 => {}
        _ => {
            let b = o.key("ip");
            b.push(b'"');
            push_ip(b, ip_i);
            b.push(b'"');
        }
    }
    match (tweak, rng.random_range(0..1000)) {
        (Tweak::NulUserAgent, _) => {
            let t = &agent.text;
            let cut = t.len() / 2;
            o.escaped("user_agent", &format!("{}\0{}", &t[..cut], &t[cut..]));
        }
        (_, 0..=4) => o.raw("user_agent", "\"\""),
        (_, 5..=6) => {}
        _ => o.text("user_agent", &[&agent.text]),
    }
    match rng.random_range(0..100) {
        0..=2 => o.raw("resolution", "\"\""),
        _ if agent.mobile => o.text("resolution", &[pick(rng, MOBILE_RES)]),
        _ => o.text("resolution", &[pick(rng, DESKTOP_RES)]),
    }
    match rng.random_range(0..100) {
        0..=84 => o.raw("user_id_db", "\"\""),
        85..=94 => o.int_text("user_id_db", rng.random_range(100_000..1_000_000)),
        _ => o.int("user_id_db", rng.random_range(100_000..1_000_000)),
    }
    // the same visitor (IP and agent) keeps its device id
    let dev = mix((ip_i << 20) ^ agent_i as u64);
    let dev2 = mix(dev);
    let b = o.key("device_id");
    b.push(b'"');
    push_hex(b, dev >> 32, 8);
    b.push(b'-');
    push_hex(b, dev >> 16, 4);
    b.extend_from_slice(b"-4");
    push_hex(b, dev, 3);
    b.extend_from_slice(b"-a");
    push_hex(b, dev2 >> 52, 3);
    b.push(b'-');
    push_hex(b, dev2, 12);
    b.push(b'"');
    if rng.random_bool(0.95) {
        o.raw("api_version", "\"1.0\"");
    } else {
        o.raw("api_version", "1.0");
    }
    if rng.random_bool(0.92) {
        o.text("store_id", &[&shop.store_id_text]);
    } else {
        o.raw("store_id", &shop.store_id_text);
    }
    let b = o.key("local_time");
    b.push(b'"');
    push_datetime(b, ts + shop.utc_offset_h * 3600, b' ');
    b.push(b'"');
    match rng.random_range(0..100) {
        0..=69 => o.raw("show_recommendation", "\"false\""),
        70..=94 => o.raw("show_recommendation", "\"true\""),
        _ => o.raw("show_recommendation", "false"),
    }

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
    let b = o.key("current_url");
    for part in ["\"https://", shop.host, "/glamira-", word, "-"] {
        b.extend_from_slice(part.as_bytes());
    }
    product.push_name(b);
    b.extend_from_slice(b".html");
    if rng.random_bool(0.85) {
        for part in ["?alloy=", ALLOYS[alloy], "&diamond=", STONES[stone]] {
            b.extend_from_slice(part.as_bytes());
        }
        if rng.random_bool(0.2) {
            b.extend_from_slice(b"&stone2=diamond-Brillant");
        }
        if rng.random_bool(0.15) {
            b.extend_from_slice(b"&itm_source=recommendation&itm_medium=sorting");
        }
    }
    if tweak == Tweak::NulUrl {
        b.extend_from_slice(b"\\u0000");
    }
    b.push(b'"');
    match rng.random_range(0..100) {
        0..=11 => {}
        12..=21 => o.raw("referrer_url", "\"\""),
        22..=46 => o.text("referrer_url", &["https://", shop.google, "/"]),
        47..=66 => o.text("referrer_url", &["https://", shop.host, "/", word, "/"]),
        67..=74 => {
            let other = Product::of_rank(p.product_z.sample(rng));
            let w = kind_word(other.kind, shop.lang);
            let b = o.key("referrer_url");
            for part in ["\"https://", shop.host, "/glamira-", w, "-"] {
                b.extend_from_slice(part.as_bytes());
            }
            other.push_name(b);
            b.extend_from_slice(b".html\"");
        }
        75..=79 => o.raw("referrer_url", "\"https://www.bing.com/\""),
        80..=84 => o.text(
            "referrer_url",
            &[pick(
                rng,
                &["https://m.facebook.com/", "https://l.facebook.com/"],
            )],
        ),
        85..=87 => o.raw("referrer_url", "\"https://www.instagram.com/\""),
        88..=89 => o.raw("referrer_url", "\"https://www.pinterest.com/\""),
        90..=91 => o.raw("referrer_url", "\"android-app://com.google.android.gm/\""),
        92..=93 => o.text("referrer_url", &[shop.host, "/"]),
        _ => o.text("referrer_url", &["https://", shop.host, "/"]),
    }
    match (tweak, rng.random_range(0..100)) {
        (Tweak::NulEmail, _) => o.raw("email_address", "\"anna\\u0000@gmail.com\""),
        (_, 0..=74) => o.raw("email_address", "\"\""),
        (_, 75..=89) => {
            let b = o.key("email_address");
            b.push(b'"');
            b.extend_from_slice(pick(rng, FIRST).as_bytes());
            b.push(b'.');
            b.extend_from_slice(pick(rng, LAST).as_bytes());
            push_u64(b, rng.random_range(0..100));
            b.push(b'@');
            b.extend_from_slice(pick(rng, MAIL).as_bytes());
            b.push(b'"');
        }
        _ => {}
    }
    match rng.random_range(0..100) {
        0..=89 => o.raw("recommendation", "false"),
        90..=94 => o.raw("recommendation", "\"false\""),
        _ => o.raw("recommendation", "\"true\""),
    }
    match rng.random_range(0..100) {
        0..=84 => {
            o.raw("utm_source", "false");
            o.raw("utm_medium", "false");
        }
        85..=89 => {
            o.raw("utm_source", "\"google\"");
            o.raw("utm_medium", "\"cpc\"");
        }
        90..=92 => {
            o.raw("utm_source", "\"facebook\"");
            o.raw("utm_medium", "\"social\"");
        }
        93..=95 => {
            o.raw("utm_source", "\"newsletter\"");
            o.raw("utm_medium", "\"email\"");
        }
        96..=97 => {
            o.raw("utm_source", "\"criteo\"");
            o.raw("utm_medium", "\"retargeting\"");
        }
        _ => {
            o.raw("utm_source", "\"\"");
            o.raw("utm_medium", "null");
        }
    }
    let mut roll = rng.random_range(0..1000);
    let collection = COLLECTIONS
        .iter()
        .find(|(_, w)| {
            let hit = roll < *w;
            roll = roll.saturating_sub(*w);
            hit
        })
        .map_or(COLLECTIONS[0].0, |(c, _)| c);
    o.text("collection", &[collection]);
    match rng.random_range(0..100) {
        0 => {}
        1..=5 => o.int("product_id", product.id.into()),
        _ => o.int_text("product_id", product.id.into()),
    }
    let options = match (tweak, rng.random_range(0..100)) {
        (Tweak::NulOption, _) | (_, 0..=59) => 2,
        (_, 60..=74) => 1,
        (_, 75..=76) => 3,
        (_, 77..=86) => 0,
        (_, 87..=96) => -1, // absent
        _ => -2,            // null
    };
    match options {
        -1 => {}
        -2 => o.raw("option", "null"),
        n => {
            let value_id = 3_000_000 + u64::from(product.option_ids[0]) * 7 % 1_000_000;
            let b = o.key("option");
            b.push(b'[');
            if n >= 1 {
                b.extend_from_slice(b"{\"option_label\":\"alloy\",\"option_id\":\"");
                push_u64(b, product.option_ids[0].into());
                b.extend_from_slice(b"\",\"value_label\":\"\",\"value_id\":\"");
                push_u64(b, value_id + alloy as u64);
                b.extend_from_slice(b"\"}");
            }
            if n >= 2 {
                if tweak == Tweak::NulOption {
                    b.extend_from_slice(b",{\"option_label\":\"diamond\",\"option_id\":\"\",\"value_label\":\"x\\u0000\",\"value_id\":\"\"}");
                } else if rng.random_bool(0.5) {
                    b.extend_from_slice(b",{\"option_label\":\"diamond\",\"option_id\":\"\",\"value_label\":\"\",\"value_id\":\"\"}");
                } else {
                    b.extend_from_slice(b",{\"option_label\":\"diamond\",\"option_id\":\"");
                    push_u64(b, product.option_ids[1].into());
                    b.extend_from_slice(b"\",\"value_label\":\"");
                    b.extend_from_slice(STONES[stone].as_bytes());
                    b.extend_from_slice(b"\",\"value_id\":\"");
                    push_u64(b, value_id + 100 + stone as u64);
                    b.extend_from_slice(b"\"}");
                }
            }
            if n >= 3 {
                b.extend_from_slice(b",{\"option_label\":\"pearlcolor\",\"option_id\":\"\",\"value_label\":\"white\",\"value_id\":\"\"}");
            }
            b.push(b']');
        }
    }
    // unknown extra fields real producers add now and then
    match rng.random_range(0..100) {
        0..=4 => o.raw("key_search", "\"\""),
        5..=7 => o.int_text("cat_id", rng.random_range(10..410)),
        8..=9 => o.int_text("viewing_product_id", product.id.into()),
        _ => {}
    }
    match tweak {
        Tweak::IdAbsent => {}
        Tweak::IdEmpty => o.raw("id", "\"\""),
        Tweak::IdNumber => o.int("id", (mix(ts as u64) >> 20) as i64),
        Tweak::IdNull => o.raw("id", "null"),
        _ => o.text("id", &[id]),
    }
    o.end();
}

//! Deterministic synthetic events for the integration tests, with the expected outcome
//! computed independently of the code under test (its own SHA-256, its own counting).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// First event's time: 2020-06-04 10:21:32 UTC (checked with `date -u -d @1591266092`).
pub(crate) const BASE_TS: i64 = 1_591_266_092;
/// 2036-01-01 00:00:00 UTC: a day outside warmup's 2010-2030 range.
pub(crate) const FUTURE_TS: i64 = 2_082_758_400;

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
    "",
];

const DOMAINS: &[&str] = &[
    "www.glamira.de",
    "www.glamira.fr",
    "www.glamira.co.uk",
    "www.glamira.com",
];

/// A tiny deterministic PRNG (xorshift64*), so runs are reproducible without a crate.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One valid event as the test knows it.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub id: String,
    /// product_id as text (as the fact stores it), None when the event has none
    pub product: Option<String>,
    pub ip: String,
    pub agent: String,
    pub ts: i64,
    pub store_id: String,
    pub json: String,
}

impl Event {
    pub(crate) fn sales_key(&self) -> String {
        sha_hex(&format!(
            "{}{}",
            self.id,
            self.product.as_deref().unwrap_or("")
        ))
    }
}

pub(crate) fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Build the JSON text of event `i`, with the realistic oddities of contract §4.
pub(crate) fn event(i: usize, rng: &mut Rng) -> Event {
    let id = format!("evt-{i:06}");
    let product_n = 100_000 + rng.below(150);
    // Some producers send product_id as a JSON number; some events have none.
    let (product, product_json) = match i % 10 {
        0 => (Some(product_n.to_string()), format!("{product_n}")),
        9 => (None, String::new()),
        _ => (Some(product_n.to_string()), format!("\"{product_n}\"")),
    };
    let ip = match rng.below(20) {
        0 => String::new(),
        1 => format!("2a01:cb19:{:x}::{:x}", rng.below(4000), rng.below(4000)),
        _ => format!(
            "{}.{}.{}.{}",
            20 + rng.below(150),
            rng.below(40),
            rng.below(256),
            1 + rng.below(254)
        ),
    };
    let agent = AGENTS[rng.below(AGENTS.len() as u64) as usize].to_string();
    let ts = if i == 5 {
        FUTURE_TS
    } else {
        BASE_TS + (i as i64) * 97
    };
    let store_id = format!("{}", rng.below(30));
    let domain = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
    let current_url =
        format!("https://{domain}/glamira-ring-{product_n}.html?alloy=white&itm_source=x");
    let ts_json = if i % 7 == 0 {
        format!("\"{ts}\"")
    } else {
        ts.to_string()
    };
    let mut fields = vec![
        format!("\"_id\":\"doc{i:06}\""),
        format!("\"id\":\"{id}\""),
        format!("\"time_stamp\":{ts_json}"),
        format!("\"ip\":\"{ip}\""),
        format!("\"user_agent\":{}", serde_json::Value::String(agent.clone())),
        "\"resolution\":\"375x667\"".to_string(),
        format!("\"store_id\":\"{store_id}\""),
        "\"show_recommendation\":\"false\"".to_string(),
        format!("\"current_url\":\"{current_url}\""),
        format!("\"referrer_url\":\"https://{domain}/men-s-necklaces/?q=1\""),
        "\"recommendation\":false".to_string(),
        "\"utm_source\":false".to_string(),
        "\"collection\":\"view_product_detail\"".to_string(),
        "\"option\":[{\"option_label\":\"alloy\",\"option_id\":\"332084\",\"value_label\":\"\",\"value_id\":\"3279318\"}]".to_string(),
    ];
    if !product_json.is_empty() {
        fields.push(format!("\"product_id\":{product_json}"));
    }
    if i % 13 == 0 {
        fields.push(
            "\"email_address\":\"o'brien@example.com; DROP TABLE fact_sales;--\"".to_string(),
        );
    }
    Event {
        id,
        product,
        ip,
        agent,
        ts,
        store_id,
        json: format!("{{{}}}", fields.join(",")),
    }
}

/// The malformed messages a data set carries: (value, expected dead-letter reason code).
pub(crate) fn bad_messages() -> Vec<(Option<Vec<u8>>, &'static str)> {
    vec![
        (Some(b"not json at all".to_vec()), "not_json"),
        (Some(b"{\"id\":\"x\",".to_vec()), "not_json"),
        (Some(b"[1,2,3]".to_vec()), "not_object"),
        (Some(b"\"just a string\"".to_vec()), "not_object"),
        (Some(br#"{"time_stamp":1591266092}"#.to_vec()), "missing_id"),
        (
            Some(br#"{"id":"","time_stamp":1591266092}"#.to_vec()),
            "missing_id",
        ),
        (
            Some(br#"{"id":42,"time_stamp":1591266092}"#.to_vec()),
            "missing_id",
        ),
        (Some(br#"{"id":"bad-ts-1"}"#.to_vec()), "bad_time_stamp"),
        (
            Some(br#"{"id":"bad-ts-2","time_stamp":"yesterday"}"#.to_vec()),
            "bad_time_stamp",
        ),
        (
            Some(br#"{"id":"bad-ts-3","time_stamp":1.5}"#.to_vec()),
            "bad_time_stamp",
        ),
        (
            Some(br#"{"id":"nul-1","time_stamp":1591266092,"store_id":"a\u0000b"}"#.to_vec()),
            "nul_character",
        ),
        (Some(vec![0xff, 0xfe, b'{', b'}']), "not_utf8"),
        (None, "empty_payload"),
    ]
}

/// A data set: messages to produce and what the tables must hold afterwards.
#[derive(Default)]
pub(crate) struct DataSet {
    /// (key, value) in produce order
    pub messages: Vec<super::Record>,
    /// the first event written for each sales_key (what fact_sales must hold)
    pub facts: BTreeMap<String, Event>,
    /// dead-letter reason code → count
    pub dead: BTreeMap<&'static str, usize>,
    pub products: BTreeSet<String>,
    pub ips: BTreeSet<String>,
    pub agents: BTreeSet<String>,
    pub dates: BTreeSet<i64>,
}

/// `n` distinct events, then `dups` re-sends of earlier ones (half byte-identical under
/// another key, so mostly on another partition; half with a different store_id under the
/// original's key, so after it on its partition, where they must lose), interleaved with
/// `bad_rounds` copies of every malformed message.
pub(crate) fn data_set(n: usize, dups: usize, bad_rounds: usize, seed: u64) -> DataSet {
    let mut rng = Rng::new(seed);
    let mut ds = DataSet::default();
    let events: Vec<Event> = (0..n).map(|i| event(i, &mut rng)).collect();
    let bad = bad_messages();
    let mut bad_left = bad_rounds * bad.len();
    let mut dup_left = dups;
    let mut i = 0;
    while i < events.len() || dup_left > 0 || bad_left > 0 {
        let r = rng.below(100);
        if r < 8 && dup_left > 0 && i > 0 {
            let orig = &events[rng.below(i as u64) as usize];
            // Byte-identical re-sends go out under another key, as a client retry or a
            // keyless producer sends them: most land on another partition than their
            // original, whose loader may write either first. Changed re-sends keep the
            // original's key (its partition, after it), so the original must win.
            if dup_left % 2 == 0 {
                ds.messages.push((
                    Some(format!("retry-{dup_left}-{}", orig.id).into_bytes()),
                    Some(orig.json.clone().into_bytes()),
                ));
            } else {
                ds.messages.push(changed_resend(orig));
            }
            dup_left -= 1;
        } else if r < 11 && bad_left > 0 {
            let (v, reason) = &bad[bad_left % bad.len()];
            ds.messages
                .push((Some(format!("bad-{bad_left}").into_bytes()), v.clone()));
            *ds.dead.entry(reason).or_insert(0) += 1;
            bad_left -= 1;
        } else if i < events.len() {
            ds.push_event(&events[i]);
            i += 1;
        }
    }
    ds
}

/// Re-send of `e` with a changed store_id under its own key (its partition, after it).
fn changed_resend(e: &Event) -> super::Record {
    let json = e.json.replacen(
        &format!("\"store_id\":\"{}\"", e.store_id),
        "\"store_id\":\"late-duplicate\"",
        1,
    );
    (Some(e.id.clone().into_bytes()), Some(json.into_bytes()))
}

/// `n` events, each followed at once by a byte-identical twin under another key (mostly
/// on another partition, so both copies are in flight together), and every fourth by a
/// changed re-send under its own key eight events later, which must lose.
pub(crate) fn twin_data_set(n: usize, seed: u64) -> DataSet {
    let mut rng = Rng::new(seed);
    let mut ds = DataSet::default();
    let events: Vec<Event> = (0..n).map(|i| event(i, &mut rng)).collect();
    for (i, e) in events.iter().enumerate() {
        ds.push_event(e);
        ds.messages.push((
            Some(format!("twin-{}", e.id).into_bytes()),
            Some(e.json.clone().into_bytes()),
        ));
        if i >= 8 && (i - 8) % 4 == 0 {
            ds.messages.push(changed_resend(&events[i - 8]));
        }
    }
    ds
}

impl DataSet {
    /// An event's first copy, under its own key, and what it adds to the tables.
    fn push_event(&mut self, e: &Event) {
        self.messages.push((
            Some(e.id.clone().into_bytes()),
            Some(e.json.clone().into_bytes()),
        ));
        self.facts.entry(e.sales_key()).or_insert_with(|| e.clone());
        if let Some(p) = &e.product {
            self.products.insert(p.clone());
        }
        if !e.ip.is_empty() {
            self.ips.insert(e.ip.clone());
        }
        if !e.agent.is_empty() {
            self.agents.insert(e.agent.clone());
        }
        self.dates.insert(e.ts.div_euclid(86_400));
    }
}

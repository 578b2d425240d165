//! The fixed populations synthetic events draw from: shop domains, products, IP addresses
//! and user agents, each with a skewed (Zipf-like) popularity. Promises: the pools are the
//! same in every run (built from a constant seed, so repeated runs share products, IPs and
//! agents like a real shop's traffic does); only the event stream depends on `--seed`.

use super::agents::{agents, Agent};
use std::fmt::Write as _;

use super::rng::{mix, seeded, Weighted, Zipf};

/// Seed of the pools themselves (not of the event stream).
const POOL_SEED: u64 = 0x0067_6c61_6d69_7261; // "glamira"
/// Distinct products in the catalogue.
pub(super) const PRODUCTS: usize = 4_000;
/// Distinct client IP addresses (about 10% IPv6, a few private ones).
pub(super) const IPS: usize = 40_000;

/// A country shop: host, `store_id`, UTC offset in hours (for `local_time` and its day's
/// shape), the search engine domain its visitors come from, and its share of the traffic.
pub struct Shop {
    pub host: &'static str,
    pub lang: &'static str,
    pub store_id: u32,
    pub utc_offset_h: i64,
    pub google: &'static str,
    /// relative share of all views (see `SHOPS`)
    pub weight: f64,
}

/// (host, language, store_id, UTC offset h, google domain, weight)
const SHOPS: &[(&str, &str, u32, i64, &str, f64)] = &[
    ("www.glamira.de", "de", 6, 1, "www.google.de", 18.0),
    ("www.glamira.fr", "fr", 12, 1, "www.google.fr", 12.0),
    ("www.glamira.co.uk", "en", 9, 0, "www.google.co.uk", 10.0),
    ("www.glamira.com", "en", 1, -5, "www.google.com", 9.0),
    ("www.glamira.it", "it", 14, 1, "www.google.it", 8.0),
    ("www.glamira.es", "es", 13, 1, "www.google.es", 7.0),
    ("www.glamira.nl", "nl", 17, 1, "www.google.nl", 5.0),
    ("www.glamira.pl", "pl", 25, 1, "www.google.pl", 4.0),
    ("www.glamira.se", "sv", 21, 1, "www.google.se", 3.0),
    ("www.glamira.dk", "da", 22, 1, "www.google.dk", 2.5),
    ("www.glamira.at", "de", 7, 1, "www.google.at", 3.0),
    ("www.glamira.ch", "de", 8, 1, "www.google.ch", 2.5),
    ("www.glamira.be", "fr", 16, 1, "www.google.be", 2.0),
    ("www.glamira.fi", "fi", 23, 2, "www.google.fi", 1.5),
    ("www.glamira.no", "nb", 24, 1, "www.google.no", 1.5),
    ("www.glamira.cz", "cs", 29, 1, "www.google.cz", 1.2),
    ("www.glamira.pt", "pt", 30, 0, "www.google.pt", 1.2),
    ("www.glamira.ro", "ro", 33, 2, "www.google.ro", 1.0),
    ("www.glamira.hu", "hu", 31, 1, "www.google.hu", 1.0),
    ("www.glamira.gr", "el", 38, 2, "www.google.gr", 0.8),
    ("www.glamira.ie", "en", 10, 0, "www.google.ie", 0.8),
    ("www.glamira.com.au", "en", 41, 10, "www.google.com.au", 1.0),
    ("www.glamira.ca", "en", 42, -5, "www.google.ca", 0.9),
    ("www.glamira.com.mx", "es", 46, -6, "www.google.com.mx", 0.7),
    ("www.glamira.com.br", "pt", 48, -3, "www.google.com.br", 0.6),
    ("www.glamira.jp", "ja", 51, 9, "www.google.co.jp", 0.4),
];

/// Product kinds and their word in shop URLs, per language (English when not listed).
const KINDS: &[(&str, &[(&str, &str)])] = &[
    (
        "ring",
        &[
            ("fr", "bague"),
            ("it", "anello"),
            ("es", "anillo"),
            ("pl", "pierscionek"),
            ("pt", "anel"),
        ],
    ),
    (
        "necklace",
        &[
            ("de", "kette"),
            ("fr", "collier"),
            ("it", "collana"),
            ("es", "collar"),
            ("nl", "ketting"),
            ("pl", "naszyjnik"),
            ("sv", "halsband"),
        ],
    ),
    (
        "earrings",
        &[
            ("de", "ohrringe"),
            ("fr", "boucles-d-oreilles"),
            ("it", "orecchini"),
            ("es", "pendientes"),
            ("nl", "oorbellen"),
            ("pl", "kolczyki"),
        ],
    ),
    (
        "bracelet",
        &[
            ("de", "armband"),
            ("it", "bracciale"),
            ("es", "pulsera"),
            ("nl", "armband"),
            ("pl", "bransoletka"),
        ],
    ),
    (
        "pendant",
        &[
            ("de", "anhaenger"),
            ("fr", "pendentif"),
            ("it", "ciondolo"),
            ("es", "colgante"),
            ("nl", "hanger"),
        ],
    ),
    ("wedding-ring", &[("de", "ehering"), ("fr", "alliance")]),
];

/// The URL word of product kind `kind` on a shop in language `lang`.
pub(super) fn kind_word(kind: usize, lang: &str) -> &'static str {
    let (en, words) = KINDS[kind % KINDS.len()];
    words
        .iter()
        .find(|(l, _)| *l == lang)
        .map_or(en, |(_, w)| w)
}

const SYLLABLES: &[&str] = &[
    "sa", "phi", "ra", "ly", "ma", "dor", "el", "ia", "ve", "na", "lu", "mi", "ro", "sel", "ta",
    "cor", "bel", "da", "ni", "kar", "is", "ou", "val", "en", "ti", "zo", "ca", "le",
];

pub(super) const ALLOYS: &[&str] = &[
    "white-375",
    "white-585",
    "white-750",
    "yellow-375",
    "yellow-585",
    "yellow-750",
    "red-585",
    "red-750",
    "platinum",
    "silber-925",
    "white-yellow-585",
];

pub(super) const STONES: &[&str] = &[
    "diamond-Brillant",
    "sapphire",
    "ruby",
    "emerald",
    "zirconia",
    "swarovskicrystal",
    "amethyst",
    "topaz",
    "diamond-Brillant-black",
    "pearl",
];

/// One catalogue product, derived from its popularity rank alone (no table to miss the
/// cache on): ids are distinct per rank and do not follow popularity.
#[derive(Debug, Clone, Copy)]
pub(super) struct Product {
    pub id: u32,
    pub kind: usize,
    /// bits the URL slug is made of (see [`Product::push_name`])
    name: u64,
    /// `option_id`s of its alloy and stone options
    pub option_ids: [u32; 2],
    /// index into [`ALLOYS`] / [`STONES`] of its most viewed variant
    pub alloy: usize,
    pub stone: usize,
}

impl Product {
    pub(super) fn of_rank(rank: u64) -> Product {
        let rank = rank % PRODUCTS as u64;
        let h = mix(rank ^ POOL_SEED);
        let h2 = mix(h);
        // a bijection of 0..PRODUCTS (1237 is prime to 4000), then a 37-wide slot each
        let slot = (rank * 1237 + 611) % PRODUCTS as u64;
        Product {
            id: 10_000 + (slot * 37 + h % 37) as u32,
            kind: ((h >> 8) % KINDS.len() as u64) as usize,
            name: h2,
            option_ids: [
                300_000 + ((h >> 16) % 100_000) as u32,
                300_000 + ((h >> 40) % 100_000) as u32,
            ],
            alloy: ((h2 >> 50) % ALLOYS.len() as u64) as usize,
            stone: ((h2 >> 56) % STONES.len() as u64) as usize,
        }
    }

    /// The URL slug: 2-3 syllables, sometimes a `-skugNNNNNN` suffix (`saphira`,
    /// `lumiel-skug100335`).
    pub(super) fn push_name(&self, out: &mut String) {
        let n = self.name;
        let syllables = 2 + (n & 1) as u32;
        for i in 0..syllables {
            let s = ((n >> (1 + 6 * i)) & 63) as usize % SYLLABLES.len();
            out.push_str(SYLLABLES[s]);
        }
        if (n >> 20) % 10 < 3 {
            write!(out, "-skug{}", 100_000 + (n >> 24) % 900_000).ok();
        }
    }
}

/// All pools with their popularity distributions.
pub(super) struct Pools {
    pub shops: Vec<Shop>,
    pub shop_w: Weighted,
    /// product popularity rank, see [`Product::of_rank`]
    pub product_z: Zipf,
    /// IP popularity rank, see [`push_ip`]
    pub ip_z: Zipf,
    pub agents: Vec<Agent>,
    pub agent_w: Weighted,
}

impl Pools {
    pub(super) fn build() -> Pools {
        let mut rng = seeded(POOL_SEED);
        let shops = shops();
        let shop_w = Weighted::new(shops.iter().map(|s| s.weight));
        let (agents, weights) = agents(&mut rng);
        let agent_w = Weighted::new(weights.into_iter());
        Pools {
            shops,
            shop_w,
            product_z: Zipf::new(PRODUCTS as u64, 1.0),
            ip_z: Zipf::new(IPS as u64, 0.8),
            agents,
            agent_w,
        }
    }
}

/// The country shops, in a fixed order (a shop's index is the same everywhere).
pub(super) fn shops() -> Vec<Shop> {
    SHOPS
        .iter()
        .map(
            |&(host, lang, store_id, utc_offset_h, google, weight)| Shop {
                host,
                lang,
                store_id,
                utc_offset_h,
                google,
                weight,
            },
        )
        .collect()
}

/// Whether an IPv4 address is private, loopback, link-local, CGNAT, multicast or reserved.
fn special_v4(a: u32) -> bool {
    let [o1, o2, _, _] = a.to_be_bytes();
    o1 == 0
        || o1 == 10
        || o1 == 127
        || o1 >= 224
        || (o1 == 169 && o2 == 254)
        || (o1 == 172 && (16..32).contains(&o2))
        || (o1 == 192 && o2 == 168)
        || (o1 == 100 && (64..128).contains(&o2))
}

/// Real-looking ISP IPv6 prefixes (Telekom, Orange, Vodafone, BT, Free, Sky, ...), as
/// their first two 16-bit groups.
const V6_PREFIXES: &[[u16; 2]] = &[
    [0x2003, 0xe5],
    [0x2003, 0xc1],
    [0x2a01, 0xcb1d],
    [0x2a01, 0xe0a],
    [0x2a02, 0x908],
    [0x2a00, 0x23c5],
    [0x2a02, 0xa03f],
    [0x2001, 0x4ca0],
    [0x2a02, 0x2f0e],
    [0x2a01, 0x598],
    [0x2600, 0x1700],
    [0x2a00, 0x1370],
];

/// Writes the IP address of popularity rank `rank`: about 10% IPv6 (ISP prefixes), 0.1%
/// private IPv4, the rest public IPv4.
pub(super) fn push_ip(out: &mut String, rank: u64) {
    let h = mix(rank ^ POOL_SEED.rotate_left(32));
    match h % 1000 {
        0..=99 => {
            let [g0, g1] = V6_PREFIXES[((h >> 10) % V6_PREFIXES.len() as u64) as usize];
            let rest = mix(h);
            let groups = [
                g0,
                g1,
                (rest >> 48) as u16,
                (rest >> 32) as u16,
                (rest >> 16) as u16,
                rest as u16,
                (h >> 32) as u16,
                (h >> 48) as u16,
            ];
            for (i, g) in groups.iter().enumerate() {
                let sep = if i > 0 { ":" } else { "" };
                write!(out, "{sep}{g:x}").ok();
            }
        }
        100 => {
            // a few private addresses (proxies, office networks, test traffic)
            let [a, b, c, d]: [u64; 4] = match (h >> 10) % 3 {
                0 => [10, (h >> 16) & 255, (h >> 24) & 255, (h >> 32) & 255],
                1 => [192, 168, (h >> 16) & 255, 1 + (h >> 24) % 254],
                _ => [172, 16 + (h >> 16) % 16, (h >> 24) & 255, (h >> 32) & 255],
            };
            write!(out, "{a}.{b}.{c}.{d}").ok();
        }
        _ => {
            let mut a = (h >> 32) as u32;
            while special_v4(a) {
                a = mix(u64::from(a)) as u32;
            }
            write!(out, "{}", std::net::Ipv4Addr::from(a)).ok();
        }
    }
}

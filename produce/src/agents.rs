//! The user-agent pool: a few hundred real-looking agents generated from browser × OS ×
//! version templates (Chrome, Edge, Firefox, Safari, Opera, Samsung Internet on Windows,
//! macOS, Linux, Android, iOS, plus crawlers), each with a popularity weight.

use super::rng::{pick, Rng};

/// A user agent and whether it is a phone (for `resolution`).
pub(super) struct Agent {
    pub text: String,
    pub mobile: bool,
}

const ANDROID_MODELS: &[&str] = &[
    "SM-G991B",
    "SM-A515F",
    "SM-S918B",
    "SM-A528B",
    "SM-G973F",
    "Pixel 7",
    "Pixel 6a",
    "Redmi Note 8 Pro",
    "M2101K6G",
    "CPH2211",
    "moto g(30)",
    "VOG-L29",
    "ONEPLUS A6013",
];
const SAMSUNG_MODELS: &[&str] = &["SM-G991B", "SM-A515F", "SM-S918B", "SM-A528B", "SM-G973F"];
const IOS: &[&str] = &["13_7", "14_8", "15_7", "16_6", "17_1", "17_4", "17_5"];
const ANDROID: &[&str] = &["10", "11", "12", "13", "14"];
const WINDOWS: &[&str] = &[
    "Windows NT 10.0; Win64; x64",
    "Windows NT 6.1; Win64; x64",
    "Windows NT 6.3; Win64; x64",
];
const MACOS: &[&str] = &[
    "Macintosh; Intel Mac OS X 10_15_7",
    "Macintosh; Intel Mac OS X 10_14_6",
    "Macintosh; Intel Mac OS X 13_5_2",
];
const CRAWLERS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
];

/// A few hundred user agents from browser × OS × version templates, each with a
/// popularity weight: the family's share times a decay over its versions (newest first).
pub(super) fn agents(rng: &mut Rng) -> (Vec<Agent>, Vec<f64>) {
    let mut out: Vec<(Agent, f64)> = Vec::new();
    let mut family = |share: f64, texts: Vec<(String, bool)>| {
        let total: f64 = (0..texts.len()).map(|i| 1.0 / (i as f64 + 1.0)).sum();
        for (i, (text, mobile)) in texts.into_iter().enumerate() {
            out.push((Agent { text, mobile }, share / (i as f64 + 1.0) / total));
        }
    };
    // build numbers close to the real ones (Chrome 100 was 4896, 124 was 6367)
    let build = |v: u32| 4_896 + (v.max(80) - 80) * 61 - 20 * 61;
    let chrome = |v: u32| format!("Chrome/{v}.0.{}.{}", build(v), 40 + v % 7 * 23);
    let versions = |newest: u32, n: u32| (0..n).map(move |i| newest - i);
    let webkit = "AppleWebKit/537.36 (KHTML, like Gecko)";

    // Chrome on Windows / macOS / Linux / Android / iOS
    let mut v = Vec::new();
    for c in versions(124, 30) {
        for w in WINDOWS.iter().take(if c > 118 { 3 } else { 1 }) {
            v.push((
                format!("Mozilla/5.0 ({w}) {webkit} {} Safari/537.36", chrome(c)),
                false,
            ));
        }
    }
    family(28.0, v);
    let mut v = Vec::new();
    for c in versions(124, 14) {
        for m in MACOS.iter().take(2) {
            v.push((
                format!("Mozilla/5.0 ({m}) {webkit} {} Safari/537.36", chrome(c)),
                false,
            ));
        }
    }
    family(5.0, v);
    let v = versions(124, 8)
        .map(|c| {
            (
                format!(
                    "Mozilla/5.0 (X11; Linux x86_64) {webkit} {} Safari/537.36",
                    chrome(c)
                ),
                false,
            )
        })
        .collect();
    family(1.5, v);
    let mut v = Vec::new();
    for c in versions(124, 12) {
        for _ in 0..4 {
            let a = pick(rng, ANDROID);
            let m = pick(rng, ANDROID_MODELS);
            v.push((
                format!(
                    "Mozilla/5.0 (Linux; Android {a}; {m}) {webkit} {} Mobile Safari/537.36",
                    chrome(c)
                ),
                true,
            ));
        }
    }
    family(20.0, v);
    let mut v = Vec::new();
    for c in versions(124, 6) {
        for i in IOS.iter().rev().take(3) {
            v.push((
                format!("Mozilla/5.0 (iPhone; CPU iPhone OS {i} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/{c}.0.{}.{} Mobile/15E148 Safari/604.1", build(c), 30 + c % 5 * 31),
                true,
            ));
        }
    }
    family(2.5, v);
    // Safari on iPhone, iPad and macOS
    let mut v = Vec::new();
    for i in IOS.iter().rev() {
        let sv = i.replace('_', ".");
        v.push((format!("Mozilla/5.0 (iPhone; CPU iPhone OS {i} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{sv} Mobile/15E148 Safari/604.1"), true));
        v.push((format!("Mozilla/5.0 (iPad; CPU OS {i} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{sv} Mobile/15E148 Safari/604.1"), false));
        for m in MACOS {
            v.push((format!("Mozilla/5.0 ({m}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{sv} Safari/605.1.15"), false));
        }
    }
    family(18.0, v);
    // Edge and Opera on Windows / macOS
    let mut v = Vec::new();
    for c in versions(124, 12) {
        for w in [WINDOWS[0], MACOS[0]] {
            v.push((
                format!(
                    "Mozilla/5.0 ({w}) {webkit} {} Safari/537.36 Edg/{c}.0.{}.{}",
                    chrome(c),
                    1_185 + (c - 100) * 54,
                    40 + c % 9 * 11
                ),
                false,
            ));
        }
    }
    family(8.0, v);
    let v = versions(110, 10)
        .map(|o| {
            (
                format!(
                    "Mozilla/5.0 ({}) {webkit} {} Safari/537.36 OPR/{o}.0.0.0",
                    WINDOWS[0],
                    chrome(o + 14)
                ),
                false,
            )
        })
        .collect();
    family(1.5, v);
    // Firefox on Windows / macOS / Linux / Android
    let mut v = Vec::new();
    for f in versions(125, 16) {
        v.push((
            format!(
                "Mozilla/5.0 ({}; rv:{f}.0) Gecko/20100101 Firefox/{f}.0",
                WINDOWS[0]
            ),
            false,
        ));
        v.push((format!("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{f}.0) Gecko/20100101 Firefox/{f}.0"), false));
        v.push((
            format!(
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{f}.0) Gecko/20100101 Firefox/{f}.0"
            ),
            false,
        ));
        v.push((
            format!(
                "Mozilla/5.0 (Android {}; Mobile; rv:{f}.0) Gecko/{f}.0 Firefox/{f}.0",
                ANDROID[f as usize % ANDROID.len()]
            ),
            true,
        ));
    }
    family(6.0, v);
    // Samsung Internet
    let mut v = Vec::new();
    for s in versions(24, 8) {
        for m in SAMSUNG_MODELS {
            v.push((
                format!("Mozilla/5.0 (Linux; Android {}; SAMSUNG {m}) {webkit} SamsungBrowser/{s}.0 Chrome/{}.0.0.0 Mobile Safari/537.36", ANDROID[s as usize % ANDROID.len()], 69 + s * 2),
                true,
            ));
        }
    }
    family(4.0, v);
    family(
        1.0,
        CRAWLERS.iter().map(|c| (c.to_string(), false)).collect(),
    );
    out.into_iter().unzip()
}

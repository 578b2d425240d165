//! Unit tests of the synthetic events and the flag validation.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::synth::{Kind, Synth};
use super::*;
use streamer::transform::{transform, DeadReason};

/// 2024-05-01 00:00:00 UTC
const START: i64 = 1_714_521_600;

fn collect(seed: u64, n: u64, dup: f64, bad: f64) -> Vec<(Vec<u8>, Vec<u8>, Kind)> {
    let mut s = Synth::new(seed, dup, bad);
    (0..n)
        .map(|i| {
            let m = s.next(i, START + i as i64);
            (m.key.to_vec(), m.payload.to_vec(), m.kind)
        })
        .collect()
}

#[test]
fn same_seed_same_messages_other_seed_others() {
    let a = collect(7, 2_000, 0.05, 0.01);
    let b = collect(7, 2_000, 0.05, 0.01);
    assert_eq!(a, b);
    let c = collect(8, 2_000, 0.05, 0.01);
    assert_ne!(a[0].1, c[0].1);
    let ids_a: HashSet<_> = a.iter().map(|m| m.0.clone()).collect();
    assert!(c.iter().all(|m| !ids_a.contains(&m.0)), "seeds share ids");
}

#[test]
fn shares_kinds_and_transform_verdicts() {
    let n = 10_000u64;
    let msgs = collect(42, n, 0.05, 0.02);
    let mut fresh_ids = HashSet::new();
    let mut by_key: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let (mut dups, mut bad) = (0, 0);
    let mut reasons = HashSet::new();
    for (key, payload, kind) in &msgs {
        let got = transform(Some(payload));
        match kind {
            Kind::Fresh => {
                let fact = got
                    .unwrap_or_else(|e| panic!("{e:?} for {}", String::from_utf8_lossy(payload)));
                assert_eq!(fact.event_id().as_bytes(), &key[..], "key is the id");
                assert!(fresh_ids.insert(key.clone()), "id repeated");
                by_key.insert(key.clone(), payload.clone());
            }
            Kind::Duplicate => {
                dups += 1;
                assert_eq!(by_key.get(key), Some(payload), "duplicate not verbatim");
            }
            Kind::Malformed(reason) => {
                bad += 1;
                let e = got.expect_err(&String::from_utf8_lossy(payload));
                assert_eq!(
                    e.reason.code(),
                    reason.code(),
                    "{}",
                    String::from_utf8_lossy(payload)
                );
                reasons.insert(e.reason);
                assert!(!key.is_empty());
            }
        }
    }
    let share = |k: u64| k as f64 / n as f64;
    assert!((0.04..0.06).contains(&share(dups)), "dups {dups}");
    assert!((0.013..0.027).contains(&share(bad)), "bad {bad}");
    for r in [
        DeadReason::NotJson,
        DeadReason::NotObject,
        DeadReason::MissingId,
        DeadReason::BadTimeStamp,
        DeadReason::NulCharacter,
    ] {
        assert!(reasons.contains(&r), "no {r:?}");
    }
}

#[test]
fn variety_of_the_fresh_events() {
    let msgs = collect(3, 10_000, 0.0, 0.0);
    let facts: Vec<_> = msgs
        .iter()
        .map(|m| transform(Some(&m.1)).expect("valid"))
        .collect();
    let ips: HashSet<_> = facts
        .iter()
        .filter_map(|f| f.ip().map(str::to_owned))
        .collect();
    let v6 = ips.iter().filter(|ip| ip.contains(':')).count();
    assert!(ips.len() > 3_000, "{} distinct ips", ips.len());
    assert!(v6 * 100 / ips.len() >= 5, "{v6} IPv6 of {}", ips.len());
    assert!(facts.iter().any(|f| f.ip().is_none()));
    let agents: HashSet<_> = facts
        .iter()
        .filter_map(|f| f.user_agent().map(str::to_owned))
        .collect();
    assert!(agents.len() > 100, "{} agents", agents.len());
    for family in [
        "Edg/",
        "Firefox/",
        "OPR/",
        "SamsungBrowser/",
        "CriOS/",
        "Googlebot",
        "iPhone",
        "Android",
    ] {
        assert!(agents.iter().any(|a| a.contains(family)), "no {family}");
    }
    let products: HashMap<_, usize> = facts
        .iter()
        .filter_map(|f| f.product_key().map(str::to_owned))
        .fold(HashMap::new(), |mut m, p| {
            *m.entry(p).or_default() += 1;
            m
        });
    assert!(products.len() > 1_000, "{} products", products.len());
    let top = products.values().max().copied().unwrap_or(0);
    assert!(top > 300, "popularity not skewed: top product {top} views");
    let hosts: HashSet<_> = facts
        .iter()
        .filter_map(|f| f.current_url())
        .filter_map(|u| u.split('/').nth(2).map(str::to_string))
        .collect();
    for h in [
        "www.glamira.de",
        "www.glamira.fr",
        "www.glamira.co.uk",
        "www.glamira.com",
        "www.glamira.it",
        "www.glamira.es",
        "www.glamira.nl",
        "www.glamira.pl",
        "www.glamira.se",
        "www.glamira.dk",
    ] {
        assert!(hosts.contains(h), "no {h}");
    }
    assert!(facts.iter().any(|f| f.referrer_url().is_none()));
    assert!(facts
        .iter()
        .any(|f| f.current_url().is_some_and(|u| u.contains('?'))));
    let text = |m: &(Vec<u8>, Vec<u8>, Kind)| String::from_utf8(m.1.clone()).unwrap();
    let all: Vec<String> = msgs.iter().map(text).collect();
    for needle in [
        "\"recommendation\":false",
        "\"store_id\":",
        "\"product_id\":\"",
        "\"option\":[{\"option_label\"",
        "\"referrer_url\":\"\"",
        "\"time_stamp\":\"",
    ] {
        assert!(all.iter().any(|t| t.contains(needle)), "no {needle}");
    }
    // numbers where strings are expected
    assert!(all
        .iter()
        .any(|t| t.contains("\"store_id\":") && !t.contains("\"store_id\":\"")));
    assert!(all
        .iter()
        .any(|t| t.contains("\"product_id\":") && !t.contains("\"product_id\":\"")));
    // time stamps advance with the index from --start
    assert_eq!(facts[0].time_stamp, START);
    assert_eq!(facts[9_999].time_stamp, START + 9_999);
}

#[test]
fn clock_paces_rate_and_spreads_a_day() {
    let args = |rate, start, events, span| ProduceArgs {
        events,
        duration: None,
        rate,
        seed: 1,
        dup_rate: 0.0,
        bad_rate: 0.0,
        start,
        span,
        file: None,
        topic: None,
        ack_log: None,
        keys: Keys::Id,
    };
    let clock = |a: &ProduceArgs| Clock::new(a, Clock::day(a));
    // --rate without --span: event time follows the rate
    let c = clock(&args(10, Some(START), Some(100), None));
    assert_eq!(
        (c.at(0), c.at(9), c.at(10), c.at(95)),
        (START, START, START + 1, START + 9)
    );
    // --events: the day's shape over one day by default, over --span when given
    for (rate, span, len) in [(0, None, 86_400), (10, Some(7_200), 7_200)] {
        let c = clock(&args(rate, Some(START), Some(1_000), span));
        assert!(matches!(c, Clock::Counted { .. }), "{c:?}");
        let times: Vec<i64> = (0..1_000).map(|i| c.at(i)).collect();
        assert_eq!(times[0], START);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "times decrease");
        assert!(times[999] < START + len && times[999] > START + len * 9 / 10);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let c = clock(&args(0, None, Some(10), None));
    assert!((c.at(5) - now).abs() <= 2);
    // --duration: the elapsed share of it, over the shape
    let a = ProduceArgs {
        duration: Some(Duration::from_secs(3_600)),
        ..args(0, Some(START), None, Some(86_400))
    };
    let c = clock(&a);
    assert!(matches!(c, Clock::Stretched { .. }), "{c:?}");
    assert!((START..START + 600).contains(&c.at(0)), "{}", c.at(0));
}

fn cli() -> ProduceCli {
    ProduceCli::default()
}

#[test]
fn flags_are_validated() {
    let err = |c: ProduceCli| match c.args() {
        Err(Error::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    };
    assert!(err(cli()).contains("exactly one"));
    assert!(err(ProduceCli {
        events: Some(5),
        duration: Some("3".into()),
        ..cli()
    })
    .contains("exactly one"));
    assert!(err(ProduceCli {
        events: Some(0),
        ..cli()
    })
    .contains("at least 1"));
    assert!(err(ProduceCli {
        duration: Some("0".into()),
        ..cli()
    })
    .contains("--duration"));
    assert!(err(ProduceCli {
        duration: Some("soon".into()),
        ..cli()
    })
    .contains("--duration"));
    assert!(err(ProduceCli {
        events: Some(1),
        dup_rate: Some(1.5),
        ..cli()
    })
    .contains("--dup-rate"));
    assert!(err(ProduceCli {
        events: Some(1),
        bad_rate: Some(-0.1),
        ..cli()
    })
    .contains("--bad-rate"));
    assert!(err(ProduceCli {
        events: Some(1),
        dup_rate: Some(0.6),
        bad_rate: Some(0.6),
        ..cli()
    })
    .contains("exceeds 1"));
    assert!(err(ProduceCli {
        events: Some(1),
        start: Some("yesterday".into()),
        ..cli()
    })
    .contains("--start"));
    assert!(err(ProduceCli {
        file: Some("x".into()),
        seed: Some(1),
        ..cli()
    })
    .contains("--seed"));
    assert!(err(ProduceCli {
        file: Some("x".into()),
        span: Some("1d".into()),
        ..cli()
    })
    .contains("--span"));
    assert!(err(ProduceCli {
        events: Some(1),
        span: Some("1d".into()),
        ..cli()
    })
    .contains("--span needs --start"));
    for bad in ["0", "soon", "400d", "-1h"] {
        assert!(err(ProduceCli {
            events: Some(1),
            start: Some("2024-05-01".into()),
            span: Some(bad.into()),
            ..cli()
        })
        .contains("--span"));
    }
    for (text, secs) in [
        ("1d", 86_400),
        ("36h", 129_600),
        ("90m", 5_400),
        ("600", 600),
    ] {
        let a = ProduceCli {
            events: Some(1),
            start: Some("2024-05-01".into()),
            span: Some(text.into()),
            ..cli()
        }
        .args()
        .unwrap();
        assert_eq!(a.span, Some(secs), "{text}");
    }

    let a = ProduceCli {
        events: Some(10),
        start: Some("2024-05-01".into()),
        seed: Some(9),
        ..cli()
    }
    .args()
    .unwrap();
    assert_eq!(
        (a.events, a.start, a.seed, a.dup_rate, a.bad_rate),
        (Some(10), Some(START), 9, 0.01, 0.001)
    );
    let a = ProduceCli {
        duration: Some("1.5m".into()),
        start: Some("1714521600".into()),
        ..cli()
    }
    .args()
    .unwrap();
    assert_eq!(
        (a.duration, a.start),
        (Some(Duration::from_secs(90)), Some(START))
    );
    let a = ProduceCli {
        duration: Some("2h".into()),
        ..cli()
    }
    .args()
    .unwrap();
    assert_eq!(a.duration, Some(Duration::from_secs(7_200)));
    let a = ProduceCli {
        file: Some("events.jsonl".into()),
        rate: 5,
        ..cli()
    }
    .args()
    .unwrap();
    assert_eq!((a.file, a.rate), (Some(PathBuf::from("events.jsonl")), 5));
}

/// `streamer produce CONFIG`'s flags as the command line parses them.
#[derive(clap::Parser, Debug)]
struct Produce {
    #[command(flatten)]
    args: ProduceCli,
}

fn parse(argv: &[&str]) -> std::result::Result<ProduceCli, clap::Error> {
    use clap::Parser as _;
    Produce::try_parse_from(std::iter::once("produce").chain(argv.iter().copied())).map(|p| p.args)
}

#[test]
fn ack_log_flag_is_optional_and_hidden() {
    let a = parse(&["--events", "5"]).unwrap().args().unwrap();
    assert_eq!(a.ack_log, None);
    let a = parse(&[
        "--duration",
        "10",
        "--rate",
        "2000",
        "--ack-log",
        "/tmp/acks.txt",
    ])
    .unwrap()
    .args()
    .unwrap();
    assert_eq!(
        (a.ack_log, a.rate),
        (Some(PathBuf::from("/tmp/acks.txt")), 2_000)
    );
    // with --file replay too
    let a = parse(&["--file", "e.jsonl", "--ack-log=acks"])
        .unwrap()
        .args()
        .unwrap();
    assert_eq!(a.ack_log, Some(PathBuf::from("acks")));
    assert!(
        parse(&["--events", "5", "--ack-log"]).is_err(),
        "needs a value"
    );
    // an empty name: refused by the command line, and by the validation
    assert!(parse(&["--events", "5", "--ack-log", ""]).is_err());
    let empty = ProduceCli {
        events: Some(5),
        ack_log: Some(PathBuf::new()),
        ..cli()
    };
    match empty.args() {
        Err(Error::Config(m)) => assert!(m.contains("--ack-log"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let help = {
        use clap::CommandFactory as _;
        Produce::command().render_long_help().to_string()
    };
    assert!(
        help.contains("--events") && !help.contains("--ack-log"),
        "{help}"
    );
}

#[test]
fn producer_drops_consumer_properties_and_owns_acks() {
    let target = Target {
        client_id: "a".into(),
        properties: [
            ("bootstrap.servers", "b:9092"),
            ("fetch.wait.max.ms", "10"),
            ("acks", "1"),
            ("linger.ms", "50"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into(),
        default_topic: Some("t".into()),
        describe_error: |e| e.to_string(),
        judge: |_| None,
    };
    let cc = producer_config(&target);
    assert_eq!(cc.get("fetch.wait.max.ms"), None);
    assert_eq!(cc.get("acks"), Some("all"));
    assert_eq!(cc.get("enable.idempotence"), Some("true"));
    assert_eq!(cc.get("linger.ms"), Some("50"));
    assert_eq!(cc.get("bootstrap.servers"), Some("b:9092"));
    assert_eq!(cc.get("client.id"), Some("a"));
}

#[test]
fn limits_and_codes_are_the_consumers() {
    assert_eq!(MAX_START, streamer::transform::MAX_TIME_STAMP);
    for (defect, reason) in [
        (Defect::NotJson, DeadReason::NotJson),
        (Defect::NotObject, DeadReason::NotObject),
        (Defect::MissingId, DeadReason::MissingId),
        (Defect::BadTimeStamp, DeadReason::BadTimeStamp),
        (Defect::NulCharacter, DeadReason::NulCharacter),
    ] {
        assert_eq!(defect.code(), reason.code());
    }
}

/// The JSON of a fresh event: the tracker's keys in its order, `_id` first and `id` last,
/// the optional ones sometimes absent, and the types it sends (text, numbers, booleans).
#[test]
fn events_keep_the_trackers_key_order() {
    const ORDER: &[&str] = &[
        "_id",
        "time_stamp",
        "ip",
        "user_agent",
        "resolution",
        "user_id_db",
        "device_id",
        "api_version",
        "store_id",
        "local_time",
        "show_recommendation",
        "current_url",
        "referrer_url",
        "email_address",
        "recommendation",
        "utm_source",
        "utm_medium",
        "collection",
        "product_id",
        "option",
        "key_search",
        "cat_id",
        "viewing_product_id",
        "id",
    ];
    let mut absent = HashSet::new();
    for (_, payload, _) in collect(9, 3_000, 0.0, 0.0) {
        let text = String::from_utf8(payload).unwrap();
        assert!(
            text.starts_with("{\"_id\":\"") && text.ends_with("\"}"),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys = value.as_object().unwrap();
        let mut at = 0;
        for key in ORDER {
            match text.find(&format!("\"{key}\":")) {
                Some(i) => {
                    assert!(i >= at, "{key} out of order: {text}");
                    assert!(keys.contains_key(*key));
                    at = i;
                }
                None => {
                    absent.insert(*key);
                }
            }
        }
        assert_eq!(
            keys.len(),
            ORDER.len() - ORDER.iter().filter(|k| !keys.contains_key(**k)).count(),
            "an unknown key: {text}"
        );
        assert!(
            text.contains(&format!(",\"id\":{}}}", keys["id"])),
            "{text}"
        );
    }
    for optional in [
        "ip",
        "user_agent",
        "referrer_url",
        "email_address",
        "option",
        "cat_id",
    ] {
        assert!(absent.contains(optional), "{optional} never absent");
    }
    for always in [
        "_id",
        "time_stamp",
        "device_id",
        "local_time",
        "current_url",
        "id",
    ] {
        assert!(!absent.contains(always), "{always} absent");
    }
}

//! `streamer produce` against the shared Kafka broker of the test run: what is read back from the topic
//! is exactly what the report says was sent, keyed and spread as promised.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::harness;
use crate::harness::produce;
use crate::harness::{Broker, TempDir};
use rdkafka::message::{Message, OwnedMessage};
use streamer::config::Config;
use streamer::transform::transform;
use streamer_produce::{Keys, ProduceArgs};

const PARTITIONS: i32 = 4;
/// 2024-05-01 00:00:00 UTC
const START: i64 = 1_714_521_600;

fn setup(dir: &TempDir) -> (&'static Broker, String, Config) {
    let broker = Broker::shared();
    let topic = harness::unique_name("produce");
    broker.create_topic(&topic, PARTITIONS);
    let path = harness::write_config(dir.path(), &broker.bootstrap(), "unused", &topic, "");
    let cfg = Config::load(&path).expect("config");
    (broker, topic, cfg)
}

fn synthetic(events: u64, seed: u64) -> ProduceArgs {
    ProduceArgs {
        events: Some(events),
        duration: None,
        rate: 0,
        seed,
        dup_rate: 0.05,
        bad_rate: 0.01,
        start: Some(START),
        span: None,
        file: None,
        topic: None,
        ack_log: None,
        keys: Keys::Id,
    }
}

fn read_back(broker: &Broker, topic: &str) -> Vec<OwnedMessage> {
    broker.consume_all(topic, PARTITIONS as usize, Duration::from_secs(90))
}

#[test]
fn synthetic_events_arrive_keyed_spread_and_counted() {
    let dir = TempDir::new("produce-it");
    let (broker, topic, cfg) = setup(&dir);
    let report = produce::run(&cfg, &synthetic(2_000, 1)).expect("produce");
    assert_eq!(report.sent, 2_000);

    let msgs = read_back(broker, &topic);
    assert_eq!(msgs.len() as u64, report.sent, "messages on the topic");
    let partitions: HashSet<i32> = msgs.iter().map(|m| m.partition()).collect();
    assert_eq!(partitions.len(), PARTITIONS as usize, "partitions used");

    // Every message is keyed; a key always lands in one partition, and a repeated key
    // carries the same payload (a verbatim re-send).
    let mut by_key: HashMap<Vec<u8>, (i32, Vec<u8>)> = HashMap::new();
    let (mut repeats, mut rejected) = (0u64, 0u64);
    for m in &msgs {
        let key = m.key().expect("keyed").to_vec();
        let payload = m.payload().expect("payload").to_vec();
        match transform(Some(&payload)) {
            Ok(fact) => assert_eq!(fact.event_id().as_bytes(), &key[..], "key is the id"),
            Err(_) => rejected += 1,
        }
        match by_key.get(&key) {
            Some((p, first)) => {
                repeats += 1;
                assert_eq!(*p, m.partition(), "duplicate in another partition");
                assert_eq!(first, &payload, "duplicate is not verbatim");
            }
            None => {
                by_key.insert(key, (m.partition(), payload));
            }
        }
    }
    assert_eq!(repeats, report.duplicates);
    assert_eq!(rejected, report.malformed);
    assert!(
        (50..=150).contains(&report.duplicates),
        "duplicates {} of 2000 at 5%",
        report.duplicates
    );
    assert!(
        (5..=45).contains(&report.malformed),
        "malformed {}",
        report.malformed
    );
}

/// `--keys dup-anywhere`: duplicates go out without a key and land on any partition, as
/// real re-sends do; `--keys none`: nothing is keyed. The report still counts them.
#[test]
fn duplicates_can_land_anywhere_and_messages_can_be_keyless() {
    let dir = TempDir::new("produce-keys");
    let (broker, topic, cfg) = setup(&dir);
    let args = ProduceArgs {
        dup_rate: 0.2,
        keys: Keys::DupAnywhere,
        ..synthetic(2_000, 5)
    };
    let report = produce::run(&cfg, &args).expect("produce");
    let msgs = read_back(broker, &topic);
    assert_eq!(msgs.len() as u64, report.sent);
    let keyless = msgs.iter().filter(|m| m.key().is_none()).count() as u64;
    assert_eq!(
        keyless, report.duplicates,
        "exactly the duplicates are keyless"
    );
    let mut copies: HashMap<Vec<u8>, Vec<(bool, i32)>> = HashMap::new();
    for m in &msgs {
        copies
            .entry(m.payload().expect("payload").to_vec())
            .or_default()
            .push((m.key().is_some(), m.partition()));
    }
    let repeated: Vec<_> = copies.values().filter(|c| c.len() > 1).collect();
    assert!(!repeated.is_empty(), "no duplicates at 20%");
    for c in &repeated {
        assert_eq!(
            c.iter().filter(|(keyed, _)| *keyed).count(),
            1,
            "one keyed original: {c:?}"
        );
    }
    assert!(
        repeated.iter().any(|c| c.iter().any(|(_, p)| *p != c[0].1)),
        "no duplicate landed on another partition than its original"
    );

    let dir = TempDir::new("produce-keyless");
    let (broker, topic, cfg) = setup(&dir);
    let args = ProduceArgs {
        keys: Keys::None,
        ..synthetic(2_000, 6)
    };
    let report = produce::run(&cfg, &args).expect("produce");
    let msgs = read_back(broker, &topic);
    assert_eq!(msgs.len() as u64, report.sent);
    assert!(msgs.iter().all(|m| m.key().is_none()), "a keyed message");
    let partitions: HashSet<i32> = msgs.iter().map(|m| m.partition()).collect();
    assert_eq!(
        partitions.len(),
        PARTITIONS as usize,
        "keyless messages go round the partitions: {partitions:?}"
    );
}

#[test]
fn replay_sends_each_line_as_one_message() {
    let dir = TempDir::new("produce-replay");
    let (broker, topic, cfg) = setup(&dir);
    let file = dir.join("events.jsonl");
    let mut lines: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"id":"replay-{i}","time_stamp":{},"product_id":"p{}","recommendation":false}}"#,
                START + i,
                i % 17
            )
        })
        .collect();
    lines.push(lines[7].clone()); // a duplicate
    lines.push("not json".into()); // a dead letter
    lines.push(r#"{"time_stamp":1}"#.into()); // no id
    write_lines(&file, &lines, "\n\n"); // blank lines are skipped
    let args = ProduceArgs {
        events: None,
        duration: None,
        rate: 0,
        seed: 0,
        dup_rate: 0.0,
        bad_rate: 0.0,
        start: None,
        span: None,
        file: Some(file),
        topic: Some(topic.clone()),
        ack_log: None,
        keys: Keys::Id,
    };
    let report = produce::run(&cfg, &args).expect("replay");
    assert_eq!(report.sent, lines.len() as u64);
    assert_eq!((report.duplicates, report.malformed), (1, 2));

    let msgs = read_back(broker, &topic);
    let mut got: Vec<String> = msgs
        .iter()
        .map(|m| String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap())
        .collect();
    got.sort();
    lines.sort();
    assert_eq!(got, lines);
    let partitions: HashSet<i32> = msgs.iter().map(|m| m.partition()).collect();
    assert_eq!(partitions.len(), PARTITIONS as usize);
    // valid lines are keyed by their id
    for m in &msgs {
        let text = std::str::from_utf8(m.payload().unwrap()).unwrap();
        if let Ok(fact) = transform(Some(text.as_bytes())) {
            assert_eq!(m.key(), Some(fact.event_id().as_bytes()));
        }
    }
}

#[test]
fn rate_is_respected() {
    let dir = TempDir::new("produce-rate");
    let (broker, topic, cfg) = setup(&dir);
    let args = ProduceArgs {
        rate: 400,
        ..synthetic(800, 2)
    };
    let report = produce::run(&cfg, &args).expect("produce");
    assert_eq!(report.sent, 800);
    // 800 messages at 400/s: the last one is due after 2 s
    assert!(
        report.elapsed >= Duration::from_millis(1_900) && report.elapsed < Duration::from_secs(10),
        "elapsed {:?}",
        report.elapsed
    );
    assert_eq!(read_back(broker, &topic).len(), 800);
}

#[test]
fn duration_mode_stops_in_time() {
    let dir = TempDir::new("produce-duration");
    let (broker, topic, cfg) = setup(&dir);
    let args = ProduceArgs {
        events: None,
        duration: Some(Duration::from_secs(1)),
        rate: 1_000,
        ..synthetic(0, 3)
    };
    let report = produce::run(&cfg, &args).expect("produce");
    assert!((900..=1_100).contains(&report.sent), "sent {}", report.sent);
    assert_eq!(read_back(broker, &topic).len() as u64, report.sent);
}

#[test]
fn missing_topic_fails_loudly() {
    let dir = TempDir::new("produce-missing");
    let (_broker, _topic, cfg) = setup(&dir);
    let args = ProduceArgs {
        topic: Some(harness::unique_name("absent")),
        ..synthetic(10, 4)
    };
    let started = std::time::Instant::now();
    let err = produce::run(&cfg, &args).expect_err("no such topic");
    assert!(err.to_string().contains("absent"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The binary's `streamer produce`: the same events for the same seed, and the summary
/// line scripts/bench and scripts/demo read, whose counts are what the topic holds.
#[test]
fn the_binary_produces_and_prints_the_summary_line() {
    let dir = TempDir::new("produce-bin");
    let (broker, topic, _cfg) = setup(&dir);
    let config = dir.join("config.ini");
    let config = config.to_str().expect("utf-8 path");
    let args = [
        "produce",
        config,
        "--events",
        "500",
        "--seed",
        "11",
        "--dup-rate",
        "0.1",
        "--bad-rate",
        "0.02",
        "--start",
        "2024-05-01",
        "--span",
        "6h",
        "--keys",
        "dup-anywhere",
    ];
    let out = harness::run_to_exit(&args, Duration::from_secs(120));
    out.assert_code(0);
    let line = out
        .output
        .lines()
        .find(|l| l.starts_with("sent "))
        .unwrap_or_else(|| panic!("no summary line: {}", out.output));
    let words: Vec<&str> = line.split(' ').collect();
    assert!(
        words.len() == 10
            && words[2] == "messages"
            && words[4] == "duplicates,"
            && words[6] == "malformed)"
            && words[7] == "in"
            && words[9] == "s",
        "summary line: {line}"
    );
    let count =
        |i: usize, strip: &str| -> u64 { words[i].trim_start_matches(strip).parse().expect(line) };
    let (sent, dups, bad) = (count(1, ""), count(3, "("), count(5, ""));
    assert_eq!(sent, 500, "{line}");
    assert!(dups > 0 && bad > 0, "{line}");
    let msgs = read_back(broker, &topic);
    assert_eq!(msgs.len() as u64, sent);
    let keyless = msgs.iter().filter(|m| m.key().is_none()).count() as u64;
    assert_eq!(keyless, dups, "dup-anywhere: the duplicates are keyless");
    let rejected = msgs
        .iter()
        .filter(|m| transform(m.payload()).is_err())
        .count() as u64;
    assert_eq!(rejected, bad);
    let times: HashSet<i64> = msgs
        .iter()
        .filter_map(|m| transform(m.payload()).ok())
        .map(|f| f.time_stamp)
        .collect();
    assert!(
        times.iter().all(|t| (START..START + 6 * 3600).contains(t)),
        "event times inside --start + --span"
    );

    // the same seed again: byte-identical messages, in the same order per partition
    let dir2 = TempDir::new("produce-bin-again");
    let (broker, topic2, _cfg) = setup(&dir2);
    let config2 = dir2.join("config.ini");
    let mut again = args;
    again[1] = config2.to_str().expect("utf-8 path");
    harness::run_to_exit(&again, Duration::from_secs(120)).assert_code(0);
    let by_partition = |msgs: &[OwnedMessage]| {
        let mut m: HashMap<i32, Vec<Vec<u8>>> = HashMap::new();
        for msg in msgs {
            m.entry(msg.partition())
                .or_default()
                .push(msg.payload().unwrap_or_default().to_vec());
        }
        m
    };
    assert_eq!(
        by_partition(&read_back(broker, &topic2)),
        by_partition(&msgs)
    );
}

fn write_lines(path: &Path, lines: &[String], tail: &str) {
    let mut text = lines.join("\n");
    text.push_str(tail);
    std::fs::write(path, text).expect("write events file");
}

//! `streamer status` and `streamer reset` against a real load: the counts reconcile
//! exactly with what was produced, `--max-lag` turns lag into an exit code, a reset by time
//! replays exactly the later range with no duplicate fact and no loss, and a reset is
//! refused while a member of the group is active.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::check::{cfg_path, count, drain, produced_ends, stored_offsets, warmup};
use crate::harness::events::data_set;
use crate::harness::{run_to_exit, spawn_streamer, unique_name, Broker, TempDir, TestDb};

fn status_json(cfg: &str) -> serde_json::Value {
    let out = run_to_exit(
        &["status", cfg, "--format", "json"],
        Duration::from_secs(60),
    );
    out.assert_code(0);
    let start = out.output.find('{').expect("a JSON object");
    let end = out.output.rfind('}').expect("a JSON object");
    serde_json::from_str(&out.output[start..=end])
        .unwrap_or_else(|e| panic!("status JSON: {e}\n{}", out.output))
}

#[test]
fn status_reconciles_and_reset_by_time_replays_the_range_once() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("status");
    let topic = unique_name("status");
    broker.create_topic(&topic, 3);
    // Two halves produced 1.5 s apart: the reset goes to the time between them.
    let first = data_set(120, 12, 1, 0x5747);
    let second = data_set(80, 8, 1, 0x5748);
    let mut positions = broker.produce(&topic, &first.messages);
    std::thread::sleep(Duration::from_millis(1500));
    let between = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(100));
    let later = broker.produce(&topic, &second.messages);
    positions.extend(&later);
    let ends = produced_ends(&positions);
    let cfg = cfg_path(&dir, broker, &db, &topic, "");
    warmup(dir.path(), &cfg, &[]);
    // counted by batch mode's micro-batches here, by partition mode's batches below
    drain(dir.path(), &cfg, &[("MODE", "batch")]);

    // Both halves number their events from 0 (ids repeat, products differ by seed), so
    // the facts are the union of both halves' keys: where a key repeats, the first wins.
    let mut facts: BTreeMap<String, ()> = BTreeMap::new();
    for ds in [&first, &second] {
        for k in ds.facts.keys() {
            facts.insert(k.clone(), ());
        }
    }
    let dead: usize = first.dead.values().sum::<usize>() + second.dead.values().sum::<usize>();
    let records = first.messages.len() + second.messages.len();
    let s = status_json(&cfg);
    assert_eq!(s["reconciled"], true, "{s:#}");
    assert_eq!(s["total_lag"], 0, "{s:#}");
    assert_eq!(s["records"], records as i64, "{s:#}");
    assert_eq!(s["facts"], facts.len() as i64, "{s:#}");
    assert_eq!(s["fact_rows"], facts.len() as i64, "{s:#}");
    assert_eq!(s["dead_letters"], dead as i64, "{s:#}");
    assert_eq!(
        s["duplicates"],
        (records - facts.len() - dead) as i64,
        "{s:#}"
    );
    let mut by_reason: BTreeMap<String, i64> = BTreeMap::new();
    for ds in [&first, &second] {
        for (r, n) in &ds.dead {
            *by_reason.entry(r.to_string()).or_default() += *n as i64;
        }
    }
    let got: BTreeMap<String, i64> = s["dead_letters_by_reason"]
        .as_object()
        .expect("by reason")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(got, by_reason);
    let parts = s["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 3);
    for p in parts {
        let n = p["partition"].as_i64().unwrap() as i32;
        let end = ends.get(&n).copied().unwrap_or(0);
        assert_eq!(p["committed"], end, "{p:#}");
        assert_eq!(p["log_end"], end, "{p:#}");
        assert_eq!(p["gaps"], 0, "{p:#}");
    }
    // The table form says the same.
    let out = run_to_exit(&["status", &cfg], Duration::from_secs(60));
    out.assert_code(0);
    assert!(out.output.contains("reconciled: yes"), "{}", out.output);

    // Lag as an exit code: 5 more messages, not loaded.
    let extra = data_set(5, 0, 0, 0x5749);
    broker.produce(&topic, &extra.messages);
    run_to_exit(
        &["status", &cfg, "--max-lag", "10"],
        Duration::from_secs(60),
    )
    .assert_code(0);
    let out = run_to_exit(&["status", &cfg, "--max-lag", "4"], Duration::from_secs(60));
    out.assert_code(1);
    assert!(
        out.output.contains("lag 5 is over --max-lag 4"),
        "{}",
        out.output
    );
    drain(dir.path(), &cfg, &[]);

    // A dry run changes nothing.
    let before = stored_offsets(&db, &topic);
    let at = between.to_rfc3339();
    let out = run_to_exit(
        &["reset", &cfg, "--to-datetime", &at, "--dry-run"],
        Duration::from_secs(60),
    );
    out.assert_code(0);
    assert_eq!(stored_offsets(&db, &topic), before);

    // The reset: each partition goes back to the first offset of the second half.
    let mut second_starts: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in &later {
        let e = second_starts.entry(*p).or_insert(*o);
        *e = (*e).min(*o);
    }
    let out = run_to_exit(
        &["reset", &cfg, "--to-datetime", &at],
        Duration::from_secs(60),
    );
    out.assert_code(0);
    let after = stored_offsets(&db, &topic);
    for (p, o) in &after {
        let want = second_starts.get(p).copied().unwrap_or(before[p]);
        assert_eq!(*o, want, "partition {p}: {}", out.output);
    }
    let facts_before = count(&db, "fact_sales");
    drain(dir.path(), &cfg, &[]);
    // The range was read again: no fact row twice, none lost, and the counts still add up.
    assert_eq!(count(&db, "fact_sales"), facts_before);
    assert_eq!(stored_offsets(&db, &topic), before);
    let s = status_json(&cfg);
    assert_eq!(s["reconciled"], true, "{s:#}");
    assert_eq!(
        s["records"],
        // the second half and the extra five were read twice
        (records + 2 * extra.messages.len() + second.messages.len()) as i64,
        "{s:#}"
    );
    assert_eq!(s["fact_rows"], facts_before, "{s:#}");

    // Without the brokers: what PostgreSQL holds is still reported and reconciled, the
    // lag is unknown, and --max-lag cannot pass.
    let down = cfg.replace(".ini", "-down.ini");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let text = text.replace(
        &broker.bootstrap(),
        &format!("127.0.0.1:{}", crate::harness::free_port()),
    );
    std::fs::write(&down, text).expect("config without brokers");
    let out = run_to_exit(&["status", &down], Duration::from_secs(60));
    out.assert_code(0);
    assert!(out.output.contains("reconciled: yes"), "{}", out.output);
    assert!(out.output.contains("lag unknown"), "{}", out.output);
    let out = run_to_exit(
        &["status", &down, "--max-lag", "0"],
        Duration::from_secs(60),
    );
    out.assert_code(1);
    assert!(out.output.contains("the lag is unknown"), "{}", out.output);

    // Refused while a member is active.
    let mut running = spawn_streamer(dir.path(), &["run", &cfg], &[]);
    running.wait_for_output("assigned", Duration::from_secs(60));
    let out = run_to_exit(&["reset", &cfg, "--to-earliest"], Duration::from_secs(60));
    out.assert_code(1);
    assert!(out.output.contains("active"), "{}", out.output);
    assert_eq!(stored_offsets(&db, &topic), before);
    running.signal("TERM");
    assert!(running.wait_or_fail(Duration::from_secs(60)).success());
}

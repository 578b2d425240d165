//! MODE=batch against MODE=partition on the same topic (identical tables, row for row), the
//! batch-mode log line, and startup on a warm database (warmup is a no-op, the main job
//! streams at once).

use std::time::{Duration, Instant};

use crate::harness;
use crate::harness::check::{
    assert_same, assert_tables, cfg_path, count, drain, produced_ends, snapshot, stored_offsets,
    warmup,
};
use crate::harness::events::{data_set, twin_data_set};
use crate::harness::{spawn_streamer, Broker, TempDir, TestDb};

/// Metrics on a port of their own, so that concurrent streamers never collide.
const METRICS: &str = "[metrics]\nlisten = 127.0.0.1:0\n";

/// One "batch N: M messages, F facts, D duplicates, X dead letters, ..., total T ms" line.
#[derive(Debug, Default, Clone, Copy)]
struct BatchLine {
    id: u64,
    messages: u64,
    facts: u64,
    duplicates: u64,
    dead: u64,
    total_ms: u64,
}

/// The number right before `unit` in `text` ("12 facts" → 12).
fn number_before(text: &str, unit: &str) -> Option<u64> {
    let at = text.find(unit)?;
    let head = text[..at].trim_end();
    let digits: String = head
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

fn parse_batch_line(line: &str) -> Option<BatchLine> {
    let at = line.find("] batch ").map(|i| i + 2).or_else(|| {
        line.strip_prefix("batch ")
            .map(|_| 0)
            .or_else(|| line.find(" batch ").map(|i| i + 1))
    })?;
    let rest = &line[at + "batch ".len()..];
    let (id, rest) = rest.split_once(": ")?;
    let total = rest.rfind("total ")?;
    Some(BatchLine {
        id: id.trim().parse().ok()?,
        messages: number_before(rest, " messages")?,
        facts: number_before(rest, " facts")?,
        duplicates: number_before(rest, " duplicates")?,
        dead: number_before(rest, " dead letters")?,
        total_ms: number_before(&rest[total..], " ms")?,
    })
}

#[test]
fn batch_line_parser() {
    let l = "[2024-01-01T00:00:00Z INFO  streamer::modes] batch 7: 120 messages, 100 facts, \
             3 duplicates, 17 dead letters, dims 0/1/2/3 (date/product/location/agent), \
             transform 4 ms, total 25 ms";
    let b = parse_batch_line(l).expect("parsed");
    assert_eq!(
        (b.id, b.messages, b.facts, b.duplicates, b.dead, b.total_ms),
        (7, 120, 100, 3, 17, 25)
    );
    assert!(parse_batch_line("[x INFO streamer] assigned 4 partitions").is_none());
}

#[test]
fn both_modes_give_identical_tables() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds = data_set(3000, 300, 4, 23);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);
    assert_eq!(ends.len(), 4, "messages spread over all partitions");

    // MODE=partition (the default) into database A.
    let db_a = TestDb::create();
    let dir_a = TempDir::new("modes-partition");
    let cfg_a = cfg_path(&dir_a, broker, &db_a, topic, METRICS);
    warmup(dir_a.path(), &cfg_a, &[]);
    let out_a = drain(dir_a.path(), &cfg_a, &[]);
    assert!(out_a.contains("in partition mode"), "{out_a}");
    assert_tables(&db_a, &ds, &ends, topic);

    // MODE=batch into database B (its own consumer group: write_config names a new app).
    let db_b = TestDb::create();
    let dir_b = TempDir::new("modes-batch");
    let cfg_b = cfg_path(
        &dir_b,
        broker,
        &db_b,
        topic,
        &format!("[pipeline]\ntrigger_interval_ms = 200\n\n{METRICS}"),
    );
    let env = [("MODE", "batch")];
    warmup(dir_b.path(), &cfg_b, &env);
    let out_b = drain(dir_b.path(), &cfg_b, &env);
    assert!(
        out_b.contains("in batch mode"),
        "MODE=batch ignored:\n{out_b}"
    );
    assert_tables(&db_b, &ds, &ends, topic);

    assert_same(&snapshot(&db_b), &snapshot(&db_a));

    // One line per micro-batch, with numbers that add up to the data set.
    let lines: Vec<BatchLine> = out_b.lines().filter_map(parse_batch_line).collect();
    assert!(
        !lines.is_empty(),
        "batch mode logged no per-batch line:\n{out_b}"
    );
    for (i, b) in lines.iter().enumerate() {
        assert_eq!(b.id, i as u64 + 1, "batch ids count up: {lines:?}");
        assert!(b.messages > 0, "an empty trigger wrote a batch: {b:?}");
        assert_eq!(
            b.facts + b.duplicates + b.dead,
            b.messages,
            "every message is a fact, a duplicate or a dead letter: {b:?}"
        );
    }
    let sum = |f: fn(&BatchLine) -> u64| lines.iter().map(f).sum::<u64>();
    let dead_total: usize = ds.dead.values().sum();
    assert_eq!(sum(|b| b.messages), ds.messages.len() as u64, "messages");
    assert_eq!(sum(|b| b.facts), ds.facts.len() as u64, "facts");
    assert_eq!(sum(|b| b.dead), dead_total as u64, "dead letters");
}

/// Batch mode whose writer threads start late (every other one 100 ms after it is
/// spawned, as on a loaded machine): micro-batch N+1's writer then runs before N's. A
/// changed re-send in N+1 of a key whose first copy is in N must still lose to it, and
/// every row appear once. (Claimed in each writer thread, N+1 claimed such keys first and
/// N left them to it: the re-sends won.)
#[test]
fn late_batch_writers_keep_first_writes_first() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view_late_writer");
    broker.create_topic(&topic, 4);
    let ds = data_set(2000, 400, 1, 43);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let db = TestDb::create();
    let dir = TempDir::new("late-writer");
    let extra = format!(
        "[pipeline]\nbatch_max_messages = 50\nbatch_max_latency_ms = 20\n\
         trigger_interval_ms = 50\n\n{METRICS}"
    );
    let cfg = cfg_path(&dir, broker, &db, &topic, &extra);
    let env = [("MODE", "batch"), ("STREAMER_TEST_LATE_WRITER_MS", "100")];
    warmup(dir.path(), &cfg, &env);
    drain(dir.path(), &cfg, &env);
    assert_tables(&db, &ds, &ends, &topic);
}

/// Partition mode on a topic of one partition writes each batch behind the one in flight
/// (its transform overlapping the other's COPY); with every other writer started late,
/// the batches still commit in offset order, none is fenced, and the tables are exact,
/// the first copy of each re-sent event winning.
#[test]
fn one_partition_writes_behind_in_order() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view_behind");
    broker.create_topic(&topic, 1);
    let ds = data_set(2000, 400, 1, 44);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let db = TestDb::create();
    let dir = TempDir::new("behind");
    let extra =
        format!("[pipeline]\nbatch_max_messages = 50\nbatch_max_latency_ms = 20\n\n{METRICS}");
    let cfg = cfg_path(&dir, broker, &db, &topic, &extra);
    let env = [
        ("MODE", "partition"),
        ("STREAMER_TEST_LATE_WRITER_MS", "60"),
        ("RUST_LOG", "info,streamer::modes::behind=debug"),
    ];
    warmup(dir.path(), &cfg, &env);
    let out = drain(dir.path(), &cfg, &env);
    assert_tables(&db, &ds, &ends, &topic);
    assert!(
        out.contains("written behind the one in flight"),
        "no batch was written behind another:\n{out}"
    );
    assert!(
        !out.contains("moved by another owner"),
        "a batch was fenced:\n{out}"
    );
}

/// Every event sent twice at once on two partitions (a client retry under another key),
/// and a changed re-send of some on their own partition shortly after, in both modes.
/// Batches that other open batches wait for (they left those keys to them) are rolled
/// back as if fenced (a test build hook): the keys pass to the waiting batches, which
/// write their own copies. Every row appears once, the first copy on its partition
/// winning, and a fenced batch's messages are read again without doubling a row.
#[test]
fn holders_that_fail_pass_their_keys_on() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view_holders_fail");
    broker.create_topic(&topic, 4);
    let ds = twin_data_set(3000, 51);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    for mode in ["partition", "batch"] {
        let db = TestDb::create();
        let dir = TempDir::new(&format!("holders-fail-{mode}"));
        let extra = format!(
            "[pipeline]\nbatch_max_messages = 40\nbatch_max_latency_ms = 20\n\
             trigger_interval_ms = 20\n\n{METRICS}"
        );
        let cfg = cfg_path(&dir, broker, &db, &topic, &extra);
        let env = [
            ("MODE", mode),
            ("STREAMER_TEST_FENCE_WAITED_FOR", "40"),
            ("RUST_LOG", "info,streamer::sink=debug"),
        ];
        warmup(dir.path(), &cfg, &env);
        let out = drain(dir.path(), &cfg, &env);
        assert_tables(&db, &ds, &ends, &topic);
        assert!(
            out.contains("test hook: a batch other batches wait for is rolled back"),
            "{mode}: no batch was waited for:\n{out}"
        );
        if mode == "partition" {
            // (batch mode's waiting batch shares a partition with its holder, mostly, and
            // is fenced with it)
            assert!(
                out.contains("holders did not commit written by this batch"),
                "{mode}: no key passed on:\n{out}"
            );
        }
    }
}

/// Partition mode under a tiny `buffer_max_bytes` over eight partitions: every batch is cut
/// at its share of the budget (no batch holds more than the whole budget and one message),
/// so many small transactions, and the tables are exact.
#[test]
fn partition_batches_are_cut_at_their_share_of_the_buffer_budget() {
    let broker = Broker::shared();
    let topic = harness::unique_name("budget");
    let topic = topic.as_str();
    broker.create_topic(topic, 8);
    let ds = data_set(2000, 200, 2, 41);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);
    assert_eq!(ends.len(), 8, "messages spread over all partitions");
    let budget = 64 * 1024;
    // events are about a kilobyte; the malformed messages (a few bytes) may join any batch
    let sizes = || {
        ds.messages
            .iter()
            .map(|(_, v)| v.as_ref().map_or(0, Vec::len))
    };
    let smallest_event = sizes().filter(|&n| n >= 200).min().unwrap_or(200);
    let tiny = sizes().filter(|&n| n < 200).count();

    let db = TestDb::create();
    let dir = TempDir::new("modes-budget");
    let cfg = cfg_path(
        &dir,
        broker,
        &db,
        topic,
        &format!("[pipeline]\nbuffer_max_bytes = {budget}\n\n{METRICS}"),
    );
    let env = [("RUST_LOG", "info,streamer::modes::commit=debug")];
    warmup(dir.path(), &cfg, &env);
    let out = drain(dir.path(), &cfg, &env);
    assert_tables(&db, &ds, &ends, topic);

    let lines: Vec<BatchLine> = out.lines().filter_map(parse_batch_line).collect();
    let most = lines.iter().map(|b| b.messages).max().unwrap_or(0);
    let bound = (budget / smallest_event + 1 + tiny) as u64;
    let per_partition = ds.messages.len() as u64 / 8;
    assert!(
        bound < per_partition,
        "the budget must cut: bound {bound}, {per_partition} messages a partition"
    );
    assert!(
        most <= bound,
        "a batch of {most} messages, over the {budget}-byte budget ({bound} messages)"
    );
    let sum: u64 = lines.iter().map(|b| b.messages).sum();
    assert_eq!(
        sum,
        ds.messages.len() as u64,
        "every message in a batch line"
    );
}

/// Warmup on a warm database is a no-op and fast; the main job (`streamer config.ini`:
/// warmup, then stream) starts streaming at once and stops cleanly on SIGTERM.
#[test]
fn startup_on_a_warm_database_is_fast() {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 2);
    let ds = data_set(400, 20, 1, 5);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);

    let db = TestDb::create();
    let dir = TempDir::new("startup");
    let cfg = cfg_path(&dir, broker, &db, topic, METRICS);
    warmup(dir.path(), &cfg, &[]);
    let dates = count(&db, "dim_date");
    let second = warmup(dir.path(), &cfg, &[]);
    let ms = warmup_ms(&second);
    eprintln!("second warmup: {ms} ms");
    assert!(
        ms < 1000,
        "warmup on a warm database took {ms} ms:\n{second}"
    );
    assert_eq!(
        count(&db, "dim_date"),
        dates,
        "second warmup changed dim_date"
    );

    // The main job on the warm database: warmup again, then stream until SIGTERM.
    let started = Instant::now();
    let mut s = spawn_streamer(dir.path(), &[&cfg], &[]);
    s.wait_for_output("warmup done in", Duration::from_secs(30));
    let ms = warmup_ms(&s.output());
    assert!(ms < 1000, "main job's warmup took {ms} ms:\n{}", s.output());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_row = None;
    while stored_offsets(&db, topic) != ends {
        if first_row.is_none() && count(&db, "fact_sales") > 0 {
            first_row = Some(started.elapsed());
        }
        assert!(
            s.child.try_wait().unwrap().is_none(),
            "main job exited early:\n{}",
            s.output()
        );
        assert!(
            Instant::now() < deadline,
            "main job did not load the topic within 60 s:\n{}",
            s.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "main job: first fact row after {:?}, whole topic after {:?}",
        first_row.unwrap_or_else(|| started.elapsed()),
        started.elapsed()
    );
    s.signal("TERM");
    let st = s.wait_or_fail(Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "exit after SIGTERM:\n{}", s.output());
    assert_tables(&db, &ds, &ends, topic);
}

/// N from the last "warmup done in N ms" line.
fn warmup_ms(output: &str) -> u64 {
    output
        .lines()
        .rev()
        .find_map(|l| {
            let rest = &l[l.find("warmup done in ")? + "warmup done in ".len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no \"warmup done in N ms\" line in:\n{output}"))
}

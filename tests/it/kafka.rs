//! Against Apache Kafka itself: the seed's SASL/PLAIN section verbatim, SCRAM-SHA-512, a
//! refused login, transactional and compacted topics, records deleted under a stored
//! offset and a recreated topic (never skipped silently), start positions stored before
//! anything is read, and a fence moved under a running loader in both modes. Each ends
//! with exact tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::check::{
    assert_tables, count, drain, message_sales_key, produced_ends, stored_offsets, warmup,
    warmup_and_drain,
};
use crate::harness::events::data_set;
use crate::harness::{
    spawn_streamer, unique_name, Broker, Record, Streamer, TempDir, TestDb, PG_PORT,
};

/// A config in the seed's format whose `[remote_kafka]` section is `kafka` verbatim
/// (without `subscribe` and `startingOffsets`, added here).
pub(crate) fn seed_config(
    dir: &Path,
    db: &TestDb,
    kafka: &str,
    topic: &str,
    starting: &str,
    extra: &str,
) -> String {
    let app = unique_name("streamer_kafka");
    let text = format!(
        "[local_spark]\napp_name = {app}\n\n\
         [docker_postgres]\nhost_in = db\nhost_out = 127.0.0.1\ndatabase = {}\n\
         user = postgres\npassword =\nport_in = 5432\nport_out = {PG_PORT}\n\n\
         [remote_kafka]\n{kafka}\nsubscribe = {topic}\nstartingOffsets = {starting}\n\n\
         [metrics]\nlisten = 127.0.0.1:0\n\n{extra}\n",
        db.name()
    );
    let path = dir.join("config.ini");
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

/// Appends `text` (e.g. a `[pipeline]` section) to the config at `cfg`: same group.
pub(crate) fn append_to_config(cfg: &str, text: &str) {
    let mut ini = std::fs::read_to_string(cfg).expect("read config");
    ini.push('\n');
    ini.push_str(text);
    std::fs::write(cfg, ini).expect("write config");
}

pub(crate) fn plaintext(broker: &Broker) -> String {
    format!("kafka.bootstrap.servers = {}", broker.bootstrap())
}

/// Runs `streamer run --until-caught-up` to its exit within `timeout`; returns (code, output).
pub(crate) fn run_to_end(
    dir: &Path,
    cfg: &str,
    envs: &[(&str, &str)],
    timeout: Duration,
) -> (i32, String) {
    let mut s = spawn_streamer(dir, &["run", cfg, "--until-caught-up"], envs);
    let st = s.wait_or_fail(timeout);
    (st.code().unwrap_or(-1), s.output())
}

/// `topic` read through `kafka` into a fresh database by `run --until-caught-up`, once in
/// each mode; yields the mode, its database, exit code and run output for the checks.
pub(crate) fn run_in_both_modes(
    name: &str,
    kafka: &str,
    topic: &str,
) -> Vec<(&'static str, TestDb, i32, String)> {
    ["partition", "batch"]
        .into_iter()
        .map(|mode| {
            let db = TestDb::create();
            let dir = TempDir::new(&format!("{name}-{mode}"));
            let cfg = seed_config(dir.path(), &db, kafka, topic, "earliest", "");
            warmup(dir.path(), &cfg, &[]);
            let (code, out) = run_to_end(
                dir.path(),
                &cfg,
                &[("MODE", mode)],
                Duration::from_secs(120),
            );
            (mode, db, code, out)
        })
        .collect()
}

/// [`run_in_both_modes`], each run exiting 0; yields each database and run output.
pub(crate) fn load_in_both_modes(name: &str, kafka: &str, topic: &str) -> Vec<(TestDb, String)> {
    run_in_both_modes(name, kafka, topic)
        .into_iter()
        .map(|(mode, db, code, out)| {
            assert_eq!(code, 0, "{mode}: run failed:\n{out}");
            (db, out)
        })
        .collect()
}

/// The broker's end offset of each partition of `topic` (read_committed when asked).
fn end_offsets(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    committed: bool,
) -> BTreeMap<i32, i64> {
    let mut c = broker.consumer_config(&unique_name("ends"));
    if committed {
        c.set("isolation.level", "read_committed");
    }
    let consumer: rdkafka::consumer::BaseConsumer = c.create().expect("consumer");
    (0..partitions)
        .map(|p| {
            let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(
                &consumer,
                topic,
                p,
                Duration::from_secs(10),
            )
            .expect("watermarks");
            (p, high)
        })
        .collect()
}

/// Distinct events (no duplicates, no malformed messages), keyed by their id.
pub(crate) fn events(n: usize, seed: u64) -> Vec<Record> {
    let ds = data_set(n, 0, 0, seed);
    assert_eq!(ds.facts.len(), n);
    ds.messages
}

fn sales_keys(db: &TestDb) -> BTreeSet<String> {
    db.client()
        .query("SELECT sales_key FROM fact_sales", &[])
        .expect("sales keys")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn keys_of(messages: &[Record]) -> BTreeSet<String> {
    messages
        .iter()
        .filter_map(|(k, v)| message_sales_key(k.as_deref(), v.as_deref()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// SASL
// ---------------------------------------------------------------------------------------

/// A `[remote_kafka]` section as the seed writes it: SASL_PLAINTEXT with `mechanism` and a
/// JAAS string of login module `module` (PlainLoginModule or ScramLoginModule).
fn sasl_section(
    bootstrap: &str,
    mechanism: &str,
    module: &str,
    user: &str,
    password: &str,
) -> String {
    format!(
        "kafka.bootstrap.servers = {bootstrap}\n\
         kafka.security.protocol = SASL_PLAINTEXT\n\
         kafka.sasl.mechanism = {mechanism}\n\
         kafka.sasl.jaas.config = org.apache.kafka.common.security.{module} required \
         username=\"{user}\" password=\"{password}\";"
    )
}

/// Loads a generated data set through `kafka` (a SASL section) in `mode`: exact tables,
/// and `password` never printed.
fn loads_exactly_over(kafka_of: impl Fn(&Broker) -> String, password: &str, mode: &str, seed: u64) {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new(&format!("sasl-{mode}"));
    let topic = unique_name("product_view");
    broker.create_topic(&topic, 4);
    let ds = data_set(1500, 150, 2, seed);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let cfg = seed_config(dir.path(), &db, &kafka_of(broker), &topic, "earliest", "");
    let out = warmup_and_drain(dir.path(), &cfg, &[("MODE", mode)]);
    assert!(!out.contains(password), "password printed:\n{out}");
    assert_tables(&db, &ds, &ends, &topic);
}

/// The seed job's own `[remote_kafka]` section, verbatim but for the address: SASL_PLAINTEXT,
/// PLAIN, the JAAS PlainLoginModule string.
#[test]
fn the_seed_sasl_plain_section_loads_exactly() {
    let section = |b: &Broker| {
        sasl_section(
            &b.sasl_plain_bootstrap(),
            "PLAIN",
            "plain.PlainLoginModule",
            "streamer",
            "streamer-plain-secret",
        )
    };
    loads_exactly_over(section, "streamer-plain-secret", "partition", 21);
}

#[test]
fn scram_sha_512_through_the_scram_login_module_loads_exactly() {
    let section = |b: &Broker| {
        sasl_section(
            &b.sasl_scram_bootstrap(),
            "SCRAM-SHA-512",
            "scram.ScramLoginModule",
            "streamer-scram",
            "streamer-scram-secret",
        )
    };
    loads_exactly_over(section, "streamer-scram-secret", "batch", 22);
}

/// A wrong password: exit 1 at once (retrying cannot help), the broker and the mechanism
/// named with the broker's words, the password never printed, nothing written.
#[test]
fn a_refused_login_names_broker_and_mechanism_and_writes_nothing() {
    let broker = Broker::shared();
    let db = TestDb::create();
    let dir = TempDir::new("sasl-wrong");
    let topic = unique_name("product_view");
    broker.create_topic(&topic, 1);
    broker.produce(&topic, &events(10, 23));
    let wrong = "not-the-Passw0rd-4711";
    let kafka = sasl_section(
        &broker.sasl_plain_bootstrap(),
        "PLAIN",
        "plain.PlainLoginModule",
        "streamer",
        wrong,
    );
    let cfg = seed_config(dir.path(), &db, &kafka, &topic, "earliest", "");
    warmup(dir.path(), &cfg, &[]);
    let (code, out) = run_to_end(dir.path(), &cfg, &[], Duration::from_secs(90));
    assert_eq!(code, 1, "exit code of a refused login:\n{out}");
    let last = out.lines().last().unwrap_or_default();
    for needle in [
        broker.sasl_plain_bootstrap().as_str(),
        "SASL mechanism PLAIN",
        "SASL_PLAINTEXT",
        "Invalid username or password",
    ] {
        assert!(
            last.contains(needle),
            "{needle:?} missing from the error line: {last}\n{out}"
        );
    }
    assert!(!out.contains(wrong), "password printed:\n{out}");
    assert_eq!(count(&db, "fact_sales"), 0);
    assert_eq!(count(&db, "stream_offsets"), 0);
}

// ---------------------------------------------------------------------------------------
// Logs that are not one record per offset
// ---------------------------------------------------------------------------------------

/// Transactions, some aborted, read with read_committed: only committed events load, and
/// every partition's row ends at the last stable offset (past the commit markers), so the
/// run is caught up and exits instead of waiting for offsets that hold no record.
#[test]
fn a_transactional_topic_read_committed_loads_committed_events_only() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_tx");
    broker.create_topic(&topic, 2);
    let all = events(600, 24);
    let batches: Vec<(Vec<Record>, bool)> = all
        .chunks(50)
        .enumerate()
        .map(|(i, c)| (c.to_vec(), i % 3 != 1))
        .collect();
    let committed: Vec<Record> = batches
        .iter()
        .filter(|(_, commit)| *commit)
        .flat_map(|(c, _)| c.clone())
        .collect();
    broker.produce_transactional(&topic, &batches);
    let ends = end_offsets(broker, &topic, 2, true);
    let kafka = format!(
        "{}\nkafka.isolation.level = read_committed",
        plaintext(broker)
    );
    for (db, out) in load_in_both_modes("tx", &kafka, &topic) {
        assert_eq!(sales_keys(&db), keys_of(&committed), "fact keys");
        assert_eq!(count(&db, "dead_letter"), 0, "dead letters");
        assert_eq!(
            stored_offsets(&db, &topic),
            ends,
            "rows at the last stable offsets"
        );
        assert!(
            !out.contains("re-reading"),
            "a partition was re-read:\n{out}"
        );
    }
}

/// A compacted topic whose cleaner has removed older copies: offsets jump inside the log
/// and at its end. Loaded exactly, rows at the end, no re-read loop.
#[test]
fn a_compacted_topic_loads_exactly_and_ends_caught_up() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_compact");
    broker.create_compacted_topic(&topic, 1);
    let originals = events(300, 25);
    // Every event three times with the same key and value: the cleaner keeps the last.
    let messages: Vec<Record> = (0..3).flat_map(|_| originals.iter().cloned()).collect();
    broker.produce(&topic, &messages);
    // Roll the segment so that the cleaner may work on what came before.
    std::thread::sleep(Duration::from_millis(1500));
    let last = events(301, 26).pop().expect("one more event");
    broker.produce(&topic, std::slice::from_ref(&last));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen = broker.consume_all(&topic, 1, Duration::from_secs(30)).len();
        if seen < messages.len() + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner never compacted {topic}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let ends = end_offsets(broker, &topic, 1, false);
    let mut want = keys_of(&originals);
    want.extend(keys_of(std::slice::from_ref(&last)));
    for (db, _) in load_in_both_modes("compact", &plaintext(broker), &topic) {
        assert_eq!(sales_keys(&db), want, "fact keys");
        assert_eq!(stored_offsets(&db, &topic), ends, "rows at the log's end");
    }
}

// ---------------------------------------------------------------------------------------
// Offsets out of range and start positions
// ---------------------------------------------------------------------------------------

/// Records deleted past a stored offset (what retention does): by default the run stops
/// with an error naming topic, partition, stored offset and log start, and writes nothing;
/// with `earliest` it goes on from the log's start and says how many offsets it skipped.
#[test]
fn records_deleted_past_the_stored_offset_are_never_skipped_silently() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_deleted");
    broker.create_topic(&topic, 1);
    let all = events(150, 27);
    broker.produce(&topic, &all[..100]);
    let db = TestDb::create();
    let dir = TempDir::new("deleted");
    let cfg = seed_config(dir.path(), &db, &plaintext(broker), &topic, "earliest", "");
    warmup_and_drain(dir.path(), &cfg, &[]);
    assert_eq!(stored_offsets(&db, &topic), BTreeMap::from([(0, 100)]));
    broker.produce(&topic, &all[100..]);
    assert_eq!(broker.delete_records(&topic, 0, 130), 130);

    let (code, out) = run_to_end(dir.path(), &cfg, &[], Duration::from_secs(90));
    assert_eq!(code, 1, "the default is to stop:\n{out}");
    let last = out.lines().last().unwrap_or_default();
    for needle in [
        format!("{topic}/0"),
        "stored offset 100".into(),
        "log start 130".into(),
    ] {
        assert!(
            last.contains(&needle),
            "{needle:?} missing from: {last}\n{out}"
        );
    }
    assert_eq!(count(&db, "fact_sales"), 100, "nothing written");
    assert_eq!(stored_offsets(&db, &topic), BTreeMap::from([(0, 100)]));

    append_to_config(&cfg, "[pipeline]\non_offset_out_of_range = earliest\n");
    let (code, out) = run_to_end(dir.path(), &cfg, &[], Duration::from_secs(90));
    assert_eq!(code, 0, "earliest goes on:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("ERROR") && l.contains("30 offsets skipped")),
        "the skip is logged at error level with its count:\n{out}"
    );
    let mut want = keys_of(&all[..100]);
    want.extend(keys_of(&all[130..]));
    assert_eq!(sales_keys(&db), want);
    assert_eq!(stored_offsets(&db, &topic), BTreeMap::from([(0, 150)]));
}

/// The topic deleted and created again under the same name: the stored offset is past the
/// new log's end. Stopped by default; `earliest` reads the new log from its start.
#[test]
fn a_recreated_topic_is_never_skipped_silently() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_recreated");
    broker.create_topic(&topic, 1);
    let old = events(60, 28);
    broker.produce(&topic, &old);
    let db = TestDb::create();
    let dir = TempDir::new("recreated");
    let cfg = seed_config(dir.path(), &db, &plaintext(broker), &topic, "earliest", "");
    warmup_and_drain(dir.path(), &cfg, &[]);
    broker.delete_topic(&topic);
    broker.create_topic(&topic, 1);
    let new: Vec<Record> = events(80, 29).split_off(60);
    broker.produce(&topic, &new);

    let (code, out) = run_to_end(dir.path(), &cfg, &[], Duration::from_secs(90));
    assert_eq!(code, 1, "the default is to stop:\n{out}");
    assert!(
        out.lines()
            .last()
            .unwrap_or_default()
            .contains("stored offset 60"),
        "{out}"
    );
    assert_eq!(count(&db, "fact_sales"), 60);

    append_to_config(&cfg, "[pipeline]\non_offset_out_of_range = earliest\n");
    let (code, out) = run_to_end(
        dir.path(),
        &cfg,
        &[("MODE", "batch")],
        Duration::from_secs(90),
    );
    assert_eq!(code, 0, "earliest goes on:\n{out}");
    let mut want = keys_of(&old);
    want.extend(keys_of(&new));
    assert_eq!(sales_keys(&db), want);
    assert_eq!(stored_offsets(&db, &topic), BTreeMap::from([(0, 20)]));
}

/// `startingOffsets = latest`: the start position of a partition is stored on its first
/// assignment, so what a quiet partition receives while the process is down is loaded by
/// the next run, not skipped as "latest".
#[test]
fn latest_stores_start_positions_so_a_quiet_partition_loses_nothing_while_down() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_latest");
    broker.create_topic(&topic, 2);
    let all = events(40, 30);
    let values = |ms: &[Record]| -> Vec<Vec<u8>> {
        ms.iter().map(|(_, v)| v.clone().expect("value")).collect()
    };
    // Before the first run: history that `latest` must not load.
    broker.produce_to_partition(&topic, 0, &values(&all[..10]));
    let db = TestDb::create();
    let dir = TempDir::new("latest");
    let cfg = seed_config(dir.path(), &db, &plaintext(broker), &topic, "latest", "");
    warmup_and_drain(dir.path(), &cfg, &[]);
    assert_eq!(count(&db, "fact_sales"), 0);
    assert_eq!(
        stored_offsets(&db, &topic),
        BTreeMap::from([(0, 10), (1, 0)])
    );
    // While it is down, the quiet partition receives its first messages.
    broker.produce_to_partition(&topic, 1, &values(&all[10..25]));
    broker.produce_to_partition(&topic, 0, &values(&all[25..]));
    drain(dir.path(), &cfg, &[]);
    assert_eq!(sales_keys(&db), keys_of(&all[10..]));
    assert_eq!(
        stored_offsets(&db, &topic),
        BTreeMap::from([(0, 25), (1, 15)])
    );
}

// ---------------------------------------------------------------------------------------
// A fence moved under a running loader
// ---------------------------------------------------------------------------------------

/// While events stream in, another owner moves one partition's row on by one (as during a
/// rebalance). The loader's batch is refused, that partition resumes from the moved row,
/// the others from where they were, and facts keep growing: in the end, everything
/// produced but the one skipped offset.
fn fence_moved_mid_stream(mode: &str) {
    let broker = Broker::shared();
    let topic = unique_name(&format!("product_view_fence_{mode}"));
    broker.create_topic(&topic, 4);
    let all = events(4000, 31);
    let db = TestDb::create();
    let dir = TempDir::new(&format!("fence-{mode}"));
    // Batches cut by age, a second, also at a partition's end (where a batch is otherwise
    // written once it has lingered 20 ms): rows stay behind the log's end long enough to
    // move.
    let extra = "[pipeline]\nbatch_max_messages = 2000\nbatch_max_latency_ms = 1000\n\
                 batch_linger_ms = 1000\ntrigger_interval_ms = 1000\n";
    let cfg = seed_config(
        dir.path(),
        &db,
        &plaintext(broker),
        &topic,
        "earliest",
        extra,
    );
    warmup(dir.path(), &cfg, &[]);
    let mut s: Streamer = spawn_streamer(dir.path(), &["run", &cfg], &[("MODE", mode)]);
    // The loader owns its partitions (their rows are stored) before the stream starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_offsets(&db, &topic).len() < 4 {
        assert!(Instant::now() < deadline, "no assignment:\n{}", s.output());
        std::thread::sleep(Duration::from_millis(20));
    }
    let chunks: Vec<&[Record]> = all.chunks(200).collect();
    let mut positions = Vec::new();
    let mut skipped: Option<(i32, i64)> = None;
    let mut facts_at_move = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        positions.extend(broker.produce(&topic, chunk));
        // Right after a chunk arrived, while the loader is behind.
        if i >= 3 && skipped.is_none() {
            // Move a partition on by one, never past what the log holds: one whose row
            // is behind its end right now.
            let highs = produced_ends(&positions);
            for (p, high) in highs {
                let row = db
                    .client()
                    .query_opt(
                        "UPDATE stream_offsets SET next_offset = next_offset + 1 \
                         WHERE topic = $1 AND partition = $2 AND next_offset + 1 <= $3 \
                         RETURNING next_offset - 1",
                        &[&topic, &p, &high],
                    )
                    .expect("move the row");
                if let Some(r) = row {
                    skipped = Some((p, r.get::<_, i64>(0)));
                    facts_at_move = count(&db, "fact_sales");
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let skipped = skipped.expect("no partition was ever behind its end to be moved");
    let ends = produced_ends(&positions);
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored_offsets(&db, &topic) != ends {
        assert!(
            s.child.try_wait().expect("try_wait").is_none(),
            "streamer exited:\n{}",
            s.output()
        );
        assert!(
            Instant::now() < deadline,
            "{mode}: not everything committed after the move: rows {:?}, want {ends:?}, \
             facts {} (at the move {facts_at_move}):\n{}",
            stored_offsets(&db, &topic),
            count(&db, "fact_sales"),
            s.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.signal("TERM");
    assert!(
        s.wait_or_fail(Duration::from_secs(60)).success(),
        "{}",
        s.output()
    );
    let skipped_msg = positions
        .iter()
        .position(|p| *p == skipped)
        .map(|i| &all[i])
        .expect("the skipped offset holds one of our messages");
    let mut want = keys_of(&all);
    want.remove(
        &keys_of(std::slice::from_ref(skipped_msg))
            .into_iter()
            .next()
            .expect("key"),
    );
    assert_eq!(
        sales_keys(&db),
        want,
        "{mode}: everything but the skipped offset"
    );
    assert!(
        s.output().contains("moved by another owner"),
        "{mode}: the fence was never hit:\n{}",
        s.output()
    );
}

#[test]
fn a_fence_moved_mid_stream_partition_mode() {
    fence_moved_mid_stream("partition");
}

#[test]
fn a_fence_moved_mid_stream_batch_mode() {
    fence_moved_mid_stream("batch");
}

//! The consumer group as cron runs it, against Kafka's real coordinator: a member killed
//! with SIGKILL and restarted at once (librdkafka's default 45 s session timeout: the new
//! process gets the partitions once the dead member's session expires) ends exact; and a
//! member that owns nothing while another loads a backlog exits 0 only once the backlog
//! is committed; a member whose partitions are revoked leaves what it has not written to
//! the next owner; a group on the cooperative protocol, or on KIP-848's consumer protocol,
//! hands partitions on one by one.

use std::time::{Duration, Instant};

use crate::harness::check::{
    assert_tables, cfg_path, count, drain, produced_ends, stored_offsets, warmup,
};
use crate::harness::events::{bad_messages, data_set};
use crate::harness::{spawn_streamer, unique_name, Broker, Record, TempDir, TestDb};
use crate::kafka::seed_config;

/// kill -9 mid-run, then `run --until-caught-up` again at once, as a cron job would, with
/// the default session timeout. The restarted process must neither exit before the dead
/// member's partitions are its own and loaded, nor load anything twice.
fn kill9_then_cron_restart(mode: &str) {
    let broker = Broker::shared();
    let topic = unique_name("product_view_cron");
    broker.create_topic(&topic, 4);
    let ds = data_set(8_000, 800, 4, 41);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let db = TestDb::create();
    let dir = TempDir::new(&format!("cron-{mode}"));
    let kafka = format!("kafka.bootstrap.servers = {}", broker.bootstrap());
    let extra = "[pipeline]\nbatch_max_messages = 50\nbatch_max_latency_ms = 20\n\
                 trigger_interval_ms = 50\n";
    let cfg = seed_config(dir.path(), &db, &kafka, &topic, "earliest", extra);
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);

    let mut first = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &envs);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&db, "fact_sales") < 500 {
        assert!(
            first.child.try_wait().expect("try_wait").is_none(),
            "{mode}: the first run ended before it could be killed:\n{}",
            first.output()
        );
        assert!(
            Instant::now() < deadline,
            "{mode}: nothing committed:\n{}",
            first.output()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.signal("KILL");
    let _ = first.wait_or_fail(Duration::from_secs(10));
    let at_kill = count(&db, "fact_sales");
    assert!(
        at_kill < ds.facts.len() as i64,
        "{mode}: everything was loaded before the kill"
    );

    let mut cron = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &envs);
    let st = cron.wait_or_fail(Duration::from_secs(240));
    assert!(
        st.success(),
        "{mode}: the restarted run failed ({st}):\n{}",
        cron.output()
    );
    assert_tables(&db, &ds, &ends, &topic);
}

#[test]
fn kill9_then_cron_restart_partition_mode() {
    kill9_then_cron_restart("partition");
}

#[test]
fn kill9_then_cron_restart_batch_mode() {
    kill9_then_cron_restart("batch");
}

/// `partition.assignment.strategy = cooperative-sticky` (what Java clients default to), or
/// `protocol`: a member joining mid-run takes partitions from the first one without a
/// stop of the whole group, both exit 0, the tables are exact, and neither asks
/// librdkafka for an eager (un)assign, which that protocol refuses.
fn cooperative_member_joins_mid_run(mode: &str, protocol: &str) {
    let broker = Broker::shared();
    let topic = unique_name("product_view_cooperative");
    broker.create_topic(&topic, 4);
    let ds = data_set(8_000, 800, 4, 43);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let db = TestDb::create();
    let dir = TempDir::new(&format!("cooperative-{mode}"));
    let kafka = format!(
        "kafka.bootstrap.servers = {}\n{protocol}",
        broker.bootstrap()
    );
    let extra = "[pipeline]\nbatch_max_messages = 50\nbatch_max_latency_ms = 20\n\
                 trigger_interval_ms = 50\n";
    let cfg = seed_config(dir.path(), &db, &kafka, &topic, "earliest", extra);
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);

    // A runs until stopped; B joins once A has committed some batches (A may have loaded
    // the rest by then: B runs until stopped too, so that it stays for its partitions);
    // A is stopped once B was given partitions, and B once the backlog is committed
    let mut a = spawn_streamer(dir.path(), &["run", &cfg], &envs);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&db, "fact_sales") < 200 {
        assert!(
            Instant::now() < deadline,
            "{mode}: nothing committed:\n{}",
            a.output()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b = spawn_streamer(dir.path(), &["run", &cfg], &envs);
    b.wait_for_output(&format!("assigned [{topic}/"), Duration::from_secs(60));
    a.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(240);
    while stored_offsets(&db, &topic) != ends {
        assert!(
            Instant::now() < deadline,
            "{mode}: the backlog was never committed:\na:\n{}\nb:\n{}",
            a.output(),
            b.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    b.signal("TERM");
    for (name, s) in [("a", &mut a), ("b", &mut b)] {
        let st = s.wait_or_fail(Duration::from_secs(240));
        let out = s.output();
        assert!(st.success(), "{mode}: member {name} failed ({st}):\n{out}");
        assert!(
            !out.contains("assign() call failed"),
            "{mode}: member {name} made an eager call:\n{out}"
        );
    }
    assert!(
        a.output().contains("revoked ["),
        "{mode}: the first member never gave a partition up:\n{}",
        a.output()
    );
    assert_tables(&db, &ds, &ends, &topic);
}

const COOPERATIVE_STICKY: &str = "kafka.partition.assignment.strategy = cooperative-sticky";

#[test]
fn cooperative_member_joins_mid_run_partition_mode() {
    cooperative_member_joins_mid_run("partition", COOPERATIVE_STICKY);
}

#[test]
fn cooperative_member_joins_mid_run_batch_mode() {
    cooperative_member_joins_mid_run("batch", COOPERATIVE_STICKY);
}

/// The same with the consumer group protocol of KIP-848 (`group.protocol = consumer`,
/// Kafka 4): the broker assigns, incrementally, and sets the heartbeat, a property
/// librdkafka then refuses on the client (streamer's default for it is left out).
#[test]
fn consumer_protocol_member_joins_mid_run_partition_mode() {
    cooperative_member_joins_mid_run("partition", "kafka.group.protocol = consumer");
}

#[test]
fn consumer_protocol_member_joins_mid_run_batch_mode() {
    cooperative_member_joins_mid_run("batch", "kafka.group.protocol = consumer");
}

/// One partition, two members: whichever owns nothing must not call an empty assignment
/// "caught up". Each exits 0 only once the whole backlog is committed.
#[test]
fn a_member_that_owns_nothing_exits_only_after_the_backlog_is_in() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_idle_member");
    broker.create_topic(&topic, 1);
    let ds = data_set(6_000, 300, 2, 42);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let db = TestDb::create();
    let dir = TempDir::new("idle-member");
    let extra = "[pipeline]\nbatch_max_messages = 40\nbatch_max_latency_ms = 20\n\
                 [metrics]\nlisten = 127.0.0.1:0\n";
    let cfg = cfg_path(&dir, broker, &db, &topic, extra);
    warmup(dir.path(), &cfg, &[]);

    let mut a = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&db, "fact_sales") == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing committed:\n{}",
            a.output()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut b = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &[]);
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut exited = Vec::new();
    while exited.len() < 2 {
        for (name, s) in [("a", &mut a), ("b", &mut b)] {
            if exited.contains(&name) {
                continue;
            }
            if let Some(st) = s.child.try_wait().expect("try_wait") {
                let stored = stored_offsets(&db, &topic);
                assert!(st.success(), "member {name} failed ({st}):\n{}", s.output());
                assert_eq!(
                    stored,
                    ends,
                    "member {name} exited 0 before the backlog was committed:\n{}",
                    s.output()
                );
                exited.push(name);
            }
        }
        assert!(
            Instant::now() < deadline,
            "members still running: a:\n{}\nb:\n{}",
            a.output(),
            b.output()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let owned_nothing = [a.output(), b.output()]
        .iter()
        .any(|o| o.contains("assigned []"));
    assert!(owned_nothing, "neither member was ever left with nothing");
    assert_tables(&db, &ds, &ends, &topic);
}

/// A partition-mode member whose partitions are revoked (a second process joins) drops
/// the batches it has read and not written, instead of writing them while the whole group
/// waits for its rebalance; the next owner reads those messages again from the offsets
/// PostgreSQL holds, and the tables end exact. Member A holds whatever it reads (no bound
/// it reaches, no latency or linger it waits out) until it is stopped.
#[test]
fn a_revoked_member_leaves_what_it_has_not_written_to_the_next_owner() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_revoke_unwritten");
    broker.create_topic(&topic, 4);
    let ds = data_set(2_000, 100, 1, 91);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let db = TestDb::create();
    let dir_a = TempDir::new("revoke-hold");
    let hold = "[pipeline]\nbatch_max_messages = 1000000\nbatch_max_latency_ms = 600000\n\
                batch_linger_ms = 600000\n";
    let cfg_a = cfg_path(&dir_a, broker, &db, &topic, hold);
    warmup(dir_a.path(), &cfg_a, &[]);
    // the same group and database, with batches it writes
    let dir_b = TempDir::new("revoke-next");
    let text = std::fs::read_to_string(&cfg_a).expect("reading A's config");
    assert!(text.contains(hold), "A's config: {text}");
    let cfg_b = dir_b.path().join("config.ini");
    std::fs::write(
        &cfg_b,
        text.replace(hold, "[pipeline]\nbatch_max_messages = 200\n"),
    )
    .expect("writing B's config");
    let cfg_b = cfg_b.to_string_lossy().into_owned();
    let envs = [
        ("MODE", "partition"),
        ("RUST_LOG", "info,streamer::modes::partition=debug"),
    ];

    let mut a = spawn_streamer(dir_a.path(), &["run", &cfg_a], &envs);
    a.wait_for_output("assigned [", Duration::from_secs(60));
    assert_eq!(
        count(&db, "fact_sales"),
        0,
        "A wrote a batch:\n{}",
        a.output()
    );
    let mut b = spawn_streamer(dir_b.path(), &["run", &cfg_b, "--until-caught-up"], &envs);
    a.wait_for_output(
        "not yet written are left to the next owner",
        Duration::from_secs(60),
    );
    // B loads its half; A holds its half again (read anew from PostgreSQL's offsets)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = stored_offsets(&db, &topic);
        let done = ends
            .iter()
            .filter(|(p, e)| stored.get(*p) == Some(*e))
            .count();
        if done >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B did not load its partitions: {stored:?} of {ends:?}\na:\n{}\nb:\n{}",
            a.output(),
            b.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // stopped, A writes what it holds
    a.signal("TERM");
    let st = a.wait_or_fail(Duration::from_secs(120));
    assert!(st.success(), "A failed ({st}):\n{}", a.output());
    let st = b.wait_or_fail(Duration::from_secs(120));
    assert!(st.success(), "B failed ({st}):\n{}", b.output());
    assert_tables(&db, &ds, &ends, &topic);
}

/// A process that finds keys stored by another one (here: a first run, then the same
/// messages sent again ahead of new ones) publishes the keys it inserts from then on in
/// `stream_recent_keys`, for the group's other processes to look up only those (see
/// `src/sink/shared.rs`): every published prefix is the first 8 bytes of a key in
/// fact_sales, and the tables stay exact.
#[test]
fn a_process_that_finds_others_keys_publishes_its_own() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_shared_keys");
    broker.create_topic(&topic, 4);
    let ds = data_set(4_000, 400, 1, 77);
    let half = ds.messages.len() / 2;
    let bad: Vec<Option<Vec<u8>>> = bad_messages().into_iter().map(|(m, _)| m).collect();
    let mut positions = broker.produce(&topic, &ds.messages[..half]);
    let db = TestDb::create();
    let dir = TempDir::new("shared-keys");
    let cfg = cfg_path(
        &dir,
        broker,
        &db,
        &topic,
        "[metrics]\nlisten = 127.0.0.1:0\n",
    );
    warmup(dir.path(), &cfg, &[]);
    drain(dir.path(), &cfg, &[]);
    let first_run = count(&db, "fact_sales");
    let (published_first, _) = published_prefixes(&db);
    // the first half again (all but the malformed, which would be dead letters again),
    // ahead of the second half: the next process's first COPYs find them stored
    let again: Vec<Record> = ds.messages[..half]
        .iter()
        .filter(|(_, v)| !bad.contains(v))
        .cloned()
        .collect();
    positions.extend(broker.produce(&topic, &again));
    positions.extend(broker.produce(&topic, &ds.messages[half..]));
    drain(dir.path(), &cfg, &[]);
    assert_tables(&db, &ds, &produced_ends(&positions), &topic);

    let (published, unknown) = published_prefixes(&db);
    assert!(published > 0, "no key published after finding stored ones");
    assert_eq!(
        unknown, 0,
        "published prefixes that are no key in fact_sales"
    );
    let second_run = count(&db, "fact_sales") - first_run;
    assert!(
        published - published_first <= second_run,
        "{} prefixes published for {second_run} facts the second run inserted",
        published - published_first
    );
}

/// The key prefixes in `stream_recent_keys`, and how many of them are the first 8 bytes of
/// no key in fact_sales.
fn published_prefixes(db: &TestDb) -> (i64, i64) {
    let row = db
        .client()
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM fact_sales f \
                 WHERE decode(left(f.sales_key, 16), 'hex') = p.prefix)) \
             FROM (SELECT substr(k.prefixes, i * 8 + 1, 8) AS prefix FROM stream_recent_keys k, \
                   generate_series(0, length(k.prefixes) / 8 - 1) AS i) p",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

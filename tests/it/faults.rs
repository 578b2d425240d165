//! Fault tests against the real broker and PostgreSQL, each ending with exact tables:
//! a rebalance after one of two group members is killed, PostgreSQL stopped mid-run (a
//! throwaway cluster, never the shared server), the broker frozen mid-run (SIGSTOP), and
//! SIGTERM mid-run (exit 0 in time, only whole batches committed, a rerun completes).

use std::time::{Duration, Instant};

use crate::harness;
use crate::harness::check::{
    assert_committed_prefix, assert_tables, cfg_path, count, drain, produced_ends, stored_offsets,
    warmup, Database,
};
use crate::harness::events::{data_set, DataSet};
use crate::harness::pg_cluster::PgCluster;
use crate::harness::{spawn_streamer, write_config, Broker, Streamer, TempDir, TestDb};

/// Small batches so that a run takes many transactions; metrics on a port of their own.
const SMALL_BATCHES: &str = "[pipeline]\n\
     batch_max_messages = 100\n\
     batch_max_latency_ms = 50\n\
     trigger_interval_ms = 200\n\
     shutdown_timeout_ms = 10000\n\
     \n\
     [metrics]\n\
     listen = 127.0.0.1:0\n";

/// Polls `check` every 20 ms until it returns Ok; after `timeout` panics with the last
/// Err (which says what was awaited and how things stand).
fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return,
            Err(state) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {state}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn running(s: &mut Streamer) -> bool {
    s.child.try_wait().expect("try_wait").is_none()
}

/// Waits until `min_facts` facts are committed while `s` keeps running, and checks the
/// topic is not done yet (so that what follows happens mid-run).
fn wait_mid_run<D: Database>(
    s: &mut Streamer,
    db: &D,
    topic: &str,
    ends: &std::collections::BTreeMap<i32, i64>,
    min_facts: i64,
) {
    wait_until(Duration::from_secs(90), || {
        assert!(running(s), "streamer exited early:\n{}", s.output());
        let n = count(db, "fact_sales");
        if n >= min_facts {
            return Ok(());
        }
        Err(format!(
            "{min_facts} committed facts (now {n}); output:\n{}",
            s.output()
        ))
    });
    let stored = stored_offsets(db, topic);
    assert_ne!(
        &stored, ends,
        "the whole topic was loaded before the fault; make the data set larger"
    );
}

/// Adds `kafka.X = v` settings to the `[remote_kafka]` section of the config at `cfg`.
fn add_kafka_settings(cfg: &str, settings: &[(&str, &str)]) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let anchor = "startingOffsets = earliest\n";
    assert!(text.contains(anchor), "{text}");
    let mut add = String::from(anchor);
    for (k, v) in settings {
        add.push_str(&format!("{k} = {v}\n"));
    }
    std::fs::write(cfg, text.replacen(anchor, &add, 1)).unwrap();
}

/// Keep librdkafka's prefetch small, so that the consumer needs the broker all along
/// (by default it would buffer the whole test topic in memory within a second).
const SMALL_PREFETCH: &[(&str, &str)] = &[
    ("kafka.queued.max.messages.kbytes", "64"),
    ("kafka.queued.min.messages", "100"),
    ("kafka.max.partition.fetch.bytes", "16384"),
    ("kafka.fetch.max.bytes", "65536"),
    ("kafka.message.max.bytes", "65536"),
];

// ---------------------------------------------------------------------------------------
// Rebalance
// ---------------------------------------------------------------------------------------

/// What a streamer's log says it owns right now.
#[derive(Debug, Default)]
struct Ownership {
    /// partitions assigned now
    owned: usize,
    /// index of the line of the last assignment change
    changed_at: usize,
    /// batch lines after that change
    batches_since: usize,
    /// lines read
    lines: usize,
}

/// Number of partitions in an "assigned [t/0, t/1]" or "assigned 2 partitions" tail.
fn partitions_in(tail: &str) -> Option<usize> {
    let tail = tail.trim_start();
    if let Some(list) = tail.strip_prefix('[') {
        let list = &list[..list.find(']')?];
        return Some(list.split(',').filter(|s| !s.trim().is_empty()).count());
    }
    tail.split_whitespace().next()?.parse().ok()
}

fn ownership(output: &str) -> Ownership {
    let mut o = Ownership::default();
    for (i, line) in output.lines().enumerate() {
        o.lines = i + 1;
        if let Some(at) = line.find("] assigned ") {
            if let Some(n) = partitions_in(&line[at + "] assigned ".len()..]) {
                o.owned += n;
                o.changed_at = i;
                o.batches_since = 0;
            }
        } else if let Some(at) = line.find("] revoked ") {
            if let Some(n) = partitions_in(&line[at + "] revoked ".len()..]) {
                o.owned = o.owned.saturating_sub(n);
                o.changed_at = i;
                o.batches_since = 0;
            }
        } else if line.contains("rebalance error") {
            o.owned = 0;
            o.changed_at = i;
            o.batches_since = 0;
        } else if line.contains("] batch ") && line.contains(" messages") {
            o.batches_since += 1;
        }
    }
    o
}

/// Produces `messages` in `chunks` pieces with `pause` between them (a live stream);
/// returns the positions in message order.
fn produce_over_time(
    broker: &Broker,
    topic: &str,
    messages: &[harness::Record],
    chunks: usize,
    pause: Duration,
) -> Vec<(i32, i64)> {
    let size = messages.len().div_ceil(chunks);
    let mut positions = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(size) {
        positions.extend(broker.produce(topic, chunk));
        std::thread::sleep(pause);
    }
    positions
}

/// Two members of one group share a 4-partition topic that is being produced to; one is
/// SIGKILLed mid-run; Kafka's coordinator hands its partitions to the survivor once its
/// session expires (6 s here), and the survivor alone loads the rest: everything exactly
/// once. No third member joins to make the rebalance happen.
fn rebalance_after_a_member_is_killed(mode: &str) {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds = data_set(18_000, 1_500, 10, 31);
    let db = TestDb::create();
    let dir = TempDir::new(&format!("rebalance-{mode}"));
    let cfg = cfg_path(&dir, broker, &db, topic, SMALL_BATCHES);
    // Partition mode logs its batch lines at debug level.
    let envs = [("MODE", mode), ("RUST_LOG", "info,streamer::modes=debug")];
    warmup(dir.path(), &cfg, &envs);

    std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            produce_over_time(broker, topic, &ds.messages, 40, Duration::from_millis(300))
        });
        let mut a = spawn_streamer(dir.path(), &["run", &cfg], &envs);
        let mut b = spawn_streamer(dir.path(), &["run", &cfg], &envs);

        // Both own partitions (together all four) and have each committed since.
        wait_until(Duration::from_secs(60), || {
            assert!(running(&mut a), "member a exited:\n{}", a.output());
            assert!(running(&mut b), "member b exited:\n{}", b.output());
            let (oa, ob) = (ownership(&a.output()), ownership(&b.output()));
            if oa.owned > 0
                && ob.owned > 0
                && oa.owned + ob.owned == 4
                && oa.batches_since > 0
                && ob.batches_since > 0
            {
                return Ok(());
            }
            Err(format!(
                "both members to own partitions and commit ({oa:?}, {ob:?}); a:\n{}\nb:\n{}",
                a.output(),
                b.output()
            ))
        });
        assert!(
            !producer.is_finished(),
            "all data was produced before the kill; produce more slowly"
        );
        let at_kill = stored_offsets(&db, topic);
        b.signal("KILL");
        let _ = b.wait_or_fail(Duration::from_secs(10));
        let lines_at_kill = ownership(&a.output()).lines;
        eprintln!("{mode}: killed member b at stream_offsets {at_kill:?}");

        // The group notices (session timeout) and rebalances the survivor.
        wait_until(Duration::from_secs(60), || {
            assert!(running(&mut a), "survivor exited:\n{}", a.output());
            let o = ownership(&a.output());
            if o.changed_at >= lines_at_kill && o.owned == 4 {
                return Ok(());
            }
            Err(format!(
                "the survivor to be given its partitions after the kill ({o:?}):\n{}",
                a.output()
            ))
        });
        eprintln!(
            "{mode}: after the kill the survivor owns {} partitions",
            ownership(&a.output()).owned
        );

        let positions = producer.join().expect("producer thread");
        let ends = produced_ends(&positions);
        assert_eq!(ends.len(), 4);
        wait_until(Duration::from_secs(90), || {
            assert!(running(&mut a), "survivor exited:\n{}", a.output());
            let stored = stored_offsets(&db, topic);
            if stored == ends {
                return Ok(());
            }
            Err(format!(
                "stream_offsets {stored:?} to reach {ends:?}; survivor:\n{}",
                a.output()
            ))
        });
        a.signal("TERM");
        let st = a.wait_or_fail(Duration::from_secs(30));
        assert_eq!(
            st.code(),
            Some(0),
            "survivor after SIGTERM:\n{}",
            a.output()
        );
        assert_tables(&db, &ds, &ends, topic);
    });
}

#[test]
fn rebalance_partition_mode() {
    rebalance_after_a_member_is_killed("partition");
}

#[test]
fn rebalance_batch_mode() {
    rebalance_after_a_member_is_killed("batch");
}

#[test]
fn ownership_parser() {
    let log = "[t INFO  streamer::modes::partition] assigned [pv/0, pv/1, pv/2, pv/3]\n\
               [t DEBUG streamer::modes] batch 1: 100 messages, 90 facts, 0 duplicates, 10 dead letters, total 5 ms\n\
               [t INFO  streamer::modes::partition] revoked [pv/0, pv/1, pv/2, pv/3]\n\
               [t INFO  streamer::modes::partition] assigned [pv/2, pv/3]\n\
               [t DEBUG streamer::modes] batch 2: 100 messages, 90 facts, 0 duplicates, 10 dead letters, total 5 ms\n";
    let o = ownership(log);
    assert_eq!((o.owned, o.changed_at, o.batches_since), (2, 3, 1));
    let log = "[t INFO  streamer::modes::batch] assigned 4 partitions\n\
               [t INFO  streamer::modes::batch] revoked 4 partitions; their uncommitted messages are dropped\n\
               [t INFO  streamer::modes::batch] assigned 0 partitions\n";
    assert_eq!(ownership(log).owned, 0);
    assert_eq!(partitions_in("[]"), Some(0));
}

// ---------------------------------------------------------------------------------------
// PostgreSQL down
// ---------------------------------------------------------------------------------------

/// PostgreSQL (a throwaway cluster) stopped for about 5 s mid-run, then started again:
/// the streamer retries with backoff, says so in WARN lines, does not exit, and ends with
/// exact tables.
fn postgres_down_mid_run(mode: &str) {
    let cluster = PgCluster::start();
    let db = cluster.create_database(&format!("streamer_pgdown_{mode}"));
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds = data_set(15_000, 1_000, 8, 41);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);

    let dir = TempDir::new(&format!("pg-down-{mode}"));
    let cfg = write_config(
        dir.path(),
        &broker.bootstrap(),
        db.name(),
        topic,
        SMALL_BATCHES,
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    let port_line = format!("port_out = {}", harness::PG_PORT);
    assert!(text.contains(&port_line));
    std::fs::write(
        &cfg,
        text.replace(&port_line, &format!("port_out = {}", cluster.port())),
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);

    let mut s = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &envs);
    wait_mid_run(&mut s, &db, topic, &ends, 500);

    cluster.stop();
    let stopped = Instant::now();
    // The pipeline notices, says it retries, and keeps running.
    wait_until(Duration::from_secs(30), || {
        assert!(
            running(&mut s),
            "streamer exited while PostgreSQL was down:\n{}",
            s.output()
        );
        let out = s.output();
        if out
            .lines()
            .any(|l| l.contains("PostgreSQL write failed") && l.contains("retrying"))
        {
            return Ok(());
        }
        Err(format!(
            "a \"PostgreSQL write failed ... retrying\" line:\n{out}"
        ))
    });
    // Leave it down for about 5 s in all.
    while stopped.elapsed() < Duration::from_secs(5) {
        assert!(
            running(&mut s),
            "streamer exited while PostgreSQL was down:\n{}",
            s.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(running(&mut s), "{}", s.output());
    cluster.start_again();

    let st = s.wait_or_fail(Duration::from_secs(120));
    assert!(
        st.success(),
        "run after the outage failed ({st}):\n{}",
        s.output()
    );
    let warns = s
        .output()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("PostgreSQL write failed"))
        .count();
    assert!(warns > 0, "no WARN line about the outage:\n{}", s.output());
    assert_tables(&db, &ds, &ends, topic);
}

#[test]
fn postgres_down_mid_run_partition_mode() {
    postgres_down_mid_run("partition");
}

#[test]
fn postgres_down_mid_run_batch_mode() {
    postgres_down_mid_run("batch");
}

// ---------------------------------------------------------------------------------------
// Broker unresponsive
// ---------------------------------------------------------------------------------------

/// The broker frozen (SIGSTOP) for about 5 s while the streamer still needs it, then
/// thawed: the run ends by itself with exact tables.
fn broker_paused_mid_run(mode: &str) {
    let broker = Broker::start();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds = data_set(15_000, 1_000, 8, 43);
    // Small record batches: a broker hands out whole record batches, so big ones would be
    // prefetched in one go whatever the consumer's limits.
    let positions = produce_over_time(&broker, topic, &ds.messages, 80, Duration::ZERO);
    let ends = produced_ends(&positions);
    let db = TestDb::create();
    let dir = TempDir::new(&format!("broker-pause-{mode}"));
    let cfg = cfg_path(&dir, &broker, &db, topic, SMALL_BATCHES);
    add_kafka_settings(&cfg, SMALL_PREFETCH);
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);

    let mut s = spawn_streamer(dir.path(), &["run", &cfg, "--until-caught-up"], &envs);
    wait_mid_run(&mut s, &db, topic, &ends, 500);

    broker.pause();
    let paused = Instant::now();
    let at_pause = stored_offsets(&db, topic);
    while paused.elapsed() < Duration::from_secs(5) {
        if !running(&mut s) {
            broker.resume();
            panic!(
                "streamer exited while the broker was paused:\n{}",
                s.output()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let after_pause = stored_offsets(&db, topic);
    broker.resume();
    eprintln!("{mode}: stream_offsets at pause {at_pause:?}, 5 s later {after_pause:?}");
    assert_ne!(
        after_pause, ends,
        "the streamer finished without the broker (prefetched everything); the pause tested nothing"
    );

    let st = s.wait_or_fail(Duration::from_secs(120));
    assert!(
        st.success(),
        "run after the broker pause failed ({st}):\n{}",
        s.output()
    );
    assert_tables(&db, &ds, &ends, topic);
}

#[test]
fn broker_paused_mid_run_partition_mode() {
    broker_paused_mid_run("partition");
}

#[test]
fn broker_paused_mid_run_batch_mode() {
    broker_paused_mid_run("batch");
}

// ---------------------------------------------------------------------------------------
// SIGTERM
// ---------------------------------------------------------------------------------------

/// SIGTERM mid-run: exit 0 within the shutdown timeout; the tables hold exactly the
/// messages below the stored offsets; a rerun completes the load exactly.
fn sigterm_mid_run(mode: &str) {
    let broker = Broker::shared();
    let topic = harness::unique_name("product_view");
    let topic = topic.as_str();
    broker.create_topic(topic, 4);
    let ds: DataSet = data_set(15_000, 1_000, 8, 47);
    let positions = broker.produce(topic, &ds.messages);
    let ends = produced_ends(&positions);
    let db = TestDb::create();
    let dir = TempDir::new(&format!("sigterm-{mode}"));
    let cfg = cfg_path(&dir, broker, &db, topic, SMALL_BATCHES);
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);

    let mut s = spawn_streamer(dir.path(), &["run", &cfg], &envs);
    wait_mid_run(&mut s, &db, topic, &ends, 1000);
    s.signal("TERM");
    let termed = Instant::now();
    // shutdown_timeout_ms = 10000, plus a margin for process exit on a busy machine.
    let st = s.wait_timeout(Duration::from_secs(15)).unwrap_or_else(|| {
        s.kill();
        panic!("no exit within 15 s of SIGTERM:\n{}", s.output())
    });
    eprintln!("{mode}: exit {st} {:?} after SIGTERM", termed.elapsed());
    assert_eq!(st.code(), Some(0), "exit after SIGTERM:\n{}", s.output());
    assert!(
        s.output().contains("stopped:"),
        "no final stop line:\n{}",
        s.output()
    );
    assert_committed_prefix(&db, &ds, &positions, topic);
    eprintln!(
        "{mode}: {} facts committed at SIGTERM, offsets {:?} of {ends:?}",
        count(&db, "fact_sales"),
        stored_offsets(&db, topic)
    );

    drain(dir.path(), &cfg, &envs);
    assert_tables(&db, &ds, &ends, topic);
}

#[test]
fn sigterm_mid_run_partition_mode() {
    sigterm_mid_run("partition");
}

#[test]
fn sigterm_mid_run_batch_mode() {
    sigterm_mid_run("batch");
}

//! Where partitions start. Partitions added to a topic while a group reads it
//! (`kafka-topics --alter --partitions`): the running process picks them up within seconds
//! and reads them from their log's start, as Spark does for partitions discovered during a
//! query, even with `startingOffsets = latest`, which would skip what they received before
//! the group saw them. Spark's JSON `startingOffsets` gives each partition its offset, and
//! a partition it leaves out stops the run.

use std::time::{Duration, Instant};

use crate::harness::check::{count, drain, stored_offsets, warmup};
use crate::harness::{spawn_streamer, unique_name, Broker, Record, TempDir, TestDb};
use crate::kafka::{events, plaintext, run_to_end, seed_config};

fn values(ms: &[Record]) -> Vec<Vec<u8>> {
    ms.iter().map(|(_, v)| v.clone().expect("value")).collect()
}

fn partitions_added_mid_run(mode: &str) {
    let broker = Broker::shared();
    let topic = unique_name("product_view_added");
    broker.create_topic(&topic, 2);
    let all = events(60, 31);
    // history that `latest` must not load
    broker.produce_to_partition(&topic, 0, &values(&all[..10]));
    let db = TestDb::create();
    let dir = TempDir::new(&format!("added-{mode}"));
    let cfg = seed_config(dir.path(), &db, &plaintext(broker), &topic, "latest", "");
    let envs = [("MODE", mode)];
    warmup(dir.path(), &cfg, &envs);
    let mut s = spawn_streamer(dir.path(), &["run", &cfg], &envs);
    s.wait_for_output(
        &format!("{topic}/1: first assignment"),
        Duration::from_secs(60),
    );
    broker.produce_to_partition(&topic, 1, &values(&all[10..20]));
    broker.add_partitions(&topic, 4);
    // at once, before the process can have seen the new partitions
    broker.produce_to_partition(&topic, 2, &values(&all[20..35]));
    broker.produce_to_partition(&topic, 3, &values(&all[35..]));
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&db, "fact_sales") < 50 {
        assert!(
            Instant::now() < deadline,
            "{mode}: {} of 50 facts; offsets {:?}:\n{}",
            count(&db, "fact_sales"),
            stored_offsets(&db, &topic),
            s.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.signal("TERM");
    let st = s.wait_or_fail(Duration::from_secs(60));
    assert!(st.success(), "{mode}: exit {st}:\n{}", s.output());
    assert_eq!(count(&db, "fact_sales"), 50, "{mode}: facts");
    assert_eq!(
        stored_offsets(&db, &topic),
        [(0, 10), (1, 10), (2, 15), (3, 25)].into_iter().collect(),
        "{mode}: stored offsets"
    );
    let out = s.output();
    assert!(
        out.contains(&format!("{topic}/3: a partition added to the topic")),
        "{mode}: the added partition is named as such:\n{out}"
    );
}

#[test]
fn partitions_added_mid_run_are_read_from_their_start_partition_mode() {
    partitions_added_mid_run("partition");
}

#[test]
fn partitions_added_mid_run_are_read_from_their_start_batch_mode() {
    partitions_added_mid_run("batch");
}

/// `startingOffsets = {"topic":{"0":3,"1":-1,"2":-2}}`: partition 0 from offset 3,
/// partition 1 from its end, partition 2 from its start. Without partition 2 in it, the run
/// stops naming the partition, as Spark's does, and stores nothing for it.
#[test]
fn sparks_json_starting_offsets_give_each_partition_its_start() {
    let broker = Broker::shared();
    let topic = unique_name("product_view_json_start");
    broker.create_topic(&topic, 3);
    let all = events(30, 33);
    for p in 0..3 {
        let at = p as usize * 10;
        broker.produce_to_partition(&topic, p, &values(&all[at..at + 10]));
    }
    let db = TestDb::create();
    let dir = TempDir::new("json-start");
    let json = format!(r#"{{"{topic}":{{"0":3,"1":-1,"2":-2}}}}"#);
    let cfg = seed_config(dir.path(), &db, &plaintext(broker), &topic, &json, "");
    warmup(dir.path(), &cfg, &[]);
    drain(dir.path(), &cfg, &[]);
    assert_eq!(count(&db, "fact_sales"), 7 + 10, "facts");
    assert_eq!(
        stored_offsets(&db, &topic),
        [(0, 10), (1, 10), (2, 10)].into_iter().collect(),
    );

    let db = TestDb::create();
    let dir = TempDir::new("json-start-partial");
    let json = format!(r#"{{"{topic}":{{"0":3,"1":-1}}}}"#);
    let cfg = seed_config(dir.path(), &db, &plaintext(broker), &topic, &json, "");
    warmup(dir.path(), &cfg, &[]);
    let (code, out) = run_to_end(dir.path(), &cfg, &[], Duration::from_secs(120));
    assert_eq!(code, 1, "a partition without a start:\n{out}");
    assert!(
        out.contains(&format!("the start of {topic}/2"))
            && out.contains("must name every partition"),
        "{out}"
    );
    assert_eq!(count(&db, "fact_sales"), 0, "nothing loaded");
}

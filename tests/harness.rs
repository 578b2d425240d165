//! Smoke tests of the test harness itself against the real services: PostgreSQL on
//! 127.0.0.1:5432 and a private Tansu broker.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Broker, TempDir, TestDb};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

#[test]
fn test_db_is_fresh_usable_and_dropped() {
    let db = TestDb::create();
    let name = db.name().to_string();
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
        )
        .unwrap();
    assert_eq!(db.count("t"), 2);
    let current: String = client
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    assert_eq!(current, name);

    // Dropping works even with a connection still open (WITH (FORCE)).
    drop(db);
    let mut admin =
        postgres::Client::connect(&common::pg_conn_string("postgres"), postgres::NoTls).unwrap();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "database {name} still exists after drop");
    drop(client);
}

#[test]
fn broker_roundtrip_four_partitions() {
    let broker = Broker::start();
    let topic = common::unique_name("harness_topic");
    broker.create_topic(&topic, 4);
    assert_eq!(broker.partition_count(&topic), 4);

    let messages: Vec<common::Record> = (0..100)
        .map(|i| {
            (
                Some(format!("key-{i}").into_bytes()),
                Some(format!("{{\"id\":\"event-{i}\",\"n\":{i}}}").into_bytes()),
            )
        })
        .collect();
    let delivered = broker.produce(&topic, &messages);
    assert_eq!(delivered.len(), 100);
    let used: HashSet<i32> = delivered.iter().map(|(p, _)| *p).collect();
    assert!(used.len() > 1, "keys all landed on one partition: {used:?}");

    // Read back with a plain BaseConsumer, as the brief of the harness says.
    let group = common::unique_name("harness_group");
    let consumer: BaseConsumer = broker.consumer_config(&group).create().unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut payloads = Vec::new();
    let mut eof = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while eof.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "EOF seen on {eof:?} with {} messages; broker log {}",
            payloads.len(),
            broker.log_path().display()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                payloads.push(m.payload().unwrap().to_vec());
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("consume: {e}"),
        }
    }
    let distinct: HashSet<&Vec<u8>> = payloads.iter().collect();
    assert_eq!(payloads.len(), 100, "duplicates or losses");
    assert_eq!(distinct.len(), 100);
    let expected: HashSet<Vec<u8>> = messages.iter().map(|(_, v)| v.clone().unwrap()).collect();
    assert_eq!(
        distinct.into_iter().cloned().collect::<HashSet<_>>(),
        expected
    );

    // The helper agrees.
    assert_eq!(
        broker.consume_all(&topic, 4, Duration::from_secs(60)).len(),
        100
    );
}

#[test]
fn broker_pause_and_resume() {
    let broker = Broker::start();
    let topic = common::unique_name("harness_pause");
    broker.create_topic(&topic, 2);
    broker.produce_to_partition(&topic, 1, &[b"before".to_vec()]);

    broker.pause();
    // While frozen the broker answers nothing.
    let probe: BaseConsumer = broker.base_config().create().unwrap();
    assert!(
        probe
            .fetch_metadata(None, Duration::from_millis(1500))
            .is_err(),
        "paused broker answered a metadata request"
    );
    broker.resume();

    let delivered =
        broker.produce_to_partition(&topic, 1, &[b"after-1".to_vec(), b"after-2".to_vec()]);
    assert!(delivered.iter().all(|(p, _)| *p == 1));
    broker.produce(&topic, &[(None, Some(b"unkeyed".to_vec()))]);

    let got = broker.consume_all(&topic, 2, Duration::from_secs(60));
    let mut payloads: Vec<Vec<u8>> = got.iter().map(|m| m.payload().unwrap().to_vec()).collect();
    payloads.sort();
    assert_eq!(
        payloads,
        vec![
            b"after-1".to_vec(),
            b"after-2".to_vec(),
            b"before".to_vec(),
            b"unkeyed".to_vec()
        ]
    );
}

#[test]
fn config_file_has_seed_sections() {
    let dir = TempDir::new("harness-config");
    let path = common::write_config(
        dir.path(),
        "127.0.0.1:1",
        "somedb",
        "sometopic",
        "[pipeline]\nmode = batch",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "[local_spark]",
        "app_name = streamer_it_",
        "[docker_postgres]",
        "host_out = 127.0.0.1",
        "port_out = 5432",
        "database = somedb",
        "user = postgres",
        "password =\n",
        "host_in = db",
        "[remote_kafka]",
        "kafka.bootstrap.servers = 127.0.0.1:1",
        "kafka.fetch.wait.max.ms = 10",
        "subscribe = sometopic",
        "startingOffsets = earliest",
        "[pipeline]\nmode = batch\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(common::streamer_bin().is_file());
}

#[test]
fn broker_on_a_taken_port_fails_instead_of_using_the_other_listener() {
    // Tansu 0.6 does not exit when its bind fails; the harness must notice and not mistake
    // whatever holds the port for its own broker.
    let other = Broker::start();
    let started = std::time::Instant::now();
    match Broker::start_on_port(other.port()) {
        Ok(b) => panic!("second broker claims port {} (pid {})", b.port(), b.pid()),
        Err(e) => assert!(e.contains("in use") || e.contains("another"), "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

//! Smoke tests of the test harness itself against the real services: PostgreSQL on
//! 127.0.0.1:5432 and Kafka brokers (the shared one of the run, and private ones).

use std::collections::HashSet;
use std::time::Duration;

use crate::harness;
use crate::harness::broker::Ports;
use crate::harness::{Broker, TempDir, TestDb};
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
        postgres::Client::connect(&harness::pg_conn_string("postgres"), postgres::NoTls).unwrap();
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
    let broker = Broker::shared();
    let topic = harness::unique_name("harness_topic");
    broker.create_topic(&topic, 4);
    assert_eq!(broker.partition_count(&topic), 4);

    let messages: Vec<harness::Record> = (0..100)
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
    let group = harness::unique_name("harness_group");
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
    let topic = harness::unique_name("harness_pause");
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
    let path = harness::write_config(
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
    assert!(harness::streamer_bin().is_file());
}

#[test]
fn broker_on_a_taken_port_fails_instead_of_using_the_other_listener() {
    // Kafka exits when a bind fails; the harness must report that (so that start() retries
    // on new ports), not mistake whatever holds the port for its own broker.
    let other = Broker::shared();
    let started = std::time::Instant::now();
    let ports = Ports {
        plaintext: other.port(),
        ..Ports::free()
    };
    match Broker::start_on_ports(ports) {
        Ok(b) => panic!("second broker claims port {} (pid {:?})", b.port(), b.pid()),
        Err(e) => assert!(e.contains("in use") || e.contains("another"), "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Metadata over a SASL listener with the test credentials of `scripts/kafka-node`.
fn sasl_metadata(bootstrap: &str, mechanism: &str, user: &str, password: &str) -> usize {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("broker.address.family", "v4");
    let probe: BaseConsumer = c.create().unwrap();
    probe
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata over {mechanism} at {bootstrap}: {e}"))
        .brokers()
        .len()
}

#[test]
fn broker_sasl_listeners_accept_the_test_credentials() {
    let broker = Broker::shared();
    let plain = broker.sasl_plain_bootstrap();
    let scram = broker.sasl_scram_bootstrap();
    assert_ne!(plain, broker.bootstrap());
    assert_eq!(
        sasl_metadata(&plain, "PLAIN", "streamer", "streamer-plain-secret"),
        1
    );
    assert_eq!(
        sasl_metadata(
            &scram,
            "SCRAM-SHA-512",
            "streamer-scram",
            "streamer-scram-secret"
        ),
        1
    );
}

fn payloads(broker: &Broker, topic: &str, partitions: usize) -> Vec<Vec<u8>> {
    let got = broker.consume_all(topic, partitions, Duration::from_secs(60));
    got.iter()
        .map(|m| m.payload().unwrap_or_default().to_vec())
        .collect()
}

fn values(prefix: &str, n: usize) -> Vec<harness::Record> {
    (0..n)
        .map(|i| (None, Some(format!("{prefix}-{i}").into_bytes())))
        .collect()
}

#[test]
fn broker_delete_records_and_delete_topic() {
    let broker = Broker::shared();
    let topic = harness::unique_name("harness_delete");
    broker.create_topic(&topic, 1);
    let delivered = broker.produce(&topic, &values("v", 10));
    assert_eq!(delivered.last(), Some(&(0, 9)));
    assert_eq!(broker.delete_records(&topic, 0, 4), 4);
    let got = payloads(broker, &topic, 1);
    assert_eq!(got.first().map(Vec::as_slice), Some(&b"v-4"[..]));
    assert_eq!(got.len(), 6);

    broker.delete_topic(&topic);
    assert_eq!(broker.partition_count(&topic), 0);
}

#[test]
fn broker_transactions_commit_and_abort() {
    let broker = Broker::shared();
    let topic = harness::unique_name("harness_tx");
    broker.create_topic(&topic, 1);
    let committed = broker.produce_transactional(
        &topic,
        &[
            (values("a", 3), true),
            (values("b", 2), false),
            (values("c", 1), true),
        ],
    );
    assert_eq!(committed.len(), 4);
    // Offsets of the aborted batch and of the transaction markers stay in the log.
    assert!(committed[3].1 > 4, "{committed:?}");
    // The harness's readers are read_committed (librdkafka's default).
    assert_eq!(
        payloads(broker, &topic, 1),
        vec![
            b"a-0".to_vec(),
            b"a-1".to_vec(),
            b"a-2".to_vec(),
            b"c-0".to_vec()
        ]
    );
}

#[test]
fn broker_compacted_topic_is_cleaned() {
    let broker = Broker::shared();
    let topic = harness::unique_name("harness_compact");
    broker.create_compacted_topic(&topic, 1);
    let keyed = |k: &str, v: String| (Some(k.as_bytes().to_vec()), Some(v.into_bytes()));
    let batch: Vec<harness::Record> = (0..20).map(|i| keyed("k", format!("k-{i}"))).collect();
    broker.produce(&topic, &batch);
    // Later appends roll the segment (segment.ms) so that the cleaner can take the first.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        broker.produce(&topic, &[keyed("filler", format!("f-{round}"))]);
        round += 1;
        let got = payloads(broker, &topic, 1);
        let ks = got.iter().filter(|p| p.starts_with(b"k-")).count();
        if ks < 20 {
            assert!(
                got.contains(&b"k-19".to_vec()),
                "latest value lost: {got:?}"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compaction after {round} rounds; broker log {}",
            broker.log_path().display()
        );
    }
}

#[test]
fn private_broker_kill9_and_restart_keep_storage() {
    let broker = Broker::start();
    let topic = harness::unique_name("harness_restart");
    broker.create_topic(&topic, 2);
    broker.produce_to_partition(&topic, 1, &[b"one".to_vec(), b"two".to_vec()]);
    broker.kill9();
    let probe: BaseConsumer = broker.base_config().create().unwrap();
    assert!(
        probe
            .fetch_metadata(None, Duration::from_millis(1500))
            .is_err(),
        "killed broker answered a metadata request"
    );
    broker.restart();
    broker.produce_to_partition(&topic, 0, &[b"three".to_vec()]);
    let mut got = payloads(&broker, &topic, 2);
    got.sort();
    assert_eq!(
        got,
        vec![b"one".to_vec(), b"three".to_vec(), b"two".to_vec()]
    );
}

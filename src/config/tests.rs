//! Unit tests of configs that parse: the seed and the committed file, defaults, every
//! optional section, comments and quotes. Also the seed and helpers the other `tests_*`
//! modules share (environment in `tests_env`, bad configs and secrets in `tests_errors`,
//! JAAS in `tests_kafka`, connection settings in `tests_postgres`).

use std::path::PathBuf;
use std::time::Duration;

use super::*;

pub(super) const PASSWORD: &str = "s3cr3t-Pa55";

/// contract §3's seed example, verbatim (inline comments included).
pub(super) const SEED: &str = r#"[local_spark]
app_name = YourStreamingApp          ; used as the client id and default consumer group

[docker_postgres]
host_in = db                         ; host inside the container network
host_out = localhost                 ; host from outside
database = your_database
user = your_username
password = your_password
port_in = 5432
port_out = 5433

[remote_kafka]
kafka.bootstrap.servers = kafka-server1:9094,kafka-server2:9094
kafka.security.protocol = SASL_PLAINTEXT
kafka.sasl.mechanism = PLAIN
kafka.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";
subscribe = product_view
startingOffsets = latest
"#;

/// A seed-style config whose secrets are the distinctive PASSWORD.
pub(super) fn secret_seed() -> String {
    SEED.replace("your_password", PASSWORD)
        .replace("password=\"p\"", &format!("password=\"{PASSWORD}\""))
}

pub(super) fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn prop<'a>(c: &'a Config, name: &str) -> Option<&'a str> {
    c.kafka
        .properties
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.0.as_str())
}

/// Parse and expect a config error; check it names every `needle` and hides the password.
pub(super) fn config_error(text: &str, env: &[(String, String)], needles: &[&str]) -> String {
    let msg = match Config::parse(text, env) {
        Err(Error::Config(m)) => m,
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(_) => panic!("expected a config error, the config parsed"),
    };
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
    assert!(!msg.contains(PASSWORD), "message leaks the password: {msg}");
    assert!(!msg.contains("Pa55"), "message leaks the password: {msg}");
    msg
}

#[test]
fn committed_config_ini_parses() {
    let c = Config::parse(include_str!("../../config.ini"), &no_env()).expect("config.ini");
    assert_eq!(c.app_name, "streamer");
    assert_eq!(c.postgres.host, "127.0.0.1");
    assert_eq!(c.postgres.port, 5432);
    assert_eq!(c.postgres.database, "streamer");
    assert_eq!(c.postgres.user, "postgres");
    assert_eq!(c.postgres.password.0, "");
    assert_eq!(prop(&c, "bootstrap.servers"), Some("127.0.0.1:9092"));
    assert_eq!(prop(&c, "security.protocol"), Some("PLAINTEXT"));
    assert_eq!(c.kafka.topics, vec!["product_view"]);
    assert_eq!(c.kafka.starting_offsets, StartingOffsets::Earliest);
    assert_eq!(c.kafka.group_id, "streamer");
    assert!(c.ignored.is_empty());
    let in_docker = Config::parse(
        include_str!("../../config.ini"),
        &env(&[("STREAMER_IN_DOCKER", "1")]),
    )
    .expect("config.ini in docker");
    assert_eq!(in_docker.postgres.host, "db");
}

#[test]
fn seed_only_config_parses_with_defaults() {
    let c = Config::parse(SEED, &no_env()).expect("seed");
    assert_eq!(c.app_name, "YourStreamingApp");
    assert_eq!(c.kafka.client_id, "YourStreamingApp");
    assert_eq!(c.kafka.group_id, "YourStreamingApp");
    assert_eq!(c.postgres.host, "localhost");
    assert_eq!(c.postgres.port, 5433);
    assert_eq!(c.postgres.database, "your_database");
    assert_eq!(c.postgres.user, "your_username");
    assert_eq!(c.postgres.password.0, "your_password");
    assert_eq!(c.postgres.sslmode, "disable");
    assert_eq!(c.postgres.application_name, "YourStreamingApp");
    assert_eq!(
        prop(&c, "bootstrap.servers"),
        Some("kafka-server1:9094,kafka-server2:9094")
    );
    assert_eq!(prop(&c, "security.protocol"), Some("SASL_PLAINTEXT"));
    assert_eq!(prop(&c, "sasl.mechanism"), Some("PLAIN"));
    assert_eq!(prop(&c, "sasl.username"), Some("u"));
    assert_eq!(prop(&c, "sasl.password"), Some("p"));
    assert_eq!(prop(&c, "sasl.jaas.config"), None);
    assert_eq!(c.kafka.topics, vec!["product_view"]);
    assert_eq!(c.kafka.starting_offsets, StartingOffsets::Latest);

    let p = &c.pipeline;
    assert_eq!(p.mode, Mode::Partition);
    assert_eq!(p.batch_max_messages, 10_000);
    assert_eq!(p.batch_max_bytes, 16 * 1024 * 1024);
    assert_eq!(p.buffer_max_bytes, 48 * 1024 * 1024);
    assert_eq!(p.batch_max_latency, Duration::from_millis(100));
    assert_eq!(p.batch_linger, Duration::from_millis(20));
    assert_eq!(p.trigger_interval, Duration::from_millis(5000));
    assert_eq!(p.shutdown_timeout, Duration::from_millis(30_000));
    assert_eq!(p.pg_pool_size, 4);
    assert_eq!(p.retry_budget, Duration::from_secs(300));
    assert_eq!(p.transform_threads, 0);
    assert!(c.geoip_paths.is_empty());
    assert!(c.catalog.products.is_empty() && c.catalog.locations.is_empty());
    assert_eq!(c.metrics_listen, "127.0.0.1:9187");
    assert_eq!(c.progress_interval, Duration::from_secs(10));
    assert!(c.ignored.is_empty());
}

/// Spark's JSON `startingOffsets`: an offset per partition, -2 the log's start, -1 its end;
/// a partition it does not name has no start (the run stops on it, as Spark's does).
#[test]
fn starting_offsets_in_sparks_json_form() {
    let text = SEED.replace(
        "startingOffsets = latest",
        r#"startingOffsets = {"product_view":{"0":23,"1":-2,"2":-1}}"#,
    );
    let c = Config::parse(&text, &no_env()).expect("JSON startingOffsets");
    let s = &c.kafka.starting_offsets;
    assert_eq!(s.start("product_view", 0, (5, 90)), Some(23));
    assert_eq!(s.start("product_view", 1, (5, 90)), Some(5));
    assert_eq!(s.start("product_view", 2, (5, 90)), Some(90));
    assert_eq!(s.start("product_view", 3, (5, 90)), None);
    assert_eq!(s.start("other", 0, (5, 90)), None);
    assert_eq!(StartingOffsets::Earliest.start("t", 7, (5, 90)), Some(5));
    assert_eq!(StartingOffsets::Latest.start("t", 7, (5, 90)), Some(90));
}

#[test]
fn both_modes_default_to_batches_of_ten_thousand() {
    let from_file =
        Config::parse(&format!("{SEED}[pipeline]\nmode = batch\n"), &no_env()).expect("batch mode");
    assert_eq!(from_file.pipeline.batch_max_messages, 10_000);
    let from_env = Config::parse(SEED, &env(&[("MODE", "batch")])).expect("MODE=batch");
    assert_eq!(from_env.pipeline.batch_max_messages, 10_000);
    let partition = Config::parse(SEED, &env(&[("MODE", "partition")])).expect("partition");
    assert_eq!(partition.pipeline.batch_max_messages, 10_000);
}

#[test]
fn offset_out_of_range_policy_defaults_to_fail_and_rejects_other_words() {
    let c = Config::parse(SEED, &no_env()).expect("seed");
    assert_eq!(c.pipeline.on_offset_out_of_range, OutOfRange::Fail);
    for (word, want) in [
        ("fail", OutOfRange::Fail),
        ("earliest", OutOfRange::Earliest),
        ("Latest", OutOfRange::Latest),
    ] {
        let text = format!("{SEED}\n[pipeline]\non_offset_out_of_range = {word}\n");
        let c = Config::parse(&text, &no_env()).expect(word);
        assert_eq!(c.pipeline.on_offset_out_of_range, want, "{word}");
    }
    let text = format!("{SEED}\n[pipeline]\non_offset_out_of_range = skip\n");
    config_error(
        &text,
        &no_env(),
        &[
            "[pipeline]",
            "on_offset_out_of_range",
            "line",
            "fail, earliest or latest",
        ],
    );
}

#[test]
fn all_optional_sections() {
    let text = format!(
        "{SEED}
[postgres]
sslmode = require
[pipeline]
mode = batch
batch_max_messages = 500
batch_max_bytes = 2MiB
buffer_max_bytes = 1G
batch_max_latency_ms = 250
batch_linger_ms = 0
trigger_interval_ms = 30_000
shutdown_timeout_ms = 10000
consumer_group = etl
pg_pool_size = 8
retry_budget_s = 0
transform_threads = 3
[geoip]
path = a/city.mmdb, b/v6.mmdb,
[catalog]
products = p1.csv, p2.csv
locations = l.csv
[data_paths]
base_path = /data
prod_csv_pattern = products*.csv
location_csv_pattern = loc?.csv
[metrics]
listen = 0.0.0.0:0
progress_interval_s = 0
"
    );
    let c = Config::parse(&text, &no_env()).expect("full config");
    assert_eq!(c.postgres.sslmode, "require");
    let p = &c.pipeline;
    assert_eq!(p.mode, Mode::Batch);
    assert_eq!(p.batch_max_messages, 500);
    assert_eq!(p.batch_max_bytes, 2 * 1024 * 1024);
    assert_eq!(p.buffer_max_bytes, 1 << 30);
    assert_eq!(p.batch_max_latency, Duration::from_millis(250));
    assert_eq!(p.batch_linger, Duration::ZERO);
    assert_eq!(p.trigger_interval, Duration::from_secs(30));
    assert_eq!(p.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(p.pg_pool_size, 8);
    assert_eq!(p.retry_budget, Duration::ZERO);
    assert_eq!(p.transform_threads, 3);
    assert_eq!(c.kafka.group_id, "etl");
    assert_eq!(c.kafka.client_id, "YourStreamingApp");
    assert_eq!(
        c.geoip_paths,
        vec![PathBuf::from("a/city.mmdb"), PathBuf::from("b/v6.mmdb")]
    );
    assert_eq!(
        c.catalog.products,
        vec![
            PathBuf::from("p1.csv"),
            PathBuf::from("p2.csv"),
            PathBuf::from("/data/products*.csv")
        ]
    );
    assert_eq!(
        c.catalog.locations,
        vec![PathBuf::from("l.csv"), PathBuf::from("/data/loc?.csv")]
    );
    assert_eq!(c.metrics_listen, "0.0.0.0:0");
    assert_eq!(c.progress_interval, Duration::ZERO);
}

#[test]
fn docker_spark_and_ignored_spark_keys() {
    let text = SEED.replace(
        "[local_spark]\napp_name = YourStreamingApp          ; used as the client id and default consumer group\n",
        "[docker_spark]\nspark.app.name = DockerApp\nspark.master = spark://master:7077\nspark.executor.memory = 2g\n",
    );
    let text = format!("{text}failOnDataLoss = false\n");
    let c = Config::parse(&text, &no_env()).expect("docker_spark");
    assert_eq!(c.app_name, "DockerApp");
    assert_eq!(
        c.ignored,
        vec![
            "[docker_spark] spark.master",
            "[docker_spark] spark.executor.memory",
            "[remote_kafka] failOnDataLoss"
        ]
    );
    // [local_spark] app_name wins over [docker_spark]
    let both = format!("{SEED}\n[docker_spark]\napp_name = Other\n");
    assert_eq!(
        Config::parse(&both, &no_env()).expect("both").app_name,
        "YourStreamingApp"
    );
}

#[test]
fn comments_quotes_and_syntax_variants() {
    let text = "\u{feff}# leading comment\r\n[LOCAL_SPARK]   ; inline after header\r\n  App_Name: spaced ; comment\r\n\
        [docker_postgres]\nhost_out = h\ndatabase = d\nuser = u\npassword = \"a ;b #c\"\n\
        port_out = 6543 # comment\n[remote_kafka]\nkafka.bootstrap.servers = b:1\n\
        kafka.client.id = cid\nkafka.group.id = gid\nsubscribe = t1, t2 ,\\\n t3\n";
    let c = Config::parse(text, &no_env()).expect("variants");
    assert_eq!(c.app_name, "spaced");
    assert_eq!(c.postgres.password.0, "a ;b #c");
    assert_eq!(c.postgres.port, 6543);
    assert_eq!(c.kafka.topics, vec!["t1", "t2", "t3"]);
    assert_eq!(c.kafka.client_id, "cid");
    assert_eq!(c.kafka.group_id, "gid");
    assert_eq!(prop(&c, "group.id"), None);
    assert_eq!(prop(&c, "client.id"), None);
    // lines after a continuation keep their numbers
    let after = format!("{text}startingOffsets = soon\n");
    config_error(
        &after,
        &no_env(),
        &["[remote_kafka]", "startingOffsets", "line 16"],
    );
}

#[test]
fn enrich_switch_defaults_on_and_parses_booleans() {
    let on = Config::parse(SEED, &no_env()).expect("seed parses");
    assert!(on.pipeline.enrich);
    let off = Config::parse(&format!("{SEED}\n[pipeline]\nenrich = off\n"), &no_env()).unwrap();
    assert!(!off.pipeline.enrich);
    config_error(
        &format!("{SEED}\n[pipeline]\nenrich = maybe\n"),
        &no_env(),
        &["[pipeline]", "enrich", "line"],
    );
}

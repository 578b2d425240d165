//! Unit tests of the configuration: seed and committed files, JAAS, environment overrides,
//! every kind of bad config, and that no secret leaks into errors or Debug.

use std::path::PathBuf;
use std::time::Duration;

use super::jaas;
use super::*;

const PASSWORD: &str = "s3cr3t-Pa55";

/// SPEC 3's seed example, verbatim (inline comments included).
const SEED: &str = r#"[local_spark]
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
fn secret_seed() -> String {
    SEED.replace("your_password", PASSWORD)
        .replace("password=\"p\"", &format!("password=\"{PASSWORD}\""))
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn prop<'a>(c: &'a Config, name: &str) -> Option<&'a str> {
    c.kafka
        .properties
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.0.as_str())
}

/// Parse and expect a config error; check it names every `needle` and hides the password.
fn config_error(text: &str, env: &[(String, String)], needles: &[&str]) -> String {
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
    assert_eq!(p.batch_max_messages, 5_000);
    assert_eq!(p.batch_max_bytes, 16 * 1024 * 1024);
    assert_eq!(p.batch_max_latency, Duration::from_millis(100));
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

#[test]
fn batch_mode_micro_batches_default_to_twice_a_partition_batch() {
    let from_file =
        Config::parse(&format!("{SEED}[pipeline]\nmode = batch\n"), &no_env()).expect("batch mode");
    assert_eq!(from_file.pipeline.batch_max_messages, 10_000);
    let from_env = Config::parse(SEED, &env(&[("MODE", "batch")])).expect("MODE=batch");
    assert_eq!(from_env.pipeline.batch_max_messages, 10_000);
    let partition = Config::parse(SEED, &env(&[("MODE", "partition")])).expect("partition");
    assert_eq!(partition.pipeline.batch_max_messages, 5_000);
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
batch_max_latency_ms = 250
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
    assert_eq!(p.batch_max_latency, Duration::from_millis(250));
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
fn jaas_plain_and_scram() {
    let scram = SEED
        .replace(
            "kafka.sasl.mechanism = PLAIN",
            "kafka.sasl.mechanism = SCRAM-SHA-512",
        )
        .replace(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#,
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username='alice' password='pa"ss word' tokenauth=false;"#,
        );
    let c = Config::parse(&scram, &no_env()).expect("scram");
    assert_eq!(prop(&c, "sasl.mechanism"), Some("SCRAM-SHA-512"));
    assert_eq!(prop(&c, "sasl.username"), Some("alice"));
    assert_eq!(prop(&c, "sasl.password"), Some("pa\"ss word"));

    // Plain without a mechanism gets PLAIN; escaped quote, no trailing `;`
    let plain = SEED.replace("kafka.sasl.mechanism = PLAIN\n", "").replace(
        r#"username="u" password="p";"#,
        r#"username="bob" password="a\"b""#,
    );
    let c = Config::parse(&plain, &no_env()).expect("plain");
    assert_eq!(prop(&c, "sasl.mechanism"), Some("PLAIN"));
    assert_eq!(prop(&c, "sasl.username"), Some("bob"));
    assert_eq!(prop(&c, "sasl.password"), Some("a\"b"));

    // Scram without a mechanism, and a mismatched mechanism, are errors
    let no_mech = scram.replace("kafka.sasl.mechanism = SCRAM-SHA-512\n", "");
    config_error(
        &no_mech,
        &no_env(),
        &["[remote_kafka]", "kafka.sasl.jaas.config", "line 16"],
    );
    let mismatch = SEED.replace("= PLAIN", "= SCRAM-SHA-256");
    config_error(
        &mismatch,
        &no_env(),
        &["[remote_kafka]", "kafka.sasl.mechanism", "line 16"],
    );
}

#[test]
fn jaas_parser_units() {
    let j = jaas::parse("x.PlainLoginModule required\n  username=\"u\"\n  password=\"p\" ;")
        .map_err(|e| e.to_string())
        .expect("multi-line");
    assert_eq!((j.username.as_str(), j.password.as_str()), ("u", "p"));
    assert_eq!(j.module, jaas::LoginModule::Plain);
    for bad in [
        "",
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        "x.PlainLoginModule username=\"u\" password=\"p\";",
        "x.PlainLoginModule required username=\"u\";",
        "x.PlainLoginModule required username=\"u\" password=\"p",
        "x.PlainLoginModule required username=\"u\" password=\"p\"; y.ScramLoginModule required;",
        "x.PlainLoginModule required username \"u\" password=\"p\";",
    ] {
        assert!(jaas::parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn docker_switch() {
    let c = Config::parse(SEED, &env(&[("STREAMER_IN_DOCKER", "1")])).expect("in docker");
    assert_eq!((c.postgres.host.as_str(), c.postgres.port), ("db", 5432));
    let c = Config::parse(SEED, &env(&[("STREAMER_IN_DOCKER", "0")])).expect("outside");
    assert_eq!(
        (c.postgres.host.as_str(), c.postgres.port),
        ("localhost", 5433)
    );
    config_error(
        SEED,
        &env(&[("STREAMER_IN_DOCKER", "maybe")]),
        &["STREAMER_IN_DOCKER"],
    );
    // only the pair in use is required
    let no_out = SEED.replace(
        "host_out = localhost                 ; host from outside\n",
        "",
    );
    assert!(Config::parse(&no_out, &env(&[("STREAMER_IN_DOCKER", "1")])).is_ok());
    config_error(
        &no_out,
        &no_env(),
        &["[docker_postgres]", "host_out", "line 4"],
    );
}

#[test]
fn mode_env_overrides_pipeline_mode() {
    let text = format!("{SEED}[pipeline]\nmode = partition\n");
    let c = Config::parse(&text, &env(&[("MODE", "batch")])).expect("MODE=batch");
    assert_eq!(c.pipeline.mode, Mode::Batch);
    let c = Config::parse(
        &text,
        &env(&[("MODE", "partition"), ("STREAMER__PIPELINE__MODE", "batch")]),
    )
    .expect("MODE wins");
    assert_eq!(c.pipeline.mode, Mode::Partition);
    let c = Config::parse(SEED, &env(&[("MODE", "Batch")])).expect("no [pipeline]");
    assert_eq!(c.pipeline.mode, Mode::Batch);
    config_error(
        SEED,
        &env(&[("MODE", "stream")]),
        &["MODE", "mode", "stream"],
    );
}

#[test]
fn streamer_env_overrides() {
    let e = env(&[
        ("STREAMER__DOCKER_POSTGRES__PASSWORD", PASSWORD),
        ("STREAMER__REMOTE_KAFKA__KAFKA.BOOTSTRAP.SERVERS", "b1:9092"),
        ("STREAMER__REMOTE_KAFKA__KAFKA_SECURITY_PROTOCOL", "SSL"),
        ("STREAMER__REMOTE_KAFKA__KAFKA_SSL_CA_LOCATION", "/ca.pem"),
        ("STREAMER__Remote_Kafka__StartingOffsets", "earliest"),
        ("STREAMER__PIPELINE__BATCH_MAX_MESSAGES", "7"),
        ("STREAMER__METRICS__LISTEN", "127.0.0.1:9999"),
        ("STREAMER_IN_DOCKER", ""),
        ("UNRELATED", "x"),
    ]);
    let c = Config::parse(SEED, &e).expect("overrides");
    assert_eq!(c.postgres.password.0, PASSWORD);
    assert_eq!(prop(&c, "bootstrap.servers"), Some("b1:9092"));
    assert_eq!(prop(&c, "security.protocol"), Some("SSL"));
    assert_eq!(prop(&c, "ssl.ca.location"), Some("/ca.pem"));
    assert_eq!(c.kafka.starting_offsets, StartingOffsets::Earliest);
    assert_eq!(c.pipeline.batch_max_messages, 7);
    assert_eq!(c.metrics_listen, "127.0.0.1:9999");

    // the JAAS value from the environment, with `_` for `.`
    let jaas_env = env(&[(
        "STREAMER__REMOTE_KAFKA__KAFKA_SASL_JAAS_CONFIG",
        "x.PlainLoginModule required username=\"env\" password=\"s3cr3t-Pa55\";",
    )]);
    let c = Config::parse(SEED, &jaas_env).expect("jaas from env");
    assert_eq!(prop(&c, "sasl.username"), Some("env"));
    assert_eq!(prop(&c, "sasl.password"), Some(PASSWORD));

    // a missing required key can come from the environment alone
    let no_db = SEED.replace("database = your_database\n", "");
    config_error(
        &no_db,
        &no_env(),
        &["[docker_postgres]", "database", "line 4"],
    );
    let c = Config::parse(
        &no_db,
        &env(&[("STREAMER__DOCKER_POSTGRES__DATABASE", "d")]),
    )
    .expect("database from env");
    assert_eq!(c.postgres.database, "d");

    // errors about environment values name the variable
    config_error(
        SEED,
        &env(&[("STREAMER__PIPELINE__PG_POOL_SIZE", "many")]),
        &[
            "[pipeline]",
            "pg_pool_size",
            "from environment STREAMER__PIPELINE__PG_POOL_SIZE",
        ],
    );
    config_error(
        SEED,
        &env(&[("STREAMER__PIPELINE__NO_SUCH_KEY", "1")]),
        &[
            "[pipeline]",
            "no_such_key",
            "STREAMER__PIPELINE__NO_SUCH_KEY",
            "unknown key",
        ],
    );
    config_error(
        SEED,
        &env(&[("STREAMER__NOPE__KEY", "1")]),
        &["[nope]", "STREAMER__NOPE__KEY", "unknown section"],
    );
    config_error(
        SEED,
        &env(&[("STREAMER__PIPELINE", "1")]),
        &["STREAMER__PIPELINE"],
    );
    config_error(
        SEED,
        &env(&[
            ("STREAMER__REMOTE_KAFKA__KAFKA.BOOTSTRAP.SERVERS", "a:1"),
            ("STREAMER__REMOTE_KAFKA__KAFKA_BOOTSTRAP_SERVERS", "b:1"),
        ]),
        &["kafka.bootstrap.servers", "set twice"],
    );
    // a secret from the environment never shows in an error about it
    config_error(
        SEED,
        &env(&[(
            "STREAMER__REMOTE_KAFKA__KAFKA_SASL_JAAS_CONFIG",
            "x.PlainLoginModule required username=\"u\" pass=\"s3cr3t-Pa55\";",
        )]),
        &[
            "[remote_kafka]",
            "kafka.sasl.jaas.config",
            "from environment STREAMER__REMOTE_KAFKA__KAFKA_SASL_JAAS_CONFIG",
        ],
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
fn unknown_section() {
    let text = format!("{SEED}\n[sparkle]\nfoo = 1\n");
    config_error(
        &text,
        &no_env(),
        &["[sparkle]", "line 21", "unknown section"],
    );
}

#[test]
fn unknown_key() {
    let text = SEED.replace("port_in = 5432", "port_inn = 5432");
    config_error(
        &text,
        &no_env(),
        &["[docker_postgres]", "port_inn", "line 10", "unknown key"],
    );
}

#[test]
fn bad_numbers() {
    let text = SEED.replace("port_out = 5433", "port_out = 54x");
    config_error(
        &text,
        &no_env(),
        &["[docker_postgres]", "port_out", "line 11", "54x"],
    );
    let text = SEED.replace("port_in = 5432", "port_in = 70000");
    config_error(
        &text,
        &no_env(),
        &["[docker_postgres]", "port_in", "line 10"],
    );
    for (key, value) in [
        ("batch_max_messages", "0"),
        ("batch_max_messages", "-3"),
        ("batch_max_bytes", "16 parsecs"),
        ("batch_max_bytes", "0"),
        ("shutdown_timeout_ms", "1.5"),
        ("pg_pool_size", ""),
        ("retry_budget_s", "5m"),
    ] {
        let text = format!("{SEED}[pipeline]\n{key} = {value}\n");
        config_error(&text, &no_env(), &["[pipeline]", key, "line 21"]);
    }
    let text = format!("{SEED}[metrics]\nlisten = 9187\n");
    config_error(&text, &no_env(), &["[metrics]", "listen", "line 21"]);
}

#[test]
fn bad_choices() {
    let text = format!("{SEED}[pipeline]\nmode = streaming\n");
    config_error(
        &text,
        &no_env(),
        &["[pipeline]", "mode", "line 21", "streaming"],
    );
    let text = SEED.replace(
        "startingOffsets = latest",
        "startingOffsets = {\"t\":{\"0\":5}}",
    );
    config_error(
        &text,
        &no_env(),
        &["[remote_kafka]", "startingOffsets", "line 19"],
    );
    let text = format!("{SEED}[postgres]\nsslmode = allow\n");
    config_error(&text, &no_env(), &["[postgres]", "sslmode", "line 21"]);
    let text = SEED.replace("subscribe = product_view", "subscribe = product view");
    config_error(
        &text,
        &no_env(),
        &["[remote_kafka]", "subscribe", "line 18"],
    );
    let text = SEED.replace("subscribe = product_view", "subscribe = ,");
    config_error(
        &text,
        &no_env(),
        &["[remote_kafka]", "subscribe", "line 18"],
    );
    let text = format!("{SEED}kafka.enable.auto.commit = true\n");
    config_error(
        &text,
        &no_env(),
        &["[remote_kafka]", "kafka.enable.auto.commit", "line 20"],
    );
}

#[test]
fn missing_required() {
    let text = SEED.replace("user = your_username\n", "");
    config_error(
        &text,
        &no_env(),
        &[
            "[docker_postgres]",
            "user",
            "line 4",
            "required key missing",
        ],
    );
    let text = SEED.replace("subscribe = product_view\n", "");
    config_error(
        &text,
        &no_env(),
        &["[remote_kafka]", "subscribe", "line 13"],
    );
    let text = SEED.replace("kafka.bootstrap.servers", "kafka.bootstrap.serverz");
    config_error(
        &text,
        &no_env(),
        &["[remote_kafka]", "kafka.bootstrap.servers", "line 13"],
    );
    let text = SEED.replace("app_name = YourStreamingApp", "app_name =");
    config_error(&text, &no_env(), &["[local_spark]", "app_name", "line 2"]);
    let text = SEED.replace(
        "[local_spark]\napp_name = YourStreamingApp          ; used as the client id and default consumer group\n",
        "",
    );
    config_error(
        &text,
        &no_env(),
        &["[local_spark]", "app_name", "no [local_spark]"],
    );
    let text = SEED
        .split("[remote_kafka]")
        .next()
        .unwrap_or_default()
        .to_string();
    config_error(&text, &no_env(), &["[remote_kafka]", "no [remote_kafka]"]);
}

#[test]
fn bad_jaas() {
    let bad = secret_seed().replace("username=\"u\"", "user=\"u\"");
    config_error(
        &bad,
        &no_env(),
        &[
            "[remote_kafka]",
            "kafka.sasl.jaas.config",
            "line 17",
            "no username",
        ],
    );
    let bad = secret_seed().replace(" required ", " ");
    config_error(
        &bad,
        &no_env(),
        &["[remote_kafka]", "kafka.sasl.jaas.config", "line 17"],
    );
    let bad = secret_seed().replace("password=\"s3cr3t", "password=s3cr3t");
    let msg = config_error(
        &bad,
        &no_env(),
        &["[remote_kafka]", "kafka.sasl.jaas.config", "line 17"],
    );
    assert!(msg.contains("JAAS"));
    let bad = secret_seed().replace("Pa55\";", "Pa55;");
    config_error(
        &bad,
        &no_env(),
        &[
            "[remote_kafka]",
            "kafka.sasl.jaas.config",
            "line 17",
            "unterminated",
        ],
    );
    let both = format!("{}kafka.sasl.password = {PASSWORD}\n", secret_seed());
    config_error(
        &both,
        &no_env(),
        &[
            "[remote_kafka]",
            "kafka.sasl.password",
            "line 20",
            "conflicts",
        ],
    );
}

#[test]
fn syntax_errors() {
    let text = secret_seed().replace("port_in = 5432", "port_in 5432");
    config_error(
        &text,
        &no_env(),
        &["syntax error", "line 10", "[docker_postgres]", "password"],
    );
    let text = secret_seed().replace("[remote_kafka]", "[remote_kafka");
    config_error(&text, &no_env(), &["syntax error", "line 13"]);
    let text = format!("app_name = x\n{}", secret_seed());
    config_error(
        &text,
        &no_env(),
        &["app_name", "line 1", "outside any section"],
    );
    let text = format!("{}database = again\n", secret_seed());
    config_error(&text, &no_env(), &["[remote_kafka]", "database", "line 20"]);
    let text = secret_seed().replace("port_out = 5433", "port_out = 5433\nuser = twice");
    config_error(
        &text,
        &no_env(),
        &[
            "[docker_postgres]",
            "user",
            "line 12",
            "duplicate key",
            "line 8",
        ],
    );
    let text = format!("{}[Docker_Postgres]\n", secret_seed());
    config_error(
        &text,
        &no_env(),
        &["[docker_postgres]", "line 20", "duplicate section"],
    );
    // a secret on a line the scanner cannot read is not echoed
    let text = secret_seed().replace(
        "password = s3cr3t-Pa55",
        "password = x\ns3cr3t-Pa55 continues here",
    );
    config_error(&text, &no_env(), &["syntax error", "line 10"]);
}

#[test]
fn a_carriage_return_inside_a_continued_line_is_a_syntax_error() {
    let text = secret_seed().replace("database = your_database", "database = your_\\\ndata\rbase");
    config_error(
        &text,
        &no_env(),
        &["syntax error", "line 8", "carriage return"],
    );
    // CRLF line ends, continuations included, are fine
    let text = secret_seed()
        .replace("database = your_database", "database = your_\\\ndatabase")
        .replace('\n', "\r\n");
    let c = Config::parse(&text, &no_env()).expect("CRLF");
    assert_eq!(c.postgres.database, "your_database");
}

#[test]
fn secrets_never_show() {
    let text = format!(
        "{}kafka.ssl.key.password = {PASSWORD}\nkafka.sasl.oauthbearer.client.secret = {PASSWORD}\n",
        secret_seed()
    );
    let c = Config::parse(&text, &no_env()).expect("secret config");
    assert_eq!(c.postgres.password.expose(), PASSWORD);
    assert_eq!(prop(&c, "sasl.password"), Some(PASSWORD));
    assert_eq!(prop(&c, "ssl.key.password"), Some(PASSWORD));
    for shown in [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{:?}", c.postgres),
        format!("{:?}", c.kafka),
        format!("{}", c.postgres.password),
        format!("{:?}", c.postgres.pg_config()),
    ] {
        assert!(!shown.contains("Pa55"), "leaks the password: {shown}");
    }
    // bad values of secret keys are not echoed either
    let typo = secret_seed().replace("password = ", "passwd = ");
    config_error(&typo, &no_env(), &["[docker_postgres]", "passwd", "line 9"]);
    assert!(is_secret_key("kafka.sasl.jaas.config"));
    assert!(is_secret_key("ssl.keystore.password"));
    assert!(!is_secret_key("bootstrap.servers"));
}

#[test]
fn pg_config_mapping() {
    use ::postgres::config::{Host, SslMode};
    let text = format!("{}[postgres]\nsslmode = prefer\n", secret_seed());
    let c = Config::parse(&text, &no_env()).expect("pg");
    let pg = c.postgres.pg_config();
    assert_eq!(pg.get_hosts(), &[Host::Tcp("localhost".to_string())]);
    assert_eq!(pg.get_ports(), &[5433]);
    assert_eq!(pg.get_dbname(), Some("your_database"));
    assert_eq!(pg.get_user(), Some("your_username"));
    assert_eq!(pg.get_password(), Some(PASSWORD.as_bytes()));
    assert_eq!(pg.get_application_name(), Some("YourStreamingApp"));
    assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(10)));
    assert_eq!(pg.get_ssl_mode(), SslMode::Prefer);

    let c = Config::parse(include_str!("../../config.ini"), &no_env()).expect("ini");
    let pg = c.postgres.pg_config();
    assert_eq!(pg.get_password(), None);
    assert_eq!(pg.get_ssl_mode(), SslMode::Disable);
    let mut p = c.postgres.clone();
    p.sslmode = "require".into();
    p.application_name.clear();
    let pg = p.pg_config();
    assert_eq!(pg.get_ssl_mode(), SslMode::Require);
    assert_eq!(pg.get_application_name(), Some("streamer"));
}

#[test]
fn verifying_sslmodes_need_tls_and_take_a_root_certificate_file() {
    for mode in ["verify-ca", "verify-full", "VERIFY-FULL"] {
        let text = format!("{SEED}[postgres]\nsslmode = {mode}\nsslrootcert = /etc/ca.pem\n");
        let c = Config::parse(&text, &no_env()).expect("verifying sslmode");
        assert_eq!(c.postgres.sslmode, mode.to_ascii_lowercase());
        assert_eq!(
            c.postgres.sslrootcert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(
            c.postgres.pg_config().get_ssl_mode(),
            ::postgres::config::SslMode::Require
        );
    }
    let text = format!("{SEED}[postgres]\nsslmode = verify-ca\nsslrootcert =\n");
    config_error(&text, &no_env(), &["[postgres]", "sslrootcert", "line 22"]);
    let c = Config::parse(include_str!("../../config.ini"), &no_env()).expect("ini");
    assert_eq!(c.postgres.sslrootcert, None);
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

#[test]
fn postgres_keepalives_and_the_loaders_statement_timeout() {
    let c = Config::parse(&secret_seed(), &no_env()).expect("seed");
    assert_eq!(c.postgres.statement_timeout_ms, 60_000);
    let pg = c.postgres.pg_config();
    assert!(pg.get_keepalives());
    assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(10));
    assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(5)));
    assert_eq!(pg.get_keepalives_retries(), Some(3));
    assert_eq!(
        pg.get_options(),
        None,
        "no statement timeout outside the loaders"
    );
    let loader = c.postgres.loader_pg_config();
    assert_eq!(loader.get_options(), Some("-c statement_timeout=60000"));

    let text = format!("{}[postgres]\nstatement_timeout_ms = 0\n", secret_seed());
    let c = Config::parse(&text, &no_env()).expect("0");
    assert_eq!(c.postgres.loader_pg_config().get_options(), None);
    let text = format!("{}[postgres]\nstatement_timeout_ms = soon\n", secret_seed());
    let e = Config::parse(&text, &no_env()).unwrap_err().to_string();
    assert!(e.contains("statement_timeout_ms"), "{e}");
}

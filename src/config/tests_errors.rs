//! Unit tests of bad configs: unknown sections and keys, bad numbers and choices, missing
//! keys, syntax errors; each error names section, key and line, and no secret leaks.

use super::tests::*;
use super::*;

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
        ("buffer_max_bytes", "lots"),
        ("buffer_max_bytes", "0"),
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
    // Spark's JSON form, with a partition that is no number, an offset below -2, or no
    // JSON at all
    for (bad, why) in [
        (
            "{\"t\":{\"x\":5}}",
            "\"x\" of \"t\" is not a partition number",
        ),
        ("{\"t\":{\"0\":-3}}", "-3 for t/0"),
        ("{\"t\":[5]}", "not Spark's JSON form"),
    ] {
        let text = SEED.replace(
            "startingOffsets = latest",
            &format!("startingOffsets = {bad}"),
        );
        config_error(
            &text,
            &no_env(),
            &["[remote_kafka]", "startingOffsets", "line 19", why],
        );
    }
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

/// A Spark job's Java TLS stores: the truststore is named with what librdkafka reads
/// instead (never its password), a JKS keystore likewise; a PKCS#12 keystore's type is
/// what librdkafka reads anyway and is not passed on.
#[test]
fn java_tls_stores_say_what_librdkafka_reads() {
    for (key, value) in [
        ("ssl.truststore.location", "/etc/kafka/truststore.jks"),
        ("ssl.truststore.password", "s3cret-store"),
        ("ssl.truststore.type", "JKS"),
    ] {
        let text = format!("{SEED}kafka.{key} = {value}\n");
        let e = config_error(
            &text,
            &no_env(),
            &[
                "[remote_kafka]",
                &format!("kafka.{key}"),
                "kafka.ssl.ca.location",
            ],
        );
        assert!(!e.contains("s3cret-store"), "{e}");
    }
    let text = format!("{SEED}kafka.ssl.keystore.type = JKS\n");
    config_error(
        &text,
        &no_env(),
        &[
            "kafka.ssl.keystore.type",
            "PKCS#12",
            "kafka.ssl.key.location",
        ],
    );
    let text =
        format!("{SEED}kafka.ssl.keystore.type = PKCS12\nkafka.ssl.keystore.location = /k.p12\n");
    let c = Config::parse(&text, &no_env()).expect("a PKCS#12 keystore");
    assert_eq!(prop(&c, "ssl.keystore.type"), None);
    assert_eq!(prop(&c, "ssl.keystore.location"), Some("/k.p12"));
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

/// A Spark job's Java consumer settings: renamed where librdkafka spells them otherwise,
/// reported as ignored where it has none, assignor class names translated.
#[test]
fn java_consumer_settings_are_renamed_ignored_or_translated() {
    let text = format!(
        "{SEED}kafka.fetch.max.wait.ms = 100\nkafka.max.poll.records = 500\n\
         kafka.partition.assignment.strategy = \
         org.apache.kafka.clients.consumer.CooperativeStickyAssignor\n"
    );
    let c = Config::parse(&text, &no_env()).expect("Java settings");
    assert_eq!(prop(&c, "fetch.wait.max.ms"), Some("100"));
    assert_eq!(prop(&c, "fetch.max.wait.ms"), None);
    assert_eq!(prop(&c, "max.poll.records"), None);
    assert_eq!(
        prop(&c, "partition.assignment.strategy"),
        Some("cooperative-sticky")
    );
    assert!(
        c.ignored
            .contains(&"[remote_kafka] kafka.max.poll.records".to_string()),
        "{:?}",
        c.ignored
    );
    let text = format!(
        "{SEED}kafka.partition.assignment.strategy = \
         org.apache.kafka.clients.consumer.StickyAssignor\n"
    );
    config_error(
        &text,
        &no_env(),
        &[
            "kafka.partition.assignment.strategy",
            "StickyAssignor",
            "cooperative-sticky",
        ],
    );
}

//! Unit tests of the environment: `STREAMER_IN_DOCKER`, `MODE` and `STREAMER__SECTION__KEY`
//! overrides.

use super::tests::*;
use super::*;

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

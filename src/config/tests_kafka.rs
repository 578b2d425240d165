//! Unit tests of the JAAS value: PlainLoginModule and ScramLoginModule mapped to SASL
//! properties, the JAAS parser itself, and every bad JAAS config.

use super::tests::*;
use super::*;

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

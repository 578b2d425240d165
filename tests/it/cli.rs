//! The binary's command line: bad configs exit 2 with a message naming section, key and
//! line, and no password ever reaches the output. `check` reaches real PostgreSQL.

use std::time::Duration;

use crate::harness::{run_to_exit, run_to_exit_env, TempDir, TestDb};

const SEED: &str = "[local_spark]\napp_name = cli_test\n\n[docker_postgres]\nhost_in = db\n\
host_out = 127.0.0.1\ndatabase = DBNAME\nuser = postgres\npassword = Hunter2-s3cr3t\n\
port_in = 5432\nport_out = 5432\n\n[remote_kafka]\nkafka.bootstrap.servers = 127.0.0.1:1\n\
subscribe = product_view\nstartingOffsets = earliest\n";

const SECRET: &str = "Hunter2-s3cr3t";

fn write(dir: &TempDir, text: &str) -> String {
    let p = dir.join("config.ini");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn bad_configs_exit_2_naming_section_key_and_line() {
    let dir = TempDir::new("cli");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{SEED}\n[pipeline]\nbatch_max_messages = lots\n"),
            "[pipeline]",
            "batch_max_messages",
        ),
        (
            format!("{SEED}\n[pipeline]\nmode = sideways\n"),
            "[pipeline]",
            "mode",
        ),
        (format!("{SEED}\n[nonsense]\nx = 1\n"), "[nonsense]", ""),
        (
            SEED.replace("subscribe = product_view\n", ""),
            "[remote_kafka]",
            "subscribe",
        ),
        (
            SEED.replace("user = postgres", "usr = postgres"),
            "[docker_postgres]",
            "usr",
        ),
    ];
    for (text, section, key) in cases {
        let cfg = write(&dir, &text);
        let out = run_to_exit(&["run", &cfg], Duration::from_secs(30));
        out.assert_code(2);
        assert!(
            out.output.contains(section),
            "message names {section}: {}",
            out.output
        );
        assert!(
            out.output.contains(key),
            "message names {key}: {}",
            out.output
        );
        assert!(
            !out.output.contains(SECRET),
            "password leaked: {}",
            out.output
        );
    }
    // A line number is given for keys read from the file.
    let cfg = write(
        &dir,
        &format!("{SEED}\n[pipeline]\nbatch_max_messages = lots\n"),
    );
    let line = SEED.lines().count() + 3;
    let out = run_to_exit(&["run", &cfg], Duration::from_secs(30));
    assert!(
        out.output.contains(&format!("line {line}")),
        "line {line} named: {}",
        out.output
    );
    // A missing file and an unknown command are exit 2 as well.
    run_to_exit(&["run", "/nonexistent/config.ini"], Duration::from_secs(30)).assert_code(2);
    run_to_exit(&["frobnicate", "x"], Duration::from_secs(30)).assert_code(2);
}

/// The binary's command line: the library's commands and the generator's `produce` under
/// one `--help`; a config alone is the main job.
#[test]
fn help_lists_every_command_and_hides_ack_log() {
    let out = run_to_exit(&["--help"], Duration::from_secs(30));
    out.assert_code(0);
    for command in [
        "run", "warmup", "check", "report", "status", "reset", "produce",
    ] {
        assert!(
            out.output
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "--help lists {command}: {}",
            out.output
        );
    }
    assert!(out.output.contains("[CONFIG]"), "{}", out.output);
    let out = run_to_exit(&["produce", "--help"], Duration::from_secs(30));
    out.assert_code(0);
    for flag in [
        "--events",
        "--duration",
        "--rate",
        "--seed",
        "--dup-rate",
        "--bad-rate",
        "--start",
        "--span",
        "--file",
        "--topic",
        "--keys",
    ] {
        assert!(
            out.output.contains(flag),
            "produce --help: {flag}: {}",
            out.output
        );
    }
    assert!(!out.output.contains("--ack-log"), "{}", out.output);
    // bad produce flags are configuration errors (exit 2), the config read first
    let dir = TempDir::new("cli-produce");
    let cfg = write(&dir, SEED);
    let out = run_to_exit(&["produce", &cfg, "--events", "0"], Duration::from_secs(30));
    out.assert_code(2);
    assert!(out.output.contains("--events"), "{}", out.output);
    run_to_exit(&["produce", &cfg], Duration::from_secs(30)).assert_code(2);
    run_to_exit(
        &["produce", "/nonexistent/config.ini", "--events", "1"],
        Duration::from_secs(30),
    )
    .assert_code(2);
}

#[test]
fn committed_config_ini_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.ini");
    let text = std::fs::read_to_string(path).unwrap();
    streamer::config::Config::parse(&text, &[]).expect("config.ini parses");
}

#[test]
fn check_reports_without_leaking_the_password() {
    let db = TestDb::create();
    let dir = TempDir::new("cli-check");
    let cfg = write(&dir, &SEED.replace("DBNAME", db.name()));
    // PostgreSQL is reachable (trust auth ignores the password); Kafka at port 1 is not.
    let out = run_to_exit_env(
        &["check", &cfg],
        &[("STREAMER__DOCKER_POSTGRES__PASSWORD", "Env-0verride-pw")],
        Duration::from_secs(60),
    );
    out.assert_code(1);
    assert!(out.output.contains("postgres: ok"), "{}", out.output);
    assert!(out.output.contains("kafka: FAILED"), "{}", out.output);
    assert!(
        !out.output.contains(SECRET) && !out.output.contains("Env-0verride-pw"),
        "{}",
        out.output
    );
}

/// Keys librdkafka rejects (a typo of `sasl.password`, a property it does not have) or
/// takes but streamer does not check: no command prints their values, which librdkafka's
/// configuration error quotes (issue 16).
#[test]
fn no_command_echoes_the_values_of_keys_librdkafka_rejects() {
    let db = TestDb::create();
    let dir = TempDir::new("cli-kafka-secrets");
    for (key, value) in [
        ("kafka.sasl.pasword", "Typo-s3cr3t-value"),
        ("kafka.sasl.oauthbearer.client.secret", "Oauth-s3cr3t-value"),
        ("kafka.sasl.oauthbearer.client.sekret", "Oauth-typo-s3cr3t"),
        ("kafka.ssl.keystore.passwd", "Keystore-s3cr3t"),
    ] {
        let text = SEED.replace("DBNAME", db.name()).replace(
            "subscribe = product_view\n",
            &format!("{key} = {value}\nsubscribe = product_view\n"),
        ) + "\n[pipeline]\nretry_budget_s = 1\n";
        let cfg = write(&dir, &text);
        for args in [
            vec!["check", cfg.as_str()],
            vec!["run", cfg.as_str(), "--until-caught-up"],
            vec!["produce", cfg.as_str(), "--events", "1"],
        ] {
            let out = run_to_exit_env(&args, &[("RUST_LOG", "debug")], Duration::from_secs(60));
            assert_ne!(out.status.code(), Some(0), "{args:?}: {}", out.output);
            assert!(
                !out.output.contains(value) && !out.output.contains(SECRET),
                "{args:?} with {key} printed a secret: {}",
                out.output
            );
        }
    }
}

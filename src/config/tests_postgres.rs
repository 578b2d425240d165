//! Unit tests of the PostgreSQL settings: the `postgres` crate config, TLS modes, keepalives
//! and the loaders' statement timeout.

use super::tests::*;
use super::*;

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
    assert_eq!(
        loader.get_options(),
        Some(
            "-c default_transaction_isolation=read\\ committed -c lock_timeout=0 \
         -c statement_timeout=60000"
        )
    );

    let text = format!("{}[postgres]\nstatement_timeout_ms = 0\n", secret_seed());
    let c = Config::parse(&text, &no_env()).expect("0");
    assert_eq!(
        c.postgres.loader_pg_config().get_options(),
        Some("-c default_transaction_isolation=read\\ committed -c lock_timeout=0")
    );
    let text = format!("{}[postgres]\nstatement_timeout_ms = soon\n", secret_seed());
    let e = Config::parse(&text, &no_env()).unwrap_err().to_string();
    assert!(e.contains("statement_timeout_ms"), "{e}");
}

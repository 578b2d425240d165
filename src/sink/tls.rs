//! The TLS connector for `[postgres] sslmode` and `sslrootcert`, as libpq does it:
//! `prefer`/`require` encrypt without verifying, `verify-ca` checks the server's
//! certificate chain against the root certificates, `verify-full` also checks that the
//! certificate names the host connected to.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use postgres_native_tls::MakeTlsConnector;

use crate::config::PostgresConfig;
use crate::error::{Error, Result};
use crate::lock::lock;

/// `sslrootcert = system`: the operating system's trusted roots (as libpq 16+).
pub const SYSTEM_ROOTS: &str = "system";

/// What to check of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndHost,
}

/// libpq's default root certificate file: `~/.postgresql/root.crt`.
fn default_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql").join("root.crt"))
}

/// The connectors built so far, by (sslmode, sslrootcert): building one reads and parses
/// the system's CA bundle (10-20 ms), and a run built one for its pool, its folder and
/// its dashboard, one after another before it joined the consumer group.
type Built = Vec<((String, Option<PathBuf>), MakeTlsConnector)>;
static BUILT: Mutex<Built> = Mutex::new(Vec::new());

/// The connector for `pg`, built once per process and settings. A root certificate file
/// that cannot be read or holds no certificate is a configuration error (exit 2), named
/// with its path (and read again on the next call).
pub fn connector(pg: &PostgresConfig) -> Result<MakeTlsConnector> {
    let key = (pg.sslmode.clone(), pg.sslrootcert.clone());
    if let Some((_, c)) = lock(&BUILT).iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let built = build(pg)?;
    lock(&BUILT).push((key, built.clone()));
    Ok(built)
}

fn build(pg: &PostgresConfig) -> Result<MakeTlsConnector> {
    let verify = match (pg.sslmode.as_str(), &pg.sslrootcert) {
        ("verify-full", _) => Verify::ChainAndHost,
        ("verify-ca", _) => Verify::Chain,
        // libpq: with a root certificate file, `require` verifies like `verify-ca`
        ("require", Some(_)) => Verify::Chain,
        _ => Verify::Nothing,
    };
    let mut builder = native_tls::TlsConnector::builder();
    match verify {
        Verify::Nothing => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        Verify::Chain | Verify::ChainAndHost => {
            builder.danger_accept_invalid_hostnames(verify == Verify::Chain);
            let path = match &pg.sslrootcert {
                Some(p) => Some(p.clone()),
                None => default_root_cert(),
            };
            match path {
                Some(p) if p.as_os_str() == SYSTEM_ROOTS => {}
                Some(p) => {
                    builder.disable_built_in_roots(true);
                    for cert in read_roots(&p, pg.sslrootcert.is_none())? {
                        builder.add_root_certificate(cert);
                    }
                }
                None => {
                    return Err(Error::Config(format!(
                        "[postgres] sslmode = {}: no sslrootcert given and no HOME for \
                         ~/.postgresql/root.crt",
                        pg.sslmode
                    )))
                }
            }
        }
    }
    let connector = builder
        .build()
        .map_err(|e| Error::fatal("setting up TLS for PostgreSQL", e))?;
    Ok(MakeTlsConnector::new(connector))
}

/// The certificates of a PEM file.
fn read_roots(path: &Path, defaulted: bool) -> Result<Vec<native_tls::Certificate>> {
    let how = if defaulted {
        " (libpq's default; set [postgres] sslrootcert to a file, or to `system` for the \
         system's trusted roots)"
    } else {
        ""
    };
    let pem = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "[postgres] sslrootcert: reading {}{how}: {e}",
            path.display()
        ))
    })?;
    let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
        Error::Config(format!(
            "[postgres] sslrootcert: {} is not PEM certificates: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "[postgres] sslrootcert: {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

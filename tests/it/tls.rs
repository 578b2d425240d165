//! `[postgres] sslmode` against a throwaway PostgreSQL serving a certificate of a private
//! test CA for `localhost`: `verify-full` loads the stream and refuses a host the
//! certificate does not name, `verify-ca` refuses a certificate of another CA, `require`
//! encrypts without verifying, and a root certificate file that cannot be read is a
//! configuration error.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::check::{assert_tables, drain, produced_ends, warmup};
use crate::harness::events::data_set;
use crate::harness::pg_cluster::{ClusterDb, PgCluster};
use crate::harness::{run_to_exit, unique_name, Broker, TempDir};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `name.crt` / `name.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=streamer test {name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// The server's key and certificate (for DNS name `localhost` only), signed by `ca`;
/// returns the server options that turn TLS on with them.
fn make_server_cert(dir: &Path, ca: &str) -> String {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    );
    std::fs::set_permissions(
        dir.join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod server.key");
    format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    )
}

/// A config for `db` on `cluster` reached as `host`, with `postgres` as the `[postgres]`
/// section's lines.
fn config(
    dir: &TempDir,
    cluster: &PgCluster,
    db: &ClusterDb,
    host: &str,
    topic: &str,
    postgres: &str,
) -> String {
    let text = format!(
        "[local_spark]\napp_name = {app}\n\
         [docker_postgres]\nhost_in = db\nhost_out = {host}\ndatabase = {db}\nuser = postgres\n\
         password =\nport_in = 5432\nport_out = {port}\n\
         [remote_kafka]\nkafka.bootstrap.servers = {bootstrap}\nsubscribe = {topic}\n\
         startingOffsets = earliest\n\
         [postgres]\n{postgres}\n",
        app = unique_name("tls"),
        db = db.name(),
        port = cluster.port(),
        bootstrap = Broker::shared().bootstrap(),
    );
    let path = dir.join(&format!("{}.ini", unique_name("config")));
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

#[test]
fn sslmodes_verify_the_server_as_libpq_does() {
    let mut certs = None;
    let cluster = PgCluster::start_with(|dir| {
        make_ca(dir, "ca");
        make_ca(dir, "other-ca");
        certs = Some(dir.to_path_buf());
        make_server_cert(dir, "ca")
    });
    let certs = certs.expect("cert dir");
    let ca = certs.join("ca.crt").display().to_string();
    let other_ca = certs.join("other-ca.crt").display().to_string();
    let db = cluster.create_database(&unique_name("tls"));
    let dir = TempDir::new("tls");
    let topic = unique_name("tls");
    let broker = Broker::shared();
    broker.create_topic(&topic, 2);
    let ds = data_set(60, 6, 1, 0x7115);
    let ends = produced_ends(&broker.produce(&topic, &ds.messages));
    let cfg_for = |host: &str, postgres: &str| config(&dir, &cluster, &db, host, &topic, postgres);
    let check = |cfg: &str| run_to_exit(&["check", cfg], Duration::from_secs(60));

    // verify-full, the host the certificate names: the whole job runs over it.
    let full = cfg_for(
        "localhost",
        &format!("sslmode = verify-full\nsslrootcert = {ca}"),
    );
    let out = check(&full);
    out.assert_code(0);
    assert!(out.output.contains("postgres: ok"), "{}", out.output);
    warmup(dir.path(), &full, &[]);
    drain(dir.path(), &full, &[]);
    assert_tables(&db, &ds, &ends, &topic);

    // verify-ca checks the chain only, so 127.0.0.1 (not in the certificate) passes ...
    let ca_only = cfg_for(
        "127.0.0.1",
        &format!("sslmode = verify-ca\nsslrootcert = {ca}"),
    );
    let out = check(&ca_only);
    out.assert_code(0);
    assert!(out.output.contains("postgres: ok"), "{}", out.output);

    // ... which verify-full refuses: the certificate does not name that host.
    let wrong_host = cfg_for(
        "127.0.0.1",
        &format!("sslmode = verify-full\nsslrootcert = {ca}"),
    );
    let out = check(&wrong_host);
    out.assert_code(1);
    let line = postgres_line(&out.output);
    assert!(line.contains("FAILED"), "{line}");
    assert!(line.contains("certificate verify failed"), "{line}");
    // OpenSSL's verify result: the name (here an IP address) does not match
    assert!(line.contains("address mismatch"), "{line}");
    // The job does not retry it for its retry budget: it will not pass.
    let out = run_to_exit(
        &["run", &wrong_host, "--until-caught-up"],
        Duration::from_secs(60),
    );
    out.assert_code(1);
    assert!(out.output.contains("address mismatch"), "{}", out.output);
    assert!(!out.output.contains("ERROR r2d2"), "{}", out.output);

    // A certificate of another CA: refused by verify-ca, and by require when a root
    // certificate file is given (libpq's rule), accepted by a bare require.
    for mode in ["verify-ca", "require"] {
        let cfg = cfg_for(
            "localhost",
            &format!("sslmode = {mode}\nsslrootcert = {other_ca}"),
        );
        let out = check(&cfg);
        out.assert_code(1);
        let line = postgres_line(&out.output);
        assert!(line.contains("certificate verify failed"), "{mode}: {line}");
    }
    let require = cfg_for("127.0.0.1", "sslmode = require");
    check(&require).assert_code(0);

    // A root certificate file that is not there: a configuration error naming it.
    let missing = certs.join("no-such-ca.crt").display().to_string();
    let cfg = cfg_for(
        "localhost",
        &format!("sslmode = verify-full\nsslrootcert = {missing}"),
    );
    let out = check(&cfg);
    out.assert_code(2);
    assert!(out.output.contains("sslrootcert"), "{}", out.output);
    assert!(out.output.contains(&missing), "{}", out.output);
}

/// The `postgres:` line of `streamer check`'s output.
fn postgres_line(output: &str) -> String {
    output
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .unwrap_or_else(|| panic!("no postgres line in {output}"))
        .to_string()
}

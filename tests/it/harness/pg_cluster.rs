//! A throwaway PostgreSQL cluster for tests that stop and restart the server: `initdb` into
//! a temp dir, trust auth, its own free port on 127.0.0.1, its socket in the temp dir. The
//! shared server at 127.0.0.1:5432 is never touched.
//!
//! The server binaries are taken from `$PG_BIN` or the newest `/usr/lib/postgresql/*/bin`.
//! PostgreSQL refuses to run as root, so when the tests run as root every server command
//! runs as the `postgres` OS user (`runuser -u postgres --`) and the temp dir is given to it.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::check::Database;
use super::{free_port, TempDir};

/// A private cluster, stopped (immediately) and removed on drop.
pub(crate) struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    log_path: PathBuf,
    port: u16,
    as_postgres: bool,
    /// more `-c name=value` server options (TLS)
    extra_opts: String,
    // Last: removed after the server is stopped.
    dir: TempDir,
}

/// A database on a [`PgCluster`].
pub(crate) struct ClusterDb {
    name: String,
    port: u16,
}

impl ClusterDb {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn conn_string(&self) -> String {
        conn_string(self.port, &self.name)
    }

    /// A new connection (panics when the server is down).
    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conn_string(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.conn_string()))
    }
}

impl Database for ClusterDb {
    fn connect(&self) -> postgres::Client {
        self.client()
    }
}

fn conn_string(port: u16, db: &str) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname={db} connect_timeout=10")
}

/// `$PG_BIN`, or the `bin` dir of the highest PostgreSQL version installed.
pub(crate) fn pg_bin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_str()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .expect("no /usr/lib/postgresql/*/bin/initdb (set PG_BIN)")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// initdb, start the server on a free port, wait until it accepts connections.
    pub(crate) fn start() -> PgCluster {
        PgCluster::start_with(|_| String::new())
    }

    /// [`PgCluster::start`], with `setup` first writing files into the cluster's dir
    /// (given to the server's user afterwards) and returning more server options.
    pub(crate) fn start_with(setup: impl FnOnce(&std::path::Path) -> String) -> PgCluster {
        let bin = pg_bin_dir();
        let as_postgres = running_as_root();
        let dir = TempDir::new("streamer-pgcluster");
        let data = dir.join("data");
        let log_path = dir.join("postgres.log");
        let extra_opts = setup(dir.path());
        let mut cluster = PgCluster {
            bin,
            data,
            log_path,
            port: 0,
            as_postgres,
            extra_opts,
            dir,
        };
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("run chown");
            assert!(
                st.success(),
                "chown postgres {}",
                cluster.dir.path().display()
            );
        }
        let data = cluster.data.to_string_lossy().into_owned();
        let out = cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(e) => {
                    eprintln!("throwaway PostgreSQL on port {}: {e}", cluster.port);
                    last = e;
                }
            }
        }
        panic!("could not start a throwaway PostgreSQL: {last}");
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// (Re)start the stopped server on the same port and data.
    pub(crate) fn start_again(&self) {
        self.try_start()
            .unwrap_or_else(|e| panic!("restart throwaway PostgreSQL: {e}"));
    }

    /// `pg_ctl -m fast stop`: clients are disconnected, the server is gone when this returns.
    pub(crate) fn stop(&self) {
        let data = self.data.to_string_lossy().into_owned();
        let out = self.pg(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}{}\nlog {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_path.display()
        );
    }

    /// Creates database `name` and returns a handle to it.
    pub(crate) fn create_database(&self, name: &str) -> ClusterDb {
        let mut admin =
            postgres::Client::connect(&conn_string(self.port, "postgres"), postgres::NoTls)
                .unwrap_or_else(|e| panic!("connect to throwaway PostgreSQL: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        ClusterDb {
            name: name.to_string(),
            port: self.port,
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let data = self.data.to_string_lossy().into_owned();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40 {}",
            self.port,
            self.dir.path().display(),
            self.extra_opts
        );
        let log = self.log_path.to_string_lossy().into_owned();
        let out = self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
            ],
        );
        if !out.status.success() {
            let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
            return Err(format!(
                "pg_ctl start: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&self.log_path).unwrap_or_default()
            ));
        }
        // pg_ctl -w waited for the socket; make sure TCP on our port answers too.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match postgres::Client::connect(&conn_string(self.port, "postgres"), postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "server started but port {} refuses: {e}",
                        self.port
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs server tool `tool` (as `postgres` when we are root), cwd the temp dir.
    fn pg(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let data = self.data.to_string_lossy().into_owned();
            let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
        if std::thread::panicking() {
            eprintln!("throwaway PostgreSQL log: {}", self.log_path.display());
        }
    }
}

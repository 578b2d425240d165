//! `config.ini` files for test runs of the streamer ([`write_config`]).

use std::fs;
use std::path::{Path, PathBuf};

use super::db::{PG_HOST, PG_PORT, PG_USER};
use super::temp::unique_name;

/// Writes `dir/config.ini` in the seed's format (contract §3) for a local run against `bootstrap`
/// and database `db_name`, subscribing to `topic` from the earliest offset; `extra_ini`
/// (e.g. a `[pipeline]` section) is appended verbatim.
pub(crate) fn write_config(
    dir: &Path,
    bootstrap: &str,
    db_name: &str,
    topic: &str,
    extra_ini: &str,
) -> PathBuf {
    let app = unique_name("streamer_it");
    let mut text = format!(
        "[local_spark]\n\
         app_name = {app}\n\
         \n\
         [docker_postgres]\n\
         host_in = db\n\
         host_out = {PG_HOST}\n\
         database = {db_name}\n\
         user = {PG_USER}\n\
         password =\n\
         port_in = 5432\n\
         port_out = {PG_PORT}\n\
         \n\
         [remote_kafka]\n\
         kafka.bootstrap.servers = {bootstrap}\n\
         kafka.fetch.wait.max.ms = 10\n\
         kafka.session.timeout.ms = 6000\n\
         kafka.heartbeat.interval.ms = 500\n\
         subscribe = {topic}\n\
         startingOffsets = earliest\n"
    );
    if !extra_ini.is_empty() {
        text.push('\n');
        text.push_str(extra_ini);
        if !extra_ini.ends_with('\n') {
            text.push('\n');
        }
    }
    let path = dir.join("config.ini");
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

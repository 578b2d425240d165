//! Test harness shared by the integration tests (the `it` test binary), one module per role.
//!
//! Everything here talks to real services on loopback only:
//! - PostgreSQL at 127.0.0.1:5432 as `postgres` with trust auth (`scripts/ensure-postgres`);
//!   [`TestDb`] creates a fresh database per test and drops it afterwards.
//! - Apache Kafka (`scripts/install-kafka`, run by `scripts/kafka-node`): [`Broker::shared`]
//!   is the one broker of the test run (topics and groups are unique per test), and
//!   [`Broker::start`] a private one for tests that freeze, kill or restart it.
//!
//! Logs and scratch files go to per-test temp dirs ([`TempDir`]) that are kept (and their
//! path printed) when the test panics, and removed otherwise. Set `STREAMER_KEEP_TEST_DIRS=1`
//! to keep them always.

pub(crate) mod broker;
pub(crate) mod check;
pub(crate) mod chromium;
pub(crate) mod config;
pub(crate) mod db;
pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod pg_cluster;
pub(crate) mod process;
pub(crate) mod produce;
pub(crate) mod temp;

pub(crate) use broker::{Broker, Record};
pub(crate) use config::write_config;
pub(crate) use db::{pg_conn_string, TestDb, PG_PORT};
pub(crate) use process::{
    free_port, run_to_exit, run_to_exit_env, spawn_streamer, streamer_bin, Streamer,
};
pub(crate) use temp::{unique_name, TempDir};

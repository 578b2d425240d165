//! streamer: Kafka product-view events into a PostgreSQL star schema, exactly once.
//! The binary in `main.rs` is a thin shell over [`cli::run`] (and, for `streamer produce`,
//! over the event generator, the `streamer-produce` crate in `produce/`).

mod bounded;
mod catalog;
pub mod cli;
pub mod config;
pub mod enrich;
pub mod error;
mod hash;
mod lock;
pub mod logging;
mod metrics;
mod modes;
mod offsets;
mod pipeline;
pub mod report;
mod reset;
pub mod sink;
pub mod source;
mod status;
mod topic_partition;
pub mod transform;
pub mod warmup;

pub use error::{Error, Result};

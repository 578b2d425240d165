//! streamer: Kafka product-view events into a PostgreSQL star schema, exactly once.
//! The binary in `main.rs` is a thin shell over [`cli::run`] (and, for `streamer produce`,
//! over the event generator, the `streamer-produce` crate in `produce/`).

pub mod catalog;
pub mod cli;
pub mod config;
pub mod enrich;
pub mod error;
pub mod hash;
mod lock;
pub mod metrics;
pub mod modes;
pub mod offsets;
pub mod pipeline;
pub mod report;
pub mod reset;
pub mod sink;
pub mod source;
pub mod status;
pub mod topic_partition;
pub mod transform;
pub mod warmup;

pub use error::{Error, Result};

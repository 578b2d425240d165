//! The integration tests, one binary: each module is one area of the product, all sharing
//! the harness (PostgreSQL databases, the Kafka broker of the run, the streamer binary).

mod cli;
mod codecs;
mod dashboard;
mod dockerfile;
mod e2e;
mod enrich;
mod errors;
mod faults;
mod fuzz_corpus;
mod group;
mod harness;
mod harness_smoke;
mod kafka;
mod modes;
mod ops;
mod partitions;
mod poison;
mod produce;
mod report;
mod status;
mod tls;

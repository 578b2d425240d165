//! `streamer produce` in-process: the generator crate run against a test's [`Config`],
//! handed the cluster and the consumer's transform the way the binary's `produce` hands
//! them (src/main.rs; the `it::produce` tests also run the binary's own `produce`).

use streamer::config::Config;
use streamer_produce::{Judged, ProduceArgs, ProduceReport, Result, Target};

/// Produce `args` to `cfg`'s cluster.
pub(crate) fn run(cfg: &Config, args: &ProduceArgs) -> Result<ProduceReport> {
    streamer_produce::run(&target(cfg), args)
}

/// The cluster of `cfg`, its first topic, and the transform as the judge of a message.
pub(crate) fn target(cfg: &Config) -> Target {
    Target {
        client_id: cfg.kafka.client_id.clone(),
        properties: (cfg.kafka.properties.iter())
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        default_topic: cfg.kafka.topics.first().cloned(),
        describe_error: streamer::config::kafka_error_text,
        judge: |message| {
            let fact = streamer::transform::transform(Some(message)).ok()?;
            Some(Judged {
                id: fact.event_id().to_owned(),
                identity: fact.sales_key().to_owned(),
            })
        },
    }
}

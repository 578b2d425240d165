//! The process's logger: env_logger (`RUST_LOG`, `info` by default, times in milliseconds),
//! less the one record rust-rdkafka writes at error level when its consumer's drop finds
//! the consumer closed already, which [`crate::source::Source::close`] does on purpose (see
//! there); and the levels librdkafka's records are logged at.

use log::{Level, Log, Metadata, Record};
use rdkafka::config::RDKafkaLogLevel;

/// Where rust-rdkafka's consumer drop logs, and what it says when the consumer is closed.
const DROP_TARGET: &str = "rdkafka::consumer::base_consumer";
const DROP_CLOSED: &str = "Failed to close consumer queue on drop";
/// librdkafka's code for "Consumer already closed" (`RD_KAFKA_RESP_ERR__DESTROY`)
const ALREADY_CLOSED: &str = "BrokerDestroy";

struct Logger(env_logger::Logger);

/// Whether `record` is rust-rdkafka's drop finding the consumer closed already.
fn closed_already(record: &Record<'_>) -> bool {
    if record.level() != Level::Error || record.target() != DROP_TARGET {
        return false;
    }
    let text = record.args().to_string();
    text.starts_with(DROP_CLOSED) && text.contains(ALREADY_CLOSED)
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.0.matches(record) && !closed_already(record) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// The level of a librdkafka log record, as rust-rdkafka maps it, but for two kinds of
/// record that are not what their level says here. A failed commit of the group's offsets
/// (COMMITFAIL, a warning: usually a rebalance under way) costs nothing but a lag tool's
/// view, since PostgreSQL holds the offsets: info. A broker connection that failed (FAIL,
/// an error) is retried, and one that stays down ends the run at the retry budget with
/// its own error: a warning.
pub(crate) fn librdkafka_level(fac: &str, level: RDKafkaLogLevel) -> log::Level {
    match (fac, level) {
        ("COMMITFAIL", _) => Level::Info,
        ("FAIL", _) => Level::Warn,
        (
            _,
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error,
        ) => Level::Error,
        (_, RDKafkaLogLevel::Warning) => Level::Warn,
        (_, RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info) => Level::Info,
        (_, RDKafkaLogLevel::Debug) => Level::Debug,
    }
}

/// Install the logger (once per process; later calls change nothing).
pub fn init() {
    // milliseconds: a batch, a rebalance or a shutdown takes tens of them
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .format_timestamp_millis()
            .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(Logger(logger))).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(level: Level, target: &str, text: &str, f: impl FnOnce(&Record<'_>) -> bool) -> bool {
        f(&Record::builder()
            .level(level)
            .target(target)
            .args(format_args!("{text}"))
            .build())
    }

    #[test]
    fn librdkafka_records_keep_their_level_but_commit_and_connection_failures() {
        for (fac, level, want) in [
            ("COMMITFAIL", RDKafkaLogLevel::Warning, Level::Info),
            ("FAIL", RDKafkaLogLevel::Error, Level::Warn),
            ("SESSTMOUT", RDKafkaLogLevel::Warning, Level::Warn),
            ("ERROR", RDKafkaLogLevel::Critical, Level::Error),
            ("PARTCNT", RDKafkaLogLevel::Notice, Level::Info),
            ("FETCH", RDKafkaLogLevel::Debug, Level::Debug),
        ] {
            assert_eq!(librdkafka_level(fac, level), want, "{fac}");
        }
    }

    #[test]
    fn only_the_drop_of_a_closed_consumer_is_left_out() {
        let closed = "Failed to close consumer queue on drop: Consumer queue close error: \
                      BrokerDestroy (Local: Broker handle destroyed)";
        assert!(record(Level::Error, DROP_TARGET, closed, closed_already));
        // any other failure of that close, any other level or target, is logged
        let other = "Failed to close consumer queue on drop: Consumer queue close error: \
                     Fatal (Local: Fatal error)";
        assert!(!record(Level::Error, DROP_TARGET, other, closed_already));
        assert!(!record(Level::Warn, DROP_TARGET, closed, closed_already));
        assert!(!record(
            Level::Error,
            "streamer::source",
            closed,
            closed_already
        ));
    }
}

//! Java consumer properties that a Spark job's `kafka.X` keys may carry and librdkafka does
//! not know: renamed to librdkafka's property where it has one, ignored (and reported)
//! where it has none, and Java assignor class names translated to librdkafka's names.

/// What to do with one Java consumer property.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Java {
    /// librdkafka's name for it
    Renamed(&'static str),
    /// a Java client setting with no librdkafka equivalent
    Ignored,
}

/// The Java consumer's name → librdkafka's, for properties that mean the same.
const RENAMED: [(&str, &str); 3] = [
    ("fetch.max.wait.ms", "fetch.wait.max.ms"),
    ("receive.buffer.bytes", "socket.receive.buffer.bytes"),
    ("send.buffer.bytes", "socket.send.buffer.bytes"),
];

/// Java client settings librdkafka has no property for (the Java client's polling, its
/// plug-in classes, its metrics and its JVM TLS machinery).
const IGNORED: [&str; 17] = [
    "max.poll.records",
    "default.api.timeout.ms",
    "key.deserializer",
    "value.deserializer",
    "interceptor.classes",
    "exclude.internal.topics",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.sample.window.ms",
    "metrics.recording.level",
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "security.providers",
];

/// How the Java consumer property `key` maps to librdkafka; None for a key that is not a
/// Java-only one (passed on as it is).
pub(super) fn java_property(key: &str) -> Option<Java> {
    if let Some((_, to)) = RENAMED.iter().find(|(from, _)| *from == key) {
        return Some(Java::Renamed(to));
    }
    IGNORED.contains(&key).then_some(Java::Ignored)
}

/// `partition.assignment.strategy` with Java assignor class names (as a Spark job's config
/// has them) in librdkafka's names; other names are kept for librdkafka to judge. Err
/// names a Java assignor librdkafka has no counterpart of.
pub(super) fn assignors(value: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let short = name.rsplit('.').next().unwrap_or(name);
        out.push(match short {
            "RangeAssignor" => "range",
            "RoundRobinAssignor" => "roundrobin",
            "CooperativeStickyAssignor" => "cooperative-sticky",
            _ if name.contains('.') => {
                return Err(format!(
                    "{name} has no librdkafka counterpart: use range, roundrobin or \
                     cooperative-sticky"
                ))
            }
            _ => name,
        });
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_names_are_renamed_ignored_or_passed_on() {
        assert_eq!(
            java_property("fetch.max.wait.ms"),
            Some(Java::Renamed("fetch.wait.max.ms"))
        );
        assert_eq!(java_property("max.poll.records"), Some(Java::Ignored));
        assert_eq!(java_property("fetch.min.bytes"), None);
        assert_eq!(java_property("session.timeout.ms"), None);
    }

    #[test]
    fn java_assignor_classes_become_librdkafka_names() {
        assert_eq!(
            assignors(
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, \
                 org.apache.kafka.clients.consumer.RangeAssignor"
            ),
            Ok("cooperative-sticky,range".to_string())
        );
        assert_eq!(assignors("roundrobin"), Ok("roundrobin".to_string()));
        let e = assignors("org.apache.kafka.clients.consumer.StickyAssignor").unwrap_err();
        assert!(
            e.contains("StickyAssignor") && e.contains("cooperative-sticky"),
            "{e}"
        );
    }
}

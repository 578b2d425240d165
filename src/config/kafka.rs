//! `[remote_kafka]`: the topics, where to start, and the `kafka.X` librdkafka properties
//! (the JAAS value mapped to `sasl.username` / `sasl.password`, the group and client ids
//! taken out, the offset keys streamer owns refused), read into [`KafkaConfig`]; and
//! [`kafka_error_text`], librdkafka's errors with secret values hidden.

use std::collections::BTreeMap;

use super::document::Entry;
use super::jaas::{self, Jaas, LoginModule};
use super::java::{assignors, java_property, Java};
use super::reader::{at, list, shown, Reader};
use super::schema::KAFKA_PREFIX;
use super::secret::{is_secret_key, Secret};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingOffsets {
    Earliest,
    Latest,
    /// Spark's JSON form, `{"topic":{"0":23,"1":-2}}`: an offset per partition, -2 for
    /// the log's start and -1 for its end
    Specific(BTreeMap<String, BTreeMap<i32, i64>>),
}

impl StartingOffsets {
    /// Where a partition of `topic` that the group has no row of starts, given its log's
    /// start and end; None when the JSON form does not name it (Spark requires every
    /// partition there).
    pub fn start(&self, topic: &str, partition: i32, (low, high): (i64, i64)) -> Option<i64> {
        match self {
            StartingOffsets::Earliest => Some(low),
            StartingOffsets::Latest => Some(high),
            StartingOffsets::Specific(given) => match given.get(topic)?.get(&partition)? {
                -2 => Some(low),
                -1 => Some(high),
                n => Some(*n),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// librdkafka properties (every `kafka.X` key as `X`, JAAS mapped to sasl.username/password).
    /// Values of secret-bearing keys (sasl.password, ssl.key.password, ...) are not shown by Debug.
    /// Never holds `group.id` or `client.id`: see `group_id` and `client_id`.
    pub properties: Vec<(String, Secret)>,
    pub topics: Vec<String>,
    pub starting_offsets: StartingOffsets,
    /// consumer group: `[pipeline] consumer_group`, else `kafka.group.id`, else the app name
    pub group_id: String,
    /// client id: `kafka.client.id`, else the app name
    pub client_id: String,
    /// `kafka.X` keys of the Java client that librdkafka has no property for, as written
    pub ignored: Vec<String>,
}

impl KafkaConfig {
    /// The value given for librdkafka property `key`, if any.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.0.as_str())
    }
}

/// librdkafka properties whose values are known not to be secret, so an error about one
/// may quote its value; every other property's value (a typo of `sasl.password`, an
/// unsupported `sasl.oauthbearer.client.secret`, ...) is hidden.
const PUBLIC_KAFKA_PROPERTIES: [&str; 16] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "client.id",
    "group.id",
    "auto.offset.reset",
    "enable.auto.commit",
    "isolation.level",
    "session.timeout.ms",
    "max.poll.interval.ms",
    "fetch.max.bytes",
    "statistics.interval.ms",
    "debug",
    "compression.type",
];

/// A librdkafka error as it may be shown: for a configuration error, the value is
/// replaced by `(hidden)` unless its property is known not to be secret (librdkafka's
/// error, as rdkafka formats it, quotes the value).
pub fn kafka_error_text(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, desc, key, value) => {
            let public = PUBLIC_KAFKA_PROPERTIES.contains(&key.as_str()) && !is_secret_key(key);
            if public || value.is_empty() {
                format!("client config error: {desc} ({key} = {value:?})")
            } else {
                let desc = desc.replace(value.as_str(), "(hidden)");
                format!("client config error: {desc} ({key} = (hidden))")
            }
        }
        other => other.to_string(),
    }
}

const S: &str = "remote_kafka";

/// What `[remote_kafka]` yields, with the group id `[pipeline] consumer_group` may override.
pub(super) fn kafka_section(r: &Reader<'_>, app_name: &str) -> Result<KafkaConfig> {
    r.required(S, "kafka.bootstrap.servers")?;
    let topics = topics(r)?;
    let starting_offsets = starting_offsets(r)?;
    let mut keys = kafka_keys(r)?;
    if let Some((e, parsed)) = &keys.jaas {
        no_explicit_credentials(r, e)?;
        if mechanism_implied_by(r, e, parsed)? {
            keys.properties
                .push(("sasl.mechanism".into(), Secret("PLAIN".into())));
        }
    }
    Ok(KafkaConfig {
        properties: keys.properties,
        topics,
        starting_offsets,
        group_id: consumer_group(r, keys.group_id, app_name)?,
        client_id: keys.client_id.unwrap_or_else(|| app_name.to_string()),
        ignored: keys.ignored,
    })
}

/// `subscribe`: at least one topic, each a valid Kafka topic name.
fn topics(r: &Reader<'_>) -> Result<Vec<String>> {
    let (subscribe, value) = r.required(S, "subscribe")?;
    let topics = list(value);
    if topics.is_empty() {
        return Err(at(S, subscribe, "names no topic"));
    }
    let valid = |t: &str| {
        t.len() <= 249
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if let Some(bad) = topics.iter().find(|t| !valid(t)) {
        return Err(at(
            S,
            subscribe,
            format!("{bad:?} is not a Kafka topic name (letters, digits, '.', '_', '-')"),
        ));
    }
    Ok(topics)
}

fn starting_offsets(r: &Reader<'_>) -> Result<StartingOffsets> {
    let Some(e) = r.get(S, "startingoffsets") else {
        return Ok(StartingOffsets::Latest);
    };
    let value = e.value.trim();
    match value.to_ascii_lowercase().as_str() {
        "earliest" => Ok(StartingOffsets::Earliest),
        "latest" => Ok(StartingOffsets::Latest),
        _ if value.starts_with('{') => specific_offsets(value)
            .map(StartingOffsets::Specific)
            .map_err(|why| at(S, e, format!("{why}, in {}", shown(e)))),
        _ => Err(at(
            S,
            e,
            format!(
                "expected earliest, latest or Spark's JSON form \
                 ({{\"topic\":{{\"0\":23,\"1\":-2}}}}), got {}",
                shown(e)
            ),
        )),
    }
}

/// Spark's JSON `startingOffsets`: per topic, partition numbers (as JSON keys) to an
/// offset, -2 (earliest) or -1 (latest).
fn specific_offsets(
    value: &str,
) -> std::result::Result<BTreeMap<String, BTreeMap<i32, i64>>, String> {
    let parsed: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(value)
        .map_err(|e| format!("not Spark's JSON form {{\"topic\":{{\"0\":23}}}}: {e}"))?;
    let mut out = BTreeMap::new();
    for (topic, partitions) in parsed {
        let mut of_topic = BTreeMap::new();
        for (p, offset) in partitions {
            let partition = p
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| format!("{p:?} of {topic:?} is not a partition number"))?;
            if offset < -2 {
                return Err(format!(
                    "{offset} for {topic}/{partition} is neither an offset nor -2 (earliest) \
                     or -1 (latest)"
                ));
            }
            of_topic.insert(partition, offset);
        }
        out.insert(topic, of_topic);
    }
    Ok(out)
}

/// The `kafka.X` keys of `[remote_kafka]`, sorted out.
struct KafkaKeys<'a> {
    /// librdkafka properties in file order, JAAS credentials in its place
    properties: Vec<(String, Secret)>,
    group_id: Option<String>,
    client_id: Option<String>,
    /// the `kafka.sasl.jaas.config` entry and what it says
    jaas: Option<(&'a Entry, Jaas)>,
    /// Java client keys without a librdkafka property, as written
    ignored: Vec<String>,
}

fn kafka_keys<'a>(r: &Reader<'a>) -> Result<KafkaKeys<'a>> {
    let mut keys = KafkaKeys {
        properties: Vec::new(),
        group_id: None,
        client_id: None,
        jaas: None,
        ignored: Vec::new(),
    };
    for e in r.entries(S) {
        let Some(name) = e.key.strip_prefix(KAFKA_PREFIX) else {
            continue;
        };
        let value = e.value.trim();
        let non_empty = || Some(value.to_string()).filter(|v| !v.is_empty());
        match name {
            "sasl.jaas.config" => {
                let parsed = jaas_of(e, value)?;
                let credentials = [
                    ("sasl.username", &parsed.username),
                    ("sasl.password", &parsed.password),
                ];
                for (key, v) in credentials {
                    keys.properties.push((key.into(), Secret(v.clone())));
                }
                keys.jaas = Some((e, parsed));
            }
            "group.id" => keys.group_id = non_empty(),
            "client.id" => keys.client_id = non_empty(),
            "enable.auto.commit" | "auto.offset.reset" => {
                return Err(at(
                    S,
                    e,
                    "streamer sets this itself (offsets are committed with each batch; use \
                     startingOffsets for where to start)",
                ))
            }
            // A Java client's TLS stores (a Spark job's config has them), which librdkafka
            // has no property for: said here, instead of librdkafka's "No such
            // configuration property".
            "ssl.truststore.location"
            | "ssl.truststore.password"
            | "ssl.truststore.type"
            | "ssl.truststore.certificates" => {
                return Err(at(
                    S,
                    e,
                    "a Java client's truststore, which librdkafka does not read: give the CA \
                     certificate in PEM as kafka.ssl.ca.location (`keytool -exportcert -rfc \
                     -keystore TRUSTSTORE -alias ALIAS` prints it)",
                ))
            }
            // librdkafka reads a PKCS#12 keystore (ssl.keystore.location and .password)
            // and has no property for its type
            "ssl.keystore.type" if value.eq_ignore_ascii_case("PKCS12") => {}
            "ssl.keystore.type" => {
                return Err(at(
                    S,
                    e,
                    "librdkafka reads a PKCS#12 keystore only: convert it (`keytool \
                     -importkeystore -srckeystore KEYSTORE -destkeystore KEYSTORE.p12 \
                     -deststoretype PKCS12`), or give kafka.ssl.certificate.location and \
                     kafka.ssl.key.location in PEM",
                ))
            }
            "partition.assignment.strategy" => {
                let names = assignors(value).map_err(|why| at(S, e, why))?;
                keys.properties.push((name.to_string(), Secret(names)));
            }
            _ => match java_property(name) {
                Some(Java::Renamed(to)) => keys
                    .properties
                    .push((to.to_string(), Secret(value.to_string()))),
                Some(Java::Ignored) => keys.ignored.push(e.written.clone()),
                None => keys
                    .properties
                    .push((name.to_string(), Secret(value.to_string()))),
            },
        }
    }
    Ok(keys)
}

/// The JAAS value read, or an error that says what is expected (never the value).
fn jaas_of(e: &Entry, value: &str) -> Result<Jaas> {
    jaas::parse(value).map_err(|why| {
        at(
            S,
            e,
            format!(
                "cannot read the JAAS config: {why}; expected \
                 `org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"...\" password=\"...\";` (or ScramLoginModule)"
            ),
        )
    })
}

/// With a JAAS value, `kafka.sasl.username` / `kafka.sasl.password` may not be given too.
fn no_explicit_credentials(r: &Reader<'_>, jaas: &Entry) -> Result<()> {
    for explicit in ["sasl.username", "sasl.password"] {
        let key = format!("{KAFKA_PREFIX}{explicit}");
        if let Some(other) = r.get(S, &key) {
            return Err(at(
                S,
                other,
                format!(
                    "conflicts with kafka.sasl.jaas.config ({}); give only one of them",
                    jaas.origin
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the SASL mechanism against the JAAS login module; true when none is given and
/// the module implies one (PlainLoginModule: `PLAIN`).
fn mechanism_implied_by(r: &Reader<'_>, jaas: &Entry, parsed: &Jaas) -> Result<bool> {
    let mechanism = ["kafka.sasl.mechanism", "kafka.sasl.mechanisms"]
        .iter()
        .find_map(|k| r.get(S, k));
    let mech = mechanism.map(|m| m.value.trim().to_ascii_uppercase());
    match (parsed.module, mech.as_deref()) {
        (LoginModule::Plain, None) => return Ok(true),
        (LoginModule::Plain, Some("PLAIN")) => return Ok(false),
        (LoginModule::Scram, Some(m)) if m.starts_with("SCRAM-SHA-") => return Ok(false),
        _ => {}
    }
    let wanted = match parsed.module {
        LoginModule::Plain => "PLAIN",
        LoginModule::Scram => "SCRAM-SHA-256 or SCRAM-SHA-512",
    };
    Err(match mechanism {
        Some(m) => at(
            S,
            m,
            format!(
                "the login module of kafka.sasl.jaas.config ({}) needs {wanted}",
                jaas.origin
            ),
        ),
        None => at(
            S,
            jaas,
            format!("ScramLoginModule needs kafka.sasl.mechanism = {wanted}"),
        ),
    })
}

/// The consumer group: `[pipeline] consumer_group` (not empty), else `kafka.group.id`,
/// else the app name.
fn consumer_group(r: &Reader<'_>, from_kafka: Option<String>, app_name: &str) -> Result<String> {
    match r.get("pipeline", "consumer_group") {
        Some(e) => {
            let v = e.value.trim();
            if v.is_empty() {
                return Err(at("pipeline", e, "must not be empty"));
            }
            Ok(v.to_string())
        }
        None => Ok(from_kafka.unwrap_or_else(|| app_name.to_string())),
    }
}

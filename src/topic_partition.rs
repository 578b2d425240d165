//! `TopicPartition`: the one name of a Kafka partition used everywhere (readers, batches,
//! offsets, metrics), cheap to clone, printed as `topic/partition`.

use std::fmt;
use std::sync::Arc;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// `[t/0, t/1]`, for log lines.
pub(crate) fn describe(parts: &[TopicPartition]) -> String {
    let v: Vec<String> = parts.iter().map(ToString::to_string).collect();
    format!("[{}]", v.join(", "))
}

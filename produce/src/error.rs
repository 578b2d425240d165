//! The generator's errors: a bad command line or target (the caller's exit code 2) or a
//! failure while producing (exit code 1).

/// What went wrong; the caller maps [`Error::Config`] to its configuration exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or Kafka settings; the message names the flag or property.
    #[error("config: {0}")]
    Config(String),
    /// Producing failed (the broker, the topic, delivery, a file).
    #[error("{context}: {message}")]
    Fatal { context: String, message: String },
}

impl Error {
    pub(crate) fn fatal(context: impl Into<String>, message: impl std::fmt::Display) -> Error {
        Error::Fatal {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! What must never be shown: [`Secret`] (a string that hides itself from Debug and Display)
//! and [`is_secret_key`] (which keys' values error messages must not quote).

/// A string that never prints: Debug and Display show `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    /// The hidden string, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Whether the value of a key (config key or librdkafka property) must never be shown:
/// names containing `password`, `secret`, `jaas`, `token`, `key.pem` or `oauthbearer.config`.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "key.pem",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| k.contains(s))
}

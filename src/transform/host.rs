//! Host of a `referrer_url` (contract §5) without a URL crate: scheme, `//`, authority,
//! userinfo and port handled like Python's `urlsplit(...).hostname`; never panics.

use std::borrow::Cow;

/// Host of `url` per contract §5, lowercased; None when empty or when there is no host.
///
/// - Surrounding ASCII whitespace and control characters are ignored.
/// - No `//` anywhere: the text is read as if `http://` were prefixed, so all of it up to
///   the first `/ ? #` is the authority (`www.x.de/p` gives `www.x.de`).
/// - Otherwise the text must start with `//` or with `scheme://` (scheme = a letter, then
///   letters, digits, `+ - .`); if not, there is no authority and so no host
///   (`x.de/a?u=http://y` gives None, as a URL parser would, rather than `y`).
/// - The authority ends at the first `/ ? #`; userinfo up to the last `@` is dropped; a
///   `[...]` IPv6 literal is kept with its brackets; otherwise `:port` (from the first `:`)
///   is dropped. An unclosed `[` gives None.
pub fn referrer_host(url: &str) -> Option<Cow<'_, str>> {
    let url = url.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control());
    if url.is_empty() {
        return None;
    }
    let after_slashes = if url.contains("//") {
        after_scheme_slashes(url)?
    } else {
        url
    };
    let authority = match after_slashes.find(['/', '?', '#']) {
        Some(end) => &after_slashes[..end],
        None => after_slashes,
    };
    let host_port = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        &host_port[..=close]
    } else {
        match host_port.find(':') {
            Some(colon) => &host_port[..colon],
            None => host_port,
        }
    };
    if host.is_empty() {
        None
    } else if !host.bytes().any(|b| b.is_ascii_uppercase()) && host.is_ascii() {
        Some(Cow::Borrowed(host))
    } else {
        Some(Cow::Owned(host.to_lowercase()))
    }
}

/// The text after `//` when `url` is `//...` or `scheme://...`; None otherwise.
fn after_scheme_slashes(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix("//") {
        return Some(rest);
    }
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        url[colon + 1..].strip_prefix("//")
    } else {
        None
    }
}

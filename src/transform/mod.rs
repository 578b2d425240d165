//! The pure transform of contract §4-5: message bytes in, one fact row or one dead letter out.
//! No I/O, no clocks, no shared state; never panics, whatever the input.
//!
//! The payload is parsed once with serde_json by the `json` submodule (strings borrowed,
//! number text exact, no `Value` tree) and only the fields contract §4 names are kept; a key
//! repeated at the top level keeps its last value. Checks run in the order contract §4 lists
//! dead-letter reasons: empty, UTF-8, JSON, object, `id`, `time_stamp`, then, field by
//! field, U+0000 in any text that would be stored and the length limits of [`LIMITS`].

mod fact;
mod host;
mod json;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fields;
#[cfg(test)]
mod tests_json;

pub use fact::{Col, Fact, Rule, Stored, TEXT_COLUMNS, TIME_COLUMNS};
pub use host::referrer_host;

use chrono::DateTime;
use fact::Columns;
use json::{Field, Slots, Top};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Why a message could not become a fact row (contract §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadReason {
    /// the message had no value (a tombstone)
    EmptyPayload,
    NotUtf8,
    NotJson,
    NotObject,
    MissingId,
    BadTimeStamp,
    /// a `\u0000` in a stored field: PostgreSQL text cannot hold it
    NulCharacter,
    /// a stored value longer than its field's limit in [`LIMITS`]
    TooLong,
    /// PostgreSQL refused the row for a data reason (the loader's safety net; never
    /// produced by the transform itself)
    Rejected,
}

impl DeadReason {
    /// Stable snake_case code, used in `dead_letter.reason` and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            DeadReason::EmptyPayload => "empty_payload",
            DeadReason::NotUtf8 => "not_utf8",
            DeadReason::NotJson => "not_json",
            DeadReason::NotObject => "not_object",
            DeadReason::MissingId => "missing_id",
            DeadReason::BadTimeStamp => "bad_time_stamp",
            DeadReason::NulCharacter => "nul_character",
            DeadReason::TooLong => "too_long",
            DeadReason::Rejected => "rejected_by_postgres",
        }
    }
}

/// A rejected message: the reason and a short human detail (no payload copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: DeadReason,
    pub detail: String,
}

impl Rejection {
    /// The text stored in `dead_letter.reason`: `code: detail`.
    pub fn text(&self) -> String {
        if self.detail.is_empty() {
            self.reason.code().to_string()
        } else {
            format!("{}: {}", self.reason.code(), self.detail)
        }
    }
}

/// Smallest accepted `time_stamp`: 0001-01-01T00:00:00Z (PostgreSQL and chrono both go
/// further, but years outside 1-9999 are never real event times).
pub const MIN_TIME_STAMP: i64 = -62_135_596_800;
/// Largest accepted `time_stamp`: 9999-12-31T23:59:59Z.
pub const MAX_TIME_STAMP: i64 = 253_402_300_799;

/// The longest value, in UTF-8 bytes, each limited field may store (contract §4; the README's
/// "Limits" table gives the reasons). Keys and hosts end up in B-tree indexes (PostgreSQL
/// refuses an index row over ~2.7 kB, SQLSTATE 54000) or rollup keys; the others are
/// bounded so that one value can never make a row no real shop would send. A value past
/// its limit makes the message a dead letter (`too_long`) naming the field.
pub const LIMITS: [(&str, usize); 7] = [
    // fact_sales.event_id, hashed into sales_key; shop ids are UUIDs or ObjectIds (24-36)
    ("id", 255),
    // dim_product / rollup_product_hour primary keys
    ("product_id", 255),
    // dim_location.ip_address; a textual IPv6 address is at most 45 bytes, 255 leaves
    // room for a forwarded-for list
    ("ip", 255),
    // dim_user_agent.user_agent (hashed into the key); real agents stay under 1 kB
    ("user_agent", 2048),
    // the rollup_store_country_day unique index
    ("store_id", 255),
    // fact_sales.current_url and dim_product.current_url; 2,048 is the longest URL
    // browsers, search engines and sitemaps reliably handle
    ("current_url", 2048),
    // the host of referrer_url: rollup_referrer_day's primary key; a DNS name is at most
    // 253 bytes
    ("referrer_url", 255),
];

/// The limit of `field` in [`LIMITS`], if it has one.
pub fn limit_of(field: &str) -> Option<usize> {
    LIMITS.iter().find(|(f, _)| *f == field).map(|(_, n)| *n)
}

/// Longest excerpt of an offending value quoted in a rejection's detail.
const EXCERPT_CHARS: usize = 40;

/// Transform one Kafka message value. `None` is a tombstone (no value).
///
/// A zero-length value is treated like a tombstone (`EmptyPayload`), not as bad JSON.
pub fn transform(payload: Option<&[u8]>) -> Result<Fact, Rejection> {
    let bytes = match payload {
        None => {
            return Err(reject(
                DeadReason::EmptyPayload,
                "message has no value (tombstone)",
            ))
        }
        Some([]) => return Err(reject(DeadReason::EmptyPayload, "message value is 0 bytes")),
        Some(bytes) => bytes,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|e| reject(DeadReason::NotUtf8, e.to_string()))?;
    let mut raw: RawEvent<'_> = match json::parse(text) {
        Ok(Top::Object(raw)) => raw,
        Ok(Top::Other(kind)) => {
            return Err(reject(
                DeadReason::NotObject,
                format!("top-level JSON value is {kind}, not an object"),
            ))
        }
        Err(e) => return Err(reject(DeadReason::NotJson, e.to_string())),
    };

    let event_id = match raw.take(Col::EventId) {
        Some(Field::String(id)) if !id.is_empty() => id,
        Some(Field::String(_)) => return Err(reject(DeadReason::MissingId, "`id` is empty")),
        Some(other) => {
            return Err(reject(
                DeadReason::MissingId,
                format!("`id` is {}, not a string", other.kind()),
            ))
        }
        None => return Err(reject(DeadReason::MissingId, "`id` is absent")),
    };
    let time_stamp = epoch_seconds(raw.time_stamp.as_ref())
        .map_err(|detail| reject(DeadReason::BadTimeStamp, detail))?;
    let (full_date, full_time) = match DateTime::from_timestamp(time_stamp, 0) {
        Some(at) => (at.date_naive(), at.time()),
        None => {
            return Err(reject(
                DeadReason::BadTimeStamp,
                format!("time_stamp {time_stamp} is not a representable UTC time"),
            ))
        }
    };

    // From here on only U+0000 and the length limits can reject: every string that is
    // stored is checked, in this order (a rejection names the first such field).
    check_nul("id", &event_id)?;
    check_len("id", &event_id)?;
    let product_text = stored_text("product_id", raw.take(Col::ProductKey))?;
    let sales_digest = Sha256::new()
        .chain_update(event_id.as_bytes())
        .chain_update(product_text.as_deref().unwrap_or("").as_bytes())
        .finalize();
    let key_prefix = prefix_of(&sales_digest);
    let sales_key = hex_of(&sales_digest);
    // Decision: an empty-string `product_id` adds "" to `sales_key` (same as absent) and
    // gives a NULL `product_key`: an empty key would be a meaningless `dim_product` row.
    let product_key = product_text.filter(|p| !p.is_empty());
    let ip = non_empty(stored_text("ip", raw.take(Col::Ip))?);
    let user_agent = non_empty(stored_text("user_agent", raw.take(Col::UserAgent))?);
    // Only the host is stored, so only the host is checked (U+0000, length).
    let referrer_url = match raw.take(Col::ReferrerUrl).and_then(text_of) {
        Some(Cow::Borrowed(url)) => referrer_host(url),
        Some(Cow::Owned(url)) => referrer_host(&url).map(|host| Cow::Owned(host.into_owned())),
        None => None,
    };
    let referrer_url = match referrer_url {
        Some(host) => Some(checked("referrer_url", host)?),
        None => None,
    };
    let ip_digest = ip.as_deref().map(|ip| Sha256::digest(ip.as_bytes()));
    let ip_prefix = ip_digest.as_ref().map_or(0, |d| prefix_of(d));
    let ip_key = ip_digest.as_ref().map(|d| hex_of(d));
    let user_agent_key = user_agent.as_deref().map(sha256_hex_digits);

    let mut columns: Columns<'_> = [const { None }; TEXT_COLUMNS];
    let mut set = |col: Col, value| columns[col as usize] = value;
    set(Col::SalesKey, Some(Cow::Borrowed(hex_text(&sales_key))));
    set(Col::EventId, Some(event_id));
    set(
        Col::IpKey,
        ip_key.as_ref().map(|k| Cow::Borrowed(hex_text(k))),
    );
    set(Col::Ip, ip);
    set(
        Col::UserAgentKey,
        user_agent_key.as_ref().map(|k| Cow::Borrowed(hex_text(k))),
    );
    set(Col::UserAgent, user_agent);
    set(Col::ProductKey, product_key);
    set(Col::ReferrerUrl, referrer_url);
    set(Col::Option, option_json(raw.take(Col::Option))?);
    // The "other text columns": each from its JSON key, as text.
    for col in Col::ALL {
        if col.rule() == Rule::Text {
            let key = col.json_key().unwrap_or(col.name());
            set(col, stored_text(key, raw.take(col))?);
        }
    }
    Fact::new(
        &columns,
        (key_prefix, ip_prefix),
        time_stamp,
        full_date,
        full_time,
    )
    .ok_or_else(|| {
        reject(
            DeadReason::TooLong,
            "the row's text columns exceed 4 GiB together",
        )
    })
}

/// Lowercase hex SHA-256 of `text`'s UTF-8 bytes.
pub fn sha256_hex(text: &str) -> String {
    hex_text(&sha256_hex_digits(text)).to_owned()
}

/// Lowercase hex digits of SHA-256 of `text`, on the stack.
fn sha256_hex_digits(text: &str) -> [u8; 64] {
    hex_digest(Sha256::new().chain_update(text.as_bytes()))
}

/// Lowercase hex digits of a finished SHA-256. `hex::encode_to_slice` into a stack
/// buffer is several times faster than `hex::encode`, which builds a string char by char.
fn hex_digest(hasher: Sha256) -> [u8; 64] {
    hex_of(&hasher.finalize())
}

/// The first 128 bits of a digest, as a number (0 for a shorter one).
fn prefix_of(digest: &[u8]) -> u128 {
    digest
        .get(..16)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map_or(0, u128::from_be_bytes)
}

/// The first 128 bits of the digest a key of 64 lowercase hex digits spells (what
/// [`Fact::key_prefix`] and [`Fact::ip_key_prefix`] hold); None for any other text.
pub fn hex_key_prefix(key: &str) -> Option<u128> {
    if key.len() != 64 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(key.get(..32)?, 16).ok()
}

/// Lowercase hex digits of a SHA-256 digest.
fn hex_of(digest: &[u8]) -> [u8; 64] {
    let mut buf = [0u8; 64];
    // cannot fail for a digest of 32 bytes: 64 = 2 * 32
    let _ = hex::encode_to_slice(digest, &mut buf);
    buf
}

/// The text of hex digits (always ASCII; empty if it were not).
fn hex_text(digits: &[u8; 64]) -> &str {
    std::str::from_utf8(digits).unwrap_or_default()
}

/// contract §5 "other text columns": a JSON string as is, `true`/`false` as text, a number as
/// its exact JSON text (`1.50` stays `1.50`, `1E3` stays `1E3`), an object or array as
/// compact JSON (key order kept), null as None. Does not check for U+0000.
fn text_of(value: Field<'_>) -> Option<Cow<'_, str>> {
    match value {
        Field::Null => None,
        Field::String(s) => Some(s),
        Field::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        Field::Number(text) => Some(Cow::Borrowed(text)),
        Field::Nested { compact, .. } => Some(Cow::Owned(compact)),
    }
}

/// Parse `time_stamp` (contract §4): a JSON integer, or a string of ASCII digits only, within
/// [`MIN_TIME_STAMP`]..=[`MAX_TIME_STAMP`]. The error is a short human detail.
fn epoch_seconds(value: Option<&Field<'_>>) -> Result<i64, String> {
    // `shown` is how the value appears in a detail: numbers bare, strings quoted.
    let (parsed, shown) = match value {
        None => return Err("time_stamp is absent".to_owned()),
        Some(Field::Number(text)) => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "time_stamp {} is not an integer number of epoch seconds",
                    number_excerpt(text)
                ));
            }
            (text.parse::<i64>().ok(), number_excerpt(text))
        }
        Some(Field::String(s)) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("time_stamp {} is not epoch seconds", excerpt(s)));
            }
            (s.parse::<i64>().ok(), excerpt(s))
        }
        Some(other) => return Err(format!("time_stamp is {}, not epoch seconds", other.kind())),
    };
    match parsed {
        Some(seconds) if (MIN_TIME_STAMP..=MAX_TIME_STAMP).contains(&seconds) => Ok(seconds),
        _ => Err(format!("time_stamp {shown} is outside years 1-9999 UTC")),
    }
}

/// The fields the transform reads (`time_stamp` and, by column, the field of each
/// column's JSON key, see [`Col::json_key`]); everything else in the event is dropped
/// unread.
#[derive(Default)]
struct RawEvent<'a> {
    time_stamp: Option<Field<'a>>,
    fields: [Option<Field<'a>>; TEXT_COLUMNS],
}

impl<'a> RawEvent<'a> {
    fn take(&mut self, col: Col) -> Option<Field<'a>> {
        self.fields[col as usize].take()
    }
}

impl<'a> Slots<'a> for RawEvent<'a> {
    /// The exact, case-sensitive match of a key; the parser fills the slot with the
    /// value (a repeated key: its last value).
    fn slot(&mut self, key: &str) -> Option<&mut Option<Field<'a>>> {
        if key == "time_stamp" {
            return Some(&mut self.time_stamp);
        }
        Col::of_json_key(key).map(|col| &mut self.fields[col as usize])
    }
}

/// [`text_of`] of a stored field, rejecting U+0000 anywhere in it (for an object or
/// array: in any nested string or key, which compact JSON would write as `\u0000`).
fn stored_text<'a>(
    field: &str,
    value: Option<Field<'a>>,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    match value {
        None => Ok(None),
        Some(value) if holds_nul(&value) => Err(nul_rejection(field)),
        Some(value) => {
            let text = text_of(value);
            if let Some(text) = &text {
                check_len(field, text)?;
            }
            Ok(text)
        }
    }
}

/// Whether the text stored for `value` would hold U+0000 (decoded, for nested values).
fn holds_nul(value: &Field<'_>) -> bool {
    match value {
        Field::String(s) => s.contains('\0'),
        Field::Nested { nul, .. } => *nul,
        Field::Null | Field::Bool(_) | Field::Number(_) => false,
    }
}

/// contract §5 `option`: compact JSON text of the value as received (a string keeps its JSON
/// quotes), None when absent or null; U+0000 anywhere in it rejects the message.
fn option_json(value: Option<Field<'_>>) -> Result<Option<Cow<'_, str>>, Rejection> {
    match value {
        None | Some(Field::Null) => Ok(None),
        Some(value) if holds_nul(&value) => Err(nul_rejection("option")),
        // the string as a JSON literal, escaped as serde_json writes it (cannot fail)
        Some(Field::String(s)) => Ok(serde_json::to_string(s.as_ref()).ok().map(Cow::Owned)),
        Some(value) => Ok(text_of(value)),
    }
}

fn check_nul(field: &str, text: &str) -> Result<(), Rejection> {
    if text.contains('\0') {
        Err(nul_rejection(field))
    } else {
        Ok(())
    }
}

fn checked<'a>(field: &str, text: Cow<'a, str>) -> Result<Cow<'a, str>, Rejection> {
    check_nul(field, &text)?;
    check_len(field, &text)?;
    Ok(text)
}

/// Reject `text` when it is longer than the limit of `field` (fields without a limit
/// pass).
fn check_len(field: &str, text: &str) -> Result<(), Rejection> {
    match limit_of(field) {
        Some(limit) if text.len() > limit => Err(reject(
            DeadReason::TooLong,
            format!(
                "`{field}` is {} bytes, longer than its limit of {limit} bytes",
                text.len()
            ),
        )),
        _ => Ok(()),
    }
}

fn nul_rejection(field: &str) -> Rejection {
    reject(
        DeadReason::NulCharacter,
        format!("`{field}` contains U+0000, which PostgreSQL text cannot store"),
    )
}

fn non_empty(text: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    text.filter(|t| !t.is_empty())
}

fn reject(reason: DeadReason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// `text` cut to at most [`EXCERPT_CHARS`] characters, and whether it was cut.
fn cut(text: &str) -> (&str, bool) {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => (&text[..end], true),
        None => (text, false),
    }
}

/// A short, quoted, escaped excerpt of untrusted text: no control characters (U+0000
/// included), so the detail itself is always storable.
fn excerpt(text: &str) -> String {
    let (head, was_cut) = cut(text);
    format!("{head:?}{}", if was_cut { "..." } else { "" })
}

/// A short excerpt of a JSON number's text (ASCII digits, sign, `.`, `e`: safe bare).
fn number_excerpt(text: &str) -> String {
    let (head, was_cut) = cut(text);
    format!("{head}{}", if was_cut { "..." } else { "" })
}

//! The pure transform of SPEC 4-5: message bytes in, one fact row or one dead letter out.
//! No I/O, no clocks, no shared state; never panics, whatever the input.
//!
//! The payload is parsed once with serde_json by the `json` submodule (strings borrowed,
//! number text exact, no `Value` tree) and only the fields SPEC 4 names are kept; a key
//! repeated at the top level keeps its last value. Checks run in the order SPEC 4 lists
//! dead-letter reasons: empty, UTF-8, JSON, object, `id`, `time_stamp`, then U+0000 in
//! any text that would be stored.

mod host;
mod json;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fields;
#[cfg(test)]
mod tests_json;

pub use host::referrer_host;

use chrono::{DateTime, NaiveDate, NaiveTime};
use json::{Field, Slots, Top};
use sha2::{Digest, Sha256};

/// One `fact_sales` row, plus the raw values the dimension writers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// lowercase hex SHA-256 of `id` followed by `product_id` as text
    pub sales_key: String,
    /// the event's `id`
    pub event_id: String,
    /// the event's `_id`
    pub doc_id: Option<String>,
    /// epoch seconds
    pub time_stamp: i64,
    /// `time_stamp` as a UTC calendar date (years 1-9999)
    pub full_date: NaiveDate,
    /// `time_stamp` as a UTC time of day, second precision
    pub full_time: NaiveTime,
    /// raw `ip` as text (for `dim_location.ip_address`); None when absent or empty
    pub ip: Option<String>,
    /// lowercase hex SHA-256 of `ip`; None exactly when `ip` is None
    pub ip_key: Option<String>,
    /// raw `user_agent` text; None when absent or empty
    pub user_agent: Option<String>,
    /// lowercase hex SHA-256 of `user_agent`; None exactly when `user_agent` is None
    pub user_agent_key: Option<String>,
    /// `product_id` as text; None when absent, null or the empty string
    pub product_key: Option<String>,
    /// host of `referrer_url` (see [`referrer_host`])
    pub referrer_url: Option<String>,
    /// compact JSON of `option` as received
    pub option: Option<String>,
    /// this and the remaining fields: SPEC 5 "other text columns"
    pub resolution: Option<String>,
    pub user_id_db: Option<String>,
    pub device_id: Option<String>,
    pub api_version: Option<String>,
    pub store_id: Option<String>,
    pub local_time: Option<String>,
    pub show_recommendation: Option<String>,
    pub current_url: Option<String>,
    pub email_address: Option<String>,
    pub recommendation: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub collection: Option<String>,
}

/// Why a message could not become a fact row (SPEC 4).
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
    let raw: RawEvent<'_> = match json::parse(text) {
        Ok(Top::Object(raw)) => raw,
        Ok(Top::Other(kind)) => {
            return Err(reject(
                DeadReason::NotObject,
                format!("top-level JSON value is {kind}, not an object"),
            ))
        }
        Err(e) => return Err(reject(DeadReason::NotJson, e.to_string())),
    };

    let event_id = match raw.id {
        Some(Field::String(id)) if !id.is_empty() => id.into_owned(),
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

    // From here on only U+0000 can reject: every string that is stored is checked.
    check_nul("id", &event_id)?;
    let product_text = stored_text("product_id", raw.product_id)?;
    let sales_key = hex_digest(
        Sha256::new()
            .chain_update(event_id.as_bytes())
            .chain_update(product_text.as_deref().unwrap_or("").as_bytes()),
    );
    // Decision: an empty-string `product_id` adds "" to `sales_key` (same as absent) and
    // gives a NULL `product_key`: an empty key would be a meaningless `dim_product` row.
    let product_key = product_text.filter(|p| !p.is_empty());
    let ip = non_empty(stored_text("ip", raw.ip)?);
    let user_agent = non_empty(stored_text("user_agent", raw.user_agent)?);
    // Only the host is stored, so only the host is checked for U+0000.
    let referrer_url = match raw.referrer_url.and_then(text_of) {
        Some(url) => match referrer_host(&url) {
            Some(host) => Some(checked("referrer_url", host)?),
            None => None,
        },
        None => None,
    };

    Ok(Fact {
        sales_key,
        doc_id: stored_text("_id", raw.doc_id)?,
        time_stamp,
        full_date,
        full_time,
        ip_key: ip.as_deref().map(sha256_hex),
        ip,
        user_agent_key: user_agent.as_deref().map(sha256_hex),
        user_agent,
        product_key,
        referrer_url,
        option: option_json(raw.option)?,
        resolution: stored_text("resolution", raw.resolution)?,
        user_id_db: stored_text("user_id_db", raw.user_id_db)?,
        device_id: stored_text("device_id", raw.device_id)?,
        api_version: stored_text("api_version", raw.api_version)?,
        store_id: stored_text("store_id", raw.store_id)?,
        local_time: stored_text("local_time", raw.local_time)?,
        show_recommendation: stored_text("show_recommendation", raw.show_recommendation)?,
        current_url: stored_text("current_url", raw.current_url)?,
        email_address: stored_text("email_address", raw.email_address)?,
        recommendation: stored_text("recommendation", raw.recommendation)?,
        utm_source: stored_text("utm_source", raw.utm_source)?,
        utm_medium: stored_text("utm_medium", raw.utm_medium)?,
        collection: stored_text("collection", raw.collection)?,
        event_id,
    })
}

/// Lowercase hex SHA-256 of `text`'s UTF-8 bytes.
pub fn sha256_hex(text: &str) -> String {
    hex_digest(Sha256::new().chain_update(text.as_bytes()))
}

/// Lowercase hex of a finished SHA-256. `hex::encode_to_slice` into a stack buffer is
/// several times faster than `hex::encode`, which builds the string char by char.
fn hex_digest(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut buf = [0u8; 64];
    match hex::encode_to_slice(digest, &mut buf) {
        Ok(()) => match std::str::from_utf8(&buf) {
            Ok(hex) => hex.to_owned(),
            Err(_) => hex::encode(digest), // unreachable: hex digits are ASCII
        },
        Err(_) => hex::encode(digest), // unreachable: 64 = 2 * 32
    }
}

/// SPEC 5 "other text columns": a JSON string as is, `true`/`false` as text, a number as
/// its exact JSON text (`1.50` stays `1.50`, `1E3` stays `1E3`), an object or array as
/// compact JSON (key order kept), null as None. Does not check for U+0000.
fn text_of(value: Field<'_>) -> Option<String> {
    match value {
        Field::Null => None,
        Field::String(s) => Some(s.into_owned()),
        Field::Bool(b) => Some(if b { "true" } else { "false" }.to_owned()),
        Field::Number(text) => Some(text.to_owned()),
        Field::Nested { compact, .. } => Some(compact),
    }
}

/// Parse `time_stamp` (SPEC 4): a JSON integer, or a string of ASCII digits only, within
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

/// The fields the transform reads; everything else in the event is dropped unread.
#[derive(Default)]
struct RawEvent<'a> {
    doc_id: Option<Field<'a>>,
    id: Option<Field<'a>>,
    time_stamp: Option<Field<'a>>,
    ip: Option<Field<'a>>,
    user_agent: Option<Field<'a>>,
    resolution: Option<Field<'a>>,
    user_id_db: Option<Field<'a>>,
    device_id: Option<Field<'a>>,
    api_version: Option<Field<'a>>,
    store_id: Option<Field<'a>>,
    local_time: Option<Field<'a>>,
    show_recommendation: Option<Field<'a>>,
    current_url: Option<Field<'a>>,
    referrer_url: Option<Field<'a>>,
    email_address: Option<Field<'a>>,
    recommendation: Option<Field<'a>>,
    utm_source: Option<Field<'a>>,
    utm_medium: Option<Field<'a>>,
    collection: Option<Field<'a>>,
    product_id: Option<Field<'a>>,
    option: Option<Field<'a>>,
}

impl<'a> Slots<'a> for RawEvent<'a> {
    /// The exact, case-sensitive match of a key; the parser fills the slot with the
    /// value (a repeated key: its last value).
    fn slot(&mut self, key: &str) -> Option<&mut Option<Field<'a>>> {
        let raw = self;
        Some(match key {
            "_id" => &mut raw.doc_id,
            "id" => &mut raw.id,
            "time_stamp" => &mut raw.time_stamp,
            "ip" => &mut raw.ip,
            "user_agent" => &mut raw.user_agent,
            "resolution" => &mut raw.resolution,
            "user_id_db" => &mut raw.user_id_db,
            "device_id" => &mut raw.device_id,
            "api_version" => &mut raw.api_version,
            "store_id" => &mut raw.store_id,
            "local_time" => &mut raw.local_time,
            "show_recommendation" => &mut raw.show_recommendation,
            "current_url" => &mut raw.current_url,
            "referrer_url" => &mut raw.referrer_url,
            "email_address" => &mut raw.email_address,
            "recommendation" => &mut raw.recommendation,
            "utm_source" => &mut raw.utm_source,
            "utm_medium" => &mut raw.utm_medium,
            "collection" => &mut raw.collection,
            "product_id" => &mut raw.product_id,
            "option" => &mut raw.option,
            _ => return None,
        })
    }
}

/// [`text_of`] of a stored field, rejecting U+0000 anywhere in it (for an object or
/// array: in any nested string or key, which compact JSON would write as `\u0000`).
fn stored_text(field: &str, value: Option<Field<'_>>) -> Result<Option<String>, Rejection> {
    match value {
        None => Ok(None),
        Some(value) if holds_nul(&value) => Err(nul_rejection(field)),
        Some(value) => Ok(text_of(value)),
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

/// SPEC 5 `option`: compact JSON text of the value as received (a string keeps its JSON
/// quotes), None when absent or null; U+0000 anywhere in it rejects the message.
fn option_json(value: Option<Field<'_>>) -> Result<Option<String>, Rejection> {
    match value {
        None | Some(Field::Null) => Ok(None),
        Some(value) if holds_nul(&value) => Err(nul_rejection("option")),
        // the string as a JSON literal, escaped as serde_json writes it (cannot fail)
        Some(Field::String(s)) => Ok(serde_json::to_string(s.as_ref()).ok()),
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

fn checked(field: &str, text: String) -> Result<String, Rejection> {
    check_nul(field, &text)?;
    Ok(text)
}

fn nul_rejection(field: &str) -> Rejection {
    reject(
        DeadReason::NulCharacter,
        format!("`{field}` contains U+0000, which PostgreSQL text cannot store"),
    )
}

fn non_empty(text: Option<String>) -> Option<String> {
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

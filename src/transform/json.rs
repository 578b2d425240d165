//! The transform's view of an event's JSON, built on serde_json. The top-level object is
//! read by a serde visitor: keys borrowed from the payload, the value of each field the
//! transform keeps borrowed as a [`RawValue`] (its exact text, so a number keeps its text:
//! serde_json's `Number` would rewrite `1E3` as `1e+3`), every other value only validated.
//!
//! Validity is serde_json's strict grammar everywhere, as `from_str::<Value>` would judge
//! it: string escapes must decode to Unicode scalar values (no lone surrogates), nesting
//! is at most 127 deep. `RawValue` alone skims values laxly, so a kept string is decoded
//! by serde_json and a kept object or array is validated again on its own text (hence
//! its own 127 levels: one more in all than `Value` allows; harmless, and the rejection
//! of anything deeper, without deep recursion, is what matters).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// One kept field's value, classified from its exact JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field<'a> {
    Null,
    Bool(bool),
    /// the number's exact text as received
    Number(&'a str),
    /// the decoded string, borrowed from the payload when it has no escapes
    String(Cow<'a, str>),
    /// an object or an array, as compact JSON (see [`compact`])
    Nested {
        compact: String,
        /// whether a string or key inside decodes to text containing U+0000
        nul: bool,
        array: bool,
    },
}

impl<'a> Field<'a> {
    /// Classify one value by its first byte (serde_json has already checked its syntax
    /// loosely; strings and nested values are checked strictly here).
    pub(super) fn from_raw(raw: &'a RawValue) -> Result<Field<'a>, serde_json::Error> {
        let text = raw.get();
        Ok(match text.as_bytes().first() {
            // RawValue has checked the literal (a closing quote, no control characters):
            // without a backslash its content is the text between the quotes
            Some(b'"') => match text.get(1..text.len() - 1) {
                Some(content) if !content.contains('\\') => Field::String(Cow::Borrowed(content)),
                _ => Field::String(serde_json::from_str::<Text<'a>>(text)?.0),
            },
            Some(b't') => Field::Bool(true),
            Some(b'f') => Field::Bool(false),
            Some(b'n') => Field::Null,
            Some(&first @ (b'[' | b'{')) => {
                serde_json::from_str::<Valid>(text)?;
                let (compact, nul) = compact(text)?;
                Field::Nested {
                    compact,
                    nul,
                    array: first == b'[',
                }
            }
            _ => Field::Number(text),
        })
    }

    /// JSON type name with an article, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Field::Null => "null",
            Field::Bool(_) => "a boolean",
            Field::Number(_) => "a number",
            Field::String(_) => "a string",
            Field::Nested { array: true, .. } => "an array",
            Field::Nested { array: false, .. } => "an object",
        }
    }
}

/// Where the transform keeps the fields it reads: `slot` names the place for a key (an
/// exact, case-sensitive match), or None for a key the transform ignores.
pub(super) trait Slots<'a>: Default {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Field<'a>>>;
}

/// A whole payload: an object's kept fields, or the type of a valid non-object value.
#[derive(Debug)]
pub(super) enum Top<T> {
    Object(T),
    /// "an array", "a number", ... (see [`Field::kind`])
    Other(&'static str),
}

/// Parse one JSON text (surrounding whitespace allowed, nothing else after it). A key
/// that appears more than once keeps its last value; values of earlier occurrences must
/// still be valid. The error is serde_json's (message with line and column).
pub(super) fn parse<'a, T: Slots<'a>>(text: &'a str) -> Result<Top<T>, serde_json::Error> {
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first();
    let kind = match first {
        Some(b'{') => return Ok(Top::Object(serde_json::from_str::<Event<T>>(text)?.0)),
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    serde_json::from_str::<Valid>(text)?;
    Ok(Top::Other(kind))
}

/// Compact JSON text of a valid object or array: whitespace outside strings removed,
/// members and their order kept as received (a repeated key stays repeated), numbers
/// verbatim, and every string that has an escape re-escaped as serde_json writes it
/// (`\u00e9` becomes `é`, `\/` becomes `/`, control characters become `\n` or `\u0001`).
/// Also says whether any string or key decodes to text containing U+0000.
pub(super) fn compact(text: &str) -> Result<(String, bool), serde_json::Error> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut nul = false;
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => at += 1,
            b'"' => {
                let (end, escaped) = string_end(bytes, at);
                // `at` and `end` are at ASCII bytes (or the end): char boundaries
                let literal = &text[at..end];
                if escaped {
                    let decoded = serde_json::from_str::<String>(literal)?;
                    nul |= decoded.contains('\0');
                    out.push_str(&serde_json::to_string(&decoded)?);
                } else {
                    out.push_str(literal);
                }
                at = end;
            }
            _ => {
                let start = at;
                while let Some(b) = bytes.get(at) {
                    if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'"') {
                        break;
                    }
                    at += 1;
                }
                out.push_str(&text[start..at]);
            }
        }
    }
    Ok((out, nul))
}

/// The end (one past the closing quote) of the string literal whose opening quote is at
/// `start`, and whether it contains an escape. The end of `bytes` if it is unterminated.
fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut escaped = false;
    let mut at = start + 1;
    loop {
        match bytes.get(at) {
            Some(b'"') => return (at + 1, escaped),
            Some(b'\\') => {
                escaped = true;
                at += 2;
            }
            Some(_) => at += 1,
            None => return (bytes.len(), escaped),
        }
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Any valid JSON value, checked strictly (like `Value`) and dropped without being built.
/// Unlike `IgnoredAny`, which serde_json skims without its nesting limit or surrogate
/// checks. With `arbitrary_precision` a number arrives as a one-member map: also fine.
struct Valid;

impl<'de> Deserialize<'de> for Valid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValidVisitor)
    }
}

struct ValidVisitor;

impl<'de> Visitor<'de> for ValidVisitor {
    type Value = Valid;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Valid, A::Error> {
        while seq.next_element::<Valid>()?.is_some() {}
        Ok(Valid)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Valid, A::Error> {
        while map.next_entry::<Valid, Valid>()?.is_some() {}
        Ok(Valid)
    }
}

/// The top-level object, read into `T`'s slots.
struct Event<T>(T);

impl<'de, T: Slots<'de>> Deserialize<'de> for Event<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor(PhantomData))
    }
}

struct EventVisitor<T>(PhantomData<T>);

impl<'de, T: Slots<'de>> Visitor<'de> for EventVisitor<T> {
    type Value = Event<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<T>, A::Error> {
        let mut slots = T::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match slots.slot(&key) {
                Some(slot) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let field = Field::from_raw(raw).map_err(|e| {
                        // serde_json appends the position of the value's end
                        de::Error::custom(format_args!("in `{key}`: {}", without_position(&e)))
                    })?;
                    *slot = Some(field);
                }
                None => {
                    map.next_value::<Valid>()?;
                }
            }
        }
        Ok(Event(slots))
    }
}

/// serde_json's message without its " at line L column C" (relative to a field's text).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

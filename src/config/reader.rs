//! Typed reading of the parsed document: [`Reader`] looks keys up and turns values into
//! numbers, booleans and lists, and every error it makes names the section, the key and
//! the line (or environment variable), quoting the value only when it is not a secret.

use std::path::PathBuf;
use std::str::FromStr;

use super::document::{Document, Entry, Section};
use super::schema;
use super::secret::is_secret_key;
use crate::error::{Error, Result};

/// Typed access to the document with error messages that name section, key and origin.
pub(super) struct Reader<'a> {
    pub doc: &'a Document,
}

/// An error about an entry: `[section] key (line N): message`.
pub(super) fn at(section: &str, e: &Entry, message: impl std::fmt::Display) -> Error {
    Error::Config(format!(
        "[{section}] {} ({}): {message}",
        e.written, e.origin
    ))
}

/// A value for a message: quoted, or `(hidden)` for secret keys.
pub(super) fn shown(e: &Entry) -> String {
    if is_secret_key(&e.key) {
        "(hidden)".to_string()
    } else {
        format!("{:?}", e.value)
    }
}

impl<'a> Reader<'a> {
    pub(super) fn get(&self, section: &str, key: &str) -> Option<&'a Entry> {
        self.doc.get(section, key)
    }

    pub(super) fn section(&self, name: &str) -> Option<&'a Section> {
        self.doc.section(name)
    }

    /// The entries of a section in file order (none when the section is absent).
    pub(super) fn entries(&self, section: &str) -> &'a [Entry] {
        self.section(section)
            .map(|s| s.entries.as_slice())
            .unwrap_or(&[])
    }

    /// An error for a required key that is absent.
    pub(super) fn missing(&self, section: &str, key: &str) -> Error {
        let key = schema::display_key(key);
        match self.section(section) {
            Some(s) => Error::Config(format!(
                "[{section}] {key}: required key missing (section [{section}] at {})",
                s.origin
            )),
            None => Error::Config(format!(
                "[{section}] {key}: required key missing; the file has no [{section}] section"
            )),
        }
    }

    /// A required key whose value, trimmed, is not empty.
    pub(super) fn required(&self, section: &str, key: &str) -> Result<(&'a Entry, &'a str)> {
        let e = self
            .get(section, key)
            .ok_or_else(|| self.missing(section, key))?;
        let v = e.value.trim();
        if v.is_empty() {
            return Err(at(section, e, "must not be empty"));
        }
        Ok((e, v))
    }

    /// An optional boolean: true/false, yes/no, on/off, 1/0.
    pub(super) fn boolean(&self, section: &str, key: &str, default: bool) -> Result<bool> {
        let Some(e) = self.get(section, key) else {
            return Ok(default);
        };
        match e.value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(at(
                section,
                e,
                format!("expected true or false, got {}", shown(e)),
            )),
        }
    }

    /// An optional whole number, at least `min`.
    pub(super) fn number<T>(&self, section: &str, key: &str, default: T, min: T) -> Result<T>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match self.get(section, key) {
            None => Ok(default),
            Some(e) => number_of(section, e, min),
        }
    }
}

fn number_of<T>(section: &str, e: &Entry, min: T) -> Result<T>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let text = e.value.trim().replace('_', "");
    match text.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(at(
            section,
            e,
            format!(
                "expected a whole number of at least {min}, got {}",
                shown(e)
            ),
        )),
    }
}

/// A comma list: items trimmed, empty items dropped.
pub(super) fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn path_list(value: &str) -> Vec<PathBuf> {
    list(value).into_iter().map(PathBuf::from).collect()
}

//! The INI text as ordered sections of (key, value, origin) entries. Owns the one parse, a
//! line scan (comments, inline comments, quotes, `\` continuations, line numbers, duplicate
//! and syntax errors), and the `STREAMER__SECTION__KEY` environment overrides. Promises:
//! section and key names are lowercase, every entry knows its line or environment variable,
//! and no error message quotes a value.

use std::fmt;

use super::schema::{self, SectionSchema};
use crate::error::{Error, Result};

/// Prefix of the environment variables that override keys: `STREAMER__SECTION__KEY`.
pub(crate) const ENV_PREFIX: &str = "STREAMER__";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// 1-based line of the file
    Line(usize),
    /// the name of the environment variable
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Env(var) => write!(f, "from environment {var}"),
        }
    }
}

/// One `key = value`. Deliberately not Debug: the value may be a secret.
pub(crate) struct Entry {
    /// lowercase key
    pub key: String,
    /// the key as written (for messages)
    pub written: String,
    pub value: String,
    pub origin: Origin,
}

pub(crate) struct Section {
    /// lowercase section name
    pub name: String,
    /// line of the header, or the variable that created the section
    pub origin: Origin,
    pub entries: Vec<Entry>,
}

impl Section {
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

#[derive(Default)]
pub(crate) struct Document {
    pub sections: Vec<Section>,
}

impl Document {
    /// Parse INI text in one pass, line by line: drop comments (whole-line and inline), join
    /// `\` continuations, unquote values, record each section and key with its line, and
    /// reject duplicates and malformed lines (a carriage return may only end a line).
    /// Syntax errors name the line (and the section and previous key), never a value.
    pub(super) fn parse(text: &str) -> Result<Document> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let mut doc = Document::default();
        let mut i = 0;
        while i < lines.len() {
            let lineno = i + 1;
            let mut logical = lines[i].to_string();
            i += 1;
            let trimmed = logical.trim();
            if trimmed.is_empty() || trimmed.starts_with([';', '#']) {
                continue;
            }
            no_stray_cr(&logical, lineno, &doc)?;
            if let Some(header) = trimmed.strip_prefix('[') {
                let section = doc.header(header, lineno)?;
                doc.sections.push(section);
                continue;
            }
            while logical.ends_with('\\') && i < lines.len() {
                no_stray_cr(lines[i], i + 1, &doc)?;
                logical.pop();
                logical.push_str(lines[i]);
                i += 1;
            }
            doc.entry(&logical, lineno)?;
        }
        Ok(doc)
    }

    /// A `[section]` line (`header` is the text after `[`), not yet in the document.
    fn header(&self, header: &str, lineno: usize) -> Result<Section> {
        let bad = |what| syntax(lineno, self.sections.last(), what);
        let Some(end) = header.find(']') else {
            return Err(bad("section header without a closing `]`"));
        };
        let name = header[..end].trim().to_lowercase();
        let rest = header[end + 1..].trim_start();
        if !rest.is_empty() && !rest.starts_with([';', '#']) {
            return Err(bad("text after the section header"));
        }
        if name.is_empty() || name.contains(['[', '\\']) {
            return Err(bad("bad section name"));
        }
        if let Some(first) = self.section(&name) {
            return Err(Error::Config(format!(
                "[{name}] (line {lineno}): duplicate section, first at {}",
                first.origin
            )));
        }
        Ok(Section {
            name,
            origin: Origin::Line(lineno),
            entries: Vec::new(),
        })
    }

    /// A `key = value` line (continuations joined), added to the last section.
    fn entry(&mut self, logical: &str, lineno: usize) -> Result<()> {
        let bad = |what| syntax(lineno, self.sections.last(), what);
        let Some(pos) = logical.find(['=', ':']) else {
            return Err(bad(
                "expected `key = value`, a `[section]` header or a comment",
            ));
        };
        let written = logical[..pos].trim().to_string();
        if written.is_empty() {
            return Err(bad("missing key before `=`"));
        }
        let key = written.to_lowercase();
        let Some(section) = self.sections.last_mut() else {
            return Err(Error::Config(format!(
                "{written} (line {lineno}): key outside any section; put it under a [section] header"
            )));
        };
        if let Some(first) = section.get(&key) {
            return Err(Error::Config(format!(
                "[{}] {written} (line {lineno}): duplicate key, first at {}",
                section.name, first.origin
            )));
        }
        let value = unquote(strip_inline_comment(&logical[pos + 1..]).trim());
        section.entries.push(Entry {
            key,
            written,
            value: value.to_string(),
            origin: Origin::Line(lineno),
        });
        Ok(())
    }

    pub(super) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub(super) fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.section(section).and_then(|s| s.get(key))
    }

    /// Apply every `STREAMER__SECTION__KEY=value` of `env` (in name order). The section must
    /// be known; the key is matched case-insensitively, and `_` stands for `.` when no key
    /// matches exactly (see [`Document::resolve_env_key`]). A key not in the file is added.
    pub(super) fn apply_env(&mut self, env: &[(String, String)]) -> Result<()> {
        let mut overrides: Vec<&(String, String)> = env
            .iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        overrides.sort_by(|a, b| a.0.cmp(&b.0));
        let mut targets: Vec<(String, String, String)> = Vec::new();
        for (var, value) in overrides {
            let rest = &var[ENV_PREFIX.len()..];
            let (section_raw, key_raw) = match rest.split_once("__") {
                Some((s, k)) if !s.is_empty() && !k.is_empty() => (s, k),
                _ => {
                    return Err(Error::Config(format!(
                        "environment {var}: expected the form {ENV_PREFIX}SECTION__KEY"
                    )))
                }
            };
            let section = section_raw.to_lowercase();
            let Some(schema) = schema::section(&section) else {
                return Err(Error::Config(format!(
                    "[{section}] (from environment {var}): unknown section; known sections: {}",
                    schema::describe_sections()
                )));
            };
            let key = self.resolve_env_key(schema, key_raw);
            if let Some((_, _, first)) = targets.iter().find(|(s, k, _)| *s == section && *k == key)
            {
                return Err(Error::Config(format!(
                    "[{section}] {key}: set twice from environment ({first} and {var})"
                )));
            }
            targets.push((section.clone(), key.clone(), var.clone()));
            self.set(&section, key, value.clone(), Origin::Env(var.clone()));
        }
        Ok(())
    }

    /// The key an environment variable names in `schema`'s section: the key itself
    /// (lowercased) when the file or the schema has it; else the one file or schema key that
    /// equals it with `_` read as `.`; else, for the open-ended `kafka_`/`spark_` prefixes,
    /// the name with every `_` read as `.` (librdkafka property names have no `_`).
    fn resolve_env_key(&self, schema: &SectionSchema, raw: &str) -> String {
        let lc = raw.to_lowercase();
        let in_file: Vec<&str> = self
            .section(schema.name)
            .map(|s| s.entries.iter().map(|e| e.key.as_str()).collect())
            .unwrap_or_default();
        if in_file.contains(&lc.as_str()) || schema.knows(&lc) {
            return lc;
        }
        let underscored = |k: &str| k.replace('.', "_");
        let want = underscored(&lc);
        let mut candidates: Vec<&str> = in_file
            .iter()
            .copied()
            .chain(schema.keys.iter().copied())
            .chain(schema.ignored.iter().copied())
            .filter(|k| underscored(k) == want)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        if let [only] = candidates.as_slice() {
            return (*only).to_string();
        }
        if let Some(prefix) = schema.open_prefix {
            if lc.starts_with(&underscored(prefix)) {
                return lc.replace('_', ".");
            }
        }
        lc
    }

    fn set(&mut self, section: &str, key: String, value: String, origin: Origin) {
        let idx = match self.sections.iter().position(|s| s.name == section) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: section.to_string(),
                    origin: origin.clone(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        let entries = &mut self.sections[idx].entries;
        match entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.value = value;
                e.origin = origin;
            }
            None => entries.push(Entry {
                written: key.clone(),
                key,
                value,
                origin,
            }),
        }
    }
}

/// A `\r` left in a line of a key, a value or a header (CRLF line ends are already cut).
fn no_stray_cr(line: &str, lineno: usize, doc: &Document) -> Result<()> {
    if line.contains('\r') {
        return Err(syntax(
            lineno,
            doc.sections.last(),
            "stray carriage return inside the line",
        ));
    }
    Ok(())
}

fn syntax(line: usize, section: Option<&Section>, what: &str) -> Error {
    let place = match section {
        None => String::from(" (before any [section])"),
        Some(s) => match s.entries.last() {
            Some(e) => format!(" in [{}] after key {}", s.name, e.written),
            None => format!(" in [{}]", s.name),
        },
    };
    Error::Config(format!("syntax error at line {line}{place}: {what}"))
}

/// Cut an inline comment: `;` or `#` at the start of the value or after whitespace, outside
/// quotes. A quote opens only at the start, after whitespace, `=` or `,`, and only when it is
/// closed later on the line (so `it's` does not open one).
fn strip_inline_comment(value: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    for (i, c) in value.char_indices() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => {
                let after_space = prev.is_none_or(char::is_whitespace);
                if (c == ';' || c == '#') && after_space {
                    return &value[..i];
                }
                let opens = after_space || prev == Some('=') || prev == Some(',');
                if (c == '"' || c == '\'') && opens && value[i + 1..].contains(c) {
                    quote = Some(c);
                }
            }
        }
        prev = Some(c);
    }
    value
}

/// A value wholly inside one pair of matching quotes loses them (`"a ; b"` → `a ; b`).
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            if !inner.contains(q) {
                return inner;
            }
        }
    }
    value
}

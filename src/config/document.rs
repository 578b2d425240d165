//! The INI text as ordered sections of (key, value, origin) entries. Owns the line scan
//! (comments, inline comments, `\` continuations, line numbers, duplicate and syntax errors),
//! the rust-ini parse of the normalised text, and the `STREAMER__SECTION__KEY` environment
//! overrides. Promises: section and key names are lowercase, every entry knows its line or
//! environment variable, and no error message quotes a value.

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
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

#[derive(Default)]
pub(crate) struct Document {
    pub sections: Vec<Section>,
}

struct ScannedSection {
    name: String,
    line: usize,
    /// (lowercase key, key as written, line)
    keys: Vec<(String, String, usize)>,
}

struct Scan {
    /// one line per line of the input: `[section]`, `key=value` or empty
    normalized: String,
    sections: Vec<ScannedSection>,
}

impl Document {
    /// Parse INI text. Syntax errors name the line (and the section and previous key).
    pub fn parse(text: &str) -> Result<Document> {
        let scan = scan(text)?;
        let opt = ini::ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            enabled_indented_mutiline_value: false,
            enabled_preserve_key_leading_whitespace: false,
        };
        let parsed = ini::Ini::load_from_str_opt(&scan.normalized, opt)
            .map_err(|e| Error::Config(format!("syntax error at line {}: {}", e.line, e.msg)))?;

        let mut sections = Vec::with_capacity(scan.sections.len());
        for s in scan.sections {
            let props = parsed.section(Some(s.name.as_str()));
            let mut entries = Vec::with_capacity(s.keys.len());
            for (key, written, line) in s.keys {
                let Some(value) = props.and_then(|p| p.get(&key)) else {
                    return Err(Error::Config(format!(
                        "syntax error at line {line} in [{}]: cannot read key {written}",
                        s.name
                    )));
                };
                entries.push(Entry {
                    key,
                    written,
                    value: unquote(value).to_string(),
                    origin: Origin::Line(line),
                });
            }
            if props.map_or(0, |p| p.len()) != entries.len() {
                return Err(Error::Config(format!(
                    "syntax error in [{}] (section at line {}): cannot split its lines into keys and values",
                    s.name, s.line
                )));
            }
            sections.push(Section {
                name: s.name,
                origin: Origin::Line(s.line),
                entries,
            });
        }
        if parsed
            .section(None::<String>)
            .is_some_and(|p| !p.is_empty())
        {
            return Err(Error::Config(
                "syntax error: a key outside any [section]".to_string(),
            ));
        }
        Ok(Document { sections })
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.section(section).and_then(|s| s.get(key))
    }

    /// Apply every `STREAMER__SECTION__KEY=value` of `env` (in name order). The section must
    /// be known; the key is matched case-insensitively, and `_` stands for `.` when no key
    /// matches exactly (see [`Document::resolve_env_key`]). A key not in the file is added.
    pub fn apply_env(&mut self, env: &[(String, String)]) -> Result<()> {
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

fn syntax(line: usize, section: Option<&ScannedSection>, what: &str) -> Error {
    let place = match section {
        None => String::from(" (before any [section])"),
        Some(s) => match s.keys.last() {
            Some((_, key, _)) => format!(" in [{}] after key {key}", s.name),
            None => format!(" in [{}]", s.name),
        },
    };
    Error::Config(format!("syntax error at line {line}{place}: {what}"))
}

/// Read the text line by line: drop comments (whole-line and inline), join `\` continuations,
/// record each section and key with its line, reject duplicates and malformed lines, and
/// write a normalised copy (same line count) for rust-ini.
fn scan(text: &str) -> Result<Scan> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut sections: Vec<ScannedSection> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let mut logical = lines[i].to_string();
        i += 1;
        let trimmed = logical.trim();
        if trimmed.is_empty() || trimmed.starts_with([';', '#']) {
            out.push('\n');
            continue;
        }
        if logical.contains('\r') {
            return Err(syntax(
                lineno,
                sections.last(),
                "stray carriage return inside the line",
            ));
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(end) = header.find(']') else {
                return Err(syntax(
                    lineno,
                    sections.last(),
                    "section header without a closing `]`",
                ));
            };
            let name = header[..end].trim().to_lowercase();
            let rest = header[end + 1..].trim_start();
            if !rest.is_empty() && !rest.starts_with([';', '#']) {
                return Err(syntax(
                    lineno,
                    sections.last(),
                    "text after the section header",
                ));
            }
            if name.is_empty() || name.contains(['[', '\\']) {
                return Err(syntax(lineno, sections.last(), "bad section name"));
            }
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err(Error::Config(format!(
                    "[{name}] (line {lineno}): duplicate section, first at line {}",
                    first.line
                )));
            }
            out.push('[');
            out.push_str(&name);
            out.push_str("]\n");
            sections.push(ScannedSection {
                name,
                line: lineno,
                keys: Vec::new(),
            });
            continue;
        }
        let mut continued = 0;
        while logical.ends_with('\\') && i < lines.len() {
            logical.pop();
            logical.push_str(lines[i]);
            i += 1;
            continued += 1;
        }
        let Some(pos) = logical.find(['=', ':']) else {
            return Err(syntax(
                lineno,
                sections.last(),
                "expected `key = value`, a `[section]` header or a comment",
            ));
        };
        let written = logical[..pos].trim().to_string();
        if written.is_empty() {
            return Err(syntax(lineno, sections.last(), "missing key before `=`"));
        }
        let key = written.to_lowercase();
        let Some(section) = sections.last_mut() else {
            return Err(Error::Config(format!(
                "{written} (line {lineno}): key outside any section; put it under a [section] header"
            )));
        };
        if let Some((_, _, first)) = section.keys.iter().find(|(k, _, _)| *k == key) {
            return Err(Error::Config(format!(
                "[{}] {written} (line {lineno}): duplicate key, first at line {first}",
                section.name
            )));
        }
        let value = strip_inline_comment(&logical[pos + 1..]).trim();
        out.push_str(&key);
        out.push('=');
        out.push_str(value);
        if value.ends_with('\\') {
            // keep rust-ini from reading `\` + newline as a continuation
            out.push(' ');
        }
        out.push('\n');
        for _ in 0..continued {
            out.push('\n');
        }
        section.keys.push((key, written, lineno));
    }
    Ok(Scan {
        normalized: out,
        sections,
    })
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

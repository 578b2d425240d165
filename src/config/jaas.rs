//! Reads a Kafka `sasl.jaas.config` value (PlainLoginModule or ScramLoginModule) into the
//! username and password librdkafka wants. Errors are fixed reasons: they never quote the input.

/// The login modules librdkafka can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginModule {
    Plain,
    Scram,
}

/// A parsed JAAS entry. Deliberately not Debug: it holds the password.
pub(crate) struct Jaas {
    pub module: LoginModule,
    pub username: String,
    pub password: String,
}

/// Parse `<class> <flag> name="value" ... ;`. Values may be double- or single-quoted (a
/// backslash escapes the next character) or bare words; options other than `username` and
/// `password` are ignored; the closing `;` is optional.
pub(crate) fn parse(text: &str) -> Result<Jaas, &'static str> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    skip_ws(&chars, &mut i);
    let class = word(&chars, &mut i);
    if class.is_empty() {
        return Err("the value is empty");
    }
    let module = match class.rsplit('.').next() {
        Some("PlainLoginModule") => LoginModule::Plain,
        Some("ScramLoginModule") => LoginModule::Scram,
        _ => return Err("unsupported login module (only PlainLoginModule and ScramLoginModule)"),
    };
    skip_ws(&chars, &mut i);
    let flag = word(&chars, &mut i);
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err("expected the control flag `required` after the login module");
    }
    let mut username: Option<String> = None;
    let mut password: Option<String> = None;
    loop {
        skip_ws(&chars, &mut i);
        let Some(&c) = chars.get(i) else { break };
        if c == ';' {
            i += 1;
            skip_ws(&chars, &mut i);
            if i < chars.len() {
                return Err("text after the closing `;` (only one login module is supported)");
            }
            break;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != ';' {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            return Err("expected an option name");
        }
        skip_ws(&chars, &mut i);
        if chars.get(i) != Some(&'=') {
            return Err("expected `=` after an option name");
        }
        i += 1;
        skip_ws(&chars, &mut i);
        let value = match chars.get(i) {
            Some(&q) if q == '"' || q == '\'' => quoted(&chars, &mut i, q)?,
            _ => {
                let v = word(&chars, &mut i);
                if v.is_empty() {
                    return Err("an option without a value");
                }
                if v.contains(['"', '\'']) {
                    return Err("a stray quote in an unquoted value");
                }
                v
            }
        };
        let slot = match name.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err("username or password given twice");
        }
    }
    let username = username.ok_or("no username option")?;
    let password = password.ok_or("no password option")?;
    if username.is_empty() {
        return Err("empty username");
    }
    Ok(Jaas {
        module,
        username,
        password,
    })
}

fn skip_ws(chars: &[char], i: &mut usize) {
    while *i < chars.len() && chars[*i].is_whitespace() {
        *i += 1;
    }
}

/// A bare word: up to whitespace or `;`.
fn word(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != ';' {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

/// A quoted value starting at the quote `q` at `*i`; leaves `*i` after the closing quote.
fn quoted(chars: &[char], i: &mut usize, q: char) -> Result<String, &'static str> {
    let mut out = String::new();
    *i += 1;
    while let Some(&c) = chars.get(*i) {
        *i += 1;
        if c == q {
            return Ok(out);
        }
        if c == '\\' {
            match chars.get(*i) {
                Some(&next) => {
                    out.push(next);
                    *i += 1;
                }
                None => break,
            }
        } else {
            out.push(c);
        }
    }
    Err("unterminated quoted value")
}

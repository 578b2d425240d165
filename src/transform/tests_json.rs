//! Unit tests of the transform's JSON parser: the same inputs accepted and rejected as
//! `serde_json::from_str::<Value>`, and the same compact text as `serde_json::to_string`
//! except that number text is kept exactly as received.

use super::json::{parse, skip_plain, Json};
use std::borrow::Cow;

/// Whether serde_json accepts `text`, and its compact re-serialisation.
fn serde(text: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .map(|v| v.to_string())
}

/// serde_json's number normalisation (`E` -> `e`, exponent sign made explicit) applied to
/// compact JSON text, so our exact-text output can be compared with serde_json's.
fn normalise_exponents(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len());
    let (mut in_string, mut escaped, mut in_number) = (false, false, false);
    let mut chars = compact.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '-' | '0'..='9' if !in_number => in_number = true,
            '0'..='9' | '.' | '+' | '-' => {}
            'e' | 'E' if in_number => {
                out.push('e');
                if !matches!(chars.peek(), Some('+' | '-')) {
                    out.push('+');
                }
                continue;
            }
            _ => in_number = false,
        }
        out.push(c);
    }
    out
}

fn check_same_as_serde(text: &str) {
    let ours = parse(text);
    match (&ours, serde(text)) {
        (Ok(value), Some(expected)) => {
            assert_eq!(
                normalise_exponents(&value.to_compact()),
                expected,
                "{text:?}"
            );
        }
        (Err(_), None) => {}
        (ours, theirs) => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
    }
}

#[test]
fn tricky_inputs_match_serde_json() {
    let cases = [
        "{}",
        "[]",
        " {} ",
        "\t\n\r{}\n",
        "{} x",
        "{},",
        "",
        " ",
        "{",
        "}",
        "[",
        "[1,]",
        "[,1]",
        "{,}",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{"a":}"#,
        r#"{a:1}"#,
        r#"{'a':1}"#,
        r#"{"a":1 "b":2}"#,
        "0",
        "-0",
        "01",
        "-01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "1E-0",
        "1.5e3",
        "0.0e00",
        "-0.0",
        "1.50",
        "123456789012345678901234567890.000000000000001e-999999",
        "NaN",
        "Infinity",
        "-Infinity",
        "true",
        "tru",
        "truex",
        "nul",
        "null",
        "false ",
        "[true,false,null]",
        r#""""#,
        r#""abc"#,
        r#""a\"b""#,
        r#""\/""#,
        r#""\x""#,
        r#""\u00e9""#,
        r#""\u00E9""#,
        r#""\u12""#,
        r#""\u12g4""#,
        r#""\ud83d\udc8d""#,
        r#""\ud83d""#,
        r#""\ud83dx""#,
        r#""\ud83d\n""#,
        r#""\ud83d\u0041""#,
        r#""\udc8d""#,
        r#""\ud83d\ud83d\udc8d""#,
        r#""\u0000""#,
        "\"a\u{1}b\"",
        "\"a\u{7f}b\"",
        "\"tab\tin\"",
        "\"é💍\"",
        "\u{feff}{}",
        "{\"a\":1}\u{0}",
        "\u{a0}{}",
        r#"{"a":{"b":[1,{"c":null}]}}"#,
        r#"[1,[2,[3,[4]]]]"#,
        r#"{"a":1,"b":2,"a":3}"#,
        r#"{"a":{"x":1},"a":{"y":2}}"#,
        r#"{"":0}"#,
        r#"{"\u0061":1,"a":2}"#,
        r#"{"k":"\b\f\n\r\t\u0001\u001f\u007f\"\\"}"#,
    ];
    for text in cases {
        check_same_as_serde(text);
    }
}

#[test]
fn nesting_limit_matches_serde_json() {
    for depth in [1, 2, 126, 127, 128, 129, 500, 100_000] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let ours = parse(&text).is_ok();
            assert_eq!(ours, serde(&text).is_some(), "depth {depth} {open}");
            assert_eq!(ours, depth <= 127, "depth {depth}");
        }
    }
}

#[test]
fn every_control_character_is_written_like_serde_json() {
    let all: String = (0u32..0x80).filter_map(char::from_u32).collect();
    let value = serde_json::Value::String(all.clone());
    let text = value.to_string();
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed, Json::String(Cow::Owned(all)));
    assert_eq!(parsed.to_compact(), text);
}

#[test]
fn strings_without_escapes_are_borrowed() {
    match parse(r#"{"key":"value"}"#).unwrap() {
        Json::Object(members) => {
            assert!(matches!(members[0].0, Cow::Borrowed("key")));
            assert!(matches!(members[0].1, Json::String(Cow::Borrowed("value"))));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(r#""a\nb""#).unwrap(),
        Json::String(Cow::Owned(_))
    ));
}

#[test]
fn numbers_keep_their_text() {
    for text in [
        "0",
        "-0",
        "1.50",
        "1e3",
        "1E3",
        "1e+3",
        "-2.5E-3",
        "100000000000000000000000",
    ] {
        assert_eq!(parse(text).unwrap(), Json::Number(text));
        assert_eq!(
            parse(&format!("[ {text} ]")).unwrap().to_compact(),
            format!("[{text}]")
        );
    }
}

#[test]
fn repeated_keys_keep_first_position_and_last_value() {
    let text = r#"{"b":1,"a":2,"b":3,"c":{"x":1,"x":[2]}}"#;
    assert_eq!(
        parse(text).unwrap().to_compact(),
        r#"{"b":3,"a":2,"c":{"x":[2]}}"#
    );
    check_same_as_serde(text);
    // the large-object path (more than 16 members)
    let mut members: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
    members.push(r#""k7":"last""#.to_owned());
    members.push(r#""k\u0030":"zero""#.to_owned());
    check_same_as_serde(&format!("{{{}}}", members.join(",")));
}

/// Deterministic xorshift so the differential test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: [&str; 40] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\"",
    "\\",
    "\"a\"",
    "\"k\"",
    "\"\\u00e9\"",
    "\"\\ud83d\\udc8d\"",
    "\\u",
    "\\ud83d",
    "\\udc8d",
    "d83d",
    "0",
    "1",
    "-",
    ".",
    "e",
    "E",
    "+",
    "12.5",
    "1e3",
    "-0.0E-2",
    "true",
    "false",
    "null",
    "tru",
    "é",
    "💍",
    "\t",
    "\u{1}",
    "\"a\":1",
    "\"option\":[{\"x\":1}]",
    "00",
    "\"\\/\\b\"",
];

#[test]
fn random_inputs_match_serde_json() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        r#"{"id":"e1","time_stamp":1591266092,"option":[{"option_label":"alloy","value_id":1.50}],"x":[true,null,-1e3]}"#,
        r#"{"a":{"b":{"c":[1,2,{"d":"\u00e9\n"}]}},"a":"\ud83d\udc8d"}"#,
        r#"[{"k":"v","k":-0.5E+2},"s",3]"#,
    ];
    let mut accepted = 0;
    for round in 0..60_000 {
        let mut text = if round % 4 == 0 {
            String::new()
        } else {
            seeds[rng.below(seeds.len())].to_owned()
        };
        for _ in 0..1 + rng.below(6) {
            let piece = PIECES[rng.below(PIECES.len())];
            let boundaries: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            let at = boundaries[rng.below(boundaries.len())];
            if rng.below(3) == 0 && at < text.len() {
                // delete one character
                let end = (at + 1..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                text.replace_range(at..end, "");
            } else {
                text.insert_str(at, piece);
            }
        }
        if parse(&text).is_ok() {
            accepted += 1;
        }
        check_same_as_serde(&text);
    }
    // the test is only meaningful if both outcomes occur often
    assert!(accepted > 1_000 && accepted < 59_000, "{accepted}");
}

#[test]
fn skip_plain_finds_the_first_special_byte() {
    let mut rng = Rng(42);
    let alphabet = [
        b'a', b'"', b'\\', 0x00, 0x1F, 0x20, 0x7F, 0x80, 0xFF, 0xE9, b'!', b'#', b']',
    ];
    for _ in 0..20_000 {
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(4) == 0 {
                    alphabet[rng.below(alphabet.len())]
                } else {
                    b'x'
                }
            })
            .collect();
        let from = rng.below(len + 1);
        let naive = (from..len)
            .find(|&i| matches!(bytes[i], b'"' | b'\\' | 0x00..=0x1F))
            .unwrap_or(len);
        assert_eq!(skip_plain(&bytes, from), naive, "{bytes:?} from {from}");
    }
}

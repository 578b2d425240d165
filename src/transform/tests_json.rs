//! Unit tests of the transform's JSON layer on serde_json: the same inputs accepted and
//! rejected as `serde_json::from_str::<Value>`, the same values (number text kept exactly
//! as received), compact text for objects and arrays, and U+0000 detection.

use super::json::{compact, parse, Field, Slots, Top};
use super::tests::{dead_bytes, event, ok};
use super::DeadReason;
use serde_json::Value;
use std::borrow::Cow;

/// The keys a probe keeps; every other key is only validated.
const KEPT: [&str; 8] = ["a", "b", "k", "x", "option", "id", "time_stamp", "s"];

#[derive(Default, Debug)]
struct Probe<'a>([Option<Field<'a>>; 8]);

impl<'a> Slots<'a> for Probe<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Field<'a>>> {
        let at = KEPT.iter().position(|k| *k == key)?;
        self.0.get_mut(at)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn value_holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(value_holds_nul),
        Value::Object(members) => members
            .iter()
            .any(|(k, v)| k.contains('\0') || value_holds_nul(v)),
        _ => false,
    }
}

/// `field` is what serde_json's `Value` makes of the same text.
fn check_field(text: &str, name: &str, field: &Field<'_>, value: &Value) {
    let context = format!("{text:?} `{name}`: {field:?} vs {value:?}");
    match (field, value) {
        (Field::Null, Value::Null) => {}
        (Field::Bool(a), Value::Bool(b)) => assert_eq!(a, b, "{context}"),
        (Field::String(a), Value::String(b)) => assert_eq!(a, b, "{context}"),
        (Field::Number(t), Value::Number(_)) => {
            assert_eq!(serde_json::from_str::<Value>(t).ok().as_ref(), Some(value));
            assert!(text.contains(t), "{context}");
        }
        (
            Field::Nested {
                compact: c,
                nul,
                array,
            },
            Value::Array(_) | Value::Object(_),
        ) => {
            assert_eq!(
                serde_json::from_str::<Value>(c).ok().as_ref(),
                Some(value),
                "{context}"
            );
            assert_eq!(*array, value.is_array(), "{context}");
            // `Value` drops an overwritten repeated key, compact text keeps it (and its NUL)
            let repeated_nul = *nul && c.contains("\\u0000");
            assert!(*nul == value_holds_nul(value) || repeated_nul, "{context}");
            // compact text is a fixed point: no whitespace left, strings already canonical
            assert_eq!(compact(c).unwrap(), (c.clone(), *nul), "{context}");
        }
        _ => panic!("{context}"),
    }
}

fn check_same_as_serde(text: &str) {
    let ours = parse::<Probe<'_>>(text);
    let theirs = serde_json::from_str::<Value>(text);
    match (&ours, &theirs) {
        (Ok(Top::Object(probe)), Ok(Value::Object(members))) => {
            for (name, field) in KEPT.iter().zip(&probe.0) {
                match (field, members.get(*name)) {
                    (None, None) => {}
                    (Some(field), Some(value)) => check_field(text, name, field, value),
                    (field, value) => panic!("{text:?} `{name}`: {field:?} vs {value:?}"),
                }
            }
        }
        (Ok(Top::Other(kind)), Ok(value)) if !value.is_object() => {
            assert_eq!(*kind, kind_of(value), "{text:?}");
        }
        (Err(_), Err(_)) => {}
        _ => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
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
        r#"{"a":01}"#,
        r#"{"a":-01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":-}"#,
        r#"{"a":+1}"#,
        r#"{"a":1e}"#,
        r#"{"a":1e+}"#,
        r#"{"a":1E-0,"b":1.5e3,"k":0.0e00,"x":-0.0,"s":1.50}"#,
        r#"{"a":123456789012345678901234567890.000000000000001e-999999}"#,
        r#"{"u":123456789012345678901234567890.000000000000001e-999999}"#,
        r#"{"a":NaN}"#,
        r#"{"a":Infinity}"#,
        r#"{"a":tru}"#,
        r#"{"a":truex}"#,
        r#"{"a":nul}"#,
        r#"{"a":[true,false,null]}"#,
        r#"{"a":"","b":"abc"}"#,
        r#"{"a":"abc}"#,
        r#"{"a":"a\"b","b":"\/"}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u00e9","b":"\u00E9"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\u12g4"}"#,
        r#"{"a":"\ud83d\udc8d"}"#,
        r#"{"a":"\ud83d"}"#,
        r#"{"u":"\ud83d"}"#,
        r#"{"a":["\ud83d"]}"#,
        r#"{"u":["\ud83d"]}"#,
        r#"{"\ud83d":1}"#,
        r#"{"a":{"\ud83d":1}}"#,
        r#"{"a":"\ud83dx"}"#,
        r#"{"a":"\ud83d\n"}"#,
        r#"{"a":"\ud83d\u0041"}"#,
        r#"{"a":"\udc8d"}"#,
        r#"{"a":"\ud83d\ud83d\udc8d"}"#,
        r#"{"a":"\u0000","b":["\u0000"],"k":{"\u0000":1}}"#,
        "{\"a\":\"a\u{1}b\"}",
        "{\"a\":[\"a\u{1}b\"]}",
        "{\"u\":\"a\u{1}b\"}",
        "{\"a\":\"a\u{7f}b\"}",
        "{\"a\":\"tab\tin\"}",
        "{\"a\":\"é💍\"}",
        "\u{feff}{}",
        "{\"a\":1}\u{0}",
        "\u{a0}{}",
        r#"{"a":{"b":[1,{"c":null}]}}"#,
        r#"{"a":[1,[2,[3,[4]]]]}"#,
        r#"{"a":1,"b":2,"a":3}"#,
        r#"{"a":{"x":1},"a":{"y":2}}"#,
        r#"{"a":"\ud83d","a":1}"#,
        r#"{"":0}"#,
        r#"{"\u0061":1,"a":2}"#,
        r#"{"a":2,"\u0061":1}"#,
        r#"{"k":"\b\f\n\r\t\u0001\u001f\u007f\"\\"}"#,
        r#"{"option":[ {"z" : 1.50 , "a":[ ] } , "\u00e9" ]}"#,
        "0",
        "-0",
        "-1.5e3",
        "01",
        "true",
        "null",
        r#""x""#,
        r#""\ud83d""#,
        "[1,{\"a\":[]}]",
    ];
    for text in cases {
        check_same_as_serde(text);
    }
}

#[test]
fn nesting_limit_is_serde_jsons() {
    for depth in [1, 2, 125, 126, 127, 128, 129, 500, 100_000] {
        let nest =
            |open: &str, close: &str| format!("{}1{}", open.repeat(depth), close.repeat(depth));
        for (open, close) in [("[", "]"), ("{\"u\":", "}")] {
            // at the top level and in an ignored field: exactly serde_json's limit (127)
            let top = nest(open, close);
            check_same_as_serde(&top);
            assert_eq!(parse::<Probe<'_>>(&top).is_ok(), depth <= 127, "{depth}");
            let ignored = format!("{{\"u\":{}}}", nest(open, close));
            check_same_as_serde(&ignored);
            assert_eq!(
                parse::<Probe<'_>>(&ignored).is_ok(),
                depth <= 126,
                "{depth}"
            );
            // a kept field's value is checked on its own text: 127 levels below the top
            let kept = format!("{{\"option\":{}}}", nest(open, close));
            assert_eq!(parse::<Probe<'_>>(&kept).is_ok(), depth <= 127, "{depth}");
        }
    }
}

#[test]
fn compact_strips_whitespace_and_keeps_text() {
    let cases = [
        ("[ ]", "[]"),
        ("{ }", "{}"),
        (" [ 1 , 2 ]\n", "[1,2]"),
        (
            "{ \"z\" :\t1 ,\r\n \"a\" : [ true , null , false ] }",
            r#"{"z":1,"a":[true,null,false]}"#,
        ),
        // numbers verbatim
        (
            "[1.50, 1E3, 1e+3, -0, -2.5E-3]",
            "[1.50,1E3,1e+3,-0,-2.5E-3]",
        ),
        // whitespace inside strings and keys is content
        (r#"{ " a b " : " c , d " }"#, r#"{" a b ":" c , d "}"#),
        // repeated keys are kept as received, in order
        (r#"{"b":1, "a":2, "b":3}"#, r#"{"b":1,"a":2,"b":3}"#),
        // escapes as serde_json writes them
        (r#"["\u00e9\/\u0041", "\u000A\u0009"]"#, r#"["é/A","\n\t"]"#),
        (r#"{"\u0061" : "\ud83d\udc8d"}"#, r#"{"a":"💍"}"#),
        (
            r#"["\"", "\\", "\\\"", "\u007f"]"#,
            "[\"\\\"\",\"\\\\\",\"\\\\\\\"\",\"\u{7f}\"]",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            compact(text).unwrap(),
            (expected.to_owned(), false),
            "{text}"
        );
    }
}

#[test]
fn compact_finds_decoded_nul_only() {
    for (text, nul) in [
        (r#"["\u0000"]"#, true),
        (r#"{"\u0000":1}"#, true),
        (r#"{"k":[{"x":"a\u0000b"}]}"#, true),
        (r#"["\\u0000"]"#, false),
        (r#"["\\\u0000"]"#, true),
        (r#"["u0000", 0]"#, false),
    ] {
        assert_eq!(compact(text).unwrap().1, nul, "{text}");
    }
}

#[test]
fn every_control_character_is_written_like_serde_json() {
    let all: String = (0u32..0x80).filter_map(char::from_u32).collect();
    let canonical = serde_json::to_string(&[&all]).unwrap();
    assert_eq!(compact(&canonical).unwrap(), (canonical.clone(), true));
    // the same text with every character escaped as \uXXXX
    let escaped: String = all
        .chars()
        .map(|c| format!("\\u{:04X}", c as u32))
        .collect();
    assert_eq!(
        compact(&format!("[\"{escaped}\"]")).unwrap(),
        (canonical, true)
    );
}

#[test]
fn strings_without_escapes_are_borrowed() {
    let Ok(Top::Object(probe)) = parse::<Probe<'_>>(r#"{"a":"value","b":"a\nb"}"#) else {
        panic!("not parsed");
    };
    assert!(matches!(
        probe.0[0],
        Some(Field::String(Cow::Borrowed("value")))
    ));
    assert!(matches!(&probe.0[1], Some(Field::String(Cow::Owned(s))) if s == "a\nb"));
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
        "1e400",
    ] {
        let json = format!("{{\"a\": {text} , \"b\":[ {text} ]}}");
        let Ok(Top::Object(probe)) = parse::<Probe<'_>>(&json) else {
            panic!("{json}");
        };
        assert_eq!(probe.0[0], Some(Field::Number(text)));
        assert!(
            matches!(&probe.0[1], Some(Field::Nested { compact, .. }) if *compact == format!("[{text}]"))
        );
    }
}

#[test]
fn repeated_top_level_keys_keep_the_last_value() {
    let text = r#"{"b":1,"a":2,"b":{ "x":1,"x":[2] }}"#;
    let Ok(Top::Object(probe)) = parse::<Probe<'_>>(text) else {
        panic!("{text}");
    };
    assert_eq!(probe.0[0], Some(Field::Number("2")));
    assert_eq!(
        probe.0[1],
        Some(Field::Nested {
            compact: r#"{"x":1,"x":[2]}"#.to_owned(),
            nul: false,
            array: false,
        })
    );
    check_same_as_serde(text);
}

#[test]
fn not_json_detail_is_serde_jsons_message() {
    for text in [
        "abc",
        "{",
        r#"{"id":"e1","time_stamp":1,}"#,
        r#"{"id":"e1","time_stamp":1} x"#,
        r#"{"id":"e1","u":"\ud800","time_stamp":1}"#,
        "[1,",
    ] {
        let expected = serde_json::from_str::<Value>(text).unwrap_err().to_string();
        assert_eq!(dead_bytes(text.as_bytes()).detail, expected, "{text}");
    }
    // a kept field's value is checked on its own: the message names the field
    let r = dead_bytes(event(r#","option":["\ud800"]"#).as_bytes());
    assert_eq!(r.reason, DeadReason::NotJson);
    assert_eq!(
        r.detail,
        "in `option`: unexpected end of hex escape at line 1 column 55"
    );
    let r = dead_bytes(event(r#","ip":"\udc00""#).as_bytes());
    assert_eq!(r.reason, DeadReason::NotJson);
    assert!(r.detail.starts_with("in `ip`: "), "{}", r.detail);
}

#[test]
fn invalid_overwritten_values_still_reject() {
    for extra in [
        r#","ip":"\ud800","ip":"1.2.3.4""#,
        r#","option":[[[["\udc00"]]]],"option":null"#,
    ] {
        assert_eq!(
            dead_bytes(event(extra).as_bytes()).reason,
            DeadReason::NotJson
        );
    }
    // a valid overwritten value holding U+0000 is not stored, so does not reject
    assert_eq!(
        ok(&event(r#","ip":"\u0000","ip":"1.2.3.4""#)).ip(),
        Some("1.2.3.4")
    );
}

#[test]
fn nested_nul_escapes_reject_but_escaped_backslashes_do_not() {
    assert_eq!(
        dead_bytes(event(r#","option":[{"k":"\\\u0000"}]"#).as_bytes()).reason,
        DeadReason::NulCharacter
    );
    assert_eq!(
        ok(&event(r#","option":[{"k":"\\u0000"}]"#)).option(),
        Some(r#"[{"k":"\\u0000"}]"#)
    );
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

const PIECES: [&str; 41] = [
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
    "\\u0000",
];

#[test]
fn random_inputs_match_serde_json() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        r#"{"id":"e1","time_stamp":1591266092,"option":[{"option_label":"alloy","value_id":1.50}],"x":[true,null,-1e3]}"#,
        r#"{"a":{"b":{"c":[1,2,{"d":"\u00e9\n"}]}},"a":"\ud83d\udc8d","u":{"v":[1,"w"]}}"#,
        r#"{"k":{"k":"v","z":-0.5E+2},"s":"s","b":3}"#,
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
        if parse::<Probe<'_>>(&text).is_ok() {
            accepted += 1;
        }
        check_same_as_serde(&text);
    }
    // the test is only meaningful if both outcomes occur often
    assert!(accepted > 1_000 && accepted < 59_000, "{accepted}");
}

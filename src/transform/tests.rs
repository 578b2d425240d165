//! Unit tests of the transform's dead letters (contract §4), `time_stamp`, U+0000 and the keys
//! (contract §5). Expected hashes come from `sha2` directly or from `sha256sum` literals.

use super::*;
use chrono::{NaiveDate, NaiveTime};

/// A minimal valid event with `extra` JSON members appended (`extra` starts with a comma).
pub(super) fn event(extra: &str) -> String {
    format!(r#"{{"id":"e1","time_stamp":1591266092{extra}}}"#)
}

pub(super) fn ok(json: &str) -> Fact {
    match transform(Some(json.as_bytes())) {
        Ok(fact) => fact,
        Err(r) => panic!("rejected {json:?}: {}", r.text()),
    }
}

pub(super) fn dead_bytes(bytes: &[u8]) -> Rejection {
    match transform(Some(bytes)) {
        Ok(fact) => panic!("accepted {bytes:?}: {fact:?}"),
        Err(r) => r,
    }
}

pub(super) fn dead(json: &str) -> DeadReason {
    dead_bytes(json.as_bytes()).reason
}

/// SHA-256 computed here, independently of the transform.
pub(super) fn sha(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tombstone_and_zero_bytes_are_empty_payload() {
    let r = transform(None).unwrap_err();
    assert_eq!(r.reason, DeadReason::EmptyPayload);
    assert_eq!(r.reason.code(), "empty_payload");
    assert_eq!(dead_bytes(b"").reason, DeadReason::EmptyPayload);
}

#[test]
fn invalid_utf8_is_not_utf8_even_when_also_not_json() {
    assert_eq!(dead_bytes(b"\xff\xfe").reason, DeadReason::NotUtf8);
    let mut bytes = event("").into_bytes();
    bytes.splice(7..7, [0xC3u8, 0x28]); // inside the "e1" string
    assert_eq!(dead_bytes(&bytes).reason, DeadReason::NotUtf8);
    // a lone surrogate encoded in UTF-8 (CESU) is not UTF-8 either
    assert_eq!(
        dead_bytes(b"{\"id\":\"\xed\xa0\x80\"}").reason,
        DeadReason::NotUtf8
    );
}

#[test]
fn not_json() {
    for text in [
        "abc",
        "{",
        " ",
        r#"{"id":"e1","time_stamp":1,}"#,
        r#"{"id":"e1","time_stamp":1} x"#,
        r#"{'id':'e1'}"#,
        "{\"id\":\"a\tb\",\"time_stamp\":1}", // raw control character in a string
        "\u{feff}{\"id\":\"e1\",\"time_stamp\":1}", // byte order mark
        r#"{"id":"e1","time_stamp":NaN}"#,
    ] {
        let r = dead_bytes(text.as_bytes());
        assert_eq!(r.reason, DeadReason::NotJson, "{text:?}");
        assert!(!r.detail.is_empty());
    }
}

#[test]
fn deep_nesting_is_not_json_and_does_not_overflow_the_stack() {
    let deep = format!(
        r#"{{"id":"e1","time_stamp":1,"x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(dead(&deep), DeadReason::NotJson);
}

#[test]
fn not_an_object() {
    for text in [
        "[]",
        r#"[{"id":"e1","time_stamp":1}]"#,
        "1",
        "-1.5",
        r#""id""#,
        "true",
        "null",
    ] {
        let r = dead_bytes(text.as_bytes());
        assert_eq!(r.reason, DeadReason::NotObject, "{text:?}");
        assert!(r.text().starts_with("not_object: top-level JSON value is "));
    }
}

#[test]
fn missing_id() {
    for text in [
        r#"{"time_stamp":1}"#,
        r#"{"id":null,"time_stamp":1}"#,
        r#"{"id":"","time_stamp":1}"#,
        r#"{"id":123,"time_stamp":1}"#,
        r#"{"id":false,"time_stamp":1}"#,
        r#"{"id":["e1"],"time_stamp":1}"#,
        r#"{"id":{"id":"e1"},"time_stamp":1}"#,
        r#"{"ID":"e1","time_stamp":1}"#,
        "{}",
    ] {
        assert_eq!(dead(text), DeadReason::MissingId, "{text:?}");
    }
    // id is checked before time_stamp
    assert_eq!(dead(r#"{"id":"","time_stamp":"x"}"#), DeadReason::MissingId);
    assert_eq!(dead(r#"{"id":5}"#).code(), "missing_id");
}

#[test]
fn whitespace_id_is_an_id() {
    assert_eq!(ok(r#"{"id":" ","time_stamp":1}"#).event_id(), " ");
}

#[test]
fn time_stamp_integer_and_digit_string() {
    let date = NaiveDate::from_ymd_opt(2020, 6, 4).unwrap();
    let time = NaiveTime::from_hms_opt(10, 21, 32).unwrap();
    for ts in ["1591266092", r#""1591266092""#, r#""0001591266092""#] {
        let f = ok(&format!(r#"{{"id":"e1","time_stamp":{ts}}}"#));
        assert_eq!(
            (f.time_stamp, f.full_date, f.full_time),
            (1591266092, date, time),
            "{ts}"
        );
    }
}

#[test]
fn time_stamp_negative_and_range_limits() {
    let f = ok(r#"{"id":"e1","time_stamp":-1}"#);
    assert_eq!(f.full_date, NaiveDate::from_ymd_opt(1969, 12, 31).unwrap());
    assert_eq!(f.full_time, NaiveTime::from_hms_opt(23, 59, 59).unwrap());
    let f = ok(r#"{"id":"e1","time_stamp":0}"#);
    assert_eq!(f.full_date, NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
    // -62135596800 and 253402300799 from `date -u -d ... +%s`
    let f = ok(r#"{"id":"e1","time_stamp":-62135596800}"#);
    assert_eq!(f.full_date, NaiveDate::from_ymd_opt(1, 1, 1).unwrap());
    assert_eq!(f.full_time, NaiveTime::from_hms_opt(0, 0, 0).unwrap());
    let f = ok(r#"{"id":"e1","time_stamp":"253402300799"}"#);
    assert_eq!(f.full_date, NaiveDate::from_ymd_opt(9999, 12, 31).unwrap());
    assert_eq!(f.full_time, NaiveTime::from_hms_opt(23, 59, 59).unwrap());
    for ts in [
        "-62135596801",
        "253402300800",
        r#""253402300800""#,
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "100000000000000000000000000000",
        r#""99999999999999999999999999""#,
    ] {
        let r = dead_bytes(format!(r#"{{"id":"e1","time_stamp":{ts}}}"#).as_bytes());
        assert_eq!(r.reason, DeadReason::BadTimeStamp, "{ts}");
        assert!(r.detail.contains("outside years 1-9999"), "{}", r.detail);
    }
}

#[test]
fn time_stamp_not_usable() {
    for ts in [
        "1.5",
        "1591266092.0",
        "1e9",
        "1E9",
        "-0.0",
        r#""""#,
        r#""abc""#,
        r#"" 1""#,
        r#""1 ""#,
        r#""+1""#,
        r#""-1""#,
        r#""1.5""#,
        r#""١٢""#,
        "null",
        "true",
        "[1]",
        r#"{"s":1}"#,
    ] {
        let json = format!(r#"{{"id":"e1","time_stamp":{ts}}}"#);
        assert_eq!(dead(&json), DeadReason::BadTimeStamp, "{ts}");
    }
    let r = dead_bytes(br#"{"id":"e1"}"#);
    assert_eq!(r.text(), "bad_time_stamp: time_stamp is absent");
    let r = dead_bytes(br#"{"id":"e1","time_stamp":"abc"}"#);
    assert_eq!(
        r.text(),
        "bad_time_stamp: time_stamp \"abc\" is not epoch seconds"
    );
    let r = dead_bytes(br#"{"id":"e1","time_stamp":1.5}"#);
    assert_eq!(
        r.detail,
        "time_stamp 1.5 is not an integer number of epoch seconds"
    );
    let r = dead_bytes(br#"{"id":"e1","time_stamp":[1]}"#);
    assert_eq!(r.detail, "time_stamp is an array, not epoch seconds");
}

#[test]
fn rejection_detail_is_short_and_storable() {
    let long = "x".repeat(100_000);
    let r = dead_bytes(
        event("")
            .replace("1591266092", &format!("\"{long}\\u0000\""))
            .as_bytes(),
    );
    assert_eq!(r.reason, DeadReason::BadTimeStamp);
    assert!(r.detail.len() < 120, "{}", r.detail);
    let r = dead_bytes(br#"{"id":"e1","time_stamp":"\u0000"}"#);
    assert_eq!(r.reason, DeadReason::BadTimeStamp);
    assert!(!r.text().contains('\0'));
    assert_eq!(r.detail, r#"time_stamp "\0" is not epoch seconds"#);
    let huge_number = "9".repeat(10_000);
    let r = dead_bytes(format!(r#"{{"id":"e1","time_stamp":{huge_number}}}"#).as_bytes());
    assert!(r.detail.len() < 120, "{}", r.detail);
}

#[test]
fn nul_in_stored_fields_is_a_dead_letter() {
    for extra in [
        r#","_id":"a\u0000b""#,
        r#","ip":"1.2.3.4\u0000""#,
        r#","user_agent":"\u0000""#,
        r#","product_id":"p\u0000""#,
        r#","option":[{"option_label":"a\u0000"}]"#,
        r#","option":[{"a\u0000":"b"}]"#,
        r#","option":"\u0000""#,
        r#","resolution":"\u0000""#,
        r#","collection":{"k":["\u0000"]}"#,
        r#","current_url":"https://x.de/\u0000""#,
        r#","email_address":"a@b\u0000""#,
        r#","utm_medium":"\u0000""#,
        r#","referrer_url":"https://x\u0000y.de/""#,
    ] {
        let r = dead_bytes(event(extra).as_bytes());
        assert_eq!(r.reason, DeadReason::NulCharacter, "{extra}");
        assert_eq!(r.reason.code(), "nul_character");
    }
    assert_eq!(
        dead(r#"{"id":"e\u0000","time_stamp":1}"#),
        DeadReason::NulCharacter
    );
}

#[test]
fn nul_checks_come_after_id_and_time_stamp() {
    assert_eq!(
        dead(r#"{"id":"e\u0000","time_stamp":"x"}"#),
        DeadReason::BadTimeStamp
    );
    assert_eq!(
        dead(r#"{"_id":"\u0000","time_stamp":1}"#),
        DeadReason::MissingId
    );
}

#[test]
fn nul_outside_stored_text_is_accepted() {
    // unknown fields are not stored
    ok(&event(r#","unknown":"\u0000""#));
    // only the host of referrer_url is stored
    assert_eq!(
        ok(&event(r#","referrer_url":"https://x.de/a\u0000""#)).referrer_url(),
        Some("x.de")
    );
    // an escaped backslash followed by u0000 is six ordinary characters
    assert_eq!(
        ok(&event(r#","resolution":"\\u0000""#)).resolution(),
        Some("\\u0000")
    );
}

#[test]
fn sha256_literals_from_sha256sum() {
    // printf '%s' '' | sha256sum ; printf '%s' 'abc' | sha256sum
    assert_eq!(
        sha256_hex(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let id = "aea4b823-c5c6-485e-8b3b-6182a7c4ecce";
    // printf '%s' 'aea4b823-c5c6-485e-8b3b-6182a7c4ecce85123' | sha256sum
    let f = ok(&format!(
        r#"{{"id":"{id}","time_stamp":1,"product_id":"85123","ip":"37.170.17.183"}}"#
    ));
    assert_eq!(
        f.sales_key(),
        "aa9b52790bd2c11b794411dd27eb648bff6903e40f9832214e627b9052cefd33"
    );
    let g = ok(&format!(
        r#"{{"id":"{id}","time_stamp":1,"product_id":85123}}"#
    ));
    assert_eq!(g.sales_key(), f.sales_key());
    // printf '%s' 'aea4b823-c5c6-485e-8b3b-6182a7c4ecce' | sha256sum
    let h = ok(&format!(r#"{{"id":"{id}","time_stamp":1}}"#));
    assert_eq!(
        h.sales_key(),
        "533d41cf10fad2863a40a30d89f693bd9620a9dfb4cb0af7c00957d255c04b83"
    );
    // printf '%s' '37.170.17.183' | sha256sum
    assert_eq!(
        f.ip_key(),
        Some("5b72fca199dab069f1e8c148eb12462908418bddc99820d62e555d843dbdb05f")
    );
}

#[test]
fn sales_key_and_product_key() {
    let cases: [(&str, &str, Option<&str>); 9] = [
        ("", "e1", None),
        (r#","product_id":null"#, "e1", None),
        (r#","product_id":"""#, "e1", None),
        (r#","product_id":"110474""#, "e1110474", Some("110474")),
        (r#","product_id":110474"#, "e1110474", Some("110474")),
        (r#","product_id":1.50"#, "e11.50", Some("1.50")),
        (r#","product_id":true"#, "e1true", Some("true")),
        (
            r#","product_id":[1, {"b":2,"a":1}]"#,
            r#"e1[1,{"b":2,"a":1}]"#,
            Some(r#"[1,{"b":2,"a":1}]"#),
        ),
        (r#","product_id":" 7 ""#, "e1 7 ", Some(" 7 ")),
    ];
    for (extra, hashed, product_key) in cases {
        let f = ok(&event(extra));
        assert_eq!(f.sales_key(), sha(hashed), "{extra}");
        assert_eq!(f.product_key(), product_key, "{extra}");
        assert_eq!(f.sales_key().len(), 64);
        assert!(f
            .sales_key()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }
}

#[test]
fn ip_and_user_agent_keys() {
    for extra in [
        "",
        r#","ip":null,"user_agent":null"#,
        r#","ip":"","user_agent":"""#,
    ] {
        let f = ok(&event(extra));
        assert_eq!(
            (f.ip(), f.ip_key(), f.user_agent(), f.user_agent_key()),
            (None, None, None, None),
            "{extra}"
        );
    }
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/83.0.4103.61 Safari/537.36";
    let f = ok(&event(&format!(
        r#","ip":"2001:db8::1","user_agent":"{ua}""#
    )));
    assert_eq!(f.ip(), Some("2001:db8::1"));
    assert_eq!(f.ip_key(), Some(sha("2001:db8::1").as_str()));
    assert_eq!(f.user_agent(), Some(ua));
    assert_eq!(f.user_agent_key(), Some(sha(ua).as_str()));
    // a number where a string is expected hashes its JSON text
    let f = ok(&event(r#","ip":1234,"user_agent":false"#));
    assert_eq!(
        (f.ip(), f.ip_key()),
        (Some("1234"), Some(sha("1234").as_str()))
    );
    assert_eq!(
        (f.user_agent(), f.user_agent_key()),
        (Some("false"), Some(sha("false").as_str()))
    );
    // whitespace is not trimmed: " " is a (bad) address, still keyed
    assert_eq!(ok(&event(r#","ip":" ""#)).ip_key(), Some(sha(" ").as_str()));
}

/// A JSON string member of `field` holding `len` bytes of `c`, for the limit tests.
fn member(field: &str, len: usize) -> String {
    let value = match field {
        "current_url" => format!("https://www.glamira.de/{}", "a".repeat(len - 23)),
        "referrer_url" => format!("https://{}/path", "h".repeat(len)),
        _ => "x".repeat(len),
    };
    format!(r#","{field}":"{value}""#)
}

#[test]
fn every_limit_accepts_its_length_and_rejects_one_more() {
    for (field, limit) in LIMITS {
        let json = |len: usize| {
            if field == "id" {
                format!(r#"{{"id":"{}","time_stamp":1}}"#, "i".repeat(len))
            } else {
                event(&member(field, len))
            }
        };
        let at = ok(&json(limit));
        let stored = match field {
            "id" => Some(at.event_id()),
            "product_id" => at.product_key(),
            "ip" => at.ip(),
            "user_agent" => at.user_agent(),
            "store_id" => at.store_id(),
            "current_url" => at.current_url(),
            "referrer_url" => at.referrer_url(),
            other => panic!("no accessor for {other}"),
        };
        assert_eq!(stored.map(str::len), Some(limit), "{field}");
        let r = dead_bytes(json(limit + 1).as_bytes());
        assert_eq!(r.reason, DeadReason::TooLong, "{field}");
        assert_eq!(r.reason.code(), "too_long");
        assert_eq!(
            r.text(),
            format!(
                "too_long: `{field}` is {} bytes, longer than its limit of {limit} bytes",
                limit + 1
            )
        );
    }
}

#[test]
fn limits_count_bytes_and_apply_to_numbers_and_nested_values() {
    // 128 two-byte characters: 256 bytes, one past the limit of 255
    let r = dead_bytes(event(&format!(r#","store_id":"{}""#, "é".repeat(128))).as_bytes());
    assert_eq!(r.reason, DeadReason::TooLong);
    ok(&event(&format!(r#","store_id":"{}x""#, "é".repeat(127))));
    let digits = "7".repeat(256);
    let r = dead_bytes(event(&format!(r#","product_id":{digits}"#)).as_bytes());
    assert!(
        r.detail.contains("`product_id` is 256 bytes"),
        "{}",
        r.detail
    );
    let r = dead_bytes(event(&format!(r#","store_id":["{}"]"#, "s".repeat(260))).as_bytes());
    assert_eq!(r.reason, DeadReason::TooLong);
    // the issue's poison pill
    let r = dead_bytes(event(&format!(r#","product_id":"{}""#, "p".repeat(4000))).as_bytes());
    assert_eq!(
        r.text(),
        "too_long: `product_id` is 4000 bytes, longer than its limit of 255 bytes"
    );
}

#[test]
fn only_the_referrer_host_counts_against_its_limit() {
    // a long path and query are not stored
    let url = format!("https://www.google.com/search?q={}", "q".repeat(5000));
    assert_eq!(
        ok(&event(&format!(r#","referrer_url":"{url}""#))).referrer_url(),
        Some("www.google.com")
    );
}

#[test]
fn fields_without_a_limit_take_long_values() {
    for field in [
        "_id",
        "email_address",
        "utm_source",
        "utm_medium",
        "collection",
    ] {
        ok(&event(&format!(r#","{field}":"{}""#, "v".repeat(10_000))));
    }
    assert_eq!(limit_of("email_address"), None);
}

#[test]
fn key_prefixes_are_the_first_128_bits_of_the_keys_and_sort_as_they_do() {
    let facts: Vec<Fact> = (0..200)
        .map(|i| {
            ok(&format!(
                r#"{{"id":"e{i}","time_stamp":1591266092,"ip":"10.0.{i}.1"}}"#
            ))
        })
        .collect();
    for f in &facts {
        assert_eq!(hex_key_prefix(f.sales_key()), Some(f.key_prefix()));
        assert_eq!(f.ip_key().and_then(hex_key_prefix), f.ip_key_prefix());
        assert!(f.ip_key_prefix().is_some());
    }
    let mut by_text: Vec<&Fact> = facts.iter().collect();
    by_text.sort_by(|a, b| a.sales_key().cmp(b.sales_key()));
    let mut by_prefix: Vec<&Fact> = facts.iter().collect();
    by_prefix.sort_by_key(|f| f.key_prefix());
    assert!(by_text
        .iter()
        .zip(&by_prefix)
        .all(|(a, b)| a.sales_key() == b.sales_key()));
    assert_eq!(ok(&event("")).ip_key_prefix(), None, "no ip, no prefix");
    assert_eq!(hex_key_prefix("not a key"), None);
    assert_eq!(
        hex_key_prefix(&"A".repeat(64)),
        None,
        "uppercase is not our hex"
    );
}

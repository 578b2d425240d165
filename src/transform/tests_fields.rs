//! Unit tests of SPEC 5's text columns, `option`, `referrer_url` hosts, verbatim text and
//! a full realistic event.

use super::tests::{event, ok, sha};
use super::*;
use chrono::{NaiveDate, NaiveTime};

/// The "other text columns" of a fact, in a fixed order.
fn others(f: &Fact) -> [Option<&str>; 15] {
    [
        f.doc_id.as_deref(),
        f.resolution.as_deref(),
        f.user_id_db.as_deref(),
        f.device_id.as_deref(),
        f.api_version.as_deref(),
        f.store_id.as_deref(),
        f.local_time.as_deref(),
        f.show_recommendation.as_deref(),
        f.current_url.as_deref(),
        f.email_address.as_deref(),
        f.recommendation.as_deref(),
        f.utm_source.as_deref(),
        f.utm_medium.as_deref(),
        f.collection.as_deref(),
        f.option.as_deref(),
    ]
}

const OTHER_FIELDS: [&str; 14] = [
    "_id",
    "resolution",
    "user_id_db",
    "device_id",
    "api_version",
    "store_id",
    "local_time",
    "show_recommendation",
    "current_url",
    "email_address",
    "recommendation",
    "utm_source",
    "utm_medium",
    "collection",
];

#[test]
fn other_text_columns_follow_the_text_rule() {
    let cases: [(&str, Option<&str>); 16] = [
        (r#""abc""#, Some("abc")),
        (r#""""#, Some("")),
        ("true", Some("true")),
        ("false", Some("false")),
        ("null", None),
        ("0", Some("0")),
        ("-0", Some("-0")),
        ("1.50", Some("1.50")),
        ("1e3", Some("1e3")),
        ("1E3", Some("1E3")),
        ("-2.5E-3", Some("-2.5E-3")),
        ("1e+3", Some("1e+3")),
        (
            "123456789012345678901234567890",
            Some("123456789012345678901234567890"),
        ),
        (
            r#"{ "z" : 1 , "a" : [ true , null ] }"#,
            Some(r#"{"z":1,"a":[true,null]}"#),
        ),
        ("[ ]", Some("[]")),
        (r#""A\"b\\c\u00e9\n""#, Some("A\"b\\c\u{e9}\n")),
    ];
    for field in OTHER_FIELDS {
        for (json, expected) in cases {
            let f = ok(&event(&format!(r#","{field}":{json}"#)));
            let idx = OTHER_FIELDS.iter().position(|n| *n == field).unwrap();
            assert_eq!(others(&f)[idx], expected, "{field}: {json}");
        }
    }
}

#[test]
fn absent_fields_are_none() {
    let f = ok(&event(""));
    assert!(others(&f).iter().all(Option::is_none));
    assert_eq!(
        (f.ip, f.user_agent, f.product_key, f.referrer_url),
        (None, None, None, None)
    );
    assert_eq!(f.event_id, "e1");
}

#[test]
fn unknown_fields_are_ignored_and_last_duplicate_wins() {
    let f = ok(&event(
        r#","extra":{"deep":[1,2]},"Resolution":"x","utm_source":"a","utm_source":"b""#,
    ));
    assert_eq!(f, ok(&event(r#","utm_source":"b""#)));
    let f = ok(r#"{"id":"first","time_stamp":"x","id":"second","time_stamp":5}"#);
    assert_eq!((f.event_id.as_str(), f.time_stamp), ("second", 5));
}

#[test]
fn option_is_compact_json_in_received_order() {
    let f = ok(&event(
        r#","option": [ {"option_label" : "alloy", "option_id":"6", "value_label":"Gold 585",
        "value_id" : 1.50 } , { "z":null,"b":1e3,"a":false } ]"#,
    ));
    assert_eq!(
        f.option.as_deref(),
        Some(
            r#"[{"option_label":"alloy","option_id":"6","value_label":"Gold 585","value_id":1.50},{"z":null,"b":1e3,"a":false}]"#
        )
    );
    assert_eq!(ok(&event(r#","option":null"#)).option, None);
    assert_eq!(ok(&event(r#","option":[]"#)).option.as_deref(), Some("[]"));
    assert_eq!(ok(&event(r#","option":{}"#)).option.as_deref(), Some("{}"));
    // a scalar option is its JSON text too: a string keeps its quotes
    assert_eq!(
        ok(&event(r#","option":"x""#)).option.as_deref(),
        Some(r#""x""#)
    );
    assert_eq!(
        ok(&event(r#","option":false"#)).option.as_deref(),
        Some("false")
    );
    assert_eq!(
        ok(&event(r#","option":7.0"#)).option.as_deref(),
        Some("7.0")
    );
    // escapes are normalised to compact JSON: \u00e9 is written as é, control chars escaped
    assert_eq!(
        ok(&event(r#","option":["\u00e9\u0001\"\/"]"#))
            .option
            .as_deref(),
        Some("[\"é\\u0001\\\"/\"]")
    );
}

#[test]
fn huge_option_array_is_fine() {
    let item = r#"{"option_label":"size","option_id":"1","value_label":"52","value_id":"2"}"#;
    let items = vec![item; 10_000].join(",");
    let f = ok(&event(&format!(r#","option":[{items}]"#)));
    assert_eq!(f.option.as_deref(), Some(format!("[{items}]").as_str()));
}

#[test]
fn unicode_quotes_and_sql_are_verbatim() {
    let texts = [
        "Robert'); DROP TABLE fact_sales;--",
        "' OR '1'='1",
        "\\\"quoted\\\" and 'single'",
        "Zürich 東京 💍 \u{200b} e\u{301}",
        "$$ \\N \\. COPY",
        "tab\there,\"csv\"\r\nline",
    ];
    for text in texts {
        let json_text = serde_json::to_string(text).unwrap();
        let f = ok(&format!(
            r#"{{"id":{json_text},"time_stamp":1,"user_agent":{json_text},"utm_source":{json_text},"product_id":{json_text}}}"#
        ));
        assert_eq!(f.event_id, text);
        assert_eq!(f.user_agent.as_deref(), Some(text));
        assert_eq!(f.user_agent_key, Some(sha(text)));
        assert_eq!(f.utm_source.as_deref(), Some(text));
        assert_eq!(f.product_key.as_deref(), Some(text));
        assert_eq!(f.sales_key, sha(&format!("{text}{text}")));
    }
    // a surrogate pair escape decodes to the emoji
    assert_eq!(
        ok(&event(r#","collection":"\ud83d\udc8d""#))
            .collection
            .as_deref(),
        Some("💍")
    );
}

#[test]
fn referrer_hosts() {
    let cases: [(&str, Option<&str>); 30] = [
        ("https://www.google.com/", Some("www.google.com")),
        (
            "https://www.glamira.de/glamira-ring.html?alloy=white#top",
            Some("www.glamira.de"),
        ),
        ("HTTP://WWW.Glamira.CO.UK", Some("www.glamira.co.uk")),
        ("www.google.com", Some("www.google.com")),
        ("www.google.com/search?q=ring", Some("www.google.com")),
        ("google.com:8080/x", Some("google.com")),
        ("http://user:pass@example.com:8443/p", Some("example.com")),
        ("https://a@b@example.com/", Some("example.com")),
        ("https://example.com?q=http://evil.com", Some("example.com")),
        ("https://example.com#frag", Some("example.com")),
        ("https://example.com:/", Some("example.com")),
        ("//cdn.example.com/lib.js", Some("cdn.example.com")),
        (
            "android-app://com.google.android.gm/",
            Some("com.google.android.gm"),
        ),
        ("http://[2001:DB8::1]:8080/", Some("[2001:db8::1]")),
        ("http://[::1]", Some("[::1]")),
        ("http://192.168.0.1:80", Some("192.168.0.1")),
        ("  https://spaced.example/  ", Some("spaced.example")),
        ("https://MÜNCHEN.example/", Some("münchen.example")),
        ("", None),
        ("   ", None),
        ("//", None),
        ("http://", None),
        ("http:///path", None),
        ("https://:443/", None),
        ("https://user@/", None),
        ("http://[::1/", None),
        ("/relative/path", None),
        ("?q=1", None),
        ("www.x.de/a?u=http://y.de", None),
        ("not a url", Some("not a url")),
    ];
    for (url, expected) in cases {
        assert_eq!(referrer_host(url).as_deref(), expected, "{url:?}");
        let json = serde_json::to_string(url).unwrap();
        let f = ok(&event(&format!(r#","referrer_url":{json}"#)));
        assert_eq!(f.referrer_url.as_deref(), expected, "{url:?}");
    }
    assert_eq!(ok(&event(r#","referrer_url":null"#)).referrer_url, None);
    assert_eq!(
        ok(&event(r#","referrer_url":false"#))
            .referrer_url
            .as_deref(),
        Some("false")
    );
    assert_eq!(
        ok(&event(r#","referrer_url":12345"#))
            .referrer_url
            .as_deref(),
        Some("12345")
    );
}

#[test]
fn realistic_event_end_to_end() {
    let json = r#"{"_id":"5ed8cb2bc671fc36b74653ad","time_stamp":1591266092,"ip":"37.170.17.183",
      "user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 13_4_1 like Mac OS X) AppleWebKit/605.1.15",
      "resolution":"375x667","user_id_db":"","device_id":"beb2cacb-20af-4f05-9c03-c98e54a1b71a",
      "api_version":"1.0","store_id":"12","local_time":"2020-06-04 12:21:27",
      "show_recommendation":"false","current_url":"https://www.glamira.fr/glamira-anillo-saphira-skug100335.html?alloy=white-375&diamond=sapphire&stone2=diamond-Brillant&itm_source=recommendation&itm_medium=sorting",
      "referrer_url":"https://www.glamira.fr/men-s-necklaces/","email_address":"pereira.vivien@yahoo.fr",
      "recommendation":false,"utm_source":false,"utm_medium":false,"collection":"view_product_detail",
      "product_id":"110474","option":[{"option_label":"alloy","option_id":"332084","value_label":"","value_id":"3279318"},{"option_label":"diamond","option_id":"","value_label":"","value_id":""}],
      "id":"aea4b823-c5c6-485e-8b3b-6182a7c4ecce"}"#;
    let f = ok(json);
    let expected = Fact {
        sales_key: sha("aea4b823-c5c6-485e-8b3b-6182a7c4ecce110474"),
        event_id: "aea4b823-c5c6-485e-8b3b-6182a7c4ecce".into(),
        doc_id: Some("5ed8cb2bc671fc36b74653ad".into()),
        time_stamp: 1591266092,
        full_date: NaiveDate::from_ymd_opt(2020, 6, 4).unwrap(),
        full_time: NaiveTime::from_hms_opt(10, 21, 32).unwrap(),
        ip: Some("37.170.17.183".into()),
        ip_key: Some("5b72fca199dab069f1e8c148eb12462908418bddc99820d62e555d843dbdb05f".into()),
        user_agent: Some("Mozilla/5.0 (iPhone; CPU iPhone OS 13_4_1 like Mac OS X) AppleWebKit/605.1.15".into()),
        user_agent_key: Some(sha("Mozilla/5.0 (iPhone; CPU iPhone OS 13_4_1 like Mac OS X) AppleWebKit/605.1.15")),
        product_key: Some("110474".into()),
        referrer_url: Some("www.glamira.fr".into()),
        option: Some(r#"[{"option_label":"alloy","option_id":"332084","value_label":"","value_id":"3279318"},{"option_label":"diamond","option_id":"","value_label":"","value_id":""}]"#.into()),
        resolution: Some("375x667".into()),
        user_id_db: Some("".into()),
        device_id: Some("beb2cacb-20af-4f05-9c03-c98e54a1b71a".into()),
        api_version: Some("1.0".into()),
        store_id: Some("12".into()),
        local_time: Some("2020-06-04 12:21:27".into()),
        show_recommendation: Some("false".into()),
        current_url: Some("https://www.glamira.fr/glamira-anillo-saphira-skug100335.html?alloy=white-375&diamond=sapphire&stone2=diamond-Brillant&itm_source=recommendation&itm_medium=sorting".into()),
        email_address: Some("pereira.vivien@yahoo.fr".into()),
        recommendation: Some("false".into()),
        utm_source: Some("false".into()),
        utm_medium: Some("false".into()),
        collection: Some("view_product_detail".into()),
    };
    assert_eq!(f, expected);
}

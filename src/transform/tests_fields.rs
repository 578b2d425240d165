//! Unit tests of contract §5's text columns, `option`, `referrer_url` hosts, verbatim text and
//! a full realistic event.

use super::tests::{event, ok, sha};
use super::*;
use chrono::{NaiveDate, NaiveTime};

/// The "other text columns" of a fact, in a fixed order.
fn others(f: &Fact) -> [Option<&str>; 15] {
    [
        f.doc_id(),
        f.resolution(),
        f.user_id_db(),
        f.device_id(),
        f.api_version(),
        f.store_id(),
        f.local_time(),
        f.show_recommendation(),
        f.current_url(),
        f.email_address(),
        f.recommendation(),
        f.utm_source(),
        f.utm_medium(),
        f.collection(),
        f.option(),
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
        (f.ip(), f.user_agent(), f.product_key(), f.referrer_url()),
        (None, None, None, None)
    );
    assert_eq!(f.event_id(), "e1");
}

#[test]
fn unknown_fields_are_ignored_and_last_duplicate_wins() {
    let f = ok(&event(
        r#","extra":{"deep":[1,2]},"Resolution":"x","utm_source":"a","utm_source":"b""#,
    ));
    assert_eq!(f, ok(&event(r#","utm_source":"b""#)));
    let f = ok(r#"{"id":"first","time_stamp":"x","id":"second","time_stamp":5}"#);
    assert_eq!((f.event_id(), f.time_stamp), ("second", 5));
}

#[test]
fn option_is_compact_json_in_received_order() {
    let f = ok(&event(
        r#","option": [ {"option_label" : "alloy", "option_id":"6", "value_label":"Gold 585",
        "value_id" : 1.50 } , { "z":null,"b":1e3,"a":false } ]"#,
    ));
    assert_eq!(
        f.option(),
        Some(
            r#"[{"option_label":"alloy","option_id":"6","value_label":"Gold 585","value_id":1.50},{"z":null,"b":1e3,"a":false}]"#
        )
    );
    assert_eq!(ok(&event(r#","option":null"#)).option(), None);
    assert_eq!(ok(&event(r#","option":[]"#)).option(), Some("[]"));
    assert_eq!(ok(&event(r#","option":{}"#)).option(), Some("{}"));
    // a scalar option is its JSON text too: a string keeps its quotes
    assert_eq!(ok(&event(r#","option":"x""#)).option(), Some(r#""x""#));
    assert_eq!(ok(&event(r#","option":false"#)).option(), Some("false"));
    assert_eq!(ok(&event(r#","option":7.0"#)).option(), Some("7.0"));
    // escapes are normalised to compact JSON: \u00e9 is written as é, control chars escaped
    assert_eq!(
        ok(&event(r#","option":["\u00e9\u0001\"\/"]"#)).option(),
        Some("[\"é\\u0001\\\"/\"]")
    );
}

#[test]
fn huge_option_array_is_fine() {
    let item = r#"{"option_label":"size","option_id":"1","value_label":"52","value_id":"2"}"#;
    let items = vec![item; 10_000].join(",");
    let f = ok(&event(&format!(r#","option":[{items}]"#)));
    assert_eq!(f.option(), Some(format!("[{items}]").as_str()));
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
        assert_eq!(f.event_id(), text);
        assert_eq!(f.user_agent(), Some(text));
        assert_eq!(f.user_agent_key(), Some(sha(text).as_str()));
        assert_eq!(f.utm_source(), Some(text));
        assert_eq!(f.product_key(), Some(text));
        assert_eq!(f.sales_key(), sha(&format!("{text}{text}")));
    }
    // a surrogate pair escape decodes to the emoji
    assert_eq!(
        ok(&event(r#","collection":"\ud83d\udc8d""#)).collection(),
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
        assert_eq!(f.referrer_url(), expected, "{url:?}");
    }
    assert_eq!(ok(&event(r#","referrer_url":null"#)).referrer_url(), None);
    assert_eq!(
        ok(&event(r#","referrer_url":false"#)).referrer_url(),
        Some("false")
    );
    assert_eq!(
        ok(&event(r#","referrer_url":12345"#)).referrer_url(),
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
    let sales_key = sha("aea4b823-c5c6-485e-8b3b-6182a7c4ecce110474");
    let agent_key =
        sha("Mozilla/5.0 (iPhone; CPU iPhone OS 13_4_1 like Mac OS X) AppleWebKit/605.1.15");
    let expected: [(Col, Option<&str>); TEXT_COLUMNS] = [
        (Col::SalesKey, Some(sales_key.as_str())),
        (Col::EventId, Some("aea4b823-c5c6-485e-8b3b-6182a7c4ecce")),
        (Col::DocId, Some("5ed8cb2bc671fc36b74653ad")),
        (Col::Ip, Some("37.170.17.183")),
        (Col::IpKey, Some("5b72fca199dab069f1e8c148eb12462908418bddc99820d62e555d843dbdb05f")),
        (Col::UserAgent, Some("Mozilla/5.0 (iPhone; CPU iPhone OS 13_4_1 like Mac OS X) AppleWebKit/605.1.15")),
        (Col::UserAgentKey, Some(agent_key.as_str())),
        (Col::ProductKey, Some("110474")),
        (Col::ReferrerUrl, Some("www.glamira.fr")),
        (Col::Option, Some(r#"[{"option_label":"alloy","option_id":"332084","value_label":"","value_id":"3279318"},{"option_label":"diamond","option_id":"","value_label":"","value_id":""}]"#)),
        (Col::Resolution, Some("375x667")),
        (Col::UserIdDb, Some("")),
        (Col::DeviceId, Some("beb2cacb-20af-4f05-9c03-c98e54a1b71a")),
        (Col::ApiVersion, Some("1.0")),
        (Col::StoreId, Some("12")),
        (Col::LocalTime, Some("2020-06-04 12:21:27")),
        (Col::ShowRecommendation, Some("false")),
        (Col::CurrentUrl, Some("https://www.glamira.fr/glamira-anillo-saphira-skug100335.html?alloy=white-375&diamond=sapphire&stone2=diamond-Brillant&itm_source=recommendation&itm_medium=sorting")),
        (Col::EmailAddress, Some("pereira.vivien@yahoo.fr")),
        (Col::Recommendation, Some("false")),
        (Col::UtmSource, Some("false")),
        (Col::UtmMedium, Some("false")),
        (Col::Collection, Some("view_product_detail")),
    ];
    assert_eq!(expected.map(|e| e.0), Col::ALL, "every column, in order");
    for (col, value) in expected {
        assert_eq!(f.get(col), value, "{}", col.name());
    }
    assert_eq!(
        (f.time_stamp, f.full_date, f.full_time),
        (
            1591266092,
            NaiveDate::from_ymd_opt(2020, 6, 4).unwrap(),
            NaiveTime::from_hms_opt(10, 21, 32).unwrap()
        )
    );
}

// The checks of the fuzz targets, shared with the suite's replay of the committed corpus
// (tests/it/fuzz_corpus.rs includes this file), so both hold every input to the same
// promises.

/// Any bytes through the pure transform: never a panic, and what it accepts keeps the
/// promises the sink relies on (a 64-hex key, a non-empty event id, no U+0000, every
/// length limit, the same key when transformed again). Returns whether it was accepted.
pub fn check_transform(data: &[u8]) -> bool {
    use streamer::transform::{limit_of, transform, Col};
    /// The stored column of each limited field.
    const LIMITED: [(&str, Col); 7] = [
        ("id", Col::EventId),
        ("product_id", Col::ProductKey),
        ("ip", Col::Ip),
        ("user_agent", Col::UserAgent),
        ("store_id", Col::StoreId),
        ("current_url", Col::CurrentUrl),
        ("referrer_url", Col::ReferrerUrl),
    ];
    let Ok(fact) = transform(Some(data)) else {
        return false;
    };
    let key = fact.sales_key();
    assert_eq!(key.len(), 64);
    assert!(key
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(!fact.event_id().is_empty());
    for col in Col::ALL {
        if let Some(v) = fact.get(col) {
            assert!(!v.contains('\0'), "U+0000 in {}", col.name());
        }
    }
    for (field, col) in LIMITED {
        let limit = limit_of(field).expect("a limit");
        if let Some(v) = fact.get(col) {
            assert!(v.len() <= limit, "{field}: {} bytes > {limit}", v.len());
        }
    }
    let again = transform(Some(data)).expect("deterministic");
    assert_eq!(again.sales_key(), key);
    true
}

/// Any bytes as the INI file (lossy UTF-8, no environment): never a panic, and a config
/// it accepts can be shown (Debug, which hides secrets) and turned into connection
/// settings; an error can be shown. Returns whether it was accepted.
pub fn check_config(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    match streamer::config::Config::parse(&text, &[]) {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
            let _ = cfg.postgres.loader_pg_config();
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

//! Any bytes through the pure transform: never a panic, and what it accepts keeps the
//! promises the sink relies on (a 64-hex key, no U+0000, every limit kept, deterministic).
#![no_main]

use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
    let Ok(fact) = transform(Some(data)) else {
        return;
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
});

//! The committed fuzz corpora (`fuzz/corpus/`, see `fuzz/README.md`) replayed through the
//! same checks as the fuzz targets, so every input the fuzzers kept, and every crash they
//! found, is run by the suite on stable Rust.

use std::path::PathBuf;

use streamer::config::Config;
use streamer::transform::{limit_of, transform, Col};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: a corpus of {} files",
        dir.display(),
        files.len()
    );
    files
}

/// The stored column of each limited field (as in fuzz/fuzz_targets/transform.rs).
const LIMITED: [(&str, Col); 7] = [
    ("id", Col::EventId),
    ("product_id", Col::ProductKey),
    ("ip", Col::Ip),
    ("user_agent", Col::UserAgent),
    ("store_id", Col::StoreId),
    ("current_url", Col::CurrentUrl),
    ("referrer_url", Col::ReferrerUrl),
];

#[test]
fn the_transform_corpus_keeps_the_facts_promises() {
    let mut accepted = 0;
    for (path, bytes) in corpus("transform") {
        let Ok(fact) = transform(Some(&bytes)) else {
            continue;
        };
        accepted += 1;
        let name = path.display();
        let key = fact.sales_key();
        assert_eq!(key.len(), 64, "{name}");
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{name}"
        );
        for col in Col::ALL {
            if let Some(v) = fact.get(col) {
                assert!(!v.contains('\0'), "{name}: U+0000 in {}", col.name());
            }
        }
        for (field, col) in LIMITED {
            let limit = limit_of(field).expect("a limit");
            if let Some(v) = fact.get(col) {
                assert!(v.len() <= limit, "{name}: {field} over {limit} bytes");
            }
        }
        let again = transform(Some(&bytes)).expect("deterministic");
        assert_eq!(again.sales_key(), key, "{name}");
    }
    // the seeds include valid events: the corpus reaches past the first checks
    assert!(
        accepted >= 5,
        "only {accepted} inputs of the corpus are valid events"
    );
}

#[test]
fn the_config_corpus_parses_or_fails_without_panicking() {
    let mut valid = 0;
    for (_, bytes) in corpus("config") {
        let text = String::from_utf8_lossy(&bytes);
        match Config::parse(&text, &[]) {
            Ok(cfg) => {
                valid += 1;
                let _ = format!("{cfg:?}");
                let _ = cfg.postgres.loader_pg_config();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    assert!(valid >= 2, "only {valid} configs of the corpus are valid");
}

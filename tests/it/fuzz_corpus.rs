//! The committed fuzz corpora (`fuzz/corpus/`, see `fuzz/README.md`) replayed through the
//! same checks as the fuzz targets, so every input the fuzzers kept, and every crash they
//! found, is run by the suite on stable Rust.

use std::path::PathBuf;

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

#[allow(dead_code, unreachable_pub)]
mod checks {
    include!("../../fuzz/checks.rs");
}

#[test]
fn the_transform_corpus_keeps_the_facts_promises() {
    let mut accepted = 0;
    for (path, bytes) in corpus("transform") {
        let ok = std::panic::catch_unwind(|| checks::check_transform(&bytes))
            .unwrap_or_else(|_| panic!("{} breaks a check", path.display()));
        accepted += usize::from(ok);
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
    for (path, bytes) in corpus("config") {
        let ok = std::panic::catch_unwind(|| checks::check_config(&bytes))
            .unwrap_or_else(|_| panic!("{} breaks a check", path.display()));
        valid += usize::from(ok);
    }
    assert!(valid >= 2, "only {valid} configs of the corpus are valid");
}

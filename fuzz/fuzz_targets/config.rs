//! Any text through the config parser (no environment): never a panic, and a config it
//! accepts can be shown (Debug, which hides secrets) and turned into connection settings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, &[]) {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
            let _ = cfg.postgres.loader_pg_config();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

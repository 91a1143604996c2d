//! The objstore configuration parser never panics on arbitrary text, with or without
//! `$(NAME)` substitution; it only parses, nothing is opened or connected to.
#![no_main]

use compactd::objstore::{describe, expand_env, parse_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = parse_config(text, "fuzz/bucket.yml") {
        let _ = describe(&cfg);
        let _ = cfg.name();
    }
    // Every variable expands to a fixed value, so substitution itself is exercised.
    if let Ok(expanded) = expand_env(text, |name| {
        (name.len() % 3 != 0).then(|| "v".repeat(name.len()))
    }) {
        let _ = parse_config(&expanded, "fuzz/bucket.yml");
    }
});

//! The index reader never panics on an arbitrary file: open it (header, TOC, symbols), then
//! walk everything it offers: label names, their values, each postings list, the all-series
//! list and every series entry with its labels.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use compactd::tsdb::index::IndexReader;
use libfuzzer_sys::fuzz_target;

/// Caps on the walk, so a large valid index stays a fast input.
const NAMES_MAX: usize = 64;
const VALUES_MAX: usize = 256;
const SERIES_MAX: usize = 4096;

/// The reader reads files: each input is written to this per-process path first.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("compactd-fuzz-index-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch index");
    let Ok(mut r) = IndexReader::open(path) else {
        return;
    };
    assert!(r.version() == 1 || r.version() == 2);
    assert!(r.toc().postings_offset_table <= r.file_len());
    let symbols: Vec<String> = r.symbols().iter().map(str::to_string).collect();
    assert_eq!(symbols.len(), r.symbols().len());
    for (i, s) in symbols.iter().enumerate() {
        assert_eq!(r.symbols().lookup(s), Some(i as u32));
    }
    let _ = r.postings("no such name", "no such value");
    if let Ok(names) = r.label_names() {
        for name in names.iter().take(NAMES_MAX) {
            if let Ok(values) = r.label_values(name) {
                for value in values.iter().take(VALUES_MAX) {
                    let _ = r.postings(name, value);
                }
            }
        }
    }
    if let Ok(walk) = r.all_series() {
        for _ in walk.take(SERIES_MAX) {}
    }
    // Ids that are not series starts exercise the bounds checks of `series`.
    let (mut labels, mut chunks) = (Vec::new(), Vec::new());
    for id in [0, 1, u32::MAX] {
        if r.series(id, &mut labels, &mut chunks).is_ok() {
            let _ = r.series_labels(&labels);
        }
    }
});

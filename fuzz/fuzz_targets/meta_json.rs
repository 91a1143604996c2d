//! meta.json and marker parsing never panic; whatever parses serialises and parses back equal.
#![no_main]

use std::path::Path;

use compactd::bucket::markers::{parse_marker, DeletionMark, NoCompactMark};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = BlockMeta::parse(data, Path::new("fuzz/meta.json")) {
        let again = BlockMeta::parse(&meta.to_json(), Path::new("fuzz/meta.json")).expect("our own output parses");
        assert_eq!(again, meta);
    }
    let id = BlockId::from_parts(0, 0);
    let _ = parse_marker::<DeletionMark>(data, "fuzz/deletion-mark.json", id);
    let _ = parse_marker::<NoCompactMark>(data, "fuzz/no-compact-mark.json", id);
});

//! meta.json, marker and fence record parsing never panic; whatever parses serialises and
//! parses back equal, and merging a parsed meta (as compaction does) never panics.
#![no_main]

use std::path::Path;

use compactd::bucket::markers::{
    encode_marker, parse_marker, DeletionMark, NoCompactMark, NoDownsampleMark,
};
use compactd::core::fence::FenceRecord;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::{merge_metas, BlockMeta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = BlockMeta::parse(data, Path::new("fuzz/meta.json")) {
        let again = BlockMeta::parse(&meta.to_json(), Path::new("fuzz/meta.json"))
            .expect("our own output parses");
        assert_eq!(again, meta);
        // Compaction merges metas read from the bucket.
        let _ = merge_metas(BlockId::from_parts(1, 1), &[meta.clone(), meta]);
    }
    // Markers name their block: parse against the id they carry when it reads as one.
    let id = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("id")?.as_str()?.parse::<BlockId>().ok())
        .unwrap_or_else(|| BlockId::from_parts(0, 0));
    if let Ok(m) = parse_marker::<DeletionMark>(data, "fuzz/deletion-mark.json", id) {
        let again = parse_marker::<DeletionMark>(&encode_marker(&m), "fuzz/deletion-mark.json", id);
        assert_eq!(again.expect("our own marker parses"), m);
    }
    if let Ok(m) = parse_marker::<NoCompactMark>(data, "fuzz/no-compact-mark.json", id) {
        let again =
            parse_marker::<NoCompactMark>(&encode_marker(&m), "fuzz/no-compact-mark.json", id);
        assert_eq!(again.expect("our own marker parses"), m);
    }
    let _ = parse_marker::<NoDownsampleMark>(data, "fuzz/no-downsample-mark.json", id);
    if let Ok(f) = FenceRecord::parse("fuzz/fence.json", data) {
        assert_eq!(
            FenceRecord::parse("fuzz/fence.json", &f.to_json()).expect("our own record parses"),
            f
        );
    }
});

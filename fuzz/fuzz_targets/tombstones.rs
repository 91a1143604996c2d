//! The tombstones decoder never panics; what it decodes encodes and decodes back equal.
#![no_main]

use std::path::Path;

use compactd::tsdb::tombstones::Tombstones;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tombstones::decode(data, Path::new("fuzz/tombstones")) {
        let again = Tombstones::decode(&t.encode(), Path::new("fuzz/tombstones"))
            .expect("our own output decodes");
        assert_eq!(again, t);
    }
});

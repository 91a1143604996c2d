//! The XOR decoder never panics on arbitrary bytes, and re-encoding what it decoded gives
//! samples that decode to the same values.
#![no_main]

use compactd::tsdb::xor::{XorEncoder, XorIter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut it = XorIter::new(data);
    let mut samples = Vec::new();
    while let Ok(Some(s)) = it.next_sample() {
        samples.push(s);
    }
    if samples.is_empty() {
        return;
    }
    let mut enc = XorEncoder::new();
    for &(t, v) in &samples {
        enc.append(t, v);
    }
    let mut back = XorIter::new(enc.bytes());
    for &(t, v) in &samples {
        let (t2, v2) = back
            .next_sample()
            .expect("re-encoded chunk decodes")
            .expect("same count");
        assert_eq!((t, v.to_bits()), (t2, v2.to_bits()));
    }
});

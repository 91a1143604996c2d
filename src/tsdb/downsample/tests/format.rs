//! The AggrChunk bytes, written out by hand, and its decoder on damaged input.

use proptest::prelude::*;

use super::super::aggr::{encode_aggr_chunk, Aggr, AggrChunk};
use super::super::builder::AggrChunkBuilder;
use super::super::series::{downsample_series, InputChunk, Scratch};
use super::{xor, STALE};
use crate::tsdb::chunks::{ENCODING_AGGR, ENCODING_XOR};

/// An XOR chunk of the single sample `(299999, v)`: be16 count 1, varint zigzag(299999) =
/// 599998 = `be cf 24`, the 64 bits of `v`, and the empty byte Go's bit stream leaves after
/// whole bytes written bit by bit.
fn one_sample_xor(v_bits: [u8; 8]) -> Vec<u8> {
    let mut b = vec![0x00, 0x01, 0xbe, 0xcf, 0x24];
    b.extend_from_slice(&v_bits);
    b.push(0x00);
    b
}

#[test]
fn layout_of_single_window_chunk_byte_for_byte() {
    let three = [0x40, 0x08, 0, 0, 0, 0, 0, 0]; // 3.0
    let six = [0x40, 0x18, 0, 0, 0, 0, 0, 0]; // 6.0
    let ten_and_half = [0x40, 0x25, 0, 0, 0, 0, 0, 0]; // 10.5
                                                       // Our XOR encoder agrees with the hand-written chunk.
    assert_eq!(xor(&[(299_999, 3.0)]), one_sample_xor(three));

    let (count, sum, max, counter) = (
        xor(&[(299_999, 3.0)]),
        xor(&[(299_999, 6.0)]),
        xor(&[(299_999, 3.0)]),
        xor(&[(299_999, 10.5)]),
    );
    let mut got = Vec::new();
    encode_aggr_chunk(
        [
            Some((ENCODING_XOR, &count)),
            Some((ENCODING_XOR, &sum)),
            None,
            Some((ENCODING_XOR, &max)),
            Some((ENCODING_XOR, &counter)),
        ],
        &mut got,
    );
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[0x0e, 0x01][..], &one_sample_xor(three),    // count: uvarint 14, XOR, data
        &[0x0e, 0x01], &one_sample_xor(six),          // sum
        &[0x00],                                      // min: absent, one zero byte
        &[0x0e, 0x01], &one_sample_xor(three),        // max
        &[0x0e, 0x01], &one_sample_xor(ten_and_half), // counter
    ]
    .concat();
    assert_eq!(got, want);

    let parsed = AggrChunk::parse(&want).expect("parses");
    assert_eq!(parsed.get(Aggr::Min), None);
    let c = parsed.get(Aggr::Counter).expect("counter present");
    assert_eq!(
        (c.encoding, c.data, c.offset),
        (ENCODING_XOR, &want[51..], 51)
    );
    assert_eq!(parsed.num_samples(), 1);
    assert!(!parsed.is_histogram());
}

#[test]
fn layout_with_two_byte_lengths_matches_the_builder() {
    // 200 irregular samples make chunks longer than 127 bytes: their length takes 2 bytes.
    let samples: Vec<(i64, f64)> = (0..200i64)
        .map(|i| (i * 1000 + (i * i) % 7, (i as f64 * 1.37).sin() * 1e6))
        .collect();
    let mut b = AggrChunkBuilder::all_present();
    for &(t, v) in &samples {
        for a in Aggr::ALL {
            b.append_window(a, t, v + a.index() as f64).expect("room");
        }
    }
    let out = b.finish().expect("has windows");
    let mut want = Vec::new();
    for a in Aggr::ALL {
        let data = xor(&samples
            .iter()
            .map(|&(t, v)| (t, v + a.index() as f64))
            .collect::<Vec<_>>());
        assert!(data.len() >= 128 && data.len() < 1 << 14, "a 2-byte length");
        want.extend_from_slice(&[
            0x80 | (data.len() & 0x7f) as u8,
            (data.len() >> 7) as u8,
            0x01,
        ]);
        want.extend_from_slice(&data);
    }
    assert_eq!(out.data, want);
    assert_eq!(
        (out.min_time, out.max_time, out.num_samples),
        (0, 199_000 + (199 * 199) % 7, 200)
    );
}

#[test]
fn parse_errors_name_the_offset() {
    let err = |data: &[u8]| AggrChunk::parse(data).expect_err("damaged");
    assert_eq!(err(&[]).offset, 0, "no count length");
    assert_eq!(err(&[0x80]).offset, 0, "truncated uvarint");
    let e = err(&[0x05, 0x01, 0x00, 0x00]);
    assert_eq!(e.offset, 1, "5 bytes announced, 3 left: {e}");
    assert!(e.what.starts_with("count aggregate"), "{e}");
    let e = err(&[0x02, 0x07, 0x00, 0x00]);
    assert_eq!(e.offset, 1, "unknown encoding 7: {e}");
    let e = err(&[0x02, 0x01, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(e.offset, 6, "the max length is missing: {e}");
    assert!(e.what.starts_with("max aggregate"), "{e}");
    // Every strict prefix of a valid chunk is refused, never a panic.
    let (_, _, full) = super::aggr_chunk([
        &[(1, 1.0)],
        &[(1, 2.0)],
        &[],
        &[(1, 3.0)],
        &[(0, 1.0), (1, 4.0)],
    ]);
    assert!(AggrChunk::parse(&full).is_ok());
    for len in 0..full.len() {
        assert!(
            AggrChunk::parse(&full[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn absent_last_aggregate_is_absent_not_an_error() {
    // Thanos' Get errors on a trailing 0x00 ("invalid size"); it writes such chunks when a
    // batch has no counter sample, so reading them as absent is the useful reading.
    let count = xor(&[(10, 1.0)]);
    let mut data = Vec::new();
    encode_aggr_chunk(
        [Some((ENCODING_XOR, &count)), None, None, None, None],
        &mut data,
    );
    assert_eq!(data.len(), 2 + count.len() + 4);
    let parsed = AggrChunk::parse(&data).expect("parses");
    assert!(parsed.get(Aggr::Counter).is_none());
    assert_eq!(parsed.num_samples(), 1);
}

#[test]
fn corrupt_xor_inside_an_aggregate_is_an_error_with_its_offset() {
    let (min, max, mut data) = super::aggr_chunk([
        &[(299_999, 2.0), (599_999, 2.0)],
        &[(299_999, 3.0), (599_999, 4.0)],
        &[(299_999, 1.0), (599_999, 2.0)],
        &[(299_999, 2.0), (599_999, 2.0)],
        &[(100, 1.0), (299_999, 2.0), (599_999, 4.0), (599_999, 4.0)],
    ]);
    // The count chunk claims 40 samples: its stream ends long before.
    let count_at = 2; // after `uvarint len | 0x01`
    data[count_at + 1] = 40;
    let chunks = [InputChunk {
        min_time: min,
        max_time: max,
        encoding: ENCODING_AGGR,
        data: 0..data.len(),
    }];
    let err = downsample_series(&chunks, &data, 300_000, 3_600_000, &mut Scratch::default())
        .expect_err("corrupt");
    match err {
        super::super::DownsampleError::Corrupt { chunk, offset, .. } => {
            assert_eq!(chunk, 0);
            assert!(
                offset > count_at && offset < data.len(),
                "offset {offset} inside the count chunk"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = AggrChunk::parse(&data);
    }

    #[test]
    fn downsampling_garbage_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..96),
        encoding in prop_oneof![Just(ENCODING_XOR), Just(ENCODING_AGGR), any::<u8>()],
        from in prop_oneof![Just(0i64), Just(300_000i64)],
    ) {
        let chunks = [InputChunk { min_time: 0, max_time: 1, encoding, data: 0..data.len() }];
        let _ = downsample_series(&chunks, &data, from, 3_600_000, &mut Scratch::default());
    }

    #[test]
    fn downsampling_any_aggregate_chunks_never_panics(
        chunks in proptest::collection::vec(
            (
                proptest::collection::vec(
                    proptest::collection::vec((-2_000i64..4_000_000, any::<f64>()), 0..12),
                    5,
                ),
                -10i64..4_000_000,
                -10i64..4_000_000,
            ),
            1..5,
        ),
    ) {
        let mut arena = Vec::new();
        let mut inputs = Vec::new();
        for (parts, min_time, max_time) in &chunks {
            let encoded: Vec<Vec<u8>> = parts.iter().map(|p| xor(p)).collect();
            let start = arena.len();
            encode_aggr_chunk(
                std::array::from_fn(|i| (!parts[i].is_empty()).then(|| (ENCODING_XOR, encoded[i].as_slice()))),
                &mut arena,
            );
            inputs.push(InputChunk { min_time: *min_time, max_time: *max_time, encoding: ENCODING_AGGR, data: start..arena.len() });
        }
        let _ = downsample_series(&inputs, &arena, 300_000, 3_600_000, &mut Scratch::default());
        let _ = downsample_series(&inputs, &arena, 1, 2, &mut Scratch::default());
    }

    #[test]
    fn downsampling_any_valid_series_keeps_windows_ordered(
        deltas in proptest::collection::vec((1i64..400_000, -1e3f64..1e3), 1..400),
        stale_every in 0usize..50,
    ) {
        let mut t = 0;
        let samples: Vec<(i64, f64)> = deltas
            .iter()
            .enumerate()
            .map(|(i, &(d, v))| {
                t += d;
                (t, if stale_every > 0 && i % stale_every == 0 { STALE } else { v })
            })
            .collect();
        let (chunks, arena) = super::raw_chunks(&samples.chunks(120).collect::<Vec<_>>());
        let out = downsample_series(&chunks, &arena, 0, 300_000, &mut Scratch::default())
            .expect("valid input");
        for pair in out.windows(2) {
            prop_assert!(pair[0].max_time < pair[1].min_time);
        }
        let windows: u64 = out.iter().map(|c| c.num_samples).sum();
        let kept = samples.iter().filter(|s| !s.1.is_nan()).count() as u64;
        prop_assert!(windows <= kept);
    }
}

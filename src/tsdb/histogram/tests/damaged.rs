//! The decoder on damaged input, and random series through the encoder and back.

use super::*;

#[test]
fn start_timestamp_and_other_encodings_are_refused() {
    for encoding in [ENCODING_HISTOGRAM_ST, ENCODING_FLOAT_HISTOGRAM_ST] {
        let err = decode_chunk(encoding, &[0, 1, 0, 0]).unwrap_err();
        assert!(matches!(err, HistogramError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("start timestamps"), "{err}");
    }
    let err = decode_chunk(ENCODING_XOR, &[0, 0]).unwrap_err();
    assert!(err.to_string().contains("not a native histogram"), "{err}");
}

#[test]
fn truncated_chunks_yield_a_prefix_then_one_error_with_its_offset() {
    for (name, text) in golden::CASES {
        let case = golden::load(text);
        let chunk = &case.chunks[0];
        let full = decode_chunk(chunk.encoding, &chunk.data).expect("decodes");
        for len in 0..chunk.data.len() {
            let data = &chunk.data[..len];
            let results: Vec<_> = match chunk.encoding {
                ENCODING_HISTOGRAM => HistogramIter::new(data)
                    .map(|r| r.map(|(t, h)| (t, SampleValue::Histogram(h))))
                    .collect(),
                _ => FloatHistogramIter::new(data)
                    .map(|r| r.map(|(t, h)| (t, SampleValue::FloatHistogram(h))))
                    .collect(),
            };
            let (last, prefix) = results.split_last().expect("at least an error");
            let err = last.clone().expect_err("a truncated chunk fails");
            let HistogramError::Corrupt { byte_offset, .. } = err else {
                panic!("{name}: {err:?}");
            };
            assert!(byte_offset <= len.max(3), "{name} at {len}: {byte_offset}");
            for (i, r) in prefix.iter().enumerate() {
                let (t, v) = r.as_ref().expect("samples before the error");
                assert_eq!(*t, full[i].0);
                assert!(v.same_bits(&full[i].1), "{name} at {len}: sample {i}");
            }
        }
    }
}

#[test]
fn damaged_layouts_are_errors_not_allocations() {
    // 3 samples, threshold 0, schema 0, then 2^25-1 spans.
    let mut w = crate::tsdb::bstream::BitWriter::with_prefix(&[0, 3, 0], 16);
    w.write_byte(0);
    varbit::put_varbit_int(&mut w, 0);
    varbit::put_varbit_uint(&mut w, (1 << 25) - 1);
    let err = decode_chunk(ENCODING_HISTOGRAM, w.bytes()).unwrap_err();
    assert!(err.to_string().contains("more spans"), "{err}");
    assert!(err.to_string().contains("byte 8"), "{err}");
    // One span of 2^32-1 buckets.
    let mut w = crate::tsdb::bstream::BitWriter::with_prefix(&[0, 3, 0], 16);
    w.write_byte(0);
    varbit::put_varbit_int(&mut w, 0);
    varbit::put_varbit_uint(&mut w, 1);
    varbit::put_varbit_uint(&mut w, u64::from(u32::MAX));
    varbit::put_varbit_int(&mut w, 0);
    varbit::put_varbit_uint(&mut w, 0);
    for e in [ENCODING_HISTOGRAM, ENCODING_FLOAT_HISTOGRAM] {
        let err = decode_chunk(e, w.bytes()).unwrap_err();
        assert!(err.to_string().contains("more buckets"), "{err}");
    }
    // Schema 9..=52 is known (newer Prometheus), 53 is not.
    let mut w = crate::tsdb::bstream::BitWriter::with_prefix(&[0, 1, 0], 16);
    w.write_byte(0);
    varbit::put_varbit_int(&mut w, 53);
    let err = decode_chunk(ENCODING_HISTOGRAM, w.bytes()).unwrap_err();
    assert!(err.to_string().contains("unknown schema 53"), "{err}");
    // Too short for the header.
    let err = decode_chunk(ENCODING_HISTOGRAM, &[0, 0]).unwrap_err();
    assert!(err.to_string().contains("3-byte header"), "{err}");
    assert_eq!(
        decode_chunk(ENCODING_FLOAT_HISTOGRAM, &[0, 0, 0]),
        Ok(vec![])
    );
}

proptest! {
    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
        for e in [ENCODING_HISTOGRAM, ENCODING_FLOAT_HISTOGRAM] {
            let _ = decode_chunk(e, &data);
        }
    }

    #[test]
    fn flipped_bits_never_panic(
        case in 0..golden::CASES.len(),
        flips in prop::collection::vec(any::<u16>(), 1..4),
    ) {
        let c = golden::load(golden::CASES[case].1);
        for chunk in &c.chunks {
            let mut data = chunk.data.clone();
            for f in &flips {
                let bit = usize::from(*f) % (data.len() * 8);
                data[bit / 8] ^= 0x80 >> (bit % 8);
            }
            let _ = decode_chunk(chunk.encoding, &data);
        }
    }
}

// ---- Random series ---------------------------------------------------------------------

/// What happens to the buckets between two samples of a generated series.
#[derive(Clone, Copy, Debug)]
enum Step {
    Grow,
    NewBucket(i8),
    DropEmpty,
    Reset,
    Stale,
    SchemaChange,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Grow),
        2 => (-6i8..6).prop_map(Step::NewBucket),
        1 => Just(Step::DropEmpty),
        1 => Just(Step::Reset),
        1 => Just(Step::Stale),
        1 => Just(Step::SchemaChange),
    ]
}

/// A series driven by `steps`: counter or gauge histograms with buckets that appear, grow,
/// reset and (when empty) vanish.
fn series(steps: &[(Step, u16)], gauge: bool) -> Vec<Histogram> {
    let hint = if gauge {
        CounterResetHint::Gauge
    } else {
        CounterResetHint::Unknown
    };
    let mut counts: BTreeMap<i64, i64> = [(0, 1), (1, 0)].into_iter().collect();
    let mut schema = 0;
    let mut out = Vec::new();
    for &(step, amount) in steps {
        let amount = i64::from(amount);
        match step {
            Step::Grow => {
                for (i, c) in counts.values_mut().enumerate() {
                    *c += (amount >> i) % 7;
                    if gauge && i % 2 == 1 {
                        *c = (*c - amount % 5).max(0);
                    }
                }
            }
            Step::NewBucket(i) => {
                counts.entry(i64::from(i)).or_insert(amount % 3);
            }
            Step::DropEmpty => counts.retain(|_, c| *c != 0 || gauge),
            Step::Reset => counts.values_mut().for_each(|c| *c /= 2),
            Step::SchemaChange => schema = (schema + 1) % 3,
            Step::Stale => {
                out.push(Histogram::stale());
                continue;
            }
        }
        if gauge && matches!(step, Step::Grow) && amount % 4 == 0 {
            // Gauges may lose used buckets.
            let first = counts.keys().next().copied();
            if let Some(first) = first.filter(|_| counts.len() > 1) {
                counts.remove(&first);
            }
        }
        let mut h = int_hist(
            hint,
            &counts.iter().map(|(&i, &c)| (i, c)).collect::<Vec<_>>(),
        );
        h.schema = schema;
        out.push(h);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_series_round_trip(
        steps in prop::collection::vec((step(), any::<u16>()), 1..300),
        gauge in any::<bool>(),
        float in any::<bool>(),
        head in any::<bool>(),
    ) {
        let hists = series(&steps, gauge);
        let samples = if float { float_samples(hists) } else { int_samples(hists) };
        let cut = if head { CutHeaders::Head } else { CutHeaders::Compaction };
        let chunks = encode(&samples, cut);
        for c in &chunks {
            let (n, header) = chunk_header(&c.data).expect("header");
            prop_assert!(usize::from(n) <= SAMPLES_PER_CHUNK);
            prop_assert!(n > 0);
            // Gauge chunks hold gauges, other chunks counters (staleness markers go anywhere).
            let decoded = decode_chunk(c.encoding, &c.data).expect("decodes");
            prop_assert_eq!(decoded.first().map(|s| s.0), Some(c.min_time));
            prop_assert_eq!(decoded.last().map(|s| s.0), Some(c.max_time));
            if !decoded.iter().all(|(_, v)| observations(v).stale) {
                prop_assert_eq!(header == CounterResetHeader::Gauge, gauge);
            }
        }
        assert_same_observations(&decode_all(&chunks), &samples, "random series");
    }
}

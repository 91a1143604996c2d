//! Tests of the histogram codec against chunks written by Prometheus 2.42's appenders
//! (`testdata/*.json`, made by `testdata/gen_golden.go`, loaded by [`golden`]) and of the
//! rules where current Prometheus differs from 2.42; [`damaged`] has the decoder on damaged
//! input and random series; [`arith`] the float histogram arithmetic against Prometheus'
//! own cases.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::tsdb::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR};
use crate::tsdb::xor::XorIter;
use model::STALE_NAN_BITS;
mod arith;
mod damaged;
mod golden;

fn encode(samples: &[(i64, SampleValue)], cut: CutHeaders) -> Vec<FinishedChunk> {
    let mut enc = SeriesEncoder::new(cut);
    for (t, v) in samples {
        enc.append(*t, v).expect("valid sample");
    }
    enc.finish()
}

fn decode_all(chunks: &[FinishedChunk]) -> Vec<(i64, SampleValue)> {
    let mut out = Vec::new();
    for c in chunks {
        if c.encoding == ENCODING_XOR {
            let mut it = XorIter::new(&c.data);
            while let Some((t, v)) = it.next_sample().expect("XOR decodes") {
                out.push((t, SampleValue::Float(v)));
            }
        } else {
            out.extend(decode_chunk(c.encoding, &c.data).expect("decodes"));
        }
    }
    out
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_same_chunks(got: &[FinishedChunk], want: &[FinishedChunk], name: &str) {
    assert_eq!(got.len(), want.len(), "{name}: chunk count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.min_time, g.max_time, g.encoding),
            (w.min_time, w.max_time, w.encoding),
            "{name}: chunk {i}"
        );
        assert_eq!(hex(&g.data), hex(&w.data), "{name}: chunk {i} bytes");
    }
}

/// A value's observations by bucket index, empty buckets left out: what a layout change
/// (recoding, widening) must not change. Floats are compared by bits.
#[derive(Debug, PartialEq, Eq)]
struct Observations {
    stale: bool,
    count_bits: u64,
    zero_count_bits: u64,
    sum_bits: u64,
    schema: i32,
    zero_threshold_bits: u64,
    positive: BTreeMap<i64, u64>,
    negative: BTreeMap<i64, u64>,
}

fn by_index(spans: &[Span], counts: impl IntoIterator<Item = u64>) -> BTreeMap<i64, u64> {
    spans::BucketIndices::new(spans)
        .zip(counts)
        .filter(|&(_, c)| c != 0 && c != 0f64.to_bits())
        .collect()
}

fn observations(v: &SampleValue) -> Observations {
    match v {
        SampleValue::Histogram(h) => Observations {
            stale: h.is_stale(),
            count_bits: h.count,
            zero_count_bits: h.zero_count,
            sum_bits: h.sum.to_bits(),
            schema: h.schema,
            zero_threshold_bits: h.zero_threshold.to_bits(),
            positive: by_index(
                &h.positive_spans,
                h.positive_counts().iter().map(|&c| c as u64),
            ),
            negative: by_index(
                &h.negative_spans,
                h.negative_counts().iter().map(|&c| c as u64),
            ),
        },
        SampleValue::FloatHistogram(h) => Observations {
            stale: h.is_stale(),
            count_bits: h.count.to_bits(),
            zero_count_bits: h.zero_count.to_bits(),
            sum_bits: h.sum.to_bits(),
            schema: h.schema,
            zero_threshold_bits: h.zero_threshold.to_bits(),
            positive: by_index(
                &h.positive_spans,
                h.positive_buckets.iter().map(|c| c.to_bits()),
            ),
            negative: by_index(
                &h.negative_spans,
                h.negative_buckets.iter().map(|c| c.to_bits()),
            ),
        },
        SampleValue::Float(f) => Observations {
            stale: false,
            count_bits: 0,
            zero_count_bits: 0,
            sum_bits: f.to_bits(),
            schema: 0,
            zero_threshold_bits: 0,
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
        },
    }
}

/// Asserts that `decoded` holds the observations of `input`, sample by sample.
fn assert_same_observations(
    decoded: &[(i64, SampleValue)],
    input: &[(i64, SampleValue)],
    name: &str,
) {
    assert_eq!(decoded.len(), input.len(), "{name}: sample count");
    for (i, ((dt, dv), (it, iv))) in decoded.iter().zip(input).enumerate() {
        assert_eq!(dt, it, "{name}: timestamp of sample {i}");
        let stale = |v: &SampleValue| observations(v).stale;
        if stale(iv) {
            assert!(stale(dv), "{name}: sample {i} is a staleness marker");
            continue;
        }
        assert_eq!(observations(dv), observations(iv), "{name}: sample {i}");
    }
}

/// Go 2.42's iterator gives the first sample of a counter-reset chunk the reset hint;
/// current Prometheus (and this decoder) give it the unknown hint, as the previous chunk may
/// be gone.
fn current_hint(v: &SampleValue) -> SampleValue {
    let mut v = v.clone();
    match &mut v {
        SampleValue::Histogram(h) if h.counter_reset_hint == CounterResetHint::CounterReset => {
            h.counter_reset_hint = CounterResetHint::Unknown;
        }
        SampleValue::FloatHistogram(h)
            if h.counter_reset_hint == CounterResetHint::CounterReset =>
        {
            h.counter_reset_hint = CounterResetHint::Unknown;
        }
        _ => {}
    }
    v
}

#[test]
fn encoder_writes_the_bytes_of_prometheus_2_42() {
    for (name, text) in golden::CASES {
        let case = golden::load(text);
        assert_same_chunks(
            &encode(&case.samples, CutHeaders::Compaction),
            &case.chunks,
            name,
        );
        if !case.head_chunks.is_empty() {
            assert_same_chunks(
                &encode(&case.samples, CutHeaders::Head),
                &case.head_chunks,
                name,
            );
        }
    }
}

#[test]
fn decoder_reads_what_prometheus_2_42_reads() {
    for (name, text) in golden::CASES {
        let case = golden::load(text);
        let decoded = decode_all(&case.chunks);
        assert_same_observations(&decoded, &case.samples, name);
        if case.decoded.is_empty() {
            continue;
        }
        assert_eq!(decoded.len(), case.decoded.len(), "{name}");
        for (i, ((t, got), (want_t, want))) in decoded.iter().zip(&case.decoded).enumerate() {
            assert_eq!(t, want_t, "{name}: sample {i}");
            assert!(
                got.same_bits(&current_hint(want)),
                "{name}: sample {i}:\n got {got:?}\nwant {want:?}"
            );
        }
    }
}

#[test]
fn golden_cases_cover_every_header_and_recoding() {
    let mut headers = std::collections::BTreeSet::new();
    for (_, text) in golden::CASES {
        let case = golden::load(text);
        for c in case.chunks.iter().chain(&case.head_chunks) {
            headers.insert(chunk_header(&c.data).expect("header").1.flags());
        }
    }
    assert_eq!(
        headers.into_iter().collect::<Vec<_>>(),
        [0x00, 0x40, 0x80, 0xc0]
    );
    // The recoding cases end with one chunk whose layout holds every bucket.
    let case = golden::load(golden::CASES[1].1);
    assert_eq!(case.chunks.len(), 1);
    let first = HistogramIter::new(&case.chunks[0].data)
        .next()
        .expect("a sample")
        .expect("decodes")
        .1;
    assert_eq!(first.positive_buckets.len(), 6);
    assert_eq!(first.negative_buckets.len(), 2);
}

// ---- Rules of current Prometheus that 2.42 does not share --------------------------------

/// Spans and bucket deltas for absolute `counts` by bucket index.
fn layout(counts: &BTreeMap<i64, i64>) -> (Vec<Span>, Vec<i64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut deltas = Vec::new();
    let (mut last_index, mut last_count) = (0i64, 0i64);
    for (i, (&index, &count)) in counts.iter().enumerate() {
        match spans.last_mut() {
            Some(s) if index == last_index + 1 => s.length += 1,
            _ => {
                let offset = if i == 0 {
                    index
                } else {
                    index - last_index - 1
                };
                spans.push(Span::new(offset as i32, 1));
            }
        }
        deltas.push(count - last_count);
        (last_index, last_count) = (index, count);
    }
    (spans, deltas)
}

/// An integer histogram with positive buckets `counts` (index, count).
fn int_hist(hint: CounterResetHint, counts: &[(i64, i64)]) -> Histogram {
    let map: BTreeMap<i64, i64> = counts.iter().copied().collect();
    let (positive_spans, positive_buckets) = layout(&map);
    Histogram {
        counter_reset_hint: hint,
        schema: 3,
        zero_threshold: 0.001,
        count: map.values().sum::<i64>() as u64,
        sum: map.values().sum::<i64>() as f64 * 0.5,
        positive_spans,
        positive_buckets,
        ..Histogram::default()
    }
}

fn headers(chunks: &[FinishedChunk]) -> Vec<CounterResetHeader> {
    chunks
        .iter()
        .map(|c| chunk_header(&c.data).expect("header").1)
        .collect()
}

fn int_samples(hists: Vec<Histogram>) -> Vec<(i64, SampleValue)> {
    (0..)
        .map(|i| i * 1000)
        .zip(hists.into_iter().map(SampleValue::Histogram))
        .collect()
}

fn float_samples(hists: Vec<Histogram>) -> Vec<(i64, SampleValue)> {
    (0..)
        .map(|i| i * 1000)
        .zip(
            hists
                .iter()
                .map(|h| SampleValue::FloatHistogram(h.to_float())),
        )
        .collect()
}

#[test]
fn an_empty_bucket_may_vanish_without_a_new_chunk() {
    use CounterResetHint::Unknown;
    let hists = vec![
        int_hist(Unknown, &[(0, 1), (1, 0), (2, 3)]),
        // Bucket 1 (empty) is gone: widened back, same chunk.
        int_hist(Unknown, &[(0, 2), (2, 3)]),
        // Bucket 1 gone and bucket 7 new: the chunk is recoded and the sample widened.
        int_hist(Unknown, &[(0, 2), (2, 4), (7, 1)]),
    ];
    for samples in [int_samples(hists.clone()), float_samples(hists)] {
        let chunks = encode(&samples, CutHeaders::Compaction);
        assert_eq!(chunks.len(), 1, "{samples:?}");
        let decoded = decode_all(&chunks);
        assert_same_observations(&decoded, &samples, "vanishing empty bucket");
        let SampleValue::Histogram(last) = &decode_all(&encode(
            &int_samples(vec![decoded_int(&decoded[2])]),
            CutHeaders::Compaction,
        ))[0]
            .1
        else {
            panic!("an integer histogram");
        };
        assert_eq!(last.positive_spans, vec![Span::new(0, 3), Span::new(4, 1)]);
    }
}

/// `v` as an integer histogram (float histograms of integer counts converted back).
fn decoded_int(v: &(i64, SampleValue)) -> Histogram {
    match &v.1 {
        SampleValue::Histogram(h) => h.clone(),
        SampleValue::FloatHistogram(f) => {
            let counts: Vec<(i64, i64)> = spans::BucketIndices::new(&f.positive_spans)
                .zip(f.positive_buckets.iter().map(|&c| c as i64))
                .collect();
            let mut h = int_hist(CounterResetHint::Unknown, &counts);
            h.zero_threshold = f.zero_threshold;
            h
        }
        SampleValue::Float(_) => panic!("not a histogram"),
    }
}

#[test]
fn a_used_bucket_vanishing_or_shrinking_is_a_counter_reset() {
    use CounterResetHint::Unknown;
    let hists = vec![
        int_hist(Unknown, &[(0, 1), (1, 5)]),
        int_hist(Unknown, &[(0, 9)]),
        int_hist(Unknown, &[(0, 8), (1, 9)]),
        int_hist(Unknown, &[(0, 9), (1, 9)]),
    ];
    for samples in [int_samples(hists.clone()), float_samples(hists)] {
        let chunks = encode(&samples, CutHeaders::Compaction);
        use CounterResetHeader::{CounterReset, Unknown};
        assert_eq!(headers(&chunks), [Unknown, CounterReset, CounterReset]);
        assert_same_observations(&decode_all(&chunks), &samples, "resets");
    }
}

#[test]
fn gauge_and_counter_histograms_never_share_a_chunk() {
    use CounterResetHint::{Gauge, Unknown};
    let hists = vec![
        int_hist(Gauge, &[(0, 5)]),
        int_hist(Gauge, &[(0, 2), (3, 1)]),
        int_hist(Unknown, &[(0, 2), (3, 1)]),
        int_hist(Gauge, &[(0, 1)]),
    ];
    use CounterResetHeader as H;
    // Integer histograms: a counter histogram after a gauge chunk gets "not reset" (current
    // Prometheus' `appendable` returns that hint for a gauge chunk; 2.42's head wrote 00).
    let chunks = encode(&int_samples(hists.clone()), CutHeaders::Compaction);
    assert_eq!(headers(&chunks), [H::Gauge, H::NotCounterReset, H::Gauge]);
    // Float histograms: only a counter reset gives a header, so it is unknown.
    let chunks = encode(&float_samples(hists), CutHeaders::Compaction);
    assert_eq!(headers(&chunks), [H::Gauge, H::Unknown, H::Gauge]);
    let decoded = decode_all(&chunks);
    let hint = |i: usize| match &decoded[i].1 {
        SampleValue::FloatHistogram(h) => h.counter_reset_hint,
        _ => panic!("float histogram"),
    };
    assert_eq!(hint(0), Gauge);
    assert_eq!(hint(1), Gauge);
    assert_eq!(hint(2), Unknown);
}

#[test]
fn custom_bucket_histograms_round_trip_and_cut_on_new_bounds() {
    let custom = |bounds: &[f64], counts: &[(i64, i64)]| Histogram {
        schema: model::CUSTOM_BUCKETS_SCHEMA,
        zero_threshold: 0.0,
        custom_values: bounds.to_vec(),
        ..int_hist(CounterResetHint::Unknown, counts)
    };
    let a = [0.1, 0.5, 1.0, 2.5];
    let b = [0.1, 0.5, 1.0, 2.5, 1e6];
    let hists = vec![
        custom(&a, &[(0, 1), (2, 1)]),
        custom(&a, &[(0, 2), (1, 1), (2, 1)]),
        custom(&b, &[(0, 2), (1, 1), (2, 1)]),
    ];
    for samples in [int_samples(hists.clone()), float_samples(hists)] {
        let chunks = encode(&samples, CutHeaders::Compaction);
        use CounterResetHeader::{CounterReset, Unknown};
        assert_eq!(headers(&chunks), [Unknown, CounterReset]);
        let decoded = decode_all(&chunks);
        assert_same_observations(&decoded, &samples, "custom buckets");
        for ((_, got), want) in decoded.iter().zip([&a[..], &a, &b]) {
            let bounds = match got {
                SampleValue::Histogram(h) => &h.custom_values,
                SampleValue::FloatHistogram(h) => &h.custom_values,
                SampleValue::Float(_) => panic!("histogram"),
            };
            assert_eq!(bounds.as_slice(), want);
        }
    }
}

#[test]
fn a_change_of_sample_type_cuts_a_chunk() {
    let h = int_hist(CounterResetHint::Unknown, &[(1, 2)]);
    let samples = vec![
        (0, SampleValue::Float(1.0)),
        (1, SampleValue::Float(2.0)),
        (2, SampleValue::Histogram(h.clone())),
        (3, SampleValue::Histogram(h.clone())),
        (4, SampleValue::FloatHistogram(h.to_float())),
        (5, SampleValue::Float(f64::from_bits(STALE_NAN_BITS))),
    ];
    let chunks = encode(&samples, CutHeaders::Compaction);
    let encodings: Vec<u8> = chunks.iter().map(|c| c.encoding).collect();
    assert_eq!(
        encodings,
        [
            ENCODING_XOR,
            ENCODING_HISTOGRAM,
            ENCODING_FLOAT_HISTOGRAM,
            ENCODING_XOR
        ]
    );
    let ranges: Vec<(i64, i64)> = chunks.iter().map(|c| (c.min_time, c.max_time)).collect();
    assert_eq!(ranges, [(0, 1), (2, 3), (4, 4), (5, 5)]);
    assert_same_observations(&decode_all(&chunks), &samples, "mixed types");
}

#[test]
fn head_cuts_derive_the_header_from_the_previous_chunk() {
    use CounterResetHint::Unknown;
    let hists: Vec<Histogram> = (0..125).map(|i| int_hist(Unknown, &[(0, i)])).collect();
    use CounterResetHeader as H;
    let samples = float_samples(hists);
    let chunks = encode(&samples, CutHeaders::Head);
    assert_eq!(headers(&chunks), [H::Unknown, H::NotCounterReset]);
    assert_eq!(chunks[0].max_time, 119_000);
    let chunks = encode(&samples, CutHeaders::Compaction);
    assert_eq!(headers(&chunks), [H::Unknown, H::Unknown]);
}

#[test]
fn invalid_histograms_are_refused() {
    let mut enc = SeriesEncoder::new(CutHeaders::Compaction);
    let mut h = int_hist(CounterResetHint::Unknown, &[(0, 1), (1, 2)]);
    h.positive_buckets.pop();
    let err = enc.append_histogram(42, &h).unwrap_err();
    assert!(err.to_string().contains("t=42"), "{err}");
    assert!(err.to_string().contains("2 buckets, 1"), "{err}");
    let mut h = int_hist(CounterResetHint::Unknown, &[(0, 1)]);
    h.schema = 53;
    assert!(enc
        .append_histogram(1, &h)
        .unwrap_err()
        .to_string()
        .contains("unknown schema 53"));
    h.schema = 3;
    h.custom_values = vec![1.0];
    assert!(enc
        .append_float_histogram(1, &h.to_float())
        .unwrap_err()
        .to_string()
        .contains("custom bucket bounds"));
    assert!(enc.finish().is_empty());
}

//! The expectations of Thanos' native histogram tests, value for value:
//! `TestDownSampleNativeHistogram` (the case Thanos runs: "float histogram with 30 samples
//! with counter resets and 30s scrape interval", expected values computed by its helpers
//! `sumHistograms` and `expectedFloatHistogramsCounter`, ported here on top of [`arith`])
//! `TestDownsampleNativeHistograms`' "regular NH downsampling" (its literal vectors) and
//! `TestDownsampleMixedChunkTypes` (a series of float histograms, then floats).
//! Prometheus' `GenerateTestFloatHistogram(s)` is reimplemented. Like Thanos' tests, floats
//! are compared with an absolute margin of 1e-9, spans and hints exactly.
//!
//! [`arith`]: crate::tsdb::histogram::arith

use super::super::aggr::{Aggr, AggrChunk};
use super::super::aggregate::AggrInput;
use super::super::builder::AggrOutput;
use super::super::histogram::HistogramSample;
use super::super::histogram_aggr::downsample_histogram_aggr;
use super::super::histogram_raw::downsample_histogram_raw;
use super::super::series::{downsample_series, InputChunk, Scratch};
use super::xor_samples;
use crate::tsdb::chunks::ENCODING_FLOAT_HISTOGRAM;
use crate::tsdb::histogram::{
    CounterResetHint, FloatChunk, FloatHistogram, FloatHistogramIter, Span,
};
use crate::units::{MINUTE_MS, RESOLUTION_1H_MS as H1, RESOLUTION_5M_MS as M5};

/// Prometheus' `tsdbutil.GenerateTestFloatHistogram`.
fn test_float_histogram(i: i64) -> FloatHistogram {
    let f = i as f64;
    let buckets = vec![f + 1.0, f + 2.0, f + 1.0, f + 1.0];
    FloatHistogram {
        count: 12.0 + f * 9.0,
        zero_count: 2.0 + f,
        zero_threshold: 0.001,
        sum: 18.4 * (f + 1.0),
        schema: 1,
        positive_spans: vec![Span::new(0, 2), Span::new(1, 2)],
        positive_buckets: buckets.clone(),
        negative_spans: vec![Span::new(0, 2), Span::new(1, 2)],
        negative_buckets: buckets,
        ..FloatHistogram::default()
    }
}

/// Thanos' `generateFloatHistograms`: `GenerateTestFloatHistograms(n)` for each `n`, each
/// run starting over (a counter reset) with hints "not reset" after its first.
fn generate(runs: &[i64]) -> Vec<FloatHistogram> {
    runs.iter()
        .flat_map(|&n| {
            (0..n).map(|i| {
                let mut h = test_float_histogram(i);
                if i > 0 {
                    h.counter_reset_hint = CounterResetHint::NotCounterReset;
                }
                h
            })
        })
        .collect()
}

/// Thanos' `sumHistograms`.
fn sum_histograms(hs: &[FloatHistogram]) -> FloatHistogram {
    let mut sum = hs[0].clone();
    for h in &hs[1..] {
        sum.add(h).expect("add");
    }
    sum.counter_reset_hint = CounterResetHint::Gauge;
    sum
}

/// Thanos' `expectedFloatHistogramsCounter` (the last of `counterResetAdjustFloatHistograms`).
fn expected_counter(hs: &[FloatHistogram], hint: CounterResetHint) -> FloatHistogram {
    let mut counter = hs[0].clone();
    for pair in hs.windows(2) {
        if pair[1].detect_reset(&pair[0]).expect("detect") {
            counter.add(&pair[1]).expect("add");
        } else {
            let mut delta = pair[1].clone();
            delta.sub(&pair[0]).expect("sub");
            counter.add(&delta).expect("add");
        }
    }
    counter.counter_reset_hint = hint;
    counter
}

fn near(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9
}

fn near_all(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| near(*x, *y))
}

/// Go's `EquateApprox(0, 1e-9)` on a float histogram.
fn assert_near(got: &FloatHistogram, want: &FloatHistogram, what: &str) {
    let ok = got.counter_reset_hint == want.counter_reset_hint
        && got.schema == want.schema
        && got.zero_threshold == want.zero_threshold
        && near(got.zero_count, want.zero_count)
        && near(got.count, want.count)
        && near(got.sum, want.sum)
        && got.positive_spans == want.positive_spans
        && got.negative_spans == want.negative_spans
        && near_all(&got.positive_buckets, &want.positive_buckets)
        && near_all(&got.negative_buckets, &want.negative_buckets);
    assert!(ok, "{what}:\n got {got:?}\nwant {want:?}");
}

/// The count, sum and counter samples of a histogram aggregate chunk.
type Decoded = (
    Vec<(i64, f64)>,
    Vec<(i64, FloatHistogram)>,
    Vec<(i64, FloatHistogram)>,
);

fn decode_histogram_chunk(out: &AggrOutput) -> Decoded {
    let chunk = AggrChunk::parse(&out.data).expect("parses");
    assert!(chunk.get(Aggr::Min).is_none() && chunk.get(Aggr::Max).is_none());
    let histograms = |a: Aggr| {
        let sub = chunk.get(a).expect("present");
        assert_eq!(sub.encoding, ENCODING_FLOAT_HISTOGRAM);
        FloatHistogramIter::new(sub.data)
            .collect::<Result<Vec<_>, _>>()
            .expect("decodes")
    };
    (
        xor_samples(chunk.get(Aggr::Count).expect("count").data),
        histograms(Aggr::Sum),
        histograms(Aggr::Counter),
    )
}

/// Thanos' `chunksFromHistogramSamples`: float histogram chunks, a new one at each reset.
fn chunks_from(samples: &[(i64, FloatHistogram)]) -> (Vec<InputChunk>, Vec<u8>) {
    let mut runs: Vec<Vec<&(i64, FloatHistogram)>> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        if i == 0 || s.1.detect_reset(&samples[i - 1].1).expect("detect") {
            runs.push(Vec::new());
        }
        runs.last_mut().expect("a run").push(s);
    }
    let mut arena = Vec::new();
    let chunks = runs
        .iter()
        .map(|run| {
            let mut chunk = FloatChunk::new();
            for (t, h) in run {
                chunk.append(None, *t, h);
            }
            let start = arena.len();
            arena.extend_from_slice(chunk.bytes());
            InputChunk {
                min_time: run[0].0,
                max_time: run[run.len() - 1].0,
                encoding: ENCODING_FLOAT_HISTOGRAM,
                data: start..arena.len(),
            }
        })
        .collect();
    (chunks, arena)
}

fn as_input(out: &[AggrOutput]) -> (Vec<InputChunk>, Vec<u8>) {
    let mut arena = Vec::new();
    let chunks = out
        .iter()
        .map(|o| {
            let start = arena.len();
            arena.extend_from_slice(&o.data);
            InputChunk {
                min_time: o.min_time,
                max_time: o.max_time,
                encoding: crate::tsdb::chunks::ENCODING_AGGR,
                data: start..arena.len(),
            }
        })
        .collect();
    (chunks, arena)
}

#[test]
fn thanos_float_histogram_with_counter_resets() {
    use CounterResetHint::{NotCounterReset, Unknown};
    let samples: Vec<(i64, FloatHistogram)> = generate(&[15, 5, 10])
        .into_iter()
        .enumerate()
        .map(|(i, h)| (i as i64 * 30_000, h))
        .collect();
    let (chunks, arena) = chunks_from(&samples);
    assert_eq!(chunks.len(), 3, "two resets");
    let mut scratch = Scratch::default();
    let five = downsample_series(&chunks, &arena, 0, M5, &mut scratch).expect("5m");
    assert_eq!(five.len(), 1);
    let (count, sum, counter) = decode_histogram_chunk(&five[0]);
    assert_eq!(count, [(299_999, 10.0), (599_999, 10.0), (870_000, 10.0)]);
    let stamps = [299_999, 599_999, 870_000];
    let want_counter = [
        expected_counter(&generate(&[10]), Unknown),
        expected_counter(&generate(&[15, 5]), NotCounterReset),
        expected_counter(&generate(&[15, 5, 10]), NotCounterReset),
    ];
    let second: Vec<FloatHistogram> = generate(&[15])[10..]
        .iter()
        .cloned()
        .chain(generate(&[5]))
        .collect();
    let want_sum = [
        sum_histograms(&generate(&[10])),
        sum_histograms(&second),
        sum_histograms(&generate(&[10])),
    ];
    for i in 0..3 {
        assert_eq!((counter[i].0, sum[i].0), (stamps[i], stamps[i]));
        assert_near(&counter[i].1, &want_counter[i], &format!("5m counter {i}"));
        assert_near(&sum[i].1, &want_sum[i], &format!("5m sum {i}"));
    }
    let (c5, a5) = as_input(&five);
    let hour = downsample_series(&c5, &a5, M5, H1, &mut scratch).expect("1h");
    assert_eq!(hour.len(), 1);
    let (count, sum, counter) = decode_histogram_chunk(&hour[0]);
    assert_eq!(count, [(870_000, 30.0)]);
    assert_eq!((counter.len(), sum.len()), (1, 1));
    assert_eq!((counter[0].0, sum[0].0), (870_000, 870_000));
    assert_near(
        &counter[0].1,
        &expected_counter(&generate(&[15, 5, 10]), Unknown),
        "1h counter",
    );
    assert_near(
        &sum[0].1,
        &sum_histograms(&generate(&[15, 5, 10])),
        "1h sum",
    );
}

/// The histogram of "regular NH downsampling", with `count` observations per bucket.
fn regular(count: f64, sum: f64, hint: CounterResetHint) -> FloatHistogram {
    FloatHistogram {
        counter_reset_hint: hint,
        count: 2.0 * count,
        sum,
        schema: 3,
        zero_threshold: 2.938_735_877_055_719e-39,
        positive_spans: vec![Span::new(-97, 1), Span::new(4, 1)],
        positive_buckets: vec![count, count],
        ..FloatHistogram::default()
    }
}

#[test]
fn thanos_regular_native_histogram_downsampling() {
    use CounterResetHint::{Gauge, NotCounterReset, Unknown};
    const STEP: i64 = MINUTE_MS;
    let data: Vec<HistogramSample> = std::iter::successors(Some(1_688_526_018_213i64), |t| {
        Some(t + STEP).filter(|&t| t < 1_688_562_258_213)
    })
    .map(|t| HistogramSample {
        t,
        h: regular(1.0, 0.000551209, Unknown),
        chunk: 0,
    })
    .collect();
    let five = downsample_histogram_raw(&data, M5).expect("5m");
    assert_eq!(five.len(), 1);
    let (count, sum, counter) = decode_histogram_chunk(&five[0]);
    assert_eq!(count.len(), 121);
    for (i, (_, c)) in count.iter().enumerate() {
        assert_eq!(*c, if i == 120 { 4.0 } else { 5.0 }, "count {i}");
    }
    // The counter does not grow: every window holds the first histogram.
    assert_eq!(counter.len(), 1 + data.len() / 5);
    for (i, (_, h)) in counter.iter().enumerate() {
        let hint = if i == 0 { Unknown } else { NotCounterReset };
        assert_near(h, &regular(1.0, 0.000551209, hint), &format!("counter {i}"));
    }
    for (i, (_, h)) in sum.iter().enumerate() {
        let want = if i == 120 {
            regular(4.0, 0.002204836, Gauge)
        } else {
            regular(5.0, 0.002756045, Gauge)
        };
        assert_near(h, &want, &format!("5m sum {i}"));
    }
    let parsed: Vec<AggrInput<'_>> = five
        .iter()
        .map(|o| AggrInput {
            min_time: o.min_time,
            max_time: o.max_time,
            chunk: AggrChunk::parse(&o.data).expect("parses"),
            source: 0,
        })
        .collect();
    let hour = downsample_histogram_aggr(&parsed, M5, H1).expect("1h");
    assert!(!hour.is_empty());
    for out in &hour {
        let (_, sum, _) = decode_histogram_chunk(out);
        for (i, (_, h)) in sum.iter().enumerate() {
            let want = if i == 10 {
                regular(4.0, 0.002204836, Gauge)
            } else {
                regular(60.0, 0.03307253999999999, Gauge)
            };
            assert_near(h, &want, &format!("1h sum {i}"));
        }
    }
}

#[test]
fn thanos_mixed_chunk_types() {
    use CounterResetHint::{Gauge, NotCounterReset, Unknown};
    // Thanos' `TestDownsampleMixedChunkTypes`: 20 float histograms, then 20 floats, 15s apart.
    let histograms = generate(&[20]);
    let mut chunk = FloatChunk::new();
    for (i, h) in histograms.iter().enumerate() {
        chunk.append(None, 15_000 * (i as i64 + 1), h);
    }
    let floats: Vec<(i64, f64)> = (0..20).map(|i| (315_000 + 15_000 * i, i as f64)).collect();
    let xor_data = super::xor(&floats);
    let mut arena = chunk.bytes().to_vec();
    let split = arena.len();
    arena.extend_from_slice(&xor_data);
    let chunks = vec![
        InputChunk {
            min_time: 15_000,
            max_time: 300_000,
            encoding: ENCODING_FLOAT_HISTOGRAM,
            data: 0..split,
        },
        InputChunk {
            min_time: 315_000,
            max_time: 600_000,
            encoding: crate::tsdb::chunks::ENCODING_XOR,
            data: split..arena.len(),
        },
    ];
    let mut scratch = Scratch::default();
    let five = downsample_series(&chunks, &arena, 0, M5, &mut scratch).expect("5m");
    assert_eq!(five.len(), 2, "one chunk per kind");
    let (count, sum, counter) = decode_histogram_chunk(&five[0]);
    assert_eq!(count, [(299_999, 19.0), (300_000, 1.0)]);
    let mut want = test_float_histogram(18);
    want.counter_reset_hint = Unknown;
    assert_near(&counter[0].1, &want, "5m counter 0");
    let mut want = test_float_histogram(19);
    want.counter_reset_hint = NotCounterReset;
    assert_near(&counter[1].1, &want, "5m counter 1");
    assert_near(&sum[0].1, &sum_histograms(&histograms[..19]), "5m sum 0");
    let mut want = test_float_histogram(19);
    want.counter_reset_hint = Gauge;
    assert_near(&sum[1].1, &want, "5m sum 1");
    let float = super::decode(&five[1]);
    assert_eq!(
        float[Aggr::Count.index()].as_deref(),
        Some(&[(599_999, 19.0), (600_000, 1.0)][..])
    );
    assert_eq!(
        float[Aggr::Counter.index()].as_deref(),
        Some(
            &[
                (315_000, 0.0),
                (599_999, 18.0),
                (600_000, 19.0),
                (600_000, 19.0)
            ][..]
        )
    );
    assert_eq!(
        float[Aggr::Sum.index()].as_deref(),
        Some(&[(599_999, 171.0), (600_000, 19.0)][..])
    );

    let (c5, a5) = as_input(&five);
    let hour = downsample_series(&c5, &a5, M5, H1, &mut scratch).expect("1h");
    assert_eq!(hour.len(), 2);
    let (count, sum, counter) = decode_histogram_chunk(&hour[0]);
    assert_eq!(count, [(300_000, 20.0)]);
    let mut want = test_float_histogram(19);
    want.counter_reset_hint = Unknown;
    assert_near(&counter[0].1, &want, "1h counter");
    assert_near(&sum[0].1, &sum_histograms(&histograms), "1h sum");
    let float = super::decode(&hour[1]);
    assert_eq!(
        float[Aggr::Count.index()].as_deref(),
        Some(&[(600_000, 20.0)][..])
    );
    assert_eq!(
        float[Aggr::Counter.index()].as_deref(),
        Some(&[(315_000, 0.0), (600_000, 19.0), (600_000, 19.0)][..])
    );
    assert_eq!(
        float[Aggr::Sum.index()].as_deref(),
        Some(&[(600_000, 190.0)][..])
    );
}

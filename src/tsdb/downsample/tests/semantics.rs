//! Windows, chunk counts, counters, empty and broken series, each checked against a plain
//! computation written out in the test.

use super::super::aggr::Aggr;
use super::super::batch::{
    aggregate_windows, current_window, target_chunk_count, FloatAggregator, Sample,
};
use super::super::raw::{downsample_raw, downsample_raw_in};
use super::super::series::{downsample_series, InputChunk, Scratch};
use super::super::DownsampleError;
use super::{aggr_chunk, decode, decode_all, raw_chunks, xor, Pairs, NAN, STALE};
use crate::tsdb::chunks::{
    ENCODING_AGGR, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR,
};
use crate::units::{HOUR_MS, MINUTE_MS, RESOLUTION_1H_MS, RESOLUTION_5M_MS as M5};

#[test]
fn window_alignment_edges() {
    assert_eq!(current_window(0, M5), M5 - 1);
    assert_eq!(current_window(1, M5), M5 - 1);
    assert_eq!(
        current_window(M5 - 1, M5),
        M5 - 1,
        "the last millisecond is in the window"
    );
    assert_eq!(
        current_window(M5, M5),
        2 * M5 - 1,
        "the next window starts at a multiple"
    );
    assert_eq!(
        current_window(1_735_689_600_000, RESOLUTION_1H_MS),
        1_735_693_199_999
    );
    assert_eq!(
        current_window(41, 1),
        41,
        "resolution 1: every millisecond is a window"
    );
    assert_eq!(current_window(i64::MAX - 5, M5), i64::MAX, "saturates");
}

fn stamps(data: &[(i64, f64)], resolution: i64) -> Vec<(i64, usize)> {
    let samples: Vec<Sample> = data.iter().map(|&(t, v)| Sample { t, v }).collect();
    let mut out = Vec::new();
    aggregate_windows(
        &samples,
        resolution,
        &mut FloatAggregator::default(),
        |t, a| {
            out.push((t, a.count));
            Ok::<(), ()>(())
        },
    )
    .expect("no error");
    out
}

#[test]
fn window_stamps_are_window_ends_but_the_last_is_the_last_sample() {
    let data = [
        (0, 1.0),
        (M5 - 1, 1.0),
        (M5, 1.0),
        (650_000, 1.0),
        (899_000, 1.0),
    ];
    assert_eq!(
        stamps(&data, M5),
        [(M5 - 1, 2), (2 * M5 - 1, 1), (899_000, 2)]
    );
    // A last sample on the window's last millisecond is stamped with it either way.
    assert_eq!(stamps(&[(5, 1.0), (M5 - 1, 1.0)], M5), [(M5 - 1, 2)]);
    // Windows without samples are not emitted.
    assert_eq!(
        stamps(&[(5, 1.0), (10 * M5, 1.0)], M5),
        [(M5 - 1, 1), (10 * M5, 1)]
    );
    assert_eq!(stamps(&[], M5), []);
}

/// Thanos' `targetChunkCount`, written as Go writes it.
fn go_target_chunk_count(mint: i64, maxt: i64, in_res: i64, out_res: i64, count: usize) -> usize {
    let max_samples = ((maxt - mint) / out_res) as f64;
    let mut fullness = count as f64 / ((maxt - mint) as f64 / in_res as f64);
    if fullness > 1.0 {
        fullness = 1.0;
    }
    let expected = (max_samples * fullness) as i64 + 1;
    let mut x = 1;
    while expected / x > 140 {
        x += 1;
    }
    x as usize
}

#[test]
fn target_chunk_count_matches_the_go_loop() {
    for span_h in [0i64, 1, 2, 24, 40, 48, 24 * 14, 24 * 400] {
        for count in [0usize, 1, 10, 240, 11_520, 100_000, 2_000_000] {
            for (in_res, out_res) in [(MINUTE_MS, M5), (M5, RESOLUTION_1H_MS), (1, 2)] {
                let (mint, maxt) = (1_735_689_600_000, 1_735_689_600_000 + span_h * HOUR_MS);
                assert_eq!(
                    target_chunk_count(mint, maxt, in_res, out_res, count),
                    go_target_chunk_count(mint, maxt, in_res, out_res, count),
                    "span {span_h}h, {count} samples, {in_res} -> {out_res}"
                );
            }
        }
    }
    // 48h of 15s samples at 5m: 576 windows, cut into 5 chunks.
    assert_eq!(
        target_chunk_count(0, 48 * HOUR_MS, MINUTE_MS, M5, 11_520),
        5
    );
}

/// 15s samples for `hours`, a counter that resets every `reset_every` samples.
fn counter_series(hours: i64, reset_every: usize) -> Vec<Sample> {
    let mut v = 0.0;
    (0..hours * 240)
        .map(|i| {
            let i = i as usize;
            v = if reset_every > 0 && i % reset_every == reset_every - 1 {
                3.0
            } else {
                v + (i % 7) as f64
            };
            Sample {
                t: 1_735_603_200_000 + i as i64 * 15_000 + (i % 3) as i64,
                v,
            }
        })
        .collect()
}

#[test]
fn raw_batches_never_split_a_window_and_match_a_plain_computation() {
    let raw = counter_series(48, 1000);
    let out = downsample_raw(&raw, M5).expect("downsamples");
    assert_eq!(out.len(), 5, "576 windows at about 140 per chunk");
    let mut windows: Vec<(i64, usize, f64, f64, f64)> = Vec::new();
    for c in &out {
        let a = decode(c);
        let get = |x: Aggr| a[x.index()].clone().expect("present");
        let (count, sum, min, max) = (
            get(Aggr::Count),
            get(Aggr::Sum),
            get(Aggr::Min),
            get(Aggr::Max),
        );
        assert_eq!(
            (c.min_time, c.max_time),
            (count[0].0, count[count.len() - 1].0)
        );
        assert_eq!(c.num_samples, count.len() as u64);
        for i in 0..count.len() {
            windows.push((
                count[i].0,
                count[i].1 as usize,
                sum[i].1,
                min[i].1,
                max[i].1,
            ));
        }
    }
    // Plain: group the raw samples by window, in time order.
    let mut plain: Vec<(i64, usize, f64, f64, f64)> = Vec::new();
    for s in &raw {
        let end = s.t - s.t % M5 + M5 - 1;
        match plain.last_mut() {
            Some(w) if w.0 == end => {
                w.1 += 1;
                w.2 += s.v;
                w.3 = w.3.min(s.v);
                w.4 = w.4.max(s.v);
            }
            _ => plain.push((end, 1, s.v, s.v, s.v)),
        }
    }
    assert_eq!(
        windows.len(),
        plain.len(),
        "each window once: no window split between chunks"
    );
    for (i, (got, want)) in windows.iter().zip(&plain).enumerate() {
        // Each chunk's last window is stamped with its last raw sample, inside the window.
        assert!(
            got.0 == want.0 || (got.0 <= want.0 && got.0 > want.0 - M5),
            "window {i}: stamp {} vs end {}",
            got.0,
            want.0
        );
        assert_eq!(
            (got.1, got.2, got.3, got.4),
            (want.1, want.2, want.3, want.4),
            "window {i}"
        );
    }
}

/// The counter aggregate of a chunk made from `raw`, computed plainly: the first raw sample,
/// per window the increase since it with each decrease counted as a reset, the last raw
/// value at the last window's stamp.
fn plain_counter(raw: &[Sample], resolution: i64) -> Pairs {
    let mut out = vec![(raw[0].t, raw[0].v)];
    let (mut total, mut prev) = (raw[0].v, raw[0].v);
    for (i, s) in raw.iter().enumerate() {
        if i > 0 {
            total += if s.v < prev { s.v } else { s.v - prev };
            prev = s.v;
        }
        let last_in_window = raw
            .get(i + 1)
            .is_none_or(|n| n.t / resolution != s.t / resolution);
        if last_in_window {
            let end = s.t - s.t % resolution + resolution - 1;
            let stamp = if i + 1 == raw.len() { s.t } else { end };
            out.push((stamp, total));
        }
    }
    let last_stamp = out[out.len() - 1].0;
    out.push((last_stamp, raw[raw.len() - 1].v));
    out
}

#[test]
fn counter_aggregate_applies_resets() {
    let raw = counter_series(48, 37); // a reset every 37 samples: several per window
    let out = downsample_raw(&raw, M5).expect("downsamples");
    let mut start = 0;
    for c in &out {
        let counter = decode(c)[Aggr::Counter.index()].clone().expect("counter");
        let first_t = counter[0].0;
        assert_eq!(
            raw[start].t, first_t,
            "chunks are contiguous stretches of raw samples"
        );
        let end = raw
            .iter()
            .position(|s| s.t > c.max_time)
            .unwrap_or(raw.len());
        assert_eq!(counter, plain_counter(&raw[start..end], M5));
        start = end;
    }
    assert_eq!(start, raw.len());
}

#[test]
fn empty_series_give_no_chunks() {
    let run = |chunks: &[&[(i64, f64)]]| {
        let (c, a) = raw_chunks(chunks);
        downsample_series(&c, &a, 0, M5, &mut Scratch::default()).expect("fine")
    };
    assert!(run(&[]).is_empty(), "no chunks");
    assert!(run(&[&[]]).is_empty(), "a chunk without samples");
    assert!(
        run(&[&[(10, STALE), (20, STALE)]]).is_empty(),
        "only staleness markers"
    );
    assert!(run(&[&[(10, NAN), (20, f64::NAN)]]).is_empty(), "only NaNs");
    assert!(downsample_raw(&[], M5).expect("fine").is_empty());
}

#[test]
fn negative_and_backwards_samples_are_dropped_as_thanos_drops_them() {
    let (c, a) = raw_chunks(&[&[(-100, 7.0), (10, 1.0), (30, 2.0), (20, 5.0), (40, 3.0)]]);
    let out = decode_all(&downsample_series(&c, &a, 0, M5, &mut Scratch::default()).expect("fine"));
    assert_eq!(out[0][Aggr::Count.index()], Some(vec![(40, 3.0)]));
    assert_eq!(out[0][Aggr::Sum.index()], Some(vec![(40, 6.0)]));
}

#[test]
fn too_many_windows_in_one_chunk_is_an_error_not_a_panic() {
    let raw: Vec<Sample> = (0..70_000).map(|i| Sample { t: 2 * i, v: 1.0 }).collect();
    let err = downsample_raw_in(&raw, 1, 1).expect_err("65535 samples at most");
    assert!(matches!(err, DownsampleError::TooLarge(_)), "{err:?}");
}

fn one_chunk(encoding: u8, data: Vec<u8>) -> (Vec<InputChunk>, Vec<u8>) {
    let chunks = vec![InputChunk {
        min_time: 0,
        max_time: 10,
        encoding,
        data: 0..data.len(),
    }];
    (chunks, data)
}

#[test]
fn broken_histograms_and_unknown_encodings_are_refused_by_chunk() {
    let go = |(c, a): (Vec<InputChunk>, Vec<u8>), from| {
        downsample_series(&c, &a, from, RESOLUTION_1H_MS, &mut Scratch::default())
    };
    let corrupt_at = |err: DownsampleError| match err {
        DownsampleError::Corrupt { chunk, .. } => chunk,
        other => panic!("{other:?}"),
    };
    // Two samples announced, none there.
    let hist = vec![0x00, 0x02, 0x40, 0x00];
    let err = go(one_chunk(ENCODING_HISTOGRAM, hist.clone()), 0).expect_err("histogram");
    assert_eq!(corrupt_at(err), 0);
    let err = go(one_chunk(ENCODING_FLOAT_HISTOGRAM, hist), M5)
        .expect_err("plain histogram in a 5m block");
    assert_eq!(corrupt_at(err), 0);
    // An empty plain chunk in a downsampled block is skipped whatever its encoding.
    assert!(go(one_chunk(ENCODING_HISTOGRAM, vec![0, 0, 0]), M5)
        .expect("skipped")
        .is_empty());
    // Start-timestamp histogram chunks are refused, as Thanos refuses them.
    assert_eq!(
        go(one_chunk(6, vec![0, 1, 0]), 0).expect_err("encoding 6"),
        DownsampleError::Encoding {
            chunk: 0,
            encoding: 6
        }
    );
    // A histogram aggregate chunk whose counter announces a histogram it does not hold.
    let mut data = Vec::new();
    let (count, fh) = (xor(&[(299_999, 2.0)]), vec![0x00, 0x01, 0x00]);
    super::super::aggr::encode_aggr_chunk(
        [
            Some((ENCODING_XOR, &count)),
            Some((ENCODING_FLOAT_HISTOGRAM, &fh)),
            None,
            None,
            Some((ENCODING_FLOAT_HISTOGRAM, &fh)),
        ],
        &mut data,
    );
    let err = go(one_chunk(ENCODING_AGGR, data), M5).expect_err("histogram aggregate");
    let DownsampleError::Corrupt { chunk, offset, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(chunk, 0);
    // The counter's data starts after the count (1 + 1 + len) and sum (1 + 1 + 3), the two
    // absent aggregates (2 bytes) and its length and encoding bytes.
    assert!(offset >= 2 + count.len() + 5 + 2 + 2, "{offset}");
    let (_, _, aggr) = aggr_chunk([&[(1, 1.0)], &[], &[], &[], &[]]);
    assert_eq!(
        go(one_chunk(ENCODING_AGGR, aggr), 0).expect_err("aggregate in a raw block"),
        DownsampleError::Encoding {
            chunk: 0,
            encoding: ENCODING_AGGR
        }
    );
    assert_eq!(
        go(one_chunk(4, vec![0, 0]), M5).expect_err("XOR2"),
        DownsampleError::Encoding {
            chunk: 0,
            encoding: 4
        }
    );
}

#[test]
fn corrupt_raw_chunk_names_its_position() {
    let (mut c, mut a) = raw_chunks(&[&[(1, 1.0), (2, 2.0)], &[(10, 1.0), (20, 2.0), (30, 3.0)]]);
    let second = c[1].data.clone();
    a[second.start + 1] = 50; // claims 50 samples
    c[1].data = second;
    let err = downsample_series(&c, &a, 0, M5, &mut Scratch::default()).expect_err("corrupt");
    assert!(
        matches!(err, DownsampleError::Corrupt { chunk: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn resolutions_that_cannot_be_downsampled_are_errors_not_panics() {
    let (c, a) = raw_chunks(&[&[(1, 1.0), (2, 2.0)]]);
    for (from, to) in [(0, 0), (0, -1), (M5, M5), (M5, 1), (-1, M5), (i64::MIN, 0)] {
        let err =
            downsample_series(&c, &a, from, to, &mut Scratch::default()).expect_err("refused");
        assert_eq!(err, DownsampleError::Resolution { from, to });
    }
    let raw = [Sample { t: 1, v: 1.0 }];
    assert!(downsample_raw(&raw, 0).is_err());
    assert!(downsample_raw_in(&raw, -7, 1).is_err());
    let (c, a) = super::aggr_chunks(&[[&[(1, 1.0)], &[], &[], &[], &[]]]);
    assert!(downsample_series(&c, &a, M5, RESOLUTION_1H_MS, &mut Scratch::default()).is_ok());
    let parsed = super::super::aggr::AggrChunk::parse(&a).expect("parses");
    let input = super::super::aggregate::AggrInput {
        min_time: 1,
        max_time: 1,
        chunk: parsed,
        source: 0,
    };
    for (from, to) in [(0, M5), (M5, 0), (M5, M5)] {
        assert!(
            super::super::aggregate::downsample_aggr(&[input], from, to, &mut Vec::new()).is_err(),
            "{from} -> {to}"
        );
    }
}

#[test]
fn chunk_ranges_outside_the_arena_are_errors() {
    let chunks = [InputChunk {
        min_time: 0,
        max_time: 1,
        encoding: ENCODING_XOR,
        data: 3..40,
    }];
    let err = downsample_series(&chunks, &[0; 10], 0, M5, &mut Scratch::default())
        .expect_err("bad range");
    assert!(
        matches!(err, DownsampleError::Corrupt { chunk: 0, .. }),
        "{err:?}"
    );
}

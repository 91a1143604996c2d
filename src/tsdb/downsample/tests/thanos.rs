//! The expectations of Thanos' own tests (`pkg/compact/downsample/downsample_test.go`:
//! `TestDownsample`, `TestDownsampleCounterBoundaryReset`, `TestApplyCounterResetsIterator`,
//! `TestDownsampleAggrAndNonEmptyXORChunks`, `TestDownsampleAggrAndEmptyXORChunks`),
//! reproduced here value for value: these pin our semantics to Thanos'.

use super::super::series::{downsample_series, InputChunk, Scratch};
use super::super::DownsampleError;
use super::{aggr_chunks, decode_all, expect, raw_chunks, xor, xor_samples, Pairs, NAN, STALE};
use crate::tsdb::chunks::ENCODING_XOR;

fn series(chunks: &[InputChunk], arena: &[u8], from: i64, to: i64) -> Vec<super::Aggrs> {
    decode_all(
        &downsample_series(chunks, arena, from, to, &mut Scratch::default()).expect("downsamples"),
    )
}

#[test]
fn raw_single_chunk() {
    let (c, a) = raw_chunks(&[&[
        (20, 1.0),
        (40, 2.0),
        (60, 3.0),
        (80, 1.0),
        (100, 2.0),
        (101, STALE),
        (120, 5.0),
        (180, 10.0),
        (250, 1.0),
    ]]);
    assert_eq!(
        series(&c, &a, 0, 100),
        vec![expect([
            Some(&[(99, 4.0), (199, 3.0), (250, 1.0)]),
            Some(&[(99, 7.0), (199, 17.0), (250, 1.0)]),
            Some(&[(99, 1.0), (199, 2.0), (250, 1.0)]),
            Some(&[(99, 3.0), (199, 10.0), (250, 1.0)]),
            Some(&[(20, 1.0), (99, 4.0), (199, 13.0), (250, 14.0), (250, 1.0)]),
        ])]
    );
}

#[test]
fn raw_three_chunks() {
    let (c, a) = raw_chunks(&[
        &[
            (20, 1.0),
            (40, 2.0),
            (60, 3.0),
            (80, 1.0),
            (100, 2.0),
            (101, STALE),
            (120, 5.0),
            (180, 10.0),
            (250, 2.0),
        ],
        &[
            (260, 1.0),
            (300, 10.0),
            (340, 15.0),
            (380, 25.0),
            (420, 35.0),
        ],
        &[(460, STALE), (500, 10.0), (540, 3.0)],
    ]);
    assert_eq!(
        series(&c, &a, 0, 100),
        vec![expect([
            Some(&[
                (99, 4.0),
                (199, 3.0),
                (299, 2.0),
                (399, 3.0),
                (499, 1.0),
                (540, 2.0)
            ]),
            Some(&[
                (99, 7.0),
                (199, 17.0),
                (299, 3.0),
                (399, 50.0),
                (499, 35.0),
                (540, 13.0)
            ]),
            Some(&[
                (99, 1.0),
                (199, 2.0),
                (299, 1.0),
                (399, 10.0),
                (499, 35.0),
                (540, 3.0)
            ]),
            Some(&[
                (99, 3.0),
                (199, 10.0),
                (299, 2.0),
                (399, 25.0),
                (499, 35.0),
                (540, 10.0)
            ]),
            Some(&[
                (20, 1.0),
                (99, 4.0),
                (199, 13.0),
                (299, 16.0),
                (399, 40.0),
                (499, 50.0),
                (540, 63.0),
                (540, 3.0)
            ]),
        ])]
    );
}

#[test]
fn raw_overlapping_chunks_are_refused() {
    let first: &[(i64, f64)] = &[(20, 1.0), (40, 2.0), (250, 2.0)];
    let (c, a) = raw_chunks(&[first, first, &[(260, 1.0)]]);
    let err = downsample_series(&c, &a, 0, 100, &mut Scratch::default()).expect_err("overlap");
    assert!(
        matches!(err, DownsampleError::Overlap { chunk: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn raw_first_chunk_only_nans() {
    let (c, a) = raw_chunks(&[
        &[
            (20, NAN),
            (40, NAN),
            (60, NAN),
            (80, NAN),
            (100, f64::NAN),
            (101, STALE),
            (120, NAN),
            (180, NAN),
            (250, NAN),
        ],
        &[
            (260, 1.0),
            (300, 10.0),
            (340, 15.0),
            (380, 25.0),
            (420, 35.0),
        ],
        &[(460, STALE), (500, 10.0), (540, 3.0)],
    ]);
    assert_eq!(
        series(&c, &a, 0, 100),
        vec![expect([
            Some(&[(299, 1.0), (399, 3.0), (499, 1.0), (540, 2.0)]),
            Some(&[(299, 1.0), (399, 50.0), (499, 35.0), (540, 13.0)]),
            Some(&[(299, 1.0), (399, 10.0), (499, 35.0), (540, 3.0)]),
            Some(&[(299, 1.0), (399, 25.0), (499, 35.0), (540, 10.0)]),
            Some(&[
                (260, 1.0),
                (299, 1.0),
                (399, 25.0),
                (499, 35.0),
                (540, 48.0),
                (540, 3.0)
            ]),
        ])]
    );
}

/// Thanos' `realisticChkDataWithStaleMarker`: two 15s chunks with a staleness marker and a
/// counter reset.
fn realistic_raw() -> Vec<Pairs> {
    let text = include_str!("../testdata/thanos_realistic_counter.txt");
    let mut chunks = vec![Vec::new()];
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line == "--" {
            chunks.push(Vec::new());
            continue;
        }
        let (t, v) = line.split_once(' ').expect("t v");
        let v = if v == "stale" {
            STALE
        } else {
            v.parse().expect("value")
        };
        chunks
            .last_mut()
            .expect("a chunk")
            .push((t.parse().expect("timestamp"), v));
    }
    chunks
}

#[rustfmt::skip]
const R5M_COUNT: &[(i64, f64)] = &[
    (1587690299999, 20.0), (1587690599999, 20.0), (1587690899999, 20.0), (1587691199999, 20.0),
    (1587691499999, 20.0), (1587691799999, 20.0), (1587692099999, 20.0), (1587692399999, 20.0),
    (1587692699999, 16.0), (1587692999999, 20.0), (1587693299999, 20.0), (1587693590791, 20.0),
];
#[rustfmt::skip]
const R5M_SUM: &[(i64, f64)] = &[
    (1587690299999, 9.276972e+06), (1587690599999, 9.359861e+06),
    (1587690899999, 9.447457e+06), (1587691199999, 9.542732e+06),
    (1587691499999, 9.630379e+06), (1587691799999, 9.715631e+06),
    (1587692099999, 9.799808e+06), (1587692399999, 9.888117e+06), (1587692699999, 2.98928e+06),
    (1587692999999, 81592.0), (1587693299999, 163711.0), (1587693590791, 255746.0),
];
#[rustfmt::skip]
const R5M_MIN: &[(i64, f64)] = &[
    (1587690299999, 461968.0), (1587690599999, 466070.0), (1587690899999, 470131.0),
    (1587691199999, 474913.0), (1587691499999, 479625.0), (1587691799999, 483709.0),
    (1587692099999, 488036.0), (1587692399999, 492223.0), (1587692699999, 75.0),
    (1587692999999, 2261.0), (1587693299999, 6210.0), (1587693590791, 10464.0),
];
#[rustfmt::skip]
const R5M_MAX: &[(i64, f64)] = &[
    (1587690299999, 465870.0), (1587690599999, 469951.0), (1587690899999, 474726.0),
    (1587691199999, 479368.0), (1587691499999, 483566.0), (1587691799999, 487787.0),
    (1587692099999, 492065.0), (1587692399999, 496245.0), (1587692699999, 496544.0),
    (1587692999999, 6010.0), (1587693299999, 10242.0), (1587693590791, 14956.0),
];
#[rustfmt::skip]
const R5M_COUNTER: &[(i64, f64)] = &[
    (1587690005791, 461968.0), (1587690299999, 465870.0), (1587690599999, 469951.0),
    (1587690899999, 474726.0), (1587691199999, 479368.0), (1587691499999, 483566.0),
    (1587691799999, 487787.0), (1587692099999, 492065.0), (1587692399999, 496245.0),
    (1587692699999, 498647.0), (1587692999999, 502554.0), (1587693299999, 506786.0),
    (1587693590791, 511500.0), (1587693590791, 14956.0),
];

#[test]
fn raw_realistic_15s_counter_to_5m() {
    let chunks = realistic_raw();
    assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [120, 117]);
    let (c, a) = raw_chunks(&chunks.iter().map(Vec::as_slice).collect::<Vec<_>>());
    assert_eq!(
        series(&c, &a, 0, 300_000),
        vec![expect([
            Some(R5M_COUNT),
            Some(R5M_SUM),
            Some(R5M_MIN),
            Some(R5M_MAX),
            Some(R5M_COUNTER),
        ])]
    );
}

#[test]
fn aggr_realistic_5m_to_1h() {
    let (c, a) = aggr_chunks(&[[R5M_COUNT, R5M_SUM, R5M_MIN, R5M_MAX, R5M_COUNTER]]);
    assert_eq!(
        series(&c, &a, 300_000, 3_600_000),
        vec![expect([
            Some(&[(1587693590791, 236.0)]),
            Some(&[(1587693590791, 8.0151286e+07)]),
            Some(&[(1587693590791, 75.0)]),
            Some(&[(1587693590791, 496544.0)]),
            Some(&[
                (1587690005791, 461968.0),
                (1587693590791, 511500.0),
                (1587693590791, 14956.0)
            ]),
        ])]
    );
}

#[rustfmt::skip]
const AGG_VALUES: &[(i64, f64)] = &[
    (199, 5.0), (299, 1.0), (399, 10.0), (400, 3.0), (499, 10.0), (699, 0.0), (999, 100.0),
];
#[rustfmt::skip]
const AGG_EXTREMES: &[(i64, f64)] = &[
    (199, 5.0), (299, 1.0), (399, 10.0), (400, -3.0), (499, 10.0), (699, 0.0), (999, 100.0),
];
/// Three stretches of counter samples in one aggregate: no reset between the first two, a
/// reset before the third.
#[rustfmt::skip]
const AGG_COUNTER: &[(i64, f64)] = &[
    (99, 100.0), (299, 150.0), (499, 210.0), (499, 10.0), (599, 20.0), (799, 50.0),
    (999, 120.0), (999, 50.0), (1099, 40.0), (1199, 80.0), (1299, 110.0),
];

fn agg_500_expected() -> super::Aggrs {
    expect([
        Some(&[(499, 29.0), (999, 100.0)]),
        Some(&[(499, 29.0), (999, 100.0)]),
        Some(&[(499, -3.0), (999, 0.0)]),
        Some(&[(499, 10.0), (999, 100.0)]),
        Some(&[
            (99, 100.0),
            (499, 210.0),
            (999, 320.0),
            (1299, 430.0),
            (1299, 110.0),
        ]),
    ])
}

#[test]
fn aggr_single_chunk() {
    let (c, a) = aggr_chunks(&[[
        AGG_VALUES,
        AGG_VALUES,
        AGG_EXTREMES,
        AGG_EXTREMES,
        AGG_COUNTER,
    ]]);
    assert_eq!(series(&c, &a, 499, 500), vec![agg_500_expected()]);
}

#[test]
fn aggr_to_the_same_resolution_is_identity() {
    let e = agg_500_expected();
    let [Some(count), Some(sum), Some(min), Some(max), Some(counter)] = &e else {
        panic!("all present")
    };
    let (c, a) = aggr_chunks(&[[count, sum, min, max, counter]]);
    assert_eq!(series(&c, &a, 499, 500), vec![e.clone()]);
}

#[test]
fn aggr_two_chunks() {
    let second_values: &[(i64, f64)] = &[
        (1399, 10.0),
        (1400, 3.0),
        (1499, 10.0),
        (1699, 0.0),
        (1999, 100.0),
    ];
    let second_extremes: &[(i64, f64)] = &[
        (1399, 10.0),
        (1400, -3.0),
        (1499, 10.0),
        (1699, 0.0),
        (1999, 100.0),
    ];
    let second_counter: &[(i64, f64)] = &[
        (1499, 210.0),
        (1499, 10.0),
        (1599, 20.0),
        (1799, 50.0),
        (1999, 120.0),
        (1999, 50.0),
        (2099, 40.0),
        (2199, 80.0),
        (2299, 110.0),
    ];
    let (c, a) = aggr_chunks(&[
        [
            AGG_VALUES,
            AGG_VALUES,
            AGG_EXTREMES,
            AGG_EXTREMES,
            AGG_COUNTER,
        ],
        [
            second_values,
            second_values,
            second_extremes,
            second_extremes,
            second_counter,
        ],
    ]);
    assert_eq!(
        series(&c, &a, 499, 500),
        vec![expect([
            Some(&[(499, 29.0), (999, 100.0), (1499, 23.0), (1999, 100.0)]),
            Some(&[(499, 29.0), (999, 100.0), (1499, 23.0), (1999, 100.0)]),
            Some(&[(499, -3.0), (999, 0.0), (1499, -3.0), (1999, 0.0)]),
            Some(&[(499, 10.0), (999, 100.0), (1499, 10.0), (1999, 100.0)]),
            Some(&[
                (99, 100.0),
                (499, 210.0),
                (999, 320.0),
                (1499, 530.0),
                (1999, 640.0),
                (2299, 750.0),
                (2299, 110.0)
            ]),
        ])]
    );
}

#[test]
fn aggr_overlapping_chunks_are_refused() {
    let (c, a) = aggr_chunks(&[
        [AGG_VALUES, &[], &[], &[], &[]],
        [AGG_VALUES, &[], &[], &[], &[]],
    ]);
    let err = downsample_series(&c, &a, 499, 500, &mut Scratch::default()).expect_err("overlap");
    assert!(
        matches!(err, DownsampleError::Overlap { chunk: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn aggr_four_counter_only_chunks_at_twice_the_resolution() {
    let stretch = |k: i64| {
        (0..120)
            .map(|i| (120 * k + i, (120 * k + i) as f64))
            .collect::<Vec<_>>()
    };
    let stretches: Vec<Pairs> = (0..4).map(stretch).collect();
    let chunks: Vec<[&[(i64, f64)]; 5]> = stretches
        .iter()
        .map(|s| [&[][..], &[], &[], &[], s.as_slice()])
        .collect();
    let (c, a) = aggr_chunks(&chunks);
    let mut counter = vec![(0, 0.0)];
    counter.extend((0..480).step_by(2).map(|i| (1 + i, (1 + i) as f64)));
    counter.push((479, 479.0));
    assert_eq!(
        series(&c, &a, 1, 2),
        vec![[None, None, None, None, Some(counter)]]
    );
}

fn aggr_then_plain(plain: &[(i64, f64)]) -> (Vec<InputChunk>, Vec<u8>) {
    let (mut c, mut a) = aggr_chunks(&[[
        &[
            (1587690299999, 20.0),
            (1587690599999, 20.0),
            (1587690899999, 20.0),
        ],
        &[
            (1587690299999, 9.276972e+06),
            (1587690599999, 9.359861e+06),
            (1587693590791, 255746.0),
        ],
        &[
            (1587690299999, 461968.0),
            (1587690599999, 466070.0),
            (1587690899999, 470131.0),
            (1587691199999, 474913.0),
        ],
        &[
            (1587690299999, 465870.0),
            (1587690599999, 469951.0),
            (1587690899999, 474726.0),
        ],
        &[
            (1587690005791, 461968.0),
            (1587690299999, 465870.0),
            (1587690599999, 469951.0),
        ],
    ]]);
    let start = a.len();
    a.extend_from_slice(&xor(plain));
    // Thanos' test gives the plain chunk an empty range, so the overlap check passes.
    c.push(InputChunk {
        min_time: i64::MAX,
        max_time: i64::MIN,
        encoding: ENCODING_XOR,
        data: start..a.len(),
    });
    (c, a)
}

#[test]
fn aggr_with_a_stray_plain_chunk() {
    let (c, a) = aggr_then_plain(&[(1587690005794, 42.5)]);
    const T: i64 = 1587690005794;
    assert_eq!(
        series(&c, &a, 300_000, 3_600_000),
        vec![expect([
            Some(&[(T, 20.0), (T, 20.0), (T, 21.0)]),
            Some(&[(T, 9.276972e+06), (T, 9.359861e+06), (T, 255788.5)]),
            Some(&[(T, 461968.0), (T, 466070.0), (T, 470131.0), (T, 42.5)]),
            Some(&[(T, 465870.0), (T, 469951.0), (T, 474726.0)]),
            Some(&[
                (1587690005791, 461968.0),
                (1587690599999, 469951.0),
                (1587690599999, 469951.0)
            ]),
        ])]
    );
}

#[test]
fn aggr_with_an_empty_plain_chunk() {
    let (c, a) = aggr_then_plain(&[]);
    assert_eq!(xor_samples(&a[c[1].data.clone()]), []);
    let out = series(&c, &a, 300_000, 3_600_000);
    assert_eq!(out.len(), 1, "the empty plain chunk is skipped");
}

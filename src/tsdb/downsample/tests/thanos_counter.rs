//! Thanos' counter expectations (`TestDownsampleCounterBoundaryReset`,
//! `TestApplyCounterResetsIterator`): resets at chunk boundaries survive two levels, and the
//! counter reader over aggregate chunks.

use super::super::aggr::{Aggr, AggrChunk};
use super::super::aggregate::{downsample_aggr_in, AggrInput};
use super::super::batch::Sample;
use super::super::builder::AggrOutput;
use super::super::counter::CounterResets;
use super::super::raw::downsample_raw_in;
use super::{decode, Pairs, STALE};

#[test]
fn counter_reset_at_chunk_boundaries_survives_two_levels() {
    let raw = [
        (10, 1.0),
        (20, 3.0),
        (30, 5.0),
        (50, 1.0),
        (60, 8.0),
        (70, 10.0),
        (120, 1.0),
        (130, 18.0),
        (140, 20.0),
        (160, 21.0),
        (170, 38.0),
        (180, 40.0),
    ]
    .map(|(t, v)| Sample { t, v });
    // More chunks than samples: one window per chunk.
    let level1 = downsample_raw_in(&raw, 50, raw.len() + 1).expect("raw");
    assert_eq!(level1.len(), 4);
    let counters = |chunks: &[AggrOutput]| -> Pairs {
        chunks
            .iter()
            .flat_map(|c| decode(c)[Aggr::Counter.index()].clone().expect("counter"))
            .collect()
    };
    assert_eq!(
        counters(&level1),
        [
            (10, 1.0),
            (30, 5.0),
            (30, 5.0),
            (50, 1.0),
            (70, 10.0),
            (70, 10.0),
            (120, 1.0),
            (140, 20.0),
            (140, 20.0),
            (160, 21.0),
            (180, 40.0),
            (180, 40.0)
        ]
    );
    assert_eq!(
        read_counter(&counters(&level1)),
        [
            (10, 1.0),
            (30, 5.0),
            (50, 6.0),
            (70, 15.0),
            (120, 16.0),
            (140, 35.0),
            (160, 36.0),
            (180, 55.0)
        ]
    );

    let parsed: Vec<_> = level1
        .iter()
        .map(|c| AggrChunk::parse(&c.data).expect("parses"))
        .collect();
    let inputs: Vec<AggrInput<'_>> = level1
        .iter()
        .zip(&parsed)
        .enumerate()
        .map(|(i, (c, p))| AggrInput {
            min_time: c.min_time,
            max_time: c.max_time,
            chunk: *p,
            source: i,
        })
        .collect();
    let level2 = downsample_aggr_in(&inputs, 100, 2, &mut Vec::new()).expect("aggr");
    assert_eq!(level2.len(), 2);
    assert_eq!(
        counters(&level2),
        [
            (10, 1.0),
            (70, 15.0),
            (70, 10.0),
            (120, 1.0),
            (180, 40.0),
            (180, 40.0)
        ]
    );
    assert_eq!(
        read_counter(&counters(&level2)),
        [(10, 1.0), (70, 15.0), (120, 16.0), (180, 55.0)]
    );
}

/// The counter read across chunks, as a querier applies it.
fn read_counter(samples: &[(i64, f64)]) -> Pairs {
    let mut r = CounterResets::default();
    samples
        .iter()
        .filter_map(|&(t, v)| r.push(t, v))
        .map(|s| (s.t, s.v))
        .collect()
}

#[test]
fn counter_reader_with_stale_marker_and_resets() {
    let chunks: [&[(i64, f64)]; 5] = [
        &[
            (100, 10.0),
            (200, 20.0),
            (300, 10.0),
            (400, 20.0),
            (400, 5.0),
        ],
        &[
            (500, 10.0),
            (600, 20.0),
            (700, 30.0),
            (800, 40.0),
            (800, 10.0),
        ], // no reset
        &[(900, 5.0), (1000, 10.0), (1100, 15.0)], // a reset
        &[(1200, 20.0), (1250, STALE), (1300, 40.0)], // no last sample
        &[(1400, 30.0), (1500, 30.0), (1600, 50.0)], // a reset
    ];
    assert_eq!(
        read_counter(&chunks.concat()),
        [
            (100, 10.0),
            (200, 20.0),
            (300, 30.0),
            (400, 40.0),
            (500, 45.0),
            (600, 55.0),
            (700, 65.0),
            (800, 75.0),
            (900, 80.0),
            (1000, 85.0),
            (1100, 90.0),
            (1200, 95.0),
            (1300, 115.0),
            (1400, 145.0),
            (1500, 145.0),
            (1600, 165.0),
        ]
    );
}

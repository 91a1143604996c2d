//! The native histogram chunk decoders (encodings 2 and 3) never panic on arbitrary bytes,
//! and what they decode re-encodes (Prometheus' appenders, recoding included) into chunks
//! that decode to the same samples: timestamps, counts, sums and per-sign bucket totals.
//!
//! Input: one byte whose low bit picks the encoding (2 or 3), then the chunk data.
#![no_main]

use compactd::tsdb::chunks::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};
use compactd::tsdb::histogram::{decode_chunk, CutHeaders, SampleValue, SeriesEncoder};
use libfuzzer_sys::fuzz_target;

/// What survives a re-encoding whatever the layout: time, schema, counts, sum (as bits) and
/// the integer bucket totals per sign (recoding only inserts empty buckets).
#[derive(Debug, PartialEq)]
struct Essence {
    t: i64,
    stale: bool,
    schema: i32,
    count: u64,
    zero_count: u64,
    sum: u64,
    totals: (i64, i64),
}

fn essence(t: i64, v: &SampleValue) -> Essence {
    let total = |deltas: &[i64]| {
        let mut absolute = 0i64;
        let mut total = 0i64;
        for d in deltas {
            absolute = absolute.wrapping_add(*d);
            total = total.wrapping_add(absolute);
        }
        total
    };
    match v {
        SampleValue::Histogram(h) if h.is_stale() => Essence::stale(t),
        SampleValue::FloatHistogram(h) if h.is_stale() => Essence::stale(t),
        SampleValue::Histogram(h) => Essence {
            t,
            stale: false,
            schema: h.schema,
            count: h.count,
            zero_count: h.zero_count,
            sum: h.sum.to_bits(),
            totals: (total(&h.positive_buckets), total(&h.negative_buckets)),
        },
        SampleValue::FloatHistogram(h) => Essence {
            t,
            stale: false,
            schema: h.schema,
            count: h.count.to_bits(),
            zero_count: h.zero_count.to_bits(),
            sum: h.sum.to_bits(),
            totals: (0, 0),
        },
        SampleValue::Float(v) => Essence {
            t,
            sum: v.to_bits(),
            ..Essence::stale(t)
        },
    }
}

impl Essence {
    fn stale(t: i64) -> Self {
        Essence {
            t,
            stale: true,
            schema: 0,
            count: 0,
            zero_count: 0,
            sum: 0,
            totals: (0, 0),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, chunk)) = data.split_first() else {
        return;
    };
    let encoding = if selector & 1 == 0 {
        ENCODING_HISTOGRAM
    } else {
        ENCODING_FLOAT_HISTOGRAM
    };
    let Ok(samples) = decode_chunk(encoding, chunk) else {
        return;
    };
    // Timestamps must increase for the encoder; a decoded chunk need not obey that.
    if samples.windows(2).any(|w| w[0].0 >= w[1].0) {
        return;
    }
    let mut enc = SeriesEncoder::new(CutHeaders::Compaction);
    for (t, v) in &samples {
        if enc.append(*t, v).is_err() {
            return;
        }
    }
    let mut again = Vec::new();
    for c in enc.finish() {
        let decoded = decode_chunk(c.encoding, &c.data).expect("our own chunk decodes");
        again.extend(decoded);
    }
    let before: Vec<Essence> = samples.iter().map(|(t, v)| essence(*t, v)).collect();
    let after: Vec<Essence> = again.iter().map(|(t, v)| essence(*t, v)).collect();
    assert_eq!(before, after);
});

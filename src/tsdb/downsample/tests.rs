//! Unit tests of downsampling, in seven files: `format` (the AggrChunk bytes and its
//! decoder), `thanos` and `thanos_counter` (the expectations of Thanos' own tests, which this
//! implementation must reproduce value for value), `histogram_thanos` (the same for native
//! histograms) and `histogram_golden` (histogram chunks byte for byte against Thanos' code),
//! `semantics` (windows, chunk counts, counters, empty and broken series, each checked
//! against a plain computation in the test) and `block` (whole blocks: meta, errors,
//! atomicity). This file holds their shared helpers.

mod block;
mod format;
mod histogram_golden;
mod histogram_thanos;
mod semantics;
mod thanos;
mod thanos_counter;

use super::aggr::{Aggr, AggrChunk, AGGR_COUNT};
use super::batch::STALE_NAN_BITS;
use super::builder::AggrOutput;
use super::series::InputChunk;
use crate::tsdb::chunks::{ENCODING_AGGR, ENCODING_XOR};
use crate::tsdb::xor::{XorEncoder, XorIter};

/// Prometheus' staleness marker.
pub(super) const STALE: f64 = f64::from_bits(STALE_NAN_BITS);
/// Prometheus' `value.NormalNaN`, a NaN that is not a staleness marker.
pub(super) const NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

/// Samples as `(t, v)`.
pub(super) type Pairs = Vec<(i64, f64)>;
/// The samples of each aggregate of a chunk, `None` when absent.
pub(super) type Aggrs = [Option<Pairs>; AGGR_COUNT];

/// An XOR chunk of `samples`.
pub(super) fn xor(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut enc = XorEncoder::new();
    for &(t, v) in samples {
        enc.append(t, v);
    }
    enc.into_bytes()
}

/// Every sample of an XOR chunk, nothing filtered.
pub(super) fn xor_samples(data: &[u8]) -> Pairs {
    let mut it = XorIter::new(data);
    let mut out = Vec::new();
    while let Some(s) = it.next_sample().expect("test chunk decodes") {
        out.push(s);
    }
    out
}

/// The samples of every aggregate of an output chunk.
pub(super) fn decode(out: &AggrOutput) -> Aggrs {
    let chunk = AggrChunk::parse(&out.data).expect("output chunk parses");
    Aggr::ALL.map(|a| {
        chunk.get(a).map(|sub| {
            assert_eq!(sub.encoding, ENCODING_XOR, "float aggregates are XOR");
            xor_samples(sub.data)
        })
    })
}

/// The samples of every aggregate of every output chunk.
pub(super) fn decode_all(out: &[AggrOutput]) -> Vec<Aggrs> {
    out.iter().map(decode).collect()
}

/// Expected aggregates: each `Some(samples)` is present, `None` absent.
pub(super) fn expect(parts: [Option<&[(i64, f64)]>; AGGR_COUNT]) -> Aggrs {
    parts.map(|p| p.map(<[(i64, f64)]>::to_vec))
}

/// Raw XOR input chunks (index range: first to last sample, as Thanos' tests build them).
pub(super) fn raw_chunks(chunks: &[&[(i64, f64)]]) -> (Vec<InputChunk>, Vec<u8>) {
    let mut arena = Vec::new();
    let inputs = chunks
        .iter()
        .map(|samples| {
            let start = arena.len();
            arena.extend_from_slice(&xor(samples));
            InputChunk {
                min_time: samples.first().map_or(0, |s| s.0),
                max_time: samples.last().map_or(0, |s| s.0),
                encoding: ENCODING_XOR,
                data: start..arena.len(),
            }
        })
        .collect();
    (inputs, arena)
}

/// An aggregate chunk with all five aggregates present (empty ones as header-only XOR
/// chunks), as Thanos' `encodeTestAggrSeries` builds them; its range spans every sample.
pub(super) fn aggr_chunk(parts: [&[(i64, f64)]; AGGR_COUNT]) -> (i64, i64, Vec<u8>) {
    let encoded: Vec<Vec<u8>> = parts.iter().map(|p| xor(p)).collect();
    let mut data = Vec::new();
    super::aggr::encode_aggr_chunk(
        std::array::from_fn(|i| Some((ENCODING_XOR, encoded[i].as_slice()))),
        &mut data,
    );
    let times = parts.iter().flat_map(|p| p.iter().map(|s| s.0));
    let min = times.clone().min().unwrap_or(i64::MAX);
    let max = times.max().unwrap_or(i64::MIN);
    (min, max, data)
}

/// Input aggregate chunks built by [`aggr_chunk`].
pub(super) fn aggr_chunks(chunks: &[[&[(i64, f64)]; AGGR_COUNT]]) -> (Vec<InputChunk>, Vec<u8>) {
    let mut arena = Vec::new();
    let inputs = chunks
        .iter()
        .map(|parts| {
            let (min_time, max_time, data) = aggr_chunk(*parts);
            let start = arena.len();
            arena.extend_from_slice(&data);
            InputChunk {
                min_time,
                max_time,
                encoding: ENCODING_AGGR,
                data: start..arena.len(),
            }
        })
        .collect();
    (inputs, arena)
}

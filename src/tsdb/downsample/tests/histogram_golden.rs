//! Byte-for-byte comparison with Thanos: `testdata/thanos_histograms.json` holds histogram
//! series (raw chunks written by Prometheus v0.309.1's appenders) with the 5m chunks Thanos'
//! `DownsampleRaw` makes of them and the 1h chunks its `downsampleAggr` makes of those
//! (written by `testdata/thanos_histograms/main.go`). The cases: Thanos' own test series
//! (`GenerateTestFloatHistograms` with counter resets, 360 and 11 samples, gauge
//! histograms), integer counter histograms with resets, new buckets, a zero threshold that
//! grows and a schema that drops mid-chunk (where Thanos' appender drops windows), a long
//! gauge series, and custom-bucket counter histograms with resets.

use serde_json::Value;

use super::super::aggr::{Aggr, AggrChunk, SubChunk};
use super::super::builder::AggrOutput;
use super::super::series::{downsample_series, InputChunk, Scratch};
use crate::tsdb::chunks::ENCODING_XOR;
use crate::units::{RESOLUTION_1H_MS, RESOLUTION_5M_MS};

const GOLDEN: &str = include_str!("../testdata/thanos_histograms.json");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn int(v: &Value) -> i64 {
    v.as_i64().expect("integer")
}

/// The chunks of a case's list, as input chunks in one arena.
fn chunks(list: &Value) -> (Vec<InputChunk>, Vec<u8>) {
    let mut arena = Vec::new();
    let mut out = Vec::new();
    for c in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        let data = hex(c["data"].as_str().expect("data"));
        let start = arena.len();
        arena.extend_from_slice(&data);
        out.push(InputChunk {
            min_time: int(&c["min_time"]),
            max_time: int(&c["max_time"]),
            encoding: c["encoding"].as_u64().expect("encoding") as u8,
            data: start..arena.len(),
        });
    }
    (out, arena)
}

/// Compares our chunks with Thanos': histogram aggregates byte for byte; the count (XOR)
/// aggregate may end with one more zero byte than Thanos writes, because [`XorEncoder`]
/// writes Prometheus 2.42's stream, which keeps an empty byte after a byte-aligned end
/// (v0.309.1 does not); the values are the same.
///
/// [`XorEncoder`]: crate::tsdb::xor::XorEncoder
fn check(name: &str, level: &str, got: &[AggrOutput], want: &(Vec<InputChunk>, Vec<u8>)) {
    assert_eq!(got.len(), want.0.len(), "{name} {level}: chunk count");
    for (i, (g, w)) in got.iter().zip(&want.0).enumerate() {
        assert_eq!(
            (g.min_time, g.max_time),
            (w.min_time, w.max_time),
            "{name} {level} chunk {i}: range"
        );
        let (mine, theirs) = (
            AggrChunk::parse(&g.data).expect("ours parses"),
            AggrChunk::parse(&want.1[w.data.clone()]).expect("theirs parses"),
        );
        for aggr in Aggr::ALL {
            let (a, b) = (mine.get(aggr), theirs.get(aggr));
            let same = match (a, b) {
                (Some(a), Some(b)) if a.encoding == ENCODING_XOR => {
                    a.encoding == b.encoding
                        && (a.data == b.data || a.data.split_last() == Some((&0, b.data)))
                }
                (Some(a), Some(b)) => a.encoding == b.encoding && a.data == b.data,
                (None, None) => true,
                _ => false,
            };
            let hex = |d: Option<SubChunk<'_>>| {
                d.map(|d| {
                    d.data
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                })
            };
            assert!(
                same,
                "{name} {level} chunk {i}, {} aggregate:\n got {:?}\nwant {:?}",
                aggr.name(),
                hex(a),
                hex(b)
            );
        }
    }
}

#[test]
fn histogram_downsampling_writes_the_bytes_thanos_writes() {
    let cases: Value = serde_json::from_str(GOLDEN).expect("golden json");
    let cases = cases.as_array().expect("cases");
    assert_eq!(cases.len(), 7);
    let mut scratch = Scratch::default();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let (raw, raw_arena) = chunks(&case["raw"]);
        let m5_want = chunks(&case["m5"]);
        let h1_want = chunks(&case["h1"]);
        let m5 = downsample_series(&raw, &raw_arena, 0, RESOLUTION_5M_MS, &mut scratch)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(name, "5m", &m5, &m5_want);
        // Thanos' 5m chunks as input, so the second level is compared on its own.
        let h1 = downsample_series(
            &m5_want.0,
            &m5_want.1,
            RESOLUTION_5M_MS,
            RESOLUTION_1H_MS,
            &mut scratch,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(name, "1h", &h1, &h1_want);
    }
}

use super::*;
use proptest::prelude::*;

/// Prometheus' staleness marker, a signalling NaN.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        e.append(t, v);
    }
    assert_eq!(e.num_samples(), samples.len());
    e.into_bytes()
}

fn decode(data: &[u8]) -> Result<Vec<(i64, u64)>, XorError> {
    let mut it = XorIter::new(data);
    let mut out = Vec::new();
    while let Some((t, v)) = it.next_sample()? {
        out.push((t, v.to_bits()));
    }
    Ok(out)
}

#[test]
fn hand_derived_bytes() {
    // t0 = 1000: zig-zag 2000 = d0 0f. v0 = 1.0 = 3ff0…. t1 - t0 = 1000: e8 07.
    // Then bits: 0 (same value), 0 (dod 0), 11 00001 001011 (window: 1 leading zero,
    // 11 significant bits), 11111111111 (2.0 ^ 1.0 = 0x7ff0… >> 52) = 30 97 ff c0.
    let bytes = encode(&[(1000, 1.0), (2000, 1.0), (3000, 2.0)]);
    let want = [
        0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x30, 0x97, 0xff, 0xc0,
    ];
    assert_eq!(bytes, want);
    let got = decode(&bytes).expect("decodes");
    let want = [(1000, 1.0f64), (2000, 1.0), (3000, 2.0)].map(|(t, v)| (t, v.to_bits()));
    assert_eq!(got, want);
}

/// Chunks produced by Prometheus 2.42's `XORChunk` appender: samples as `t:value bits`,
/// then the chunk bytes. They cover the staleness marker, -Inf, -0.0, repeated and
/// decreasing-jump timestamps, and a one-sample chunk.
const GO_GOLDEN: [&str; 5] = [
    "-1547881579988:408de80000000000,-1547881563415:fff0000000000000,\
     -1547881548415:4090040000000000,-1547881533415:4090040000000000\
     |0004a797f4ce8c5a408de80000000000bd8101c0adfbef6e76f02d7ec008",
    "1499087091950:7ff0000000000002,1499087106950:4058000000000000,\
     1499087106951:4058000000000000,1499087121951:4058000000000000,\
     1499087139925:4058000000000000\
     |0005dce3ed88a1577ff00000000000029875c5eff50000000000007715a58752e8b9e0",
    "426685355875:8000000000000000,426685370875:fff0000000000000,\
     426685385875:4076300000000000|0003c6ddee86eb1880000000000000009875c25fff6052fe18c0",
    "-1567606528007:4064e00000000000,29490516500157:fff0000000000000,\
     29490516500157:406c400000000000\
     |00038de08aca9f5b4064e00000000000c4ed8fc3f48707c09dfca7fffffe3c0b79c093cafe7100",
    "227332264314:4045000000000000|0001f4c5f8e09d0d404500000000000000",
];

fn parse_golden(line: &str) -> (Vec<(i64, u64)>, Vec<u8>) {
    let (samples, hex) = line.split_once('|').expect("golden line has a |");
    let samples = samples
        .split(',')
        .map(|p| {
            let (t, v) = p.split_once(':').expect("t:v");
            let t = t.parse().expect("timestamp");
            (t, u64::from_str_radix(v, 16).expect("value bits"))
        })
        .collect();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    (samples, bytes)
}

#[test]
fn matches_go_golden_chunks() {
    for line in GO_GOLDEN {
        let (samples, want) = parse_golden(line);
        let mut e = XorEncoder::new();
        for &(t, v) in &samples {
            e.append(t, f64::from_bits(v));
        }
        assert_eq!(e.bytes(), want.as_slice(), "{line}");
        assert_eq!(decode(&want).expect("decodes"), samples, "{line}");
    }
}

#[test]
fn one_sample_chunk_keeps_gos_empty_trailing_byte() {
    // The 64 value bits are written as whole bytes, which leaves an empty byte.
    let bytes = encode(&[(1000, 1.0)]);
    assert_eq!(bytes.len(), 2 + 2 + 8 + 1);
    assert_eq!(bytes[12], 0);
    assert_eq!(num_samples(&bytes), Some(1));
    assert_eq!(decode(&bytes).expect("decodes"), [(1000, 1.0f64.to_bits())]);
}

#[test]
fn dod_bucket_edges_round_trip() {
    // The buckets are asymmetric: 2^(n-1) fits n bits, -2^(n-1) does not.
    let mut samples = vec![(0i64, 0.0), (100, 0.0)];
    let mut t = 100i64;
    let mut delta = 100i64;
    for dod in [
        8192,
        -8191,
        -8192,
        65536,
        -65535,
        -65536,
        524288,
        -524287,
        -524288,
        1 << 40,
    ] {
        delta += dod;
        t += delta;
        samples.push((t, 0.0));
    }
    let bytes = encode(&samples);
    let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(decode(&bytes).expect("decodes"), want);
}

#[test]
fn empty_chunk_and_short_input() {
    let empty = XorEncoder::new();
    assert!(empty.is_empty());
    assert_eq!(empty.time_range(), None);
    assert_eq!(empty.bytes(), &[0, 0]);
    assert_eq!(decode(&[0, 0]).expect("decodes"), []);
    assert_eq!(num_samples(&[7]), None);
    let err = decode(&[7]).expect_err("no header");
    assert!(err.to_string().contains("header"), "{err}");
}

#[test]
fn truncated_chunk_errors_with_offset() {
    let bytes = encode(&[(1, 1.5), (2, 2.5), (3, -7.25)]);
    for cut in 2..bytes.len() - 1 {
        let err = decode(&bytes[..cut]).expect_err("truncated");
        assert!(err.byte_offset <= cut, "{err} at cut {cut}");
        let corrupt = err
            .into_corrupt(Path::new("chunks/000001"), 100)
            .to_string();
        assert!(corrupt.contains("chunks/000001"), "{corrupt}");
    }
}

#[test]
fn iterator_stops_after_an_error() {
    let mut it = XorIter::new(&[0, 5, 0x80]);
    assert!(matches!(it.next(), Some(Err(_))));
    assert!(it.next().is_none());
}

fn special_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(STALE_NAN_BITS),
        Just(f64::NAN.to_bits()),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just(0u64),
        Just((-0.0f64).to_bits()),
        (0u64..1000).prop_map(|v| (v as f64).to_bits()),
    ]
}

fn samples() -> impl Strategy<Value = Vec<(i64, u64)>> {
    let start = prop_oneof![any::<i64>().prop_map(|t| t / 4), -1_000_000i64..1_000_000];
    let step = prop_oneof![
        Just(15_000i64),
        1i64..100_000,
        0i64..(1 << 40),
        0i64..i64::MAX / 512
    ];
    (
        start,
        prop::collection::vec((step, special_value()), 0..300),
    )
        .prop_map(|(t0, steps)| {
            let mut t = t0;
            steps
                .into_iter()
                .map(|(dt, v)| {
                    t = t.saturating_add(dt);
                    (t, v)
                })
                .collect()
        })
}

proptest! {
    #[test]
    fn round_trip(samples in samples()) {
        let mut e = XorEncoder::new();
        for &(t, v) in &samples {
            e.append(t, f64::from_bits(v));
        }
        prop_assert_eq!(num_samples(e.bytes()), Some(samples.len() as u16));
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            prop_assert_eq!(e.time_range(), Some((first.0, last.0)));
        }
        prop_assert_eq!(decode(e.bytes()).expect("decodes"), samples);
    }

    #[test]
    fn damaged_chunks_yield_a_prefix_then_one_error(
        samples in samples(),
        cut in any::<prop::sample::Index>(),
        flip in any::<Option<(prop::sample::Index, u8)>>(),
    ) {
        let mut e = XorEncoder::new();
        for &(t, v) in &samples {
            e.append(t, f64::from_bits(v));
        }
        let mut data = e.into_bytes();
        data.truncate(cut.index(data.len() + 1));
        if let (Some((i, bit)), false) = (flip, data.is_empty()) {
            let i = i.index(data.len());
            // Keep the header: a changed count says nothing about the decoder.
            if i >= 2 {
                data[i] ^= 1 << (bit % 8);
            }
        }
        let mut got = Vec::new();
        let mut errors = Vec::new();
        for sample in XorIter::new(&data) {
            match sample {
                Ok((t, v)) => got.push((t, v.to_bits())),
                Err(e) => errors.push(e),
            }
        }
        if flip.is_none() {
            prop_assert_eq!(got.as_slice(), &samples[..got.len()]);
        }
        if got.len() < samples.len() || data.len() < 2 {
            prop_assert_eq!(errors.len(), 1);
            prop_assert_eq!(usize::from(errors[0].sample), got.len());
            prop_assert!(errors[0].byte_offset <= data.len().max(2));
        } else {
            prop_assert!(errors.is_empty());
        }
    }

    #[test]
    fn regular_runs_round_trip_and_truncate(
        t0 in any::<i64>(),
        step in 0i64..100_000,
        values in prop::collection::vec(
            prop_oneof![8 => Just(0.0f64), 1 => any::<f64>()],
            0..300,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        // Constant stretches decode as runs of `00` samples.
        let samples: Vec<(i64, u64)> = values
            .iter()
            .scan((t0 / 2, 0.0f64), |(t, v), &change| {
                *t = t.wrapping_add(step);
                if change != 0.0 {
                    *v = change;
                }
                Some((*t, v.to_bits()))
            })
            .collect();
        let floats: Vec<(i64, f64)> =
            samples.iter().map(|&(t, v)| (t, f64::from_bits(v))).collect();
        let data = encode(&floats);
        prop_assert_eq!(decode(&data).expect("decodes"), samples.clone());
        let cut = cut.index(data.len() + 1);
        let mut it = XorIter::new(&data[..cut]);
        let mut got = Vec::new();
        let err = loop {
            match it.next_sample() {
                Ok(Some((t, v))) => got.push((t, v.to_bits())),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        prop_assert_eq!(got.as_slice(), &samples[..got.len()]);
        if got.len() < samples.len() || cut < 2 {
            let err = err.expect("an error");
            prop_assert_eq!(usize::from(err.sample), got.len());
        } else {
            prop_assert!(err.is_none());
        }
    }

    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut it = XorIter::new(&data);
        let total = it.num_samples();
        let mut n = 0u32;
        while let Ok(Some(_)) = it.next_sample() {
            n += 1;
        }
        prop_assert!(n <= u32::from(total));
    }
}

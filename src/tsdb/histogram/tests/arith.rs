//! [`crate::tsdb::histogram::arith`] against Prometheus' `float_histogram_test.go` (v0.309.1): the cases of
//! `TestFloatHistogramAdd`, `TestFloatHistogramSub`, `TestFloatHistogramDetectReset` and
//! `TestFloatHistogramCopyToSchema` with exponential schemas, converted value for value
//! (custom-bucket cases and error cases left out). Like Go, sums are compared after
//! compacting both sides, and additions are run in both orders.

use super::super::arith::ArithError;
use super::*;

/// A histogram as the Go cases write it.
struct H {
    schema: i32,
    zt: f64,
    zc: f64,
    count: f64,
    sum: f64,
    ps: &'static [(i32, u32)],
    pb: &'static [f64],
    ns: &'static [(i32, u32)],
    nb: &'static [f64],
    hint: CounterResetHint,
}

impl H {
    fn build(&self) -> FloatHistogram {
        let spans = |s: &[(i32, u32)]| s.iter().map(|&(o, l)| Span::new(o, l)).collect();
        FloatHistogram {
            counter_reset_hint: self.hint,
            schema: self.schema,
            zero_threshold: self.zt,
            zero_count: self.zc,
            count: self.count,
            sum: self.sum,
            positive_spans: spans(self.ps),
            negative_spans: spans(self.ns),
            positive_buckets: self.pb.to_vec(),
            negative_buckets: self.nb.to_vec(),
            custom_values: Vec::new(),
        }
    }
}

fn compacted(mut h: FloatHistogram) -> FloatHistogram {
    h.compact();
    h
}

type Op = fn(&mut FloatHistogram, &FloatHistogram) -> Result<bool, ArithError>;

fn run_binop(name: &str, op: Op, a: &H, b: &H, want: &H, collision: bool) {
    let (a, b) = (a.build(), b.build());
    let mut got = a.clone();
    let b_before = b.clone();
    let c = op(&mut got, &b).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(c, collision, "{name}: collision");
    assert_eq!(compacted(got), compacted(want.build()), "{name}");
    assert_eq!(b, b_before, "{name}: argument untouched");
}

#[test]
fn add_matches_prometheus() {
    for (name, a, b, want, collision) in ADD_CASES {
        run_binop(name, FloatHistogram::add, a, b, want, *collision);
        run_binop(name, FloatHistogram::add, b, a, want, *collision);
    }
}

#[test]
fn sub_matches_prometheus() {
    for (name, a, b, want, collision) in SUB_CASES {
        run_binop(name, FloatHistogram::sub, a, b, want, *collision);
    }
}

#[test]
fn detect_reset_matches_prometheus() {
    for (name, previous, current, want) in DETECT_RESET_CASES {
        let got = current
            .build()
            .detect_reset(&previous.build())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn copy_to_schema_matches_prometheus() {
    for (name, target, input, want) in COPY_TO_SCHEMA_CASES {
        let h = input.build();
        let got = h
            .copy_to_schema(*target)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want.build(), "{name}");
        assert_eq!(h, input.build(), "{name}: receiver untouched");
    }
}

#[test]
fn reduce_resolution_keeps_the_hint_and_refuses_raising() {
    let mut h = COPY_TO_SCHEMA_CASES[1].2.build();
    h.counter_reset_hint = CounterResetHint::NotCounterReset;
    h.reduce_resolution(0).expect("1 to 0");
    let mut want = COPY_TO_SCHEMA_CASES[1].3.build();
    want.counter_reset_hint = CounterResetHint::NotCounterReset;
    assert_eq!(h, want);
    assert!(h.reduce_resolution(0).is_err(), "not lower");
    assert!(h.copy_to_schema(1).is_err(), "higher");
}

#[test]
fn mismatched_layouts_are_errors_not_panics() {
    let mut a = ADD_CASES[0].1.build();
    let mut b = ADD_CASES[0].2.build();
    b.positive_buckets.pop();
    assert!(a.add(&b).is_err());
    b = ADD_CASES[0].2.build();
    b.negative_spans[1].offset = -3;
    assert!(a.add(&b).is_err());
    b = ADD_CASES[0].2.build();
    b.schema = model::CUSTOM_BUCKETS_SCHEMA;
    assert!(a.add(&b).is_err(), "exponential and custom buckets");
}

#[test]
fn custom_buckets_with_equal_bounds_add_and_detect_resets() {
    let custom = |counts: &[f64]| FloatHistogram {
        schema: model::CUSTOM_BUCKETS_SCHEMA,
        count: counts.iter().sum(),
        positive_spans: vec![Span::new(0, counts.len() as u32)],
        positive_buckets: counts.to_vec(),
        custom_values: vec![1.0, 2.0, 3.0],
        ..FloatHistogram::default()
    };
    let mut a = custom(&[1.0, 2.0, 3.0]);
    a.add(&custom(&[1.0, 1.0, 1.0])).expect("same bounds");
    assert_eq!(a.positive_buckets, [2.0, 3.0, 4.0]);
    assert!(custom(&[1.0, 1.0, 1.0])
        .detect_reset(&a)
        .expect("same bounds"));
    assert!(!a
        .detect_reset(&custom(&[1.0, 1.0, 1.0]))
        .expect("same bounds"));
    let mut other = custom(&[1.0]);
    other.custom_values = vec![5.0];
    assert!(
        a.add(&other).is_err(),
        "different bounds are not reconciled"
    );
}

const ADD_CASES: &[(&str, H, H, H, bool)] = &[
    ("same bucket layout", H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (1, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-2, 2), (1, 3)], pb: &[0.0, 0.0, 2.0, 3.0, 6.0], ns: &[(3, 2), (3, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 2), (1, 3)], pb: &[1.0, 0.0, 5.0, 7.0, 13.0], ns: &[(3, 2), (3, 2)], nb: &[4.0, 2.0, 9.0, 10.0], hint: CounterResetHint::Unknown }, false),
    ("same bucket layout, defined differently", H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (1, 1), (0, 2)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-2, 2), (1, 2), (0, 1)], pb: &[0.0, 0.0, 2.0, 3.0, 6.0], ns: &[(3, 7)], nb: &[1.0, 1.0, 0.0, 0.0, 0.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 2), (1, 1), (0, 2)], pb: &[1.0, 0.0, 5.0, 7.0, 13.0], ns: &[(3, 5), (0, 2)], nb: &[4.0, 2.0, 0.0, 0.0, 0.0, 9.0, 10.0], hint: CounterResetHint::Unknown }, false),
    ("non-overlapping spans", H { schema: 0, zt: 0.001, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.001, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(0, 2), (3, 3)], pb: &[5.0, 4.0, 2.0, 3.0, 6.0], ns: &[(-9, 2), (3, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.001, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 4), (0, 6)], pb: &[1.0, 0.0, 5.0, 4.0, 3.0, 4.0, 7.0, 2.0, 3.0, 6.0], ns: &[(-9, 2), (3, 2), (5, 2), (3, 2)], nb: &[1.0, 1.0, 4.0, 4.0, 3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("non-overlapping spans inverted order", H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(0, 2), (3, 3)], pb: &[5.0, 4.0, 2.0, 3.0, 6.0], ns: &[(-6, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 2), (0, 5), (0, 3)], pb: &[1.0, 0.0, 5.0, 4.0, 3.0, 4.0, 7.0, 2.0, 3.0, 6.0], ns: &[(-6, 2), (1, 2), (4, 2), (3, 2)], nb: &[1.0, 1.0, 4.0, 4.0, 3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("overlapping spans", H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-1, 4), (0, 3)], pb: &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 4), (0, 4)], pb: &[1.0, 5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("overlapping spans inverted order", H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-1, 4), (0, 3)], pb: &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 5), (0, 3)], pb: &[1.0, 5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("schema change", H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-1, 4), (0, 3)], pb: &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 1, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-4, 3), (5, 5)], pb: &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0], ns: &[(6, 3), (6, 4)], nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 19.0, count: 51.0, sum: 3.579, ps: &[(-2, 5), (0, 3)], pb: &[1.0, 5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("larger zero bucket in first histogram", H { schema: 0, zt: 1.0, zc: 17.0, count: 21.0, sum: 1.234, ps: &[(1, 2), (0, 3)], pb: &[2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 1.0, zc: 29.0, count: 51.0, sum: 3.579, ps: &[(1, 2), (0, 3)], pb: &[2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("larger zero bucket in second histogram", H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 1.0, zc: 17.0, count: 21.0, sum: 1.234, ps: &[(1, 2), (0, 3)], pb: &[2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 1.0, zc: 29.0, count: 51.0, sum: 3.579, ps: &[(1, 5)], pb: &[2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("larger zero threshold in first histogram ends up inside a populated bucket of second histogram", H { schema: 0, zt: 0.2, zc: 17.0, count: 21.0, sum: 1.234, ps: &[(1, 2), (0, 3)], pb: &[2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.25, zc: 29.0, count: 51.0, sum: 3.579, ps: &[(-1, 1), (1, 5)], pb: &[0.0, 2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("larger zero threshold in second histogram ends up inside a populated bucket of first histogram", H { schema: 0, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-2, 2), (2, 3)], pb: &[1.0, 0.0, 3.0, 4.0, 7.0], ns: &[(3, 2), (3, 2)], nb: &[3.0, 1.0, 5.0, 6.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.2, zc: 17.0, count: 21.0, sum: 1.234, ps: &[(1, 2), (0, 3)], pb: &[2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.25, zc: 29.0, count: 51.0, sum: 3.579, ps: &[(1, 5)], pb: &[2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("schema change combined with larger zero bucket in second histogram", H { schema: 0, zt: 0.01, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-2, 5), (0, 3)], pb: &[2.0, 5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 1, zt: 0.25, zc: 12.0, count: 30.0, sum: 2.345, ps: &[(-3, 2), (5, 5)], pb: &[1.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0], ns: &[(6, 3), (6, 4)], nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.25, zc: 22.0, count: 51.0, sum: 3.579, ps: &[(-1, 7)], pb: &[6.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
    ("schema change combined with larger zero bucket in first histogram", H { schema: 0, zt: 0.25, zc: 8.0, count: 21.0, sum: 1.234, ps: &[(-1, 4), (0, 3)], pb: &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0], ns: &[(4, 2), (1, 2)], nb: &[1.0, 1.0, 4.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 1, zt: 0.01, zc: 11.0, count: 30.0, sum: 2.345, ps: &[(-4, 3), (5, 5)], pb: &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0], ns: &[(6, 3), (6, 4)], nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0], hint: CounterResetHint::Unknown }, H { schema: 0, zt: 0.25, zc: 20.0, count: 51.0, sum: 3.579, ps: &[(-1, 4), (0, 3)], pb: &[5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0], ns: &[(3, 3), (1, 3)], nb: &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0], hint: CounterResetHint::Unknown }, false),
];
const SUB_CASES: &[(&str, H, H, H, bool)] = &[
    (
        "same bucket layout",
        H {
            schema: 0,
            zt: 0.01,
            zc: 11.0,
            count: 30.0,
            sum: 23.0,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.0, 4.0, 7.0],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.0, 1.0, 5.0, 6.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 8.0,
            count: 21.0,
            sum: 12.0,
            ps: &[(-2, 2), (1, 3)],
            pb: &[0.0, 0.0, 2.0, 3.0, 6.0],
            ns: &[(3, 2), (3, 2)],
            nb: &[1.0, 1.0, 4.0, 4.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 3.0,
            count: 9.0,
            sum: 11.0,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 1.0, 1.0, 1.0],
            ns: &[(3, 2), (3, 2)],
            nb: &[2.0, 0.0, 1.0, 2.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "schema change",
        H {
            schema: 0,
            zt: 0.01,
            zc: 8.0,
            count: 59.0,
            sum: 1.234,
            ps: &[(-2, 5), (0, 3)],
            pb: &[2.0, 5.0, 4.0, 2.0, 3.0, 6.0, 7.0, 5.0],
            ns: &[(3, 3), (1, 3)],
            nb: &[4.0, 10.0, 1.0, 4.0, 14.0, 7.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 1,
            zt: 0.01,
            zc: 2.0,
            count: 19.0,
            sum: 0.345,
            ps: &[(-4, 3), (5, 5)],
            pb: &[1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 4.0],
            ns: &[(6, 3), (6, 4)],
            nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 6.0,
            count: 40.0,
            sum: 0.889,
            ps: &[(-2, 5), (0, 3)],
            pb: &[1.0, 5.0, 4.0, 2.0, 2.0, 2.0, 0.0, 5.0],
            ns: &[(3, 3), (1, 3)],
            nb: &[1.0, 9.0, 1.0, 4.0, 9.0, 1.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
];
const DETECT_RESET_CASES: &[(&str, H, H, bool)] = &[
    (
        "zero values",
        H {
            schema: 0,
            zt: 0.0,
            zc: 0.0,
            count: 0.0,
            sum: 0.0,
            ps: &[],
            pb: &[],
            ns: &[],
            nb: &[],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.0,
            zc: 0.0,
            count: 0.0,
            sum: 0.0,
            ps: &[],
            pb: &[],
            ns: &[],
            nb: &[],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "no buckets to some buckets",
        H {
            schema: 0,
            zt: 0.0,
            zc: 0.0,
            count: 0.0,
            sum: 0.0,
            ps: &[],
            pb: &[],
            ns: &[],
            nb: &[],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (2, 3)],
            pb: &[1.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "some buckets to no buckets",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (2, 3)],
            pb: &[1.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.0,
            zc: 0.0,
            count: 0.0,
            sum: 0.0,
            ps: &[],
            pb: &[],
            ns: &[],
            nb: &[],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "one bucket appears, nothing else changes",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (2, 3)],
            pb: &[1.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "one bucket disappears, nothing else changes",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (2, 3)],
            pb: &[1.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "an unpopulated bucket disappears, nothing else changes",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (2, 3)],
            pb: &[1.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "an unpopulated bucket at the end disappears, nothing else changes",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (1, 3)],
            pb: &[1.0, 3.3, 4.2, 0.0],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 1), (1, 2)],
            pb: &[1.0, 3.3, 4.2],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "an unpopulated bucket disappears in a histogram with nothing else",
        H {
            schema: 0,
            zt: 0.0,
            zc: 0.0,
            count: 0.0,
            sum: 0.0,
            ps: &[(23, 1)],
            pb: &[0.0],
            ns: &[],
            nb: &[],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.0,
            zc: 0.0,
            count: 0.0,
            sum: 0.0,
            ps: &[],
            pb: &[],
            ns: &[],
            nb: &[],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "zero count goes up",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.6,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "zero count goes down",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.4,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "count goes up",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.4,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "count goes down",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.2,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "sum goes up",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349210.0,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "sum goes down",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349200.0,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "one positive bucket goes up",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.3, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "one positive bucket goes down",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.1, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "one negative bucket goes up",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.1, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "one negative bucket goes down",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 0.0, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 2.9, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "zero threshold decreases",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.009,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "zero threshold increases without touching any existing buckets",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.011,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "zero threshold increases enough to cover existing buckets",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 1.0,
            zc: 7.73,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(1, 3)],
            pb: &[3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "zero threshold increases into the middle of an existing buckets",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.3,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "schema increases without any other changes",
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 1,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-5, 4), (2, 6)],
            pb: &[0.4, 0.6, 1.0, 0.23, 2.0, 1.3, 1.2, 3.0, 0.05, 0.05],
            ns: &[(5, 4), (6, 4)],
            nb: &[2.0, 1.1, 2.0, 1.0, 0.234e5, 1.0e5, 500.0, 500.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
    (
        "schema decreases without any other changes",
        H {
            schema: 1,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-5, 4), (2, 6)],
            pb: &[0.4, 0.6, 1.0, 0.23, 2.0, 1.3, 1.2, 3.0, 0.05, 0.05],
            ns: &[(5, 4), (6, 4)],
            nb: &[2.0, 1.1, 2.0, 1.0, 0.234e5, 1.0e5, 500.0, 500.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 3.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "schema decreases and a bucket goes up",
        H {
            schema: 1,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-5, 4), (2, 6)],
            pb: &[0.4, 0.6, 1.0, 0.23, 2.0, 1.3, 1.2, 3.0, 0.05, 0.05],
            ns: &[(5, 4), (6, 4)],
            nb: &[2.0, 1.1, 2.0, 1.0, 0.234e5, 1.0e5, 500.0, 500.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 4.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        false,
    ),
    (
        "schema decreases and a bucket goes down",
        H {
            schema: 1,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-5, 4), (2, 6)],
            pb: &[0.4, 0.6, 1.0, 0.23, 2.0, 1.3, 1.2, 3.0, 0.05, 0.05],
            ns: &[(5, 4), (6, 4)],
            nb: &[2.0, 1.1, 2.0, 1.0, 0.234e5, 1.0e5, 500.0, 500.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 5.5,
            count: 3493.3,
            sum: 2349209.324,
            ps: &[(-2, 2), (1, 3)],
            pb: &[1.0, 1.23, 2.3, 4.2, 0.1],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.1, 3.0, 1.234e5, 1000.0],
            hint: CounterResetHint::Unknown,
        },
        true,
    ),
];
const COPY_TO_SCHEMA_CASES: &[(&str, i32, H, H)] = &[
    (
        "no schema change",
        1,
        H {
            schema: 1,
            zt: 0.01,
            zc: 11.0,
            count: 30.0,
            sum: 2.345,
            ps: &[(-4, 3), (5, 5)],
            pb: &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            ns: &[(6, 3), (6, 4)],
            nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 1,
            zt: 0.01,
            zc: 11.0,
            count: 30.0,
            sum: 2.345,
            ps: &[(-4, 3), (5, 5)],
            pb: &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            ns: &[(6, 3), (6, 4)],
            nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
            hint: CounterResetHint::Unknown,
        },
    ),
    (
        "schema change",
        0,
        H {
            schema: 1,
            zt: 0.01,
            zc: 11.0,
            count: 30.0,
            sum: 2.345,
            ps: &[(-4, 3), (5, 5)],
            pb: &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            ns: &[(6, 3), (6, 4)],
            nb: &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
            hint: CounterResetHint::Unknown,
        },
        H {
            schema: 0,
            zt: 0.01,
            zc: 11.0,
            count: 30.0,
            sum: 2.345,
            ps: &[(-2, 2), (2, 3)],
            pb: &[1.0, 0.0, 3.0, 4.0, 7.0],
            ns: &[(3, 2), (3, 2)],
            nb: &[3.0, 1.0, 5.0, 6.0],
            hint: CounterResetHint::Unknown,
        },
    ),
];

//! Loading the golden cases of `testdata/`: chunks written by Prometheus 2.42's appenders.

use super::*;
use serde_json::Value;

pub const CASES: [(&str, &str); 11] = [
    (
        "int_fixed_layout",
        include_str!("../testdata/int_fixed_layout.json"),
    ),
    (
        "int_new_buckets_recode",
        include_str!("../testdata/int_new_buckets_recode.json"),
    ),
    (
        "int_counter_resets",
        include_str!("../testdata/int_counter_resets.json"),
    ),
    ("int_gauge", include_str!("../testdata/int_gauge.json")),
    ("int_stale", include_str!("../testdata/int_stale.json")),
    ("int_cut_120", include_str!("../testdata/int_cut_120.json")),
    (
        "float_fixed_layout",
        include_str!("../testdata/float_fixed_layout.json"),
    ),
    (
        "float_new_buckets_recode",
        include_str!("../testdata/float_new_buckets_recode.json"),
    ),
    (
        "float_counter_resets",
        include_str!("../testdata/float_counter_resets.json"),
    ),
    ("float_gauge", include_str!("../testdata/float_gauge.json")),
    ("float_stale", include_str!("../testdata/float_stale.json")),
];

/// One golden case.
pub struct Case {
    pub samples: Vec<(i64, SampleValue)>,
    pub chunks: Vec<FinishedChunk>,
    pub head_chunks: Vec<FinishedChunk>,
    pub decoded: Vec<(i64, SampleValue)>,
}

fn bits(v: &Value) -> f64 {
    let s = v.as_str().expect("hex bits");
    f64::from_bits(u64::from_str_radix(s, 16).expect("hex"))
}

fn num<T: std::str::FromStr>(v: &Value) -> T {
    v.as_str()
        .expect("decimal string")
        .parse()
        .ok()
        .expect("number")
}

fn spans(v: &Value) -> Vec<Span> {
    let list = v.as_array().expect("spans");
    list.iter()
        .map(|p| {
            let offset = p[0].as_i64().expect("offset") as i32;
            Span::new(offset, p[1].as_u64().expect("length") as u32)
        })
        .collect()
}

fn hint(v: &Value) -> CounterResetHint {
    match v.as_u64().expect("hint") {
        0 => CounterResetHint::Unknown,
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        _ => CounterResetHint::Gauge,
    }
}

fn sample(float: bool, s: &Value) -> (i64, SampleValue) {
    let list = |k: &str| s[k].as_array().expect("list").clone();
    let t = s["t"].as_i64().expect("t");
    let schema = s["schema"].as_i64().expect("schema") as i32;
    let value = if float {
        SampleValue::FloatHistogram(FloatHistogram {
            counter_reset_hint: hint(&s["hint"]),
            schema,
            zero_threshold: bits(&s["zero_threshold"]),
            zero_count: bits(&s["zero_count"]),
            count: bits(&s["count"]),
            sum: bits(&s["sum"]),
            positive_spans: spans(&s["positive_spans"]),
            negative_spans: spans(&s["negative_spans"]),
            positive_buckets: list("positive_buckets").iter().map(bits).collect(),
            negative_buckets: list("negative_buckets").iter().map(bits).collect(),
            custom_values: Vec::new(),
        })
    } else {
        SampleValue::Histogram(Histogram {
            counter_reset_hint: hint(&s["hint"]),
            schema,
            zero_threshold: bits(&s["zero_threshold"]),
            zero_count: num(&s["zero_count"]),
            count: num(&s["count"]),
            sum: bits(&s["sum"]),
            positive_spans: spans(&s["positive_spans"]),
            negative_spans: spans(&s["negative_spans"]),
            positive_buckets: list("positive_buckets").iter().map(num).collect(),
            negative_buckets: list("negative_buckets").iter().map(num).collect(),
            custom_values: Vec::new(),
        })
    };
    (t, value)
}

fn chunks(v: &Value) -> Vec<FinishedChunk> {
    let list = v.as_array().expect("chunks");
    list.iter()
        .map(|c| {
            let hex = c["data"].as_str().expect("hex");
            FinishedChunk {
                min_time: c["min_time"].as_i64().expect("min_time"),
                max_time: c["max_time"].as_i64().expect("max_time"),
                encoding: c["encoding"].as_u64().expect("encoding") as u8,
                data: (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect(),
            }
        })
        .collect()
}

pub fn load(text: &str) -> Case {
    let v: Value = serde_json::from_str(text).expect("golden JSON");
    let float = v["kind"] == "float_histogram";
    let samples = |k: &str| {
        let list = v[k].as_array().expect("samples");
        list.iter().map(|s| sample(float, s)).collect()
    };
    Case {
        samples: samples("samples"),
        chunks: chunks(&v["chunks"]),
        head_chunks: chunks(&v["head_chunks"]),
        decoded: samples("decoded"),
    }
}

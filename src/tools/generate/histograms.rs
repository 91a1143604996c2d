//! Native histogram series for `tools generate --histograms`, so that generated blocks hold
//! both histogram chunk encodings, recoded chunks and every counter-reset header.
//!
//! Per instance of the float series:
//! - `http_request_duration_seconds{handler}`: integer counter histograms (encoding 2) of
//!   log-normal request durations, exponential schema 3 and the default zero threshold
//!   (2^-128). Rare slow requests open new buckets over time (the chunk is recoded), a few
//!   requests take 0 s (zero bucket), and a restarted process resets the counters (a chunk
//!   with the reset header). As client_golang does, the schema is halved when a histogram
//!   exceeds [`BUCKETS_MAX`] buckets (a schema change starts a chunk).
//! - `ntp_peer_offset_seconds`: a float gauge histogram (encoding 3, gauge header) of the
//!   clock offsets to [`NTP_PEERS`] peers, weighted by peer quality, with negative and
//!   positive buckets that come and go at every scrape, schema 2 and a zero threshold of
//!   1 ms (stored as a full f64).
//!
//! Chunks are cut as the head cuts them ([`CutHeaders::Head`]): a chunk after a full one has
//! the "not reset" header. Every series draws from its own generator, seeded from
//! `--seed` and a constant, so the float series are the same with and without the flag.

use std::collections::BTreeMap;

use crate::rng::Rng;
use crate::tsdb::histogram::{FloatHistogram, Histogram, SampleValue, Span};
use crate::tsdb::labels::Labels;

/// Buckets above which a request-duration histogram halves its resolution.
pub const BUCKETS_MAX: usize = 32;

/// Peers whose clock offsets the NTP gauge histogram holds.
pub const NTP_PEERS: usize = 8;

/// Probability that a process restarts (resetting its histograms) at a scrape.
const RESET_PROBABILITY: f64 = 1.0 / 400.0;

/// Handlers with request-duration histograms.
const HANDLERS: &[&str] = &["/api/v1/query", "/api/v1/series", "/metrics"];

/// Schema of a fresh request-duration histogram.
const START_SCHEMA: i32 = 3;

/// The default zero threshold of client_golang, 2^-128.
const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// The NTP histogram's zero threshold: offsets within 1 ms count as zero.
const NTP_ZERO_THRESHOLD: f64 = 0.001;

/// Seed constant separating the histogram generators from the float series'.
const SEED_SALT: u64 = 0x4849_5354_4f47_5241;

/// What a histogram series measures, with its state between scrapes.
#[derive(Clone, Debug)]
enum Kind {
    /// Counter histogram of request durations: observations by bucket index.
    RequestDuration {
        rate_per_s: f64,
        schema: i32,
        buckets: BTreeMap<i32, u64>,
        zero_count: u64,
        sum: f64,
    },
    /// Gauge histogram of NTP peer offsets, drifting around `drift_s`.
    NtpOffset { drift_s: f64 },
}

/// One generated native histogram series.
#[derive(Clone, Debug)]
pub struct HistogramSeries {
    /// Its labels.
    pub labels: Labels,
    kind: Kind,
    /// Scrape offset within the interval.
    pub offset_ms: i64,
    rng: Rng,
}

/// The histogram series of the instances `(instance, job)`, unsorted.
pub fn build(
    instances: &[(String, String)],
    seed: u64,
    scrape_interval_ms: i64,
) -> Vec<HistogramSeries> {
    let mut seeds = Rng::new(seed ^ SEED_SALT);
    let mut out = Vec::new();
    for (instance, job) in instances {
        let offset_ms = seeds.below(scrape_interval_ms as u64) as i64;
        let base = |name: &str| {
            vec![
                ("__name__", name.to_string()),
                ("instance", instance.clone()),
                ("job", job.clone()),
            ]
        };
        for handler in HANDLERS {
            let mut pairs = base("http_request_duration_seconds");
            pairs.push(("handler", handler.to_string()));
            let mut rng = Rng::new(seeds.next_u64());
            out.push(HistogramSeries {
                labels: Labels::from_pairs(pairs),
                kind: Kind::RequestDuration {
                    rate_per_s: 0.5 + 4.0 * rng.next_f64(),
                    schema: START_SCHEMA,
                    buckets: BTreeMap::new(),
                    zero_count: 0,
                    sum: 0.0,
                },
                offset_ms,
                rng,
            });
        }
        let mut rng = Rng::new(seeds.next_u64());
        out.push(HistogramSeries {
            labels: Labels::from_pairs(base("ntp_peer_offset_seconds")),
            kind: Kind::NtpOffset {
                drift_s: 0.01 * rng.normal(),
            },
            offset_ms,
            rng,
        });
    }
    out
}

impl HistogramSeries {
    /// A scrape's deviation from its schedule: a few milliseconds now and then, as for the
    /// float series, when the interval is at least a second.
    pub fn jitter_ms(&mut self, interval_ms: i64) -> i64 {
        if interval_ms >= 1000 && self.rng.chance(0.1) {
            self.rng.below(5) as i64 - 2
        } else {
            0
        }
    }

    /// The sample of the next scrape, `interval_s` after the previous one.
    pub fn next_value(&mut self, interval_s: f64) -> SampleValue {
        let rng = &mut self.rng;
        match &mut self.kind {
            Kind::RequestDuration {
                rate_per_s,
                schema,
                buckets,
                zero_count,
                sum,
            } => {
                if rng.chance(RESET_PROBABILITY) {
                    buckets.clear();
                    *zero_count = 0;
                    *sum = 0.0;
                    *schema = START_SCHEMA;
                }
                let n = (*rate_per_s * interval_s * (0.5 + rng.next_f64())).round() as u64;
                for _ in 0..n {
                    observe(rng, *schema, buckets, zero_count, sum);
                }
                if buckets.len() > BUCKETS_MAX {
                    *schema -= 1;
                    *buckets = halve_resolution(buckets);
                }
                SampleValue::Histogram(counter_histogram(*schema, buckets, *zero_count, *sum))
            }
            Kind::NtpOffset { drift_s } => {
                *drift_s += 0.002 * rng.normal() - 0.05 * *drift_s;
                SampleValue::FloatHistogram(ntp_histogram(rng, *drift_s))
            }
        }
    }
}

/// One request: mostly around 50 ms, now and then 30x slower, rarely 0 (served from cache).
fn observe(
    rng: &mut Rng,
    schema: i32,
    buckets: &mut BTreeMap<i32, u64>,
    zero: &mut u64,
    sum: &mut f64,
) {
    if rng.chance(0.02) {
        *zero += 1;
        return;
    }
    let mut v = (0.05f64.ln() + 0.5 * rng.normal()).exp();
    if rng.chance(0.005) {
        v *= 30.0;
    }
    // Rounded to microseconds, so that sums stay short in the XOR encoding.
    let v = (v * 1e6).round().max(1.0) / 1e6;
    *sum += v;
    *buckets.entry(bucket_index(v, schema)).or_insert(0) += 1;
}

/// The exponential bucket of `v > 0`: bucket `i` holds `(2^((i-1)/2^s), 2^(i/2^s)]`.
fn bucket_index(v: f64, schema: i32) -> i32 {
    (v.log2() * 2f64.powi(schema)).ceil() as i32
}

/// The buckets at half the resolution: index `i` becomes `ceil(i/2)`.
fn halve_resolution(buckets: &BTreeMap<i32, u64>) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    for (&i, &c) in buckets {
        *out.entry((i + 1) >> 1).or_insert(0) += c;
    }
    out
}

/// Spans of the indices of `buckets` (ascending), one span per run of adjacent indices.
fn spans_of(indices: impl IntoIterator<Item = i32>) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut last = 0;
    for i in indices {
        match spans.last_mut() {
            Some(s) if i == last + 1 => s.length += 1,
            Some(_) => spans.push(Span::new(i - last - 1, 1)),
            None => spans.push(Span::new(i, 1)),
        }
        last = i;
    }
    spans
}

fn counter_histogram(
    schema: i32,
    buckets: &BTreeMap<i32, u64>,
    zero_count: u64,
    sum: f64,
) -> Histogram {
    let mut previous = 0i64;
    let deltas = buckets
        .values()
        .map(|&c| {
            let d = c as i64 - previous;
            previous = c as i64;
            d
        })
        .collect();
    Histogram {
        schema,
        zero_threshold: DEFAULT_ZERO_THRESHOLD,
        zero_count,
        count: zero_count + buckets.values().sum::<u64>(),
        sum,
        positive_spans: spans_of(buckets.keys().copied()),
        positive_buckets: deltas,
        ..Histogram::default()
    }
}

/// The offsets of the peers now, as a gauge histogram weighted by peer quality (1 or 0.5).
fn ntp_histogram(rng: &mut Rng, drift_s: f64) -> FloatHistogram {
    const SCHEMA: i32 = 2;
    let mut positive: BTreeMap<i32, f64> = BTreeMap::new();
    let mut negative: BTreeMap<i32, f64> = BTreeMap::new();
    let (mut zero, mut count, mut sum) = (0.0, 0.0, 0.0);
    for peer in 0..NTP_PEERS {
        let weight = if peer % 3 == 2 { 0.5 } else { 1.0 };
        let offset = ((drift_s + 0.004 * rng.normal()) * 1e6).round() / 1e6;
        count += weight;
        sum += weight * offset;
        if offset.abs() <= NTP_ZERO_THRESHOLD {
            zero += weight;
        } else if offset > 0.0 {
            *positive.entry(bucket_index(offset, SCHEMA)).or_insert(0.0) += weight;
        } else {
            *negative.entry(bucket_index(-offset, SCHEMA)).or_insert(0.0) += weight;
        }
    }
    FloatHistogram {
        counter_reset_hint: crate::tsdb::histogram::CounterResetHint::Gauge,
        schema: SCHEMA,
        zero_threshold: NTP_ZERO_THRESHOLD,
        zero_count: zero,
        count,
        sum,
        positive_spans: spans_of(positive.keys().copied()),
        negative_spans: spans_of(negative.keys().copied()),
        positive_buckets: positive.into_values().collect(),
        negative_buckets: negative.into_values().collect(),
        custom_values: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_indices_follow_the_schema() {
        // Schema 0: (1, 2] is bucket 1, (0.5, 1] bucket 0.
        assert_eq!(bucket_index(1.5, 0), 1);
        assert_eq!(bucket_index(1.0, 0), 0);
        assert_eq!(bucket_index(0.75, 0), 0);
        // Schema 3: 8 buckets per doubling.
        assert_eq!(bucket_index(2.0, 3), 8);
        assert_eq!(bucket_index(2.01, 3), 9);
        let halved = halve_resolution(&[(-3, 1), (-2, 2), (3, 4), (4, 8)].into_iter().collect());
        assert_eq!(halved.into_iter().collect::<Vec<_>>(), [(-1, 3), (2, 12)]);
    }

    #[test]
    fn spans_cover_runs_of_indices() {
        assert_eq!(
            spans_of([-2, -1, 3, 4, 5, 9]),
            [Span::new(-2, 2), Span::new(3, 3), Span::new(3, 1)]
        );
        assert!(spans_of([]).is_empty());
    }

    #[test]
    fn series_are_valid_histograms() {
        let instances = [("host-00000:9100".to_string(), "api".to_string())];
        let mut series = build(&instances, 7, 15_000);
        assert_eq!(series.len(), HANDLERS.len() + 1);
        for s in &mut series {
            for _ in 0..2000 {
                match s.next_value(15.0) {
                    SampleValue::Histogram(h) => {
                        h.check_layout().expect("layout");
                        assert!(h.positive_buckets.len() <= BUCKETS_MAX);
                    }
                    SampleValue::FloatHistogram(h) => {
                        h.check_layout().expect("layout");
                        assert_eq!(h.count, 7.0, "six peers of weight 1, two of weight 0.5");
                    }
                    SampleValue::Float(_) => panic!("histograms only"),
                }
            }
        }
    }
}

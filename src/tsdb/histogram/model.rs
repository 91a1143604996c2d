//! The native histogram sample types, as Prometheus' `model/histogram` defines them, reduced
//! to what the chunk codec needs: the bucket layout (spans) and the counts.
//!
//! An integer [`Histogram`] stores its buckets as deltas (each bucket's count minus the
//! previous bucket's, the first one absolute), exactly as the chunk encodes them; a
//! [`FloatHistogram`] stores absolute counts. Spans describe which buckets exist: the first
//! span's offset is the index of its first bucket, every later offset is the gap after the
//! previous span. Floats compare by value with `==` (so a stale marker is never equal to
//! itself); [`Histogram::same_bits`] and [`FloatHistogram::same_bits`] compare bit patterns.

/// Bits of Prometheus' staleness marker, a NaN (`value.StaleNaN`). A histogram whose sum has
/// these bits is a stale marker: its other fields are not stored.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The schema of histograms with custom bucket bounds (`CustomBucketsSchema`).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// The lowest exponential schema a chunk may hold (`ExponentialSchemaMinReserved`).
pub const EXPONENTIAL_SCHEMA_MIN_RESERVED: i32 = -9;

/// The highest exponential schema a chunk may hold (`ExponentialSchemaMaxReserved`); above 8,
/// Prometheus reduces the resolution when reading.
pub const EXPONENTIAL_SCHEMA_MAX_RESERVED: i32 = 52;

/// True for the schemas a chunk may carry (`histogram.IsKnownSchema`).
pub fn is_known_schema(schema: i32) -> bool {
    schema == CUSTOM_BUCKETS_SCHEMA
        || (EXPONENTIAL_SCHEMA_MIN_RESERVED..=EXPONENTIAL_SCHEMA_MAX_RESERVED).contains(&schema)
}

/// What a sample says about counter resets (`histogram.CounterResetHint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CounterResetHint {
    /// Nothing is known; readers detect resets themselves.
    #[default]
    Unknown,
    /// The counters were reset before this sample.
    CounterReset,
    /// The counters were not reset before this sample.
    NotCounterReset,
    /// A gauge histogram, whose counts may go down.
    Gauge,
}

/// A run of consecutive buckets (`histogram.Span`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Gap to the previous span (for the first span: the index of its first bucket).
    pub offset: i32,
    /// Number of buckets in the span.
    pub length: u32,
}

impl Span {
    /// A span of `length` buckets `offset` after the previous one.
    pub const fn new(offset: i32, length: u32) -> Self {
        Span { offset, length }
    }
}

/// Number of buckets the spans describe.
pub fn bucket_count(spans: &[Span]) -> u64 {
    spans.iter().map(|s| u64::from(s.length)).sum()
}

/// An integer native histogram (`histogram.Histogram`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// What the sample says about counter resets.
    pub counter_reset_hint: CounterResetHint,
    /// Resolution: -4..=8 exponential (growth factor `2^(2^-schema)`), -53 custom bounds.
    pub schema: i32,
    /// Observations with absolute value at most this go to the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// All observations.
    pub count: u64,
    /// Sum of all observations.
    pub sum: f64,
    /// Layout of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Layout of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts as deltas: the first absolute, then each minus the previous.
    pub positive_buckets: Vec<i64>,
    /// Negative bucket counts as deltas.
    pub negative_buckets: Vec<i64>,
    /// Upper bounds of the custom buckets (schema -53 only).
    pub custom_values: Vec<f64>,
}

/// A float native histogram (`histogram.FloatHistogram`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    /// What the sample says about counter resets.
    pub counter_reset_hint: CounterResetHint,
    /// Resolution, as for [`Histogram::schema`].
    pub schema: i32,
    /// Observations with absolute value at most this go to the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// All observations.
    pub count: f64,
    /// Sum of all observations.
    pub sum: f64,
    /// Layout of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Layout of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Absolute positive bucket counts.
    pub positive_buckets: Vec<f64>,
    /// Absolute negative bucket counts.
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (schema -53 only).
    pub custom_values: Vec<f64>,
}

/// One sample value of a series: what a chunk of any sample encoding holds.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    /// A float sample (XOR chunks).
    Float(f64),
    /// An integer histogram (encoding 2).
    Histogram(Histogram),
    /// A float histogram (encoding 3).
    FloatHistogram(FloatHistogram),
}

impl SampleValue {
    /// True when both hold the same kind of value with the same bits.
    pub fn same_bits(&self, other: &SampleValue) -> bool {
        match (self, other) {
            (SampleValue::Float(a), SampleValue::Float(b)) => a.to_bits() == b.to_bits(),
            (SampleValue::Histogram(a), SampleValue::Histogram(b)) => a.same_bits(b),
            (SampleValue::FloatHistogram(a), SampleValue::FloatHistogram(b)) => a.same_bits(b),
            _ => false,
        }
    }
}

fn same_f64s(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Checks that `spans` describe exactly `buckets` buckets.
fn check_spans(side: &str, spans: &[Span], buckets: usize) -> Result<(), String> {
    let want = bucket_count(spans);
    if want != buckets as u64 {
        return Err(format!(
            "{side} spans describe {want} buckets, {buckets} are given"
        ));
    }
    Ok(())
}

impl Histogram {
    /// A staleness marker: only the sum is set.
    pub fn stale() -> Self {
        Histogram {
            sum: f64::from_bits(STALE_NAN_BITS),
            ..Histogram::default()
        }
    }

    /// True for a staleness marker.
    pub fn is_stale(&self) -> bool {
        self.sum.to_bits() == STALE_NAN_BITS
    }

    /// Equality with floats compared by their bits (NaNs included).
    pub fn same_bits(&self, other: &Histogram) -> bool {
        self.counter_reset_hint == other.counter_reset_hint
            && self.schema == other.schema
            && self.zero_threshold.to_bits() == other.zero_threshold.to_bits()
            && self.zero_count == other.zero_count
            && self.count == other.count
            && self.sum.to_bits() == other.sum.to_bits()
            && self.positive_spans == other.positive_spans
            && self.negative_spans == other.negative_spans
            && self.positive_buckets == other.positive_buckets
            && self.negative_buckets == other.negative_buckets
            && same_f64s(&self.custom_values, &other.custom_values)
    }

    /// Checks that the bucket counts match the spans (what the encoder needs to not misplace
    /// buckets). A staleness marker's buckets are never stored, so it always passes.
    pub fn check_layout(&self) -> Result<(), String> {
        if self.is_stale() {
            return Ok(());
        }
        check_spans(
            "positive",
            &self.positive_spans,
            self.positive_buckets.len(),
        )?;
        check_spans(
            "negative",
            &self.negative_spans,
            self.negative_buckets.len(),
        )
    }

    /// Absolute positive bucket counts (the running sum of the deltas).
    pub fn positive_counts(&self) -> Vec<i64> {
        absolute(&self.positive_buckets)
    }

    /// Absolute negative bucket counts.
    pub fn negative_counts(&self) -> Vec<i64> {
        absolute(&self.negative_buckets)
    }

    /// The same histogram with float counts (`Histogram.ToFloat`).
    pub fn to_float(&self) -> FloatHistogram {
        let floats = |deltas: &[i64]| absolute(deltas).into_iter().map(|c| c as f64).collect();
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: floats(&self.positive_buckets),
            negative_buckets: floats(&self.negative_buckets),
            custom_values: self.custom_values.clone(),
        }
    }
}

/// The running sum of bucket deltas, wrapping as Go's int64 arithmetic does.
pub(super) fn absolute(deltas: &[i64]) -> Vec<i64> {
    deltas
        .iter()
        .scan(0i64, |acc, &d| {
            *acc = acc.wrapping_add(d);
            Some(*acc)
        })
        .collect()
}

impl FloatHistogram {
    /// A staleness marker: only the sum is set.
    pub fn stale() -> Self {
        FloatHistogram {
            sum: f64::from_bits(STALE_NAN_BITS),
            ..FloatHistogram::default()
        }
    }

    /// True for a staleness marker.
    pub fn is_stale(&self) -> bool {
        self.sum.to_bits() == STALE_NAN_BITS
    }

    /// Equality with floats compared by their bits (NaNs included).
    pub fn same_bits(&self, other: &FloatHistogram) -> bool {
        self.counter_reset_hint == other.counter_reset_hint
            && self.schema == other.schema
            && self.zero_threshold.to_bits() == other.zero_threshold.to_bits()
            && self.zero_count.to_bits() == other.zero_count.to_bits()
            && self.count.to_bits() == other.count.to_bits()
            && self.sum.to_bits() == other.sum.to_bits()
            && self.positive_spans == other.positive_spans
            && self.negative_spans == other.negative_spans
            && same_f64s(&self.positive_buckets, &other.positive_buckets)
            && same_f64s(&self.negative_buckets, &other.negative_buckets)
            && same_f64s(&self.custom_values, &other.custom_values)
    }

    /// Checks that the bucket counts match the spans; a staleness marker always passes.
    pub fn check_layout(&self) -> Result<(), String> {
        if self.is_stale() {
            return Ok(());
        }
        check_spans(
            "positive",
            &self.positive_spans,
            self.positive_buckets.len(),
        )?;
        check_spans(
            "negative",
            &self.negative_spans,
            self.negative_buckets.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_markers_are_recognised_by_bits() {
        assert!(Histogram::stale().is_stale());
        assert!(FloatHistogram::stale().is_stale());
        let nan = Histogram {
            sum: f64::NAN,
            ..Histogram::default()
        };
        assert!(!nan.is_stale());
        assert_ne!(Histogram::stale(), Histogram::stale());
        assert!(Histogram::stale().same_bits(&Histogram::stale()));
    }

    #[test]
    fn layout_check_counts_buckets() {
        let mut h = Histogram {
            positive_spans: vec![Span::new(0, 2), Span::new(3, 1)],
            positive_buckets: vec![1, 0, 2],
            ..Histogram::default()
        };
        assert_eq!(h.check_layout(), Ok(()));
        h.positive_buckets.pop();
        assert!(h.check_layout().unwrap_err().contains("3 buckets, 2"));
        assert_eq!(h.positive_counts(), vec![1, 1]);
    }

    #[test]
    fn schemas_known_to_chunks() {
        assert!(is_known_schema(-9));
        assert!(is_known_schema(52));
        assert!(is_known_schema(-53));
        assert!(!is_known_schema(-10));
        assert!(!is_known_schema(53));
    }
}

//! Object storage metrics (`thanos-io/objstore` `BucketMetrics`, registered by Thanos with the
//! `thanos_` prefix). Every series carries the constant label `bucket`, the bucket's name.
//!
//! Thanos pre-creates the per-operation series for every operation, so `rate()` and the
//! `ThanosCompactBucketHighOperationFailures` alert see zeros rather than absent series.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::labels::{BucketOp, BucketOpLabels};
use super::{register, touch, FloatGauge, HistogramFamily};

/// Buckets of `thanos_objstore_bucket_operation_duration_seconds`.
const DURATION_BUCKETS_SECONDS: [f64; 14] = [
    0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0,
];

/// First bucket of `thanos_objstore_bucket_operation_transferred_bytes`: 32 KiB.
const TRANSFERRED_BYTES_FIRST: f64 = 32768.0;
/// Number of transferred-bytes buckets, doubling from 32 KiB to 1 GiB.
const TRANSFERRED_BYTES_BUCKETS: u16 = 16;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS_SECONDS)
}

fn transferred_bytes_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        TRANSFERRED_BYTES_FIRST,
        2.0,
        TRANSFERRED_BYTES_BUCKETS,
    ))
}

/// Per-operation metrics of one bucket.
#[derive(Debug)]
pub struct BucketMetrics {
    /// `thanos_objstore_bucket_operations_total{bucket,operation}`: attempted operations.
    pub operations: Family<BucketOpLabels, Counter>,
    /// `thanos_objstore_bucket_operation_failures_total{bucket,operation}`: failures that
    /// were not expected (a "not found" the caller asked about is not a failure).
    pub failures: Family<BucketOpLabels, Counter>,
    /// `thanos_objstore_bucket_operation_duration_seconds{bucket,operation}`: duration of
    /// *successful* operations.
    pub duration: HistogramFamily<BucketOpLabels>,
    /// `thanos_objstore_bucket_operation_fetched_bytes_total{bucket,operation}`.
    pub fetched_bytes: Family<BucketOpLabels, Counter>,
    /// `thanos_objstore_bucket_operation_transferred_bytes{bucket,operation}`: bytes per
    /// operation.
    pub transferred_bytes: HistogramFamily<BucketOpLabels>,
    /// `thanos_objstore_bucket_last_successful_upload_time{bucket}`: Unix seconds.
    pub last_successful_upload_time: FloatGauge,
}

impl BucketMetrics {
    /// Registers the metrics in `registry` (which must carry the `bucket` label) and creates
    /// the series Thanos creates.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = BucketMetrics {
            operations: register(
                registry,
                "thanos_objstore_bucket_operations",
                "Total number of all attempted operations against a bucket.",
                Family::default(),
            ),
            failures: register(
                registry,
                "thanos_objstore_bucket_operation_failures",
                "Total number of operations against a bucket that failed, but were not expected to fail in certain way from caller perspective. Those errors have to be investigated.",
                Family::default(),
            ),
            fetched_bytes: register(
                registry,
                "thanos_objstore_bucket_operation_fetched_bytes",
                "Total number of bytes fetched from bucket, per operation.",
                Family::default(),
            ),
            transferred_bytes: register(
                registry,
                "thanos_objstore_bucket_operation_transferred_bytes",
                "Number of bytes transferred from/to bucket per operation.",
                Family::new_with_constructor(transferred_bytes_histogram as fn() -> Histogram),
            ),
            duration: register(
                registry,
                "thanos_objstore_bucket_operation_duration_seconds",
                "Duration of successful operations against the bucket per operation - iter operations include time spent on each callback.",
                Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            ),
            last_successful_upload_time: register(
                registry,
                "thanos_objstore_bucket_last_successful_upload_time",
                "Second timestamp of the last successful upload to the bucket.",
                FloatGauge::default(),
            ),
        };
        for operation in BucketOp::ALL {
            let labels = BucketOpLabels { operation };
            touch(&metrics.operations, &labels);
            touch(&metrics.failures, &labels);
            touch(&metrics.duration, &labels);
        }
        for operation in BucketOp::TRANSFERRING {
            let labels = BucketOpLabels { operation };
            touch(&metrics.fetched_bytes, &labels);
            touch(&metrics.transferred_bytes, &labels);
        }
        metrics
    }

    /// Records one finished operation: counts the attempt, and then either the duration of a
    /// success or an unexpected failure, as Thanos' instrumented bucket does. A cancelled
    /// operation should be reported as [`OpOutcome::ExpectedFailure`] (Thanos skips those too).
    pub fn observe(&self, operation: BucketOp, duration_seconds: f64, outcome: OpOutcome) {
        let labels = BucketOpLabels { operation };
        self.operations.get_or_create(&labels).inc();
        match outcome {
            OpOutcome::Success => {
                self.duration
                    .get_or_create(&labels)
                    .observe(duration_seconds);
            }
            OpOutcome::ExpectedFailure => {}
            OpOutcome::Failure => {
                self.failures.get_or_create(&labels).inc();
            }
        }
    }

    /// Records bytes read or written by one `get`, `get_range` or `upload`.
    pub fn observe_bytes(&self, operation: BucketOp, bytes: u64) {
        let labels = BucketOpLabels { operation };
        self.fetched_bytes.get_or_create(&labels).inc_by(bytes);
        // Precision loss above 2^53 bytes is irrelevant for a histogram bucket.
        self.transferred_bytes
            .get_or_create(&labels)
            .observe(bytes as f64);
    }

    /// Records a successful upload finishing at `unix_seconds`.
    pub fn upload_succeeded_at(&self, unix_seconds: f64) {
        self.last_successful_upload_time.set(unix_seconds);
    }
}

/// How an object storage operation ended, for [`BucketMetrics::observe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    /// It succeeded; its duration is observed.
    Success,
    /// It failed in a way the caller expected (Thanos' `IsOpFailureExpected`): counted as an
    /// attempt only.
    ExpectedFailure,
    /// It failed: counted in `thanos_objstore_bucket_operation_failures_total`.
    Failure,
}

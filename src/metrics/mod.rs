//! Every metric compactd exports, under the names `thanos compact` uses.
//!
//! compactd is a drop-in replacement, so the Thanos mixin's dashboards and alerts
//! (`ThanosCompactHalted`, `ThanosCompactHasNotRun`, ...) must keep working unchanged: names,
//! label names, label values, histogram buckets and the series Thanos pre-creates at 0 are
//! copied from Thanos (`cmd/thanos/compact.go`, `pkg/compact`, `pkg/block/fetcher.go`,
//! `thanos-io/objstore`). compactd's own high-availability metrics are prefixed `compactd_`.
//! The `process_*` families and `thanos_build_info` are those every Go binary of Thanos
//! exports (`cmd/thanos/main.go`), so the standard resource panels work too; `process_*` is
//! read from `/proc` at each scrape ([`ProcessCollector`]).
//!
//! [`Metrics`] owns the [`Registry`] and one typed handle per metric, grouped by the Thanos
//! source that defines them. Handles are cheap `Arc` clones, so callers may copy the ones they
//! drive. Nothing here reads a clock: durations and timestamps come from the caller.
//!
//! Two prometheus-client conventions to keep in mind when adding metrics:
//! - counters are registered *without* `_total`; the encoder appends it (and a debug
//!   assertion in the registry rejects a name that already ends in `_total`);
//! - the registry appends `.` to every help text, so [`register`] strips a trailing one to
//!   avoid `..`.

mod bucket;
mod compact;
mod fetcher;
mod ha;
mod labels;
mod process;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

pub use bucket::{BucketMetrics, OpOutcome};
pub use compact::{
    CompactMetrics, DownsampleMetrics, GroupCounters, GroupMetrics, ProgressMetrics, TsdbMetrics,
};
pub use fetcher::{
    FetcherMetrics, TxGaugeVec, MODIFIED_KINDS, MODIFIED_REPLICA_LABEL_REMOVED,
    STATE_CORRUPTED_META, STATE_DUPLICATE, STATE_FAILED, STATE_LABEL_EXCLUDED, STATE_LOADED,
    STATE_MARKED_FOR_DELETION, STATE_MARKED_FOR_NO_COMPACT, STATE_MARKED_FOR_NO_DOWNSAMPLE,
    STATE_NO_META, STATE_PARQUET_MIGRATED, STATE_SCOPE_EXCLUDED, STATE_TIME_EXCLUDED,
    STATE_TOO_FRESH, SYNCED_STATES,
};
pub use ha::{HaMetrics, StatusMetrics, FAILOVER_BUCKETS_SECONDS};
pub use labels::{
    BucketOp, BucketOpLabels, BuildLabels, MarkedLabels, Marker, ModifiedLabels, ProbeCheck,
    ResolutionLabels, StateLabels, StatusLabels, ThanosBuildLabels,
    REASON_DOWNSAMPLE_VERTICAL_COMPACTION, REASON_INDEX_SIZE_EXCEEDING, REASON_MANUAL,
    REASON_OUT_OF_ORDER_CHUNKS,
};
pub use process::{ProcessCollector, ProcessSample};

/// `Content-Type` of [`Metrics::encode`] (OpenMetrics 1.0.0, which Prometheus prefers).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of [`Metrics::encode_prometheus_text`] (Prometheus text format 0.0.4).
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A gauge holding an `f64` (seconds, Unix timestamps).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// A labelled histogram family whose buckets come from a plain `fn` constructor.
pub type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// Registers `metric` under `name` and returns a handle to it. A trailing `.` of `help` is
/// dropped because the registry appends one.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    let help = help.strip_suffix('.').unwrap_or(help);
    registry.register(name, help, metric.clone());
    metric
}

/// Creates the series of `labels` in `family` at its initial value, so it is exported before
/// its first update (Go's `WithLabelValues` without a use).
fn touch<S, M, C>(family: &Family<S, M, C>, labels: &S)
where
    S: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    drop(family.get_or_create(labels));
}

/// The registry and every metric compactd exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Compaction loop, clean-up, marks, garbage collection, configured delays.
    pub compact: CompactMetrics,
    /// Per-resolution compaction group counters.
    pub groups: GroupMetrics,
    /// `thanos_compact_todo_*`.
    pub progress: ProgressMetrics,
    /// `thanos_compact_downsample_*`.
    pub downsample: DownsampleMetrics,
    /// `thanos_blocks_meta_*`.
    pub fetcher: FetcherMetrics,
    /// `thanos_objstore_bucket_*`, labelled with the bucket's name.
    pub bucket: BucketMetrics,
    /// `prometheus_tsdb_compaction*`.
    pub tsdb: TsdbMetrics,
    /// `thanos_status`.
    pub status: StatusMetrics,
    /// `compactd_*` leadership and safety metrics.
    pub ha: HaMetrics,
}

impl Metrics {
    /// Registers every metric. `bucket` is the `bucket` label of the objstore metrics (Thanos
    /// uses the bucket's name as the provider reports it).
    pub fn new(bucket: &str) -> Metrics {
        let mut registry = Registry::default();
        let compact = CompactMetrics::register(&mut registry);
        let groups = GroupMetrics::register(&mut registry);
        let progress = ProgressMetrics::register(&mut registry);
        let downsample = DownsampleMetrics::register(&mut registry);
        let fetcher = FetcherMetrics::register(&mut registry);
        let tsdb = TsdbMetrics::register(&mut registry);
        let status = StatusMetrics::register(&mut registry);
        let ha = HaMetrics::register(&mut registry);
        ha::register_build_info(&mut registry, env!("CARGO_PKG_VERSION"));
        registry.register_collector(Box::new(ProcessCollector));
        let bucket_label = (Cow::Borrowed("bucket"), Cow::Owned(bucket.to_owned()));
        let bucket = BucketMetrics::register(registry.sub_registry_with_label(bucket_label));
        Metrics {
            registry,
            compact,
            groups,
            progress,
            downsample,
            fetcher,
            bucket,
            tsdb,
            status,
            ha,
        }
    }

    /// The registry, for registering further metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// All metrics in the OpenMetrics text format, ending in `# EOF`; serve it as
    /// [`OPENMETRICS_CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// All metrics in the Prometheus text format 0.0.4, for clients that do not accept
    /// OpenMetrics; serve it as [`PROMETHEUS_TEXT_CONTENT_TYPE`].
    pub fn encode_prometheus_text(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    /// Metrics for a bucket with an empty name.
    fn default() -> Self {
        Metrics::new("")
    }
}

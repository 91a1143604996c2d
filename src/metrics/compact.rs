//! The compactor's own metrics: the loop (`cmd/thanos/compact.go`), garbage collection
//! (`pkg/compact/compact.go` `SyncerMetrics`), compaction groups (`DefaultGrouper`), progress
//! (`CompactionProgressCalculator` and friends), downsampling (`cmd/thanos/downsample.go`) and
//! the Prometheus TSDB compactor (`tsdb/compact.go` `compactorMetrics`).
//!
//! Names, help texts, label names and histogram buckets are Thanos' own. Counters are
//! registered without `_total`: prometheus-client appends it when encoding.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::labels::{
    MarkedLabels, Marker, ResolutionLabels, REASON_INDEX_SIZE_EXCEEDING, REASON_OUT_OF_ORDER_CHUNKS,
};
use super::{register, touch, FloatGauge, HistogramFamily};

/// Buckets of `thanos_compact_garbage_collection_duration_seconds`.
const GARBAGE_COLLECTION_BUCKETS_SECONDS: [f64; 16] = [
    0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0, 240.0, 360.0, 720.0,
];

/// Buckets of `thanos_compact_downsample_duration_seconds`: 1m, 5m, 15m, 30m, 1h, 2h, 4h.
const DOWNSAMPLE_BUCKETS_SECONDS: [f64; 7] = [60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0];

/// Constructor of the downsample duration histograms (a `fn` so the family type is nameable).
fn downsample_histogram() -> Histogram {
    Histogram::new(DOWNSAMPLE_BUCKETS_SECONDS)
}

/// The compaction loop, clean-up loop, block marks and garbage collection.
#[derive(Debug)]
pub struct CompactMetrics {
    /// `thanos_compact_halted`: 1 once the compactor halted on a critical error.
    pub halted: Gauge,
    /// `thanos_compact_retries_total`: retriable errors that restarted an iteration.
    pub retries: Counter,
    /// `thanos_compact_iterations_total`: iterations that completed successfully.
    pub iterations: Counter,
    /// `thanos_compact_block_cleanup_loops_total`: successful clean-up loops.
    pub cleanup_loops: Counter,
    /// `thanos_compact_aborted_partial_uploads_deletion_attempts_total`.
    pub partial_upload_delete_attempts: Counter,
    /// `thanos_compact_blocks_cleaned_total`: blocks deleted.
    pub blocks_cleaned: Counter,
    /// `thanos_compact_block_cleanup_failures_total`: failed block deletions.
    pub block_cleanup_failures: Counter,
    /// `thanos_compact_blocks_marked_total{marker,reason}`; see [`CompactMetrics::block_marked`].
    pub blocks_marked: Family<MarkedLabels, Counter>,
    /// `thanos_compact_garbage_collected_blocks_total`: blocks marked because a compacted
    /// block replaces them.
    pub garbage_collected_blocks: Counter,
    /// `thanos_compact_garbage_collection_total`: garbage collection runs.
    pub garbage_collections: Counter,
    /// `thanos_compact_garbage_collection_failures_total`.
    pub garbage_collection_failures: Counter,
    /// `thanos_compact_garbage_collection_duration_seconds`.
    pub garbage_collection_duration: Histogram,
    /// `thanos_delete_delay_seconds`: the configured `--delete-delay`.
    pub delete_delay_seconds: FloatGauge,
    /// `thanos_consistency_delay_seconds`: the configured `--consistency-delay`.
    pub consistency_delay_seconds: FloatGauge,
    /// `compactd_compact_insufficient_disk_total`: jobs of the download path refused before
    /// downloading anything because `--data-dir` had less free space than they need.
    pub insufficient_disk: Counter,
}

impl CompactMetrics {
    /// Registers the metrics and pre-creates the `blocks_marked` series Thanos pre-creates.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = CompactMetrics {
            halted: register(
                registry,
                "thanos_compact_halted",
                "Set to 1 if the compactor halted due to an unexpected error.",
                Gauge::default(),
            ),
            retries: register(
                registry,
                "thanos_compact_retries",
                "Total number of retries after retriable compactor error.",
                Counter::default(),
            ),
            iterations: register(
                registry,
                "thanos_compact_iterations",
                "Total number of iterations that were executed successfully.",
                Counter::default(),
            ),
            cleanup_loops: register(
                registry,
                "thanos_compact_block_cleanup_loops",
                "Total number of concurrent cleanup loops of partially uploaded blocks and marked blocks that were executed successfully.",
                Counter::default(),
            ),
            partial_upload_delete_attempts: register(
                registry,
                "thanos_compact_aborted_partial_uploads_deletion_attempts",
                "Total number of started deletions of blocks that are assumed aborted and only partially uploaded.",
                Counter::default(),
            ),
            blocks_cleaned: register(
                registry,
                "thanos_compact_blocks_cleaned",
                "Total number of blocks deleted in compactor.",
                Counter::default(),
            ),
            block_cleanup_failures: register(
                registry,
                "thanos_compact_block_cleanup_failures",
                "Failures encountered while deleting blocks in compactor.",
                Counter::default(),
            ),
            blocks_marked: register(
                registry,
                "thanos_compact_blocks_marked",
                "Total number of blocks marked in compactor.",
                Family::default(),
            ),
            garbage_collected_blocks: register(
                registry,
                "thanos_compact_garbage_collected_blocks",
                "Total number of blocks marked for deletion by compactor.",
                Counter::default(),
            ),
            garbage_collections: register(
                registry,
                "thanos_compact_garbage_collection",
                "Total number of garbage collection operations.",
                Counter::default(),
            ),
            garbage_collection_failures: register(
                registry,
                "thanos_compact_garbage_collection_failures",
                "Total number of failed garbage collection operations.",
                Counter::default(),
            ),
            garbage_collection_duration: register(
                registry,
                "thanos_compact_garbage_collection_duration_seconds",
                "Time it took to perform garbage collection iteration.",
                Histogram::new(GARBAGE_COLLECTION_BUCKETS_SECONDS),
            ),
            delete_delay_seconds: register(
                registry,
                "thanos_delete_delay_seconds",
                "Configured delete delay in seconds.",
                FloatGauge::default(),
            ),
            consistency_delay_seconds: register(
                registry,
                "thanos_consistency_delay_seconds",
                "Configured consistency delay in seconds.",
                FloatGauge::default(),
            ),
            insufficient_disk: register(
                registry,
                "compactd_compact_insufficient_disk",
                "Total number of jobs refused before downloading because --data-dir had less free space than they need.",
                Counter::default(),
            ),
        };
        metrics.blocks_marked_counter(Marker::NoCompact, REASON_OUT_OF_ORDER_CHUNKS);
        metrics.blocks_marked_counter(Marker::NoCompact, REASON_INDEX_SIZE_EXCEEDING);
        metrics.blocks_marked_counter(Marker::Deletion, "");
        metrics
    }

    /// The `blocks_marked` counter of one `(marker, reason)`, created at 0 if new.
    pub fn blocks_marked_counter(&self, marker: Marker, reason: &str) -> Counter {
        let labels = MarkedLabels {
            marker,
            reason: reason.to_owned(),
        };
        self.blocks_marked.get_or_create_owned(&labels)
    }

    /// Counts one block marked with `marker` for `reason` (empty for deletion marks).
    pub fn block_marked(&self, marker: Marker, reason: &str) {
        self.blocks_marked_counter(marker, reason).inc();
    }
}

/// Per-resolution compaction group counters (`DefaultGrouper`), labelled `resolution`.
#[derive(Debug)]
pub struct GroupMetrics {
    /// `thanos_compact_group_compactions_total`: attempts that produced a new block.
    pub compactions: Family<ResolutionLabels, Counter>,
    /// `thanos_compact_group_compaction_runs_started_total`.
    pub runs_started: Family<ResolutionLabels, Counter>,
    /// `thanos_compact_group_compaction_runs_completed_total`, also runs that compacted nothing.
    pub runs_completed: Family<ResolutionLabels, Counter>,
    /// `thanos_compact_group_compactions_failures_total`.
    pub failures: Family<ResolutionLabels, Counter>,
    /// `thanos_compact_group_vertical_compactions_total`: compactions of overlapping blocks.
    pub vertical_compactions: Family<ResolutionLabels, Counter>,
}

impl GroupMetrics {
    /// Registers the metrics. Series appear per resolution once a group of that resolution
    /// exists ([`GroupMetrics::for_resolution`]), as in Thanos.
    pub fn register(registry: &mut Registry) -> Self {
        GroupMetrics {
            compactions: register(
                registry,
                "thanos_compact_group_compactions",
                "Total number of group compaction attempts that resulted in a new block.",
                Family::default(),
            ),
            runs_started: register(
                registry,
                "thanos_compact_group_compaction_runs_started",
                "Total number of group compaction attempts.",
                Family::default(),
            ),
            runs_completed: register(
                registry,
                "thanos_compact_group_compaction_runs_completed",
                "Total number of group completed compaction runs. This also includes compactor group runs that resulted with no compaction.",
                Family::default(),
            ),
            failures: register(
                registry,
                "thanos_compact_group_compactions_failures",
                "Total number of failed group compactions.",
                Family::default(),
            ),
            vertical_compactions: register(
                registry,
                "thanos_compact_group_vertical_compactions",
                "Total number of group compaction attempts that resulted in a new block based on overlapping blocks.",
                Family::default(),
            ),
        }
    }

    /// The five counters of groups at `resolution_ms`, created at 0 if new. Thanos creates
    /// them when it builds a group, so call this once per group found and keep the result.
    pub fn for_resolution(&self, resolution_ms: i64) -> GroupCounters {
        let labels = ResolutionLabels {
            resolution: resolution_ms,
        };
        GroupCounters {
            compactions: self.compactions.get_or_create_owned(&labels),
            runs_started: self.runs_started.get_or_create_owned(&labels),
            runs_completed: self.runs_completed.get_or_create_owned(&labels),
            failures: self.failures.get_or_create_owned(&labels),
            vertical_compactions: self.vertical_compactions.get_or_create_owned(&labels),
        }
    }
}

/// The group counters of one resolution (handles into [`GroupMetrics`]' families).
#[derive(Clone, Debug)]
pub struct GroupCounters {
    /// See [`GroupMetrics::compactions`].
    pub compactions: Counter,
    /// See [`GroupMetrics::runs_started`].
    pub runs_started: Counter,
    /// See [`GroupMetrics::runs_completed`].
    pub runs_completed: Counter,
    /// See [`GroupMetrics::failures`].
    pub failures: Counter,
    /// See [`GroupMetrics::vertical_compactions`].
    pub vertical_compactions: Counter,
}

/// Work still to do, recomputed every `--compact.progress-interval`.
#[derive(Debug)]
pub struct ProgressMetrics {
    /// `thanos_compact_todo_compactions`: planned compaction runs.
    pub todo_compactions: Gauge,
    /// `thanos_compact_todo_compaction_blocks`: blocks in those runs.
    pub todo_compaction_blocks: Gauge,
    /// `thanos_compact_todo_downsample_blocks`.
    pub todo_downsample_blocks: Gauge,
    /// `thanos_compact_todo_deletion_blocks`: blocks past their retention.
    pub todo_deletion_blocks: Gauge,
}

impl ProgressMetrics {
    /// Registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        ProgressMetrics {
            todo_compactions: register(
                registry,
                "thanos_compact_todo_compactions",
                "number of compactions to be done",
                Gauge::default(),
            ),
            todo_compaction_blocks: register(
                registry,
                "thanos_compact_todo_compaction_blocks",
                "number of blocks planned to be compacted",
                Gauge::default(),
            ),
            todo_downsample_blocks: register(
                registry,
                "thanos_compact_todo_downsample_blocks",
                "number of blocks to be downsampled",
                Gauge::default(),
            ),
            todo_deletion_blocks: register(
                registry,
                "thanos_compact_todo_deletion_blocks",
                "number of blocks that have crossed their retention period",
                Gauge::default(),
            ),
        }
    }
}

/// Downsampling, labelled by the *source* block's resolution, as in Thanos.
#[derive(Debug)]
pub struct DownsampleMetrics {
    /// `thanos_compact_downsample_total`: attempts.
    pub downsamples: Family<ResolutionLabels, Counter>,
    /// `thanos_compact_downsample_failures_total`.
    pub failures: Family<ResolutionLabels, Counter>,
    /// `thanos_compact_downsample_duration_seconds`.
    pub duration: HistogramFamily<ResolutionLabels>,
}

impl DownsampleMetrics {
    /// Registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        DownsampleMetrics {
            downsamples: register(
                registry,
                "thanos_compact_downsample",
                "Total number of downsampling attempts.",
                Family::default(),
            ),
            failures: register(
                registry,
                "thanos_compact_downsample_failures",
                "Total number of failed downsampling attempts.",
                Family::default(),
            ),
            duration: register(
                registry,
                "thanos_compact_downsample_duration_seconds",
                "Duration of downsample runs",
                Family::new_with_constructor(downsample_histogram as fn() -> Histogram),
            ),
        }
    }

    /// Creates the attempt and failure series of `resolution_ms` at 0, as Thanos does for
    /// every block it considers for downsampling.
    pub fn init_resolution(&self, resolution_ms: i64) {
        let labels = ResolutionLabels {
            resolution: resolution_ms,
        };
        touch(&self.downsamples, &labels);
        touch(&self.failures, &labels);
    }
}

/// The Prometheus TSDB compactor's metrics, which Thanos exports because it embeds it.
#[derive(Debug)]
pub struct TsdbMetrics {
    /// `prometheus_tsdb_compactions_total`: block compactions run.
    pub compactions: Counter,
    /// `prometheus_tsdb_compaction_duration_seconds`.
    pub compaction_duration: Histogram,
    /// `prometheus_tsdb_compaction_populating_block`: 1 while a block is being written.
    pub populating_block: Gauge,
    /// `prometheus_tsdb_vertical_compactions_total`: compactions of overlapping blocks.
    pub vertical_compactions: Counter,
}

impl TsdbMetrics {
    /// Registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        TsdbMetrics {
            compactions: register(
                registry,
                "prometheus_tsdb_compactions",
                "Total number of compactions that were executed for the partition.",
                Counter::default(),
            ),
            compaction_duration: register(
                registry,
                "prometheus_tsdb_compaction_duration_seconds",
                "Duration of compaction runs",
                Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            ),
            populating_block: register(
                registry,
                "prometheus_tsdb_compaction_populating_block",
                "Set to 1 when a block is currently being written to the disk.",
                Gauge::default(),
            ),
            vertical_compactions: register(
                registry,
                "prometheus_tsdb_vertical_compactions",
                "Total number of compactions done on overlapping blocks.",
                Counter::default(),
            ),
        }
    }
}

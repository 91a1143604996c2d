//! The compaction cycle's settings: the flags of `compactd run` the cycle decides with. A
//! trace's header records them; settings added after the trace format came out have serde
//! defaults, so older traces load with them off.

use serde::{Deserialize, Serialize};

use super::super::view::ViewConfig;
use crate::units::HOUR_MS;

/// Age after which a partial upload is deleted (Thanos' `PartialUploadThresholdAge`).
pub const PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT: i64 = 48 * HOUR_MS;

/// The settings of the compaction cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleConfig {
    /// The sync filters.
    pub view: ViewConfig,
    /// `--wait`: run forever.
    pub wait: bool,
    /// `--wait-interval` in ms.
    pub wait_interval_ms: i64,
    /// `--compact.concurrency`.
    pub concurrency: usize,
    /// Compaction ranges in ms (from `--debug.max-compaction-level`).
    pub ranges: Vec<i64>,
    /// Vertical compaction (`--compact.enable-vertical-compaction` or a replica label).
    pub vertical: bool,
    /// `--compact.block-max-index-size` in bytes.
    pub index_size_limit_bytes: Option<u64>,
    /// Retention per resolution in ms (raw, 5m, 1h); 0 keeps forever.
    pub retention_ms: [i64; 3],
    /// Partial uploads whose newest object is older than this are deleted.
    pub partial_upload_threshold_ms: i64,
    /// Downsample after compacting (not `--downsampling.disable`).
    #[serde(default)]
    pub downsampling: bool,
    /// `--downsample.concurrency`.
    #[serde(default = "one")]
    pub downsample_concurrency: usize,
    /// `--compact.progress-interval` in ms: the least time between two calculations of the
    /// backlog gauges, which only run with `--wait`; 0 disables them.
    #[serde(default)]
    pub progress_interval_ms: i64,
    /// `--compact.cleanup-interval` in ms: with `--wait`, how often the background clean-up
    /// ([`super::cleanup`]) deletes stale partial uploads and marked blocks past the delete
    /// delay while a pass runs, the cycle waits or it is halted; 0 (also the value of traces
    /// recorded before it existed) leaves that to the iteration's own steps.
    #[serde(default)]
    pub cleanup_interval_ms: i64,
    /// `--debug.halt-on-error` (Thanos' hidden default: true): with `--wait`, stay up halted
    /// on an error that needs an operator; false exits instead (code 2), so that a restart
    /// policy retries, as Thanos returns the error.
    #[serde(default = "yes")]
    pub halt_on_error: bool,
    /// `--compact.skip-block-with-out-of-order-chunks`: a compaction that fails on an input
    /// block whose index lists chunks out of time order no-compact-marks that block and the
    /// pass goes on; off, it halts.
    #[serde(default)]
    pub skip_out_of_order_chunks: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

//! Shared fixtures of the core's tests: the settings every test starts from, so that a test
//! spells out only what it changes (`CycleConfig { wait_interval_ms: .., ..cycle_config(true) }`).

use super::cycle::{CycleConfig, PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT};
use super::types::{MetaState, Millis, SyncedBlock};
use super::view::{Scope, ViewConfig};
use crate::units::MINUTE_MS;

/// 2025-01-01T00:00:00Z in Unix ms: the wall time tests start from.
pub(crate) const T0_MS: i64 = 1_735_689_600_000;

/// The sync filters tests start from: no time window, no replica labels, no relabelling,
/// Thanos' default consistency delay (30m) and no delete delay.
pub(crate) fn view_config() -> ViewConfig {
    ViewConfig {
        min_time: i64::MIN,
        max_time: i64::MAX,
        consistency_delay_ms: 30 * MINUTE_MS,
        delete_delay_ms: 0,
        replica_labels: vec![],
        selector_relabel: vec![],
        scope: Scope::All,
    }
}

/// The cycle settings tests start from: [`view_config`], a 5m wait interval (with `wait`),
/// one job at a time, Thanos' default compaction levels, no vertical compaction, retention,
/// downsampling, backlog gauges or background clean-up.
pub(crate) fn cycle_config(wait: bool) -> CycleConfig {
    CycleConfig {
        view: view_config(),
        wait,
        wait_interval_ms: 5 * MINUTE_MS,
        concurrency: 1,
        ranges: super::plan::compaction_ranges(4).expect("level 4 exists"),
        vertical: false,
        index_size_limit_bytes: None,
        retention_ms: [0; 3],
        partial_upload_threshold_ms: PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT,
        downsampling: false,
        downsample_concurrency: 1,
        progress_interval_ms: 0,
        cleanup_interval_ms: 0,
        halt_on_error: true,
        skip_out_of_order_chunks: false,
    }
}

/// A listed block with `meta`, no markers, last modified at [`T0_MS`].
pub(crate) fn synced(meta: MetaState) -> SyncedBlock {
    SyncedBlock {
        meta,
        deletion_mark: None,
        no_compact_mark: None,
        no_downsample_mark: None,
        marker_problems: vec![],
        newest_modified: Millis(T0_MS),
    }
}

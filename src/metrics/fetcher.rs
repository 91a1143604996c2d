//! Block metadata sync metrics (`pkg/block/fetcher.go`, registered by Thanos with the
//! `thanos_` prefix and the `blocks_meta` subsystem).
//!
//! `thanos_blocks_meta_synced{state}` and `thanos_blocks_meta_modified{modified}` are
//! transactional in Thanos (`extprom.TxGaugeVec`): every sync starts from all known states at
//! 0, sets what it counted, and then replaces the exported vector. [`TxGaugeVec::set_all`] does
//! the same, so a state that emptied drops to 0 instead of keeping its last value, and a state
//! outside the known list is exported only while the latest sync counted it.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{ModifiedLabels, StateLabels};
use super::{register, touch};

/// State of blocks whose `meta.json` failed to parse.
pub const STATE_CORRUPTED_META: &str = "corrupted-meta-json";
/// State of blocks without `meta.json` (partial uploads).
pub const STATE_NO_META: &str = "no-meta-json";
/// State of blocks that passed every filter.
pub const STATE_LOADED: &str = "loaded";
/// State of blocks younger than `--consistency-delay`.
pub const STATE_TOO_FRESH: &str = "too-fresh";
/// State of blocks whose `meta.json` could not be read.
pub const STATE_FAILED: &str = "failed";
/// State of blocks dropped by `--selector.relabel-config`.
pub const STATE_LABEL_EXCLUDED: &str = "label-excluded";
/// State of blocks outside `--min-time`/`--max-time`.
pub const STATE_TIME_EXCLUDED: &str = "time-excluded";
/// State of blocks whose data another, more compacted block holds.
pub const STATE_DUPLICATE: &str = "duplicate";
/// State of blocks with a deletion mark.
pub const STATE_MARKED_FOR_DELETION: &str = "marked-for-deletion";
/// State of blocks with a no-compact mark.
pub const STATE_MARKED_FOR_NO_COMPACT: &str = "marked-for-no-compact";
/// State of blocks with a no-downsample mark (not pre-initialised by Thanos).
pub const STATE_MARKED_FOR_NO_DOWNSAMPLE: &str = "marked-for-no-downsample";
/// State of blocks migrated to Parquet.
pub const STATE_PARQUET_MIGRATED: &str = "parquet-migrated";
/// State of blocks outside this replica's scope: another replica is the elected writer of
/// their stream (or the bucket leader has them). compactd's own: not pre-initialised, so a
/// compactd with one writer for the bucket exports exactly Thanos' states.
pub const STATE_SCOPE_EXCLUDED: &str = "scope-excluded";

/// The states Thanos exports at every sync, zero included (`DefaultSyncedStateLabelValues`).
pub const SYNCED_STATES: [&str; 11] = [
    STATE_CORRUPTED_META,
    STATE_NO_META,
    STATE_LOADED,
    STATE_TOO_FRESH,
    STATE_FAILED,
    STATE_LABEL_EXCLUDED,
    STATE_TIME_EXCLUDED,
    STATE_DUPLICATE,
    STATE_MARKED_FOR_DELETION,
    STATE_MARKED_FOR_NO_COMPACT,
    STATE_PARQUET_MIGRATED,
];

/// Modification of blocks whose dedup replica labels were removed.
pub const MODIFIED_REPLICA_LABEL_REMOVED: &str = "replica-label-removed";

/// The modifications Thanos exports at every sync (`DefaultModifiedLabelValues`).
pub const MODIFIED_KINDS: [&str; 1] = [MODIFIED_REPLICA_LABEL_REMOVED];

/// Buckets of `thanos_blocks_meta_sync_duration_seconds`.
const SYNC_BUCKETS_SECONDS: [f64; 7] = [0.01, 1.0, 10.0, 100.0, 300.0, 600.0, 1000.0];

/// A gauge vector with one label whose values are replaced as a whole, like Thanos'
/// `extprom.TxGaugeVec`.
#[derive(Debug)]
pub struct TxGaugeVec<S> {
    family: Family<S, Gauge>,
    known: &'static [&'static str],
    label: fn(&str) -> S,
    /// Values outside `known` exported by the latest [`TxGaugeVec::set_all`]; the lock also
    /// serialises concurrent updates.
    extras: Mutex<BTreeSet<String>>,
}

impl<S> TxGaugeVec<S>
where
    S: Clone + Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    /// Registers the vector with every `known` value at 0.
    fn register(
        registry: &mut Registry,
        name: &str,
        help: &str,
        known: &'static [&'static str],
        label: fn(&str) -> S,
    ) -> Self {
        let family = register(registry, name, help, Family::<S, Gauge>::default());
        for value in known {
            touch(&family, &label(value));
        }
        TxGaugeVec {
            family,
            known,
            label,
            extras: Mutex::new(BTreeSet::new()),
        }
    }

    /// Replaces the exported values: every known value is set (0 unless `values` has it),
    /// unknown values in `values` are exported, and unknown values of the previous call that
    /// `values` lacks are removed.
    pub fn set_all(&self, values: &BTreeMap<&str, u64>) {
        let mut extras = self.extras.lock().unwrap_or_else(PoisonError::into_inner);
        for value in self.known {
            self.set(value, values.get(value).copied().unwrap_or(0));
        }
        let current: BTreeSet<String> = values
            .keys()
            .filter(|value| !self.known.contains(value))
            .map(|value| (*value).to_owned())
            .collect();
        for stale in extras.difference(&current) {
            self.family.remove(&(self.label)(stale));
        }
        for value in &current {
            self.set(value, values.get(value.as_str()).copied().unwrap_or(0));
        }
        *extras = current;
    }

    /// The exported value of `value`, if it is exported.
    pub fn get(&self, value: &str) -> Option<i64> {
        self.family
            .get(&(self.label)(value))
            .map(|gauge| gauge.get())
    }

    fn set(&self, value: &str, count: u64) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.family.get_or_create(&(self.label)(value)).set(count);
    }
}

fn state_label(state: &str) -> StateLabels {
    StateLabels {
        state: state.to_owned(),
    }
}

fn modified_label(modified: &str) -> ModifiedLabels {
    ModifiedLabels {
        modified: modified.to_owned(),
    }
}

/// Metadata sync metrics.
#[derive(Debug)]
pub struct FetcherMetrics {
    /// `thanos_blocks_meta_syncs_total`: sync attempts.
    pub syncs: Counter,
    /// `thanos_blocks_meta_sync_failures_total`.
    pub sync_failures: Counter,
    /// `thanos_blocks_meta_sync_duration_seconds`.
    pub sync_duration: Histogram,
    /// `thanos_blocks_meta_synced{state}`; set with [`FetcherMetrics::set_synced`].
    pub synced: TxGaugeVec<StateLabels>,
    /// `thanos_blocks_meta_modified{modified}`; set with [`FetcherMetrics::set_modified`].
    pub modified: TxGaugeVec<ModifiedLabels>,
    /// `thanos_blocks_meta_base_syncs_total`: bucket listings by the base fetcher.
    pub base_syncs: Counter,
    /// `thanos_blocks_meta_base_cache_busts_total`: cached metas found stale.
    pub base_cache_busts: Counter,
}

impl FetcherMetrics {
    /// Registers the metrics, with every known state and modification at 0.
    pub fn register(registry: &mut Registry) -> Self {
        FetcherMetrics {
            syncs: register(
                registry,
                "thanos_blocks_meta_syncs",
                "Total blocks metadata synchronization attempts",
                Counter::default(),
            ),
            sync_failures: register(
                registry,
                "thanos_blocks_meta_sync_failures",
                "Total blocks metadata synchronization failures",
                Counter::default(),
            ),
            sync_duration: register(
                registry,
                "thanos_blocks_meta_sync_duration_seconds",
                "Duration of the blocks metadata synchronization in seconds",
                Histogram::new(SYNC_BUCKETS_SECONDS),
            ),
            synced: TxGaugeVec::register(
                registry,
                "thanos_blocks_meta_synced",
                "Number of block metadata synced",
                &SYNCED_STATES,
                state_label,
            ),
            modified: TxGaugeVec::register(
                registry,
                "thanos_blocks_meta_modified",
                "Number of blocks whose metadata changed",
                &MODIFIED_KINDS,
                modified_label,
            ),
            base_syncs: register(
                registry,
                "thanos_blocks_meta_base_syncs",
                "Total blocks metadata synchronization attempts by base Fetcher",
                Counter::default(),
            ),
            base_cache_busts: register(
                registry,
                "thanos_blocks_meta_base_cache_busts",
                "Total blocks metadata cache busts by base Fetcher",
                Counter::default(),
            ),
        }
    }

    /// Publishes the block counts of one sync by state (e.g. [`STATE_LOADED`]). Every state
    /// of [`SYNCED_STATES`] is set, to 0 when `states` lacks it.
    pub fn set_synced(&self, states: &BTreeMap<&str, u64>) {
        self.synced.set_all(states);
    }

    /// Publishes the modification counts of one sync (e.g. [`MODIFIED_REPLICA_LABEL_REMOVED`]).
    pub fn set_modified(&self, modified: &BTreeMap<&str, u64>) {
        self.modified.set_all(modified);
    }
}

//! compactd's own metrics: leadership and the write-safety mechanisms (`compactd_*`), the
//! Thanos probe status gauge (`thanos_status`) and the build info (`compactd_build_info`,
//! `thanos_build_info`).
//!
//! The `compactd_*` metrics let operators see the safety protocol work: which replica leads
//! under which epoch, how close its lease is to lapsing, and how often the fence or the permit
//! deadline stopped a write (both should stay at 0 outside failovers).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{BuildLabels, ProbeCheck, StatusLabels, ThanosBuildLabels};
use super::{register, FloatGauge};

/// Buckets of `compactd_failover_duration_seconds`: failovers take from about one keepalive
/// interval to a full lease TTL plus the takeover delay, i.e. 1 s to a minute.
pub const FAILOVER_BUCKETS_SECONDS: [f64; 13] = [
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0,
];

/// The Thanos component compactd replaces; the `component` label of `thanos_status`.
const COMPONENT: &str = "compact";

/// Leadership and safety-protocol metrics.
#[derive(Debug)]
pub struct HaMetrics {
    /// `compactd_leader`: 1 while this replica holds leadership, else 0.
    pub leader: Gauge,
    /// `compactd_leader_epoch`: epoch (leader key create revision) of the term this replica
    /// last knew; 0 before any.
    pub leader_epoch: Gauge,
    /// `compactd_lease_remaining_seconds`: time left before this replica's local lease
    /// deadline; 0 when not leading.
    pub lease_remaining_seconds: FloatGauge,
    /// `compactd_leader_transitions_total`: times this replica gained or lost leadership.
    pub leader_transitions: Counter,
    /// `compactd_fence_conflicts_total`: fence CASes that found a newer epoch or lost a race.
    pub fence_conflicts: Counter,
    /// `compactd_permit_expired_writes_total`: mutations the driver refused because their
    /// permit had lapsed.
    pub permit_expired_writes: Counter,
    /// `compactd_failover_duration_seconds`: from losing a leader to the new leader's first
    /// permitted write, as seen by the new leader.
    pub failover_duration: Histogram,
    /// `compactd_owned_streams`: streams this replica holds (leads, fenced) now; 0 without
    /// per-stream ownership.
    pub owned_streams: Gauge,
    /// `compactd_stream_failover_duration_seconds`: from losing a stream's holder to the new
    /// holder's first permitted write, as seen by the new holder.
    pub stream_failover_duration: Histogram,
}

impl HaMetrics {
    /// Registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        HaMetrics {
            leader: register(
                registry,
                "compactd_leader",
                "1 if this replica is the elected leader, 0 otherwise.",
                Gauge::default(),
            ),
            leader_epoch: register(
                registry,
                "compactd_leader_epoch",
                "Epoch (etcd create revision of the leader key) of the latest leadership term this replica knows.",
                Gauge::default(),
            ),
            lease_remaining_seconds: register(
                registry,
                "compactd_lease_remaining_seconds",
                "Seconds left until this replica's local lease deadline; 0 when not leading.",
                FloatGauge::default(),
            ),
            leader_transitions: register(
                registry,
                "compactd_leader_transitions",
                "Total number of times this replica gained or lost leadership.",
                Counter::default(),
            ),
            fence_conflicts: register(
                registry,
                "compactd_fence_conflicts",
                "Total number of bucket fence updates that found a newer epoch or lost a race.",
                Counter::default(),
            ),
            permit_expired_writes: register(
                registry,
                "compactd_permit_expired_writes",
                "Total number of bucket mutations refused because their write permit had expired.",
                Counter::default(),
            ),
            failover_duration: register(
                registry,
                "compactd_failover_duration_seconds",
                "Time from the previous leader's loss to this leader's first permitted write.",
                Histogram::new(FAILOVER_BUCKETS_SECONDS),
            ),
            owned_streams: register(
                registry,
                "compactd_owned_streams",
                "Number of streams this replica holds (leads and has fenced) now.",
                Gauge::default(),
            ),
            stream_failover_duration: register(
                registry,
                "compactd_stream_failover_duration_seconds",
                "Time from a stream's previous holder's loss to this replica's first permitted write to it.",
                Histogram::new(FAILOVER_BUCKETS_SECONDS),
            ),
        }
    }
}

/// `thanos_status{check,component="compact"}`: 1 when the probe passes (`pkg/prober`).
#[derive(Debug)]
pub struct StatusMetrics {
    /// The gauges, one per [`ProbeCheck`].
    pub status: Family<StatusLabels, Gauge>,
}

impl StatusMetrics {
    /// Registers the metric with both checks at 0, as Thanos does.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = StatusMetrics {
            status: register(
                registry,
                "thanos_status",
                "Represents status (0 indicates failure, 1 indicates success) of the component.",
                Family::default(),
            ),
        };
        metrics.set(ProbeCheck::Ready, false);
        metrics.set(ProbeCheck::Healthy, false);
        metrics
    }

    /// Sets the gauge of `check` to 1 if `passing`, else 0.
    pub fn set(&self, check: ProbeCheck, passing: bool) {
        let labels = StatusLabels {
            check,
            component: COMPONENT,
        };
        self.status.get_or_create(&labels).set(i64::from(passing));
    }

    /// The gauge's value for `check`.
    pub fn get(&self, check: ProbeCheck) -> i64 {
        let labels = StatusLabels {
            check,
            component: COMPONENT,
        };
        self.status.get_or_create(&labels).get()
    }
}

/// Registers `compactd_build_info{version}` and, for dashboards of `thanos compact`,
/// `thanos_build_info` with the labels of Go's version collector
/// ([`ThanosBuildLabels::of_this_build`]), both at 1.
pub fn register_build_info(registry: &mut Registry, version: &'static str) {
    let family = register(
        registry,
        "compactd_build_info",
        "A metric with a constant '1' value labeled by the version of compactd.",
        Family::<BuildLabels, Gauge>::default(),
    );
    family.get_or_create(&BuildLabels { version }).set(1);
    let thanos = register(
        registry,
        "thanos_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which thanos was built, and the goos and goarch for the build.",
        Family::<ThanosBuildLabels, Gauge>::default(),
    );
    thanos
        .get_or_create(&ThanosBuildLabels::of_this_build())
        .set(1);
}

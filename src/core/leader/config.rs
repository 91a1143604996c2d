//! The leader's settings, which safety mechanisms are on, and the timing rules that follow
//! from them: how long after a renewal was sent the lease surely lives on our clock, how often
//! to renew it, and the start-up checks of the assumptions `docs/safety.md` rests on.

use serde::{Deserialize, Serialize};

use super::timers::RETRY_MIN_MS;
use crate::core::stream::StreamId;

/// Assumed bound of the rate difference between our clock and etcd's, in permille.
pub const MAX_DRIFT_PERMILLE: i64 = 50;
/// Subtracted from the lease deadline on top of the drift.
pub const SAFETY_MARGIN_MS: i64 = 500;

/// The settings of leadership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderConfig {
    /// `--node.name`: the holder name in etcd, the fence and block stamps.
    pub node: String,
    /// The election's name: `<--etcd.prefix>/election` with etcd, the fence's path with the
    /// bucket provider; `None` runs a single instance.
    pub election: Option<String>,
    /// Who elects the leader when [`LeaderConfig::election`] is set (`--election`).
    #[serde(default, skip_serializing_if = "Provider::is_etcd")]
    pub provider: Provider,
    /// This process's incarnation (random per start): written into the fence by the bucket
    /// provider, so that a write whose answer was lost is recognised as ours when read back.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// `--etcd.lease-ttl` in ms (also the single instance's fence freshness window).
    pub lease_ttl_ms: i64,
    /// `--objstore.op-timeout` in ms: the longest a bucket request may take.
    pub op_timeout_ms: i64,
    /// `--leader.takeover-delay` in ms.
    pub takeover_delay_ms: i64,
    /// How long after its fence CAS was sent a commit may still be sent. `run` sets it to the
    /// op timeout: every CAS answer that arrives in time can then be used (a shorter window
    /// would livelock when the store answers slower than the window).
    pub commit_window_ms: i64,
    /// The safety mechanisms in force; production runs with [`Safety::ALL`].
    pub safety: Safety,
    /// Set on a stream's seat: the leader of that stream, whose election is
    /// `<prefix>/streams/<stream>`, whose fence is the stream's own, and which campaigns with
    /// the node's session lease (the bucket leader's) rather than a lease of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamId>,
    /// Set when every replica compacts (`--ownership=stream`, elected, `--wait`): the node
    /// holds the streams assigned to it as well as the bucket's election.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<StreamsConfig>,
}

/// Who elects the leader (`--election`): the same leader state machine, permit, fence,
/// commit gate and takeover delay behind either (`docs/safety.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// etcd's election recipe: a lease, the lowest key leads.
    #[default]
    Etcd,
    /// The bucket itself: the fence object is the lease, renewed and taken over with
    /// conditional writes (`bucket_lease.rs`).
    Bucket,
}

impl Provider {
    fn is_etcd(&self) -> bool {
        *self == Provider::Etcd
    }
}

/// The settings of per-stream ownership (`docs/scaleout.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamsConfig {
    /// `<--etcd.prefix>`: members are the keys of `<prefix>/election/`, a stream's seats the
    /// keys of `<prefix>/streams/<stream>/`.
    pub prefix: String,
    /// How often the members are read from etcd, in ms: a replica that left is noticed
    /// within this after its lease expired.
    pub observe_interval_ms: i64,
    /// How often the bucket is listed for its streams, in ms.
    pub discover_interval_ms: i64,
    /// `--streams.rebalance-delay` in ms: an assignment that moves streams between live
    /// replicas (one joined) is adopted once it has held this long; the streams of a replica
    /// that left are reassigned at once.
    pub rebalance_delay_ms: i64,
}

/// Which of the leader's safety mechanisms are on. Production always runs with
/// [`Safety::ALL`]; the simulation (`compactd-sim --bug`) switches one off to show that its
/// checker catches the violation that follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safety {
    /// Stop writing at the local lease deadline (layer 2 of `docs/safety.md`).
    pub lease_deadline: bool,
    /// Fence the bucket before writing and before every commit (layer 3).
    pub fence: bool,
    /// Stop renewing a lease once no renewal sent within the last TTL was acknowledged, and
    /// revoke it before campaigning anew (liveness: etcd then expires our election key,
    /// `docs/safety.md`, "Failover"). Off, a node that can reach etcd but not hear it keeps
    /// its key alive and nobody else can be elected. It rests on the lease deadline (the
    /// node stopped writing before it gives the lease up), so it acts only with
    /// [`Safety::lease_deadline`] on: without it the node writes until told otherwise.
    #[serde(default = "on")]
    pub abandon_unheard_lease: bool,
    /// A stream's seat fences its stream (`compactd/fence/<stream>.json`) before writing and
    /// before every commit, as the bucket leader fences the bucket.
    #[serde(default = "on")]
    pub stream_fence: bool,
    /// A stream's new holder waits out the takeover delay before its first commit.
    #[serde(default = "on")]
    pub stream_takeover_delay: bool,
    /// A seat stops writing before it hands its stream over (withdraws its key).
    #[serde(default = "on")]
    pub stream_release: bool,
    /// An operator request for a stream goes to the stream's seat, or is refused when the
    /// node holds no seat for it (never to another unit).
    #[serde(default = "on")]
    pub admin_stream_routing: bool,
    /// The bucket provider: a candidate takes over only after it saw one version of the
    /// fence unchanged for `TTL·(1 + drift) + margin` on its own clock.
    #[serde(default = "on")]
    pub observe_wait: bool,
}

fn on() -> bool {
    true
}

impl Safety {
    /// Every mechanism on.
    pub const ALL: Safety = Safety {
        lease_deadline: true,
        fence: true,
        abandon_unheard_lease: true,
        stream_fence: true,
        stream_takeover_delay: true,
        stream_release: true,
        admin_stream_routing: true,
        observe_wait: true,
    };
}

impl LeaderConfig {
    /// Checks the timing assumptions `docs/safety.md` rests on; the error says which fails.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_ttl_ms < 2_000 {
            return Err("--etcd.lease-ttl must be at least 2s".into());
        }
        if self.op_timeout_ms <= 0 {
            return Err("--objstore.op-timeout must be positive".into());
        }
        if self.election.is_none() {
            return Ok(());
        }
        let budget = deadline_span(self.lease_ttl_ms) - self.op_timeout_ms;
        if self.provider == Provider::Bucket {
            let renewal = bucket_renewal_interval(self.lease_ttl_ms);
            if budget < renewal + RETRY_MIN_MS {
                return Err(format!(
                    "--objstore.op-timeout {}ms is too long for --etcd.lease-ttl {}ms with \
                     --election=bucket: a write may only start while it can end {}ms before \
                     the lease can expire, which leaves {}ms after a renewal; renewals come \
                     every {}ms and need {}ms more for their round trip \
                     (lower the op timeout or raise the TTL)",
                    self.op_timeout_ms,
                    self.lease_ttl_ms,
                    self.op_timeout_ms,
                    budget,
                    renewal,
                    RETRY_MIN_MS,
                ));
            }
        } else if budget < 2 * keepalive_interval(self.lease_ttl_ms) {
            return Err(format!(
                "--objstore.op-timeout {}ms is too long for --etcd.lease-ttl {}ms: a write may \
                 only start while it can end {}ms before the lease can expire, which leaves {}ms \
                 after a renewal; renewals come every {}ms and need room for two \
                 (lower the op timeout or raise the TTL)",
                self.op_timeout_ms,
                self.lease_ttl_ms,
                self.op_timeout_ms,
                budget,
                keepalive_interval(self.lease_ttl_ms),
            ));
        }
        let needed = self.op_timeout_ms + self.commit_window_ms;
        if self.takeover_delay_ms < needed {
            return Err(format!(
                "--leader.takeover-delay {}ms must be at least twice --objstore.op-timeout \
                 ({}ms): a commit may be sent up to one op timeout after its fence CAS and take \
                 another to land, and must have landed or died before the new leader's first \
                 commit",
                self.takeover_delay_ms, needed
            ));
        }
        Ok(())
    }

    /// True when a lease no renewal of which was heard for a TTL is given up (see
    /// [`Safety::abandon_unheard_lease`]); etcd's only: the bucket provider sends no
    /// keepalives.
    pub(super) fn abandons_unheard_lease(&self) -> bool {
        self.safety.abandon_unheard_lease && self.safety.lease_deadline && !self.on_bucket()
    }

    /// True when the bucket elects the leader.
    pub(super) fn on_bucket(&self) -> bool {
        self.election.is_some() && self.provider == Provider::Bucket
    }
}

/// How long after a renewal was sent the lease surely lives, on a clock that may drift.
pub(super) fn deadline_span(ttl_ms: i64) -> i64 {
    ttl_ms * (1000 - MAX_DRIFT_PERMILLE) / 1000 - SAFETY_MARGIN_MS
}

/// How often the bucket provider renews its lease (the fence) and a follower reads it: three
/// times a TTL.
pub fn bucket_renewal_interval(ttl_ms: i64) -> i64 {
    ttl_ms / 3
}

/// How often the lease is renewed: five keepalives a TTL.
pub(super) fn keepalive_interval(ttl_ms: i64) -> i64 {
    ttl_ms / 5
}

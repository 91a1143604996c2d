//! Liveness of failover, judged during the fault phase: when a fault takes out the bucket's
//! leader, some node must lead again within the bound of `docs/safety.md` ("Failover"); in
//! stream worlds, when it takes out nodes that lead streams, some node must lead each of
//! those streams again within the bound plus one read of the members (a replica notices that
//! another left only when it next reads them). The bounds are worked out here from the
//! settings, never taken from the core they judge.

use std::collections::BTreeMap;

use compactd::core::leader::{LeaderConfig, Provider};

use crate::checker::Invariant;
use crate::shared::World;

/// The clock-rate difference `docs/safety.md` assumes between a node and etcd (or between
/// two nodes), permille.
const DRIFT_PERMILLE: i64 = 50;
/// The safety margin `docs/safety.md` adds to a candidate's wait under the bucket provider.
const MARGIN_MS: i64 = 500;
/// Slack of the failover bound: a retry backoff of a follower's etcd requests and the
/// round trips of observing, fencing and the first commit's CAS.
const FAILOVER_SLACK_MS: i64 = 5_000;

/// The failover bounds of a world, in ms.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Of the bucket's leader.
    pub leader_ms: i64,
    /// Of each stream (stream worlds).
    pub stream_ms: Option<i64>,
}

impl Bounds {
    /// The bounds for nodes configured as `leader` says.
    ///
    /// The leader's, with etcd: from the moment a leader stops hearing etcd (in either
    /// direction), is killed or paused, until another node leads: two lease TTLs at the
    /// largest clock-rate difference (the old leader renews for at most one TTL after its
    /// last acknowledged renewal; etcd expires the lease one TTL after the last renewal it
    /// received), the takeover delay, one op timeout and slack. Under the bucket provider
    /// see [`bucket_leader_ms`]. A stream's: the same, plus the interval at which replicas
    /// read the members (the stream's new holder adopts it once it has seen the old one's
    /// member key gone).
    pub fn of(leader: &LeaderConfig) -> Bounds {
        let leader_ms = match leader.provider {
            Provider::Etcd => {
                2 * leader.lease_ttl_ms * (1000 + DRIFT_PERMILLE) / 1000
                    + leader.takeover_delay_ms
                    + leader.op_timeout_ms
                    + FAILOVER_SLACK_MS
            }
            Provider::Bucket => bucket_leader_ms(leader),
        };
        let stream_ms = leader
            .streams
            .as_ref()
            .map(|s| leader_ms + s.observe_interval_ms);
        Bounds {
            leader_ms,
            stream_ms,
        }
    }
}

/// The leader's failover bound under the bucket provider, from the moment a leader stops
/// hearing the store (in either direction), is killed or paused: its last fence write lands
/// within one TTL (it is sent under a permit that ends an op timeout before
/// `TTL × (1 − drift) − margin` after the last write it heard land, on a clock at most 5%
/// slow); a candidate reads that version within a third of a TTL, waits
/// `TTL × (1 + drift) + margin` of it unchanged, takes the fence over within an op timeout
/// and waits the takeover delay; the candidate's waits stretched by the clock-rate
/// difference; slack.
fn bucket_leader_ms(leader: &LeaderConfig) -> i64 {
    let ttl = leader.lease_ttl_ms;
    let observe_wait = ttl * (1000 + DRIFT_PERMILLE) / 1000 + MARGIN_MS;
    let waits = ttl / 3 + observe_wait + leader.takeover_delay_ms;
    ttl + waits * (1000 + DRIFT_PERMILLE) / 1000 + leader.op_timeout_ms + FAILOVER_SLACK_MS
}

/// Checks both bounds at `now`; `running` says whether a node's process runs.
pub fn check(world: &World, now: i64, bounds: Bounds, running: impl FnMut(&str) -> bool) {
    check_leader(world, now, bounds.leader_ms);
    if let Some(bound_ms) = bounds.stream_ms {
        check_streams(world, now, bound_ms, running);
    }
}

/// A leader taken out while another node could take over must be replaced (or back in its
/// term) within the bound; reported once per failover.
fn check_leader(world: &World, now: i64, bound_ms: i64) {
    let mut w = world.borrow_mut();
    let Some(lost) = w.stats.leader_lost.as_mut() else {
        return;
    };
    if !lost.judged || now - lost.at_ms <= bound_ms {
        return;
    }
    lost.judged = false;
    let text = format!(
        "no node leads {:.1}s after the leader {} (epoch {}) was taken out at {} (bound {:.1}s)",
        (now - lost.at_ms) as f64 / 1000.0,
        lost.node,
        lost.epoch,
        crate::log::format_ms(lost.at_ms),
        bound_ms as f64 / 1000.0,
    );
    w.checker.violate(Invariant::Liveness, now, text);
}

/// Streams shown in a violation.
const STREAMS_SHOWN_MAX: usize = 5;

/// Once the bound has passed since a fault took streams out: those whose old holder leads
/// them again under the same epoch, running and unpaused, kept their term (no failover
/// happened); any other not led again is a violation when the failover was judged. The
/// timing ends then; later takeovers are not counted.
fn check_streams(world: &World, now: i64, bound_ms: i64, mut running: impl FnMut(&str) -> bool) {
    let mut w = world.borrow_mut();
    let w = &mut *w;
    let Some(lost) = w.stats.streams_lost.as_mut() else {
        return;
    };
    if now - lost.at_ms <= bound_ms {
        return;
    }
    let nodes = &w.nodes;
    let overdue = lost.overdue(|holder, stream, epoch| {
        let n = &nodes[holder];
        n.exited.is_none()
            && n.paused_until_ms <= now
            && running(holder)
            && n.streams_led.get(&stream) == Some(&epoch)
    });
    if let Some(what) = overdue {
        let text = format!(
            "{what} {:.1}s after their holders were taken out at {} (bound {:.1}s)",
            (now - lost.at_ms) as f64 / 1000.0,
            crate::log::format_ms(lost.at_ms),
            bound_ms as f64 / 1000.0,
        );
        w.checker.violate(Invariant::Liveness, now, text);
    }
    w.stats.streams_lost = None;
}

/// The streams a fault took out with the nodes that led them (stream worlds): the per-stream
/// failovers being timed, until a node leads each again.
#[derive(Clone, Debug)]
pub struct LostStreams {
    /// When (world ms).
    pub at_ms: i64,
    /// The streams not led again yet, and the epoch each was led under.
    pub left: BTreeMap<u64, u64>,
    /// Who led them, by stream.
    pub holders: BTreeMap<u64, String>,
    /// As [`crate::shared::LostLeader::judged`].
    pub judged: bool,
}

impl LostStreams {
    /// A node leads `stream` under `epoch`: its failover ends if it was lost under an epoch
    /// no newer (the old holder back in its term, or a new holder); returns how long it took.
    pub fn led(&mut self, stream: u64, epoch: u64, now: i64) -> Option<i64> {
        if self.left.get(&stream).is_none_or(|lost| epoch < *lost) {
            return None;
        }
        self.left.remove(&stream);
        Some(now - self.at_ms)
    }

    /// Once the bound has passed: forgets the streams that `kept(holder, stream, epoch)` says
    /// their old holder leads again under the same epoch (it kept its term: no failover
    /// happened), and describes the rest, not led again, if the failover is judged.
    pub fn overdue(&mut self, mut kept: impl FnMut(&str, u64, u64) -> bool) -> Option<String> {
        let holders = &self.holders;
        self.left
            .retain(|stream, epoch| !kept(&holders[stream], *stream, *epoch));
        if !self.judged || self.left.is_empty() {
            return None;
        }
        let shown: Vec<String> = self
            .left
            .keys()
            .take(STREAMS_SHOWN_MAX)
            .map(|s| format!("{s:016x} (was {}'s)", self.holders[s]))
            .collect();
        Some(format!(
            "{} streams not led: {}",
            self.left.len(),
            shown.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> LostStreams {
        LostStreams {
            at_ms: 1_000,
            left: [(1, 10), (2, 11), (3, 12)].into(),
            holders: [(1, "a".into()), (2, "a".into()), (3, "b".into())].into(),
            judged: true,
        }
    }

    #[test]
    fn the_bounds_follow_the_provider() {
        let mut cfg = crate::setup::leader_config(
            "a",
            crate::election::Coordinator::Etcd,
            None,
            crate::scenario::Ownership::Bucket,
        );
        assert_eq!(Bounds::of(&cfg).leader_ms, 51_500, "docs/safety.md");
        cfg.provider = Provider::Bucket;
        // 15 s (the last write lands) + (5 s read + 16.25 s wait + 10 s delay) x 1.05
        // + 5 s op timeout + 5 s slack.
        assert_eq!(Bounds::of(&cfg).leader_ms, 57_812);
    }

    #[test]
    fn a_stream_led_again_under_its_epoch_or_a_newer_one_ends_its_failover() {
        let mut l = lost();
        assert_eq!(
            l.led(1, 10, 5_000),
            Some(4_000),
            "the old holder back in its term"
        );
        assert_eq!(l.led(2, 9, 5_000), None, "an older epoch does not count");
        assert_eq!(l.led(2, 20, 6_000), Some(5_000));
        assert_eq!(l.led(2, 20, 7_000), None, "counted once");
        assert_eq!(l.left.keys().copied().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn streams_neither_taken_over_nor_kept_are_overdue_when_judged() {
        let mut l = lost();
        l.led(1, 30, 2_000);
        let what = l.overdue(|_, _, _| false).expect("overdue");
        assert!(what.starts_with("2 streams not led"), "{what}");
        assert!(what.contains("(was b's)"), "{what}");
        let mut kept = lost();
        assert_eq!(
            kept.overdue(|_, _, _| true),
            None,
            "every holder kept its term"
        );
        let mut unjudged = lost();
        unjudged.judged = false;
        assert_eq!(unjudged.overdue(|_, _, _| false), None);
    }
}

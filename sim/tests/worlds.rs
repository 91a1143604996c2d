//! The simulation's own guarantees: the same seed gives the same event log, every scenario
//! runs clean on the real protocol, and every `--bug` mutation is caught (a checker that
//! cannot fail proves nothing). The CI script runs the large seed counts through the CLI.

use compactd_sim::bug::Bug;
use compactd_sim::scenario::Scenario;
use compactd_sim::world::run_world;

#[test]
fn same_seed_same_event_log() {
    for (seed, scenario) in [
        (3, Scenario::Chaos),
        (5, Scenario::SingleCrash),
        (7, Scenario::LeaseRevoked),
        (11, Scenario::ClockSkew),
    ] {
        let a = run_world(seed, scenario, None, false);
        let b = run_world(seed, scenario, None, false);
        assert_eq!(
            (a.hash, a.events, a.sim_ms),
            (b.hash, b.events, b.sim_ms),
            "seed {seed} {}",
            scenario.name()
        );
        assert!(
            a.events > 100,
            "the world did something: {} events",
            a.events
        );
        let other = run_world(seed + 1, scenario, None, false);
        assert_ne!(a.hash, other.hash, "seed {seed} vs {}", seed + 1);
    }
}

#[test]
fn kept_timeline_hashes_like_the_summary_run() {
    let quiet = run_world(9, Scenario::Pause, None, false);
    let verbose = run_world(9, Scenario::Pause, None, true);
    assert_eq!(quiet.hash, verbose.hash);
    assert_eq!(verbose.log.len() as u64, verbose.events);
    assert!(verbose.log.iter().any(|l| l.contains("Leading")));
}

#[test]
fn every_scenario_runs_clean() {
    for (i, scenario) in Scenario::ALL.into_iter().enumerate() {
        let o = run_world(100 + i as u64, scenario, None, false);
        assert!(
            o.violations.is_empty(),
            "{} seed {}: {:?}",
            scenario.name(),
            o.seed,
            o.violations
        );
        assert!(
            o.stats.compactions > 0,
            "{}: nothing compacted",
            scenario.name()
        );
    }
}

#[test]
fn every_bug_is_caught() {
    // Each mutation with the scenario that exposes it fastest, over a few seeds (a unheard
    // lease kept alive shows only under a one-way etcd cut longer than the failover bound).
    // A stale leader's write lands in only about 5% of etcd-partition and clock-skew worlds
    // (measured over 400 seeds, with and without the background clean-up), so those two get
    // 16 seeds: the first caught are seeds 11 and 14. Since every world hands its nodes
    // operator requests (which shifts the draws), no-takeover-delay is first caught at seed 12
    // of lease-revoked: it gets 16 too.
    for (bug, scenario, seeds) in [
        (Bug::NoDeadline, Scenario::EtcdPartition, 16),
        (Bug::NoFence, Scenario::DoubleSingle, 8),
        (Bug::NoTakeoverDelay, Scenario::LeaseRevoked, 16),
        (Bug::NoPermitCheck, Scenario::ClockSkew, 16),
        (Bug::KeepRenewing, Scenario::OnewayPartition, 40),
    ] {
        let caught = (1..=seeds).find(|seed| {
            !run_world(*seed, scenario, Some(bug), false)
                .violations
                .is_empty()
        });
        assert!(
            caught.is_some(),
            "--bug {bug} not caught in {seeds} {} worlds",
            scenario.name()
        );
    }
}

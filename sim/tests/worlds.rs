//! The simulation's own guarantees: the same seed gives the same event log, every scenario
//! runs clean on the real protocol, and every `--bug` mutation is caught (a checker that
//! cannot fail proves nothing). The CI script runs the large seed counts through the CLI.

use compactd::core::leader::Provider;
use compactd_sim::bug::Bug;
use compactd_sim::checker::Invariant;
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
        let a = run_world(seed, scenario, Provider::Etcd, None, false);
        let b = run_world(seed, scenario, Provider::Etcd, None, false);
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
        let other = run_world(seed + 1, scenario, Provider::Etcd, None, false);
        assert_ne!(a.hash, other.hash, "seed {seed} vs {}", seed + 1);
    }
}

#[test]
fn kept_timeline_hashes_like_the_summary_run() {
    let quiet = run_world(9, Scenario::Pause, Provider::Etcd, None, false);
    let verbose = run_world(9, Scenario::Pause, Provider::Etcd, None, true);
    assert_eq!(quiet.hash, verbose.hash);
    assert_eq!(verbose.log.len() as u64, verbose.events);
    assert!(verbose.log.iter().any(|l| l.contains("Leading")));
}

/// One world of every scenario under `provider`, seeds from `first_seed` on: no violation,
/// and something compacted.
fn every_scenario_runs_clean_with(provider: Provider, first_seed: u64) {
    for (i, scenario) in Scenario::ALL.into_iter().enumerate() {
        let o = run_world(first_seed + i as u64, scenario, provider, None, false);
        assert!(
            o.violations.is_empty(),
            "{} seed {} ({provider:?}): {:?}",
            scenario.name(),
            o.seed,
            o.violations
        );
        assert!(
            o.stats.compactions > 0,
            "{} ({provider:?}): nothing compacted",
            scenario.name()
        );
    }
}

/// Each `(bug, scenario, seeds)`: the mutation is caught in one of the first `seeds` worlds
/// of its scenario under `provider`.
fn caught_within(provider: Provider, cases: &[(Bug, Scenario, u64)]) {
    for &(bug, scenario, seeds) in cases {
        let caught = (1..=seeds).find(|seed| {
            !run_world(*seed, scenario, provider, Some(bug), false)
                .violations
                .is_empty()
        });
        assert!(
            caught.is_some(),
            "--bug {bug} ({provider:?}) not caught in {seeds} {} worlds",
            scenario.name()
        );
    }
}

#[test]
fn every_scenario_runs_clean() {
    every_scenario_runs_clean_with(Provider::Etcd, 100);
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
    caught_within(
        Provider::Etcd,
        &[
            (Bug::NoDeadline, Scenario::EtcdPartition, 16),
            (Bug::NoFence, Scenario::DoubleSingle, 8),
            (Bug::NoTakeoverDelay, Scenario::LeaseRevoked, 16),
            (Bug::NoPermitCheck, Scenario::ClockSkew, 16),
            (Bug::KeepRenewing, Scenario::OnewayPartition, 40),
        ],
    );
}

#[test]
fn bucket_worlds_are_deterministic_and_talk_to_no_etcd() {
    for (seed, scenario) in [(3, Scenario::Chaos), (7, Scenario::LeaseRevoked)] {
        let a = run_world(seed, scenario, Provider::Bucket, None, true);
        let b = run_world(seed, scenario, Provider::Bucket, None, false);
        assert_eq!((a.hash, a.events), (b.hash, b.events), "seed {seed}");
        let etcd = run_world(seed, scenario, Provider::Etcd, None, false);
        assert_ne!(a.hash, etcd.hash, "another election, another world");
        assert!(a.log.iter().any(|l| l.contains("Leading")));
        let coord: Vec<&String> = a.log.iter().filter(|l| l.contains(" coord#")).collect();
        assert!(coord.is_empty(), "etcd requests: {coord:?}");
        let who = |l: &String| l.split_whitespace().nth(1).map(str::to_string);
        assert!(
            !a.log.iter().any(|l| who(l).as_deref() == Some("etcd")),
            "no etcd host"
        );
    }
}

#[test]
fn every_scenario_runs_clean_on_the_bucket() {
    every_scenario_runs_clean_with(Provider::Bucket, 200);
}

#[test]
fn every_bucket_bug_is_caught() {
    // As in `every_bug_is_caught`, with the scenario that shows each fastest under the
    // bucket provider (docs/simulation.md): a leader cut from the store writes on past its
    // deadline once the cut heals; a fence released by hand while a commit is held; a paused
    // leader waking with unsent mutations; without the fence nobody ever leads.
    caught_within(
        Provider::Bucket,
        &[
            (Bug::NoDeadline, Scenario::StorePartition, 8),
            (Bug::NoFence, Scenario::Calm, 2),
            (Bug::NoTakeoverDelay, Scenario::LeaseRevoked, 24),
            (Bug::NoPermitCheck, Scenario::Pause, 20),
        ],
    );
}

#[test]
fn taking_the_fence_without_the_observe_wait_breaks_single_writer() {
    // The candidates also keep taking the fence from each other, so nobody gets through the
    // takeover delay (liveness) — but when the others are down long enough for one node to
    // lead, a restarted one takes over at its first read while the leader's upload is under
    // way: an older epoch writes after the newer one's fence CAS.
    let o = run_world(
        1,
        Scenario::CrashAny,
        Provider::Bucket,
        Some(Bug::NoObserveWait),
        false,
    );
    assert!(
        o.counts.contains_key(&Invariant::SingleWriter),
        "{:?}",
        o.violations
    );
    assert!(o.counts.contains_key(&Invariant::Liveness));
}

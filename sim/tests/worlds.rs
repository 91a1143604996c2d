//! The simulation finds no violation over many seeds with crashes and failures, and the same
//! seed gives the same hash of the core's outputs.

use compactd_sim::world::{run_seed, Faults};

#[test]
fn worlds_with_crashes_and_failures_converge() {
    let faults = Faults {
        fail: 0.05,
        crash: 0.03,
    };
    let (mut crashes, mut failures) = (0, 0);
    for seed in 1..=200 {
        let o = run_seed(seed, faults);
        assert!(o.violations.is_empty(), "seed {seed}: {:?}", o.violations);
        crashes += o.crashes;
        failures += o.failures;
    }
    assert!(
        crashes > 100 && failures > 100,
        "faults were injected: {crashes} crashes, {failures} failures"
    );
}

#[test]
fn same_seed_same_hash() {
    let faults = Faults {
        fail: 0.05,
        crash: 0.03,
    };
    for seed in [3, 17, 99] {
        assert_eq!(
            run_seed(seed, faults).hash,
            run_seed(seed, faults).hash,
            "seed {seed}"
        );
    }
    assert_ne!(run_seed(3, faults).hash, run_seed(4, faults).hash);
}

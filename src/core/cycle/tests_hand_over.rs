//! A cycle handing its stream over: the jobs running finish (their whole run of mutations),
//! none starts, a clean-up under way finishes, and then it may stop.

use std::collections::VecDeque;

use super::testing::{now, run_with, twelve_2h_blocks, Model, PERMIT};
use super::*;
use crate::core::testing::cycle_config;
use crate::units::MINUTE_MS;

#[test]
fn a_cycle_handing_over_finishes_its_running_job_and_starts_none() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    let mut cycle = Cycle::new(cycle_config(true), 3);
    let (mut jobs, mut before_commit) = (0, None);
    run_with(&mut cycle, &mut model, now(48), |cycle, _| {
        jobs += 1;
        // A replica joined: the stream goes elsewhere while its first job runs.
        cycle.hand_over(true);
        before_commit.get_or_insert(cycle.may_hand_over());
        None
    });
    assert_eq!(jobs, 1, "no job starts once handing over");
    assert_eq!(before_commit, Some(false), "not while a job runs");
    assert!(cycle.may_hand_over(), "free once the job committed");
    let marked = model.blocks.values().filter(|b| b.deletion_mark.is_some());
    assert_eq!(
        marked.count(),
        4,
        "the job's run ended with its sources' marks"
    );
    cycle.hand_over(false);
    assert!(!cycle.may_hand_over(), "kept: the pass goes on");
}

#[test]
fn a_clean_up_under_way_when_the_hand_over_begins_runs_to_its_end() {
    let mut cfg = cycle_config(true);
    cfg.cleanup_interval_ms = MINUTE_MS;
    cfg.view.delete_delay_ms = 30_000;
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    let mut cycle = Cycle::new(cfg, 3);
    let (_, outputs) = run_with(&mut cycle, &mut model, now(48), |_, _| None);
    // The iteration is over; the cycle waits for the next clean-up, due before the next
    // iteration.
    let Some(Output::Timer(due)) = outputs.iter().rev().find(|o| matches!(o, Output::Timer(_)))
    else {
        panic!("the waiting cycle asks for a timer: {outputs:?}");
    };
    let at = |ms: i64| Now {
        mono: due.plus(ms),
        wall: now(48).wall.plus(due.0 - now(48).mono.0 + ms),
    };
    let mut inputs = VecDeque::from([Input::Tick]);
    let mut sent = 0;
    for ms in 0..1_000 {
        let Some(input) = inputs.pop_front() else {
            break;
        };
        let mut out = Vec::new();
        cycle.step(at(ms), input, Some(PERMIT), &mut out);
        for o in &out {
            if let Output::Store(r) = o {
                sent += 1;
                inputs.push_back(Input::Store(r.id(), model.apply(r, at(ms))));
            }
        }
        if ms == 0 {
            assert_eq!(sent, 1, "the clean-up's sync: {out:?}");
            cycle.hand_over(true);
            assert!(!cycle.may_hand_over(), "not while the clean-up runs");
        }
    }
    assert!(cycle.may_hand_over(), "the clean-up ended");
    let marked = model.blocks.values().filter(|b| b.deletion_mark.is_some());
    assert_eq!(marked.count(), 0, "it deleted the marked blocks");
    assert!(sent > 1, "its deletes were sent");
}

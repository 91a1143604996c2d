//! A cycle handing its stream over: the jobs running finish (their whole run of mutations),
//! none starts, and then it may stop.

use std::collections::VecDeque;

use super::testing::{now, twelve_2h_blocks, Model, PERMIT};
use super::*;
use crate::core::testing::cycle_config;

#[test]
fn a_cycle_handing_over_finishes_its_running_job_and_starts_none() {
    let mut model = Model::default();
    twelve_2h_blocks(&mut model, "eu-1", 100);
    twelve_2h_blocks(&mut model, "us-1", 200);
    let mut cycle = Cycle::new(cycle_config(true), 3);
    let start = now(48);
    let mut inputs = VecDeque::from([Input::Start]);
    let (mut jobs, mut before_commit) = (0, None);
    for step in 1..1_000 {
        let Some(input) = inputs.pop_front() else {
            break;
        };
        let at = Now {
            mono: start.mono.plus(step * 1000),
            wall: start.wall.plus(step * 1000),
        };
        let mut out = Vec::new();
        cycle.step(at, input, Some(PERMIT), &mut out);
        for o in &out {
            match o {
                Output::Store(r) => inputs.push_back(Input::Store(r.id(), model.apply(r, at))),
                Output::Compact(job) => {
                    jobs += 1;
                    // A replica joined: the stream goes elsewhere while its first job runs.
                    cycle.hand_over(true);
                    before_commit.get_or_insert(cycle.may_hand_over());
                    let result = model.compact(job);
                    inputs.push_back(Input::Compacted(job.job, Box::new(result)));
                }
                _ => {}
            }
        }
    }
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

use super::*;

fn series(ts: &[i64], v: f64) -> Vec<(i64, f64)> {
    ts.iter().map(|&t| (t, v)).collect()
}

fn merged(func: DedupFunc, runs: &[Vec<(i64, f64)>]) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    merge_runs(func, runs, &mut out);
    out
}

#[test]
fn chain_keeps_each_timestamp_once_first_run_wins() {
    let out = merged(
        DedupFunc::Chain,
        &[series(&[0, 10, 20], 1.0), series(&[10, 15, 30], 2.0)],
    );
    assert_eq!(
        out,
        vec![(0, 1.0), (10, 1.0), (15, 2.0), (20, 1.0), (30, 2.0)]
    );
}

// Two replicas scraping every 10 s, the second 2 s later: penalty keeps the first replica's
// samples only, where chain would interleave both at twice the rate.
#[test]
fn penalty_keeps_one_replica_while_it_has_data() {
    let a: Vec<i64> = (0..10).map(|i| i * 10_000).collect();
    let b: Vec<i64> = (0..10).map(|i| i * 10_000 + 2_000).collect();
    let out = merged(DedupFunc::Penalty, &[series(&a, 1.0), series(&b, 2.0)]);
    assert_eq!(out, series(&a, 1.0));
    assert_eq!(
        merged(DedupFunc::Chain, &[series(&a, 1.0), series(&b, 2.0)]).len(),
        20
    );
}

// Replica a stops for 70 s: b fills the gap from its first sample past a's last sample
// plus the penalty, and keeps the stream while a's samples fall inside b's penalty window.
#[test]
fn penalty_switches_on_a_gap_and_stays_on_the_other_replica() {
    let a: Vec<i64> = [0, 10, 20, 90, 100, 110, 120]
        .iter()
        .map(|s| s * 1000)
        .collect();
    let b: Vec<i64> = (0..13).map(|i| i * 10_000 + 2_000).collect();
    let out = merged(DedupFunc::Penalty, &[series(&a, 1.0), series(&b, 2.0)]);
    // a at 0, 10, 20 s; each pick pushes b's next seek 2x the last step ahead, so b's 22 and
    // 32 s samples are skipped (b sought to 40.001 s) and b's 42 s sample beats a's 90 s.
    // From then on a is sought 2x(step) past lastT and always lands after b's next sample.
    let mut want = series(&[0, 10_000, 20_000], 1.0);
    want.extend(series(
        &(4..13).map(|i| i * 10_000 + 2_000).collect::<Vec<_>>(),
        2.0,
    ));
    assert_eq!(out, want);
}

#[test]
fn penalty_first_pick_penalises_the_other_by_five_seconds() {
    // b's 3 s sample is within the initial 5 s penalty after a's 0 s sample, its 6 s one
    // is not — but a's 4 s sample comes first and moves lastT on.
    let out = merged(
        DedupFunc::Penalty,
        &[
            series(&[0, 4_000, 20_000], 1.0),
            series(&[3_000, 6_000], 2.0),
        ],
    );
    // lastT=0: a at 0 taken, penB=5000. Next: a seeks to 1 -> 4000; b seeks to 5001 ->
    // 6000. a (4000) taken, penB = 2*(4000-0) = 8000. Next: a -> 20000; b seeks 12001 ->
    // exhausted. a's 20000 taken.
    assert_eq!(out, vec![(0, 1.0), (4_000, 1.0), (20_000, 1.0)]);
}

#[test]
fn penalty_folds_more_than_two_runs_in_order() {
    let a = series(&[0, 10_000], 1.0);
    let b = series(&[1_000, 11_000, 21_000], 2.0);
    let c = series(&[40_000], 3.0);
    // a then b: b is always sought past a's samples plus the penalty, and once a ends
    // b's 21 s sample is inside the 20 s penalty after a's last (10 s): dropped, as in
    // Thanos. c then continues after the penalty.
    let out = merged(DedupFunc::Penalty, &[a, b, c]);
    assert_eq!(out, vec![(0, 1.0), (10_000, 1.0), (40_000, 3.0)]);
}

#[test]
fn parse_accepts_thanos_values_only() {
    assert_eq!(DedupFunc::parse(""), Ok(DedupFunc::Chain));
    assert_eq!(DedupFunc::parse("penalty"), Ok(DedupFunc::Penalty));
    assert!(DedupFunc::parse("chain").unwrap_err().contains("penalty"));
}

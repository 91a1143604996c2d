//! How the samples of overlapping chunks become one stream (`--deduplication.func`).
//!
//! - [`DedupFunc::Chain`] (the default, Prometheus' compacting merger): every timestamp once;
//!   of samples sharing a timestamp the one from the earliest input wins.
//! - [`DedupFunc::Penalty`] (Thanos' `penalty`): the chunks of a run are folded pairwise, the
//!   first chunk (by min time, then max time) first. Of two streams the one with the earlier
//!   next sample is taken; the other is then skipped ahead by twice the gap since the last taken
//!   sample (5 s before any sample was taken), so a replica is kept while it has data and the
//!   other fills its gaps without doubling the sample rate. Counter values are not adjusted at
//!   a switch, as Thanos does not when compacting.
//!
//! Both work on any sample value (floats, native histograms), as decoded `(t, value)` pairs.

/// Penalty before the first sample was taken, in milliseconds (Thanos' `initialPenalty`).
pub const INITIAL_PENALTY_MS: i64 = 5000;

/// The deduplication function of vertical compaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DedupFunc {
    /// One sample per timestamp, earliest input first (Thanos' default, `""`).
    #[default]
    Chain,
    /// Thanos' penalty-based replica deduplication (`penalty`).
    Penalty,
}

impl DedupFunc {
    /// Parses the value of `--deduplication.func` (`""` or `penalty`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" => Ok(DedupFunc::Chain),
            "penalty" => Ok(DedupFunc::Penalty),
            other => Err(format!(
                "unknown deduplication func {other:?}: expected \"\" (one sample per timestamp) or \"penalty\""
            )),
        }
    }

    /// The flag value that selects this function.
    pub fn as_str(self) -> &'static str {
        match self {
            DedupFunc::Chain => "",
            DedupFunc::Penalty => "penalty",
        }
    }
}

/// Merges `runs` (each sorted by time; given in chunk order: min time, then max time, then
/// input) into `out`, sorted by time with one sample per timestamp.
pub fn merge_runs<V: Clone>(func: DedupFunc, runs: &[Vec<(i64, V)>], out: &mut Vec<(i64, V)>) {
    out.clear();
    match func {
        DedupFunc::Chain => chain(runs, out),
        DedupFunc::Penalty => {
            let Some((first, rest)) = runs.split_first() else {
                return;
            };
            out.extend_from_slice(first);
            let mut next = Vec::new();
            for b in rest {
                penalty(out, b, &mut next);
                std::mem::swap(out, &mut next);
            }
        }
    }
}

/// Every timestamp once; the run given first wins a tie.
fn chain<V: Clone>(runs: &[Vec<(i64, V)>], out: &mut Vec<(i64, V)>) {
    let mut order: Vec<(i64, usize, usize)> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, run)| run.iter().enumerate().map(move |(i, s)| (s.0, r, i)))
        .collect();
    order.sort_unstable();
    order.dedup_by_key(|k| k.0);
    out.extend(order.into_iter().map(|(_, r, i)| runs[r][i].clone()));
}

/// Thanos' two-replica penalty merge of `a` and `b` into `out`.
fn penalty<V: Clone>(a: &[(i64, V)], b: &[(i64, V)], out: &mut Vec<(i64, V)>) {
    out.clear();
    let (mut ia, mut ib) = (0, 0);
    let (mut pen_a, mut pen_b) = (0i64, 0i64);
    let mut last_t: Option<i64> = None;
    let seek = |s: &[(i64, V)], i: &mut usize, from: i64| {
        while *i < s.len() && s[*i].0 < from {
            *i += 1;
        }
    };
    loop {
        let from = |pen: i64| last_t.map_or(i64::MIN, |t| t.saturating_add(1).saturating_add(pen));
        seek(a, &mut ia, from(pen_a));
        seek(b, &mut ib, from(pen_b));
        let (take_a, t) = match (a.get(ia), b.get(ib)) {
            (None, None) => return,
            (Some(x), None) => (true, x.0),
            (None, Some(y)) => (false, y.0),
            (Some(x), Some(y)) => {
                let take_a = x.0 <= y.0;
                let t = if take_a { x.0 } else { y.0 };
                let pen = last_t.map_or(INITIAL_PENALTY_MS, |l| 2 * (t - l));
                if take_a {
                    pen_b = pen;
                } else {
                    pen_a = pen;
                }
                (take_a, t)
            }
        };
        if take_a {
            pen_a = 0;
            out.push(a[ia].clone());
        } else {
            pen_b = 0;
            out.push(b[ib].clone());
        }
        last_t = Some(t);
    }
}

#[cfg(test)]
mod tests {
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
}

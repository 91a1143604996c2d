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
mod tests;

//! The summary table of a `run`: per scenario the seeds, simulated hours, violations by
//! invariant (wrong-unit and unbalanced only in stream worlds), failovers of the bucket's
//! leader with their p50/p99 duration (all of them, and the p99 of those the failover bound
//! applies to: no other fault in force), per-stream failovers in stream worlds (all, and the
//! bounded ones with their p99); the throughput in simulated hours per CPU-hour.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::checker::Invariant;
use crate::scenario::Scenario;
use crate::world::Outcome;

/// Totals of one scenario.
#[derive(Clone, Debug, Default)]
struct Row {
    seeds: u64,
    sim_ms: i64,
    violations: BTreeMap<Invariant, usize>,
    failing: Vec<u64>,
    failovers: Vec<i64>,
    bounded_failovers: Vec<i64>,
    stream_failovers: usize,
    bounded_stream_failovers: Vec<i64>,
}

impl Row {
    /// Adds the failovers of `stats`.
    fn add_failovers(
        &mut self,
        failovers: &[i64],
        bounded: &[i64],
        streams: usize,
        bounded_streams: &[i64],
    ) {
        self.failovers.extend(failovers);
        self.bounded_failovers.extend(bounded);
        self.stream_failovers += streams;
        self.bounded_stream_failovers.extend(bounded_streams);
    }
}

/// The totals of a run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    rows: BTreeMap<Scenario, Row>,
}

impl Summary {
    /// Adds one world.
    pub fn add(&mut self, o: &Outcome) {
        let row = self.rows.entry(o.scenario).or_default();
        row.seeds += 1;
        row.sim_ms += o.sim_ms;
        for (inv, n) in &o.counts {
            *row.violations.entry(*inv).or_default() += n;
        }
        if !o.counts.is_empty() {
            row.failing.push(o.seed);
        }
        let st = &o.stats;
        row.add_failovers(
            &st.failovers,
            &st.bounded_failovers,
            st.stream_failovers.len(),
            &st.bounded_stream_failovers,
        );
    }

    /// Seeds run.
    pub fn seeds(&self) -> u64 {
        self.rows.values().map(|r| r.seeds).sum()
    }

    /// Worlds with at least one violation, as (scenario, seed).
    pub fn failing(&self) -> Vec<(Scenario, u64)> {
        self.rows
            .iter()
            .flat_map(|(s, r)| r.failing.iter().map(move |seed| (*s, *seed)))
            .collect()
    }

    /// Simulated hours.
    pub fn sim_hours(&self) -> f64 {
        self.rows.values().map(|r| r.sim_ms).sum::<i64>() as f64 / 3.6e6
    }

    /// The table, given the CPU seconds the run took.
    pub fn render(&self, cpu_secs: f64) -> String {
        let mut s = String::new();
        let inv: Vec<&str> = Invariant::ALL.iter().map(|i| i.name()).collect();
        let _ = writeln!(
            s,
            "{:<17} {:>6} {:>8} {:>13} {:>12} {:>13} {:>9} {:>10} {:>10} {:>10} {:>7} {:>7} {:>8} {:>7} {:>10} {:>8} {:>7}",
            "scenario",
            "seeds",
            "sim h",
            inv[0],
            inv[1],
            inv[2],
            inv[3],
            inv[4],
            inv[5],
            "failovers",
            "p50 s",
            "p99 s",
            "bounded",
            "p99 s",
            "stream fo",
            "bounded",
            "p99 s"
        );
        let mut total = Row::default();
        for (scenario, r) in &self.rows {
            self.line(&mut s, scenario.name(), r);
            total.seeds += r.seeds;
            total.sim_ms += r.sim_ms;
            for (i, n) in &r.violations {
                *total.violations.entry(*i).or_default() += n;
            }
            total.add_failovers(
                &r.failovers,
                &r.bounded_failovers,
                r.stream_failovers,
                &r.bounded_stream_failovers,
            );
        }
        self.line(&mut s, "total", &total);
        let hours = self.sim_hours();
        let _ = writeln!(
            s,
            "simulated {hours:.1} h in {cpu_secs:.1} CPU s: {:.0} simulated hours per CPU-hour",
            hours / (cpu_secs.max(1e-9) / 3600.0)
        );
        s
    }

    fn line(&self, s: &mut String, name: &str, r: &Row) {
        let v = |i: Invariant| r.violations.get(&i).copied().unwrap_or(0);
        let p99_bounded = percentile(&r.bounded_failovers, 0.99);
        let _ = writeln!(
            s,
            "{:<17} {:>6} {:>8.1} {:>13} {:>12} {:>13} {:>9} {:>10} {:>10} {:>10} {:>7} {:>7} {:>8} {:>7} {:>10} {:>8} {:>7}",
            name,
            r.seeds,
            r.sim_ms as f64 / 3.6e6,
            v(Invariant::SingleWriter),
            v(Invariant::CommitOrder),
            v(Invariant::BucketHealth),
            v(Invariant::Liveness),
            v(Invariant::WrongUnit),
            v(Invariant::Unbalanced),
            r.failovers.len(),
            percentile(&r.failovers, 0.5),
            percentile(&r.failovers, 0.99),
            r.bounded_failovers.len(),
            p99_bounded,
            r.stream_failovers,
            r.bounded_stream_failovers.len(),
            percentile(&r.bounded_stream_failovers, 0.99),
        );
    }
}

/// The `p` quantile of `ms` in seconds (nearest rank), or `-` when empty.
fn percentile(ms: &[i64], p: f64) -> String {
    let mut f = ms.to_vec();
    f.sort_unstable();
    if f.is_empty() {
        return "-".into();
    }
    let i = ((f.len() as f64 * p).ceil() as usize).clamp(1, f.len()) - 1;
    format!("{:.1}", f[i] as f64 / 1000.0)
}

/// CPU seconds this process used so far (user + system, all threads).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

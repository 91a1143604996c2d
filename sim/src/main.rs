//! `compactd-sim run [--seeds N] [--start-seed S] [--crash P] [--fail P]`: runs one simulated
//! world per seed and prints a summary; exits non-zero when any invariant broke, printing the
//! seeds to replay.

use std::process::ExitCode;

use compactd_sim::world::{run_seed, Faults};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("run") {
        eprintln!("usage: compactd-sim run [--seeds N] [--start-seed S] [--crash P] [--fail P]");
        return ExitCode::from(2);
    }
    let flag = |name: &str, default: f64| -> Result<f64, String> {
        match args.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number")),
        }
    };
    let parsed = (|| {
        Ok::<_, String>((
            flag("--seeds", 100.0)? as u64,
            flag("--start-seed", 1.0)? as u64,
            flag("--crash", 0.02)?,
            flag("--fail", 0.03)?,
        ))
    })();
    let (seeds, start, crash, fail) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let (mut crashes, mut failures, mut steps, mut sim_ms, mut bad) =
        (0u64, 0u64, 0u64, 0i64, Vec::new());
    for seed in start..start + seeds {
        let o = run_seed(seed, Faults { fail, crash });
        crashes += u64::from(o.crashes);
        failures += u64::from(o.failures);
        steps += o.steps;
        sim_ms += o.sim_ms;
        if !o.violations.is_empty() {
            eprintln!(
                "seed {seed}: {} violations, first: {}",
                o.violations.len(),
                o.violations[0]
            );
            bad.push(seed);
        }
    }
    let cpu_h = started.elapsed().as_secs_f64() / 3600.0;
    println!("seeds {seeds} (from {start}), steps {steps}, crashes {crashes}, failed mutations {failures}");
    println!(
        "simulated hours {:.1}, simulated hours per CPU-hour {:.0}",
        sim_ms as f64 / 3.6e6,
        sim_ms as f64 / 3.6e6 / cpu_h.max(1e-9)
    );
    println!("violations: {} seeds {bad:?}", bad.len());
    if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

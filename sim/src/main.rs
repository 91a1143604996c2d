//! `compactd-sim`: runs simulated worlds (`run`), re-runs a recorded one or a production
//! trace (`replay`), lists the scenarios (`scenarios`). See docs/simulation.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use clap::{Parser, Subcommand};

use compactd::core::leader::Provider;
use compactd_sim::bug::Bug;
use compactd_sim::election;
use compactd_sim::scenario::Scenario;
use compactd_sim::summary::{cpu_seconds, Summary};
use compactd_sim::trace::SimTrace;
use compactd_sim::trace_replay::{is_production_trace, replay_production};
use compactd_sim::world::{run_world, Outcome};

/// compactd's deterministic simulation.
#[derive(Parser)]
#[command(name = "compactd-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulated world per seed and print the summary table. Exits 1 on any
    /// violation, or with --bug when none was found.
    Run {
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        start_seed: u64,
        /// A scenario name, or `all` (seed s runs scenario s mod the number of scenarios).
        #[arg(long, default_value = "all")]
        scenario: String,
        /// Who elects the leader: `etcd`, or `bucket` (the fence object is the lease; no
        /// etcd in the world). Single-instance scenarios have no election either way.
        #[arg(long, default_value = "etcd", value_parser = election::parse)]
        election: Provider,
        /// Switch one safety mechanism off; the run stops at the first world that shows a
        /// violation and fails if none does.
        #[arg(long)]
        bug: Option<String>,
        /// Write a trace of every world with a violation here.
        #[arg(long)]
        trace_dir: Option<PathBuf>,
        /// Worlds run in parallel (default: the number of CPUs).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print every world's event-log hash: a change that only observes the worlds (the
        /// checker, the summary) must leave every line as it was.
        #[arg(long)]
        hashes: bool,
    },
    /// Re-run a recorded world (a `--trace-dir` file) or a production trace
    /// (`compactd run --trace.record`) and check its event-log hash.
    Replay {
        /// The trace file.
        trace: PathBuf,
        /// Print the event timeline.
        #[arg(long)]
        verbose: bool,
    },
    /// List the scenarios.
    Scenarios {
        /// Say what each becomes under this election (`etcd` or `bucket`).
        #[arg(long, default_value = "etcd", value_parser = election::parse)]
        election: Provider,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            seeds,
            start_seed,
            scenario,
            election,
            bug,
            trace_dir,
            jobs,
            hashes,
        } => match run(
            Worlds {
                seeds,
                start: start_seed,
                scenario: &scenario,
                election,
                bug: bug.as_deref(),
            },
            trace_dir,
            jobs,
            hashes,
        ) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Replay { trace, verbose } => match replay(&trace, verbose) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Scenarios { election } => {
            for s in Scenario::ALL {
                let about = match election {
                    Provider::Etcd => s.about(),
                    Provider::Bucket => s.about_on_bucket(),
                };
                println!("{:<17} {about}", s.name());
            }
            ExitCode::SUCCESS
        }
    }
}

/// The worlds of a `run`.
struct Worlds<'a> {
    /// How many seeds.
    seeds: u64,
    /// The first seed.
    start: u64,
    /// A scenario's name, or `all`.
    scenario: &'a str,
    /// Who elects the leader.
    election: Provider,
    /// The `--bug` name.
    bug: Option<&'a str>,
}

fn run(
    worlds: Worlds<'_>,
    trace_dir: Option<PathBuf>,
    jobs: Option<usize>,
    hashes: bool,
) -> Result<ExitCode, String> {
    let Worlds {
        seeds,
        start,
        scenario,
        election,
        bug,
    } = worlds;
    let only = match scenario {
        "all" => None,
        name => Some(Scenario::parse(name)?),
    };
    let bug: Option<Bug> = bug.map(str::parse).transpose()?;
    if let Some(b) = bug {
        b.check_provider(election)?;
    }
    // Named in the output of bucket runs only: etcd runs print what they always did.
    let on = match election {
        Provider::Etcd => String::new(),
        Provider::Bucket => format!(", --election {}", election::name(election)),
    };
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let pick =
        |seed: u64| only.unwrap_or(Scenario::ALL[(seed % Scenario::ALL.len() as u64) as usize]);
    let next = AtomicU64::new(start);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Outcome>();
    let mut outcomes: Vec<Outcome> = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= start + seeds {
                    return;
                }
                let o = run_world(seed, pick(seed), election, bug, false);
                if bug.is_some() && !o.violations.is_empty() {
                    stop.store(true, Ordering::SeqCst);
                }
                if tx.send(o).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        for o in rx {
            outcomes.push(o);
        }
    });
    outcomes.sort_by_key(|o| o.seed);
    let mut summary = Summary::default();
    for o in &outcomes {
        summary.add(o);
        if hashes {
            println!(
                "seed {} ({}{on}): hash {:016x}, {} events, {} ms",
                o.seed,
                o.scenario.name(),
                o.hash,
                o.events,
                o.sim_ms
            );
        }
        if o.violations.is_empty() {
            continue;
        }
        println!(
            "seed {} ({}{on}{}): {} violations, hash {:016x}",
            o.seed,
            o.scenario.name(),
            bug.map_or(String::new(), |b| format!(", --bug {b}")),
            o.counts.values().sum::<usize>(),
            o.hash
        );
        for v in &o.violations {
            println!("  {v}");
        }
        if let Some(dir) = &trace_dir {
            let path = SimTrace::of(o).write(dir)?;
            println!(
                "  trace: {} (compactd-sim replay {})",
                path.display(),
                path.display()
            );
        }
    }
    print!("{}", summary.render(cpu_seconds()));
    let failing = summary.failing();
    match bug {
        None if failing.is_empty() => {
            println!("no violations in {} worlds{on}", summary.seeds());
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("{} worlds with violations{on}", failing.len());
            Ok(ExitCode::FAILURE)
        }
        Some(b) => match failing.iter().map(|(_, seed)| *seed).min() {
            Some(seed) => {
                println!(
                    "--bug {b}: caught after {} seeds (seed {seed}, {}{on})",
                    seed - start + 1,
                    pick(seed).name()
                );
                Ok(ExitCode::SUCCESS)
            }
            None => {
                println!("--bug {b}: NOT caught in {} seeds{on}", summary.seeds());
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

fn replay(path: &std::path::Path, verbose: bool) -> Result<ExitCode, String> {
    if is_production_trace(path) {
        let mut stdout = std::io::stdout();
        let report = replay_production(path, verbose, &mut stdout)?;
        println!("{report}");
        let matches = report.first_divergence.is_none();
        return Ok(if matches {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let trace = SimTrace::read(path)?;
    let (scenario, election, bug) = trace.world()?;
    let o = run_world(trace.seed, scenario, election, bug, verbose);
    if verbose {
        for line in &o.log {
            println!("{line}");
        }
    }
    for v in &o.violations {
        println!("violation: {v}");
    }
    let hash = format!("{:016x}", o.hash);
    println!(
        "event-log hash {hash} ({} events), recorded {}",
        o.events, trace.hash
    );
    if hash == trace.hash {
        println!("replay matches the recording");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("replay DIFFERS from the recording (another build, or nondeterminism)");
        Ok(ExitCode::FAILURE)
    }
}

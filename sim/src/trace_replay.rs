//! Offline replay of a production trace (`compactd run --trace.record`, format
//! `compactd-trace/2`, see `compactd::trace`): the node is rebuilt from the header,
//! fed every recorded `(now, input)` in order, and the hash of its outputs is compared with
//! the recorded one after every step. The replay stops at the first step whose hash differs.

mod summary;

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use compactd::core::node::Node;
use compactd::core::types::Millis;
use compactd::trace::{header_format, StepHasher, TraceError, TraceReader, VERSION};

/// What a replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// Steps replayed (up to and including a diverging one).
    pub steps: u64,
    /// The replay's hash after its last step.
    pub hash: u64,
    /// The recorded hash after that step.
    pub recorded_hash: u64,
    /// The first step whose hash differs from the recording's.
    pub first_divergence: Option<u64>,
    /// Why the trace ended early: its last line is cut short (the recording was killed).
    pub cut: Option<String>,
    /// Things to know about the result (a different compactd version recorded the trace).
    pub notes: Vec<String>,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first_divergence {
            Some(step) => write!(
                f,
                "DIVERGED at step {step}: the recording has hash {:016x} after it, the replay \
                 {:016x}: the core answered this input differently (rerun with --verbose to see \
                 the steps)",
                self.recorded_hash, self.hash
            )?,
            None => write!(
                f,
                "{} steps replayed; hash {:016x} equals the recording's",
                self.steps, self.hash
            )?,
        }
        if let Some(cut) = &self.cut {
            write!(
                f,
                "\nnote: {cut}; the {} complete steps before it were replayed",
                self.steps
            )?;
        }
        self.notes
            .iter()
            .try_for_each(|note| write!(f, "\nnote: {note}"))
    }
}

/// True when the first line of `path` is a `compactd-trace/…` header (any version: a version
/// this build cannot read is then refused by [`replay_production`] with a clear message).
pub fn is_production_trace(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut first = String::new();
    // A header is a few hundred bytes; the limit keeps a large file without newlines cheap.
    let read = BufReader::new(file.take(1 << 20)).read_line(&mut first);
    read.is_ok()
        && header_format(first.trim_end()).is_some_and(|f| f.starts_with("compactd-trace/"))
}

/// Replays the trace at `path`. With `verbose`, writes one line per step to `out`: its number,
/// its time, its input and the replay's outputs. Returns the report (the caller prints it), or
/// an error naming the file and line when the trace cannot be read.
pub fn replay_production(
    path: &Path,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<ReplayReport, String> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| format!("{name}: cannot open: {e}"))?;
    let reader = TraceReader::new(BufReader::new(file), &name).map_err(|e| e.to_string())?;
    let header = reader.header().clone();
    let mut hasher = StepHasher::default();
    let mut report = ReplayReport {
        steps: 0,
        hash: hasher.digest(),
        recorded_hash: hasher.digest(),
        first_divergence: None,
        cut: None,
        notes: Vec::new(),
    };
    if header.compactd != VERSION {
        report.notes.push(format!(
            "recorded by compactd {}, replayed by {VERSION}: a change in the core shows as a \
             divergence",
            header.compactd
        ));
    }
    let written = |e: std::io::Error| format!("cannot write the replay: {e}");
    if verbose {
        writeln!(
            out,
            "trace {name}: node {}, seed {}, recorded by compactd {}",
            header.node, header.seed, header.compactd
        )
        .map_err(written)?;
    }
    let mut node = Node::new(header.cycle, header.leader, header.seed);
    let mut last_mono = Millis(i64::MIN);
    for step in reader {
        let step = match step {
            Ok(step) => step,
            Err(e @ TraceError::Cut { .. }) => {
                report.cut = Some(e.to_string());
                break;
            }
            Err(e) => {
                return Err(format!(
                    "{e} (the {} steps before it replayed identically)",
                    report.steps
                ))
            }
        };
        if step.now.mono < last_mono {
            return Err(format!(
                "{name}: step {}: monotonic time goes back ({} ms after {} ms)",
                step.step, step.now.mono.0, last_mono.0
            ));
        }
        last_mono = step.now.mono;
        let input = verbose.then(|| summary::input(&step.input));
        let outputs = node.step(step.now, step.input);
        hasher
            .update(&outputs)
            .map_err(|e| format!("step {}: cannot hash the outputs: {e}", step.step))?;
        report.steps = step.step;
        report.hash = hasher.digest();
        report.recorded_hash = step.hash;
        if let Some(input) = input {
            writeln!(
                out,
                "{}",
                summary::step_line(step.step, step.now, &input, &outputs)
            )
            .map_err(written)?;
        }
        if report.hash != step.hash {
            report.first_divergence = Some(step.step);
            break;
        }
    }
    Ok(report)
}

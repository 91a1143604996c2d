//! Traces of a node's steps, format `compactd-trace/2`: what `compactd run --trace.record`
//! writes and `compactd-sim replay` reads back to rerun the core offline, bit for bit.
//!
//! JSON Lines. Line 1 is a [`TraceHeader`] (everything [`Node::new`] takes); then one line
//! per step, numbered from 1:
//!
//! ```text
//! {"format":"compactd-trace/2","compactd":"0.1.0","node":"a","seed":7,"cycle":{..},"leader":{..}}
//! {"step":1,"now":{"mono":0,"wall":1735689600000},"input":"Start","hash":"5e3f0c2a9d4b1e77"}
//! ```
//!
//! `hash` is the [`StepHasher`] digest after the step: a running xxh64 over the JSON of every
//! output of every step so far. The outputs themselves are not recorded; a replay recomputes
//! them and compares the hashes step by step.
//!
//! It lives beside the core, not in it (the core does no I/O): the driver records through
//! [`TraceWriter`], and the replay reads with [`TraceReader`], each on the `Write`/`BufRead`
//! it is given.
//!
//! [`Node::new`]: crate::core::node::Node::new

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh64::Xxh64;

use crate::core::cycle::CycleConfig;
use crate::core::leader::LeaderConfig;
use crate::core::types::{Input, Now, Output};

/// The format name in the header of every trace this build writes and reads.
pub const FORMAT: &str = "compactd-trace/2";
/// This build's compactd version, as the headers it writes record it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Line 1 of a trace: what the node was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// The compactd version that recorded the trace (a replay by another may diverge).
    pub compactd: String,
    /// The node's name (`--node.name`).
    pub node: String,
    /// The seed of the node's random choices.
    pub seed: u64,
    /// The cycle's settings.
    pub cycle: CycleConfig,
    /// Leadership's settings.
    pub leader: LeaderConfig,
}

impl TraceHeader {
    /// The header of a node built with `Node::new(cycle, leader, seed)` by this build.
    pub fn new(cycle: &CycleConfig, leader: &LeaderConfig, seed: u64) -> Self {
        TraceHeader {
            format: FORMAT.into(),
            compactd: VERSION.into(),
            node: leader.node.clone(),
            seed,
            cycle: cycle.clone(),
            leader: leader.clone(),
        }
    }
}

/// The `format` of `line` when it is a JSON object that has one (a trace header of any
/// version, e.g. `compactd-trace/2`); `None` for anything else.
pub fn header_format(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    serde_json::from_str::<Format>(line).ok().map(|f| f.format)
}

/// One recorded step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceStep {
    /// Its number, from 1.
    pub step: u64,
    /// The time it ran at.
    pub now: Now,
    /// What the node was fed.
    pub input: Input,
    /// The [`StepHasher`] digest after its outputs.
    #[serde(with = "hex64")]
    pub hash: u64,
}

/// [`TraceStep`] as written, borrowing its input.
#[derive(Serialize)]
struct StepLine<'a> {
    step: u64,
    now: Now,
    input: &'a Input,
    #[serde(with = "hex64")]
    hash: u64,
}

/// A `u64` as 16 lowercase hex digits.
mod hex64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 16 {
            return Err(serde::de::Error::custom(format!(
                "hash {s:?}: expected 16 hex digits"
            )));
        }
        u64::from_str_radix(&s, 16)
            .map_err(|_| serde::de::Error::custom(format!("hash {s:?}: expected 16 hex digits")))
    }
}

/// The running hash of a node's outputs: xxh64 (seed 0) over the `serde_json` bytes of every
/// output of every step, in order. Equal inputs from equal nodes give equal digests.
#[derive(Clone)]
pub struct StepHasher(Xxh64);

impl Default for StepHasher {
    fn default() -> Self {
        StepHasher(Xxh64::new(0))
    }
}

impl StepHasher {
    /// Adds one step's outputs.
    pub fn update(&mut self, outputs: &[Output]) -> serde_json::Result<()> {
        outputs
            .iter()
            .try_for_each(|o| serde_json::to_writer(HashSink(&mut self.0), o))
    }

    /// The hash of every output added so far.
    pub fn digest(&self) -> u64 {
        self.0.digest()
    }
}

/// Feeds serialized bytes straight into the hash.
struct HashSink<'a>(&'a mut Xxh64);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a trace: the header, then one line per step, each written with one `write_all`
/// and flushed, so a process killed at any point leaves a trace whose lines are complete but
/// for, at most, the last.
pub struct TraceWriter<W: Write> {
    out: W,
    hasher: StepHasher,
    steps: u64,
    line: Vec<u8>,
}

impl<W: Write> TraceWriter<W> {
    /// Writes `header` to `out`.
    pub fn new(out: W, header: &TraceHeader) -> std::io::Result<Self> {
        let mut w = TraceWriter {
            out,
            hasher: StepHasher::default(),
            steps: 0,
            line: Vec::new(),
        };
        serde_json::to_writer(&mut w.line, header)?;
        w.write_line()?;
        Ok(w)
    }

    /// Records one step: the node was fed `input` at `now` and answered `outputs`.
    pub fn record(&mut self, now: Now, input: &Input, outputs: &[Output]) -> std::io::Result<()> {
        self.hasher.update(outputs)?;
        self.steps += 1;
        let line = StepLine {
            step: self.steps,
            now,
            input,
            hash: self.hasher.digest(),
        };
        serde_json::to_writer(&mut self.line, &line)?;
        self.write_line()
    }

    fn write_line(&mut self) -> std::io::Result<()> {
        self.line.push(b'\n');
        let written = self
            .out
            .write_all(&self.line)
            .and_then(|()| self.out.flush());
        self.line.clear();
        written
    }
}

/// Why a trace cannot be read (further); `name` is the file, `line` counts from 1.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The source could not be read.
    #[error("{name}:{line}: cannot read: {source}")]
    Io {
        /// The trace's file.
        name: String,
        /// The line being read.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A complete line that is not what the format says.
    #[error("{name}:{line}: {message}")]
    Malformed {
        /// The trace's file.
        name: String,
        /// The bad line.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The last line ends without a newline and does not parse: the recording stopped in the
    /// middle of writing it (the process was killed, the disk filled up).
    #[error("{name}:{line}: the last line is cut short (the recording stopped while writing it, e.g. kill -9)")]
    Cut {
        /// The trace's file.
        name: String,
        /// The cut line.
        line: u64,
    },
}

/// Reads a trace: the header on creation, then the steps in order (an [`Iterator`] that
/// ends after the first error).
pub struct TraceReader<R: BufRead> {
    input: R,
    name: String,
    line: u64,
    header: TraceHeader,
    done: bool,
}

impl<R: BufRead> TraceReader<R> {
    /// Reads the header of the trace in `input`; `name` (the file) is quoted in errors.
    pub fn new(mut input: R, name: &str) -> Result<Self, TraceError> {
        let mut buf = Vec::new();
        let header = match read_line(&mut input, name, 1, &mut buf)? {
            None => {
                return Err(TraceError::Malformed {
                    name: name.into(),
                    line: 1,
                    message: "empty file: no trace header".into(),
                })
            }
            Some(complete) => parse_header(&buf, complete, name)?,
        };
        Ok(TraceReader {
            input,
            name: name.into(),
            line: 1,
            header,
            done: false,
        })
    }

    /// The trace's header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    fn next_step(&mut self) -> Result<Option<TraceStep>, TraceError> {
        let mut buf = Vec::new();
        let line = self.line + 1;
        let Some(complete) = read_line(&mut self.input, &self.name, line, &mut buf)? else {
            return Ok(None);
        };
        self.line = line;
        let expected = line - 1;
        let step: TraceStep = match serde_json::from_slice(&buf) {
            Ok(s) => s,
            Err(_) if !complete => return Err(self.cut()),
            Err(e) => return Err(self.malformed(format!("not a trace step: {e}"))),
        };
        if step.step != expected {
            return Err(self.malformed(format!(
                "step {} where step {expected} was expected",
                step.step
            )));
        }
        Ok(Some(step))
    }

    fn cut(&self) -> TraceError {
        TraceError::Cut {
            name: self.name.clone(),
            line: self.line,
        }
    }

    fn malformed(&self, message: String) -> TraceError {
        TraceError::Malformed {
            name: self.name.clone(),
            line: self.line,
            message,
        }
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<TraceStep, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_step().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

/// Reads one line into `buf` (without its newline): `None` at the end, else whether the line
/// was complete (ended with a newline).
fn read_line(
    input: &mut impl BufRead,
    name: &str,
    line: u64,
    buf: &mut Vec<u8>,
) -> Result<Option<bool>, TraceError> {
    let n = input
        .read_until(b'\n', buf)
        .map_err(|source| TraceError::Io {
            name: name.into(),
            line,
            source,
        })?;
    if n == 0 {
        return Ok(None);
    }
    let complete = buf.last() == Some(&b'\n');
    if complete {
        buf.pop();
    }
    Ok(Some(complete))
}

fn parse_header(buf: &[u8], complete: bool, name: &str) -> Result<TraceHeader, TraceError> {
    let malformed = |message: String| TraceError::Malformed {
        name: name.into(),
        line: 1,
        message,
    };
    let not_a_trace = || {
        malformed(format!(
            "not a {FORMAT} trace (the first line must be a header with \"format\":\"{FORMAT}\")"
        ))
    };
    let text = std::str::from_utf8(buf).map_err(|_| not_a_trace())?;
    match serde_json::from_str::<TraceHeader>(text) {
        Ok(h) if h.format == FORMAT => Ok(h),
        Ok(h) => Err(malformed(format!(
            "trace format {:?}: this build reads {FORMAT}",
            h.format
        ))),
        Err(e) if header_format(text).as_deref() == Some(FORMAT) => {
            Err(malformed(format!("bad trace header: {e}")))
        }
        Err(_) if !complete && starts_like_header(text) => Err(TraceError::Cut {
            name: name.into(),
            line: 1,
        }),
        Err(_) => Err(not_a_trace()),
    }
}

/// True when `text` starts as a header this build writes (or is a start of one).
fn starts_like_header(text: &str) -> bool {
    let prefix = format!("{{\"format\":\"{FORMAT}\"");
    text.starts_with(&prefix) || prefix.starts_with(text)
}

#[cfg(test)]
mod tests;

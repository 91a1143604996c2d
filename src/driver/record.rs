//! `--trace.record`: writes every step of the node to a trace file (`crate::trace`).
//!
//! The file is created (truncated) and its header written at start-up, so an unwritable path
//! stops `compactd run` before it does anything. A write error later is logged once and ends
//! the recording; compaction goes on (the trace is a diagnostic, not worth an outage).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::core::node::Node;
use crate::core::types::{Input, Now, Output};
use crate::trace::{TraceHeader, TraceWriter};

/// A trace being recorded to a file.
pub struct Recorder {
    writer: TraceWriter<File>,
    path: PathBuf,
}

impl Recorder {
    /// Creates `path` (replacing any file there) and writes `header` to it.
    pub fn create(path: &Path, header: &TraceHeader) -> anyhow::Result<Recorder> {
        let context = || format!("--trace.record {}", path.display());
        let file = File::create(path).with_context(context)?;
        let writer = TraceWriter::new(file, header).with_context(context)?;
        Ok(Recorder {
            writer,
            path: path.to_path_buf(),
        })
    }
}

/// Steps `node`, recording the step when `recorder` is set; a write error logs and drops it.
pub(super) fn step(
    node: &mut Node,
    now: Now,
    input: Input,
    recorder: &mut Option<Recorder>,
) -> Vec<Output> {
    let Some(rec) = recorder else {
        return node.step(now, input);
    };
    let recorded = input.clone();
    let outputs = node.step(now, input);
    if let Err(error) = rec.writer.record(now, &recorded, &outputs) {
        tracing::error!(file = %rec.path.display(), %error, "--trace.record: cannot write the trace; recording stopped, compaction goes on");
        *recorder = None;
    }
    outputs
}

//! `compactd tools compact`: compacts block directories into one new block and reports it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::tsdb::compact::{compact_blocks, CompactOptions};
use crate::tsdb::meta::BlockMeta;

/// What `tools compact` reports.
#[derive(Debug)]
pub struct CompactReport {
    /// The new block, or `None` when the result held no samples (nothing written).
    pub output: Option<(PathBuf, BlockMeta)>,
    /// Wall time of the compaction, in seconds.
    pub seconds: f64,
}

/// Compacts `inputs` into a new block in `out`.
pub fn run(inputs: &[PathBuf], out: &Path, opts: &CompactOptions) -> anyhow::Result<CompactReport> {
    if inputs.is_empty() {
        anyhow::bail!("no block directories given");
    }
    let id = super::fresh_block_id()?;
    let started = Instant::now();
    let output = compact_blocks(inputs, out, id, opts)?;
    Ok(CompactReport {
        output: output.map(|o| (o.dir, o.meta)),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The report as printed by the CLI.
pub fn render(report: &CompactReport, inputs: usize) -> String {
    let Some((dir, meta)) = &report.output else {
        return format!(
            "the {inputs} input blocks hold no samples in range; nothing was written\n"
        );
    };
    let s = &meta.stats;
    format!(
        "{id}\ncompacted {inputs} blocks into {dir} in {secs:.3}s\n  time range  {min} .. {max} ({dur})\n  level       {level}\n  series      {series}\n  chunks      {chunks}\n  samples     {samples}\n",
        id = meta.ulid,
        dir = dir.display(),
        secs = report.seconds,
        min = meta.min_time,
        max = meta.max_time,
        dur = crate::duration::format_duration_ms((meta.max_time - meta.min_time).max(0) as u64),
        level = meta.compaction.level,
        series = s.num_series,
        chunks = s.num_chunks,
        samples = s.num_samples,
    )
}

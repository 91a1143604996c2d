//! `compactd tools downsample`: downsamples one local block directory to 5m or 1h, as
//! `thanos compact` does in its downsampling passes, and reports the new block.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::tsdb::downsample::downsample_block;
use crate::tsdb::meta::BlockMeta;
use crate::units::{RESOLUTION_1H_MS, RESOLUTION_5M_MS};

/// What `tools downsample` reports.
#[derive(Debug)]
pub struct DownsampleReport {
    /// The input block's meta.
    pub input: BlockMeta,
    /// The new block, or `None` when the input held no samples (nothing written).
    pub output: Option<(PathBuf, BlockMeta)>,
    /// Wall time of the downsampling, in seconds.
    pub seconds: f64,
}

/// Parses `--resolution`: `5m` or `1h` (Thanos' two downsampling levels), in milliseconds.
pub fn parse_resolution(s: &str) -> Result<i64, String> {
    match s {
        "5m" => Ok(RESOLUTION_5M_MS),
        "1h" => Ok(RESOLUTION_1H_MS),
        other => Err(format!(
            "resolution {other:?}: Thanos downsamples to 5m (from raw) or 1h (from 5m)"
        )),
    }
}

/// Downsamples the block in `block` to `resolution_ms` into a new block in `out`.
pub fn run(block: &Path, out: &Path, resolution_ms: i64) -> anyhow::Result<DownsampleReport> {
    let input = BlockMeta::read_dir(block)?;
    let id = super::fresh_block_id()?;
    let started = Instant::now();
    let output = downsample_block(block, out, id, resolution_ms)?;
    Ok(DownsampleReport {
        input,
        output: output.map(|o| (o.dir, o.meta)),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The report as printed by the CLI: the new block's ULID on the first line, then what it
/// holds. `samples` counts windows (what Thanos puts in `numSamples`); the input's raw samples
/// are given next to it.
pub fn render(report: &DownsampleReport) -> String {
    let input = &report.input;
    let Some((dir, meta)) = &report.output else {
        return format!(
            "block {} holds no samples to downsample; nothing was written\n",
            input.ulid
        );
    };
    let s = &meta.stats;
    let resolution = meta.thanos.as_ref().map_or(0, |t| t.downsample.resolution);
    format!(
        "{id}\ndownsampled {input_id} into {dir} in {secs:.3}s\n  time range  {min} .. {max} ({dur})\n  resolution  {res}\n  series      {series}\n  chunks      {chunks}\n  windows     {samples} (numSamples; the input had {input_samples} samples)\n",
        id = meta.ulid,
        input_id = input.ulid,
        dir = dir.display(),
        secs = report.seconds,
        min = meta.min_time,
        max = meta.max_time,
        dur = crate::duration::format_duration_ms((meta.max_time - meta.min_time).max(0) as u64),
        res = crate::duration::format_duration_ms(resolution.max(0) as u64),
        series = s.num_series,
        chunks = s.num_chunks,
        samples = s.num_samples,
        input_samples = input.stats.num_samples,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_are_thanos_levels_only() {
        assert_eq!(parse_resolution("5m"), Ok(300_000));
        assert_eq!(parse_resolution("1h"), Ok(3_600_000));
        for bad in ["0", "raw", "10m", "300000", "1d", ""] {
            assert!(parse_resolution(bad).is_err(), "{bad}");
        }
    }
}

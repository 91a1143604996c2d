//! `compactd tools bucket ls`: Thanos' flags (`-o/--output`, `--exclude-delete`,
//! `--min-time`, `--max-time`, `--timeout`, `--selector.relabel-config[-file]`); the listing
//! itself is `compactd::tools::ls`.

use std::process::ExitCode;

use clap::Args;

use super::{open_bucket, BucketArgs, SelectorArgs};
use crate::cli::duration_ms;
use compactd::tools::ls::{self, LsFilter, LsFormat, DEFAULT_MAX_TIME, DEFAULT_MIN_TIME};

/// `tools bucket ls`.
#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    selector: SelectorArgs,
    /// Format of each block's line: 'json', 'wide', '' (one ULID per line, Thanos' default) or a Go template ('{{.ULID}} {{.Thanos.Labels}}'); not given: compactd's table.
    #[arg(short = 'o', long = "output", allow_hyphen_values = true)]
    output: Option<String>,
    /// Exclude blocks marked for deletion.
    #[arg(long = "exclude-delete", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    exclude_delete: bool,
    /// List blocks that end at or after this time: RFC3339 or a duration relative to now (-1d, 2h45m).
    #[arg(long = "min-time", default_value = DEFAULT_MIN_TIME, value_parser = time_or_duration, allow_hyphen_values = true)]
    min_time: i64,
    /// List blocks that start at or before this time: RFC3339 or a duration relative to now (-1d, 2h45m).
    #[arg(long = "max-time", default_value = DEFAULT_MAX_TIME, value_parser = time_or_duration, allow_hyphen_values = true)]
    max_time: i64,
    /// Timeout to download metadata from remote storage.
    #[arg(long = "timeout", default_value = "5m", value_parser = duration_ms)]
    timeout: u64,
}

/// A `--min-time`/`--max-time` value (Thanos' `model.TimeOrDurationValue`) in Unix ms.
pub fn time_or_duration(s: &str) -> Result<i64, String> {
    compactd::flags::parse_time_or_duration(s, compactd::tools::now_unix_ms())
}

/// Runs `tools bucket ls`.
pub fn run(a: LsArgs) -> anyhow::Result<ExitCode> {
    let format = LsFormat::parse(a.output.as_deref())?;
    let filter = LsFilter {
        exclude_delete: a.exclude_delete,
        min_time: a.min_time,
        max_time: a.max_time,
        selector_relabel: a.selector.load()?,
    };
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let sync = runtime.block_on(ls::sync_within(&bucket.store, a.timeout))?;
    print!("{}", ls::render(&ls::filter(&sync, &filter), &format)?);
    Ok(ExitCode::SUCCESS)
}

//! `compactd tools bucket inspect`: Thanos' flags (`-l/--selector`, `--sort-by`,
//! `--timeout`, `--output table|csv|tsv`); the table itself is
//! `compactd::tools::bucket_inspect`.

use std::process::ExitCode;

use clap::Args;

use super::{open_bucket, BucketArgs};
use crate::cli::duration_ms;
use compactd::tools::bucket_inspect::{self, InspectOutput, COLUMNS};
use compactd::tools::label_matcher::LabelMatcher;

/// `tools bucket inspect`.
#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Selects blocks by external label: name="value" (Thanos), also name=value, name!=value, name=~regex, name!~regex; repeatable, all must match.
    #[arg(short = 'l', long = "selector", value_parser = LabelMatcher::parse)]
    selector: Vec<LabelMatcher>,
    /// Sort by these columns, in order (repeatable: --sort-by FROM --sort-by UNTIL); ties are sorted by ULID.
    #[arg(long = "sort-by", default_values = ["FROM", "UNTIL"], value_parser = COLUMNS)]
    sort_by: Vec<String>,
    /// Timeout to download metadata from remote storage.
    #[arg(long = "timeout", default_value = "5m", value_parser = duration_ms)]
    timeout: u64,
    /// Output format: table, csv or tsv.
    #[arg(long = "output", default_value = "table", value_parser = InspectOutput::parse)]
    output: InspectOutput,
}

/// Runs `tools bucket inspect`.
pub fn run(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let sort = bucket_inspect::sort_indices(&a.sort_by).map_err(anyhow::Error::msg)?;
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let sync = runtime.block_on(compactd::tools::ls::sync_within(&bucket.store, a.timeout))?;
    print!(
        "{}",
        bucket_inspect::render(&sync, &a.selector, &sort, a.output)
    );
    Ok(ExitCode::SUCCESS)
}

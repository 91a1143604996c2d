//! `compactd tools bucket upload-blocks`: Thanos' flags and what it prints. The work is
//! `compactd::tools::upload`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{open_bucket, BucketArgs};
use compactd::driver::store::{StoreExecutor, Transfers};
use compactd::tools::fenced::ToolFenceOptions;
use compactd::tools::upload::{self, Skipped, UploadSettings};

/// `tools bucket upload-blocks`.
#[derive(Args)]
pub struct UploadBlocksArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Path to the directory containing blocks to upload.
    #[arg(long = "path", default_value = "./data")]
    path: PathBuf,
    /// External labels to add to the uploaded blocks (repeated): name="value".
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Also upload compacted blocks (level above 1).
    #[arg(long = "shipper.upload-compacted", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    upload_compacted: bool,
    /// Files of one block uploaded at once.
    #[arg(long = "shipper.upload-concurrency", default_value_t = 5)]
    upload_concurrency: usize,
}

/// Runs `tools bucket upload-blocks`.
pub fn run(a: UploadBlocksArgs) -> anyhow::Result<ExitCode> {
    if a.labels.is_empty() {
        anyhow::bail!(
            "no external labels configured (--label): uniquely identifying external labels \
             must be configured; see https://thanos.io/tip/thanos/storage.md#external-labels"
        );
    }
    let labels = a
        .labels
        .iter()
        .map(|l| upload::parse_flag_label(l))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let settings = UploadSettings {
        labels,
        upload_compacted: a.upload_compacted,
        fence: ToolFenceOptions::for_tool("upload-blocks"),
    };
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let exec = StoreExecutor::new(bucket.store)
        .with_conditional_update(bucket.conditional_update)
        .with_transfers(Transfers {
            block_files: a.upload_concurrency,
            ..Transfers::default()
        });
    let report = runtime.block_on(upload::upload_blocks(&exec, &a.path, &settings))?;
    for (id, why) in &report.skipped {
        let why = match why {
            Skipped::Empty => "empty block".to_string(),
            Skipped::Compacted(level) => {
                format!("compaction level {level} (--shipper.upload-compacted to upload it)")
            }
            Skipped::InBucket => "already in the bucket".to_string(),
        };
        println!("skipped {id}: {why}");
    }
    for id in &report.uploaded {
        println!("uploaded {id}");
    }
    println!(
        "upload-blocks: {} blocks uploaded, {} skipped",
        report.uploaded.len(),
        report.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}

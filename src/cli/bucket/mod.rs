//! `compactd tools bucket ...`: the bucket subcommands' flags and what they print. Each
//! subcommand's work lives in `compactd::tools`; this module only parses and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{bytes, duration_ms};
use compactd::tools;

mod inspect;
mod ls;
mod maintain;
mod replicate;
mod rewrite;
mod upload_blocks;
mod verify;
mod web;

/// The `tools bucket` subcommands.
#[derive(Subcommand)]
pub enum BucketCommand {
    /// List the blocks: compactd's table (ULID, range, level, resolution, labels, marks), or Thanos' -o json|wide|''|<template>.
    Ls(ls::LsArgs),
    /// Verify the blocks against Thanos' issues (-i index_known_issues, overlapped_blocks, duplicated_compaction) and compactd's bucket_consistency; --repair removes duplicated compactions. Non-zero exit on any issue.
    Verify(Box<verify::VerifyArgs>),
    /// Report per stream and epoch who committed which blocks, and every fence; non-zero exit
    /// when a stream's commits go back in epoch, an epoch has two holders or a stamp is malformed.
    Audit(AuditArgs),
    /// Sync the bucket and print what `run` would compact next, without writing; with timings.
    Plan(PlanArgs),
    /// Every block in Thanos' inspect table (ULID, FROM, UNTIL, RANGE, UNTIL-DOWN, counts, level, labels, resolution, source); table, csv or tsv.
    Inspect(inspect::InspectArgs),
    /// Place (or --remove) a deletion, no-compact or no-downsample mark on blocks, under the fence or through the leader (--leader.url).
    Mark(maintain::MarkArgs),
    /// Mark for deletion the blocks past their resolution's retention, under the fence or through the leader.
    Retention(maintain::RetentionArgs),
    /// Delete blocks marked for deletion longer than --delete-delay ago and old partial uploads, under the fence or through the leader.
    Cleanup(maintain::CleanupArgs),
    /// Copy blocks to another bucket (--objstore-to.config), under the target's fence.
    Replicate(Box<replicate::ReplicateArgs>),
    /// Upload the block directories of --path with --label external labels, under the fence.
    UploadBlocks(upload_blocks::UploadBlocksArgs),
    /// Rewrite blocks without the series the deletion requests select and/or with relabelled series (dry run by default).
    Rewrite(Box<rewrite::RewriteArgs>),
    /// Serve the block viewer for the bucket (timelines, block details, marks under the fence or through --leader.url), refreshed every --refresh.
    Web(Box<web::WebArgs>),
}

/// The bucket every subcommand works on (Thanos' `--objstore.config[-file]`).
#[derive(Args)]
pub struct BucketArgs {
    /// Path to the bucket configuration YAML (Thanos objstore format).
    #[arg(long = "objstore.config-file")]
    objstore_config_file: Option<PathBuf>,
    /// Bucket configuration YAML inline.
    #[arg(long = "objstore.config")]
    objstore_config: Option<String>,
}

/// Thanos' block selection flags (`run` and `tools bucket plan`).
#[derive(Args)]
pub struct SelectorArgs {
    /// Relabel config YAML (keep, drop, hashmod) over each block's external labels and __block_id: blocks it drops are left to other instances (Thanos' sharding).
    #[arg(long = "selector.relabel-config-file")]
    pub file: Option<PathBuf>,
    /// The relabel config inline (alternative to --selector.relabel-config-file; not both).
    #[arg(long = "selector.relabel-config", allow_hyphen_values = true)]
    pub inline: Option<String>,
}

impl SelectorArgs {
    pub fn load(&self) -> anyhow::Result<Vec<compactd::relabel::RelabelConfig>> {
        let rules = compactd::relabel::selector::load_selector(
            self.file.as_deref(),
            self.inline.as_deref(),
        )?;
        Ok(rules)
    }
}

/// `tools bucket plan`.
#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// As `run`: blocks uploaded less than this long ago are left alone.
    #[arg(long = "consistency-delay", default_value = "30m", value_parser = duration_ms)]
    consistency_delay: u64,
    /// As `run`: blocks marked for deletion longer than half of this ago are hidden.
    #[arg(long = "delete-delay", default_value = "48h", value_parser = duration_ms)]
    delete_delay: u64,
    /// As `run`: merge overlapping blocks instead of halting on them.
    #[arg(long = "compact.enable-vertical-compaction")]
    vertical: bool,
    /// As `run`: label removed before grouping (repeatable or comma-separated); enables vertical compaction.
    #[arg(long = "deduplication.replica-label", value_delimiter = ',')]
    replica_labels: Vec<String>,
    #[command(flatten)]
    selector: SelectorArgs,
    /// As `run`: highest compaction level (0..4 = 1h, 2h, 8h, 2d, 14d).
    #[arg(long = "debug.max-compaction-level", default_value_t = 4)]
    max_compaction_level: usize,
    /// As `run`: plans whose index would pass 85% of this get their largest block no-compact-marked.
    #[arg(long = "compact.block-max-index-size", default_value = "64GB", value_parser = bytes)]
    block_max_index_size: u64,
    /// Print every group, also those with nothing to do.
    #[arg(long)]
    all: bool,
}

/// `tools bucket audit`.
#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// As `run`: label removed to find a block's stream (repeatable or comma-separated); each stream's commits are audited apart.
    #[arg(long = "deduplication.replica-label", value_delimiter = ',')]
    replica_labels: Vec<String>,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

/// Opens the bucket the flags name, with a runtime to drive it.
pub fn open_bucket(
    args: &BucketArgs,
) -> anyhow::Result<(compactd::objstore::Bucket, tokio::runtime::Runtime)> {
    let cfg = compactd::objstore::load(
        args.objstore_config_file.as_deref(),
        args.objstore_config.as_deref(),
    )?;
    let bucket = compactd::objstore::open(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok((bucket, runtime))
}

/// Runs a `tools bucket` subcommand.
pub fn run(cmd: BucketCommand) -> anyhow::Result<ExitCode> {
    let args = match cmd {
        BucketCommand::Ls(a) => return ls::run(a),
        BucketCommand::Verify(a) => a,
        BucketCommand::Audit(a) => return audit(a),
        BucketCommand::Plan(a) => return plan(a),
        BucketCommand::Inspect(a) => return inspect::run(a),
        BucketCommand::Mark(a) => return maintain::mark(a),
        BucketCommand::Retention(a) => return maintain::retention(a),
        BucketCommand::Cleanup(a) => return maintain::cleanup(a),
        BucketCommand::Replicate(a) => return replicate::run(*a),
        BucketCommand::UploadBlocks(a) => return upload_blocks::run(a),
        BucketCommand::Rewrite(a) => return rewrite::run(*a),
        BucketCommand::Web(a) => return web::run(*a),
    };
    verify::run(*args)
}

fn plan(a: PlanArgs) -> anyhow::Result<ExitCode> {
    let selector_relabel = a.selector.load()?;
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let settings = tools::plan::PlanSettings {
        selector_relabel,
        replica_labels: a.replica_labels,
        vertical: a.vertical,
        consistency_delay_ms: a.consistency_delay as i64,
        delete_delay_ms: a.delete_delay as i64,
        max_compaction_level: a.max_compaction_level,
        block_max_index_size: a.block_max_index_size,
    };
    let report = runtime.block_on(tools::plan::plan_bucket(&bucket.store, &settings))?;
    print!("{}", tools::plan::render(&report, a.all));
    Ok(ExitCode::SUCCESS)
}

fn audit(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let report = runtime.block_on(tools::audit::audit_bucket(&bucket.store, &a.replica_labels))?;
    if a.output == "json" {
        print!("{}", report.render_json());
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

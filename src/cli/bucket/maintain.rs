//! `compactd tools bucket mark|retention|cleanup`: Thanos' flags, plus where the commits go
//! ([`FenceArgs`]): made by the tool under its own hold of the fence (refused next to a live
//! compactd), or sent to a compactd with `--leader.url`. What they change is decided by
//! `compactd::tools::maintenance`, every input checked before anything is written.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{open_bucket, BucketArgs, SelectorArgs};
use crate::cli::duration_ms;
use compactd::core::cycle::PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT;
use compactd::core::request::WriteOp;
use compactd::core::types::SyncResult;
use compactd::tools::commits::{apply, with_streams, CommitReport, CommitRoute};
use compactd::tools::fenced::ToolFenceOptions;
use compactd::tools::maintenance::{
    cleanup_ops, mark_ops, retention_ops, MaintenanceSettings, MarkerKind,
};
use compactd::tsdb::block_id::BlockId;

/// Where a writing tool's commits go, and how it judges the fence.
#[derive(Args)]
pub struct FenceArgs {
    /// Send the commits to this compactd (http://host:10902), which makes them under its own epoch and fence; without it the tool holds the fence itself and refuses while a compactd holds it.
    #[arg(long = "leader.url")]
    pub(super) leader_url: Option<String>,
    /// The compactd replicas' --etcd.lease-ttl: a fence renewed less than this ago has a live holder.
    #[arg(long = "etcd.lease-ttl", default_value = "15s", value_parser = duration_ms)]
    lease_ttl: u64,
    /// Timeout of one bucket operation; also the commit window after each renewal of the fence.
    #[arg(long = "objstore.op-timeout", default_value = "5s", value_parser = duration_ms)]
    op_timeout: u64,
    /// As `run`: label removed to find a block's stream (per-stream ownership sends each stream's commits to its owner).
    #[arg(long = "deduplication.replica-label", value_delimiter = ',')]
    pub(super) replica_labels: Vec<String>,
}

impl FenceArgs {
    /// Where the commits of `tool` go: the leader, or the tool's own hold of the fence.
    pub(super) fn route(&self, tool: &str, bucket: &compactd::objstore::Bucket) -> CommitRoute {
        match &self.leader_url {
            Some(url) => CommitRoute::Leader(url.clone()),
            None => CommitRoute::Fenced(ToolFenceOptions {
                lease_ttl: Duration::from_millis(self.lease_ttl),
                op_timeout: Duration::from_millis(self.op_timeout),
                conditional_update: bucket.conditional_update,
                ..ToolFenceOptions::for_tool(tool)
            }),
        }
    }
}

/// `tools bucket mark`.
#[derive(Args)]
pub struct MarkArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    fence: FenceArgs,
    /// ID (ULID) of a block to mark (repeatable).
    #[arg(long = "id", required = true, value_parser = parse_id)]
    ids: Vec<BlockId>,
    /// Marker to place: deletion-mark.json, no-compact-mark.json or no-downsample-mark.json.
    #[arg(long = "marker", required = true, value_parser = MarkerKind::parse)]
    marker: MarkerKind,
    /// Human readable details put into the marker (required unless --remove).
    #[arg(long = "details", default_value = "")]
    details: String,
    /// Remove the marker instead.
    #[arg(long = "remove", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    remove: bool,
}

/// The filters of `retention` and `cleanup`.
#[derive(Args)]
pub struct SyncFilterArgs {
    /// Blocks marked for deletion are hidden half of this after their mark, and deleted (cleanup) this after it.
    #[arg(long = "delete-delay", default_value = "48h", value_parser = duration_ms)]
    delete_delay: u64,
    /// Blocks uploaded less than this long ago are left alone.
    #[arg(long = "consistency-delay", default_value = "30m", value_parser = duration_ms)]
    consistency_delay: u64,
    /// Accepted for Thanos compatibility (metas are fetched with the bucket's own concurrency).
    #[arg(long = "block-sync-concurrency", default_value_t = 20)]
    block_sync_concurrency: usize,
    #[command(flatten)]
    selector: SelectorArgs,
}

/// `tools bucket retention`.
#[derive(Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    fence: FenceArgs,
    #[command(flatten)]
    filter: SyncFilterArgs,
    /// How long to keep raw blocks; 0d keeps them forever.
    #[arg(long = "retention.resolution-raw", default_value = "0d", value_parser = duration_ms)]
    raw: u64,
    /// How long to keep 5m blocks; 0d keeps them forever.
    #[arg(long = "retention.resolution-5m", default_value = "0d", value_parser = duration_ms)]
    five_minutes: u64,
    /// How long to keep 1h blocks; 0d keeps them forever.
    #[arg(long = "retention.resolution-1h", default_value = "0d", value_parser = duration_ms)]
    one_hour: u64,
}

/// `tools bucket cleanup`.
#[derive(Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    fence: FenceArgs,
    #[command(flatten)]
    filter: SyncFilterArgs,
}

/// Runs `mark`.
pub fn mark(a: MarkArgs) -> anyhow::Result<ExitCode> {
    let report = plan_and_commit(&a.bucket, &a.fence, "mark", |sync, now| {
        mark_ops(sync, &a.ids, a.marker, &a.details, a.remove, now).map_err(anyhow::Error::msg)
    })?;
    let verb = if a.remove { "removed" } else { "placed" };
    println!(
        "{}: {verb} on {} blocks",
        a.marker.filename(),
        report.committed
    );
    print_writers(&report);
    Ok(ExitCode::SUCCESS)
}

/// Runs `retention`.
pub fn retention(a: RetentionArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&a.filter, &a.fence)?;
    let keep = [a.raw as i64, a.five_minutes as i64, a.one_hour as i64];
    let report = plan_and_commit(&a.bucket, &a.fence, "retention", |sync, now| {
        Ok(retention_ops(sync, &settings, keep, now))
    })?;
    println!(
        "retention: {} blocks marked for deletion ({} already marked)",
        report.committed, report.existed
    );
    print_writers(&report);
    Ok(ExitCode::SUCCESS)
}

/// Runs `cleanup`.
pub fn cleanup(a: CleanupArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&a.filter, &a.fence)?;
    let report = plan_and_commit(&a.bucket, &a.fence, "cleanup", |sync, now| {
        Ok(cleanup_ops(
            sync,
            &settings,
            PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT,
            now,
        ))
    })?;
    println!("cleanup: {} blocks deleted", report.committed);
    print_writers(&report);
    Ok(ExitCode::SUCCESS)
}

/// One look at the bucket, the commits `plan` decides from it (at the wall clock's now, Unix
/// ms), made by the route the fence flags choose for `tool`.
fn plan_and_commit(
    bucket: &BucketArgs,
    fence: &FenceArgs,
    tool: &str,
    plan: impl FnOnce(&SyncResult, i64) -> anyhow::Result<Vec<WriteOp>>,
) -> anyhow::Result<CommitReport> {
    let (bucket, runtime) = open_bucket(bucket)?;
    let sync = runtime.block_on(compactd::tools::bucket::sync(&bucket.store))?;
    let ops = plan(&sync, compactd::tools::now_unix_ms())?;
    let ops = with_streams(&sync, ops, &fence.replica_labels);
    let route = fence.route(tool, &bucket);
    runtime.block_on(apply(bucket.store, &route, ops))
}

fn settings(filter: &SyncFilterArgs, fence: &FenceArgs) -> anyhow::Result<MaintenanceSettings> {
    Ok(MaintenanceSettings {
        consistency_delay_ms: filter.consistency_delay as i64,
        delete_delay_ms: filter.delete_delay as i64,
        selector_relabel: filter.selector.load()?,
        replica_labels: fence.replica_labels.clone(),
    })
}

/// Prints who made the commits.
pub(super) fn print_writers(report: &CommitReport) {
    for writer in &report.writers {
        println!("committed by {writer}");
    }
}

/// A `--id` value.
pub(super) fn parse_id(s: &str) -> Result<BlockId, String> {
    s.parse::<BlockId>()
        .map_err(|e| format!("block id {s:?} is not a ULID: {e}"))
}

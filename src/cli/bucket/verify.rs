//! `compactd tools bucket verify`: Thanos' flags (`-i/--issues`, `--id`, `-r/--repair`,
//! `--objstore-backup.config[-file]`, `--delete-delay`) plus where a repair's commits go
//! ([`FenceArgs`]: the tool's own hold of the fence, or `--leader.url`). Prints one
//! `ISSUE: <issue>: ...` line per finding and a summary; exits non-zero while an issue is left.
//! The checks and the repair are `compactd::tools::verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::maintain::{parse_id, print_writers, FenceArgs};
use super::{open_bucket, BucketArgs};
use crate::cli::duration_ms;
use compactd::tools::verify::repair::{self, RepairSettings};
use compactd::tools::verify::{self, IssueKind, VerifyReport, VerifySettings};
use compactd::tsdb::block_id::BlockId;

/// `tools bucket verify`.
#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    fence: FenceArgs,
    /// Issues to verify (repeatable): index_known_issues, overlapped_blocks, duplicated_compaction (the one --repair repairs), bucket_consistency (compactd's: missing files, unreadable metas and markers, partial uploads).
    #[arg(short = 'i', long = "issues", value_parser = IssueKind::parse, default_values = ["index_known_issues", "overlapped_blocks", "bucket_consistency"])]
    issues: Vec<IssueKind>,
    /// Block IDs to verify (and optionally repair) only (repeatable); none: every block.
    #[arg(long = "id", value_parser = parse_id)]
    ids: Vec<BlockId>,
    /// Repair the issues found (duplicated_compaction: back up, then delete or mark the duplicates).
    #[arg(short = 'r', long = "repair")]
    repair: bool,
    /// Path to the backup bucket's configuration YAML: a repair copies each block there before removing it.
    #[arg(long = "objstore-backup.config-file")]
    backup_config_file: Option<PathBuf>,
    /// The backup bucket's configuration YAML inline.
    #[arg(long = "objstore-backup.config")]
    backup_config: Option<String>,
    /// What a repair does with a block: 0s deletes it at once; more marks it for deletion, for the compactor to delete this long after.
    #[arg(long = "delete-delay", default_value = "0s", value_parser = duration_ms)]
    delete_delay: u64,
}

/// Runs `tools bucket verify`.
pub fn run(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let settings = VerifySettings {
        issues: a.issues.iter().copied().collect(),
        ids: a.ids.iter().copied().collect(),
    };
    let backup = if a.repair {
        settings.check_repair().map_err(anyhow::Error::msg)?;
        Some(open_backup(&a)?)
    } else {
        None
    };
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let report = runtime.block_on(verify::verify(&bucket.store, &settings))?;
    for f in &report.findings {
        println!("ISSUE: {}: {}", f.issue.id(), f.text);
    }
    let mut repaired = 0;
    if let Some(backup) = backup {
        repaired = repair_duplicates(&a, &settings, &report, &bucket, backup, &runtime)?;
    }
    print_summary(&settings, &report, repaired);
    Ok(if report.findings.len() > repaired {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The backup bucket; a repair needs one (as in Thanos).
fn open_backup(a: &VerifyArgs) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    if a.backup_config_file.is_none() && a.backup_config.is_none() {
        anyhow::bail!(
            "--repair needs a backup bucket (--objstore-backup.config-file or \
             --objstore-backup.config): each block is copied there before it is removed"
        );
    }
    let cfg = compactd::objstore::load(a.backup_config_file.as_deref(), a.backup_config.as_deref())
        .map_err(|e| anyhow::anyhow!("--objstore-backup.config: {e}"))?;
    Ok(compactd::objstore::open(&cfg)?.store)
}

/// Backs up and removes the duplicates found; returns how many findings that repaired.
fn repair_duplicates(
    a: &VerifyArgs,
    settings: &VerifySettings,
    report: &VerifyReport,
    bucket: &compactd::objstore::Bucket,
    backup: Arc<dyn object_store::ObjectStore>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<usize> {
    let removals = report.removals(settings);
    let route = a.fence.route("verify", bucket);
    let repair_settings = RepairSettings {
        delete_delay_ms: a.delete_delay as i64,
        replica_labels: a.fence.replica_labels.clone(),
        now_ms: compactd::tools::now_unix_ms(),
    };
    let store = Arc::clone(&bucket.store);
    let done = runtime.block_on(repair::remove(
        store,
        backup,
        &route,
        &report.sync,
        &removals,
        &repair_settings,
    ))?;
    let verb = if a.delete_delay == 0 {
        "deleted"
    } else {
        "marked for deletion"
    };
    println!(
        "repaired duplicated_compaction: {} blocks backed up and {verb} ({} already marked)",
        removals.len(),
        done.existed
    );
    print_writers(&done);
    // A duplicate set is repaired when every duplicate in it was removed.
    let repaired = report
        .duplicates
        .iter()
        .filter(|d| {
            d.duplicates
                .iter()
                .all(|b| removals.iter().any(|r| r.block == *b))
        })
        .count();
    Ok(repaired)
}

fn print_summary(settings: &VerifySettings, report: &VerifyReport, repaired: usize) {
    let names: Vec<&str> = settings.issues.iter().map(|k| k.id()).collect();
    if report.findings.is_empty() {
        println!(
            "OK: {} blocks verified for {}: no issues",
            report.live_blocks,
            names.join(", ")
        );
        return;
    }
    println!(
        "{} issues found, {repaired} repaired",
        report.findings.len()
    );
}

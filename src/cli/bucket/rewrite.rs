//! `tools bucket rewrite`: its flags (Thanos' names and defaults) and what it prints. The work
//! is `compactd::tools::rewrite`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{open_bucket, BucketArgs};
use compactd::driver::jobs::HashFunc;
use compactd::tools::rewrite::{self, config, BlockRewrite, RewriteSettings};
use compactd::tsdb::block_id::BlockId;

/// `tools bucket rewrite`.
#[derive(Args)]
pub struct RewriteArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    fence: super::maintain::FenceArgs,
    /// ID (ULID) of the blocks for rewrite (repeated flag).
    #[arg(long = "id", required = true)]
    ids: Vec<String>,
    /// Working directory for temporary files (emptied first; keeps each new block's change.log).
    #[arg(long = "tmp.dir", default_value_os_t = std::env::temp_dir().join("thanos-rewrite"))]
    tmp_dir: PathBuf,
    /// Prints the series changes instead of doing them (the default); --no-dry-run rewrites.
    #[arg(long = "dry-run", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = clap::ArgAction::Set)]
    dry_run: bool,
    /// Blocks are Prometheus blocks: do not require external labels.
    #[arg(long = "prom-blocks", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    prom_blocks: bool,
    /// Mark each original block for deletion once its rewrite is committed (not in a dry run).
    #[arg(long = "delete-blocks", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    delete_blocks: bool,
    /// Hash of the new block's files recorded in its meta.json: "" (none) or SHA256.
    #[arg(long = "hash-func", default_value = "", value_parser = ["", "SHA256"])]
    hash_func: String,
    /// YAML file of deletion requests: [{matchers: '{__name__="x"}', intervals: [{mint, maxt}]}].
    #[arg(long = "rewrite.to-delete-config-file")]
    delete_file: Option<PathBuf>,
    /// The deletion requests inline (alternative to --rewrite.to-delete-config-file).
    #[arg(long = "rewrite.to-delete-config", allow_hyphen_values = true)]
    delete_inline: Option<String>,
    /// YAML file of Prometheus relabel configs applied to every series (dropped series are deleted).
    #[arg(long = "rewrite.to-relabel-config-file")]
    relabel_file: Option<PathBuf>,
    /// The relabel configs inline (alternative to --rewrite.to-relabel-config-file).
    #[arg(long = "rewrite.to-relabel-config", allow_hyphen_values = true)]
    relabel_inline: Option<String>,
    /// Write every modification to change.log in the new block's directory under --tmp.dir.
    #[arg(long = "rewrite.add-change-log", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = clap::ArgAction::Set)]
    add_change_log: bool,
}

/// Runs `tools bucket rewrite`.
pub fn run(a: RewriteArgs) -> anyhow::Result<ExitCode> {
    let mut ids = Vec::with_capacity(a.ids.len());
    for id in &a.ids {
        let parsed: BlockId = id
            .parse()
            .map_err(|_| anyhow::anyhow!("--id: not a valid block ULID, got: {id}"))?;
        ids.push(parsed);
    }
    let deletions = match load("rewrite.to-delete-config", &a.delete_file, &a.delete_inline)? {
        Some((yaml, origin)) => {
            config::parse_deletions(&yaml).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?
        }
        None => Vec::new(),
    };
    let relabels = match load(
        "rewrite.to-relabel-config",
        &a.relabel_file,
        &a.relabel_inline,
    )? {
        Some((yaml, origin)) => {
            Some(config::parse_relabels(&yaml).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?)
        }
        None => None,
    };
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let settings = RewriteSettings {
        ids,
        tmp_dir: a.tmp_dir,
        dry_run: a.dry_run,
        prom_blocks: a.prom_blocks,
        delete_blocks: a.delete_blocks,
        hash: HashFunc::parse(&a.hash_func).map_err(|e| anyhow::anyhow!("--hash-func {e}"))?,
        deletions,
        relabels,
        add_change_log: a.add_change_log,
        route: a.fence.route("rewrite", &bucket),
        replica_labels: a.fence.replica_labels.clone(),
    };
    runtime.block_on(rewrite::rewrite(&bucket, &settings, print))?;
    Ok(ExitCode::SUCCESS)
}

fn load(
    flag: &str,
    file: &Option<PathBuf>,
    inline: &Option<String>,
) -> anyhow::Result<Option<(String, String)>> {
    config::load_flag(flag, file.as_deref(), inline.as_deref()).map_err(anyhow::Error::msg)
}

fn print(b: &BlockRewrite) {
    let counts = format!(
        "{} series: {} deleted, {} cut, {} relabelled",
        b.series, b.deleted, b.cut, b.relabelled
    );
    match &b.stats {
        None => {
            println!(
                "dry run: block {} would be rewritten as {}; {counts}",
                b.source, b.new_id
            );
            for line in &b.changes {
                println!("{line}");
            }
        }
        Some((old, new)) => println!(
            "rewrote block {} as {}; {counts}; series {} -> {}, samples {} -> {}, chunks {} -> {}",
            b.source,
            b.new_id,
            old.num_series,
            new.num_series,
            old.num_samples,
            new.num_samples,
            old.num_chunks,
            new.num_chunks
        ),
    }
    if let Some(path) = &b.change_log {
        println!("change log: {}", path.display());
    }
    if b.marked {
        println!("marked block {} for deletion", b.source);
    }
}

//! `compactd tools bucket rewrite` (Thanos' `tools bucket rewrite`): each chosen block is
//! downloaded into `--tmp.dir` and written anew without the series and samples the deletion
//! requests select and with the labels the relabel config gives (module `plan`; the block
//! engine applies both: deletions as tombstones, relabelling as a relabelled input). The new
//! block keeps the old one's time range, external labels, resolution, compaction level and
//! parents; its `compaction.sources` is itself, `thanos.source` is `bucket.rewrite`, and a
//! `thanos.rewrites` entry records the old sources, the deletions and the relabel rules
//! applied, as Thanos writes them.
//!
//! `--dry-run` (the default) writes nothing to the bucket and takes no fence: it reports what
//! would change (the change log). Otherwise every block id is checked first (an unknown one
//! fails before anything is written) and the tool refuses next to a live compactd
//! ([`ToolFence::check`]); once the first new block is built locally it uploads the new
//! block's files (invisible without meta.json) and commits its meta.json, then with
//! `--delete-blocks` marks the old block for deletion (`block rewritten`): under its own hold
//! of the fence ([`ToolFence`]), or, with `--leader.url`, through the leader, which checks the
//! uploaded files and commits both under its epoch (`WriteOp::AdoptMeta`). A rewrite that
//! would leave no sample fails for that block with nothing uploaded. With
//! `--rewrite.add-change-log` (the default) the change log is written to
//! `<tmp.dir>/<new id>/change.log` (it is not uploaded: Thanos uploads only chunks, index and
//! meta.json).

pub mod changelog;
pub mod config;
pub mod matchers;
pub mod plan;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use serde_json::{json, Value};

use crate::bucket::markers::{DeletionMark, MARKER_VERSION};
use crate::core::request::WriteOp;
use crate::core::stream::StreamId;
use crate::driver::jobs::{block_files, download_block, HashFunc};
use crate::driver::store::StoreExecutor;
use crate::objstore::Bucket;
use crate::relabel::RelabelConfig;
use crate::tools::commits::{apply, CommitRoute};
use crate::tools::fenced::{ToolCommit, ToolFence, ToolFenceOptions};
use crate::tsdb::block::{BlockReader, BlockTarget};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::compact::{compact_inputs, CompactInput, CompactOptions};
use crate::tsdb::meta::{BlockFile, BlockMeta, BlockStats, META_FILENAME};
use config::DeletionRequest;
use plan::RewritePlan;

/// `thanos.source` of a rewritten block (Thanos' `metadata.BucketRewriteSource`).
pub const SOURCE_BUCKET_REWRITE: &str = "bucket.rewrite";
/// The details of the deletion mark `--delete-blocks` puts on a rewritten block.
pub const DELETION_DETAILS: &str = "block rewritten";
/// The change log's file name in the new block's local directory.
pub const CHANGE_LOG_FILENAME: &str = "change.log";

/// What to rewrite and how.
#[derive(Clone, Debug)]
pub struct RewriteSettings {
    /// The blocks (`--id`), in order.
    pub ids: Vec<BlockId>,
    /// `--tmp.dir`: emptied first, then holds downloads, new blocks and change logs.
    pub tmp_dir: PathBuf,
    /// `--dry-run`: report, write nothing to the bucket.
    pub dry_run: bool,
    /// `--prom-blocks`: allow blocks without external labels.
    pub prom_blocks: bool,
    /// `--delete-blocks`: mark each old block for deletion once its new one is committed.
    pub delete_blocks: bool,
    /// `--hash-func`: hashes in the new block's `thanos.files`.
    pub hash: HashFunc,
    /// The deletion requests (`--rewrite.to-delete-config`).
    pub deletions: Vec<DeletionRequest>,
    /// The relabel rules (`--rewrite.to-relabel-config`), if given.
    pub relabels: Option<Vec<RelabelConfig>>,
    /// `--rewrite.add-change-log`: write `change.log` next to the new block.
    pub add_change_log: bool,
    /// Who commits: the tool under its own hold of the fence (`conditional_update` is taken
    /// from the bucket), or the leader at `--leader.url`.
    pub route: CommitRoute,
    /// `--deduplication.replica-label`: a block's stream, for the leader's per-stream routing.
    pub replica_labels: Vec<String>,
}

/// What was (or, in a dry run, would be) done to one block.
#[derive(Clone, Debug)]
pub struct BlockRewrite {
    /// The old block.
    pub source: BlockId,
    /// The new block's id.
    pub new_id: BlockId,
    /// Series of the old block.
    pub series: u64,
    /// Series deleted whole.
    pub deleted: u64,
    /// Series with samples deleted.
    pub cut: u64,
    /// Series relabelled.
    pub relabelled: u64,
    /// The change log lines.
    pub changes: Vec<String>,
    /// Where the change log was written, if it was.
    pub change_log: Option<PathBuf>,
    /// The old and the new block's stats (not in a dry run).
    pub stats: Option<(BlockStats, BlockStats)>,
    /// Whether the old block was marked for deletion.
    pub marked: bool,
}

/// Rewrites every block of `settings`, calling `report` after each.
pub async fn rewrite(
    bucket: &Bucket,
    settings: &RewriteSettings,
    mut report: impl FnMut(&BlockRewrite),
) -> anyhow::Result<()> {
    if settings.deletions.is_empty() && settings.relabels.is_none() {
        bail!(
            "rewrite configuration should be provided: --rewrite.to-delete-config[-file] or \
             --rewrite.to-relabel-config[-file]"
        );
    }
    let fence_options = match &settings.route {
        CommitRoute::Fenced(options) => Some(ToolFenceOptions {
            conditional_update: bucket.conditional_update,
            ..options.clone()
        }),
        CommitRoute::Leader(_) => None,
    };
    // Stamps what it writes with the tool's holder, as every fenced tool's executor does.
    let exec = match &fence_options {
        Some(options) => options.executor(bucket.store.clone()),
        None => StoreExecutor::new(bucket.store.clone()),
    };
    // Every meta first: an unknown id or a refused block fails before anything is written.
    let mut metas = Vec::with_capacity(settings.ids.len());
    for &id in &settings.ids {
        let meta = read_meta(&exec, id).await?;
        let labelled = meta.thanos.as_ref().is_some_and(|t| !t.labels.is_empty());
        if !settings.dry_run && !settings.prom_blocks && !labelled {
            bail!(
                "block {id} has no external labels: empty external labels are not allowed for \
                 a Thanos block (pass --prom-blocks for Prometheus blocks)"
            );
        }
        metas.push(meta);
    }
    if let (false, Some(options)) = (settings.dry_run, &fence_options) {
        // Refuse next to a live compactd before the work, not only at the first commit.
        ToolFence::check(&exec, options).await?;
    }
    reset_dir(&settings.tmp_dir).await?;
    // Taken at the first commit, once a new block is built: a failure before touches nothing.
    let mut fence = None;
    let mut result = Ok(());
    for meta in metas {
        match rewrite_block(&exec, &mut fence, fence_options.as_ref(), settings, meta).await {
            Ok(done) => report(&done),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Some(fence) = fence {
        let released = fence.release(&exec).await;
        result?;
        return released;
    }
    result
}

/// Rewrites one block; unless it is a dry run, commits under `fence` (taken if not yet).
async fn rewrite_block(
    exec: &StoreExecutor,
    fence: &mut Option<ToolFence>,
    fence_options: Option<&ToolFenceOptions>,
    settings: &RewriteSettings,
    meta: BlockMeta,
) -> anyhow::Result<BlockRewrite> {
    let id = meta.ulid;
    let tmp = settings.tmp_dir.clone();
    let local = download_block(exec.store(), &tmp, &meta, exec.transfers().block_files)
        .await
        .map_err(|e| anyhow!("download block {id}: {}", e.message))?;
    let new_id = crate::tools::fresh_block_id().context("new block id")?;
    let job = (settings.clone(), local.clone());
    let (plan, written) = tokio::task::spawn_blocking(move || {
        let (s, local) = job;
        build(
            &local,
            &s.tmp_dir,
            new_id,
            &s.deletions,
            s.relabels.as_deref(),
            s.dry_run,
        )
    })
    .await
    .map_err(|e| anyhow!("rewrite task of block {id}: {e}"))?
    .with_context(|| format!("rewrite block {id}"))?;
    let new_dir = tmp.join(new_id.to_string());
    let change_log = match settings.add_change_log {
        true => Some(write_change_log(&new_dir, &plan.changes).await?),
        false => None,
    };
    let mut done = BlockRewrite {
        source: id,
        new_id,
        series: plan.series,
        deleted: plan.deleted,
        cut: plan.cut,
        relabelled: plan.relabelled,
        changes: plan.changes,
        change_log,
        stats: None,
        marked: false,
    };
    let Some(stats) = written else {
        return Ok(done);
    };
    let new_meta = upload_block(exec, settings, &meta, new_id, &stats).await?;
    done.marked = match (fence_options, &settings.route) {
        (Some(options), _) => {
            if fence.is_none() {
                *fence = Some(ToolFence::acquire(exec, options.clone()).await?);
            }
            let fence = fence.as_mut().expect("the fence was just taken");
            commit_block(exec, fence, settings, &meta, new_meta).await?
        }
        (None, route) => commit_by_leader(exec, route, settings, &meta, new_meta).await?,
    };
    done.stats = Some((meta.stats.clone(), stats));
    // The data is in the bucket now; the change log and meta.json stay for the operator.
    let _ = tokio::fs::remove_dir_all(&local).await;
    let _ = tokio::fs::remove_dir_all(new_dir.join("chunks")).await;
    let _ = tokio::fs::remove_file(new_dir.join(crate::tsdb::block::INDEX_FILENAME)).await;
    Ok(done)
}

/// Uploads the new block `new_id` (built in `<tmp.dir>/<new_id>` from `old`): its files,
/// not its meta.json, which it returns (invisible until committed).
async fn upload_block(
    exec: &StoreExecutor,
    settings: &RewriteSettings,
    old: &BlockMeta,
    new_id: BlockId,
    stats: &BlockStats,
) -> anyhow::Result<BlockMeta> {
    let (id, new_dir) = (old.ulid, settings.tmp_dir.join(new_id.to_string()));
    let files = block_files(&new_dir, settings.hash)
        .await
        .map_err(|e| anyhow!("new block {new_id}: {e}"))?;
    let new_meta = rewritten_meta(old, new_id, stats.clone(), settings, files);
    new_meta.write_dir(&new_dir)?;
    exec.upload_files(new_id, &new_dir)
        .await
        .with_context(|| format!("upload block {new_id} (rewrite of {id})"))?;
    Ok(new_meta)
}

/// The deletion mark of a rewritten block.
fn rewritten_mark(id: BlockId) -> DeletionMark {
    DeletionMark {
        id,
        version: MARKER_VERSION,
        details: DELETION_DETAILS.to_string(),
        deletion_time: crate::tools::now_unix_ms() / 1000,
    }
}

/// Commits the uploaded block's meta.json under the tool's `fence`, and with
/// `--delete-blocks` marks `old` for deletion; returns whether it did.
async fn commit_block(
    exec: &StoreExecutor,
    fence: &mut ToolFence,
    settings: &RewriteSettings,
    old: &BlockMeta,
    new_meta: BlockMeta,
) -> anyhow::Result<bool> {
    let (id, new_id) = (old.ulid, new_meta.ulid);
    fence
        .commit(exec, ToolCommit::PutMeta(Box::new(new_meta)))
        .await
        .with_context(|| format!("commit block {new_id} (rewrite of {id})"))?;
    if !settings.delete_blocks {
        return Ok(false);
    }
    fence
        .commit(exec, ToolCommit::MarkDeletion(rewritten_mark(id)))
        .await
        .with_context(|| format!("mark block {id} for deletion (rewritten as {new_id})"))?;
    Ok(true)
}

/// Sends the uploaded block's meta.json (and with `--delete-blocks` the old block's deletion
/// mark) to the leader, which commits them under its fence after checking the files.
async fn commit_by_leader(
    exec: &StoreExecutor,
    route: &CommitRoute,
    settings: &RewriteSettings,
    old: &BlockMeta,
    new_meta: BlockMeta,
) -> anyhow::Result<bool> {
    let (id, new_id) = (old.ulid, new_meta.ulid);
    let stream = StreamId::of_block(old, &settings.replica_labels);
    let mut ops = vec![(
        stream,
        WriteOp::AdoptMeta {
            meta: Box::new(new_meta),
        },
    )];
    if settings.delete_blocks {
        ops.push((stream, WriteOp::MarkDeletion(rewritten_mark(id))));
    }
    apply(exec.store().clone(), route, ops)
        .await
        .with_context(|| format!("commit block {new_id} (rewrite of {id}) through the leader"))?;
    Ok(settings.delete_blocks)
}

/// Plans the rewrite of the block in `local` and, unless `dry_run`, writes the new block
/// `<tmp>/<new_id>`; returns the plan and the new block's stats.
fn build(
    local: &Path,
    tmp: &Path,
    new_id: BlockId,
    deletions: &[DeletionRequest],
    relabels: Option<&[RelabelConfig]>,
    dry_run: bool,
) -> anyhow::Result<(RewritePlan, Option<BlockStats>)> {
    let mut block = BlockReader::open(local)?;
    let mut plan = plan::plan(&mut block, deletions, relabels)?;
    if dry_run {
        return Ok((plan, None));
    }
    block.tombstones.merge(&plan.tombstones);
    let input = CompactInput {
        block,
        relabel: plan.relabel.take(),
    };
    let target = BlockTarget::local(tmp, new_id)?;
    let opts = CompactOptions::default();
    match compact_inputs(vec![input], target, new_id, &opts)? {
        Some(out) => Ok((plan, Some(out.meta.stats))),
        None => bail!(
            "the rewrite leaves no samples; nothing was written (to drop the whole block, mark \
             it for deletion instead)"
        ),
    }
}

/// The new block's meta: the old one's with the new id, stats, sources and files, and the
/// rewrite recorded as Thanos records it.
fn rewritten_meta(
    old: &BlockMeta,
    new_id: BlockId,
    stats: BlockStats,
    settings: &RewriteSettings,
    mut files: Vec<BlockFile>,
) -> BlockMeta {
    let mut meta = old.clone();
    meta.ulid = new_id;
    meta.stats = stats;
    meta.compaction.sources = vec![new_id];
    let mut entry = json!({ "sources": old.compaction.sources });
    if !settings.deletions.is_empty() {
        entry["deletions_applied"] = settings
            .deletions
            .iter()
            .map(config::deletion_json)
            .collect();
    }
    if let Some(rules) = settings.relabels.as_ref().filter(|r| !r.is_empty()) {
        entry["relabels_applied"] = rules.iter().map(config::relabel_json).collect();
    }
    let mut thanos = old.thanos.clone().unwrap_or_default();
    thanos.rewrites = Some(match thanos.rewrites.take() {
        Some(Value::Array(mut list)) => {
            list.push(entry);
            Value::Array(list)
        }
        _ => Value::Array(vec![entry]),
    });
    thanos.source = SOURCE_BUCKET_REWRITE.to_string();
    files.push(BlockFile {
        rel_path: META_FILENAME.to_string(),
        size_bytes: 0,
        hash: None,
    });
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    thanos.segment_files = files
        .iter()
        .filter_map(|f| f.rel_path.strip_prefix("chunks/").map(str::to_string))
        .collect();
    thanos.files = files;
    thanos.upload_time = crate::timefmt::format_rfc3339_ms(crate::tools::now_unix_ms());
    meta.thanos = Some(thanos);
    meta
}

/// Reads `<id>/meta.json` from the bucket; an absent one is an unknown block.
async fn read_meta(exec: &StoreExecutor, id: BlockId) -> anyhow::Result<BlockMeta> {
    let path = format!("{id}/{META_FILENAME}");
    let bytes = match exec.store().get(&ObjectPath::from(path.as_str())).await {
        Ok(got) => got.bytes().await.with_context(|| format!("read {path}"))?,
        Err(object_store::Error::NotFound { .. }) => {
            bail!("block {id}: no {path} in the bucket (unknown block id, or a partial upload)")
        }
        Err(e) => return Err(anyhow!("read {path}: {e}")),
    };
    let meta = BlockMeta::parse(&bytes, Path::new(&path))?;
    if meta.ulid != id {
        bail!("block {id}: {path} names block {}", meta.ulid);
    }
    Ok(meta)
}

/// Empties `dir` (as Thanos does with `--tmp.dir`) and creates it.
async fn reset_dir(dir: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow!("--tmp.dir {}: cannot empty it: {e}", dir.display()));
        }
        _ => {}
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| anyhow!("--tmp.dir {}: cannot create it: {e}", dir.display()))
}

/// Writes `<dir>/change.log` (creating `dir`); returns its path.
async fn write_change_log(dir: &Path, changes: &[String]) -> anyhow::Result<PathBuf> {
    let path = dir.join(CHANGE_LOG_FILENAME);
    let mut text = String::new();
    for line in changes {
        text.push_str(line);
        text.push('\n');
    }
    let io = |e: std::io::Error| anyhow!("{}: {e}", path.display());
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    tokio::fs::write(&path, text).await.map_err(io)?;
    Ok(path)
}

//! `compactd tools bucket upload-blocks`: uploads the block directories of a local path (a
//! Prometheus data directory, say) to the bucket, as Thanos' shipper does for
//! `thanos tools bucket upload-blocks`, under the bucket's fence.
//!
//! Every directory whose name is a ULID is a block; each is validated first (meta.json
//! parses and names the directory's block, `index` and `chunks/` exist) and any invalid one
//! fails the command before anything is uploaded, naming the directory. Blocks are then
//! taken oldest minTime first: an empty block (no samples) is skipped, a compacted one (level
//! above 1) is skipped unless `--shipper.upload-compacted` (and then refused if it overlaps a
//! block of the bucket with the same external labels), one whose meta.json is in the bucket is
//! skipped. The others get the `--label` external labels (over their own), `thanos.source`
//! `bucket.upload`, `thanos.files`, `thanos.segment_files` and the upload time; their `chunks/*`
//! and `index` are uploaded, then the meta.json is committed under the fence
//! ([`ToolCommit::PutMeta`]). The shipper's local `thanos.shipper.json` is neither read nor
//! written: the bucket says what is uploaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::bucket::layout::block_of;
use crate::core::plan::overlapping_blocks;
use crate::core::types::MetaState;
use crate::driver::store::StoreExecutor;
use crate::tools::fenced::{ToolCommit, ToolFence, ToolFenceOptions};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockFile, BlockMeta, ThanosMeta, META_FILENAME};

/// `thanos.source` of an uploaded block (Thanos' `metadata.BucketUploadSource`).
pub const SOURCE_BUCKET_UPLOAD: &str = "bucket.upload";

/// A valid local block.
#[derive(Clone, Debug)]
pub struct LocalBlock {
    /// Its directory.
    pub dir: PathBuf,
    /// Its meta.json.
    pub meta: BlockMeta,
}

/// Why a block was not uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// It has no samples.
    Empty,
    /// Its compaction level is above 1, without `--shipper.upload-compacted`.
    Compacted(u32),
    /// Its meta.json is in the bucket already.
    InBucket,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct UploadReport {
    /// Blocks uploaded, in order.
    pub uploaded: Vec<BlockId>,
    /// Blocks skipped, with the reason.
    pub skipped: Vec<(BlockId, Skipped)>,
}

/// How to upload.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    /// `--label`: external labels set on every uploaded block.
    pub labels: BTreeMap<String, String>,
    /// `--shipper.upload-compacted`: also blocks of level above 1.
    pub upload_compacted: bool,
    /// The fence options.
    pub fence: ToolFenceOptions,
}

/// Parses one `--label` as Thanos: `name="value"` (a Go-quoted value), or `name=value`.
pub fn parse_flag_label(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("--label {s:?}: expected name=\"value\""))?;
    if name.is_empty() {
        return Err(format!("--label {s:?}: empty label name"));
    }
    let value = if let Some(raw) = value.strip_prefix('`').and_then(|v| v.strip_suffix('`')) {
        raw.to_string()
    } else if value.starts_with('"') {
        serde_json::from_str::<String>(value)
            .map_err(|e| format!("--label {s:?}: unquote label value: {e}"))?
    } else {
        value.to_string()
    };
    Ok((name.to_string(), value))
}

/// Reads and validates every block directory under `path`, oldest minTime first. Fails with
/// every invalid directory named.
pub fn scan_blocks(path: &Path) -> anyhow::Result<Vec<LocalBlock>> {
    let entries = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("unable to access path '{}': {e}", path.display()))?;
    let mut blocks = Vec::new();
    let mut invalid = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !BlockId::is_block_name(&name) || !entry.path().is_dir() {
            continue;
        }
        match validate(&entry.path(), &name) {
            Ok(meta) => blocks.push(LocalBlock {
                dir: entry.path(),
                meta,
            }),
            Err(why) => invalid.push(format!("block directory {}: {why}", entry.path().display())),
        }
    }
    if !invalid.is_empty() {
        invalid.sort();
        anyhow::bail!(
            "{} invalid block(s):\n{}",
            invalid.len(),
            invalid.join("\n")
        );
    }
    blocks.sort_by_key(|b| (b.meta.min_time, b.meta.ulid));
    Ok(blocks)
}

/// The meta of the block in `dir` (named `name`), if the block can be uploaded.
fn validate(dir: &Path, name: &str) -> Result<BlockMeta, String> {
    let meta = BlockMeta::read_dir(dir).map_err(|e| e.to_string())?;
    if meta.ulid.to_string() != name {
        return Err(format!("{META_FILENAME} names block {}", meta.ulid));
    }
    if !dir.join("index").is_file() {
        return Err("no index file".into());
    }
    if !dir.join("chunks").is_dir() {
        return Err("no chunks/ directory".into());
    }
    Ok(meta)
}

/// The meta.json uploaded for `meta`: the external labels added (over the block's own), the
/// upload's source, files (with meta.json, sorted) and segment files, and time.
pub fn upload_meta(
    meta: &BlockMeta,
    labels: &BTreeMap<String, String>,
    mut files: Vec<BlockFile>,
    now_ms: i64,
) -> BlockMeta {
    let mut meta = meta.clone();
    files.push(BlockFile {
        rel_path: META_FILENAME.to_string(),
        size_bytes: 0,
        hash: None,
    });
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let thanos = meta.thanos.get_or_insert_with(|| ThanosMeta {
        version: 1,
        ..ThanosMeta::default()
    });
    thanos.version = 1;
    thanos
        .labels
        .extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    thanos.source = SOURCE_BUCKET_UPLOAD.to_string();
    thanos.segment_files = files
        .iter()
        .filter_map(|f| f.rel_path.strip_prefix("chunks/").map(str::to_string))
        .collect();
    thanos.files = files;
    thanos.upload_time = crate::timefmt::format_rfc3339_ms(now_ms);
    meta
}

/// What to do with each scanned block: upload it, or skip it and why.
pub fn triage(
    blocks: Vec<LocalBlock>,
    in_bucket: &BTreeSet<BlockId>,
    upload_compacted: bool,
) -> (Vec<LocalBlock>, Vec<(BlockId, Skipped)>) {
    let mut upload = Vec::new();
    let mut skipped = Vec::new();
    for b in blocks {
        let id = b.meta.ulid;
        if b.meta.stats.num_samples == 0 {
            skipped.push((id, Skipped::Empty));
        } else if b.meta.compaction.level > 1 && !upload_compacted {
            skipped.push((id, Skipped::Compacted(b.meta.compaction.level)));
        } else if in_bucket.contains(&id) {
            skipped.push((id, Skipped::InBucket));
        } else {
            upload.push(b);
        }
    }
    (upload, skipped)
}

/// Uploads the blocks under `path` that the bucket lacks (see the module doc).
pub async fn upload_blocks(
    exec: &StoreExecutor,
    path: &Path,
    settings: &UploadSettings,
) -> anyhow::Result<UploadReport> {
    let blocks = scan_blocks(path)?;
    let listing = exec.list_objects(None).await?;
    let in_bucket: BTreeSet<BlockId> = listing
        .iter()
        .filter(|o| o.location.filename() == Some(META_FILENAME))
        .filter_map(|o| block_of(o.location.as_ref()))
        .collect();
    let (todo, skipped) = triage(blocks, &in_bucket, settings.upload_compacted);
    let mut report = UploadReport {
        uploaded: Vec::new(),
        skipped,
    };
    if todo.is_empty() {
        return Ok(report);
    }
    let now_ms = crate::tools::now_unix_ms();
    let metas: Vec<BlockMeta> = todo
        .iter()
        .map(|b| upload_meta(&b.meta, &settings.labels, Vec::new(), now_ms))
        .collect();
    if todo.iter().any(|b| b.meta.compaction.level > 1) {
        check_overlaps(exec, &metas).await?;
    }
    let mut fence = ToolFence::acquire(exec, settings.fence.clone()).await?;
    let mut result = Ok(());
    for b in &todo {
        if let Err(e) = upload_one(exec, &mut fence, b, &settings.labels).await {
            result = Err(e.context(format!(
                "upload block directory {} ({} blocks uploaded before)",
                b.dir.display(),
                report.uploaded.len()
            )));
            break;
        }
        report.uploaded.push(b.meta.ulid);
    }
    let released = fence.release(exec).await;
    result?;
    released?;
    Ok(report)
}

/// Uploads one block: `chunks/*` and `index`, then its meta.json under the fence.
async fn upload_one(
    exec: &StoreExecutor,
    fence: &mut ToolFence,
    block: &LocalBlock,
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for (file, size) in crate::driver::jobs::local_block_files(&block.dir)
        .await
        .map_err(anyhow::Error::msg)?
    {
        let rel = file.strip_prefix(&block.dir).unwrap_or(&file);
        files.push(BlockFile {
            rel_path: rel.to_string_lossy().into_owned(),
            size_bytes: size as i64,
            hash: None,
        });
    }
    let meta = upload_meta(&block.meta, labels, files, crate::tools::now_unix_ms());
    exec.upload_files(meta.ulid, &block.dir).await?;
    fence
        .commit(exec, ToolCommit::PutMeta(Box::new(meta)))
        .await?;
    Ok(())
}

/// Refuses compacted uploads that overlap a block of the bucket with the same external
/// labels (Thanos' shipper refuses to ship them).
async fn check_overlaps(exec: &StoreExecutor, uploads: &[BlockMeta]) -> anyhow::Result<()> {
    let sync = exec.sync().await?;
    let existing: Vec<BlockMeta> = sync
        .blocks
        .into_values()
        .filter_map(|b| match b.meta {
            MetaState::Ok(m) => Some(*m),
            MetaState::Missing | MetaState::Corrupt(_) => None,
        })
        .collect();
    for new in uploads.iter().filter(|m| m.compaction.level > 1) {
        let labels = new.thanos.as_ref().map(|t| &t.labels);
        let mut same: Vec<&BlockMeta> = existing
            .iter()
            .filter(|m| m.thanos.as_ref().map(|t| &t.labels) == labels)
            .collect();
        same.push(new);
        if let Some(set) = overlapping_blocks(&same)
            .into_iter()
            .find(|set| set.contains(&new.ulid))
        {
            let ids: Vec<String> = set.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "compacted block {} overlaps blocks of the bucket with the same external \
                 labels: [{}]; not uploading",
                new.ulid,
                ids.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_as_thanos_with_bare_values_too() {
        let p = |s: &str| parse_flag_label(s);
        assert_eq!(
            p(r#"cluster="eu-1""#),
            Ok(("cluster".into(), "eu-1".into()))
        );
        assert_eq!(p(r#"a="x=\"y\"""#), Ok(("a".into(), "x=\"y\"".into())));
        assert_eq!(p("a=`raw`"), Ok(("a".into(), "raw".into())));
        assert_eq!(p("env=prod"), Ok(("env".into(), "prod".into())));
        assert!(p("noequals").unwrap_err().contains("expected name"));
        assert!(p("=x").unwrap_err().contains("empty label name"));
        assert!(p(r#"a="open"#).unwrap_err().contains("unquote"));
    }

    fn block(n: u128, samples: u64, level: u32) -> LocalBlock {
        let mut meta = BlockMeta::level1(BlockId::from_parts(1_735_689_600_000, n), 0, 7_200_000);
        meta.stats.num_samples = samples;
        meta.compaction.level = level;
        LocalBlock {
            dir: PathBuf::from(meta.ulid.to_string()),
            meta,
        }
    }

    #[test]
    fn triage_skips_empty_compacted_and_uploaded_blocks() {
        let blocks = vec![
            block(1, 10, 1),
            block(2, 0, 1),
            block(3, 10, 2),
            block(4, 10, 1),
        ];
        let id = |b: &LocalBlock| b.meta.ulid;
        let in_bucket: BTreeSet<BlockId> = [id(&blocks[3])].into();
        let (up, skipped) = triage(blocks.clone(), &in_bucket, false);
        assert_eq!(up.iter().map(id).collect::<Vec<_>>(), [id(&blocks[0])]);
        assert_eq!(
            skipped,
            [
                (id(&blocks[1]), Skipped::Empty),
                (id(&blocks[2]), Skipped::Compacted(2)),
                (id(&blocks[3]), Skipped::InBucket)
            ]
        );
        let (up, _) = triage(blocks.clone(), &in_bucket, true);
        assert_eq!(
            up.iter().map(id).collect::<Vec<_>>(),
            [id(&blocks[0]), id(&blocks[2])]
        );
    }

    #[test]
    fn upload_meta_adds_labels_source_files_and_time() {
        let mut b = block(1, 10, 1);
        b.meta.thanos = Some(ThanosMeta {
            labels: [
                ("cluster".to_string(), "old".to_string()),
                ("a".into(), "1".into()),
            ]
            .into(),
            ..ThanosMeta::default()
        });
        let labels = [("cluster".to_string(), "eu-1".to_string())].into();
        let file = |p: &str, s: i64| BlockFile {
            rel_path: p.into(),
            size_bytes: s,
            hash: None,
        };
        let files = vec![file("index", 9), file("chunks/000001", 5)];
        let m = upload_meta(&b.meta, &labels, files, 1_735_689_600_000);
        let t = m.thanos.expect("a thanos section");
        assert_eq!(t.labels["cluster"], "eu-1");
        assert_eq!(t.labels["a"], "1");
        assert_eq!(t.source, SOURCE_BUCKET_UPLOAD);
        assert_eq!(t.segment_files, ["000001"]);
        let paths: Vec<&str> = t.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(paths, ["chunks/000001", "index", "meta.json"]);
        assert_eq!(t.upload_time, "2025-01-01T00:00:00Z");
        // A Prometheus block without a thanos section gets one.
        let m = upload_meta(&block(2, 1, 1).meta, &labels, Vec::new(), 0);
        assert_eq!(m.thanos.expect("added").labels, labels);
    }
}

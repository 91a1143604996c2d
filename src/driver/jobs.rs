//! Compaction jobs: download the input blocks into `--data-dir` (a cache: safe to delete at
//! any time), compact them with the block engine off the async threads, and describe the
//! result for upload. Layout of the cache: `<data-dir>/compact/<group>/<job output>/<ULID>/`.
//!
//! Each input's local meta.json is replaced by the meta the core planned with (replica labels
//! removed), so the engine merges the metas of one stream exactly as the core sees them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::store::Transfers;
use crate::bucket::layout::is_block_data;
use crate::core::types::{CompactJob, CompactedBlock, JobError, JobKind};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::compact::{compact_blocks, CompactOptions};
use crate::tsdb::downsample::downsample_block_with;
use crate::tsdb::index::ReadOptions;
use crate::tsdb::meta::{BlockFile, BlockMeta, META_FILENAME};
use crate::tsdb::TsdbError;

/// The local working directory of one job: `<data-dir>/compact/<group>/<output ULID>/`, holding
/// its downloaded inputs and its output block. One directory per job, so a job abandoned by
/// an earlier iteration never shares files with a later one.
pub fn job_dir(data_dir: &Path, group: &str, output: BlockId) -> PathBuf {
    data_dir
        .join("compact")
        .join(group)
        .join(output.to_string())
}

/// What a job of the download path needs on `--data-dir`: its inputs (the sizes their metas
/// list, or the bucket's listing) and as much again for the output, as Thanos' sizing
/// guidance assumes. Refused up front, before anything is downloaded, when the file system
/// has less free space: the error names both figures.
pub async fn check_disk(
    store: &Arc<dyn ObjectStore>,
    data_dir: &Path,
    job: &CompactJob,
) -> Result<(), JobError> {
    let mut inputs = 0u64;
    for meta in &job.inputs {
        inputs += block_bytes(store, meta).await?;
    }
    let needed = inputs.saturating_mul(2);
    let free = free_bytes(data_dir).map_err(|e| {
        JobError::io(format!(
            "--data-dir {}: free space: {e}",
            data_dir.display()
        ))
    })?;
    if needed > free {
        return Err(JobError::io(format!(
            "insufficient disk: job for block {} needs {needed} bytes in --data-dir {} ({inputs} bytes of inputs and as much for the output), {free} bytes are free; free space, or stream the job (without --compact.download-blocks)",
            job.output,
            data_dir.display()
        )));
    }
    Ok(())
}

/// The bytes of a block's `index` and `chunks/*`: from its meta's `thanos.files`, else listed.
async fn block_bytes(store: &Arc<dyn ObjectStore>, meta: &BlockMeta) -> Result<u64, JobError> {
    let listed_in_meta = meta
        .thanos
        .as_ref()
        .map(|t| &t.files)
        .filter(|f| !f.is_empty());
    if let Some(files) = listed_in_meta {
        return Ok(files
            .iter()
            .filter(|f| is_block_data(&f.rel_path))
            .map(|f| f.size_bytes.max(0) as u64)
            .sum());
    }
    let files = block_data_objects(store, meta.ulid)
        .await
        .map_err(JobError::io)?;
    Ok(files.iter().map(|(_, size)| size).sum())
}

/// The block data objects (`index`, `chunks/*`) of block `id` in `store`, from one listing:
/// each one's path relative to the block and its size.
pub async fn block_data_objects(
    store: &Arc<dyn ObjectStore>,
    id: BlockId,
) -> Result<Vec<(String, u64)>, String> {
    let prefix = ObjectPath::from(id.to_string());
    let objects: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| format!("list {prefix}: {e}"))?;
    Ok(objects
        .into_iter()
        .filter_map(|o| {
            let rel = o.location.as_ref().strip_prefix(&format!("{prefix}/"))?;
            is_block_data(rel).then(|| (rel.to_string(), o.size))
        })
        .collect())
}

/// Free bytes for an unprivileged writer on the file system of `dir` (or of its nearest
/// existing ancestor: `--data-dir` is made on first use).
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(dir);
    let path = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stat` is written by statvfs before it is read.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // u64 here; narrower on 32-bit targets.
    let (blocks, size) = (stat.f_bavail as u64, stat.f_frsize as u64);
    Ok(blocks.saturating_mul(size))
}

/// Runs a compaction or downsampling job; returns the new block (`None` if it has no
/// samples).
pub async fn run_job(
    store: Arc<dyn ObjectStore>,
    data_dir: PathBuf,
    job: CompactJob,
    opts: CompactOptions,
    transfers: Transfers,
    hash: HashFunc,
) -> Result<Option<CompactedBlock>, JobError> {
    let dir = job_dir(&data_dir, &job.group, job.output);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| JobError::io(format!("{}: {e}", dir.display())))?;
    // `--compact.blocks-fetch-concurrency` inputs at once, kept in plan order.
    // Owned per download: borrowed futures here would not be `Send` for every lifetime.
    let inputs: Vec<PathBuf> = futures::stream::iter(job.inputs.clone())
        .map(|meta| {
            let (store, dir) = (Arc::clone(&store), dir.clone());
            async move { download_block(&store, &dir, &meta, transfers.block_files).await }
        })
        .buffered(transfers.blocks_fetch.max(1))
        .try_collect()
        .await?;
    let output = job.output;
    let out_dir = dir.clone();
    let input_dirs = inputs.clone();
    let kind = job.kind;
    let read = ReadOptions {
        accept_unsorted_label_names: opts.accept_malformed_index,
    };
    let result = tokio::task::spawn_blocking(move || match kind {
        JobKind::Downsample { resolution_ms } => match input_dirs.first() {
            Some(input) => downsample_block_with(input, &out_dir, output, resolution_ms, read),
            None => Err(crate::tsdb::TsdbError::Unsupported(
                "a downsampling job needs one input block".into(),
            )),
        },
        JobKind::Compact => compact_blocks(&input_dirs, &out_dir, output, &opts),
    })
    .await
    .map_err(|e| JobError::bad_input(format!("compaction task: {e}")))?;
    let compacted = result.map_err(job_error)?;
    for input in &inputs {
        let _ = tokio::fs::remove_dir_all(input).await;
    }
    let Some(compacted) = compacted else {
        return Ok(None);
    };
    let files = block_files(&compacted.dir, hash)
        .await
        .map_err(JobError::io)?;
    Ok(Some(CompactedBlock {
        meta: compacted.meta,
        files,
    }))
}

/// The local directory of a job's output block.
pub fn output_dir(data_dir: &Path, group: &str, id: BlockId) -> PathBuf {
    job_dir(data_dir, group, id).join(id.to_string())
}

/// The job failure for an error of the block engine: local I/O is retried; an input with
/// out-of-order chunks is named for the core (which may no-compact-mark it); anything else
/// (bad input, a failed merge) halts, as in Thanos.
pub fn job_error(e: TsdbError) -> JobError {
    match e {
        TsdbError::Io { .. } => JobError::io(e.to_string()),
        TsdbError::OutOfOrderChunks { block, .. } => {
            JobError::out_of_order_chunks(block, e.to_string())
        }
        other => JobError::bad_input(other.to_string()),
    }
}

/// Downloads `<id>/` into `<dir>/<id>/` (with a `chunks/` dir, empty for an empty block) unless
/// a complete copy is there (meta.json is written last, so its presence means complete), then
/// writes the planned meta over the local one.
pub async fn download_block(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    meta: &BlockMeta,
    files_at_once: usize,
) -> Result<PathBuf, JobError> {
    let local = dir.join(meta.ulid.to_string());
    if !local.join(META_FILENAME).is_file() {
        let _ = tokio::fs::remove_dir_all(&local).await;
        let wanted: Vec<(ObjectPath, PathBuf)> = block_data_objects(store, meta.ulid)
            .await
            .map_err(JobError::io)?
            .into_iter()
            .map(|(rel, _)| {
                let from = ObjectPath::from(format!("{}/{rel}", meta.ulid));
                (from, local.join(&rel))
            })
            .collect();
        // `--block-files-concurrency` files at once.
        futures::stream::iter(wanted)
            .map(|(from, to)| {
                let store = Arc::clone(store);
                async move { download_object(&store, &from, &to).await }
            })
            .buffer_unordered(files_at_once.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        // An empty block has no chunk segment, and a bucket has no empty directories: create
        // `chunks/` as Thanos' `block.Download` does, or the block cannot be opened.
        let chunks = local.join("chunks");
        tokio::fs::create_dir_all(&chunks)
            .await
            .map_err(|e| JobError::io(format!("{}: {e}", chunks.display())))?;
    }
    let local_meta = local.clone();
    let meta = meta.clone();
    tokio::task::spawn_blocking(move || meta.write_dir(&local_meta))
        .await
        .map_err(|e| JobError::io(format!("write meta: {e}")))?
        .map_err(|e| JobError::io(e.to_string()))?;
    Ok(local)
}

async fn download_object(
    store: &Arc<dyn ObjectStore>,
    from: &ObjectPath,
    to: &Path,
) -> Result<(), JobError> {
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| JobError::io(format!("{}: {e}", parent.display())))?;
    }
    let tmp = to.with_extension("download");
    let result = store
        .get(from)
        .await
        .map_err(|e| JobError::io(format!("download {from}: {e}")))?;
    let mut stream = result.into_stream();
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| JobError::io(format!("{}: {e}", tmp.display())))?;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| JobError::io(format!("download {from}: {e}")))?
    {
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|e| JobError::io(format!("{}: {e}", tmp.display())))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| JobError::io(format!("{}: {e}", tmp.display())))?;
    drop(file);
    tokio::fs::rename(&tmp, to)
        .await
        .map_err(|e| JobError::io(format!("{}: {e}", to.display())))
}

/// The files of a local block to upload: `chunks/*` in order, then `index`, with sizes.
pub async fn local_block_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>, String> {
    let mut files = Vec::new();
    let chunks = dir.join("chunks");
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut entries = tokio::fs::read_dir(&chunks)
        .await
        .map_err(|e| io(&chunks, e))?;
    while let Some(e) = entries.next_entry().await.map_err(|e| io(&chunks, e))? {
        let size = e.metadata().await.map_err(|err| io(&e.path(), err))?.len();
        files.push((e.path(), size));
    }
    files.sort();
    let index = dir.join("index");
    let size = tokio::fs::metadata(&index)
        .await
        .map_err(|e| io(&index, e))?
        .len();
    files.push((index, size));
    Ok(files)
}

/// `--hash-func`: the hash of each file Thanos records in `thanos.files` (`hashFunc`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashFunc {
    /// No hashes (Thanos' default, `""`).
    #[default]
    None,
    /// `SHA256`: `{"hashFunc": "SHA256", "value": "<hex>"}` per file.
    Sha256,
}

impl HashFunc {
    /// Parses a `--hash-func` value: `""` or `SHA256`, as Thanos.
    pub fn parse(s: &str) -> Result<HashFunc, String> {
        match s {
            "" => Ok(HashFunc::None),
            "SHA256" => Ok(HashFunc::Sha256),
            other => Err(format!("{other:?}: must be \"\" or SHA256")),
        }
    }
}

/// `chunks/*` and `index` of a local block as `thanos.files` entries, sorted by path, each
/// with its hash when `hash` asks for one.
pub async fn block_files(dir: &Path, hash: HashFunc) -> Result<Vec<BlockFile>, String> {
    let mut files = Vec::new();
    for (path, size) in local_block_files(dir).await? {
        let hash = match hash {
            HashFunc::None => None,
            HashFunc::Sha256 => {
                let file = path.clone();
                let hex = tokio::task::spawn_blocking(move || sha256_file(&file))
                    .await
                    .map_err(|e| format!("hash task: {e}"))?
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(serde_json::json!({ "hashFunc": "SHA256", "value": hex }))
            }
        };
        files.push(BlockFile {
            rel_path: path.strip_prefix(dir).map_or_else(
                |_| path.display().to_string(),
                |r| r.to_string_lossy().into_owned(),
            ),
            size_bytes: size as i64,
            hash,
        });
    }
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(files)
}

/// The SHA-256 of a file's bytes, in lowercase hex (Go's `hex.EncodeToString`).
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    let digest = ctx.finish();
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{JobErrorKind, JobId};

    /// A meta whose `thanos.files` lists one chunk segment of `chunk_bytes`.
    fn meta_with_files(id: BlockId, chunk_bytes: u64) -> BlockMeta {
        let json = format!(
            r#"{{"ulid":"{id}","minTime":0,"maxTime":7200000,"stats":{{}},"version":1,
            "compaction":{{"level":1,"sources":["{id}"]}},
            "thanos":{{"labels":{{"a":"1"}},"downsample":{{"resolution":0}},"source":"sidecar",
            "files":[{{"rel_path":"chunks/000001","size_bytes":{chunk_bytes}}},
                     {{"rel_path":"index","size_bytes":1000}},
                     {{"rel_path":"meta.json"}}]}}}}"#
        );
        BlockMeta::parse(json.as_bytes(), Path::new("meta.json")).unwrap()
    }

    fn job(chunk_bytes: u64) -> CompactJob {
        let id = BlockId::from_parts(1_735_689_600_000, 1);
        CompactJob {
            job: JobId(1),
            group: "0@1".into(),
            inputs: vec![meta_with_files(id, chunk_bytes)],
            output: BlockId::from_parts(1_735_689_600_000, 2),
            kind: JobKind::Compact,
        }
    }

    /// A job that needs more than the file system has free is refused before any download,
    /// naming the bytes it needs and the bytes free; one that fits passes.
    #[tokio::test]
    async fn a_job_larger_than_the_free_disk_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let data_dir = dir.path().join("data");
        let free = free_bytes(&data_dir).unwrap();
        let too_big = job(free);
        let err = check_disk(&store, &data_dir, &too_big).await.unwrap_err();
        assert_eq!(err.kind, JobErrorKind::Io);
        let needed = (free + 1000) * 2;
        assert!(
            err.message.contains(&format!("needs {needed} bytes"))
                && err.message.contains("bytes are free"),
            "{}",
            err.message
        );
        assert!(!data_dir.exists(), "nothing was written");
        check_disk(&store, &data_dir, &job(1000)).await.unwrap();
    }
}

//! Executes the core's store requests on an `object_store` bucket, in Thanos' object order:
//! a block's files are uploaded before its meta.json, meta.json is deleted first and the
//! deletion mark last, markers and metas are created only if absent (never overwritten).
//!
//! Every single object mutation passes through [`StoreExecutor::mutation_point`], where the
//! test hook `COMPACTD_TEST_CRASH_BEFORE_MUTATION=N` aborts the process right before the N-th
//! object mutation: the crash-safety tests use it to stop the compactor at every step.

mod copy;
mod fence;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

use crate::bucket::layout::{block_prefix, listed_blocks, marker_path, meta_path, ListedBlock};
use crate::bucket::markers::{
    encode_marker, encode_stamped_marker, parse_marker, DeletionMark, Marker, NoCompactMark,
    NoDownsampleMark, DELETION_MARK_FILENAME,
};
use crate::core::types::{MetaState, Millis, StoreError, StoreErrorKind, SyncResult, SyncedBlock};
use crate::metrics::{BucketOp, Metrics, OpOutcome};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// Objects fetched at once during a sync (Thanos' `--block-meta-fetch-concurrency` default).
pub const META_FETCH_CONCURRENCY: usize = 32;

/// How many transfers run at once (Thanos' flags of the same meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfers {
    /// `--block-meta-fetch-concurrency`: metas and markers fetched at once during a sync.
    pub meta_fetch: usize,
    /// `--compact.blocks-fetch-concurrency`: input blocks of a job downloaded at once.
    pub blocks_fetch: usize,
    /// `--block-files-concurrency`: files of one block downloaded or uploaded at once.
    pub block_files: usize,
}

impl Default for Transfers {
    /// Thanos' defaults: 32, 1 and 1.
    fn default() -> Transfers {
        Transfers {
            meta_fetch: META_FETCH_CONCURRENCY,
            blocks_fetch: 1,
            block_files: 1,
        }
    }
}
/// Files above this size are uploaded in parts.
const MULTIPART_THRESHOLD_BYTES: u64 = 64 << 20;
/// Part size of multipart uploads.
const PART_BYTES: usize = 16 << 20;

/// Runs store operations against one bucket.
pub struct StoreExecutor {
    store: Arc<dyn ObjectStore>,
    metrics: Option<Arc<Metrics>>,
    /// Objects mutated so far (for the crash test hook).
    mutations: AtomicU64,
    crash_before: Option<u64>,
    /// Parsed metas by block id: meta.json is immutable, so it is fetched once.
    meta_cache: std::sync::Mutex<BTreeMap<BlockId, BlockMeta>>,
    /// The store supports `PutMode::Update` (If-Match): the fence CAS is atomic.
    conditional_update: bool,
    /// Transfers at once.
    transfers: Transfers,
    /// The writer stamped on markers (the node name, or a tool's holder name).
    writer: Option<String>,
}

pub use fence::CasOutcome;

impl StoreExecutor {
    /// An executor over `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        let crash_before = std::env::var("COMPACTD_TEST_CRASH_BEFORE_MUTATION")
            .ok()
            .and_then(|v| v.parse().ok());
        StoreExecutor {
            store,
            metrics: None,
            mutations: AtomicU64::new(0),
            crash_before,
            meta_cache: Default::default(),
            conditional_update: true,
            transfers: Transfers::default(),
            writer: None,
        }
    }

    /// Sets how many transfers run at once (each at least 1).
    pub fn with_transfers(mut self, transfers: Transfers) -> Self {
        self.transfers = Transfers {
            meta_fetch: transfers.meta_fetch.max(1),
            blocks_fetch: transfers.blocks_fetch.max(1),
            block_files: transfers.block_files.max(1),
        };
        self
    }

    /// How many transfers run at once.
    pub fn transfers(&self) -> Transfers {
        self.transfers
    }

    /// Declares whether the store supports conditional update (If-Match); without it the
    /// fence CAS compares, then overwrites.
    pub fn with_conditional_update(mut self, supported: bool) -> Self {
        self.conditional_update = supported;
        self
    }

    /// Stamps the markers this executor writes with `writer` (and the epoch of each write).
    pub fn with_writer(mut self, writer: impl Into<String>) -> Self {
        self.writer = Some(writer.into());
        self
    }

    /// Counts every object operation in `thanos_objstore_bucket_*`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Records one object operation; a missing or existing object is an expected outcome.
    pub(super) fn observe<T>(
        &self,
        op: BucketOp,
        started: std::time::Instant,
        result: &object_store::Result<T>,
    ) {
        let Some(m) = &self.metrics else { return };
        let outcome = match result {
            Ok(_) => OpOutcome::Success,
            Err(
                object_store::Error::NotFound { .. } | object_store::Error::AlreadyExists { .. },
            ) => OpOutcome::ExpectedFailure,
            Err(_) => OpOutcome::Failure,
        };
        m.bucket
            .observe(op, started.elapsed().as_secs_f64(), outcome);
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Called before every object mutation; the crash test hook lives here.
    pub(super) fn mutation_point(&self, what: &str) {
        let n = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crash_before == Some(n) {
            eprintln!("COMPACTD_TEST_CRASH_BEFORE_MUTATION={n}: aborting before {what}");
            std::process::abort();
        }
    }

    /// Lists every object and reads metas and markers: one recursive listing (Thanos'
    /// `recursive` discovery), then a GET per uncached meta.json and per marker present.
    pub async fn sync(&self) -> Result<SyncResult, StoreError> {
        let objects = self.list_all(None).await?;
        let listed = listed_blocks(
            objects
                .iter()
                .map(|o| (o.location.as_ref(), o.last_modified.timestamp_millis())),
        );
        let blocks = futures::stream::iter(listed)
            .map(|(id, l)| async move { self.sync_block(id, l).await.map(|b| (id, b)) })
            .buffer_unordered(self.transfers.meta_fetch)
            .try_collect::<BTreeMap<_, _>>()
            .await?;
        Ok(SyncResult { blocks })
    }

    async fn sync_block(&self, id: BlockId, l: ListedBlock) -> Result<SyncedBlock, StoreError> {
        let meta = if l.meta {
            self.read_meta(id).await?
        } else {
            MetaState::Missing
        };
        let mut problems = Vec::new();
        let deletion_mark = if l.deletion_mark {
            self.read_marker::<DeletionMark>(id, &mut problems).await?
        } else {
            None
        };
        let no_compact_mark = if l.no_compact_mark {
            self.read_marker::<NoCompactMark>(id, &mut problems).await?
        } else {
            None
        };
        let no_downsample_mark = if l.no_downsample_mark {
            self.read_marker::<NoDownsampleMark>(id, &mut problems)
                .await?
        } else {
            None
        };
        Ok(SyncedBlock {
            meta,
            deletion_mark,
            no_compact_mark,
            no_downsample_mark,
            marker_problems: problems,
            newest_modified: Millis(l.newest_modified),
        })
    }

    async fn read_meta(&self, id: BlockId) -> Result<MetaState, StoreError> {
        if let Some(m) = self.meta_cache.lock().expect("meta cache lock").get(&id) {
            return Ok(MetaState::Ok(Box::new(m.clone())));
        }
        let path = meta_path(id);
        let Some(bytes) = self.get_optional(&path).await? else {
            return Ok(MetaState::Missing);
        };
        match BlockMeta::parse(&bytes, Path::new(&path)) {
            Ok(m) if m.ulid == id => {
                self.meta_cache
                    .lock()
                    .expect("meta cache lock")
                    .insert(id, m.clone());
                Ok(MetaState::Ok(Box::new(m)))
            }
            Ok(m) => Ok(MetaState::Corrupt(format!(
                "{path}: names block {}, not {id}",
                m.ulid
            ))),
            Err(e) => Ok(MetaState::Corrupt(e.to_string())),
        }
    }

    async fn read_marker<M: Marker>(
        &self,
        id: BlockId,
        problems: &mut Vec<String>,
    ) -> Result<Option<M>, StoreError> {
        let path = marker_path(id, M::FILENAME);
        let Some(bytes) = self.get_optional(&path).await? else {
            return Ok(None);
        };
        match parse_marker::<M>(&bytes, &path, id) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                problems.push(format!("ignoring unreadable marker: {e}"));
                Ok(None)
            }
        }
    }

    /// Lists every object under `prefix` (the whole bucket for `None`).
    async fn list_all(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.store.list(prefix).try_collect::<Vec<_>>().await;
        self.observe(BucketOp::Iter, started, &result);
        result.map_err(|e| {
            object_error(
                format!("list {}", prefix.map_or("bucket", |p| p.as_ref())),
                &e,
            )
        })
    }

    async fn get_optional(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.store.get(&ObjectPath::from(path)).await;
        self.observe(BucketOp::Get, started, &result);
        match result {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|e| object_error(format!("read {path}"), &e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(object_error(format!("read {path}"), &e)),
        }
    }

    /// Uploads `chunks/*` (`--block-files-concurrency` at once), then `index`, of the block in
    /// `local` (meta.json is put separately, last).
    pub async fn upload_files(&self, id: BlockId, local: &Path) -> Result<(), StoreError> {
        let files = super::jobs::local_block_files(local)
            .await
            .map_err(StoreError::other)?;
        let mut paths = Vec::with_capacity(files.len());
        for (file, _) in files {
            let rel = file
                .strip_prefix(local)
                .map_err(|e| StoreError::other(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            paths.push((format!("{}/{rel}", block_prefix(id)), file));
        }
        // The index goes up after every chunk segment it points into.
        let (index, chunks): (Vec<_>, Vec<_>) = paths
            .into_iter()
            .partition(|(_, f)| !f.starts_with(local.join("chunks")));
        futures::stream::iter(chunks)
            .map(|(path, file)| async move { self.upload_file(&path, &file).await })
            .buffer_unordered(self.transfers.block_files)
            .try_collect::<Vec<()>>()
            .await?;
        for (path, file) in index {
            self.upload_file(&path, &file).await?;
        }
        Ok(())
    }

    async fn upload_file(&self, path: &str, file: &Path) -> Result<(), StoreError> {
        let size = tokio::fs::metadata(file)
            .await
            .map_err(|e| local_error(file, &e))?
            .len();
        self.mutation_point(path);
        let target = ObjectPath::from(path);
        if size <= MULTIPART_THRESHOLD_BYTES {
            let data = tokio::fs::read(file)
                .await
                .map_err(|e| local_error(file, &e))?;
            let started = std::time::Instant::now();
            let result = self.store.put(&target, PutPayload::from(data)).await;
            self.observe(BucketOp::Upload, started, &result);
            result.map_err(|e| object_error(format!("upload {path}"), &e))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&target)
            .await
            .map_err(|e| object_error(format!("upload {path}"), &e))?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut f = tokio::fs::File::open(file)
            .await
            .map_err(|e| local_error(file, &e))?;
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf)
                .await
                .map_err(|e| local_error(file, &e))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| object_error(format!("upload {path}"), &e))?;
            writer.write(&buf[..n]);
        }
        let started = std::time::Instant::now();
        let result = writer.finish().await;
        self.observe(BucketOp::Upload, started, &result);
        result.map_err(|e| object_error(format!("upload {path}"), &e))?;
        Ok(())
    }

    /// Creates `<id>/meta.json`. If it exists with the same content (a retried request that
    /// did land), that is success; different content is an error.
    pub async fn put_meta(&self, meta: &BlockMeta) -> Result<(), StoreError> {
        self.put_meta_json(meta.ulid, meta.to_json()).await?;
        self.meta_cache
            .lock()
            .expect("meta cache lock")
            .insert(meta.ulid, meta.clone());
        Ok(())
    }

    /// Creates `<id>/meta.json` with exactly `bytes` (a replica's meta, copied as it is); the
    /// same rules as [`Self::put_meta`].
    pub async fn put_meta_json(&self, id: BlockId, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = meta_path(id);
        match self.create(&path, bytes.clone()).await? {
            Created::Yes => Ok(()),
            Created::AlreadyExisted => match self.get_optional(&path).await? {
                Some(existing) if existing.as_ref() == bytes.as_slice() => Ok(()),
                _ => Err(StoreError::new(
                    StoreErrorKind::Precondition,
                    format!("{path} already exists with other content; refusing to overwrite"),
                )),
            },
        }
    }

    /// Creates `<id>/meta.json` of a block someone else uploaded, once every file the meta
    /// lists (`thanos.files`, else the index) is in the bucket with its size; a missing or
    /// short one is a precondition failure naming it, and nothing is written.
    pub async fn adopt_meta(&self, meta: &BlockMeta) -> Result<(), StoreError> {
        let id = meta.ulid;
        let prefix = ObjectPath::from(block_prefix(id));
        let listed: BTreeMap<String, u64> = self
            .list_all(Some(&prefix))
            .await?
            .into_iter()
            .map(|o| (o.location.to_string(), o.size))
            .collect();
        let mut wanted: Vec<(String, i64)> = meta
            .thanos
            .iter()
            .flat_map(|t| t.files.iter())
            .filter(|f| f.rel_path != crate::tsdb::meta::META_FILENAME)
            .map(|f| (f.rel_path.clone(), f.size_bytes))
            .collect();
        if wanted.is_empty() {
            wanted.push((crate::tsdb::block::INDEX_FILENAME.to_string(), 0));
        }
        for (rel, size) in wanted {
            let path = format!("{id}/{rel}");
            match listed.get(&path) {
                None => {
                    return Err(StoreError::new(
                        StoreErrorKind::Precondition,
                        format!("block {id}: {rel} is not in the bucket; refusing its meta.json"),
                    ))
                }
                Some(got) if size > 0 && *got != size as u64 => {
                    return Err(StoreError::new(
                        StoreErrorKind::Precondition,
                        format!(
                            "block {id}: {rel} is {got} bytes, meta.json says {size}; refusing \
                             its meta.json"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        self.put_meta(meta).await
    }

    /// Creates a marker unless one is already there (Thanos never overwrites markers).
    pub async fn put_marker<M: Marker>(&self, m: &M) -> Result<bool, StoreError> {
        let path = marker_path(m.block(), M::FILENAME);
        Ok(matches!(
            self.create(&path, encode_marker(m)).await?,
            Created::Yes
        ))
    }

    /// [`StoreExecutor::put_marker`], the marker stamped with `epoch` and this executor's
    /// writer ([`StoreExecutor::with_writer`]; unstamped without one).
    pub async fn put_stamped_marker<M: Marker>(
        &self,
        m: &M,
        epoch: u64,
    ) -> Result<bool, StoreError> {
        let path = marker_path(m.block(), M::FILENAME);
        let stamp = self.writer.as_deref().map(|w| (epoch, w));
        let bytes = encode_stamped_marker(m, stamp);
        Ok(matches!(self.create(&path, bytes).await?, Created::Yes))
    }

    async fn create(&self, path: &str, bytes: Vec<u8>) -> Result<Created, StoreError> {
        self.mutation_point(path);
        let opts = object_store::PutOptions::from(PutMode::Create);
        let started = std::time::Instant::now();
        let result = self
            .store
            .put_opts(&ObjectPath::from(path), PutPayload::from(bytes), opts)
            .await;
        self.observe(BucketOp::Upload, started, &result);
        match result {
            Ok(_) => Ok(Created::Yes),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyExisted),
            Err(e) => Err(object_error(format!("create {path}"), &e)),
        }
    }

    /// Deletes a block in Thanos' order: meta.json first (the block becomes partial), every
    /// other object but the deletion mark, then the deletion mark.
    pub async fn delete_block(&self, id: BlockId) -> Result<(), StoreError> {
        self.delete_object(&meta_path(id)).await?;
        self.meta_cache.lock().expect("meta cache lock").remove(&id);
        let prefix = ObjectPath::from(block_prefix(id));
        let objects = self.list_all(Some(&prefix)).await?;
        let mark = marker_path(id, DELETION_MARK_FILENAME);
        for o in objects.iter().filter(|o| o.location.as_ref() != mark) {
            self.delete_object(o.location.as_ref()).await?;
        }
        self.delete_object(&mark).await
    }

    /// Deletes one object (an absent one is no error).
    pub async fn delete_object(&self, path: &str) -> Result<(), StoreError> {
        self.mutation_point(path);
        let started = std::time::Instant::now();
        let result = self.store.delete(&ObjectPath::from(path)).await;
        self.observe(BucketOp::Delete, started, &result);
        match result {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(object_error(format!("delete {path}"), &e)),
        }
    }
}

/// Whether a create-only put created the object.
enum Created {
    Yes,
    AlreadyExisted,
}

/// Runs `fut` with a deadline; a timeout is an error naming `what`.
pub async fn with_timeout<T>(
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::timeout(format!(
            "{what}: timed out after {timeout:?}"
        ))),
    }
}

/// The failure for error `e` of the object store in `context` (`read <path>`, ...): a missing
/// object, a failed precondition, or another failure.
pub(super) fn object_error(context: String, e: &object_store::Error) -> StoreError {
    let kind = match e {
        object_store::Error::NotFound { .. } => StoreErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            StoreErrorKind::Precondition
        }
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, format!("{context}: {e}"))
}

/// The failure for error `e` on the local `file` (a compacted block's, to upload).
fn local_error(file: &Path, e: &std::io::Error) -> StoreError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => StoreErrorKind::NotFound,
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, format!("{}: {e}", file.display()))
}

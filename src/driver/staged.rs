//! A new block's files written to the bucket while the engine produces them, staged: each
//! file larger than a part goes up as a multipart upload whose parts are sent as they fill,
//! and is completed only by the job's upload step (`UploadFiles`, under the write permit, in
//! the order of today's upload: chunk segments, then the index); a smaller file waits in
//! memory for that step and is then PUT. Until then nothing of the block is visible in the
//! bucket: an incomplete multipart upload is no object.
//!
//! Every staged upload that is not completed is aborted: when its file fails, when the job
//! fails or writes no block, when the upload step fails or its permit lapses, and when an
//! iteration ends with staged blocks nobody uploads. A crash leaves incomplete uploads only a
//! bucket lifecycle rule removes (`docs/operations.md`).
//!
//! Parts have one fixed size, [`PART_BYTES`]: S3 and GCS want every part but the last at
//! least 5 MiB, R2 wants them equal, Azure takes any; 8 MiB parts allow objects up to 78 GiB
//! (10,000 parts), past Prometheus' 64 GiB index limit. Memory per file being written: the
//! part being filled and [`PARTS_IN_FLIGHT`] parts being sent.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::jobs::HashFunc;
use super::store::{object_error, StoreExecutor};
use crate::core::types::StoreError;
use crate::metrics::BucketOp;
use crate::tsdb::block::CHUNKS_DIRNAME;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::files::{BlockOutput, OutputFile};
use crate::tsdb::meta::BlockFile;
use crate::tsdb::{Result, TsdbError};

/// Size of every part but a file's last.
pub const PART_BYTES: usize = 8 << 20;
/// Parts of one file sent at once while the next fills.
pub const PARTS_IN_FLIGHT: usize = 2;

/// A multipart upload that is aborted unless completed.
struct PendingUpload {
    upload: Option<Box<dyn MultipartUpload>>,
    handle: Handle,
}

impl PendingUpload {
    async fn complete(mut self) -> object_store::Result<()> {
        let mut upload = self.upload.take().expect("completed once");
        upload.complete().await.map(|_| ())
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            self.handle.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, "could not abort a multipart upload; a bucket lifecycle rule removes it");
                }
            });
        }
    }
}

/// How a staged file reaches the bucket.
enum Body {
    /// Small: PUT at the upload step.
    Whole(Vec<u8>),
    /// Every part sent: completed at the upload step.
    Parts(PendingUpload),
}

/// One finished file of a staged block.
struct StagedFile {
    /// Relative to the block: `index`, `chunks/000001`.
    rel: String,
    size: u64,
    /// `thanos.files` hash, when `--hash-func` asks for one.
    hash: Option<String>,
    body: Body,
}

/// The files of a block the engine finished, waiting for the job's upload step.
pub struct StagedBlock {
    id: BlockId,
    files: Vec<StagedFile>,
}

impl StagedBlock {
    /// The files as `thanos.files` entries (sorted by path), for the block's meta.
    pub fn block_files(&self) -> Vec<BlockFile> {
        let mut files: Vec<BlockFile> = self
            .files
            .iter()
            .map(|f| BlockFile {
                rel_path: f.rel.clone(),
                size_bytes: f.size as i64,
                hash: f
                    .hash
                    .as_ref()
                    .map(|hex| serde_json::json!({ "hashFunc": "SHA256", "value": hex })),
            })
            .collect();
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        files
    }

    /// Makes the files objects: chunk segments (`--block-files-concurrency` at a time), then
    /// the index, which points into them; each one counted and passed through the crash
    /// test hook as the download path's uploads are. Uploads not completed when this fails or
    /// is dropped are aborted.
    pub async fn commit(self, exec: &StoreExecutor) -> std::result::Result<(), StoreError> {
        let id = self.id;
        let (chunks, index): (Vec<_>, Vec<_>) = self
            .files
            .into_iter()
            .partition(|f| f.rel.starts_with(CHUNKS_DIRNAME));
        futures::stream::iter(chunks)
            .map(|f| commit_file(exec, id, f))
            .buffer_unordered(exec.transfers().block_files)
            .try_collect::<Vec<()>>()
            .await?;
        for f in index {
            commit_file(exec, id, f).await?;
        }
        Ok(())
    }
}

async fn commit_file(
    exec: &StoreExecutor,
    id: BlockId,
    f: StagedFile,
) -> std::result::Result<(), StoreError> {
    let path = format!("{id}/{}", f.rel);
    exec.mutation_point(&path);
    let started = std::time::Instant::now();
    let result = match f.body {
        Body::Whole(bytes) => exec
            .store()
            .put(&ObjectPath::from(path.as_str()), PutPayload::from(bytes))
            .await
            .map(|_| ()),
        Body::Parts(upload) => upload.complete().await,
    };
    exec.observe(BucketOp::Upload, started, &result);
    result.map_err(|e| object_error(format!("upload {path}"), &e))
}

/// Whether the job may still send data to the bucket: `Err` (saying why) once the write
/// permit it was started under has lapsed. Parts are invisible, but a process that lost its
/// term sends nothing at all (a FILESYSTEM bucket would even show the staging files).
pub type PartGate = Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

/// Where the engine writes a block it streams to the bucket.
pub struct BucketOutput {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    id: BlockId,
    location: PathBuf,
    hash: HashFunc,
    gate: PartGate,
    finished: Arc<Mutex<Vec<StagedFile>>>,
    written: Arc<AtomicU64>,
}

impl BucketOutput {
    /// Stages block `id` in `store`, sending each part only while `gate` allows; must be
    /// called inside the runtime.
    pub fn new(store: Arc<dyn ObjectStore>, id: BlockId, hash: HashFunc, gate: PartGate) -> Self {
        BucketOutput {
            store,
            handle: Handle::current(),
            id,
            location: PathBuf::from(id.to_string()),
            hash,
            gate,
            finished: Arc::default(),
            written: Arc::default(),
        }
    }

    /// Counts the bytes of every file written into `written` too.
    pub fn counting(mut self, written: Arc<AtomicU64>) -> Self {
        self.written = written;
        self
    }

    /// The files finished so far, as a block waiting for its upload step.
    pub fn staged(&self) -> StagedBlock {
        let files = std::mem::take(&mut *self.finished.lock().expect("not poisoned"));
        StagedBlock { id: self.id, files }
    }
}

impl BlockOutput for BucketOutput {
    fn location(&self) -> &Path {
        &self.location
    }

    fn create(&self, rel: &str) -> Result<Box<dyn OutputFile>> {
        Ok(Box::new(FileUpload {
            store: Arc::clone(&self.store),
            handle: self.handle.clone(),
            object: ObjectPath::from(format!("{}/{rel}", self.id)),
            name: self.location.join(rel),
            rel: rel.to_string(),
            part: Vec::new(),
            upload: None,
            in_flight: VecDeque::new(),
            size: 0,
            hash: (self.hash == HashFunc::Sha256)
                .then(|| ring::digest::Context::new(&ring::digest::SHA256)),
            gate: Arc::clone(&self.gate),
            finished: Arc::clone(&self.finished),
            written: Arc::clone(&self.written),
        }))
    }

    fn finish_dir(&self, _rel_dir: &str) -> Result<()> {
        Ok(())
    }
}

/// One file being written to the bucket.
struct FileUpload {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    object: ObjectPath,
    /// What errors name.
    name: PathBuf,
    rel: String,
    /// The part being filled.
    part: Vec<u8>,
    upload: Option<PendingUpload>,
    in_flight: VecDeque<JoinHandle<object_store::Result<()>>>,
    size: u64,
    hash: Option<ring::digest::Context>,
    gate: PartGate,
    finished: Arc<Mutex<Vec<StagedFile>>>,
    /// The job's count of bytes written.
    written: Arc<AtomicU64>,
}

impl FileUpload {
    /// Sends the filled part, waiting first for the oldest part when enough are under way;
    /// refused once the job's permit lapsed.
    fn send_part(&mut self) -> std::io::Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.wait_oldest()?;
        }
        (self.gate)().map_err(|why| {
            std::io::Error::other(format!("upload {}: part not sent: {why}", self.object))
        })?;
        if self.upload.is_none() {
            let store = Arc::clone(&self.store);
            let object = self.object.clone();
            let upload = self
                .handle
                .block_on(async move { store.put_multipart(&object).await })
                .map_err(|e| self.error(e))?;
            self.upload = Some(PendingUpload {
                upload: Some(upload),
                handle: self.handle.clone(),
            });
        }
        let bytes = std::mem::replace(&mut self.part, Vec::with_capacity(PART_BYTES));
        let upload = self.upload.as_mut().and_then(|u| u.upload.as_mut());
        let sending = upload
            .expect("started above")
            .put_part(PutPayload::from(bytes));
        self.in_flight.push_back(self.handle.spawn(sending));
        Ok(())
    }

    fn wait_oldest(&mut self) -> std::io::Result<()> {
        let Some(oldest) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match self.handle.block_on(oldest) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.error(e)),
            Err(e) => Err(std::io::Error::other(format!(
                "upload {}: task {e}",
                self.object
            ))),
        }
    }

    fn error(&self, e: object_store::Error) -> std::io::Error {
        std::io::Error::other(format!("upload {}: {e}", self.object))
    }
}

impl Write for FileUpload {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        if let Some(ctx) = &mut self.hash {
            ctx.update(buf);
        }
        self.size += buf.len() as u64;
        self.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        while !buf.is_empty() {
            let n = buf.len().min(PART_BYTES - self.part.len());
            self.part.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.part.len() == PART_BYTES {
                self.send_part()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl OutputFile for FileUpload {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let name = self.name.clone();
        let io = |e: std::io::Error| TsdbError::io(&name, e);
        let body = if self.upload.is_none() {
            Body::Whole(std::mem::take(&mut self.part))
        } else {
            if !self.part.is_empty() {
                self.send_part().map_err(io)?;
            }
            while !self.in_flight.is_empty() {
                self.wait_oldest().map_err(io)?;
            }
            Body::Parts(self.upload.take().expect("started"))
        };
        let hash = self.hash.take().map(|ctx| {
            let digest = ctx.finish();
            digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
        });
        self.finished
            .lock()
            .expect("not poisoned")
            .push(StagedFile {
                rel: self.rel.clone(),
                size: self.size,
                hash,
                body,
            });
        Ok(())
    }
}

impl Drop for FileUpload {
    fn drop(&mut self) {
        for part in self.in_flight.drain(..) {
            part.abort();
        }
        // `upload`, if still here, aborts itself.
    }
}

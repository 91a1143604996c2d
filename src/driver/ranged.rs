//! Input blocks read where they are in the bucket: each file with ranged GETs, read ahead
//! while the block engine walks it (streaming compaction, `docs/streaming.md`).
//!
//! The engine's readers walk a file through a sliding window, so a walk front to back asks
//! for byte ranges that follow each other. [`RangedObject`] notices that and keeps one GET
//! of [`READ_AHEAD_BYTES`] under way past what it has handed out; a read elsewhere (the
//! index's TOC, its postings, a chunk out of order) drops the read-ahead and is served by a
//! GET of its own. Memory per open file: the engine's window, the bytes fetched and not yet
//! handed out, and one GET under way — at most about three times [`READ_AHEAD_BYTES`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::tsdb::block::CHUNKS_DIRNAME;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::files::{BlockFiles, ReadAt};
use crate::tsdb::{Result, TsdbError};

/// Bytes of one GET while reading a file front to back.
pub const READ_AHEAD_BYTES: usize = 1 << 20;
/// The engine's window over a remote file: smaller than the read-ahead, since the bytes are
/// already in memory below it.
const WINDOW_BYTES: usize = 256 << 10;

/// Counts of the reads of [`RangedObject`]s, for the benchmark and the logs.
#[derive(Debug, Default)]
pub struct ReadCounts {
    /// GETs sent.
    pub gets: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
    /// Reads that were not served by the read-ahead (a jump, or the first read of a file).
    pub jumps: AtomicU64,
}

/// The files of a block in the bucket, from one listing of `<ULID>/`.
pub struct BucketBlockFiles {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    location: PathBuf,
    /// Block files (path relative to the block) and their sizes.
    files: Vec<(String, u64)>,
    counts: Arc<ReadCounts>,
}

impl BucketBlockFiles {
    /// Lists `<id>/` in `store`. Only block data (`index`, `chunks/*`) is kept.
    pub async fn list(
        store: Arc<dyn ObjectStore>,
        id: BlockId,
        counts: Arc<ReadCounts>,
    ) -> std::result::Result<Self, String> {
        let files = super::jobs::block_data_objects(&store, id).await?;
        Ok(BucketBlockFiles {
            store,
            handle: Handle::current(),
            location: PathBuf::from(id.to_string()),
            files,
            counts,
        })
    }
}

impl BlockFiles for BucketBlockFiles {
    fn location(&self) -> &Path {
        &self.location
    }

    fn chunk_names(&self) -> Result<Vec<String>> {
        let prefix = format!("{CHUNKS_DIRNAME}/");
        Ok(self
            .files
            .iter()
            .filter_map(|(rel, _)| rel.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    fn open(&self, rel: &str) -> Result<Box<dyn ReadAt>> {
        let path = self.path_of(rel);
        let Some(&(_, len)) = self.files.iter().find(|(r, _)| r == rel) else {
            let what = "not in the bucket (listing of the block)";
            return Err(TsdbError::io(&path, std::io::Error::other(what)));
        };
        Ok(Box::new(RangedObject {
            store: Arc::clone(&self.store),
            handle: self.handle.clone(),
            path: ObjectPath::from(path.to_string_lossy().as_ref()),
            len,
            ready: Bytes::new(),
            ready_start: 0,
            ahead: None,
            last_end: None,
            counts: Arc::clone(&self.counts),
        }))
    }

    fn window_bytes(&self) -> usize {
        WINDOW_BYTES
    }
}

/// One object read with ranged GETs and read ahead while read in order.
struct RangedObject {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    path: ObjectPath,
    len: u64,
    /// Fetched bytes not yet handed out, starting at `ready_start`.
    ready: Bytes,
    ready_start: u64,
    /// The GET under way and the offset it starts at.
    ahead: Option<(u64, JoinHandle<object_store::Result<Bytes>>)>,
    /// Where the last read ended: a read starting there continues a walk.
    last_end: Option<u64>,
    counts: Arc<ReadCounts>,
}

impl RangedObject {
    /// Starts a GET of `[start, start + n)` (clipped to the object).
    fn get(&self, start: u64, n: usize) -> JoinHandle<object_store::Result<Bytes>> {
        let end = (start + n as u64).min(self.len);
        let (store, path) = (Arc::clone(&self.store), self.path.clone());
        self.counts.gets.fetch_add(1, Ordering::Relaxed);
        self.counts.bytes.fetch_add(end - start, Ordering::Relaxed);
        self.handle
            .spawn(async move { store.get_range(&path, start..end).await })
    }

    /// Waits for a GET started by [`Self::get`].
    fn wait(&self, get: JoinHandle<object_store::Result<Bytes>>) -> std::io::Result<Bytes> {
        let path = &self.path;
        match self.handle.block_on(get) {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(std::io::Error::other(format!("GET {path}: {e}"))),
            Err(e) => Err(std::io::Error::other(format!("GET {path}: task {e}"))),
        }
    }
}

impl ReadAt for RangedObject {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let continues = self.last_end == Some(offset);
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset + filled as u64;
            let ready_end = self.ready_start + self.ready.len() as u64;
            if at >= self.ready_start && at < ready_end {
                let from = (at - self.ready_start) as usize;
                let n = (buf.len() - filled).min(self.ready.len() - from);
                buf[filled..filled + n].copy_from_slice(&self.ready[from..from + n]);
                filled += n;
                continue;
            }
            let get = match self.ahead.take() {
                Some((start, get)) if start == at => get,
                other => {
                    if let Some((_, stale)) = other {
                        stale.abort();
                    }
                    self.counts.jumps.fetch_add(1, Ordering::Relaxed);
                    self.get(at, (buf.len() - filled).max(READ_AHEAD_BYTES))
                }
            };
            self.ready = self.wait(get)?;
            self.ready_start = at;
            if self.ready.is_empty() {
                let what = format!("GET {}: no bytes at offset {at}", self.path);
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what));
            }
        }
        let end = offset + buf.len() as u64;
        self.last_end = Some(end);
        let ready_end = self.ready_start + self.ready.len() as u64;
        if continues && self.ahead.is_none() && ready_end < self.len {
            self.ahead = Some((ready_end, self.get(ready_end, READ_AHEAD_BYTES)));
        }
        Ok(())
    }
}

impl Drop for RangedObject {
    fn drop(&mut self) {
        if let Some((_, get)) = self.ahead.take() {
            get.abort();
        }
    }
}

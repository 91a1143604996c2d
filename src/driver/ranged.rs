//! Input blocks read where they are in the bucket (streaming compaction,
//! `docs/streaming.md`): each file with GETs that stream it from an offset to its end, read
//! as the block engine walks it.
//!
//! The engine's readers walk a file through a sliding window, so a walk front to back asks
//! for byte ranges that follow each other. A read that jumps (a file's first read, the
//! index's TOC, its postings, a chunk out of order) gets a GET of exactly its bytes; the next
//! read, if it continues that one, starts one GET of the rest of the object, whose body
//! [`StreamedObject`] reads only as far as the engine asks: what the store sends ahead waits
//! in the connection's buffers (TCP flow control holds the rest), so a walk costs two
//! requests and a few hundred KiB however large the file is. A jump ends the GET under way. A
//! body that breaks off is resumed where it stopped, up to [`RESUMES_MAX`] times in a row.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use tokio::runtime::Handle;

use crate::tsdb::block::CHUNKS_DIRNAME;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::files::{BlockFiles, ReadAt};
use crate::tsdb::{Result, TsdbError};

/// A GET that breaks off is started again from where it stopped this many times in a row
/// before the read fails.
pub const RESUMES_MAX: u32 = 3;
/// The engine's window over a remote file.
const WINDOW_BYTES: usize = 256 << 10;

/// Counts of the reads of streamed objects.
#[derive(Debug, Default)]
pub struct ReadCounts {
    /// GETs sent.
    pub gets: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
    /// Reads that did not continue the GET under way (a jump, or a file's first read).
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
        Ok(Box::new(StreamedObject {
            store: Arc::clone(&self.store),
            handle: self.handle.clone(),
            path: ObjectPath::from(path.to_string_lossy().as_ref()),
            len,
            body: None,
            counts: Arc::clone(&self.counts),
        }))
    }

    fn window_bytes(&self) -> usize {
        WINDOW_BYTES
    }
}

/// One object read by GETs that stream it from the offset the engine asks for.
struct StreamedObject {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    path: ObjectPath,
    len: u64,
    /// The GET being read: the offset of its next byte, its body and the bytes of the body's
    /// last chunk not handed out yet.
    body: Option<Body>,
    counts: Arc<ReadCounts>,
}

struct Body {
    next: u64,
    /// Where a bounded GET ends; `None` for one that runs to the end of the object.
    end: Option<u64>,
    chunks: BoxStream<'static, object_store::Result<Bytes>>,
    pending: Bytes,
}

impl StreamedObject {
    /// Starts a GET of the object from `offset` to `end`, or to its end.
    fn open(&self, offset: u64, end: Option<u64>) -> std::io::Result<Body> {
        self.counts.gets.fetch_add(1, Ordering::Relaxed);
        let (store, path) = (Arc::clone(&self.store), self.path.clone());
        let range = match end {
            Some(end) => GetRange::Bounded(offset..end),
            None => GetRange::Offset(offset),
        };
        let options = GetOptions::default().with_range(Some(range));
        let result = self
            .handle
            .block_on(async move { store.get_opts(&path, options).await })
            .map_err(|e| self.error(offset, e))?;
        Ok(Body {
            next: offset,
            end,
            chunks: result.into_stream(),
            pending: Bytes::new(),
        })
    }

    fn error(&self, offset: u64, e: object_store::Error) -> std::io::Error {
        std::io::Error::other(format!("GET {} from byte {offset}: {e}", self.path))
    }

    /// The next bytes of the body (at least one), resuming a body that broke off.
    fn next_chunk(&mut self) -> std::io::Result<()> {
        let mut resumes = 0;
        loop {
            let body = self.body.as_mut().expect("opened by the caller");
            match self.handle.block_on(body.chunks.next()) {
                Some(Ok(chunk)) if !chunk.is_empty() => {
                    self.counts
                        .bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    body.pending = chunk;
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) if resumes < RESUMES_MAX => {
                    let at = body.next;
                    tracing::debug!(object = %self.path, offset = at, error = %e, "GET broke off; resuming");
                    resumes += 1;
                    let end = body.end;
                    self.body = Some(self.open(at, end)?);
                }
                Some(Err(e)) => {
                    let at = body.next;
                    return Err(self.error(at, e));
                }
                None => {
                    let what = format!("GET {}: the body ended at byte {}", self.path, body.next);
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what));
                }
            }
        }
    }
}

impl ReadAt for StreamedObject {
    fn len(&self) -> u64 {
        self.len
    }

    /// A read that does not continue the last one gets a GET of exactly its bytes; one that
    /// continues a finished bounded GET starts the GET of the rest of the object.
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if self.body.as_ref().map(|b| b.next) != Some(offset) {
            self.counts.jumps.fetch_add(1, Ordering::Relaxed);
            self.body = None; // Ends the GET under way, if any.
            let end = offset + buf.len() as u64;
            self.body = Some(self.open(offset, Some(end))?);
        }
        let mut filled = 0;
        while filled < buf.len() {
            let (next, end, empty) = self
                .body
                .as_ref()
                .map(|b| (b.next, b.end, b.pending.is_empty()))
                .expect("opened above");
            if empty && end == Some(next) {
                // A finished bounded GET, continued: the rest of the object in one GET.
                self.body = Some(self.open(next, None)?);
            }
            if empty {
                self.next_chunk()?;
            }
            let body = self.body.as_mut().expect("opened above");
            let n = (buf.len() - filled).min(body.pending.len());
            buf[filled..filled + n].copy_from_slice(&body.pending.split_to(n));
            body.next += n as u64;
            filled += n;
        }
        Ok(())
    }
}

//! Where a block's files are read from and written to: a local directory, or (through the
//! driver's adapters) objects in a bucket read by ranged GETs and written by multipart
//! uploads. The block formats read through [`ReadAt`] and write through [`OutputFile`], so the
//! same code produces the same bytes wherever the files are.
//!
//! Paths given to these traits are relative to the block (`index`, `chunks/000001`); the
//! [`location`](BlockFiles::location) they report is what errors name: the block directory,
//! or the block's object prefix in the bucket.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::block::CHUNKS_DIRNAME;
use super::error::{IoContext, Result};
use super::fsutil::fsync_dir;

/// Bytes buffered between a local output file and the kernel.
const LOCAL_WRITE_BUFFER_BYTES: usize = 1 << 20;

/// A file read by position: a local file, or an object read with ranged GETs.
pub trait ReadAt: Send {
    /// The file's size in bytes.
    fn len(&self) -> u64;
    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` with the bytes at `offset`. Readers of the block formats call this with
    /// offsets that mostly follow each other, which a remote source may read ahead of.
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

/// A local file and its size, measured once when opened.
pub struct LocalFile {
    file: File,
    len: u64,
}

impl LocalFile {
    /// Opens `path` for positional reads.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        Ok(LocalFile { file, len })
    }
}

impl ReadAt for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, offset)
    }
}

/// The files of one block to read.
pub trait BlockFiles: Send {
    /// The block's directory or object prefix, as errors name it.
    fn location(&self) -> &Path;
    /// The name errors give the block file `rel`.
    fn path_of(&self, rel: &str) -> PathBuf {
        self.location().join(rel)
    }
    /// The names of the files under `chunks/` (only the file names, in any order).
    fn chunk_names(&self) -> Result<Vec<String>>;
    /// Opens the block file `rel` (`index`, `chunks/000001`) for positional reads.
    fn open(&self, rel: &str) -> Result<Box<dyn ReadAt>>;
    /// Read-ahead of the windows that read these files, in bytes.
    fn window_bytes(&self) -> usize;
}

/// A block directory on the local disk.
pub struct LocalBlockFiles {
    dir: PathBuf,
    /// Its chunk segments' directory: `<dir>/chunks`, or any directory of segments.
    chunks: PathBuf,
    window_bytes: usize,
}

impl LocalBlockFiles {
    /// The block in `dir`, read through windows of `window_bytes`.
    pub fn new(dir: &Path, window_bytes: usize) -> Self {
        LocalBlockFiles {
            dir: dir.to_path_buf(),
            chunks: dir.join(CHUNKS_DIRNAME),
            window_bytes,
        }
    }

    /// Only the chunk segments in `chunks_dir` (whatever its name), read through windows of
    /// `window_bytes`.
    pub fn segments_in(chunks_dir: &Path, window_bytes: usize) -> Self {
        LocalBlockFiles {
            dir: chunks_dir.parent().unwrap_or(Path::new("")).to_path_buf(),
            chunks: chunks_dir.to_path_buf(),
            window_bytes,
        }
    }
}

impl BlockFiles for LocalBlockFiles {
    fn location(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        match rel.strip_prefix(CHUNKS_DIRNAME) {
            Some("") => self.chunks.clone(),
            Some(name) if name.starts_with('/') => self.chunks.join(&name[1..]),
            _ => self.dir.join(rel),
        }
    }

    /// A missing `chunks/` directory holds no segment: a bucket keeps no empty directories,
    /// so a FILESYSTEM bucket's block without chunks has none.
    fn chunk_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let entries = match std::fs::read_dir(&self.chunks) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            other => other.at(&self.chunks)?,
        };
        for entry in entries {
            names.push(
                entry
                    .at(&self.chunks)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Ok(names)
    }

    fn open(&self, rel: &str) -> Result<Box<dyn ReadAt>> {
        Ok(Box::new(LocalFile::open(&self.path_of(rel))?))
    }

    fn window_bytes(&self) -> usize {
        self.window_bytes
    }
}

/// One file of a block being written.
pub trait OutputFile: Write + Send {
    /// Ends the file: flushed and durable on a local disk, every part sent to a bucket.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Where a new block's files are written.
pub trait BlockOutput: Send + Sync {
    /// The block's directory or object prefix, as errors name it.
    fn location(&self) -> &Path;
    /// Creates the block file `rel` (`index`, `chunks/000001`).
    fn create(&self, rel: &str) -> Result<Box<dyn OutputFile>>;
    /// Called once every file under the directory `rel_dir` (`chunks`) is finished: a local
    /// disk makes their entries durable; a bucket has nothing to do.
    fn finish_dir(&self, rel_dir: &str) -> Result<()>;
}

/// A block's files written into a local directory (a [`super::block::PendingBlock`]'s).
pub struct LocalOutput {
    dir: PathBuf,
}

impl LocalOutput {
    /// Writes into `dir`, creating subdirectories as files need them.
    pub fn new(dir: &Path) -> Self {
        LocalOutput {
            dir: dir.to_path_buf(),
        }
    }
}

impl BlockOutput for LocalOutput {
    fn location(&self) -> &Path {
        &self.dir
    }

    fn create(&self, rel: &str) -> Result<Box<dyn OutputFile>> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        let file = File::create(&path).at(&path)?;
        Ok(Box::new(LocalOutputFile {
            out: BufWriter::with_capacity(LOCAL_WRITE_BUFFER_BYTES, file),
            path,
        }))
    }

    fn finish_dir(&self, rel_dir: &str) -> Result<()> {
        let dir = self.dir.join(rel_dir);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).at(&dir)?;
        }
        fsync_dir(&dir)
    }
}

/// A local output file, buffered.
struct LocalOutputFile {
    out: BufWriter<File>,
    path: PathBuf,
}

impl Write for LocalOutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl OutputFile for LocalOutputFile {
    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().at(&self.path)?;
        self.out.get_ref().sync_all().at(&self.path)
    }
}

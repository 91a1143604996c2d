//! Block directories as a whole: opening one for reading (meta, index, chunk segments,
//! tombstones), walking every series of it ([`BlockReader::series`], in `series`) and
//! publishing a new one atomically.
//!
//! A new block is built in `<dest>/<ULID>.tmp-for-creation/`, every file fsynced, then the
//! directory is renamed to `<dest>/<ULID>` and `<dest>` fsynced, as Prometheus does: a crash
//! leaves either no block or a complete one. A [`PendingBlock`] that is dropped without being
//! published removes its temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use super::block_id::BlockId;
use std::sync::Arc;

use super::chunks::SegmentReader;
use super::error::{IoContext, Result, TsdbError};
use super::files::{BlockFiles, BlockOutput, LocalOutput};
use super::fsutil;
use super::index::{IndexReader, ReadOptions};
use super::meta::BlockMeta;
use super::tombstones::Tombstones;
use super::window::FileWindow;

mod series;
#[cfg(test)]
mod tests;

pub use series::{BlockChunk, BlockSeries, BlockSeriesIter};

/// File name of the index in a block directory.
pub const INDEX_FILENAME: &str = "index";
/// Directory name of the chunk segments in a block directory.
pub const CHUNKS_DIRNAME: &str = "chunks";
/// Suffix of a block directory under construction.
pub const TMP_CREATION_SUFFIX: &str = ".tmp-for-creation";

/// An open block: its meta, index, chunk segments and tombstones.
pub struct BlockReader {
    /// The block directory.
    pub dir: PathBuf,
    /// Its parsed meta.json.
    pub meta: BlockMeta,
    /// Its index.
    pub index: IndexReader,
    /// Its chunk segments.
    pub chunks: SegmentReader,
    /// Its tombstones (empty when the file is absent, as in Thanos buckets).
    pub tombstones: Tombstones,
}

impl BlockReader {
    /// Opens the block in `dir`, checking that its meta names the directory.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, ReadOptions::default())
    }

    /// [`open`](Self::open), reading the index with `options`.
    pub fn open_with(dir: &Path, options: ReadOptions) -> Result<Self> {
        let meta = BlockMeta::read_dir(dir)?;
        if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
            if BlockId::is_block_name(name) && name != meta.ulid.to_string() {
                return Err(TsdbError::InvalidMeta {
                    file: dir.join(super::meta::META_FILENAME),
                    what: format!(
                        "ulid {} does not match the directory name {name}",
                        meta.ulid
                    ),
                });
            }
        }
        Ok(BlockReader {
            dir: dir.to_path_buf(),
            index: IndexReader::open_with(&dir.join(INDEX_FILENAME), options)?,
            chunks: SegmentReader::open(&dir.join(CHUNKS_DIRNAME))?,
            tombstones: Tombstones::read_dir(dir)?,
            meta,
        })
    }

    /// Opens the block whose files `files` gives (in a bucket, read where they are) with
    /// `meta` as its meta (the one the caller planned with) and no tombstones, as blocks in a
    /// bucket have none.
    pub fn open_files(
        files: &dyn BlockFiles,
        meta: BlockMeta,
        options: ReadOptions,
    ) -> Result<Self> {
        let index_path = files.path_of(INDEX_FILENAME);
        let window = FileWindow::over(
            files.open(INDEX_FILENAME)?,
            &index_path,
            files.window_bytes(),
        );
        Ok(BlockReader {
            dir: files.location().to_path_buf(),
            index: IndexReader::from_window(window, options)?,
            chunks: SegmentReader::open_files(files)?,
            tombstones: Tombstones::default(),
            meta,
        })
    }
}

/// Where a new block goes.
pub enum BlockTarget {
    /// A local directory, published atomically with its meta.json and tombstones.
    Local(PendingBlock),
    /// Only the files (`chunks/*`, `index`) into `output`: a bucket, where the caller
    /// commits the block by creating its meta.json afterwards.
    Files(Arc<dyn BlockOutput>),
}

impl BlockTarget {
    /// The block `<dest>/<id>` on the local disk.
    pub fn local(dest: &Path, id: BlockId) -> Result<Self> {
        Ok(BlockTarget::Local(PendingBlock::create(dest, id)?))
    }

    /// Where the block's files are written.
    pub fn output(&self) -> Arc<dyn BlockOutput> {
        match self {
            BlockTarget::Local(pending) => Arc::new(LocalOutput::new(pending.dir())),
            BlockTarget::Files(output) => Arc::clone(output),
        }
    }

    /// Ends a block whose files are finished: a local one gets `meta` and empty tombstones
    /// and is published; returns where the block is.
    pub fn finish(self, meta: &BlockMeta) -> Result<PathBuf> {
        match self {
            BlockTarget::Local(pending) => {
                meta.write_dir(pending.dir())?;
                Tombstones::default().write_dir(pending.dir())?;
                pending.publish()
            }
            BlockTarget::Files(output) => Ok(output.location().to_path_buf()),
        }
    }
}

/// A block directory under construction; removed on drop unless published.
pub struct PendingBlock {
    tmp: PathBuf,
    target: PathBuf,
    dest: PathBuf,
    published: bool,
}

impl PendingBlock {
    /// Starts `<dest>/<id>.tmp-for-creation`, replacing a stale one from a crashed run.
    pub fn create(dest: &Path, id: BlockId) -> Result<Self> {
        fs::create_dir_all(dest).at(dest)?;
        let target = dest.join(id.to_string());
        if target.exists() {
            return Err(TsdbError::usage(&target, "block directory already exists"));
        }
        let tmp = dest.join(format!("{id}{TMP_CREATION_SUFFIX}"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        fs::create_dir(&tmp).at(&tmp)?;
        Ok(PendingBlock {
            tmp,
            target,
            dest: dest.to_path_buf(),
            published: false,
        })
    }

    /// The temporary directory to write the block's files into.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Fsyncs the temporary directory, renames it to `<dest>/<id>` and fsyncs `dest`.
    pub fn publish(mut self) -> Result<PathBuf> {
        fsutil::fsync_dir(&self.tmp)?;
        fs::rename(&self.tmp, &self.target).at(&self.target)?;
        fsutil::fsync_dir(&self.dest)?;
        self.published = true;
        Ok(self.target.clone())
    }
}

impl Drop for PendingBlock {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: a leftover `.tmp-for-creation` dir is never read as a block.
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

//! Errors of the block engine. Every error names the file it concerns, and corruption errors
//! also name the byte offset, so an operator can find the damaged object in a bucket.

use std::path::{Path, PathBuf};

use super::block_id::BlockId;

/// Result alias for the block engine.
pub type Result<T> = std::result::Result<T, TsdbError>;

/// An error reading, writing or compacting a TSDB block.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// The bytes of a file do not follow the format.
    #[error("{}: corrupt at offset {offset}: {what}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// An operating-system error on a file.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file the operation concerned.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `meta.json` (or marker) that cannot be accepted.
    #[error("{}: invalid meta.json: {what}", file.display())]
    InvalidMeta {
        /// The meta.json file.
        file: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The inputs cannot be compacted as asked.
    #[error("cannot compact: {0}")]
    Unsupported(String),
    /// An input block's index lists a series' chunks out of time order: a chunk starts at or
    /// before the end of the one before it (Thanos' `OutOfOrderChunksError`, which fails the
    /// compaction of the block's group). The block is named so that it can be
    /// no-compact-marked (`--compact.skip-block-with-out-of-order-chunks`).
    #[error("{}: block {block} has out-of-order chunks: {what}", file.display())]
    OutOfOrderChunks {
        /// The block.
        block: BlockId,
        /// Its index.
        file: PathBuf,
        /// The series and the two chunks.
        what: String,
    },
    /// A caller broke the contract of a writer (out-of-order series, chunks, ...).
    #[error("{}: {what}", file.display())]
    Usage {
        /// The file being written.
        file: PathBuf,
        /// The broken rule.
        what: String,
    },
}

impl TsdbError {
    /// Builds a [`TsdbError::Corrupt`].
    pub fn corrupt(file: &Path, offset: u64, what: impl Into<String>) -> Self {
        TsdbError::Corrupt {
            file: file.to_path_buf(),
            offset,
            what: what.into(),
        }
    }

    /// Builds a [`TsdbError::Io`].
    pub fn io(file: &Path, source: std::io::Error) -> Self {
        TsdbError::Io {
            file: file.to_path_buf(),
            source,
        }
    }

    /// Builds a [`TsdbError::Usage`].
    pub fn usage(file: &Path, what: impl Into<String>) -> Self {
        TsdbError::Usage {
            file: file.to_path_buf(),
            what: what.into(),
        }
    }
}

/// Adds the file name to `std::io::Result`s.
pub trait IoContext<T> {
    /// Maps an I/O error to [`TsdbError::Io`] naming `file`.
    fn at(self, file: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, file: &Path) -> Result<T> {
        self.map_err(|e| TsdbError::io(file, e))
    }
}

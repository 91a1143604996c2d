//! Buffered positional reads of a file (`pread` locally, ranged GETs from a bucket), used
//! instead of `mmap` so that reading a block does not make its pages part of the process'
//! resident memory. Readers of the block formats walk their files mostly in order, so one
//! window of read-ahead per file serves most requests from memory and the process keeps
//! O(window) bytes per open file.
//!
//! The window slides: when a request starts inside the window but runs past its end, the bytes
//! already held are kept and only what follows them is read, so a walk front to back reads
//! every byte of the file once, in order (what lets a remote source read ahead).

use std::path::{Path, PathBuf};

use super::error::{IoContext, Result, TsdbError};
use super::files::{LocalFile, ReadAt};

/// Default read-ahead of a [`FileWindow`], in bytes.
pub const WINDOW_BYTES_DEFAULT: usize = 1 << 20;

/// A file read through a sliding in-memory window.
pub struct FileWindow {
    source: Box<dyn ReadAt>,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
    start: u64,
    window_bytes: usize,
}

impl FileWindow {
    /// Opens `path` with the default window size.
    pub fn open(path: &Path) -> Result<Self> {
        Self::with_window(path, WINDOW_BYTES_DEFAULT)
    }

    /// Opens `path`, reading ahead `window_bytes` at a time.
    pub fn with_window(path: &Path, window_bytes: usize) -> Result<Self> {
        Ok(Self::over(
            Box::new(LocalFile::open(path)?),
            path,
            window_bytes,
        ))
    }

    /// Reads `source`, named `path` in errors, `window_bytes` at a time.
    pub fn over(source: Box<dyn ReadAt>, path: &Path, window_bytes: usize) -> Self {
        FileWindow {
            len: source.len(),
            source,
            path: path.to_path_buf(),
            buf: Vec::new(),
            start: 0,
            window_bytes,
        }
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Exactly the bytes `[offset, offset + n)`; an error naming the file when they lie past
    /// its end. `what` says what was being read.
    pub fn read(&mut self, offset: u64, n: usize, what: &str) -> Result<&[u8]> {
        let end = offset.checked_add(n as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(TsdbError::corrupt(
                &self.path,
                offset,
                format!(
                    "{what}: {n} bytes requested past the end of the file ({} bytes)",
                    self.len
                ),
            ));
        }
        self.fill(offset, n)?;
        let from = (offset - self.start) as usize;
        Ok(&self.buf[from..from + n])
    }

    /// Up to `n` bytes from `offset`: fewer when the file ends first, none at or past its end.
    pub fn read_up_to(&mut self, offset: u64, n: usize) -> Result<&[u8]> {
        if offset >= self.len {
            return Ok(&[]);
        }
        let n = n.min((self.len - offset) as usize);
        self.fill(offset, n)?;
        let from = (offset - self.start) as usize;
        Ok(&self.buf[from..from + n])
    }

    fn fill(&mut self, offset: u64, n: usize) -> Result<()> {
        let have_end = self.start + self.buf.len() as u64;
        if offset >= self.start && offset + n as u64 <= have_end {
            return Ok(());
        }
        let want = n.max(self.window_bytes).min((self.len - offset) as usize);
        debug_assert!(want >= n, "window smaller than the request");
        // Keep what the window holds from `offset` on, and read only what follows it.
        let kept = if offset >= self.start && offset < have_end {
            let from = (offset - self.start) as usize;
            self.buf.copy_within(from.., 0);
            self.buf.len() - from
        } else {
            0
        };
        let want = want.max(kept);
        self.buf.resize(want, 0);
        self.source
            .read_exact_at(&mut self.buf[kept..], offset + kept as u64)
            .at(&self.path)?;
        self.start = offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_window_refills() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut w = FileWindow::with_window(&p, 64).unwrap();
        assert_eq!(w.read(0, 10, "x").unwrap(), &data[0..10]);
        assert_eq!(w.read(5000, 300, "x").unwrap(), &data[5000..5300]);
        assert_eq!(w.read(60, 10, "x").unwrap(), &data[60..70]);
        assert_eq!(w.read_up_to(9990, 100).unwrap(), &data[9990..]);
        assert!(w.read_up_to(10_000, 1).unwrap().is_empty());
        // A request across the window's end keeps the bytes held, even after a large read.
        assert_eq!(w.read(100, 500, "x").unwrap(), &data[100..600]);
        assert_eq!(w.read(550, 100, "x").unwrap(), &data[550..650]);
        assert_eq!(w.read(640, 5, "x").unwrap(), &data[640..645]);
        let err = w.read(9990, 11, "chunk").unwrap_err().to_string();
        assert!(
            err.contains("offset 9990") && err.contains("past the end"),
            "{err}"
        );
    }
}

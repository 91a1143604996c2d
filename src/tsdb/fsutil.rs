//! Durable local file operations: write-then-rename with fsyncs, so that a crash leaves
//! either the old file or the complete new one, never a torn file.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::error::{IoContext, Result};

/// Writes `data` to `path` through `<path>.tmp`, fsyncs it, renames it over `path` and
/// fsyncs the parent directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    fsync_parent(path)
}

/// Fsyncs a directory so that entries created or renamed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

/// Fsyncs the directory containing `path`.
pub fn fsync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsync_dir(p),
        _ => fsync_dir(Path::new(".")),
    }
}

//! [`Cursor`]: a bounded forward reader over a [`FileWindow`] that checks CRCs on the fly,
//! and [`OffsetEntry`], one decoded entry of the postings offset table.

use std::path::Path;

use crate::tsdb::encoding::{read_uvarint, MAX_VARINT_LEN64};
use crate::tsdb::error::{Result, TsdbError};
use crate::tsdb::window::FileWindow;

/// A forward reader over `[pos, end)` of a file that folds every byte it consumes into a
/// running CRC, so a section can be checked while it is decoded, without holding it whole.
pub(super) struct Cursor<'a> {
    window: &'a mut FileWindow,
    /// The file, for error messages.
    pub(super) path: &'a Path,
    /// Absolute offset of the next byte.
    pub(super) pos: u64,
    /// Absolute offset where the section (and this cursor's reach) ends.
    end: u64,
    /// CRC32C of everything consumed since the cursor started or entered its section.
    crc: u32,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(window: &'a mut FileWindow, path: &'a Path, pos: u64, end: u64) -> Self {
        debug_assert!(pos <= end);
        Cursor {
            window,
            path,
            pos,
            end,
            crc: 0,
        }
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let left = self.end - self.pos;
        if n as u64 > left {
            return Err(TsdbError::corrupt(
                self.path,
                self.pos,
                format!("{what}: needs {n} bytes, the section has {left} left"),
            ));
        }
        let bytes = self.window.read(self.pos, n, what)?;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.pos += n as u64;
        Ok(bytes)
    }

    pub(super) fn be32(&mut self, what: &str) -> Result<u32> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_be_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub(super) fn uvarint(&mut self, what: &str) -> Result<u64> {
        let n = (self.end - self.pos).min(MAX_VARINT_LEN64 as u64) as usize;
        let bytes = self.window.read(self.pos, n, what)?;
        match read_uvarint(bytes) {
            Some((value, used)) => {
                self.crc = crc32c::crc32c_append(self.crc, &bytes[..used]);
                self.pos += used as u64;
                Ok(value)
            }
            None => Err(TsdbError::corrupt(
                self.path,
                self.pos,
                format!("{what}: invalid or truncated varint"),
            )),
        }
    }

    /// A uvarint-length-prefixed string, copied into `out`.
    pub(super) fn string_into(&mut self, out: &mut Vec<u8>, what: &str) -> Result<()> {
        let at = self.pos;
        let len = self.uvarint(what)?;
        let len = usize::try_from(len)
            .map_err(|_| TsdbError::corrupt(self.path, at, format!("{what}: length {len}")))?;
        let bytes = self.take(len, what)?;
        out.clear();
        out.extend_from_slice(bytes);
        Ok(())
    }

    /// Checks that the cursor consumed the section exactly and that the be32 after it is the
    /// CRC of everything consumed.
    pub(super) fn check_crc(&mut self, what: &str) -> Result<()> {
        if self.pos != self.end {
            return Err(TsdbError::corrupt(
                self.path,
                self.pos,
                format!(
                    "{what}: {} bytes left after the last entry",
                    self.end - self.pos
                ),
            ));
        }
        let stored = self.window.read(self.pos, 4, what)?;
        let stored = u32::from_be_bytes(stored.try_into().expect("4 bytes"));
        if stored != self.crc {
            return Err(TsdbError::corrupt(
                self.path,
                self.pos,
                format!(
                    "{what}: CRC mismatch: stored {stored:#010x}, computed {:#010x}",
                    self.crc
                ),
            ));
        }
        Ok(())
    }

    /// Reads the be32 length at the cursor, checks that the section and its CRC end by
    /// `limit`, and narrows the cursor to the section (CRC restarted after the length).
    pub(super) fn enter_section(&mut self, limit: u64, what: &str) -> Result<u64> {
        let start = self.pos;
        let len = u64::from(self.be32(what)?);
        if start + 4 + len + 4 > limit {
            return Err(TsdbError::corrupt(
                self.path,
                start,
                format!("{what}: {len} bytes run past the end of the section at {limit}"),
            ));
        }
        self.end = start + 4 + len;
        self.crc = 0;
        Ok(len)
    }
}

/// One entry of the postings offset table.
#[derive(Default)]
pub(super) struct OffsetEntry {
    /// The label name.
    pub(super) name: Vec<u8>,
    /// The label value.
    pub(super) value: Vec<u8>,
    /// Absolute offset of the postings list.
    pub(super) list: u64,
    /// Absolute offset of the entry itself, for error messages.
    pub(super) at: u64,
}

impl OffsetEntry {
    /// Decodes the entry at the cursor.
    pub(super) fn read(&mut self, c: &mut Cursor<'_>) -> Result<()> {
        self.at = c.pos;
        let keys = c.uvarint("postings offset table key count")?;
        if keys != 2 {
            return Err(TsdbError::corrupt(
                c.path,
                self.at,
                format!("postings offset table entry has {keys} keys, want 2"),
            ));
        }
        c.string_into(&mut self.name, "postings offset table name")?;
        c.string_into(&mut self.value, "postings offset table value")?;
        self.list = c.uvarint("postings offset table offset")?;
        Ok(())
    }
}

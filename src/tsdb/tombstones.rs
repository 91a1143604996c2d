//! The `tombstones` file: deleted time ranges per series.
//!
//! Layout: `be32 magic 0x0130BA30 | u8 version 1 | entries… | be32 CRC32C(entries)`, each entry
//! `uvarint64 series ref | varint64 mint | varint64 maxt` (closed interval, series ref = the
//! index's offset/16). The CRC does not cover the header. An empty file is 9 bytes.
//! Thanos buckets carry no tombstones file, so a missing file reads as "no tombstones".

use std::collections::BTreeMap;
use std::path::Path;

use super::encoding::{crc32, Decbuf, Encbuf};
use super::error::{Result, TsdbError};
use super::fsutil;

/// The tombstones file magic number.
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
/// The tombstones format version.
pub const TOMBSTONES_VERSION: u8 = 1;
/// The file name in a block directory.
pub const TOMBSTONES_FILENAME: &str = "tombstones";
const HEADER_LEN: usize = 5;
const CRC_LEN: usize = 4;

/// A closed interval `[min_time, max_time]` of deleted samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    /// First deleted timestamp.
    pub min_time: i64,
    /// Last deleted timestamp (inclusive).
    pub max_time: i64,
}

impl Interval {
    /// True when `t` lies in the interval.
    pub fn contains(&self, t: i64) -> bool {
        self.min_time <= t && t <= self.max_time
    }
}

/// Deleted intervals per series reference, merged and sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tombstones {
    by_series: BTreeMap<u64, Vec<Interval>>,
}

impl Tombstones {
    /// Adds a deleted interval, merging it with overlapping or adjacent ones.
    pub fn add(&mut self, series_ref: u64, iv: Interval) {
        let list = self.by_series.entry(series_ref).or_default();
        list.push(iv);
        merge_intervals(list);
    }

    /// Adds every interval of `other`.
    pub fn merge(&mut self, other: &Tombstones) {
        for (series_ref, ivs) in &other.by_series {
            for iv in ivs {
                self.add(*series_ref, *iv);
            }
        }
    }

    /// The deleted intervals of a series (empty when none).
    pub fn get(&self, series_ref: u64) -> &[Interval] {
        self.by_series.get(&series_ref).map_or(&[], Vec::as_slice)
    }

    /// Total number of intervals, as `stats.numTombstones` counts them.
    pub fn num_intervals(&self) -> u64 {
        self.by_series.values().map(|v| v.len() as u64).sum()
    }

    /// True when nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// Reads `<dir>/tombstones`; a missing file means no tombstones.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let path = dir.join(TOMBSTONES_FILENAME);
        match std::fs::read(&path) {
            Ok(bytes) => Self::decode(&bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(TsdbError::io(&path, e)),
        }
    }

    /// Decodes a tombstones file's bytes; `path` names it in errors.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(TsdbError::corrupt(
                path,
                0,
                format!("file too short ({} bytes)", bytes.len()),
            ));
        }
        let mut d = Decbuf::new(bytes, 0, path);
        let magic = d.be32("magic")?;
        if magic != TOMBSTONES_MAGIC {
            return Err(TsdbError::corrupt(
                path,
                0,
                format!("bad magic {magic:#010x}"),
            ));
        }
        let version = d.u8("version")?;
        if version != TOMBSTONES_VERSION {
            return Err(TsdbError::corrupt(
                path,
                4,
                format!("unsupported version {version}"),
            ));
        }
        let entries = &bytes[HEADER_LEN..bytes.len() - CRC_LEN];
        let stored =
            u32::from_be_bytes(bytes[bytes.len() - CRC_LEN..].try_into().expect("4 bytes"));
        if crc32(entries) != stored {
            let at = (bytes.len() - CRC_LEN) as u64;
            return Err(TsdbError::corrupt(
                path,
                at,
                "CRC32C mismatch over the entries",
            ));
        }
        let mut d = Decbuf::new(entries, HEADER_LEN as u64, path);
        // Collected first and merged once per series: merging on every entry, as `add` does,
        // would take quadratic time on a file with many intervals for one series.
        let mut by_series: BTreeMap<u64, Vec<Interval>> = BTreeMap::new();
        while d.remaining() > 0 {
            let series_ref = d.uvarint("series ref")?;
            let min_time = d.varint("interval mint")?;
            let max_time = d.varint("interval maxt")?;
            if max_time < min_time {
                return Err(d.corrupt(format!("interval [{min_time}, {max_time}] is reversed")));
            }
            by_series
                .entry(series_ref)
                .or_default()
                .push(Interval { min_time, max_time });
        }
        by_series.values_mut().for_each(merge_intervals);
        Ok(Tombstones { by_series })
    }

    /// Encodes the file, entries sorted by series ref then time.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encbuf::new();
        e.put_be32(TOMBSTONES_MAGIC);
        e.put_u8(TOMBSTONES_VERSION);
        for (series_ref, ivs) in &self.by_series {
            for iv in ivs {
                e.put_uvarint(*series_ref);
                e.put_varint(iv.min_time);
                e.put_varint(iv.max_time);
            }
        }
        e.put_crc_since(HEADER_LEN);
        e.buf
    }

    /// Writes `<dir>/tombstones` atomically.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        fsutil::write_atomic(&dir.join(TOMBSTONES_FILENAME), &self.encode())
    }
}

/// Sorts `list` and merges its overlapping or adjacent intervals.
fn merge_intervals(list: &mut Vec<Interval>) {
    list.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(list.len());
    for iv in list.drain(..) {
        match merged.last_mut() {
            Some(last) if iv.min_time <= last.max_time.saturating_add(1) => {
                last.max_time = last.max_time.max(iv.max_time);
            }
            _ => merged.push(iv),
        }
    }
    *list = merged;
}

#[cfg(test)]
mod tests;

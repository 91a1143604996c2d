//! [`NameIndex`]: what the reader keeps of the postings offset table, built by one
//! CRC-checked pass on the first lookup. Per label name it keeps where its entries are and,
//! like Prometheus, every 32nd value, so a lookup decodes at most 32 entries while the
//! memory stays a thirty-second of the table.

use super::cursor::{Cursor, OffsetEntry};
use crate::tsdb::error::{Result, TsdbError};

/// One value in this many is kept in memory.
const SAMPLE_EVERY: u32 = 32;
/// The smallest table entry: key count, two empty strings, a one-byte offset.
const ENTRY_BYTES_MIN: u64 = 4;

/// A value kept in memory: entry number `SAMPLE_EVERY * i` of its run.
struct Sample {
    value: Box<[u8]>,
    /// Absolute offset of the entry.
    at: u64,
}

/// A run of consecutive table entries with the same label name.
struct NameRun {
    name: String,
    /// Absolute offset of the run's first entry.
    first: u64,
    count: u32,
    samples: Vec<Sample>,
}

/// The label names of the postings offset table and where their entries are: one run per
/// name (format v2, sorted), or one per run of equal names (v1 tables are unsorted).
pub(super) struct NameIndex {
    runs: Vec<NameRun>,
    /// Runs sorted by unique name and values sorted within runs (required for v2).
    sorted: bool,
}

impl NameIndex {
    /// Reads the table at the cursor, which must be at the table's be32 length; checks its
    /// bounds and CRC. A v2 table must be sorted.
    pub(super) fn scan(
        c: &mut Cursor<'_>,
        entry: &mut OffsetEntry,
        table_end: u64,
        v2: bool,
    ) -> Result<Self> {
        let start = c.pos;
        let len = c.enter_section(table_end, "postings offset table")?;
        let count = c.be32("postings offset table count")?;
        if u64::from(count) > len.saturating_sub(4) / ENTRY_BYTES_MIN {
            return Err(TsdbError::corrupt(
                c.path,
                start + 4,
                format!("postings offset table: {count} entries cannot fit in {len} bytes"),
            ));
        }
        let mut runs: Vec<NameRun> = Vec::new();
        let mut sorted = true;
        let mut previous_value = Vec::new();
        for _ in 0..count {
            entry.read(c)?;
            match runs.last_mut() {
                Some(run) if run.name.as_bytes() == entry.name.as_slice() => {
                    sorted &= entry.value > previous_value;
                    run.add(entry);
                }
                last => {
                    sorted &= last.is_none_or(|run| run.name.as_bytes() < entry.name.as_slice());
                    let name = String::from_utf8(entry.name.clone()).map_err(|_| {
                        TsdbError::corrupt(c.path, entry.at, "label name is not valid UTF-8")
                    })?;
                    let mut run = NameRun {
                        name,
                        first: entry.at,
                        count: 0,
                        samples: Vec::new(),
                    };
                    run.add(entry);
                    runs.push(run);
                }
            }
            std::mem::swap(&mut previous_value, &mut entry.value);
        }
        c.check_crc("postings offset table")?;
        if !sorted && v2 {
            return Err(TsdbError::corrupt(
                c.path,
                start,
                "postings offset table is not sorted",
            ));
        }
        runs.shrink_to_fit();
        Ok(NameIndex { runs, sorted })
    }

    /// True when values come sorted (and unique) within each name.
    pub(super) fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// Every label name, sorted, without the empty name of the all-series list.
    pub(super) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .runs
            .iter()
            .filter(|r| !r.name.is_empty())
            .map(|r| r.name.clone())
            .collect();
        if !self.sorted {
            names.sort_unstable();
            names.dedup();
        }
        names
    }

    /// `(first entry offset, entry count)` of the entries that can hold label `name`, narrowed
    /// to those that can hold `value` when given and the table is sorted.
    pub(super) fn ranges(&self, name: &str, value: Option<&str>) -> Vec<(u64, u32)> {
        if !self.sorted {
            return self
                .runs
                .iter()
                .filter(|r| r.name == name)
                .map(|r| (r.first, r.count))
                .collect();
        }
        let Ok(i) = self.runs.binary_search_by(|r| r.name.as_str().cmp(name)) else {
            return Vec::new();
        };
        let run = &self.runs[i];
        let Some(value) = value else {
            return vec![(run.first, run.count)];
        };
        // The last sample <= value starts the only stretch that can hold it.
        match run
            .samples
            .partition_point(|s| *s.value <= *value.as_bytes())
        {
            0 => Vec::new(),
            n => {
                let skipped = (n as u32 - 1) * SAMPLE_EVERY;
                vec![(
                    run.samples[n - 1].at,
                    (run.count - skipped).min(SAMPLE_EVERY),
                )]
            }
        }
    }
}

impl NameRun {
    fn add(&mut self, entry: &OffsetEntry) {
        if self.count % SAMPLE_EVERY == 0 {
            self.samples.push(Sample {
                value: entry.value.as_slice().into(),
                at: entry.at,
            });
        }
        self.count += 1;
    }
}

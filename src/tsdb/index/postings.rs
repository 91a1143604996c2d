//! The postings lists the writer builds: one record per (label pair, series) and one per
//! series for the all-series list, sorted at the end into the lists in key order. Memory stays
//! within [`RUN_BYTES_DEFAULT`] for any block: a full buffer of records is sorted and spilled
//! to an anonymous temporary file as one sorted run, and the lists are read back by merging
//! the runs. A block whose records fit in one buffer never touches a file.
//!
//! A record is a `u128`: bit 96 set for a label pair (so the all-series records sort first),
//! then the pair's key (name symbol ref in the high half, value ref in the low half: symbol
//! references sort like their strings, so keys sort like (name, value) strings), then the
//! series id. Sorting the records sorts the lists by key and each list's ids ascending.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

/// Bytes of records kept in memory before a sorted run is spilled (4 Mi records).
pub(super) const RUN_BYTES_DEFAULT: usize = 64 << 20;
/// Records read from a spilled run at a time while merging.
const MERGE_READ_RECORDS: usize = 4096;
const RECORD_BYTES: usize = 16;
const PAIR_FLAG: u128 = 1 << 96;

/// A label pair as one sortable key: name in the high half, value in the low half.
pub(super) fn pack(name: u32, value: u32) -> u64 {
    (u64::from(name) << 32) | u64::from(value)
}

pub(super) fn unpack(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// The list a record belongs to: `None` for the all-series list, else the pair's key.
pub(super) fn list_of(record: u128) -> Option<u64> {
    (record & PAIR_FLAG != 0).then_some((record >> 32) as u64)
}

/// The series id of a record.
pub(super) fn id_of(record: u128) -> u32 {
    record as u32
}

/// Accumulates the records of every series written.
pub(super) struct PostingsBuilder {
    buffer: Vec<u128>,
    run_records: usize,
    /// Sorted runs spilled so far: the file and each run's (first record, records).
    spill: Option<(File, Vec<(u64, u64)>)>,
    series: u64,
}

impl PostingsBuilder {
    /// A builder that spills a sorted run every `run_bytes` of records.
    pub(super) fn new(run_bytes: usize) -> Self {
        let run_records = (run_bytes / RECORD_BYTES).max(1);
        PostingsBuilder {
            buffer: Vec::with_capacity(run_records.min(1 << 16)),
            run_records,
            spill: None,
            series: 0,
        }
    }

    /// True before the first series.
    pub(super) fn is_empty(&self) -> bool {
        self.series == 0
    }

    /// Records series `id` with its label pairs (`(name, value)` refs, in any order).
    pub(super) fn add(&mut self, id: u32, labels: &[(u32, u32)]) -> std::io::Result<()> {
        self.buffer.push(u128::from(id));
        for &(name, value) in labels {
            let key = u128::from(pack(name, value));
            self.buffer.push(PAIR_FLAG | key << 32 | u128::from(id));
        }
        self.series += 1;
        if self.buffer.len() >= self.run_records {
            self.spill_run()?;
        }
        Ok(())
    }

    /// Sorts the buffer and appends it to the spill file as one run.
    fn spill_run(&mut self) -> std::io::Result<()> {
        self.buffer.sort_unstable();
        let (file, runs) = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert((tempfile::tempfile()?, Vec::new())),
        };
        let first = runs.last().map_or(0, |&(start, n)| start + n);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &*file);
        for r in &self.buffer {
            out.write_all(&r.to_le_bytes())?;
        }
        out.flush()?;
        runs.push((first, self.buffer.len() as u64));
        self.buffer.clear();
        Ok(())
    }

    /// Every record in sorted order.
    pub(super) fn into_sorted(mut self) -> std::io::Result<Sorted> {
        if self.spill.is_none() {
            self.buffer.sort_unstable();
            return Ok(Sorted::Memory(self.buffer.into_iter()));
        }
        if !self.buffer.is_empty() {
            self.spill_run()?;
        }
        let (file, runs) = self.spill.take().expect("checked above");
        let mut merge = Merge {
            file,
            runs: runs
                .into_iter()
                .map(|(start, n)| Run {
                    next: start,
                    end: start + n,
                    buf: Vec::new(),
                    at: 0,
                })
                .collect(),
            heap: BinaryHeap::new(),
        };
        for i in 0..merge.runs.len() {
            if let Some(r) = merge.pop_run(i)? {
                merge.heap.push(Reverse((r, i)));
            }
        }
        Ok(Sorted::Merge(merge))
    }
}

/// The records in order: from memory, or merged from the spilled runs.
pub(super) enum Sorted {
    /// One run, never spilled.
    Memory(std::vec::IntoIter<u128>),
    /// A k-way merge of the spilled runs.
    Merge(Merge),
}

impl Iterator for Sorted {
    type Item = std::io::Result<u128>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(records) => records.next().map(Ok),
            Sorted::Merge(merge) => merge.next().transpose(),
        }
    }
}

/// One spilled run being read: records `[next, end)` of the file are still to be read.
struct Run {
    next: u64,
    end: u64,
    buf: Vec<u128>,
    at: usize,
}

/// A k-way merge of sorted runs in one file.
pub(super) struct Merge {
    file: File,
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<(u128, usize)>>,
}

impl Merge {
    fn next(&mut self) -> std::io::Result<Option<u128>> {
        let Some(Reverse((record, run))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(r) = self.pop_run(run)? {
            self.heap.push(Reverse((r, run)));
        }
        Ok(Some(record))
    }

    /// The next record of run `i`, reading a batch from the file when its buffer is empty.
    fn pop_run(&mut self, i: usize) -> std::io::Result<Option<u128>> {
        let run = &mut self.runs[i];
        if run.at == run.buf.len() {
            let n = (run.end - run.next).min(MERGE_READ_RECORDS as u64) as usize;
            if n == 0 {
                return Ok(None);
            }
            let mut bytes = vec![0u8; n * RECORD_BYTES];
            self.file
                .read_exact_at(&mut bytes, run.next * RECORD_BYTES as u64)?;
            run.buf.clear();
            run.buf.extend(
                bytes
                    .chunks_exact(RECORD_BYTES)
                    .map(|b| u128::from_le_bytes(b.try_into().expect("16 bytes"))),
            );
            run.next += n as u64;
            run.at = 0;
        }
        run.at += 1;
        Ok(Some(run.buf[run.at - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spilled runs merge to the same order as one run in memory.
    #[test]
    fn spilled_runs_merge_like_one_sorted_run() {
        let series: Vec<(u32, Vec<(u32, u32)>)> = (0..1000u32)
            .map(|id| (id * 3, vec![(1, id % 7), (2, id % 13), (5, 1000 - id)]))
            .collect();
        let collect = |run_bytes: usize| {
            let mut b = PostingsBuilder::new(run_bytes);
            for (id, labels) in &series {
                b.add(*id, labels).unwrap();
            }
            let spilled = b.spill.is_some();
            let records: Vec<u128> = b.into_sorted().unwrap().map(Result::unwrap).collect();
            (spilled, records)
        };
        let (spilled, in_memory) = collect(RUN_BYTES_DEFAULT);
        assert!(!spilled);
        let (spilled, merged) = collect(100 * RECORD_BYTES);
        assert!(spilled, "a small budget spills");
        assert_eq!(merged, in_memory);
        assert_eq!(merged.len(), 4000);
        assert!(merged[..1000].iter().all(|&r| list_of(r).is_none()));
        assert_eq!(list_of(merged[1000]), Some(pack(1, 0)));
        assert!(merged.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(id_of(merged[1]), 3);
    }
}

//! The compaction pipeline: three stages on their own threads, so that reading, merging and
//! writing overlap and overlapping series merge on every core.
//!
//! 1. The *reader* owns the inputs, walks their series k-way in label order and packs each
//!    output series' source chunks into a [`Batch`] (bounded by [`BATCH_BYTES_MAX`] and
//!    [`BATCH_SERIES_MAX`]).
//! 2. *Mergers* (one per core) turn each batch's source chunks into output chunks.
//! 3. The *writer* (the calling thread) puts batches back in order and writes chunks and index
//!    entries, so the output does not depend on the number of threads.
//!
//! Queues are bounded ([`QUEUE_BATCHES_MAX`]), so memory stays bounded whatever the block
//! size, and written batches go back to the reader for reuse, so their buffers are allocated
//! once. When a stage fails, the others notice their closed channels and stop; the first error
//! is returned.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::super::error::Result;
use super::dedup::DedupFunc;
use super::merge::{merge_series_chunks, MergeFailure};
use super::series::{Input, SourceChunk};

/// A batch is sent on once its chunk bytes reach this size.
pub const BATCH_BYTES_MAX: usize = 1 << 20;
/// A batch is sent on once it holds this many series.
pub const BATCH_SERIES_MAX: usize = 2048;
/// Batches waiting in each queue between two stages.
pub const QUEUE_BATCHES_MAX: usize = 2;
/// Written batches kept for reuse.
pub const RECYCLED_BATCHES_MAX: usize = 8;

/// One output series in a batch.
pub(super) struct BatchSeries {
    /// Its labels (output symbol refs) in [`Batch::labels`].
    pub labels: Range<usize>,
    /// Its source chunks in [`Batch::sources`].
    pub sources: Range<usize>,
    /// Its output chunks in [`Batch::merged`] (filled by a merger).
    pub merged: Range<usize>,
}

/// Consecutive output series and their chunk bytes.
#[derive(Default)]
pub(super) struct Batch {
    seq: u64,
    /// Chunk bytes of the sources and of re-encoded output chunks.
    pub arena: Vec<u8>,
    /// All labels of the batch's series, concatenated.
    pub labels: Vec<(u32, u32)>,
    /// All source chunks, per series.
    pub sources: Vec<SourceChunk>,
    /// All output chunks, per series.
    pub merged: Vec<SourceChunk>,
    /// The series, in label order.
    pub series: Vec<BatchSeries>,
}

impl Batch {
    /// Empties the batch, keeping its buffers.
    fn clear(&mut self) {
        self.arena.clear();
        self.labels.clear();
        self.sources.clear();
        self.merged.clear();
        self.series.clear();
    }
}

/// A merge failure and the series it happened in.
pub(super) struct FailedSeries {
    /// The series' labels (output symbol refs).
    pub labels: Vec<(u32, u32)>,
    /// What went wrong.
    pub failure: MergeFailure,
}

/// Runs the pipeline over `inputs` with `mergers` merge threads, calling `write` for every
/// finished batch in order. `failed` turns a merge failure into the returned error.
pub(super) fn run(
    inputs: Vec<Input>,
    mergers: usize,
    dedup: DedupFunc,
    mut write: impl FnMut(&Batch) -> Result<()>,
    failed: impl FnOnce(FailedSeries) -> super::super::error::TsdbError,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (to_merge, merge_queue) = sync_channel::<Batch>(QUEUE_BATCHES_MAX);
        let (to_write, write_queue) =
            sync_channel::<std::result::Result<Batch, FailedSeries>>(QUEUE_BATCHES_MAX);
        let (to_recycle, recycled) = sync_channel::<Batch>(RECYCLED_BATCHES_MAX);
        let reader = scope.spawn(move || read_batches(inputs, &to_merge, &recycled));
        let merge_queue = Arc::new(Mutex::new(merge_queue));
        for _ in 0..mergers.max(1) {
            let (queue, out) = (Arc::clone(&merge_queue), to_write.clone());
            scope.spawn(move || merge_batches(&queue, dedup, &out));
        }
        // Only the mergers hold the merge queue: once they stop (the writer failed), the
        // reader's sends fail and it stops too, instead of waiting on a full queue forever.
        drop(merge_queue);
        drop(to_write);
        let written = write_in_order(&write_queue, &mut write, &to_recycle);
        drop(write_queue);
        let read = reader.join().expect("reader thread panicked");
        read?;
        match written? {
            Some(f) => Err(failed(f)),
            None => Ok(()),
        }
    })
}

/// Stage 1: the k-way walk over the inputs' series.
fn read_batches(
    mut inputs: Vec<Input>,
    out: &SyncSender<Batch>,
    recycled: &Receiver<Batch>,
) -> Result<()> {
    let mut seq = 0;
    let mut batch = Batch::default();
    let mut members = Vec::with_capacity(inputs.len());
    while let Some(min) = lowest_series(&inputs) {
        members.clear();
        members.extend((0..inputs.len()).filter(|&i| inputs[i].current_labels() == Some(&min[..])));
        let labels_start = batch.labels.len();
        batch.labels.extend_from_slice(&min);
        let sources_start = batch.sources.len();
        for &i in &members {
            inputs[i].source_chunks(&mut batch.arena, &mut batch.sources)?;
        }
        batch.series.push(BatchSeries {
            labels: labels_start..batch.labels.len(),
            sources: sources_start..batch.sources.len(),
            merged: 0..0,
        });
        for &i in &members {
            inputs[i].advance()?;
        }
        if batch.arena.len() >= BATCH_BYTES_MAX || batch.series.len() >= BATCH_SERIES_MAX {
            batch.seq = seq;
            seq += 1;
            let next = recycled.try_recv().unwrap_or_default();
            if out.send(std::mem::replace(&mut batch, next)).is_err() {
                return Ok(()); // The writer stopped; it reports why.
            }
        }
    }
    if !batch.series.is_empty() {
        batch.seq = seq;
        let _ = out.send(batch);
    }
    Ok(())
}

fn lowest_series(inputs: &[Input]) -> Option<Vec<(u32, u32)>> {
    inputs
        .iter()
        .filter_map(Input::current_labels)
        .min()
        .map(<[(u32, u32)]>::to_vec)
}

/// Stage 2: merges the source chunks of each series of each batch.
fn merge_batches(
    queue: &Mutex<Receiver<Batch>>,
    dedup: DedupFunc,
    out: &SyncSender<std::result::Result<Batch, FailedSeries>>,
) {
    let mut samples = Vec::new();
    loop {
        let next = queue.lock().expect("merge queue lock").recv();
        let Ok(mut batch) = next else { return };
        let result = merge_batch(&mut batch, dedup, &mut samples).map(|()| batch);
        if out.send(result).is_err() {
            return;
        }
    }
}

fn merge_batch(
    batch: &mut Batch,
    dedup: DedupFunc,
    samples: &mut Vec<(i64, f64)>,
) -> std::result::Result<(), FailedSeries> {
    let Batch {
        arena,
        labels,
        sources,
        merged,
        series,
        ..
    } = batch;
    for s in series.iter_mut() {
        let start = merged.len();
        merge_series_chunks(
            &mut sources[s.sources.clone()],
            dedup,
            arena,
            samples,
            merged,
        )
        .map_err(|failure| FailedSeries {
            labels: labels[s.labels.clone()].to_vec(),
            failure,
        })?;
        s.merged = start..merged.len();
    }
    Ok(())
}

/// Stage 3: hands batches to `write` in sequence order; returns the first merge failure.
fn write_in_order(
    queue: &Receiver<std::result::Result<Batch, FailedSeries>>,
    write: &mut impl FnMut(&Batch) -> Result<()>,
    recycle: &SyncSender<Batch>,
) -> Result<Option<FailedSeries>> {
    let mut next_seq = 0;
    let mut waiting: BTreeMap<u64, Batch> = BTreeMap::new();
    for result in queue.iter() {
        let batch = match result {
            Ok(b) => b,
            Err(failed) => return Ok(Some(failed)),
        };
        waiting.insert(batch.seq, batch);
        while let Some(mut batch) = waiting.remove(&next_seq) {
            write(&batch)?;
            next_seq += 1;
            batch.clear();
            // Full: the reader has enough spares; this one is freed.
            let _ = recycle.try_send(batch);
        }
    }
    Ok(None)
}

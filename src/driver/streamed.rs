//! Streaming compaction jobs (the default, `docs/streaming.md`): the block engine reads the
//! input blocks where they are — ranged GETs from the bucket ([`super::ranged`]), or the
//! files themselves for a FILESYSTEM bucket — and writes the new block's files to the bucket
//! as it produces them ([`super::staged`]). Nothing touches `--data-dir`.
//!
//! The job ends with the files staged, not visible; the job's upload step makes them objects
//! under the write permit, and meta.json follows as always.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;

use super::jobs::{job_error, HashFunc};
use super::ranged::BucketBlockFiles;
use super::staged::{BucketOutput, PartGate, StagedBlock};
use crate::core::types::{CompactJob, CompactedBlock, JobError, JobKind};
use crate::tsdb::block::{BlockReader, BlockTarget};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::compact::{compact_to, CompactOptions};
use crate::tsdb::downsample::downsample_to;
use crate::tsdb::files::{BlockFiles, LocalBlockFiles};
use crate::tsdb::index::ReadOptions;
use crate::tsdb::window::WINDOW_BYTES_DEFAULT;
use crate::web::board::JobProgress;

/// Staged blocks of finished jobs, waiting for their upload step.
pub type Staged = Arc<Mutex<BTreeMap<BlockId, StagedBlock>>>;

/// Where a streaming job reads its inputs.
#[derive(Clone, Debug)]
pub enum InputSource {
    /// Ranged GETs from the bucket.
    Bucket,
    /// The files in place under this directory: a FILESYSTEM bucket's root.
    Directory(PathBuf),
}

/// Where a streaming job's output goes and what it counts.
pub struct JobStreams {
    /// Parts are sent only while it allows.
    pub gate: PartGate,
    /// Where the finished block's files wait for the job's upload step.
    pub staged: Staged,
    /// The job's reads and writes are counted here (the block viewer shows them).
    pub progress: Arc<JobProgress>,
}

/// Runs a compaction or downsampling job reading from and writing to the bucket; returns the
/// new block (`None` if it has no samples) and stages its files in `io.staged`.
pub async fn run_streamed_job(
    store: Arc<dyn ObjectStore>,
    source: InputSource,
    job: CompactJob,
    opts: CompactOptions,
    hash: HashFunc,
    io: JobStreams,
) -> Result<Option<CompactedBlock>, JobError> {
    let JobStreams {
        gate,
        staged,
        progress,
    } = io;
    let counts = Arc::clone(&progress.reads);
    let mut inputs: Vec<Box<dyn BlockFiles>> = Vec::with_capacity(job.inputs.len());
    for meta in &job.inputs {
        inputs.push(match &source {
            InputSource::Bucket => Box::new(
                BucketBlockFiles::list(Arc::clone(&store), meta.ulid, Arc::clone(&counts))
                    .await
                    .map_err(JobError::io)?,
            ),
            InputSource::Directory(root) => Box::new(LocalBlockFiles::new(
                &root.join(meta.ulid.to_string()),
                WINDOW_BYTES_DEFAULT,
            )),
        });
    }
    let output = Arc::new(
        BucketOutput::new(store, job.output, hash, gate)
            .counting(Arc::clone(&progress.bytes_written)),
    );
    let target = BlockTarget::Files(Arc::clone(&output) as _);
    let read = ReadOptions {
        accept_unsorted_label_names: opts.accept_malformed_index,
    };
    let (id, kind, metas) = (job.output, job.kind, job.inputs.clone());
    let series_done = Arc::clone(&progress.series_done);
    // The engine blocks on its reads and uploads: off the async threads.
    let result = tokio::task::spawn_blocking(move || {
        let blocks = inputs
            .iter()
            .zip(metas)
            .map(|(files, meta)| BlockReader::open_files(files.as_ref(), meta, read))
            .collect::<crate::tsdb::Result<Vec<_>>>()?;
        match kind {
            JobKind::Downsample { resolution_ms } => match blocks.into_iter().next() {
                Some(block) => {
                    downsample_to(block, target, id, resolution_ms, read, Some(&series_done))
                }
                None => Err(crate::tsdb::TsdbError::Unsupported(
                    "a downsampling job needs one input block".into(),
                )),
            },
            JobKind::Compact => compact_to(blocks, target, id, &opts),
        }
    })
    .await
    .map_err(|e| JobError::bad_input(format!("compaction task: {e}")))?;
    let block = output.staged();
    let read = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    if matches!(source, InputSource::Bucket) {
        tracing::info!(output = %id, gets = read(&counts.gets), bytes = read(&counts.bytes), jumps = read(&counts.jumps), "read the inputs from the bucket");
    }
    // Dropping `block` (an error, or no samples) aborts whatever it staged.
    let Some(compacted) = result.map_err(job_error)? else {
        return Ok(None);
    };
    let files = block.block_files();
    staged.lock().expect("not poisoned").insert(id, block);
    Ok(Some(CompactedBlock {
        meta: compacted.meta,
        files,
    }))
}

//! Real blocks for the simulated bucket: sources written by compactd's generator, compaction
//! and downsampling jobs run by the production block engine in a scratch directory, and the samples of a set
//! of blocks read back with compactd's reader (the end-of-world check that nothing was lost).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use compactd::bucket::layout::is_block_data;
use compactd::core::types::{CompactJob, CompactedBlock, JobError, JobKind};
use compactd::driver::jobs::job_error;
use compactd::tools::generate::{generate, GenerateOptions};
use compactd::tsdb::block::BlockReader;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::chunks::{ChunkRef, ENCODING_XOR};
use compactd::tsdb::compact::{compact_blocks, CompactOptions};
use compactd::tsdb::downsample::downsample_block;
use compactd::tsdb::labels::Labels;
use compactd::tsdb::meta::{BlockFile, BlockMeta};
use compactd::tsdb::xor::XorIter;
use compactd::units::HOUR_MS;

use crate::net::Files;

/// Two hours, the length of a source block.
pub const BLOCK_MS: i64 = 2 * HOUR_MS;

/// A series of a stream: its block's external labels (`thanos.labels`) and its own labels.
/// The generator gives every stream the same series labels, so the external labels keep the
/// streams' samples apart.
pub type SeriesKey = (BTreeMap<String, String>, Labels);

/// Every float sample per series, one per timestamp.
pub type Samples = BTreeMap<SeriesKey, BTreeMap<i64, u64>>;

/// One generated source block: its meta and files (meta.json included).
#[derive(Clone, Debug)]
pub struct SourceBlock {
    /// Its meta.
    pub meta: BlockMeta,
    /// Its files.
    pub files: Files,
}

/// Generates one stream of `blocks` consecutive 2h blocks from `start_ms` with the external
/// labels `labels` (none: blocks without a Thanos section) into `dir/<stream>`, and reads them
/// back.
pub fn generate_stream(
    dir: &Path,
    stream: &str,
    labels: BTreeMap<String, String>,
    start_ms: i64,
    blocks: usize,
    seed: u64,
) -> Result<Vec<SourceBlock>, String> {
    let out = dir.join(stream);
    let opts = GenerateOptions {
        out: out.clone(),
        series: 3,
        hours: 2.0 * blocks as f64,
        block_duration_ms: BLOCK_MS,
        start_ms,
        scrape_interval_ms: 300_000,
        external_labels: labels,
        seed,
    };
    let generated = generate(&opts).map_err(|e| format!("generate {stream}: {e}"))?;
    generated
        .into_iter()
        .map(|b| {
            Ok(SourceBlock {
                files: read_files(&b.dir)?,
                meta: b.meta,
            })
        })
        .collect()
}

/// Every file under `dir` as `(relative path, content)`, in path order.
pub fn read_files(dir: &Path) -> Result<Files, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in entries {
            let path = e.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let rel = path.strip_prefix(dir).expect("under dir");
                out.push((rel.to_string_lossy().into_owned(), bytes));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `files` under `dir`.
pub fn write_files(dir: &Path, files: &Files) -> Result<(), String> {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `job` with the production block engine in `scratch` on the downloaded `inputs` (each
/// block's `index` and `chunks/*`); returns the new block and the files to upload. Error
/// messages name `<scratch>` instead of the directory.
pub fn run_job(
    scratch: &Path,
    job: &CompactJob,
    inputs: &[(BlockId, Files)],
) -> Result<Option<(CompactedBlock, Files)>, JobError> {
    let dir = scratch.join(job.output.to_string());
    let result = compact_in(&dir, job, inputs);
    let _ = std::fs::remove_dir_all(&dir);
    // The scratch path is random: keep it out of the messages (they reach the event log).
    result.map_err(|mut e| {
        e.message = e
            .message
            .replace(&scratch.display().to_string(), "<scratch>");
        e
    })
}

fn compact_in(
    dir: &Path,
    job: &CompactJob,
    inputs: &[(BlockId, Files)],
) -> Result<Option<(CompactedBlock, Files)>, JobError> {
    let retryable = |message: String| JobError::io(message);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for meta in &job.inputs {
        let files = inputs
            .iter()
            .find(|(id, _)| *id == meta.ulid)
            .map(|(_, f)| f)
            .ok_or_else(|| retryable(format!("block {} was not downloaded", meta.ulid)))?;
        let local = dir.join("in").join(meta.ulid.to_string());
        write_files(&local, files).map_err(retryable)?;
        meta.write_dir(&local)
            .map_err(|e| retryable(e.to_string()))?;
        dirs.push(local);
    }
    let out = dir.join("out");
    std::fs::create_dir_all(&out).map_err(|e| retryable(format!("{}: {e}", out.display())))?;
    let opts = CompactOptions {
        threads: 1,
        ..CompactOptions::default()
    };
    // As the production driver: the job's kind picks the engine; local I/O errors are
    // retried, anything else halts.
    let made = match (job.kind, dirs.first()) {
        (JobKind::Compact, _) => compact_blocks(&dirs, &out, job.output, &opts),
        (JobKind::Downsample { resolution_ms }, Some(input)) => {
            downsample_block(input, &out, job.output, resolution_ms)
        }
        (JobKind::Downsample { .. }, None) => {
            return Err(JobError::bad_input(
                "a downsampling job needs one input block",
            ));
        }
    };
    let compacted = made.map_err(job_error)?;
    let Some(compacted) = compacted else {
        return Ok(None);
    };
    // As the production driver: `chunks/*` and `index` are uploaded and listed in the meta.
    let upload: Files = read_files(&compacted.dir)
        .map_err(retryable)?
        .into_iter()
        .filter(|(rel, _)| is_block_data(rel))
        .collect();
    let listed = upload
        .iter()
        .map(|(rel, bytes)| BlockFile {
            rel_path: rel.clone(),
            size_bytes: bytes.len() as i64,
            hash: None,
        })
        .collect();
    Ok(Some((
        CompactedBlock {
            meta: compacted.meta,
            files: listed,
        },
        upload,
    )))
}

/// The samples of `blocks` (each as its files, meta.json included), merged per series of a
/// stream ([`SeriesKey`]) with one sample per timestamp; values as bits so they compare
/// exactly.
pub fn read_samples(scratch: &Path, blocks: &[(BlockId, Files)]) -> Result<Samples, String> {
    let mut out = Samples::new();
    let (mut refs, mut chunks) = (Vec::new(), Vec::new());
    for (id, files) in blocks {
        let dir = scratch.join(id.to_string());
        write_files(&dir, files)?;
        let mut b = BlockReader::open(&dir).map_err(|e| format!("block {id}: {e}"))?;
        let external = b
            .meta
            .thanos
            .as_ref()
            .map(|t| t.labels.clone())
            .unwrap_or_default();
        let postings = b
            .index
            .all_postings()
            .map_err(|e| format!("block {id}: {e}"))?;
        for series in postings {
            b.index
                .series(series, &mut refs, &mut chunks)
                .map_err(|e| format!("block {id}: {e}"))?;
            let labels = b
                .index
                .series_labels(&refs)
                .map_err(|e| format!("block {id}: {e}"))?;
            let samples = out.entry((external.clone(), labels)).or_default();
            for c in &chunks {
                let (enc, data) = b
                    .chunks
                    .chunk(ChunkRef(c.chunk_ref))
                    .map_err(|e| format!("block {id}: {e}"))?;
                if enc != ENCODING_XOR {
                    return Err(format!("block {id}: chunk encoding {enc} is not XOR"));
                }
                let mut it = XorIter::new(data);
                while let Some((t, v)) = it.next_sample().map_err(|e| format!("block {id}: {e}"))? {
                    if t >= b.meta.min_time && t < b.meta.max_time {
                        samples.entry(t).or_insert(v.to_bits());
                    }
                }
            }
        }
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

//! `index_known_issues` of `tools bucket verify`: walks a block's index where it lies in the
//! bucket (streamed by [`BucketBlockFiles`], never downloaded whole) and checks what Thanos'
//! `block.GatherIndexHealthStats` checks, one issue per series and rule:
//! - every entry readable (the reader checks CRCs, bounds and symbol references) and label
//!   names unique;
//! - series in strictly increasing label order, none without labels or without chunks;
//! - label names sorted within a series (Prometheus 2.8.0 and older broke this);
//! - chunks inside the block's range `[minTime, maxTime]`, as Thanos bounds it: entirely
//!   outside, starting at the block's end (prometheus/tsdb#347) or partly outside;
//! - chunks in time order: one with exactly the previous one's range is a duplicate, one that
//!   starts at or before the previous one's end is out of order.
//!
//! The chunk data are not read (as in Thanos); `tools inspect` decodes them for a local block.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::driver::ranged::BucketBlockFiles;
use crate::tools::inspect::PROBLEMS_MAX;
use crate::tsdb::block::INDEX_FILENAME;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::files::BlockFiles;
use crate::tsdb::index::{ChunkMeta, IndexReader, IndexSeries, ReadOptions};
use crate::tsdb::labels::Labels;
use crate::tsdb::meta::BlockMeta;
use crate::tsdb::window::FileWindow;

/// Every index issue of the block `meta` describes, read from `store`.
pub async fn check_block(store: Arc<dyn ObjectStore>, meta: &BlockMeta) -> Vec<String> {
    let id = meta.ulid;
    let files = match BucketBlockFiles::list(store, id, Arc::default()).await {
        Ok(files) => files,
        Err(e) => return vec![format!("block {id}: {e}")],
    };
    let range = (meta.min_time, meta.max_time);
    let walk = tokio::task::spawn_blocking(move || check_files(&files, id, range));
    walk.await
        .unwrap_or_else(|e| vec![format!("block {id}: the index walk stopped: {e}")])
}

/// Opens the index of `files` and checks it.
fn check_files(files: &dyn BlockFiles, id: BlockId, range: (i64, i64)) -> Vec<String> {
    let opened = files.open(INDEX_FILENAME).and_then(|source| {
        let path = files.path_of(INDEX_FILENAME);
        let window = FileWindow::over(source, &path, files.window_bytes());
        // Unsorted label names are read, to be reported here with their series.
        let options = ReadOptions {
            accept_unsorted_label_names: true,
        };
        IndexReader::from_window(window, options)
    });
    match opened {
        Ok(mut reader) => check_index(&mut reader, id, range),
        Err(e) => vec![format!("block {id}: {e}")],
    }
}

/// Every issue of the index `reader` reads, for the block `id` spanning `range`; at most
/// [`PROBLEMS_MAX`], then a line saying the walk stopped.
pub fn check_index(reader: &mut IndexReader, id: BlockId, range: (i64, i64)) -> Vec<String> {
    let series = match reader.all_series() {
        Ok(series) => series,
        Err(e) => return vec![format!("block {id}: {e}")],
    };
    let mut issues = Vec::new();
    let mut previous: Option<Labels> = None;
    for entry in series {
        if issues.len() >= PROBLEMS_MAX {
            issues.push(format!("block {id}: stopped after {PROBLEMS_MAX} issues"));
            break;
        }
        match entry {
            Ok(s) => {
                let name = if s.labels.is_empty() {
                    format!("series #{}", s.id)
                } else {
                    format!("series {}", s.labels)
                };
                for what in series_issues(&s, previous.as_ref(), range) {
                    issues.push(format!("block {id}: {name}: {what}"));
                }
                previous = Some(s.labels);
            }
            Err(e) => issues.push(format!("block {id}: {e}")),
        }
    }
    issues
}

/// The issues of one series, which follows `previous` in the index, in a block spanning
/// `(min, max)`.
pub fn series_issues(s: &IndexSeries, previous: Option<&Labels>, range: (i64, i64)) -> Vec<String> {
    let mut issues = Vec::new();
    if s.labels.is_empty() {
        issues.push("has no labels".to_string());
    }
    if let Some(p) = previous.filter(|p| **p >= s.labels) {
        issues.push(format!(
            "out of order: sorts at or before the series before it, {p}"
        ));
    }
    if s.refs.windows(2).any(|w| w[1].0 < w[0].0) {
        issues.push("label names out of order (written by Prometheus 2.8.0 or older)".into());
    }
    if s.chunks.is_empty() {
        issues.push("has no chunks".into());
    }
    for (i, c) in s.chunks.iter().enumerate() {
        if let Some(what) = outside(c, range) {
            issues.push(format!("chunk {i} [{}, {}] {what}", c.min_time, c.max_time));
        }
        if let Some(what) = i.checked_sub(1).and_then(|p| out_of_order(&s.chunks[p], c)) {
            issues.push(format!("chunk {i} [{}, {}] {what}", c.min_time, c.max_time));
        }
    }
    issues
}

/// How a chunk lies outside the block range `[min, max]` (Thanos' bounds), if it does.
fn outside(c: &ChunkMeta, (min, max): (i64, i64)) -> Option<String> {
    if c.min_time >= min && c.max_time <= max {
        return None;
    }
    Some(if c.min_time > max || c.max_time < min {
        format!("lies completely outside the block range [{min}, {max}]")
    } else if c.min_time == max {
        format!("starts at the block's end {max} (prometheus/tsdb#347)")
    } else {
        format!("lies partly outside the block range [{min}, {max}]")
    })
}

/// How a chunk breaks the time order after `previous`, if it does.
fn out_of_order(previous: &ChunkMeta, c: &ChunkMeta) -> Option<String> {
    if c.min_time > previous.max_time {
        None
    } else if c.min_time == previous.min_time && c.max_time == previous.max_time {
        Some("duplicates the time range of the chunk before it".into())
    } else {
        Some(format!(
            "is out of order: starts at or before the end {} of the chunk before it",
            previous.max_time
        ))
    }
}

#[cfg(test)]
mod tests;

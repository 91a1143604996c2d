//! `compactd tools bucket ls|verify`: look at a bucket through any Thanos objstore config.
//!
//! `ls` prints one row per block directory: ULID, time range, level, resolution, samples,
//! external labels and marks (deletion, no-compact, partial, corrupt). `verify` checks what a
//! healthy bucket guarantees: no overlapping blocks within a stream (blocks marked for
//! deletion excluded), every file a meta.json lists present with its size, every meta.json and
//! marker readable, no partial uploads. It reports every issue and fails if there is one.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures::TryStreamExt;
use object_store::ObjectStore;

use crate::bucket::layout::block_of;
use crate::core::plan::{group_key, overlapping_blocks};
use crate::core::types::{MetaState, SyncResult, SyncedBlock};
use crate::driver::store::StoreExecutor;
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// Reads every block's meta and markers.
pub async fn sync(store: &std::sync::Arc<dyn ObjectStore>) -> anyhow::Result<SyncResult> {
    StoreExecutor::new(std::sync::Arc::clone(store))
        .sync()
        .await
        .map_err(anyhow::Error::msg)
}

/// The `ls` table.
pub fn render_ls(sync: &SyncResult) -> String {
    let mut rows: Vec<(String, i64, BlockId, String)> = Vec::new();
    for (id, b) in &sync.blocks {
        let (group, min, row) = ls_row(*id, b);
        rows.push((group, min, *id, row));
    }
    rows.sort();
    let mut out = format!(
        "{:<26}  {:<24}  {:<24}  {:>8}  {:>5}  {:>10}  {:>12}  {:<30}  {}\n",
        "ULID", "FROM", "UNTIL", "RANGE", "LEVEL", "RESOLUTION", "SAMPLES", "LABELS", "MARKS"
    );
    for (_, _, _, row) in rows {
        out.push_str(&row);
    }
    let _ = writeln!(out, "{} block directories", sync.blocks.len());
    out
}

fn ls_row(id: BlockId, b: &SyncedBlock) -> (String, i64, String) {
    let mut marks: Vec<&str> = Vec::new();
    if b.deletion_mark.is_some() {
        marks.push("deletion");
    }
    if b.no_compact_mark.is_some() {
        marks.push("no-compact");
    }
    let m = match &b.meta {
        MetaState::Ok(m) => m,
        MetaState::Missing | MetaState::Corrupt(_) => {
            marks.push(if matches!(b.meta, MetaState::Missing) {
                "partial"
            } else {
                "corrupt-meta"
            });
            let row = format!(
                "{id:<26}  {:<24}  {:<24}  {:>8}  {:>5}  {:>10}  {:>12}  {:<30}  {}\n",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                marks.join(",")
            );
            return (String::new(), i64::MIN, row);
        }
    };
    let key = group_key(m);
    let labels: Vec<String> = key.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let range = crate::duration::format_duration_ms((m.max_time - m.min_time).max(0) as u64);
    let row = format!(
        "{id:<26}  {:<24}  {:<24}  {:>8}  {:>5}  {:>10}  {:>12}  {:<30}  {}\n",
        format_rfc3339_ms(m.min_time),
        format_rfc3339_ms(m.max_time),
        range,
        m.compaction.level,
        key.resolution,
        m.stats.num_samples,
        labels.join(","),
        marks.join(",")
    );
    (key.to_string(), m.min_time, row)
}

/// Every problem `verify` found; empty for a healthy bucket.
pub async fn verify(store: &std::sync::Arc<dyn ObjectStore>) -> anyhow::Result<Vec<String>> {
    let sync = sync(store).await?;
    let objects: Vec<object_store::ObjectMeta> = store.list(None).try_collect().await?;
    let mut sizes: BTreeMap<BlockId, BTreeMap<String, u64>> = BTreeMap::new();
    for o in &objects {
        if let Some(id) = block_of(o.location.as_ref()) {
            let rel = o
                .location
                .as_ref()
                .split_once('/')
                .map_or("", |(_, r)| r)
                .to_string();
            sizes.entry(id).or_default().insert(rel, o.size);
        }
    }
    let mut issues = Vec::new();
    let mut live: Vec<&BlockMeta> = Vec::new();
    for (id, b) in &sync.blocks {
        issues.extend(b.marker_problems.iter().cloned());
        match &b.meta {
            MetaState::Missing => issues.push(format!(
                "block {id}: partial upload or unfinished delete (no meta.json)"
            )),
            MetaState::Corrupt(why) => {
                issues.push(format!("block {id}: unreadable meta.json: {why}"))
            }
            MetaState::Ok(m) => {
                check_files(m, sizes.get(id), &mut issues);
                if b.deletion_mark.is_none() {
                    live.push(m);
                }
            }
        }
    }
    let groups = crate::core::plan::group_blocks(live);
    for (key, blocks) in groups {
        for set in overlapping_blocks(&blocks) {
            let ids: Vec<String> = set.iter().map(ToString::to_string).collect();
            issues.push(format!(
                "group {key}: overlapping blocks [{}]",
                ids.join(", ")
            ));
        }
    }
    Ok(issues)
}

/// Checks that the objects a meta lists (`thanos.files`, else index + segment_files) exist
/// with the listed sizes.
fn check_files(m: &BlockMeta, objects: Option<&BTreeMap<String, u64>>, issues: &mut Vec<String>) {
    let empty = BTreeMap::new();
    let objects = objects.unwrap_or(&empty);
    let mut expected: Vec<(String, Option<u64>)> = Vec::new();
    if let Some(t) = &m.thanos {
        expected.extend(
            t.files
                .iter()
                .filter(|f| f.rel_path != crate::tsdb::meta::META_FILENAME)
                .map(|f| {
                    (
                        f.rel_path.clone(),
                        (f.size_bytes > 0).then_some(f.size_bytes as u64),
                    )
                }),
        );
        if expected.is_empty() {
            expected.extend(
                t.segment_files
                    .iter()
                    .map(|s| (format!("chunks/{s}"), None)),
            );
        }
    }
    if !expected.iter().any(|(p, _)| p == "index") {
        expected.push(("index".into(), None));
    }
    if !expected.iter().any(|(p, _)| p.starts_with("chunks/"))
        && !objects.keys().any(|k| k.starts_with("chunks/"))
        && m.stats.num_chunks > 0
    {
        issues.push(format!("block {}: no chunk segment objects", m.ulid));
    }
    for (path, size) in expected {
        match (objects.get(&path), size) {
            (None, _) => issues.push(format!("block {}: missing {path}", m.ulid)),
            (Some(got), Some(want)) if *got != want => issues.push(format!(
                "block {}: {path} is {got} bytes, meta.json says {want}",
                m.ulid
            )),
            _ => {}
        }
    }
}

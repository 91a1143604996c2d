//! The `bucket_consistency` check of `tools bucket verify` (compactd's own, not in Thanos):
//! every file a meta.json lists is present with its size, every meta.json and marker is
//! readable, and no block directory lacks its meta.json (a partial upload or an unfinished
//! delete).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::ObjectStore;

use crate::bucket::layout::block_of;
use crate::core::types::{MetaState, SyncResult};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// Every consistency problem of the blocks `selected` accepts.
pub async fn check(
    store: &dyn ObjectStore,
    sync: &SyncResult,
    selected: impl Fn(BlockId) -> bool,
) -> anyhow::Result<Vec<String>> {
    let objects: Vec<object_store::ObjectMeta> = store
        .list(None)
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!("listing the bucket: {e}"))?;
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
    for (id, b) in sync.blocks.iter().filter(|(id, _)| selected(**id)) {
        issues.extend(b.marker_problems.iter().cloned());
        match &b.meta {
            MetaState::Missing => issues.push(format!(
                "block {id}: partial upload or unfinished delete (no meta.json)"
            )),
            MetaState::Corrupt(why) => {
                issues.push(format!("block {id}: unreadable meta.json: {why}"))
            }
            MetaState::Ok(m) => check_files(m, sizes.get(id), &mut issues),
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

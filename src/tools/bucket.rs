//! `compactd tools bucket ls`: look at a bucket through any Thanos objstore config, and the
//! sync every bucket tool starts from.
//!
//! `ls` prints one row per block directory: ULID, time range, level, resolution, samples,
//! external labels and marks (deletion, no-compact, partial, corrupt). (`verify` lives in
//! [`super::verify`].)

use std::fmt::Write as _;

use object_store::ObjectStore;

use crate::core::plan::group_key;
use crate::core::types::{MetaState, SyncResult, SyncedBlock};
use crate::driver::store::StoreExecutor;
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;

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

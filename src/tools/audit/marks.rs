//! The audit's view of markers: who placed each `deletion-mark.json`, `no-compact-mark.json`
//! and `no-downsample-mark.json`. compactd stamps the markers it writes (and those operators
//! send through its fence) with `"compactd": {"epoch": N, "holder": "<node>"}`, the same stamp
//! as a block's; markers written by Thanos or by hand have none. Reported, never a violation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{json, Value};

use super::{Stamp, STAMP_KEY};
use crate::bucket::layout::block_of;
use crate::bucket::markers::{
    DELETION_MARK_FILENAME, NO_COMPACT_MARK_FILENAME, NO_DOWNSAMPLE_MARK_FILENAME,
};
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;

/// One marker in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkRecord {
    /// The marked block.
    pub block: BlockId,
    /// The marker's file name.
    pub marker: String,
    /// Its writer's stamp; `None` when it has none.
    pub stamp: Option<Stamp>,
    /// When it was written (the object's last-modified time, Unix ms).
    pub written_unix_ms: i64,
}

/// Reads every marker among `objects`; an unreadable one or a malformed stamp is a problem.
pub async fn read_marks(
    store: &Arc<dyn ObjectStore>,
    objects: &[object_store::ObjectMeta],
) -> (Vec<MarkRecord>, Vec<String>) {
    let mut marks = Vec::new();
    let mut problems = Vec::new();
    for o in objects {
        let path = o.location.as_ref();
        let Some(block) = block_of(path) else {
            continue;
        };
        let Some(marker) = marker_name(path) else {
            continue;
        };
        let stamp = match read_stamp(store, &o.location).await {
            Ok(stamp) => stamp,
            Err(why) => {
                problems.push(format!("{path}: {why}"));
                continue;
            }
        };
        marks.push(MarkRecord {
            block,
            marker: marker.to_string(),
            stamp,
            written_unix_ms: o.last_modified.timestamp_millis(),
        });
    }
    (marks, problems)
}

fn marker_name(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next()?;
    [
        DELETION_MARK_FILENAME,
        NO_COMPACT_MARK_FILENAME,
        NO_DOWNSAMPLE_MARK_FILENAME,
    ]
    .into_iter()
    .find(|m| *m == name)
}

async fn read_stamp(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
) -> Result<Option<Stamp>, String> {
    let bytes = store
        .get(path)
        .await
        .map_err(|e| format!("read: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("read: {e}"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(stamp) = value.get(STAMP_KEY) else {
        return Ok(None);
    };
    serde_json::from_value(stamp.clone())
        .map(Some)
        .map_err(|e| format!("{STAMP_KEY} is {stamp}, not {{epoch: u64, holder: string}}: {e}"))
}

/// The text section: per writer (epoch and holder) and marker, how many and the last one.
pub fn marks_text(out: &mut String, marks: &[MarkRecord]) {
    let mut by_writer: BTreeMap<(u64, &str, &str), (usize, i64)> = BTreeMap::new();
    let mut unstamped = 0;
    for m in marks {
        let Some(stamp) = &m.stamp else {
            unstamped += 1;
            continue;
        };
        let e = by_writer
            .entry((stamp.epoch, stamp.holder.as_str(), m.marker.as_str()))
            .or_insert((0, i64::MIN));
        e.0 += 1;
        e.1 = e.1.max(m.written_unix_ms);
    }
    if by_writer.is_empty() && unstamped == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "{:<6} {:<28} {:<24} {:>6}  LAST WRITTEN",
        "EPOCH", "MARKED BY", "MARKER", "COUNT"
    );
    for ((epoch, holder, marker), (count, last)) in by_writer {
        let _ = writeln!(
            out,
            "{epoch:<6} {holder:<28} {marker:<24} {count:>6}  {}",
            format_rfc3339_ms(last)
        );
    }
    let _ = writeln!(
        out,
        "{} markers, {unstamped} unstamped (not written through compactd's fence)",
        marks.len()
    );
}

/// The JSON section: every marker.
pub fn marks_json(marks: &[MarkRecord]) -> Value {
    Value::Array(
        marks
            .iter()
            .map(|m| {
                json!({
                    "block": m.block.to_string(),
                    "marker": m.marker,
                    "epoch": m.stamp.as_ref().map(|s| s.epoch),
                    "holder": m.stamp.as_ref().map(|s| s.holder.clone()),
                    "written": format_rfc3339_ms(m.written_unix_ms),
                })
            })
            .collect(),
    )
}

//! Thanos marker files: `deletion-mark.json`, `no-compact-mark.json` and
//! `no-downsample-mark.json`. Field names and order follow Thanos' `metadata` package; a
//! marker with a `version` other than 1 is rejected, as Thanos does. Markers are written once
//! and never overwritten.

use serde::{Deserialize, Serialize};

use crate::tsdb::block_id::BlockId;

/// File name of the deletion marker.
pub const DELETION_MARK_FILENAME: &str = "deletion-mark.json";
/// File name of the no-compaction marker.
pub const NO_COMPACT_MARK_FILENAME: &str = "no-compact-mark.json";
/// File name of the no-downsampling marker.
pub const NO_DOWNSAMPLE_MARK_FILENAME: &str = "no-downsample-mark.json";
/// The only marker version.
pub const MARKER_VERSION: u32 = 1;

/// Details Thanos writes on sources of a compacted block.
pub const DETAILS_COMPACTED_SOURCE: &str = "source of compacted block";
/// Details of a block hidden by another block with a superset of its sources.
pub const DETAILS_OUTDATED: &str = "outdated block";
/// Reason of a no-compact mark placed because the plan's index would be too large.
pub const REASON_INDEX_SIZE_EXCEEDING: &str = "index-size-exceeding";
/// Reason of a manual mark.
pub const REASON_MANUAL: &str = "manual";
/// Reason of a no-compact mark on a block whose index lists chunks out of time order
/// (`--compact.skip-block-with-out-of-order-chunks`; Thanos' `OutOfOrderChunksNoCompactReason`).
pub const REASON_OUT_OF_ORDER_CHUNKS: &str = "block-index-out-of-order-chunk";
/// Details Thanos writes with [`REASON_OUT_OF_ORDER_CHUNKS`], word for word.
pub const DETAILS_OUT_OF_ORDER_CHUNKS: &str =
    "OutofOrderChunk: marking block with out-of-order series/chunks to as no compact to unblock compaction";

/// `deletion-mark.json`: the block is deleted `--delete-delay` after `deletion_time`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeletionMark {
    /// The marked block.
    pub id: BlockId,
    /// Always [`MARKER_VERSION`].
    pub version: u32,
    /// Why it was marked.
    #[serde(default)]
    pub details: String,
    /// When, in Unix seconds.
    pub deletion_time: i64,
}

/// `no-compact-mark.json`: the planner leaves the block alone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NoCompactMark {
    /// The marked block.
    pub id: BlockId,
    /// Always [`MARKER_VERSION`].
    pub version: u32,
    /// Free text.
    #[serde(default)]
    pub details: String,
    /// When, in Unix seconds.
    pub no_compact_time: i64,
    /// Why (`manual`, `index-size-exceeding`, ...).
    #[serde(default)]
    pub reason: String,
}

/// `no-downsample-mark.json`: downsampling leaves the block alone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NoDownsampleMark {
    /// The marked block.
    pub id: BlockId,
    /// Always [`MARKER_VERSION`].
    pub version: u32,
    /// Free text.
    #[serde(default)]
    pub details: String,
    /// When, in Unix seconds.
    pub no_downsample_time: i64,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// A marker format: its file name and version.
pub trait Marker: Serialize + for<'de> Deserialize<'de> {
    /// The file name inside the block directory.
    const FILENAME: &'static str;
    /// The marked block.
    fn block(&self) -> BlockId;
    /// The version field.
    fn version(&self) -> u32;
}

impl Marker for DeletionMark {
    const FILENAME: &'static str = DELETION_MARK_FILENAME;
    fn block(&self) -> BlockId {
        self.id
    }
    fn version(&self) -> u32 {
        self.version
    }
}

impl Marker for NoCompactMark {
    const FILENAME: &'static str = NO_COMPACT_MARK_FILENAME;
    fn block(&self) -> BlockId {
        self.id
    }
    fn version(&self) -> u32 {
        self.version
    }
}

impl Marker for NoDownsampleMark {
    const FILENAME: &'static str = NO_DOWNSAMPLE_MARK_FILENAME;
    fn block(&self) -> BlockId {
        self.id
    }
    fn version(&self) -> u32 {
        self.version
    }
}

/// Parses a marker; `path` names it in errors. Rejects a wrong version and a marker whose id
/// is not the block it sits in.
pub fn parse_marker<M: Marker>(bytes: &[u8], path: &str, block: BlockId) -> Result<M, String> {
    let m: M = serde_json::from_slice(bytes)
        .map_err(|e| format!("{path}: invalid {}: {e}", M::FILENAME))?;
    if m.version() != MARKER_VERSION {
        return Err(format!(
            "{path}: unexpected {} version {}",
            M::FILENAME,
            m.version()
        ));
    }
    if m.block() != block {
        return Err(format!(
            "{path}: marker names block {}, not {block}",
            m.block()
        ));
    }
    Ok(m)
}

/// The key of compactd's writer stamp in a marker it writes: `{"epoch": N, "holder":
/// "<node>"}` next to Thanos' fields (Thanos ignores fields it does not know).
pub const MARKER_STAMP_KEY: &str = "compactd";

/// Serialises a marker as Thanos does (compact JSON), with compactd's writer stamp when
/// `stamp` (epoch, holder) is given.
pub fn encode_stamped_marker<M: Marker>(m: &M, stamp: Option<(u64, &str)>) -> Vec<u8> {
    let Some((epoch, holder)) = stamp else {
        return encode_marker(m);
    };
    let mut value = serde_json::to_value(m).expect("markers serialise to memory");
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            MARKER_STAMP_KEY.into(),
            serde_json::json!({ "epoch": epoch, "holder": holder }),
        );
    }
    serde_json::to_vec(&value).expect("markers serialise to memory")
}

/// Serialises a marker as Thanos does (compact JSON).
pub fn encode_marker<M: Marker>(m: &M) -> Vec<u8> {
    serde_json::to_vec(m).expect("markers serialise to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_mark_round_trips_in_thanos_field_order() {
        let id = BlockId::from_parts(1_735_689_600_000, 9);
        let m = DeletionMark {
            id,
            version: 1,
            details: DETAILS_COMPACTED_SOURCE.into(),
            deletion_time: 1_735_700_000,
        };
        let bytes = encode_marker(&m);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"id":"{id}","version":1,"details":"source of compacted block","deletion_time":1735700000}}"#
            )
        );
        assert_eq!(parse_marker::<DeletionMark>(&bytes, "p", id).unwrap(), m);
    }

    #[test]
    fn bad_markers_are_rejected() {
        let id = BlockId::from_parts(1, 1);
        let other = BlockId::from_parts(1, 2);
        let v2 = format!(r#"{{"id":"{id}","version":2,"no_compact_time":1}}"#);
        assert!(parse_marker::<NoCompactMark>(v2.as_bytes(), "p", id)
            .unwrap_err()
            .contains("version 2"));
        assert!(
            parse_marker::<NoCompactMark>(b"{", "x/no-compact-mark.json", id)
                .unwrap_err()
                .contains("x/no-compact-mark.json")
        );
        let wrong = format!(r#"{{"id":"{other}","version":1,"deletion_time":1}}"#);
        assert!(parse_marker::<DeletionMark>(wrong.as_bytes(), "p", id)
            .unwrap_err()
            .contains("names block"));
    }
}

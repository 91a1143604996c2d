//! The fence records: the bucket fence `compactd/fence.json`, and a stream's fence
//! `compactd/fence/<stream hex>.json` (per-stream ownership, `core::stream`). Both hold the
//! same record; each is an object of its own, so a CAS of one never touches another.
//!
//! A leader compares-and-swaps its fence (If-Match on the ETag, create if absent) when it
//! takes over and before each commit point, raising `seq`; a leader that finds a higher epoch
//! steps down. A single instance (no etcd) keeps the bucket fence too, and refuses to write
//! while another holder has renewed it within the lease TTL.

use serde::{Deserialize, Serialize};

use super::stream::StreamId;

/// The bucket fence object's path in the bucket.
pub const FENCE_PATH: &str = "compactd/fence.json";

/// The path of a fence object: the bucket fence for `None`, else the stream's
/// ([`StreamId::fence_path`]).
pub fn fence_path(stream: Option<StreamId>) -> String {
    stream.map_or_else(|| FENCE_PATH.to_string(), StreamId::fence_path)
}

/// The content of a fence object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    /// The epoch of the writer that holds the fence (0: a single instance).
    pub epoch: u64,
    /// The holder's node name.
    pub holder: String,
    /// Raised by every CAS of the holder.
    pub seq: u64,
    /// When the holder last renewed it, Unix ms on the holder's wall clock.
    pub renewed_unix_ms: i64,
    /// The holder's incarnation (bucket election): tells its own writes from another
    /// process's of the same name and epoch when an answer was lost.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
}

impl FenceRecord {
    /// The record a compare-and-swap by `holder` under `epoch` writes over `previous`
    /// (`None`: it creates the fence): `seq` one past the previous record's, 1 for a new fence.
    pub fn successor(
        previous: Option<&FenceRecord>,
        epoch: u64,
        holder: &str,
        renewed_unix_ms: i64,
    ) -> FenceRecord {
        FenceRecord {
            epoch,
            holder: holder.to_string(),
            seq: previous.map_or(1, |p| p.seq + 1),
            renewed_unix_ms,
            nonce: String::new(),
        }
    }

    /// The JSON stored in the bucket (pretty, with a trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a fence record always serializes");
        v.push(b'\n');
        v
    }

    /// Parses the JSON stored at `path`; the error names the object and the problem.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<FenceRecord, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("{path}: invalid fence record: {e}"))
    }
}

/// The version of the fence object a CAS must match (object_store's `UpdateVersion`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceVersion {
    /// The ETag.
    pub e_tag: Option<String>,
    /// The object version (GCS generation).
    pub version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_bad_json_names_the_object() {
        let r = FenceRecord {
            epoch: 42,
            holder: "a".into(),
            seq: 7,
            renewed_unix_ms: 1_700_000_000_000,
            nonce: String::new(),
        };
        assert_eq!(FenceRecord::parse(FENCE_PATH, &r.to_json()).unwrap(), r);
        let err = FenceRecord::parse(FENCE_PATH, b"{\"epoch\":").unwrap_err();
        assert!(
            err.starts_with("compactd/fence.json: invalid fence record"),
            "{err}"
        );
        let stream = fence_path(Some(StreamId(0x2a)));
        let err = FenceRecord::parse(&stream, b"[").unwrap_err();
        assert!(
            err.starts_with("compactd/fence/000000000000002a.json: invalid fence record"),
            "{err}"
        );
    }

    #[test]
    fn the_bucket_and_each_stream_have_their_own_fence_object() {
        assert_eq!(fence_path(None), FENCE_PATH);
        let (a, b) = (StreamId(1), StreamId(0xfedc_ba98_7654_3210));
        assert_eq!(fence_path(Some(a)), "compactd/fence/0000000000000001.json");
        assert_eq!(fence_path(Some(b)), "compactd/fence/fedcba9876543210.json");
        assert_ne!(fence_path(Some(a)), fence_path(Some(b)));
    }
}

//! `meta.json`: Prometheus' `BlockMeta` plus the Thanos section.
//!
//! Field names, field order and the omit-when-empty rules follow the Go structs
//! (`tsdb.BlockMeta`, Thanos `metadata.Meta`), so a meta we write reads back the same in
//! Prometheus, promtool and Thanos. Formatting follows the writer: tab indentation, no
//! trailing newline for a plain Prometheus meta (`json.MarshalIndent`), a trailing newline
//! when the Thanos section is present (Thanos rewrites it with `json.Encoder`).
//!
//! `thanos.extensions` and `thanos.rewrites` are kept as raw JSON values and carried through.
//! A meta whose `version` is not 1 is rejected, as Thanos does.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::block_id::BlockId;
use super::error::{IoContext, Result, TsdbError};

/// The only `meta.json` version in existence.
pub const META_VERSION: u32 = 1;
/// The file name of a block's meta.
pub const META_FILENAME: &str = "meta.json";

/// A block's `meta.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block's id, equal to its directory name.
    pub ulid: BlockId,
    /// First timestamp covered (inclusive), Unix ms.
    pub min_time: i64,
    /// End of the covered range (exclusive), Unix ms.
    pub max_time: i64,
    /// Counts of what the block holds.
    #[serde(default)]
    pub stats: BlockStats,
    /// Compaction lineage.
    #[serde(default)]
    pub compaction: Compaction,
    /// Format version; always [`META_VERSION`].
    pub version: u32,
    /// The Thanos section, absent in blocks written by Prometheus itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

/// `stats`: every field is omitted when zero, as in Go.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Total samples.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    /// Float samples (XOR chunks).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    /// Native histogram samples.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_histogram_samples: u64,
    /// Series.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    /// Chunks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    /// Tombstone intervals.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

/// `compaction`: the block's level and lineage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Compaction {
    /// 1 for a block cut from a head, max(parents)+1 after compaction.
    #[serde(default)]
    pub level: u32,
    /// Every level-1 block this block's data came from, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<BlockId>,
    /// Set by Prometheus on blocks whose compaction produced no samples.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    /// The direct inputs, in the order they were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Set when a compaction of this block failed; planners skip such blocks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    /// Prometheus compaction hints (e.g. `from-out-of-order`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A parent block in `compaction.parents`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    /// The parent's id.
    pub ulid: BlockId,
    /// Its minTime.
    pub min_time: i64,
    /// Its maxTime.
    pub max_time: i64,
}

/// The `thanos` section.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ThanosMeta {
    /// Section version; absent means 1.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub version: u32,
    /// External labels: with the resolution, they name the block's stream.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Downsampling state.
    #[serde(default)]
    pub downsample: Downsample,
    /// Who wrote the block (`sidecar`, `compactor`, ...).
    #[serde(default)]
    pub source: String,
    /// Deprecated list of chunk segment names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_files: Vec<String>,
    /// Files of the block with their sizes, sorted by path; filled at upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<BlockFile>,
    /// Rewrites applied by `thanos tools bucket rewrite`, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrites: Option<Value>,
    /// Index size statistics (always written, possibly as `{}`).
    #[serde(default)]
    pub index_stats: IndexStats,
    /// Arbitrary extension data, carried through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
    /// RFC3339 upload time; the zero time when the block has not been uploaded.
    #[serde(default = "zero_time")]
    pub upload_time: String,
}

/// `thanos.downsample`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Downsample {
    /// Resolution in ms: 0 (raw), 300000 (5m) or 3600000 (1h).
    #[serde(default)]
    pub resolution: i64,
}

/// One entry of `thanos.files`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockFile {
    /// Path relative to the block directory (`chunks/000001`, `index`, `meta.json`).
    pub rel_path: String,
    /// Size in bytes; omitted for meta.json.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub size_bytes: i64,
    /// Optional content hash, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Value>,
}

/// `thanos.index_stats`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct IndexStats {
    /// Largest series entry in the index, in bytes.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub series_max_size: i64,
    /// Largest chunk, in bytes.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub chunk_max_size: i64,
}

/// `thanos.source` of blocks written by a compactor.
pub const SOURCE_COMPACTOR: &str = "compactor";

/// Go's zero `time.Time` in RFC3339, what Thanos writes before upload.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn zero_time() -> String {
    ZERO_TIME.to_string()
}
fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

impl BlockMeta {
    /// Parses and validates a meta.json; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &Path) -> Result<Self> {
        let invalid = |what: String| TsdbError::InvalidMeta {
            file: file.to_path_buf(),
            what,
        };
        let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if meta.version != META_VERSION {
            return Err(invalid(format!(
                "unsupported version {} (only {META_VERSION} exists)",
                meta.version
            )));
        }
        if let Some(t) = &meta.thanos {
            if t.version > 1 {
                return Err(invalid(format!(
                    "unsupported thanos section version {}",
                    t.version
                )));
            }
        }
        if meta.max_time < meta.min_time {
            return Err(invalid(format!(
                "maxTime {} is before minTime {}",
                meta.max_time, meta.min_time
            )));
        }
        Ok(meta)
    }

    /// Reads `<dir>/meta.json`.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILENAME);
        let bytes = std::fs::read(&path).at(&path)?;
        Self::parse(&bytes, &path)
    }

    /// Serialises as the Go writers do (tabs; trailing newline iff the Thanos section exists).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)
            .expect("BlockMeta serialises to memory");
        if self.thanos.is_some() {
            out.push(b'\n');
        }
        out
    }

    /// Writes `<dir>/meta.json` through a fsynced temporary file and a rename.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        let path = dir.join(META_FILENAME);
        super::fsutil::write_atomic(&path, &self.to_json())
    }

    /// The meta of a level-1 block (its own only source) covering `[min_time, max_time)`:
    /// what a Prometheus head or a sidecar upload carries. Stats start empty.
    pub fn level1(ulid: BlockId, min_time: i64, max_time: i64) -> Self {
        BlockMeta {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: Compaction {
                level: 1,
                sources: vec![ulid],
                ..Compaction::default()
            },
            version: META_VERSION,
            thanos: None,
        }
    }

    /// The parents of a block made from `self` alone (its own descriptor).
    pub fn desc(&self) -> BlockDesc {
        BlockDesc {
            ulid: self.ulid,
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }
}

/// The meta of a block compacted from `parents` (in the given order), as Prometheus'
/// `CompactBlockMetas` builds it: min/max of the ranges, `level = max + 1`, sources the sorted
/// union, parents in input order; hints: `from-out-of-order` only if every parent has it, any
/// other hint if some parent has it. The Thanos section is kept when every parent has one with
/// the same labels and resolution (an error otherwise); its extensions keep the keys whose
/// values agree in all parents. Stats are left empty for the writer to fill.
pub fn merge_metas(id: BlockId, parents: &[BlockMeta]) -> Result<BlockMeta> {
    let first = parents
        .first()
        .ok_or_else(|| TsdbError::Unsupported("no input blocks".into()))?;
    let mut sources: Vec<BlockId> = parents
        .iter()
        .flat_map(|p| p.compaction.sources.iter().copied())
        .collect();
    sources.sort();
    sources.dedup();
    Ok(BlockMeta {
        ulid: id,
        min_time: parents.iter().map(|p| p.min_time).min().expect("non-empty"),
        max_time: parents.iter().map(|p| p.max_time).max().expect("non-empty"),
        stats: BlockStats::default(),
        compaction: Compaction {
            // Saturating: a parent's level comes from a meta.json in the bucket.
            level: parents
                .iter()
                .map(|p| p.compaction.level)
                .max()
                .expect("non-empty")
                .saturating_add(1),
            sources,
            parents: parents.iter().map(BlockMeta::desc).collect(),
            hints: merge_hints(parents),
            ..Compaction::default()
        },
        version: META_VERSION,
        thanos: merge_thanos(first, parents)?,
    })
}

const HINT_FROM_OUT_OF_ORDER: &str = "from-out-of-order";

fn merge_hints(parents: &[BlockMeta]) -> Vec<String> {
    let mut hints: Vec<String> = parents
        .iter()
        .flat_map(|p| p.compaction.hints.iter().cloned())
        .filter(|h| {
            h != HINT_FROM_OUT_OF_ORDER
                || parents
                    .iter()
                    .all(|p| p.compaction.hints.iter().any(|x| x == h))
        })
        .collect();
    hints.sort();
    hints.dedup();
    hints
}

fn merge_thanos(first: &BlockMeta, parents: &[BlockMeta]) -> Result<Option<ThanosMeta>> {
    let Some(base) = &first.thanos else {
        if let Some(p) = parents.iter().find(|p| p.thanos.is_some()) {
            return Err(TsdbError::Unsupported(format!(
                "block {} has a Thanos section and block {} has none",
                p.ulid, first.ulid
            )));
        }
        return Ok(None);
    };
    for p in parents {
        let t = p.thanos.as_ref();
        let same = t.is_some_and(|t| t.labels == base.labels && t.downsample == base.downsample);
        if !same {
            return Err(TsdbError::Unsupported(format!(
                "blocks {} and {} belong to different streams (external labels or resolution differ)",
                first.ulid, p.ulid
            )));
        }
    }
    Ok(Some(ThanosMeta {
        labels: base.labels.clone(),
        downsample: base.downsample.clone(),
        source: SOURCE_COMPACTOR.to_string(),
        extensions: common_extensions(parents),
        ..ThanosMeta::default()
    }))
}

/// Extension values present and equal in every parent (for objects: per key).
fn common_extensions(parents: &[BlockMeta]) -> Option<Value> {
    let exts: Vec<Option<&Value>> = parents
        .iter()
        .map(|p| p.thanos.as_ref().and_then(|t| t.extensions.as_ref()))
        .collect();
    let first = exts[0]?;
    let Value::Object(map) = first else {
        return exts
            .iter()
            .all(|e| *e == Some(first))
            .then(|| first.clone());
    };
    let kept: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, v)| {
            exts.iter()
                .all(|e| e.and_then(|e| e.get(k.as_str())) == Some(*v))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

#[cfg(test)]
mod tests;

//! Streams and overlaps: Thanos' `DefaultGrouper` key and Prometheus' `OverlappingBlocks`.
//!
//! A *group* (Thanos also says *stream*) is the set of blocks with equal external labels and
//! equal downsampling resolution; blocks are only ever compacted within their group. Thanos
//! names a group `"<resolution>@<hash>"` (`metadata.Thanos.GroupKey`, `pkg/block/metadata/
//! meta.go`), where the hash is Prometheus' `labels.Labels.Hash()` of the external labels.
//! The name appears in logs and in local working directories only, never in the bucket.

use std::collections::BTreeMap;
use std::fmt;

use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// The separator Prometheus writes after every label name and value when hashing
/// (`labels.sep`, `model/labels/labels_common.go`). `0xff` never occurs in UTF-8.
const LABEL_SEPARATOR: u8 = 0xff;

/// Identifies a compaction group: downsampling resolution plus external labels.
///
/// `Ord` is by `(resolution, labels)`, which is not the order Thanos iterates its groups in
/// (it sorts by the `Display` string); sort by `to_string()` where that order matters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GroupKey {
    /// `thanos.downsample.resolution` in ms: 0 (raw), 300000 (5m) or 3600000 (1h).
    pub resolution: i64,
    /// `thanos.labels`, the external labels, after replica labels were removed.
    pub labels: BTreeMap<String, String>,
}

impl fmt::Display for GroupKey {
    /// Thanos' group key: `"<resolution>@<labels hash>"`, both in decimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.resolution, labels_hash(&self.labels))
    }
}

/// Prometheus' `labels.Labels.Hash()` as Thanos builds it (the `slicelabels` build tag in
/// Thanos' `.promu.yml`; `model/labels/labels_slicelabels.go`): XXH64 with seed 0 over
/// `name 0xff value 0xff` for every label, sorted by name.
///
/// Go has a fast path that hashes a stack buffer in one call and, once the labels pass 1 KiB,
/// switches to a streaming digest fed the same bytes; both hash the same byte sequence, so one
/// streaming digest here gives the same value for any size. A `BTreeMap` is sorted by name
/// bytewise, the order `labels.FromMap` sorts in.
pub fn labels_hash(labels: &BTreeMap<String, String>) -> u64 {
    let mut digest = xxhash_rust::xxh64::Xxh64::new(0);
    for (name, value) in labels {
        digest.update(name.as_bytes());
        digest.update(&[LABEL_SEPARATOR]);
        digest.update(value.as_bytes());
        digest.update(&[LABEL_SEPARATOR]);
    }
    digest.digest()
}

/// The group a block belongs to. A meta without a Thanos section (a plain Prometheus block)
/// belongs to the group of resolution 0 and no labels, as Go's zero `metadata.Thanos` does.
pub fn group_key(meta: &BlockMeta) -> GroupKey {
    match &meta.thanos {
        Some(thanos) => GroupKey {
            resolution: thanos.downsample.resolution,
            labels: thanos.labels.clone(),
        },
        None => GroupKey::default(),
    }
}

/// Sorts blocks by `(min_time, ulid)`: Thanos' `metasByMinTime` order, with the id breaking
/// ties (Go's `sort.Slice` leaves them in an unspecified order).
pub(super) fn sort_by_min_time(blocks: &mut [&BlockMeta]) {
    blocks.sort_by_key(|m| (m.min_time, m.ulid));
}

/// Splits blocks into groups ([`group_key`]); each group's blocks sorted by
/// `(min_time, ulid)`.
pub fn group_blocks<'a>(
    metas: impl IntoIterator<Item = &'a BlockMeta>,
) -> BTreeMap<GroupKey, Vec<&'a BlockMeta>> {
    let mut groups: BTreeMap<GroupKey, Vec<&'a BlockMeta>> = BTreeMap::new();
    for meta in metas {
        groups.entry(group_key(meta)).or_default().push(meta);
    }
    for blocks in groups.values_mut() {
        sort_by_min_time(blocks);
    }
    groups
}

/// The sets of blocks whose half-open ranges `[min_time, max_time)` overlap, as Prometheus'
/// `tsdb.OverlappingBlocks` finds them (Thanos' pre-compaction check, `Group.
/// areBlocksOverlapping`, which halts the group when vertical compaction is off).
///
/// Sweep in `(min_time, ulid)` order, keeping the blocks still *pending* (not ended at the
/// current block's start). A block that starts before a pending one ends overlaps it. While
/// no pending block ends between two overlapping blocks, they extend the same set; once one
/// ends, the next overlap starts a new set made of the still-pending blocks and the new one.
/// Sets come out in sweep order. Prometheus keys its result by each set's common time range,
/// so two sets with an equal range would collapse into one there; here both are kept.
pub fn overlapping_blocks(blocks: &[&BlockMeta]) -> Vec<Vec<BlockId>> {
    let mut sorted = blocks.to_vec();
    sort_by_min_time(&mut sorted);
    let Some((first, rest)) = sorted.split_first() else {
        return Vec::new();
    };
    let mut overlaps: Vec<Vec<BlockId>> = Vec::new();
    let mut pending: Vec<&BlockMeta> = vec![first];
    // False once some pending block ended since the last overlap set was started.
    let mut continuous = true;
    for block in rest {
        let before = pending.len();
        pending.retain(|p| block.min_time < p.max_time);
        if pending.len() < before {
            continuous = false;
        }
        let overlapped = !pending.is_empty();
        pending.push(block);
        if !overlapped {
            continue;
        }
        match overlaps.last_mut() {
            Some(set) if continuous => set.push(block.ulid),
            _ => {
                overlaps.push(pending.iter().map(|m| m.ulid).collect());
                continuous = true;
            }
        }
    }
    overlaps
}

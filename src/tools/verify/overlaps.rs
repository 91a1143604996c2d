//! `overlapped_blocks` and `duplicated_compaction` of `tools bucket verify`: both look at the
//! blocks of each group (external labels and resolution) that are not marked for deletion.
//! An overlap is a set of blocks whose time ranges intersect ([`overlapping_blocks`], as the
//! planner sees them). Within an overlap, blocks with the same time range, compaction level,
//! sources (in order) and stats are one compaction done more than once (Thanos'
//! `DuplicatedCompactionBlocks`): the first by ULID (the oldest) is kept, the others are
//! duplicates that a repair removes.

use std::collections::BTreeMap;

use crate::core::plan::{group_blocks, overlapping_blocks, GroupKey};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// Blocks with the same time range, level, sources and stats within one overlap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateSet {
    /// The group the blocks belong to.
    pub group: String,
    /// The block kept: the first by ULID.
    pub keep: BlockId,
    /// The others, by ULID.
    pub duplicates: Vec<BlockId>,
}

/// Every overlap of every group, as `(group, blocks)`.
pub fn overlaps<'a>(
    live: impl IntoIterator<Item = &'a BlockMeta>,
) -> Vec<(GroupKey, Vec<BlockId>)> {
    let mut out = Vec::new();
    for (key, blocks) in group_blocks(live) {
        for set in overlapping_blocks(&blocks) {
            out.push((key.clone(), set));
        }
    }
    out
}

/// The sets of duplicated compactions among the overlaps of `live`.
pub fn duplicates<'a>(live: impl IntoIterator<Item = &'a BlockMeta>) -> Vec<DuplicateSet> {
    let live: Vec<&BlockMeta> = live.into_iter().collect();
    let by_id: BTreeMap<BlockId, &BlockMeta> = live.iter().map(|m| (m.ulid, *m)).collect();
    let mut out = Vec::new();
    for (key, set) in overlaps(live.iter().copied()) {
        let mut metas: Vec<&BlockMeta> =
            set.iter().filter_map(|id| by_id.get(id).copied()).collect();
        metas.sort_by_key(|m| m.ulid);
        for same in same_compactions(&metas) {
            let (keep, rest) = same.split_first().expect("a set of two or more");
            out.push(DuplicateSet {
                group: key.to_string(),
                keep: keep.ulid,
                duplicates: rest.iter().map(|m| m.ulid).collect(),
            });
        }
    }
    out
}

/// The sets (two or more, in the order of `metas`) of blocks that are the same compaction.
fn same_compactions<'a>(metas: &[&'a BlockMeta]) -> Vec<Vec<&'a BlockMeta>> {
    let mut sets: Vec<Vec<&BlockMeta>> = Vec::new();
    for m in metas {
        match sets.iter_mut().find(|s| same_compaction(s[0], m)) {
            Some(set) => set.push(m),
            None => sets.push(vec![m]),
        }
    }
    sets.retain(|s| s.len() > 1);
    sets
}

/// Thanos' test: same range, level, sources (in order) and stats.
fn same_compaction(a: &BlockMeta, b: &BlockMeta) -> bool {
    a.min_time == b.min_time
        && a.max_time == b.max_time
        && a.compaction.level == b.compaction.level
        && a.compaction.sources == b.compaction.sources
        && a.stats == b.stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n: u128, min: i64, max: i64, sources: &[u128], series: u64) -> BlockMeta {
        let mut m = BlockMeta::level1(BlockId::from_parts(1_000, n), min, max);
        m.compaction.level = 2;
        m.compaction.sources = sources.iter().map(|&s| BlockId::from_parts(1, s)).collect();
        m.stats.num_series = series;
        m
    }

    fn id(n: u128) -> BlockId {
        BlockId::from_parts(1_000, n)
    }

    #[test]
    fn only_identical_compactions_are_duplicates_and_the_first_ulid_is_kept() {
        let blocks = [
            meta(3, 0, 100, &[1, 2], 5),
            meta(1, 0, 100, &[1, 2], 5),
            meta(2, 0, 100, &[1, 2], 5),
            // Same range, other sources: an overlap, not a duplicate.
            meta(4, 0, 100, &[1, 3], 5),
            // Same sources, other stats.
            meta(5, 0, 100, &[1, 2], 6),
            // Adjacent, no overlap.
            meta(6, 100, 200, &[7], 1),
        ];
        let sets = duplicates(blocks.iter());
        assert_eq!(sets.len(), 1, "{sets:?}");
        assert_eq!(sets[0].keep, id(1));
        assert_eq!(sets[0].duplicates, vec![id(2), id(3)]);
        assert_eq!(overlaps(blocks.iter()).len(), 1);
    }

    #[test]
    fn no_overlap_no_duplicate() {
        let blocks = [meta(1, 0, 100, &[1], 5), meta(2, 100, 200, &[1], 5)];
        assert!(duplicates(blocks.iter()).is_empty());
        assert!(overlaps(blocks.iter()).is_empty());
    }

    #[test]
    fn blocks_of_other_groups_are_never_duplicates() {
        let a = meta(1, 0, 100, &[1], 5);
        let mut b = meta(2, 0, 100, &[1], 5);
        b.thanos
            .get_or_insert_with(Default::default)
            .labels
            .insert("cluster".into(), "b".into());
        assert!(duplicates([&a, &b]).is_empty());
    }
}

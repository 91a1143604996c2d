//! What `replicate` does with one selected block, from the two buckets' listings and the two
//! meta.json files: copy the data objects the target lacks (`chunks/*` in order, any other
//! file of the block such as `tombstones`, then `index`) and then the meta, skip a block the
//! target has complete, or report it.
//!
//! Rules (Thanos' `ensureBlockIsReplicated`, with compactd's immutable metas): a target
//! meta.json equal to the source's byte for byte means replicated, provided every data object
//! is there with the source's size (else the target block is damaged: reported, left as it
//! is); a different target meta.json is reported and never overwritten (Thanos overwrites
//! it); without a target meta.json the block is invisible there, so its data objects are
//! (re)copied unless present with the source's size. Markers are not copied, as in Thanos
//! (which copies `chunks/*` and `index` only; other files are copied here so that the replica
//! is the source's block object for object).

use std::collections::BTreeMap;

use object_store::ObjectMeta;

use crate::bucket::layout::block_of;
use crate::bucket::markers::{
    DELETION_MARK_FILENAME, NO_COMPACT_MARK_FILENAME, NO_DOWNSAMPLE_MARK_FILENAME,
};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::META_FILENAME;

/// The objects of a block that are not copied as data: meta.json (committed last) and markers.
const NOT_DATA: [&str; 4] = [
    META_FILENAME,
    DELETION_MARK_FILENAME,
    NO_COMPACT_MARK_FILENAME,
    NO_DOWNSAMPLE_MARK_FILENAME,
];

/// A block's objects: path inside the block → size in bytes.
pub type BlockObjects = BTreeMap<String, u64>;

/// What to do with one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockPlan {
    /// Copy these data objects (paths inside the block, in upload order), then meta.json.
    Copy(Vec<String>),
    /// The target has the block complete.
    AlreadyReplicated,
    /// The block cannot be replicated; the line says why.
    Problem(String),
}

/// A bucket listing grouped by block directory.
pub fn objects_by_block(listing: &[ObjectMeta]) -> BTreeMap<BlockId, BlockObjects> {
    let mut out: BTreeMap<BlockId, BlockObjects> = BTreeMap::new();
    for o in listing {
        let path = o.location.as_ref();
        let (Some(id), Some((_, rel))) = (block_of(path), path.split_once('/')) else {
            continue;
        };
        out.entry(id).or_default().insert(rel.to_string(), o.size);
    }
    out
}

/// Decides what to do with block `id`, given its source meta.json and objects and the
/// target's (`target_meta` is `None` when the target has no meta.json).
pub fn plan_block(
    id: BlockId,
    source_meta: &[u8],
    source: &BlockObjects,
    target_meta: Option<&[u8]>,
    target: &BlockObjects,
) -> BlockPlan {
    if !source.contains_key("index") {
        return BlockPlan::Problem(format!(
            "block {id}: the source has no index object; not replicated"
        ));
    }
    let mut data: Vec<(&String, &u64)> = source
        .iter()
        .filter(|(p, _)| !NOT_DATA.contains(&p.as_str()))
        .collect();
    // Chunk segments first, the index last, after every segment it points into.
    data.sort_by_key(|(p, _)| (*p == "index", !p.starts_with("chunks/"), p.as_str()));
    let lacking: Vec<String> = data
        .into_iter()
        .filter(|(p, size)| target.get(*p) != Some(size))
        .map(|(p, _)| p.clone())
        .collect();
    match target_meta {
        None => BlockPlan::Copy(lacking),
        Some(t) if t != source_meta => BlockPlan::Problem(format!(
            "block {id}: the target has a meta.json that differs from the source's; left as \
             it is (compactd never overwrites a meta.json)"
        )),
        Some(_) if lacking.is_empty() => BlockPlan::AlreadyReplicated,
        Some(_) => BlockPlan::Problem(format!(
            "block {id}: the target has its meta.json but lacks or has other sizes of [{}]; \
             left as it is (delete the target's copy, then replicate again)",
            lacking.join(", ")
        )),
    }
}

//! Object names in a Thanos bucket: `<ULID>/meta.json`, `<ULID>/index`,
//! `<ULID>/chunks/NNNNNN` and the markers beside them. Top-level names that are not ULIDs
//! (`debug/`, `compactd/`) are not blocks.

use std::collections::BTreeMap;

use crate::bucket::markers::{
    DELETION_MARK_FILENAME, NO_COMPACT_MARK_FILENAME, NO_DOWNSAMPLE_MARK_FILENAME,
};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::META_FILENAME;

/// The block's meta object, uploaded last and deleted first: a block is visible iff it exists.
pub fn meta_path(id: BlockId) -> String {
    format!("{id}/meta.json")
}

/// The block's index object.
pub fn index_path(id: BlockId) -> String {
    format!("{id}/index")
}

/// A chunk segment object of the block (`name` like `000001`).
pub fn chunk_path(id: BlockId, name: &str) -> String {
    format!("{id}/chunks/{name}")
}

/// A marker object of the block.
pub fn marker_path(id: BlockId, marker_file: &str) -> String {
    format!("{id}/{marker_file}")
}

/// The prefix of every object of the block.
pub fn block_prefix(id: BlockId) -> String {
    id.to_string()
}

/// The block id of an object path, when its first component is a ULID.
pub fn block_of(path: &str) -> Option<BlockId> {
    let first = path.split('/').next()?;
    if BlockId::is_block_name(first) {
        first.parse().ok()
    } else {
        None
    }
}

/// True for a block's data objects, by path inside the block: `index` and `chunks/*` (what a
/// compaction downloads and uploads; meta.json and markers are written on their own).
pub fn is_block_data(rel: &str) -> bool {
    rel == "index" || rel.starts_with("chunks/")
}

/// What a listing shows of one block directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListedBlock {
    /// `meta.json` is there.
    pub meta: bool,
    /// A deletion mark is there.
    pub deletion_mark: bool,
    /// A no-compact mark is there.
    pub no_compact_mark: bool,
    /// A no-downsample mark is there.
    pub no_downsample_mark: bool,
    /// The newest last-modified time of its objects, Unix ms.
    pub newest_modified: i64,
}

/// Groups a bucket listing of `(path, last modified Unix ms)` by block directory; objects
/// outside block directories are left out.
pub fn listed_blocks<'a>(
    objects: impl IntoIterator<Item = (&'a str, i64)>,
) -> BTreeMap<BlockId, ListedBlock> {
    let mut listed: BTreeMap<BlockId, ListedBlock> = BTreeMap::new();
    for (path, modified) in objects {
        let Some(id) = block_of(path) else {
            continue;
        };
        let entry = listed.entry(id).or_default();
        entry.newest_modified = entry.newest_modified.max(modified);
        match path.rsplit('/').next() {
            Some(META_FILENAME) => entry.meta = true,
            Some(DELETION_MARK_FILENAME) => entry.deletion_mark = true,
            Some(NO_COMPACT_MARK_FILENAME) => entry.no_compact_mark = true,
            Some(NO_DOWNSAMPLE_MARK_FILENAME) => entry.no_downsample_mark = true,
            _ => {}
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_block_detection() {
        let id = BlockId::from_parts(1_735_689_600_000, 5);
        assert_eq!(meta_path(id), format!("{id}/meta.json"));
        assert_eq!(chunk_path(id, "000001"), format!("{id}/chunks/000001"));
        assert_eq!(block_of(&index_path(id)), Some(id));
        assert_eq!(block_of("compactd/fence.json"), None);
        assert_eq!(block_of("debug/metas/x.json"), None);
    }

    #[test]
    fn block_data_is_the_index_and_the_chunks() {
        assert!(is_block_data("index"));
        assert!(is_block_data("chunks/000001"));
        for other in [
            "meta.json",
            "tombstones",
            "deletion-mark.json",
            "index.tmp",
            "chunksx",
        ] {
            assert!(!is_block_data(other), "{other}");
        }
    }

    #[test]
    fn a_listing_groups_by_block_with_markers_and_the_newest_time() {
        let (a, b) = (BlockId::from_parts(1, 1), BlockId::from_parts(2, 2));
        let paths = [
            (format!("{a}/chunks/000001"), 10),
            (format!("{a}/index"), 30),
            (format!("{a}/meta.json"), 20),
            (format!("{a}/deletion-mark.json"), 25),
            (format!("{b}/no-compact-mark.json"), 5),
            (format!("{b}/no-downsample-mark.json"), 4),
            ("compactd/fence.json".to_string(), 99),
        ];
        let listed = listed_blocks(paths.iter().map(|(p, t)| (p.as_str(), *t)));
        assert_eq!(
            listed.len(),
            2,
            "objects outside block directories are left out"
        );
        let la = ListedBlock {
            meta: true,
            deletion_mark: true,
            no_compact_mark: false,
            no_downsample_mark: false,
            newest_modified: 30,
        };
        assert_eq!(listed[&a], la);
        let lb = ListedBlock {
            meta: false,
            deletion_mark: false,
            no_compact_mark: true,
            no_downsample_mark: true,
            newest_modified: 5,
        };
        assert_eq!(
            listed[&b], lb,
            "a block without meta.json is listed (partial)"
        );
    }
}

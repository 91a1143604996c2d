//! Object names in a Thanos bucket: `<ULID>/meta.json`, `<ULID>/index`,
//! `<ULID>/chunks/NNNNNN` and the markers beside them. Top-level names that are not ULIDs
//! (`debug/`, `compactd/`) are not blocks.

use crate::tsdb::block_id::BlockId;

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
}

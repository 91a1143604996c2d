//! TEMPORARY (replaced by the streams17 merge).

use std::collections::{BTreeMap, BTreeSet};

use super::stream::StreamId;

/// TEMPORARY round robin.
pub fn assign(
    members: &BTreeSet<String>,
    streams: &BTreeSet<StreamId>,
) -> BTreeMap<StreamId, String> {
    let m: Vec<&String> = members.iter().collect();
    if m.is_empty() {
        return BTreeMap::new();
    }
    streams
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, m[i % m.len()].clone()))
        .collect()
}

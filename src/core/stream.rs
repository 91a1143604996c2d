//! Streams, the unit of ownership when every replica compacts (`docs/scaleout.md`): a
//! stream is a block's external labels without the deduplication replica labels, across all
//! resolutions. Its id is the hash Thanos prints in group keys (`<resolution>@<hash>`), so an
//! operator finds a stream's groups by its id. Blocks whose labels are all replica labels (or
//! none) belong to no stream: the bucket leader owns them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::plan::labels_hash;
use crate::tsdb::meta::BlockMeta;

/// A stream's id: Prometheus' `labels.Hash()` of its labels (replica labels removed).
/// Shown as 16 hex digits in etcd keys and fence paths, in decimal in group keys.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StreamId(pub u64);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl StreamId {
    /// The stream of `labels` once `replica_labels` are removed; `None` when nothing is left.
    pub fn of_labels(
        labels: &BTreeMap<String, String>,
        replica_labels: &[String],
    ) -> Option<StreamId> {
        let kept: BTreeMap<String, String> = labels
            .iter()
            .filter(|(name, _)| !replica_labels.contains(name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        (!kept.is_empty()).then(|| StreamId(labels_hash(&kept)))
    }

    /// The stream of a block; `None` for a block without a Thanos section or labels.
    pub fn of_block(meta: &BlockMeta, replica_labels: &[String]) -> Option<StreamId> {
        StreamId::of_labels(&meta.thanos.as_ref()?.labels, replica_labels)
    }

    /// The stream's fence object: `compactd/fence/<id>.json`.
    pub fn fence_path(self) -> String {
        format!("compactd/fence/{self}.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replicas_of_one_stream_share_its_id() {
        let replica = vec!["replica".to_string()];
        let a = StreamId::of_labels(&labels(&[("cluster", "eu"), ("replica", "a")]), &replica);
        let b = StreamId::of_labels(&labels(&[("cluster", "eu"), ("replica", "b")]), &replica);
        let plain = StreamId::of_labels(&labels(&[("cluster", "eu")]), &[]);
        assert_eq!(a, b);
        assert_eq!(a, plain);
        let other = StreamId::of_labels(&labels(&[("cluster", "us")]), &replica);
        assert_ne!(a, other);
    }

    #[test]
    fn blocks_of_replica_labels_only_belong_to_no_stream() {
        let replica = vec!["replica".to_string()];
        assert_eq!(
            StreamId::of_labels(&labels(&[("replica", "a")]), &replica),
            None
        );
        assert_eq!(StreamId::of_labels(&labels(&[]), &replica), None);
    }

    #[test]
    fn the_id_is_thanos_group_hash_and_names_the_fence() {
        let l = labels(&[("cluster", "eu")]);
        let id = StreamId::of_labels(&l, &[]).unwrap();
        assert_eq!(id.0, labels_hash(&l));
        assert_eq!(
            id.fence_path(),
            format!("compactd/fence/{:016x}.json", id.0)
        );
    }
}

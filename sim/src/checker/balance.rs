//! Stream worlds at rest: the streams are shared out evenly. Once the faults have healed and
//! the members have not changed for long enough (the rebalance delay, a hand-over and a
//! takeover), every live member leads ⌊S/N⌋ or ⌈S/N⌉ of the bucket's S streams, any other
//! node none, and every stream is led by exactly one node (`docs/scaleout.md`: counts differ
//! by at most one).
//!
//! S comes from the bucket (the streams of its visible blocks, by the checker's own
//! [`unit_of_meta`]), N from etcd (the names under the bucket's election: its members), and
//! what each node leads from the node itself, as it reports it; nothing here asks the core
//! how streams are assigned.

use std::collections::{BTreeMap, BTreeSet};

use super::units::{unit_of_meta, Unit};
use super::visible_blocks;
use crate::store::StoreModel;

/// The streams of the bucket's visible blocks (blocks left with no labels are the bucket
/// leader's, not a stream).
pub fn streams_in(store: &StoreModel, replica_labels: &[String]) -> BTreeSet<u64> {
    visible_blocks(store)
        .values()
        .filter_map(|(meta, _)| match unit_of_meta(meta, replica_labels) {
            Unit::Stream(id) => Some(id),
            Unit::Bucket => None,
        })
        .collect()
}

/// What is wrong with how `streams` streams are shared out among `members`, when each node
/// leads `owned[node]` of them; `None` when every member leads ⌊S/N⌋ or ⌈S/N⌉, every other
/// node none, and the counts add up to S.
pub fn unbalanced(
    streams: usize,
    members: &BTreeSet<String>,
    owned: &BTreeMap<String, usize>,
) -> Option<String> {
    let n = members.len().max(1);
    let (low, high) = (streams / n, streams.div_ceil(n));
    let count = |node: &str| owned.get(node).copied().unwrap_or(0);
    let mut wrong: Vec<String> = members
        .iter()
        .filter(|m| !(low..=high).contains(&count(m)))
        .map(|m| format!("{m} leads {}", count(m)))
        .collect();
    wrong.extend(
        owned
            .iter()
            .filter(|(node, led)| !members.contains(*node) && **led > 0)
            .map(|(node, led)| format!("{node} (no member) leads {led}")),
    );
    let total: usize = owned.values().sum();
    if total != streams {
        wrong.push(format!("{total} streams led in all"));
    }
    if wrong.is_empty() {
        return None;
    }
    let counts: Vec<String> = owned.iter().map(|(n, c)| format!("{n}={c}")).collect();
    Some(format!(
        "{streams} streams over {} members should be {low} or {high} each: {} (leads: {})",
        members.len(),
        wrong.join(", "),
        counts.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn owned(counts: &[(&str, usize)]) -> BTreeMap<String, usize> {
        counts.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn counts_within_one_of_each_other_are_balanced() {
        let m = members(&["a", "b", "c"]);
        assert_eq!(
            unbalanced(7, &m, &owned(&[("a", 3), ("b", 2), ("c", 2)])),
            None
        );
        assert_eq!(
            unbalanced(6, &m, &owned(&[("a", 2), ("b", 2), ("c", 2)])),
            None
        );
        assert_eq!(
            unbalanced(2, &m, &owned(&[("a", 1), ("b", 1), ("c", 0)])),
            None
        );
    }

    #[test]
    fn a_member_with_too_many_or_too_few_is_unbalanced() {
        let m = members(&["a", "b", "c"]);
        let text = unbalanced(7, &m, &owned(&[("a", 4), ("b", 2), ("c", 1)])).expect("found");
        assert!(
            text.contains("a leads 4") && text.contains("c leads 1"),
            "{text}"
        );
    }

    #[test]
    fn a_stream_led_twice_or_by_nobody_is_unbalanced() {
        let m = members(&["a", "b"]);
        assert!(unbalanced(4, &m, &owned(&[("a", 2), ("b", 1)])).is_some());
        assert!(unbalanced(3, &m, &owned(&[("a", 2), ("b", 2)])).is_some());
        let stray = owned(&[("a", 2), ("b", 2), ("c", 1)]);
        let text = unbalanced(4, &m, &stray).expect("found");
        assert!(text.contains("c (no member) leads 1"), "{text}");
    }
}

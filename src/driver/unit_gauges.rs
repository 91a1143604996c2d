//! The bucket gauges of a replica that holds several units (`--ownership=stream`): the bucket
//! leader's view of the bucket-wide chores plus one view per stream it holds. Thanos exports
//! one sync and one backlog per compactor; here each unit syncs and plans on its own, so
//! `thanos_blocks_meta_synced` and the `thanos_compact_todo_*` gauges are the sum over the
//! units this replica holds, from the last report of each. With one unit (bucket ownership)
//! the sum is that unit's report, unchanged.
//!
//! `scope-excluded` (blocks of streams this replica does not hold) is the bucket view's count
//! of blocks outside its scope minus the blocks the replica's own streams count: the blocks
//! other replicas hold.

use std::collections::BTreeMap;

use crate::core::progress::{Backlog, CompactionBacklog};
use crate::core::stream::StreamId;
use crate::metrics::STATE_SCOPE_EXCLUDED;

/// One unit of a replica: the bucket (`None`) or a stream it holds.
pub type UnitKey = Option<StreamId>;

/// The last sync states and backlog of each unit held.
#[derive(Debug, Default)]
pub struct UnitGauges {
    synced: BTreeMap<UnitKey, BTreeMap<String, u64>>,
    backlog: BTreeMap<UnitKey, Backlog>,
}

impl UnitGauges {
    /// Records a unit's sync states; returns the states to publish.
    pub fn synced(
        &mut self,
        unit: UnitKey,
        states: &BTreeMap<String, u64>,
    ) -> BTreeMap<String, u64> {
        self.synced.insert(unit, states.clone());
        self.synced_total()
    }

    /// Records a unit's backlog; returns the backlog to publish.
    pub fn backlog(&mut self, unit: UnitKey, backlog: Backlog) -> Backlog {
        self.backlog.insert(unit, backlog);
        self.backlog_total()
    }

    /// Forgets a unit the replica no longer holds; returns what to publish then, if the unit
    /// had reported anything.
    pub fn dropped(&mut self, unit: UnitKey) -> Option<(BTreeMap<String, u64>, Backlog)> {
        let had_sync = self.synced.remove(&unit).is_some();
        let had_backlog = self.backlog.remove(&unit).is_some();
        (had_sync || had_backlog).then(|| (self.synced_total(), self.backlog_total()))
    }

    fn synced_total(&self) -> BTreeMap<String, u64> {
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        let mut own_streams = 0u64;
        for (unit, states) in &self.synced {
            for (state, n) in states {
                if state != STATE_SCOPE_EXCLUDED {
                    *total.entry(state.clone()).or_default() += n;
                    if unit.is_some() {
                        own_streams += n;
                    }
                }
            }
        }
        let outside = self
            .synced
            .get(&None)
            .and_then(|s| s.get(STATE_SCOPE_EXCLUDED))
            .copied();
        if let Some(outside) = outside {
            // A stream's sync may be newer than the bucket's: never below zero.
            total.insert(
                STATE_SCOPE_EXCLUDED.to_owned(),
                outside.saturating_sub(own_streams),
            );
        }
        total
    }

    fn backlog_total(&self) -> Backlog {
        self.backlog
            .values()
            .fold(Backlog::default(), |t, b| Backlog {
                compaction: CompactionBacklog {
                    runs: t.compaction.runs + b.compaction.runs,
                    blocks: t.compaction.blocks + b.compaction.blocks,
                },
                downsample_blocks: match (t.downsample_blocks, b.downsample_blocks) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
                },
                deletion_blocks: t.deletion_blocks + b.deletion_blocks,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn one_unit_is_published_as_it_reported() {
        let mut g = UnitGauges::default();
        let s = states(&[("loaded", 7), ("too-fresh", 2)]);
        assert_eq!(g.synced(None, &s), s);
        let b = Backlog {
            compaction: CompactionBacklog { runs: 3, blocks: 9 },
            downsample_blocks: None,
            deletion_blocks: 1,
        };
        assert_eq!(g.backlog(None, b), b);
    }

    #[test]
    fn streams_add_up_and_scope_excluded_counts_only_other_replicas_blocks() {
        let mut g = UnitGauges::default();
        let a = StreamId(1);
        let b = StreamId(2);
        // The bucket's view: 2 label-less blocks, 20 of streams.
        g.synced(None, &states(&[("loaded", 2), (STATE_SCOPE_EXCLUDED, 20)]));
        g.synced(
            Some(a),
            &states(&[("loaded", 5), (STATE_SCOPE_EXCLUDED, 17)]),
        );
        let published = g.synced(
            Some(b),
            &states(&[
                ("loaded", 3),
                ("marked-for-deletion", 1),
                (STATE_SCOPE_EXCLUDED, 18),
            ]),
        );
        assert_eq!(
            published,
            states(&[
                ("loaded", 10),
                ("marked-for-deletion", 1),
                (STATE_SCOPE_EXCLUDED, 11)
            ])
        );
        let backlog = |c, d| Backlog {
            compaction: CompactionBacklog {
                runs: c,
                blocks: 2 * c,
            },
            downsample_blocks: d,
            deletion_blocks: 0,
        };
        g.backlog(None, backlog(0, None));
        g.backlog(Some(a), backlog(2, Some(1)));
        assert_eq!(g.backlog(Some(b), backlog(3, Some(4))), backlog(5, Some(5)));
        // Handing stream a over takes its blocks out of this replica's counts.
        let (synced, left) = g.dropped(Some(a)).expect("a had reported");
        assert_eq!(synced["loaded"], 5);
        assert_eq!(synced[STATE_SCOPE_EXCLUDED], 16);
        assert_eq!(left, backlog(3, Some(4)));
        assert_eq!(g.dropped(Some(a)), None);
    }
}

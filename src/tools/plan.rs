//! `compactd tools bucket plan`: what `compactd run` would compact next, from one sync of the
//! bucket, without writing anything, and what the sync and the planning cost.
//!
//! It runs the same code as one iteration of the compactor up to its first decision: the
//! driver's sync (one recursive listing, a GET per meta.json and per marker), the core's
//! filters ([`build_view`]) and Thanos' grouper and planner ([`plan_with_marks`]) over every
//! group. The timings it prints are what the scale benchmark (`cargo bench --bench scale`)
//! reads.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use object_store::ObjectStore;

use crate::core::plan::{
    compaction_ranges, group_blocks, overlapping_blocks, plan_with_marks, PlanInput,
};
use crate::core::types::{Millis, Now};
use crate::core::view::{build_view, BucketView, Scope, ViewConfig};
use crate::driver::store::StoreExecutor;
use crate::relabel::RelabelConfig;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::labels::Labels;

/// The run flags that change the plan.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    /// `--deduplication.replica-label` values.
    pub replica_labels: Vec<String>,
    /// `--compact.enable-vertical-compaction`.
    pub vertical: bool,
    /// `--consistency-delay` in ms.
    pub consistency_delay_ms: i64,
    /// `--delete-delay` in ms.
    pub delete_delay_ms: i64,
    /// `--debug.max-compaction-level`.
    pub max_compaction_level: usize,
    /// `--compact.block-max-index-size` in bytes.
    pub block_max_index_size: u64,
    /// `--selector.relabel-config[-file]`: the blocks `run` would act on (empty: all).
    pub selector_relabel: Vec<RelabelConfig>,
}

/// What one group would do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlan {
    /// Thanos' group key, `<resolution>@<labels hash>`.
    pub key: String,
    /// The group's external labels as Prometheus prints them, `{a="b", ...}`.
    pub labels: String,
    /// The group's resolution in ms.
    pub resolution: i64,
    /// Visible blocks in the group.
    pub blocks: usize,
    /// No-compact marks the planner would write first.
    pub marks: Vec<BlockId>,
    /// Blocks the next compaction would merge (empty: nothing to do).
    pub compact: Vec<BlockId>,
    /// True when the group overlaps and vertical compaction is off: `run` halts on it.
    pub halts_on_overlap: bool,
}

/// The sync, the filters' counts, every group's plan and the time each phase took.
#[derive(Clone, Debug)]
pub struct PlanReport {
    /// Block directories the sync found.
    pub block_dirs: usize,
    /// Blocks left visible by the filters.
    pub visible: usize,
    /// `thanos_blocks_meta_synced` counts per state (zero counts left out).
    pub states: Vec<(String, u64)>,
    /// Every group, in key order.
    pub groups: Vec<GroupPlan>,
    /// Wall time of the sync.
    pub sync_seconds: f64,
    /// Wall time of the filters, the grouping and the planning of every group.
    pub plan_seconds: f64,
}

/// Syncs the bucket and plans every group.
pub async fn plan_bucket(
    store: &Arc<dyn ObjectStore>,
    settings: &PlanSettings,
) -> anyhow::Result<PlanReport> {
    let ranges = compaction_ranges(settings.max_compaction_level)
        .map_err(|e| anyhow::anyhow!("--debug.max-compaction-level: {e}"))?;
    let started = Instant::now();
    let sync = StoreExecutor::new(Arc::clone(store))
        .sync()
        .await
        .map_err(anyhow::Error::msg)?;
    let sync_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let wall_ms = super::now_unix_ms();
    let now = Now {
        mono: Millis(0),
        wall: Millis(wall_ms),
    };
    let view_cfg = ViewConfig {
        min_time: i64::MIN,
        max_time: i64::MAX,
        consistency_delay_ms: settings.consistency_delay_ms,
        delete_delay_ms: settings.delete_delay_ms,
        replica_labels: settings.replica_labels.clone(),
        selector_relabel: settings.selector_relabel.clone(),
        scope: Scope::All,
    };
    // One look at the bucket: every mark is first seen now, so its own time decides.
    let view = build_view(&sync, now, &view_cfg, &std::collections::BTreeMap::new());
    let groups = plan_view(&view, settings, &ranges);
    let plan_seconds = started.elapsed().as_secs_f64();
    Ok(PlanReport {
        block_dirs: sync.blocks.len(),
        visible: view.blocks.len(),
        states: view.states.into_iter().filter(|(_, n)| *n > 0).collect(),
        groups,
        sync_seconds,
        plan_seconds,
    })
}

/// Every group of `view` with Thanos' grouper and planner ([`plan_with_marks`]), as an
/// iteration of `compactd run` with `settings` would plan it over `ranges`.
pub fn plan_view(view: &BucketView, settings: &PlanSettings, ranges: &[i64]) -> Vec<GroupPlan> {
    let vertical = settings.vertical || !settings.replica_labels.is_empty();
    group_blocks(view.blocks.values())
        .into_iter()
        .map(|(key, blocks)| {
            let planned = plan_with_marks(&PlanInput {
                blocks: &blocks,
                no_compact: &view.no_compact,
                ranges,
                vertical,
                index_size_limit_bytes: Some(settings.block_max_index_size),
            });
            GroupPlan {
                key: key.to_string(),
                labels: Labels::from_pairs(key.labels.clone()).to_string(),
                resolution: key.resolution,
                blocks: blocks.len(),
                marks: planned.marks.iter().map(|m| m.block).collect(),
                compact: planned.compact,
                halts_on_overlap: !vertical && !overlapping_blocks(&blocks).is_empty(),
            }
        })
        .collect()
}

/// One line per group with work (or `--all` groups), then the summary lines.
pub fn render(report: &PlanReport, all: bool) -> String {
    let mut out = String::new();
    for g in &report.groups {
        let action = if g.halts_on_overlap {
            "HALT: overlapping blocks, vertical compaction off".to_string()
        } else if !g.compact.is_empty() {
            let ids: Vec<String> = g.compact.iter().map(|b| b.to_string()).collect();
            format!("compact {} blocks: {}", ids.len(), ids.join(" "))
        } else if all {
            "nothing to do".to_string()
        } else {
            continue;
        };
        let _ = write!(out, "group {} {} ({} blocks): ", g.key, g.labels, g.blocks);
        for m in &g.marks {
            let _ = write!(out, "no-compact-mark {m}, then ");
        }
        let _ = writeln!(out, "{action}");
    }
    let states: Vec<String> = report
        .states
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect();
    let with_work = report
        .groups
        .iter()
        .filter(|g| !g.compact.is_empty())
        .count();
    let _ = writeln!(
        out,
        "sync: {} block directories in {:.3}s ({:.0} blocks/s); states: {}",
        report.block_dirs,
        report.sync_seconds,
        report.block_dirs as f64 / report.sync_seconds.max(1e-9),
        if states.is_empty() {
            "none".to_string()
        } else {
            states.join(" ")
        }
    );
    let _ = writeln!(
        out,
        "plan: {} visible blocks in {} groups, {} with a compaction to run, in {:.3}s",
        report.visible,
        report.groups.len(),
        with_work,
        report.plan_seconds
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> BlockId {
        BlockId::from_parts(n, 0)
    }

    #[test]
    fn render_lists_groups_with_work_and_the_summary() {
        let report = PlanReport {
            block_dirs: 5,
            visible: 4,
            states: vec![("no-meta-json".into(), 1)],
            groups: vec![
                GroupPlan {
                    key: "0@1".into(),
                    labels: "{a=\"1\"}".into(),
                    resolution: 0,
                    blocks: 3,
                    marks: vec![id(9)],
                    compact: vec![id(1), id(2)],
                    halts_on_overlap: false,
                },
                GroupPlan {
                    key: "0@2".into(),
                    labels: "{a=\"2\"}".into(),
                    resolution: 0,
                    blocks: 1,
                    marks: vec![],
                    compact: vec![],
                    halts_on_overlap: false,
                },
            ],
            sync_seconds: 0.5,
            plan_seconds: 0.001,
        };
        let text = render(&report, false);
        assert!(text.starts_with(&format!(
            "group 0@1 {{a=\"1\"}} (3 blocks): no-compact-mark {}, then compact 2 blocks: {} {}\n",
            id(9),
            id(1),
            id(2)
        )));
        assert!(!text.contains("0@2"), "{text}");
        assert!(text.contains(
            "sync: 5 block directories in 0.500s (10 blocks/s); states: no-meta-json=1\n"
        ));
        assert!(text.contains("plan: 4 visible blocks in 2 groups, 1 with a compaction to run"));
        assert!(render(&report, true).contains("group 0@2 {a=\"2\"} (1 blocks): nothing to do"));
    }
}

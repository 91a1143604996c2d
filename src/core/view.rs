//! The bucket as the core sees it after one sync: Thanos' meta-fetcher filters applied in
//! Thanos' order (`pkg/block/fetcher.go`, `cmd/thanos/compact.go`):
//!
//! 0. fetch: no meta.json or an unreadable one makes a *partial* block; then the *scope*
//!    ([`Scope`], compactd's own, when every replica compacts): a block of another owner's
//!    stream is *scope-excluded*: not compacted, downsampled, retained, collected or deleted
//!    here (its stream's writer has it), and neither its marks nor its marker problems count;
//! 1. time partition (`--min-time`/`--max-time`);
//! 2. label selection (`--selector.relabel-config`, [`selected`]): the relabel rules over a
//!    block's external labels without the replica labels, plus `__block_id`; a block they
//!    drop is *label-excluded*: not compacted, downsampled, retained, collected or deleted
//!    here (another shard owns it);
//! 3. consistency delay: blocks younger than `--consistency-delay` (by `upload_time`, else
//!    ULID time) are hidden unless a compactor or repair wrote them;
//! 4. deletion marks older than `--delete-delay`/2 hide their block; newer ones stay visible so
//!    that deduplication still sees the sources of a fresh compaction (a mark's age:
//!    [`mark_age_ms`]);
//! 5. replica labels are removed (`--deduplication.replica-label`);
//! 6. deduplication: per resolution, a block whose sources are a subset of a kept block's is a
//!    *duplicate* (hidden; garbage collection marks it for deletion);
//! 7. no-compact and no-downsample marks are gathered.
//!
//! Pure: the same sync result, time and configuration give the same view.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::stream::StreamId;
use super::types::{MetaState, Millis, Now, SyncResult, SyncedBlock};
use crate::bucket::markers::DeletionMark;
use crate::relabel::selector::BLOCK_ID_LABEL;
use crate::relabel::RelabelConfig;
use crate::timefmt::parse_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// Sources whose blocks skip the consistency delay (Thanos: compactor, compactor.repair,
/// bucket.repair).
const TRUSTED_SOURCES: [&str; 3] = ["compactor", "compactor.repair", "bucket.repair"];
/// Label value Thanos sets when removing replica labels leaves a block without labels.
const DEDUPED_VALUE: &str = "deduped";

/// The filters' settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewConfig {
    /// Blocks ending before this (Unix ms) are excluded.
    pub min_time: i64,
    /// Blocks starting after this (Unix ms) are excluded.
    pub max_time: i64,
    /// `--consistency-delay` in ms.
    pub consistency_delay_ms: i64,
    /// `--delete-delay` in ms.
    pub delete_delay_ms: i64,
    /// `--deduplication.replica-label` values.
    pub replica_labels: Vec<String>,
    /// `--selector.relabel-config`: which blocks this instance acts on (empty: all). Absent
    /// from traces recorded before it existed, and left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selector_relabel: Vec<RelabelConfig>,
    /// Which blocks this view's owner acts on when every replica compacts. Absent from traces
    /// recorded before it existed, and left out when [`Scope::All`], so that their headers
    /// keep their bytes.
    #[serde(default, skip_serializing_if = "Scope::is_all")]
    pub scope: Scope,
}

/// The blocks a view's owner acts on (issue 17: each stream has one elected writer, the
/// bucket leader keeps the rest). Like `--selector.relabel-config`, a block outside the scope
/// is invisible: another owner compacts, downsamples, retains, collects and deletes it. The
/// scopes of a bucket's streams and [`Scope::BucketChores`] split its blocks (and their
/// deletion marks) with neither gap nor overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every block: a single compactor, or the one leader of the bucket (the default).
    #[default]
    All,
    /// The bucket leader's share: blocks of no stream ([`StreamId::of_block`] is `None`) and
    /// every partial block (no or an unreadable meta.json: its stream is unknown, and the
    /// partial-upload clean-up is a bucket-wide chore).
    BucketChores,
    /// One stream's blocks, all resolutions; never a partial block.
    Stream(StreamId),
}

impl Scope {
    /// True for [`Scope::All`] (serde leaves the field out then).
    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// Whether the scope holds a block with `meta` (`None`: a partial block); its stream is
    /// its labels without `replica_labels`.
    pub fn holds(&self, meta: Option<&BlockMeta>, replica_labels: &[String]) -> bool {
        let stream = || meta.and_then(|m| StreamId::of_block(m, replica_labels));
        match (self, meta) {
            (Scope::All, _) => true,
            (Scope::BucketChores, None) => true,
            (Scope::BucketChores, Some(_)) => stream().is_none(),
            (Scope::Stream(_), None) => false,
            (Scope::Stream(id), Some(_)) => stream() == Some(*id),
        }
    }
}

/// A partial block: listed objects without a readable meta.json.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialBlock {
    /// Newest last-modified time of its objects (Unix ms).
    pub newest_modified: Millis,
    /// True when it has a deletion mark (a delete in progress).
    pub marked: bool,
    /// True when its meta.json exists but cannot be read. Thanos deletes such blocks like
    /// partial uploads; compactd never does: it reports them every sync and leaves them for
    /// an operator, since the data may be intact.
    pub corrupt_meta: bool,
}

/// The result of the filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BucketView {
    /// Visible blocks, replica labels removed.
    pub blocks: BTreeMap<BlockId, BlockMeta>,
    /// Blocks hidden because another block's sources cover theirs.
    pub duplicates: BTreeSet<BlockId>,
    /// Readable deletion marks of blocks in the time range (visible or hidden) and of partial
    /// blocks, by block.
    pub deletion_marks: BTreeMap<BlockId, DeletionMark>,
    /// Blocks with a no-compact mark.
    pub no_compact: BTreeSet<BlockId>,
    /// Blocks with a no-downsample mark.
    pub no_downsample: BTreeSet<BlockId>,
    /// Partial blocks.
    pub partial: BTreeMap<BlockId, PartialBlock>,
    /// `thanos_blocks_meta_synced` counts per state.
    pub states: BTreeMap<String, u64>,
    /// Problems worth a warning.
    pub problems: Vec<String>,
}

/// How old a deletion mark counts as, in ms: the larger of its age by its own time (the
/// writer's wall clock) and the time since this process first saw it (`first_seen`, on its
/// own monotonic clock). A writer whose clock ran ahead stamps marks in the future; by
/// their time alone they would wait out the delete delay plus the writer's error (Thanos
/// waits that long), by the second measure they wait the delay at most once seen.
pub fn mark_age_ms(mark: &DeletionMark, first_seen: Option<Millis>, now: Now) -> i64 {
    let by_stamp = now.wall.0 - mark.deletion_time.saturating_mul(1000);
    let by_sight = first_seen.map_or(i64::MIN, |seen| now.mono.0 - seen.0);
    by_stamp.max(by_sight)
}

/// Applies the filters to a sync result; `marks_seen` holds when this process first saw each
/// deletion mark (see [`mark_age_ms`]).
pub fn build_view(
    sync: &SyncResult,
    now: Now,
    cfg: &ViewConfig,
    marks_seen: &BTreeMap<BlockId, Millis>,
) -> BucketView {
    let mut v = BucketView::default();
    let mut candidates: Vec<BlockMeta> = Vec::new();
    for (id, b) in &sync.blocks {
        let readable = match &b.meta {
            MetaState::Ok(m) => Some(&**m),
            MetaState::Missing | MetaState::Corrupt(_) => None,
        };
        let in_scope = cfg.scope.holds(readable, &cfg.replica_labels);
        gather_marks(&mut v, *id, b, in_scope, cfg);
        if !in_scope {
            // Its owner reports its problems and counts it in its own states.
            bump(&mut v, "scope-excluded");
            continue;
        }
        v.problems.extend(b.marker_problems.iter().cloned());
        let meta = match &b.meta {
            MetaState::Ok(m) => m,
            MetaState::Missing => {
                partial(
                    &mut v,
                    *id,
                    b.newest_modified,
                    b.deletion_mark.is_some(),
                    "no-meta-json",
                );
                continue;
            }
            MetaState::Corrupt(why) => {
                v.problems.push(format!("block {id}: {why}"));
                partial(
                    &mut v,
                    *id,
                    b.newest_modified,
                    b.deletion_mark.is_some(),
                    "corrupted-meta-json",
                );
                continue;
            }
        };
        let mark_age = b
            .deletion_mark
            .as_ref()
            .map(|m| mark_age_ms(m, marks_seen.get(id).copied(), now));
        if let Some(state) = hidden_state(meta, mark_age, now, cfg) {
            bump(&mut v, state);
            continue;
        }
        candidates.push(strip_replica_labels(meta, &cfg.replica_labels, &mut v));
    }
    deduplicate(candidates, &mut v);
    count_marked(&mut v);
    v
}

/// Gathers a block's marks. Deletion marks count for blocks this instance owns: in its
/// scope, and in its time range and selected, or partial (a delete in progress). A block
/// with an unreadable meta.json is never deleted.
fn gather_marks(
    v: &mut BucketView,
    id: BlockId,
    b: &SyncedBlock,
    in_scope: bool,
    cfg: &ViewConfig,
) {
    let owned = in_scope
        && match &b.meta {
            MetaState::Ok(m) => in_time_range(m, cfg) && selected(m, cfg),
            MetaState::Missing => true,
            MetaState::Corrupt(_) => false,
        };
    if let (Some(m), true) = (&b.deletion_mark, owned) {
        v.deletion_marks.insert(id, m.clone());
    }
    if b.no_compact_mark.is_some() {
        v.no_compact.insert(id);
    }
    if b.no_downsample_mark.is_some() {
        v.no_downsample.insert(id);
    }
}

/// Filter 7's counts: visible blocks with a no-compact (always counted) or no-downsample mark.
fn count_marked(v: &mut BucketView) {
    let marked = v
        .blocks
        .keys()
        .filter(|id| v.no_compact.contains(id))
        .count() as u64;
    v.states.insert("marked-for-no-compact".into(), marked);
    // Thanos counts this state only when it sees a mark.
    let no_downsample = v
        .blocks
        .keys()
        .filter(|id| v.no_downsample.contains(id))
        .count() as u64;
    if no_downsample > 0 {
        v.states
            .insert("marked-for-no-downsample".into(), no_downsample);
    }
}

fn bump(v: &mut BucketView, state: &str) {
    *v.states.entry(state.to_string()).or_default() += 1;
}

fn partial(v: &mut BucketView, id: BlockId, newest_modified: Millis, marked: bool, state: &str) {
    bump(v, state);
    let corrupt_meta = state == "corrupted-meta-json";
    v.partial.insert(
        id,
        PartialBlock {
            newest_modified,
            marked,
            corrupt_meta,
        },
    );
}

/// The fetcher state hiding a block, if one does (filters 1–4).
fn hidden_state(
    meta: &BlockMeta,
    mark_age_ms: Option<i64>,
    now: Now,
    cfg: &ViewConfig,
) -> Option<&'static str> {
    if !in_time_range(meta, cfg) {
        return Some("time-excluded");
    }
    if !selected(meta, cfg) {
        return Some("label-excluded");
    }
    let trusted = meta
        .thanos
        .as_ref()
        .is_some_and(|t| TRUSTED_SOURCES.contains(&t.source.as_str()));
    if !trusted && now.wall.0 - created_ms(meta) < cfg.consistency_delay_ms {
        return Some("too-fresh");
    }
    if mark_age_ms.is_some_and(|age| age > cfg.delete_delay_ms / 2) {
        return Some("marked-for-deletion");
    }
    None
}

/// Filter 1: the block overlaps `--min-time`..`--max-time` (Thanos' `TimePartitionMetaFilter`).
pub fn in_time_range(meta: &BlockMeta, cfg: &ViewConfig) -> bool {
    !(meta.max_time < cfg.min_time || meta.min_time > cfg.max_time)
}

/// Filter 2 (Thanos' `LabelShardedMetaFilter`): whether `--selector.relabel-config` keeps
/// the block. The rules see its external labels without the replica labels, so that the
/// replicas of one stream land in one shard (Thanos' fix, thanos#8853), plus `__block_id`
/// (set first: an external label of that name wins, as in Thanos). A dropped or emptied
/// label set excludes the block.
pub fn selected(meta: &BlockMeta, cfg: &ViewConfig) -> bool {
    if cfg.selector_relabel.is_empty() {
        return true;
    }
    let mut labels = BTreeMap::new();
    labels.insert(BLOCK_ID_LABEL.to_string(), meta.ulid.to_string());
    if let Some(thanos) = &meta.thanos {
        let external = thanos
            .labels
            .iter()
            .filter(|(name, _)| !cfg.replica_labels.contains(name));
        labels.extend(external.map(|(name, value)| (name.clone(), value.clone())));
    }
    crate::relabel::process(&labels, &cfg.selector_relabel).is_some_and(|l| !l.is_empty())
}

/// When the block appeared in the bucket: `thanos.upload_time` if set, else its ULID time.
pub fn created_ms(meta: &BlockMeta) -> i64 {
    meta.thanos
        .as_ref()
        .and_then(|t| parse_rfc3339_ms(&t.upload_time).ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(meta.ulid.timestamp_ms() as i64)
}

fn strip_replica_labels(
    meta: &BlockMeta,
    replica_labels: &[String],
    v: &mut BucketView,
) -> BlockMeta {
    let mut meta = meta.clone();
    let Some(t) = meta.thanos.as_mut() else {
        return meta;
    };
    let before = t.labels.len();
    t.labels.retain(|k, _| !replica_labels.contains(k));
    if t.labels.len() != before {
        bump(v, "replica-label-removed");
        if t.labels.is_empty() {
            t.labels
                .insert(replica_labels[0].clone(), DEDUPED_VALUE.to_string());
        }
    }
    meta
}

/// Filter 6: per resolution, most sources first (then lowest id), drop blocks whose sources
/// a kept block already covers.
fn deduplicate(mut candidates: Vec<BlockMeta>, v: &mut BucketView) {
    candidates.sort_by(|a, b| {
        resolution(a)
            .cmp(&resolution(b))
            .then(b.compaction.sources.len().cmp(&a.compaction.sources.len()))
            .then(a.ulid.cmp(&b.ulid))
    });
    let mut kept: Vec<(i64, BTreeSet<BlockId>)> = Vec::new();
    for meta in candidates {
        let mut sources: BTreeSet<BlockId> = meta.compaction.sources.iter().copied().collect();
        if sources.is_empty() {
            // A meta without sources must never look covered by everything (and be deleted).
            sources.insert(meta.ulid);
        }
        let res = resolution(&meta);
        let covered = kept.iter().any(|(r, s)| *r == res && sources.is_subset(s));
        if covered {
            bump(v, "duplicate");
            v.duplicates.insert(meta.ulid);
        } else {
            bump(v, "loaded");
            kept.push((res, sources));
            v.blocks.insert(meta.ulid, meta);
        }
    }
}

/// A block's downsampling resolution (0 for raw and for blocks without a Thanos section).
pub fn resolution(meta: &BlockMeta) -> i64 {
    meta.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
}

#[cfg(test)]
mod tests;

//! `compactd tools bucket audit`: who committed which block under which epoch, and whether
//! each stream's commits were ordered by epoch.
//!
//! Every block compactd writes carries `thanos.extensions.compactd = {"epoch": N, "holder":
//! "<node>"}`; the commit time of a block is its meta.json's last-modified time on the store's
//! clock. Blocks are audited per *unit*: a stream (its labels without the
//! `--deduplication.replica-label` labels, [`StreamId::of_block`]), each of which has one
//! fenced writer at a time and epochs of its own; or the bucket, for blocks of no stream. The
//! audit reports the bucket's fence (`compactd/fence.json`), each stream's fence
//! (`compactd/fence/<stream>.json`), per unit and epoch its holders, block count and first and
//! last commit, and the blocks without a stamp (uploads by Prometheus, the Thanos sidecar or
//! other tools). A violation is a block of epoch E committed strictly after the first commit of
//! a higher epoch *of its unit* (two streams' writers interleave freely), an epoch with two
//! holders (epochs are distinct etcd revisions bucket-wide; epoch 0, every single instance's,
//! only when two holders interleave in one unit), or a malformed stamp. Blocks that cannot be
//! read are problems, not violations. [`audit`] is the pure part; [`audit_bucket`] reads the
//! bucket; `audit/render.rs` prints the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::bucket::layout::{block_of, meta_path};
use crate::core::fence::{FenceRecord, FENCE_PATH};
use crate::core::stream::StreamId;
use crate::core::types::MetaState;
use crate::timefmt::format_rfc3339_ms;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// The key of compactd's stamp in `thanos.extensions`.
pub const STAMP_KEY: &str = "compactd";

/// The stamp compactd puts in every block it writes: who wrote it under which epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The writer's epoch (0: a single instance without etcd).
    pub epoch: u64,
    /// The writer's node name.
    pub holder: String,
}

/// A block's stamp: `None` when the block has none, an error when the key is present but not
/// `{epoch: u64, holder: string}` (further keys are allowed).
pub fn stamp_of(meta: &BlockMeta) -> Result<Option<Stamp>, String> {
    let Some(value) = meta
        .thanos
        .as_ref()
        .and_then(|t| t.extensions.as_ref())
        .and_then(|e| e.get(STAMP_KEY))
    else {
        return Ok(None);
    };
    serde_json::from_value(value.clone())
        .map(Some)
        .map_err(|e| {
            format!(
                "thanos.extensions.{STAMP_KEY} is {value}, not {{epoch: u64, holder: string}}: {e}"
            )
        })
}

/// One listed block directory, as the audit takes it.
#[derive(Clone, Debug)]
pub struct ListedBlock {
    /// The block id.
    pub id: BlockId,
    /// Its parsed meta.json with the object's last-modified time (the commit time, Unix ms),
    /// or why it could not be read.
    pub meta: Result<(BlockMeta, i64), String>,
}

/// A fence as read from `compactd/fence.json` or `compactd/fence/<stream>.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fence {
    /// No fence object.
    Absent,
    /// The record.
    Present(FenceRecord),
    /// The object exists but does not parse; the text says why.
    Unreadable(String),
}

/// The fences of a bucket: the bucket leader's and each stream's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fences {
    /// `compactd/fence.json`.
    pub bucket: Fence,
    /// `compactd/fence/<stream>.json`, by stream; never [`Fence::Absent`].
    pub streams: BTreeMap<StreamId, Fence>,
}

/// What the audit orders commits within: a stream, or the bucket for blocks of no stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// Blocks without a stream (no labels left once the replica labels are removed).
    Bucket,
    /// One stream's blocks, all resolutions.
    Stream(StreamId),
}

impl Unit {
    /// The unit of a block whose labels lose `replica_labels`.
    pub fn of_block(meta: &BlockMeta, replica_labels: &[String]) -> Unit {
        StreamId::of_block(meta, replica_labels).map_or(Unit::Bucket, Unit::Stream)
    }

    /// The stream, if the unit is one.
    pub fn stream(self) -> Option<StreamId> {
        match self {
            Unit::Bucket => None,
            Unit::Stream(id) => Some(id),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Bucket => f.write_str("bucket"),
            Unit::Stream(id) => write!(f, "stream {id}"),
        }
    }
}

/// What one epoch committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochSummary {
    /// The epoch.
    pub epoch: u64,
    /// Every holder that stamped a block with it, sorted (more than one is a violation).
    pub holders: Vec<String>,
    /// Blocks stamped with it.
    pub blocks: usize,
    /// Its earliest commit, Unix ms.
    pub first_commit_ms: i64,
    /// Its latest commit, Unix ms.
    pub last_commit_ms: i64,
}

/// One unit's writers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitReport {
    /// The unit.
    pub unit: Unit,
    /// A stream's labels (replica labels removed); empty for the bucket.
    pub labels: BTreeMap<String, String>,
    /// A stream's fence ([`Fence::Absent`] for none); `None` for the bucket, whose fence is
    /// [`AuditReport::fence`].
    pub fence: Option<Fence>,
    /// Per epoch, ascending.
    pub epochs: Vec<EpochSummary>,
    /// Its blocks without a compactd stamp.
    pub unstamped: usize,
}

/// A breach of "each unit's commits are ordered by epoch, one holder per epoch".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A block committed after a higher epoch of its unit had started committing.
    LateCommit {
        /// The block's unit.
        unit: Unit,
        /// The block.
        block: BlockId,
        /// Its stamp.
        stamp: Stamp,
        /// Its commit time, Unix ms.
        committed_ms: i64,
        /// The higher epoch of the unit whose first commit came earliest before it.
        higher_epoch: u64,
        /// That epoch's first commit, Unix ms.
        higher_first_commit_ms: i64,
    },
    /// Two or more holders stamped blocks with the same epoch.
    SharedEpoch {
        /// The epoch.
        epoch: u64,
        /// The holders, sorted.
        holders: Vec<String>,
    },
    /// A stamp that is not `{epoch: u64, holder: string}`.
    MalformedStamp {
        /// The block.
        block: BlockId,
        /// What is wrong.
        why: String,
    },
}

impl Violation {
    /// A short machine-readable name of the kind (the JSON `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::LateCommit { .. } => "late-commit",
            Violation::SharedEpoch { .. } => "shared-epoch",
            Violation::MalformedStamp { .. } => "malformed-stamp",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LateCommit {
                unit,
                block,
                stamp,
                committed_ms,
                higher_epoch,
                higher_first_commit_ms,
            } => {
                // A stream is named first; blocks of no stream read as they always did.
                if let Unit::Stream(_) = unit {
                    write!(f, "{unit}: ")?;
                }
                write!(
                    f,
                    "block {block}: epoch {} (holder {}) committed at {}, after epoch \
                     {higher_epoch} first committed at {}",
                    stamp.epoch,
                    stamp.holder,
                    format_rfc3339_ms(*committed_ms),
                    format_rfc3339_ms(*higher_first_commit_ms)
                )
            }
            Violation::SharedEpoch { epoch, holders } => write!(
                f,
                "epoch {epoch} has {} holders: {}",
                holders.len(),
                holders.join(", ")
            ),
            Violation::MalformedStamp { block, why } => {
                write!(f, "block {block}: malformed stamp: {why}")
            }
        }
    }
}

/// The audit's findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// The bucket's fence as read.
    pub fence: Fence,
    /// Per unit: the bucket first (if it has blocks), then streams by id (those with blocks
    /// or a fence).
    pub units: Vec<UnitReport>,
    /// Per epoch over every unit, ascending.
    pub epochs: Vec<EpochSummary>,
    /// Blocks without a compactd stamp.
    pub unstamped: usize,
    /// Blocks that could not be audited (unreadable or missing meta.json), and unreadable or
    /// misnamed fences; not violations.
    pub problems: Vec<String>,
    /// Shared epochs first, then malformed stamps, then late commits in commit order.
    pub violations: Vec<Violation>,
    /// Every marker with its writer ([`marks`]); filled by [`audit_bucket`].
    pub marks: Vec<marks::MarkRecord>,
}

impl AuditReport {
    /// True when there is no violation (problems alone do not fail the audit).
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A unit's blocks while the audit sorts them.
#[derive(Default)]
struct UnitBlocks {
    labels: BTreeMap<String, String>,
    stamped: Vec<(BlockId, Stamp, i64)>,
    unstamped: usize,
}

/// Audits the listed blocks (pure: no I/O); a block's stream is its labels without
/// `replica_labels`.
pub fn audit(blocks: &[ListedBlock], fences: Fences, replica_labels: &[String]) -> AuditReport {
    let mut problems = Vec::new();
    let unreadable = std::iter::once(&fences.bucket).chain(fences.streams.values());
    for fence in unreadable {
        if let Fence::Unreadable(why) = fence {
            problems.push(why.clone());
        }
    }
    let mut units: BTreeMap<Unit, UnitBlocks> = BTreeMap::new();
    for id in fences.streams.keys() {
        units.entry(Unit::Stream(*id)).or_default();
    }
    let mut malformed = Vec::new();
    for b in blocks {
        let (meta, committed_ms) = match &b.meta {
            Err(why) => {
                problems.push(format!("block {}: {why}", b.id));
                continue;
            }
            Ok(read) => read,
        };
        let unit = units
            .entry(Unit::of_block(meta, replica_labels))
            .or_default();
        if unit.labels.is_empty() {
            unit.labels = stream_labels(meta, replica_labels);
        }
        match stamp_of(meta) {
            Ok(None) => unit.unstamped += 1,
            Ok(Some(stamp)) => unit.stamped.push((b.id, stamp, *committed_ms)),
            Err(why) => malformed.push(Violation::MalformedStamp { block: b.id, why }),
        }
    }
    let all: Vec<(BlockId, Stamp, i64)> = units
        .values()
        .flat_map(|u| u.stamped.iter().cloned())
        .collect();
    let epochs = summarize(&all);
    let zero_interleaves = units
        .values()
        .any(|u| single_instances_interleave(&u.stamped));
    let mut violations: Vec<Violation> = epochs
        .iter()
        .filter(|e| e.holders.len() > 1)
        .filter(|e| e.epoch != 0 || zero_interleaves)
        .map(|e| Violation::SharedEpoch {
            epoch: e.epoch,
            holders: e.holders.clone(),
        })
        .collect();
    violations.extend(malformed);
    let mut late: Vec<(i64, BlockId, Violation)> = units
        .iter()
        .flat_map(|(unit, u)| late_commits(*unit, &u.stamped))
        .collect();
    late.sort_by_key(|(t, id, _)| (*t, *id));
    violations.extend(late.into_iter().map(|(_, _, v)| v));
    let unstamped = units.values().map(|u| u.unstamped).sum();
    AuditReport {
        units: unit_reports(units, &fences.streams),
        fence: fences.bucket,
        unstamped,
        epochs,
        problems,
        violations,
        marks: Vec::new(),
    }
}

/// Per epoch of `stamped`, ascending: holders, block count, first and last commit.
fn summarize(stamped: &[(BlockId, Stamp, i64)]) -> Vec<EpochSummary> {
    let mut by_epoch: BTreeMap<u64, (BTreeSet<&str>, usize, i64, i64)> = BTreeMap::new();
    for (_, stamp, t) in stamped {
        let e = by_epoch
            .entry(stamp.epoch)
            .or_insert((BTreeSet::new(), 0, *t, *t));
        e.0.insert(&stamp.holder);
        e.1 += 1;
        e.2 = e.2.min(*t);
        e.3 = e.3.max(*t);
    }
    by_epoch
        .iter()
        .map(|(epoch, (holders, n, first, last))| EpochSummary {
            epoch: *epoch,
            holders: holders.iter().map(|h| h.to_string()).collect(),
            blocks: *n,
            first_commit_ms: *first,
            last_commit_ms: *last,
        })
        .collect()
}

/// The blocks of `unit` committed strictly after the first commit of a higher epoch of the
/// unit, with their commit time and id (for ordering).
fn late_commits(unit: Unit, stamped: &[(BlockId, Stamp, i64)]) -> Vec<(i64, BlockId, Violation)> {
    // Per epoch: the earliest first commit of any higher epoch, and which epoch made it.
    let mut earliest_higher: BTreeMap<u64, (i64, u64)> = BTreeMap::new();
    let mut best: Option<(i64, u64)> = None;
    for e in summarize(stamped).iter().rev() {
        if let Some(b) = best {
            earliest_higher.insert(e.epoch, b);
        }
        best = Some(best.map_or((e.first_commit_ms, e.epoch), |b| {
            b.min((e.first_commit_ms, e.epoch))
        }));
    }
    let mut late = Vec::new();
    for (id, stamp, t) in stamped {
        let Some(&(first, higher)) = earliest_higher.get(&stamp.epoch) else {
            continue;
        };
        if *t > first {
            let violation = Violation::LateCommit {
                unit,
                block: *id,
                stamp: stamp.clone(),
                committed_ms: *t,
                higher_epoch: higher,
                higher_first_commit_ms: first,
            };
            late.push((*t, *id, violation));
        }
    }
    late
}

/// The units' reports, with each stream's fence.
fn unit_reports(
    units: BTreeMap<Unit, UnitBlocks>,
    fences: &BTreeMap<StreamId, Fence>,
) -> Vec<UnitReport> {
    units
        .into_iter()
        .map(|(unit, u)| UnitReport {
            unit,
            fence: unit
                .stream()
                .map(|id| fences.get(&id).cloned().unwrap_or(Fence::Absent)),
            epochs: summarize(&u.stamped),
            labels: u.labels,
            unstamped: u.unstamped,
        })
        .collect()
}

/// A block's labels without `replica_labels` (its stream's labels).
pub(crate) fn stream_labels(
    meta: &BlockMeta,
    replica_labels: &[String],
) -> BTreeMap<String, String> {
    let Some(thanos) = &meta.thanos else {
        return BTreeMap::new();
    };
    thanos
        .labels
        .iter()
        .filter(|(name, _)| !replica_labels.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Reads every block's meta.json with its last-modified time, the bucket's fence and every
/// stream's, then audits them (streams: labels without `replica_labels`). Errors (bucket
/// unreachable, listing or a fence read failing) name the operation.
pub async fn audit_bucket(
    store: &Arc<dyn ObjectStore>,
    replica_labels: &[String],
) -> anyhow::Result<AuditReport> {
    let sync = super::bucket::sync(store).await?;
    let objects: Vec<object_store::ObjectMeta> = store
        .list(None)
        .try_collect()
        .await
        .map_err(|e| anyhow::anyhow!("list bucket: {e}"))?;
    let mut committed: BTreeMap<BlockId, i64> = BTreeMap::new();
    for o in &objects {
        if let Some(id) = block_of(o.location.as_ref()) {
            if o.location.as_ref() == meta_path(id) {
                committed.insert(id, o.last_modified.timestamp_millis());
            }
        }
    }
    let blocks: Vec<ListedBlock> = sync
        .blocks
        .into_iter()
        .map(|(id, b)| ListedBlock {
            id,
            meta: match (b.meta, committed.get(&id)) {
                (MetaState::Ok(m), Some(t)) => Ok((*m, *t)),
                (MetaState::Ok(_), None) => {
                    Err("meta.json vanished during the audit (deleted?)".to_string())
                }
                (MetaState::Missing, _) => {
                    Err("no meta.json (partial upload or unfinished delete)".to_string())
                }
                (MetaState::Corrupt(why), _) => Err(format!("unreadable meta.json: {why}")),
            },
        })
        .collect();
    let mut fences = Fences {
        bucket: read_fence(store, FENCE_PATH)
            .await?
            .unwrap_or(Fence::Absent),
        streams: BTreeMap::new(),
    };
    let mut misnamed = Vec::new();
    for o in &objects {
        let path = o.location.as_ref();
        let Some(name) = path.strip_prefix(STREAM_FENCES_DIR) else {
            continue;
        };
        match stream_of_fence(name) {
            Some(id) => {
                if let Some(fence) = read_fence(store, path).await? {
                    fences.streams.insert(id, fence);
                }
            }
            None => misnamed.push(format!(
                "{path}: not a stream's fence (compactd/fence/<16 hex digits>.json)"
            )),
        }
    }
    let mut report = audit(&blocks, fences, replica_labels);
    report.problems.extend(misnamed);
    let (marks, mark_problems) = marks::read_marks(store, &objects).await;
    report.marks = marks;
    report.problems.extend(mark_problems);
    Ok(report)
}

/// Where the streams' fences are: `compactd/fence/<stream>.json` ([`StreamId::fence_path`]).
const STREAM_FENCES_DIR: &str = "compactd/fence/";

/// The stream whose fence is named `name` (below [`STREAM_FENCES_DIR`]), if it is one's.
fn stream_of_fence(name: &str) -> Option<StreamId> {
    let hex = name.strip_suffix(".json")?;
    let id = StreamId(u64::from_str_radix(hex, 16).ok()?);
    // Only the canonical spelling (16 lowercase digits) is a fence compactd would read.
    (id.fence_path() == format!("{STREAM_FENCES_DIR}{name}")).then_some(id)
}

/// The fence at `path`: `None` when it is gone (a stream's, deleted since the listing).
async fn read_fence(store: &Arc<dyn ObjectStore>, path: &str) -> anyhow::Result<Option<Fence>> {
    let bytes = match store.get(&ObjectPath::from(path)).await {
        Ok(r) => r.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|e| anyhow::anyhow!("read {path}: {e}"))?;
    Ok(Some(match FenceRecord::parse(path, &bytes) {
        Ok(r) => Fence::Present(r),
        Err(why) => Fence::Unreadable(why),
    }))
}

/// Epoch 0 is every single instance's: successive holders (a renamed pod, a replaced host) are
/// fine, so epoch 0 with several holders is a violation only when their commits interleave.
fn single_instances_interleave(stamped: &[(BlockId, Stamp, i64)]) -> bool {
    let mut ranges: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (_, stamp, t) in stamped.iter().filter(|(_, s, _)| s.epoch == 0) {
        let r = ranges.entry(&stamp.holder).or_insert((*t, *t));
        r.0 = r.0.min(*t);
        r.1 = r.1.max(*t);
    }
    let mut spans: Vec<(i64, i64)> = ranges.into_values().collect();
    spans.sort_unstable();
    spans.windows(2).any(|w| w[1].0 < w[0].1)
}

pub mod marks;
mod render;

#[cfg(test)]
mod tests;

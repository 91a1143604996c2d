//! `compactd tools bucket audit`: who committed which block under which epoch, and whether
//! commits were ordered by epoch.
//!
//! Every block compactd writes carries `thanos.extensions.compactd = {"epoch": N, "holder":
//! "<node>"}`; the commit time of a block is its meta.json's last-modified time on the store's
//! clock. The audit reports the fence record, per epoch its holders, block count and first and
//! last commit, and the blocks without a stamp (uploads by Prometheus, the Thanos sidecar or
//! other tools). A violation is a block of epoch E committed strictly after the first commit of
//! a higher epoch, an epoch with two holders, or a malformed stamp. Blocks that cannot be read
//! are problems, not violations. [`audit`] is the pure part; [`audit_bucket`] reads the bucket.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bucket::layout::{block_of, meta_path};
use crate::core::fence::{FenceRecord, FENCE_PATH};
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

/// The fence as read from `compactd/fence.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fence {
    /// No fence object.
    Absent,
    /// The record.
    Present(FenceRecord),
    /// The object exists but does not parse; the text says why.
    Unreadable(String),
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

/// A breach of "commits are ordered by epoch, one holder per epoch".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A block committed after a higher epoch had started committing.
    LateCommit {
        /// The block.
        block: BlockId,
        /// Its stamp.
        stamp: Stamp,
        /// Its commit time, Unix ms.
        committed_ms: i64,
        /// The higher epoch whose first commit came earliest before it.
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
                block,
                stamp,
                committed_ms,
                higher_epoch,
                higher_first_commit_ms,
            } => write!(
                f,
                "block {block}: epoch {} (holder {}) committed at {}, after epoch {higher_epoch} \
                 first committed at {}",
                stamp.epoch,
                stamp.holder,
                format_rfc3339_ms(*committed_ms),
                format_rfc3339_ms(*higher_first_commit_ms)
            ),
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
    /// The fence as read.
    pub fence: Fence,
    /// Per epoch, ascending.
    pub epochs: Vec<EpochSummary>,
    /// Blocks without a compactd stamp.
    pub unstamped: usize,
    /// Blocks that could not be audited (unreadable or missing meta.json), and an unreadable
    /// fence; not violations.
    pub problems: Vec<String>,
    /// Shared epochs first, then malformed stamps, then late commits in commit order.
    pub violations: Vec<Violation>,
}

/// Audits the listed blocks (pure: no I/O).
pub fn audit(blocks: &[ListedBlock], fence: Fence) -> AuditReport {
    let mut problems = Vec::new();
    if let Fence::Unreadable(why) = &fence {
        problems.push(why.clone());
    }
    let mut malformed = Vec::new();
    let mut unstamped = 0;
    let mut stamped: Vec<(BlockId, Stamp, i64)> = Vec::new();
    for b in blocks {
        match &b.meta {
            Err(why) => problems.push(format!("block {}: {why}", b.id)),
            Ok((meta, committed_ms)) => match stamp_of(meta) {
                Ok(None) => unstamped += 1,
                Ok(Some(stamp)) => stamped.push((b.id, stamp, *committed_ms)),
                Err(why) => malformed.push(Violation::MalformedStamp { block: b.id, why }),
            },
        }
    }
    let mut by_epoch: BTreeMap<u64, (BTreeSet<&str>, usize, i64, i64)> = BTreeMap::new();
    for (_, stamp, t) in &stamped {
        let e = by_epoch
            .entry(stamp.epoch)
            .or_insert((BTreeSet::new(), 0, *t, *t));
        e.0.insert(&stamp.holder);
        e.1 += 1;
        e.2 = e.2.min(*t);
        e.3 = e.3.max(*t);
    }
    let epochs: Vec<EpochSummary> = by_epoch
        .iter()
        .map(|(epoch, (holders, n, first, last))| EpochSummary {
            epoch: *epoch,
            holders: holders.iter().map(|h| h.to_string()).collect(),
            blocks: *n,
            first_commit_ms: *first,
            last_commit_ms: *last,
        })
        .collect();
    let mut violations: Vec<Violation> = epochs
        .iter()
        .filter(|e| e.holders.len() > 1)
        .filter(|e| e.epoch != 0 || single_instances_interleave(&stamped))
        .map(|e| Violation::SharedEpoch {
            epoch: e.epoch,
            holders: e.holders.clone(),
        })
        .collect();
    violations.extend(malformed);
    // Per epoch: the earliest first commit of any higher epoch, and which epoch made it.
    let mut earliest_higher: BTreeMap<u64, (i64, u64)> = BTreeMap::new();
    let mut best: Option<(i64, u64)> = None;
    for e in epochs.iter().rev() {
        if let Some(b) = best {
            earliest_higher.insert(e.epoch, b);
        }
        best = Some(best.map_or((e.first_commit_ms, e.epoch), |b| {
            b.min((e.first_commit_ms, e.epoch))
        }));
    }
    let mut late: Vec<(i64, BlockId, Violation)> = Vec::new();
    for (id, stamp, t) in stamped {
        if let Some(&(first, higher)) = earliest_higher.get(&stamp.epoch) {
            if t > first {
                late.push((
                    t,
                    id,
                    Violation::LateCommit {
                        block: id,
                        stamp,
                        committed_ms: t,
                        higher_epoch: higher,
                        higher_first_commit_ms: first,
                    },
                ));
            }
        }
    }
    late.sort_by_key(|(t, id, _)| (*t, *id));
    violations.extend(late.into_iter().map(|(_, _, v)| v));
    AuditReport {
        fence,
        epochs,
        unstamped,
        problems,
        violations,
    }
}

impl AuditReport {
    /// True when there is no violation (problems alone do not fail the audit).
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The text report: fence, epoch table, unstamped count, problems, violations, verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        match &self.fence {
            Fence::Absent => out.push_str("fence: none\n"),
            Fence::Present(r) => {
                let _ = writeln!(
                    out,
                    "fence: epoch {}, holder {}, seq {}, renewed {}",
                    r.epoch,
                    r.holder,
                    r.seq,
                    format_rfc3339_ms(r.renewed_unix_ms)
                );
            }
            Fence::Unreadable(_) => out.push_str("fence: unreadable (see PROBLEM)\n"),
        }
        let holders: Vec<String> = self.epochs.iter().map(|e| e.holders.join(",")).collect();
        let hw = holders
            .iter()
            .map(String::len)
            .fold("HOLDERS".len(), usize::max);
        let ew = self
            .epochs
            .iter()
            .map(|e| e.epoch.to_string().len())
            .fold("EPOCH".len(), usize::max);
        let _ = writeln!(
            out,
            "{:>ew$}  {:<hw$}  {:>6}  {:<24}  LAST COMMIT",
            "EPOCH", "HOLDERS", "BLOCKS", "FIRST COMMIT"
        );
        for (e, h) in self.epochs.iter().zip(&holders) {
            let _ = writeln!(
                out,
                "{:>ew$}  {h:<hw$}  {:>6}  {:<24}  {}",
                e.epoch,
                e.blocks,
                format_rfc3339_ms(e.first_commit_ms),
                format_rfc3339_ms(e.last_commit_ms)
            );
        }
        let stamped: usize = self.epochs.iter().map(|e| e.blocks).sum();
        let _ = writeln!(
            out,
            "{stamped} stamped blocks in {} epochs; {} unstamped blocks (not written by compactd)",
            self.epochs.len(),
            self.unstamped
        );
        for p in &self.problems {
            let _ = writeln!(out, "PROBLEM: {p}");
        }
        for v in &self.violations {
            let _ = writeln!(out, "VIOLATION: {v}");
        }
        if self.ok() {
            out.push_str("OK: commits ordered by epoch, one holder per epoch, every stamp valid\n");
        } else {
            let _ = writeln!(out, "{} violations found", self.violations.len());
        }
        out
    }

    /// The same content as one JSON document (times as RFC3339, with a trailing newline).
    pub fn render_json(&self) -> String {
        let fence = match &self.fence {
            Fence::Absent => json!({"state": "absent"}),
            Fence::Present(r) => json!({
                "state": "present",
                "epoch": r.epoch,
                "holder": r.holder,
                "seq": r.seq,
                "renewed": format_rfc3339_ms(r.renewed_unix_ms),
            }),
            Fence::Unreadable(why) => json!({"state": "unreadable", "error": why}),
        };
        let epochs: Vec<_> = self
            .epochs
            .iter()
            .map(|e| {
                json!({
                    "epoch": e.epoch,
                    "holders": e.holders,
                    "blocks": e.blocks,
                    "first_commit": format_rfc3339_ms(e.first_commit_ms),
                    "last_commit": format_rfc3339_ms(e.last_commit_ms),
                })
            })
            .collect();
        let violations: Vec<_> = self.violations.iter().map(violation_json).collect();
        let doc = json!({
            "ok": self.ok(),
            "fence": fence,
            "epochs": epochs,
            "unstamped": self.unstamped,
            "problems": self.problems,
            "violations": violations,
        });
        let mut s = serde_json::to_string_pretty(&doc).expect("a JSON value always serializes");
        s.push('\n');
        s
    }
}

fn violation_json(v: &Violation) -> serde_json::Value {
    let mut j = match v {
        Violation::LateCommit {
            block,
            stamp,
            committed_ms,
            higher_epoch,
            higher_first_commit_ms,
        } => json!({
            "block": block.to_string(),
            "epoch": stamp.epoch,
            "holder": stamp.holder,
            "committed": format_rfc3339_ms(*committed_ms),
            "higher_epoch": higher_epoch,
            "higher_first_commit": format_rfc3339_ms(*higher_first_commit_ms),
        }),
        Violation::SharedEpoch { epoch, holders } => {
            json!({"epoch": epoch, "holders": holders})
        }
        Violation::MalformedStamp { block, why } => {
            json!({"block": block.to_string(), "error": why})
        }
    };
    j["kind"] = json!(v.kind());
    j["message"] = json!(v.to_string());
    j
}

/// Reads every block's meta.json with its last-modified time, and the fence, then audits
/// them. Errors (bucket unreachable, listing or fence read failing) name the operation.
pub async fn audit_bucket(store: &Arc<dyn ObjectStore>) -> anyhow::Result<AuditReport> {
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
    let fence = read_fence(store).await?;
    Ok(audit(&blocks, fence))
}

async fn read_fence(store: &Arc<dyn ObjectStore>) -> anyhow::Result<Fence> {
    let path = ObjectPath::from(FENCE_PATH);
    let bytes = match store.get(&path).await {
        Ok(r) => r.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(Fence::Absent),
        Err(e) => Err(e),
    }
    .map_err(|e| anyhow::anyhow!("read {FENCE_PATH}: {e}"))?;
    Ok(match FenceRecord::parse(FENCE_PATH, &bytes) {
        Ok(r) => Fence::Present(r),
        Err(why) => Fence::Unreadable(why),
    })
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

#[cfg(test)]
mod tests;

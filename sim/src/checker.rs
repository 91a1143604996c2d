//! The invariants, checked on the store's write log as it grows and on the bucket at the end:
//! - **single writer**: the epochs of applied mutations never go back and two writers never
//!   interleave (strict: every mutation; checked in the scenarios that keep the lease
//!   assumptions of `docs/safety.md`);
//! - **commit order**: the same for commit points (meta.json, marks, deletes) — always;
//! - **bucket health**: no block deleted while no other visible block holds its sources, no
//!   meta.json written for a block missing files, and at the end no overlap, no partial
//!   block, each source in exactly one visible block and every input sample present;
//! - **liveness** is judged by the world (a leader and a finished compaction after healing).
//!
//! **The checker shares no code with what it judges.** It uses compactd's plain data types
//! (`BlockMeta`, `BlockId`, `StoreRequest` and its `WriteOp`, `CycleConfig`) and the bucket
//! layout (`bucket::layout` paths, the deletion-mark file name), never the logic it checks:
//! groups, overlaps and "is there work left" come from its own [`oracle`], written from
//! Thanos' and Prometheus' rules, so a planner bug cannot hide the overlaps or the stalls it
//! causes. (One exception, outside the planner: the samples are read back with compactd's
//! block reader, `crate::blocks`.)
//! `tests.rs` fails if this file or the oracle imports anything else from `compactd::core`.

pub mod oracle;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use compactd::bucket::layout::{block_of, index_path, marker_path, meta_path};
use compactd::bucket::markers::DELETION_MARK_FILENAME;
use compactd::core::cycle::CycleConfig;
use compactd::core::types::{StoreRequest, WriteOp};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::{BlockMeta, META_FILENAME};

use crate::blocks::{read_samples, Samples};
use crate::net::Files;
use crate::shared::WALL0;
use crate::store::{StoreModel, WriteOutcome, WriteRecord};

/// The writer name of source-block uploads (a Prometheus sidecar, not a compactor).
pub const SIDECAR: &str = "sidecar";

/// Violations kept per invariant (the first ones tell the story).
const KEPT_PER_INVARIANT: usize = 5;

/// The invariants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Every mutation ordered by epoch, writers never interleaving.
    SingleWriter,
    /// Commit points ordered by epoch, writers never interleaving.
    CommitOrder,
    /// What the bucket must look like.
    BucketHealth,
    /// A leader and a finished compaction after the faults heal.
    Liveness,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 4] = [
        Invariant::SingleWriter,
        Invariant::CommitOrder,
        Invariant::BucketHealth,
        Invariant::Liveness,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SingleWriter => "single-writer",
            Invariant::CommitOrder => "commit-order",
            Invariant::BucketHealth => "bucket-health",
            Invariant::Liveness => "liveness",
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// World time it was seen.
    pub at_ms: i64,
    /// What happened.
    pub text: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {}: {}",
            self.invariant.name(),
            crate::log::format_ms(self.at_ms),
            self.text
        )
    }
}

/// A writer: (epoch, node).
type Writer = (u64, String);

/// The order of writers seen so far.
#[derive(Debug, Default)]
struct WriterOrder {
    current: Option<Writer>,
    done: BTreeSet<Writer>,
    max_epoch: u64,
}

impl WriterOrder {
    /// Notes a write by `w`; the problem if it breaks the order.
    fn note(&mut self, w: &Writer) -> Option<String> {
        if self.current.as_ref() == Some(w) {
            return None;
        }
        let problem = if w.0 < self.max_epoch {
            Some(format!(
                "epoch {} ({}) wrote after epoch {} had written",
                w.0, w.1, self.max_epoch
            ))
        } else if self.done.contains(w) {
            let cur = self.current.as_ref().expect("a writer before");
            Some(format!(
                "epoch {} ({}) wrote again after epoch {} ({}) had written",
                w.0, w.1, cur.0, cur.1
            ))
        } else {
            None
        };
        if let Some(cur) = self.current.replace(w.clone()) {
            self.done.insert(cur);
        }
        self.max_epoch = self.max_epoch.max(w.0);
        problem
    }
}

/// The checker of one world.
#[derive(Debug)]
pub struct Checker {
    strict: bool,
    processed: usize,
    all: WriterOrder,
    commits: WriterOrder,
    counts: BTreeMap<Invariant, usize>,
    violations: Vec<Violation>,
    /// A block delete under way that would leave its sources in no visible block.
    uncovered_delete: Option<(BlockId, i64)>,
    /// Elected mode: the node that wrote under each epoch.
    epoch_holders: BTreeMap<u64, String>,
}

fn is_commit(op: &str) -> bool {
    matches!(
        op,
        "put-meta" | "mark-deletion" | "mark-no-compact" | "delete-block"
    )
}

impl Checker {
    /// A checker; `strict` checks the order of every mutation, not only of commits.
    pub fn new(strict: bool) -> Checker {
        Checker {
            strict,
            processed: 0,
            all: WriterOrder::default(),
            commits: WriterOrder::default(),
            counts: BTreeMap::new(),
            violations: Vec::new(),
            uncovered_delete: None,
            epoch_holders: BTreeMap::new(),
        }
    }

    /// Starts the write log after the writes already in `store` (the seeded bucket).
    pub fn skip_existing(&mut self, store: &StoreModel) {
        self.processed = store.writes().len();
    }

    /// Records a violation (the first few of each invariant are kept, all are counted).
    pub fn violate(&mut self, invariant: Invariant, at_ms: i64, text: String) {
        let n = self.counts.entry(invariant).or_default();
        *n += 1;
        if *n <= KEPT_PER_INVARIANT {
            self.violations.push(Violation {
                invariant,
                at_ms,
                text,
            });
        }
    }

    /// The violations kept, in the order seen.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many violations of each invariant were seen.
    pub fn counts(&self) -> &BTreeMap<Invariant, usize> {
        &self.counts
    }

    /// Checks `req` before the store performs it: a block delete must leave its samples in
    /// another visible block (reported by [`Self::after`] if the delete then removes the
    /// block's meta.json).
    pub fn before(&mut self, store: &StoreModel, req: &StoreRequest, at_ms: i64) {
        let Some(WriteOp::DeleteBlock(id)) = req.write_op() else {
            return;
        };
        let visible = visible_blocks(store);
        let Some((meta, _)) = visible.get(id) else {
            return;
        };
        let covered = visible.values().any(|(other, marked)| {
            other.ulid != *id
                && !marked
                && meta
                    .compaction
                    .sources
                    .iter()
                    .all(|s| other.compaction.sources.contains(s))
        });
        if !covered {
            self.uncovered_delete = Some((*id, at_ms));
        }
    }

    /// Checks the write log entries added since the last call.
    pub fn after(&mut self, store: &StoreModel) {
        let new: Vec<WriteRecord> = store.writes()[self.processed..].to_vec();
        self.processed = store.writes().len();
        if let Some((id, at_ms)) = self.uncovered_delete.take() {
            let meta = meta_path(id);
            if new
                .iter()
                .any(|w| w.path == meta && w.outcome == WriteOutcome::Deleted)
            {
                let text =
                    format!("block {id} deleted while no other visible block holds its sources");
                self.violate(Invariant::BucketHealth, at_ms, text);
            }
        }
        for w in new.iter().filter(|w| w.applied() && w.node != SIDECAR) {
            let writer = (w.epoch, w.node.clone());
            if w.epoch > 0 {
                // An elected epoch belongs to one node, whatever the order of its writes.
                let holder = self
                    .epoch_holders
                    .entry(w.epoch)
                    .or_insert_with(|| w.node.clone());
                if *holder != w.node {
                    let text = format!(
                        "epoch {} written by {} and by {}: {} {}",
                        w.epoch, holder, w.node, w.op, w.path
                    );
                    self.violate(Invariant::SingleWriter, w.at_ms - WALL0, text);
                }
            }
            if self.strict {
                if let Some(p) = self.all.note(&writer) {
                    let text = format!("{p}: {} {} {}", w.op, method(w), w.path);
                    self.violate(Invariant::SingleWriter, w.at_ms - WALL0, text);
                }
            }
            if is_commit(w.op) {
                if let Some(p) = self.commits.note(&writer) {
                    let text = format!("{p}: {} {} {}", w.op, method(w), w.path);
                    self.violate(Invariant::CommitOrder, w.at_ms - WALL0, text);
                }
            }
            if w.path.ends_with(&format!("/{META_FILENAME}")) && w.op == "put-meta" {
                if let Some(id) = block_of(&w.path) {
                    self.check_files(store, id, w.at_ms - WALL0);
                }
            }
        }
    }

    fn check_files(&mut self, store: &StoreModel, id: BlockId, at_ms: i64) {
        let Some(meta) = parse_meta(store, id) else {
            return;
        };
        let mut missing: Vec<String> = Vec::new();
        if store.get(&index_path(id)).is_none() {
            missing.push("index".into());
        }
        if let Some(thanos) = &meta.thanos {
            for f in &thanos.files {
                let path = format!("{id}/{}", f.rel_path);
                if f.rel_path != META_FILENAME && store.get(&path).is_none() {
                    missing.push(f.rel_path.clone());
                }
            }
        }
        if !missing.is_empty() {
            self.violate(
                Invariant::BucketHealth,
                at_ms,
                format!(
                    "meta.json of {id} written while {} missing",
                    missing.join(", ")
                ),
            );
        }
    }

    /// The end-of-world checks of the bucket against the source blocks and their samples.
    pub fn finish(
        &mut self,
        store: &StoreModel,
        sources: &BTreeSet<BlockId>,
        expected: &Samples,
        scratch: &Path,
        at_ms: i64,
    ) {
        let visible = visible_blocks(store);
        let live: Vec<&BlockMeta> = visible
            .values()
            .filter(|(_, marked)| !marked)
            .map(|(m, _)| m)
            .collect();
        let mut seen: BTreeMap<BlockId, usize> = BTreeMap::new();
        for m in &live {
            for s in &m.compaction.sources {
                *seen.entry(*s).or_default() += 1;
            }
        }
        for s in sources {
            match seen.get(s) {
                Some(1) => {}
                Some(n) => self.violate(
                    Invariant::BucketHealth,
                    at_ms,
                    format!("source {s} is in {n} visible blocks"),
                ),
                None => self.violate(
                    Invariant::BucketHealth,
                    at_ms,
                    format!("source {s} is in no visible block"),
                ),
            }
        }
        // One violation per group, naming a few pairs: a bad merge can overlap many blocks,
        // and a violation per pair would crowd the other findings out of the kept ones.
        for (group, blocks) in oracle::groups(live.iter().copied()) {
            let pairs = oracle::overlapping_pairs(&blocks);
            if !pairs.is_empty() {
                let text = oracle::describe_overlaps(&group, &pairs);
                self.violate(Invariant::BucketHealth, at_ms, text);
            }
        }
        for id in block_dirs(store) {
            if !visible.contains_key(&id) {
                self.violate(
                    Invariant::BucketHealth,
                    at_ms,
                    format!("partial block {id} left behind"),
                );
            }
        }
        let files: Vec<(BlockId, Files)> = live
            .iter()
            .map(|m| (m.ulid, block_files(store, m.ulid)))
            .collect();
        match read_samples(scratch, &files) {
            Ok(found) if &found == expected => {}
            Ok(found) => {
                let lost: usize = expected
                    .iter()
                    .map(|(l, s)| {
                        let f = found.get(l);
                        s.iter()
                            .filter(|(t, v)| f.and_then(|f| f.get(t)) != Some(v))
                            .count()
                    })
                    .sum();
                self.violate(
                    Invariant::BucketHealth,
                    at_ms,
                    format!(
                        "the visible blocks hold other samples than the sources: {lost} \
                         source samples missing or changed"
                    ),
                );
            }
            Err(e) => self.violate(Invariant::BucketHealth, at_ms, format!("unreadable: {e}")),
        }
    }
}

fn method(w: &WriteRecord) -> &'static str {
    match w.method {
        crate::store::Method::Delete => "delete",
        _ => "put",
    }
}

fn parse_meta(store: &StoreModel, id: BlockId) -> Option<BlockMeta> {
    let path = meta_path(id);
    let o = store.get(&path)?;
    BlockMeta::parse(&o.bytes, Path::new(&path)).ok()
}

/// Every block directory in the store.
fn block_dirs(store: &StoreModel) -> BTreeSet<BlockId> {
    store
        .list("")
        .into_iter()
        .filter_map(|(p, _)| block_of(p))
        .collect()
}

/// Blocks with a readable meta.json, and whether each has a deletion mark.
pub fn visible_blocks(store: &StoreModel) -> BTreeMap<BlockId, (BlockMeta, bool)> {
    block_dirs(store)
        .into_iter()
        .filter_map(|id| {
            let meta = parse_meta(store, id)?;
            let marked = store
                .get(&marker_path(id, DELETION_MARK_FILENAME))
                .is_some();
            Some((id, (meta, marked)))
        })
        .collect()
}

/// A block's files as stored.
pub fn block_files(store: &StoreModel, id: BlockId) -> Files {
    store
        .list(&id.to_string())
        .into_iter()
        .map(|(p, o)| {
            let rel = p.strip_prefix(&format!("{id}/")).unwrap_or(p).to_string();
            (rel, o.bytes.clone())
        })
        .collect()
}

/// True when nothing is left to do: no partial, marked or covered block, and the oracle finds
/// no work in any group ([`oracle::work_left`]).
pub fn finished(store: &StoreModel, cycle: &CycleConfig) -> bool {
    oracle::assert_modelled(cycle);
    let visible = visible_blocks(store);
    if block_dirs(store).len() != visible.len() || visible.values().any(|(_, marked)| *marked) {
        return false;
    }
    // A block whose sources another block holds is garbage the compactor has yet to collect
    // (the overlap rule alone calls that "nothing to do": without vertical compaction the
    // group halts).
    let covered = visible.values().any(|(a, _)| {
        visible.values().any(|(b, _)| {
            a.ulid != b.ulid
                && a.compaction
                    .sources
                    .iter()
                    .all(|s| b.compaction.sources.contains(s))
        })
    });
    if covered {
        return false;
    }
    oracle::groups(visible.values().map(|(m, _)| m))
        .values()
        .all(|blocks| oracle::work_left(blocks, &cycle.ranges, cycle.vertical).is_none())
}

#[cfg(test)]
mod tests;

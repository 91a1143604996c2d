//! The invariants, checked on the store's write log as it grows and on the bucket at the end:
//! - **single writer**: the epochs of applied mutations never go back and two writers never
//!   interleave (strict: every mutation; checked in the scenarios that keep the lease
//!   assumptions of `docs/safety.md`);
//! - **commit order**: the same for commit points (meta.json, marks, deletes) — always;
//! - **bucket health**: no block deleted while no other visible block holds its sources, no
//!   meta.json written for a block missing files, and at the end no overlap, no partial
//!   block, each source in exactly one visible block and every input sample present;
//! - **liveness** is judged by the world (a leader and a finished compaction after healing);
//!   [`unfinished`] names the units (streams, or the bucket leader's objects) with work left.
//!
//! Single writer and commit order are keyed by the world's ownership ([`Keying`]): over the
//! whole bucket, or, in stream worlds, per *unit* — a stream, or the bucket leader's objects —
//! where a mutation's unit is decided from the bucket, never from the node, and a mutation
//! under another unit's epoch is a **wrong-unit** violation ([`units`]).
//!
//! **The checker shares no code with what it judges.** It uses compactd's plain data types
//! (`BlockMeta`, `BlockId`, `StoreRequest` and its `WriteOp`, `CycleConfig`) and the bucket
//! layout (`bucket::layout` paths, the deletion-mark file name), never the logic it checks:
//! groups, overlaps and "is there work left" come from its own [`oracle`], written from
//! Thanos' and Prometheus' rules, so a planner bug cannot hide the overlaps or the stalls it
//! causes. (One exception, outside the planner: the samples are read back with compactd's
//! block reader, `crate::blocks`.)
//! `tests.rs` fails if this file or the oracle imports anything else from `compactd::core`.

pub mod balance;
pub mod oracle;
pub mod units;

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
use crate::etcd::EtcdModel;
use crate::net::Files;
use crate::shared::WALL0;
use crate::store::{StoreModel, WriteOutcome, WriteRecord};

pub use units::{labels_hash, unit_of_labels, unit_of_meta, Unit, UnitRules};

/// The writer name of source-block uploads (a Prometheus sidecar, not a compactor).
pub const SIDECAR: &str = "sidecar";
/// The writer name of an operator's edits by hand (the bucket fence released behind its
/// holder's back), not a compactor's either.
pub const OPERATOR: &str = "operator";

/// True when `node` is a compactor: not the sidecar, not an operator.
fn is_compactor(node: &str) -> bool {
    node != SIDECAR && node != OPERATOR
}

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
    /// Stream ownership: a mutation under the epoch of another unit's key than the unit of
    /// the object it touches.
    WrongUnit,
    /// Stream ownership at rest: the members do not lead ⌊S/N⌋ or ⌈S/N⌉ streams each
    /// ([`balance`]).
    Unbalanced,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 6] = [
        Invariant::SingleWriter,
        Invariant::CommitOrder,
        Invariant::BucketHealth,
        Invariant::Liveness,
        Invariant::WrongUnit,
        Invariant::Unbalanced,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SingleWriter => "single-writer",
            Invariant::CommitOrder => "commit-order",
            Invariant::BucketHealth => "bucket-health",
            Invariant::Liveness => "liveness",
            Invariant::WrongUnit => "wrong-unit",
            Invariant::Unbalanced => "unbalanced",
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

/// How single-writer and commit order are keyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keying {
    /// One writer at a time for the whole bucket: every world of bucket ownership.
    Bucket,
    /// One writer at a time per unit, and wrong-unit: stream worlds.
    Units(UnitRules),
}

/// The checker of one world.
#[derive(Debug)]
pub struct Checker {
    strict: bool,
    /// Stream worlds: the write log by unit, judged at the end ([`Self::finish_units`]).
    units: Option<units::UnitLog>,
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
    /// A checker; `strict` checks the order of every mutation, not only of commits; `keying`
    /// says over what.
    pub fn new(strict: bool, keying: Keying) -> Checker {
        let units = match keying {
            Keying::Bucket => None,
            Keying::Units(rules) => Some(units::UnitLog::new(rules)),
        };
        Checker {
            strict,
            units,
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
        if let Some(units) = &mut self.units {
            units.learn_blocks(store);
        }
    }

    /// A fault broke the lease assumption for `unit` in a stream world (its holder's key
    /// deleted by hand while the holder's lease, and so its permit, lives on): the old holder
    /// may still upload files after the new one fenced, so single writer is no longer promised
    /// for that unit; commit order still is.
    pub fn lease_broken(&mut self, unit: Unit) {
        if let Some(units) = &mut self.units {
            units.relax(unit);
        }
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
        if let Some(units) = &mut self.units {
            units.before(store, req);
        }
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
        if let Some(units) = &mut self.units {
            for w in new.iter().filter(|w| w.applied()) {
                units.note(store, w);
            }
        }
        for w in new.iter().filter(|w| w.applied() && is_compactor(&w.node)) {
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
            // Stream worlds judge both orders per unit, once every unit is known
            // (`finish_units`).
            if self.units.is_none() && self.strict {
                if let Some(p) = self.all.note(&writer) {
                    let text = format!("{p}: {} {} {}", w.op, method(w), w.path);
                    self.violate(Invariant::SingleWriter, w.at_ms - WALL0, text);
                }
            }
            if self.units.is_none() && is_commit(w.op) {
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

    /// Stream worlds: single writer and commit order per unit, and wrong-unit, over the whole
    /// write log once it is complete (files uploaded before their meta.json take its unit),
    /// with `etcd`'s history of election keys naming each epoch's unit. Does nothing in
    /// bucket worlds.
    pub fn finish_units(&mut self, etcd: &EtcdModel) {
        let Some(units) = self.units.take() else {
            return;
        };
        for (invariant, at_ms, text) in units.judge(etcd, self.strict) {
            self.violate(invariant, at_ms, text);
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
    unfinished(store, cycle).is_empty()
}

/// What is left to do, per unit (the first thing found in each): partial blocks (the bucket
/// leader's), marked blocks, blocks whose sources another block holds, and groups where the
/// oracle finds work. Units as in stream worlds, with the replica labels of `cycle`.
pub fn unfinished(store: &StoreModel, cycle: &CycleConfig) -> BTreeMap<Unit, String> {
    oracle::assert_modelled(cycle);
    let replica_labels = &cycle.view.replica_labels;
    let mut left: BTreeMap<Unit, String> = BTreeMap::new();
    let visible = visible_blocks(store);
    for id in block_dirs(store) {
        if !visible.contains_key(&id) {
            left.entry(Unit::Bucket)
                .or_insert_with(|| format!("partial block {id}"));
        }
    }
    for (a, marked) in visible.values() {
        let unit = unit_of_meta(a, replica_labels);
        let group = oracle::group_of(a);
        if *marked {
            left.entry(unit)
                .or_insert_with(|| format!("block {} of {group} marked for deletion", a.ulid));
            continue;
        }
        // A block whose sources another block holds is garbage the compactor has yet to
        // collect (the overlap rule alone calls that "nothing to do": without vertical
        // compaction the group halts).
        let covering = visible.values().find(|(b, _)| {
            a.ulid != b.ulid
                && a.compaction
                    .sources
                    .iter()
                    .all(|s| b.compaction.sources.contains(s))
        });
        if let Some((b, _)) = covering {
            left.entry(unit).or_insert_with(|| {
                format!("block {} of {group} covered by block {}", a.ulid, b.ulid)
            });
        }
    }
    for (group, blocks) in oracle::groups(visible.values().map(|(m, _)| m)) {
        if let Some(work) = oracle::work_left(&blocks, &cycle.ranges, cycle.vertical) {
            let unit = unit_of_labels(&group.labels, replica_labels);
            left.entry(unit)
                .or_insert_with(|| format!("group {group}: {work:?}"));
        }
    }
    left
}

#[cfg(test)]
mod tests;

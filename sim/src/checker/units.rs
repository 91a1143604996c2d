//! Stream ownership (issue 17): single writer and commit order keyed by *unit* — a stream, or
//! the bucket leader's objects — and the wrong-unit rule.
//!
//! A stream is a block's external labels without the deduplication replica labels, across
//! resolutions; its id is Prometheus' `labels.Hash()` of them ([`labels_hash`], written here
//! from Prometheus' definition, not taken from compactd). Its owner's epoch is the create
//! revision of its election key `<prefix>/streams/<16-hex id>/<lease hex>`; the bucket
//! leader's is that of `<prefix>/election/<lease hex>`.
//!
//! The unit of a mutation comes from the bucket, never from the node that sent it:
//! - a block object: the block's labels, from its meta.json as the bucket held it (the seeded
//!   bucket, a sidecar's upload, or the meta.json a compactor wrote). Files uploaded before
//!   their meta.json wait for it; a block delete takes the unit of the meta.json it found,
//!   and a block without one (partial-upload clean-up) is the bucket leader's;
//! - `compactd/fence/<16-hex id>.json`: that stream; `compactd/fence.json` and any other
//!   object: the bucket leader's.
//!
//! Files of a block whose meta.json never landed are attributed to their epoch's unit (from
//! the etcd model's history of election keys): they are invisible to every reader, so they
//! cannot be judged by a unit the bucket never stated; kept in their writer's unit, they still
//! count for its order. A mutation whose epoch is no election key's create revision of the
//! object's unit — and, while the nodes own the whole bucket, of the bucket leader's key — is
//! a wrong-unit violation.
//!
//! The write log is judged once it is complete, at the end of the world ([`UnitLog::judge`]):
//! then every file upload knows its unit and every epoch its key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use compactd::bucket::layout::{block_of, meta_path};
use compactd::core::types::{StoreRequest, WriteOp};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;

use super::{
    is_commit, is_compactor, method, parse_meta, visible_blocks, Invariant, Writer, WriterOrder,
};
use crate::etcd::EtcdModel;
use crate::shared::WALL0;
use crate::store::{StoreModel, WriteOutcome, WriteRecord};

/// The bucket leader's fence object.
const BUCKET_FENCE_PATH: &str = "compactd/fence.json";
/// A stream's fence object is `<this><16-hex id>.json`.
const STREAM_FENCE_PREFIX: &str = "compactd/fence/";
/// A stream's election keys are `<prefix>/<this><16-hex id>/<lease hex>`.
const STREAM_KEYS: &str = "streams/";
/// The bucket's election keys are `<prefix>/<this><lease hex>`.
const BUCKET_KEYS: &str = "election/";
/// Prometheus' label separator in `labels.Hash()` (`model/labels`, `seps = []byte{'\xff'}`).
const LABEL_SEPARATOR: u8 = 0xff;

/// Who owns an object under stream ownership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// The bucket leader: blocks without labels once replica labels are removed,
    /// partial-upload clean-up, `compactd/fence.json`.
    Bucket,
    /// A stream, by its id.
    Stream(u64),
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Bucket => f.write_str("bucket"),
            Unit::Stream(id) => write!(f, "stream {id:016x}"),
        }
    }
}

/// What the checker needs to know of the world to key by unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitRules {
    /// The deduplication replica labels the nodes are configured with.
    pub replica_labels: Vec<String>,
    /// The etcd prefix (`--etcd.prefix`): the bucket's election and the streams' are below.
    pub prefix: String,
}

/// Prometheus' `labels.Hash()`: xxh64, seed 0, over `name 0xff value 0xff` of each label in
/// name order (`model/labels/labels.go`; above 1 KiB Prometheus streams the same bytes
/// through the same hash, which gives the same digest).
pub fn labels_hash(labels: &BTreeMap<String, String>) -> u64 {
    let mut bytes = Vec::new();
    for (name, value) in labels {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(LABEL_SEPARATOR);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(LABEL_SEPARATOR);
    }
    xxhash_rust::xxh64::xxh64(&bytes, 0)
}

/// The unit of blocks with external labels `labels`: their stream once `replica_labels` are
/// removed, the bucket leader's when none is left.
pub fn unit_of_labels(labels: &BTreeMap<String, String>, replica_labels: &[String]) -> Unit {
    let kept: BTreeMap<String, String> = labels
        .iter()
        .filter(|(name, _)| !replica_labels.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if kept.is_empty() {
        Unit::Bucket
    } else {
        Unit::Stream(labels_hash(&kept))
    }
}

/// The unit of a block (a plain Prometheus block, without a Thanos section, has no labels).
pub fn unit_of_meta(meta: &BlockMeta, replica_labels: &[String]) -> Unit {
    match &meta.thanos {
        Some(thanos) => unit_of_labels(&thanos.labels, replica_labels),
        None => Unit::Bucket,
    }
}

/// What a mutation touched, as far as the bucket told when it landed.
#[derive(Clone, Copy, Debug)]
enum Touched {
    /// An object of this unit.
    Unit(Unit),
    /// A file of a block whose meta.json had not landed.
    Block(BlockId),
}

/// One applied compactor mutation.
#[derive(Clone, Debug)]
struct UnitWrite {
    at_ms: i64,
    writer: Writer,
    op: &'static str,
    method: &'static str,
    path: String,
    touched: Touched,
}

/// The write log of a stream world, by unit.
#[derive(Debug)]
pub struct UnitLog {
    rules: UnitRules,
    /// Every applied compactor mutation, in log order.
    writes: Vec<UnitWrite>,
    /// Each block's unit, from the last meta.json of it the bucket held.
    blocks: BTreeMap<BlockId, Unit>,
    /// The block a delete under way removes, and the unit of the meta.json it found.
    deleting: Option<(BlockId, Unit)>,
    /// Units whose single-writer order is not judged: a fault broke their lease assumption.
    relaxed: BTreeSet<Unit>,
}

impl UnitLog {
    /// An empty log.
    pub fn new(rules: UnitRules) -> UnitLog {
        UnitLog {
            rules,
            writes: Vec::new(),
            blocks: BTreeMap::new(),
            deleting: None,
            relaxed: BTreeSet::new(),
        }
    }

    /// Judges `unit` by commit order only, not single writer (see
    /// [`super::Checker::lease_broken`]).
    pub fn relax(&mut self, unit: Unit) {
        self.relaxed.insert(unit);
    }

    /// Learns the unit of every block the bucket holds a meta.json of (the seeded bucket).
    pub fn learn_blocks(&mut self, store: &StoreModel) {
        for (id, (meta, _)) in visible_blocks(store) {
            let unit = unit_of_meta(&meta, &self.rules.replica_labels);
            self.blocks.insert(id, unit);
        }
    }

    /// Before `req` is performed: a block delete belongs to the unit of the meta.json it finds
    /// (the block's owner retiring it), or to the bucket leader when there is none (a partial
    /// block's clean-up).
    pub fn before(&mut self, store: &StoreModel, req: &StoreRequest) {
        self.deleting = match req.write_op() {
            Some(WriteOp::DeleteBlock(id)) => {
                let unit = parse_meta(store, *id).map_or(Unit::Bucket, |meta| {
                    unit_of_meta(&meta, &self.rules.replica_labels)
                });
                Some((*id, unit))
            }
            _ => None,
        };
    }

    /// One applied mutation `w` (any writer, sidecars included), just performed on `store`:
    /// a meta.json teaches its block's unit; a compactor's mutation is kept.
    pub fn note(&mut self, store: &StoreModel, w: &WriteRecord) {
        let block = block_of(&w.path);
        if let Some(id) = block {
            let written = matches!(w.outcome, WriteOutcome::Written { .. });
            if written && w.path == meta_path(id) {
                if let Some(meta) = parse_meta(store, id) {
                    let unit = unit_of_meta(&meta, &self.rules.replica_labels);
                    self.blocks.insert(id, unit);
                }
            }
        }
        if !is_compactor(&w.node) {
            return;
        }
        let touched = match block {
            Some(id) => match self.deleting {
                Some((deleting, unit)) if deleting == id && w.op == "delete-block" => {
                    Touched::Unit(unit)
                }
                _ => self
                    .blocks
                    .get(&id)
                    .map_or(Touched::Block(id), |unit| Touched::Unit(*unit)),
            },
            None => Touched::Unit(fence_unit(&w.path)),
        };
        self.writes.push(UnitWrite {
            at_ms: w.at_ms - WALL0,
            writer: (w.epoch, w.node.clone()),
            op: w.op,
            method: method(w),
            path: w.path.clone(),
            touched,
        });
    }

    /// The unit whose election key was created at revision `epoch`; `None` when no election
    /// key was.
    fn epoch_unit(&self, etcd: &EtcdModel, epoch: u64) -> Option<Unit> {
        let key = etcd.created_key(i64::try_from(epoch).ok()?)?;
        let rest = key.strip_prefix(&self.rules.prefix)?.strip_prefix('/')?;
        if rest.starts_with(BUCKET_KEYS) {
            return Some(Unit::Bucket);
        }
        let stream = rest.strip_prefix(STREAM_KEYS)?;
        let (hex, _lease) = stream.split_once('/')?;
        stream_id(hex).map(Unit::Stream)
    }

    /// The violations of the whole log: wrong-unit, then single writer (when `strict`, in the
    /// units not relaxed) and commit order per unit, as `(invariant, world ms, text)`.
    pub fn judge(&self, etcd: &EtcdModel, strict: bool) -> Vec<(Invariant, i64, String)> {
        let mut found = Vec::new();
        let mut all: BTreeMap<Unit, WriterOrder> = BTreeMap::new();
        let mut commits: BTreeMap<Unit, WriterOrder> = BTreeMap::new();
        for w in &self.writes {
            let what = format!("{} {} {}", w.op, w.method, w.path);
            let epoch_unit = self.epoch_unit(etcd, w.writer.0);
            let object_unit = match w.touched {
                Touched::Unit(unit) => Some(unit),
                Touched::Block(id) => self.blocks.get(&id).copied(),
            };
            let unit = match object_unit {
                Some(unit) => {
                    let owner = unit;
                    if epoch_unit != Some(owner) {
                        let epoch = epoch_unit
                            .map_or_else(|| "no election key's".to_string(), |u| u.to_string());
                        let text = format!(
                            "epoch {} ({}) is {epoch}, wrote an object of {unit} (owned by \
                             {owner}'s key): {what}",
                            w.writer.0, w.writer.1
                        );
                        found.push((Invariant::WrongUnit, w.at_ms, text));
                    }
                    unit
                }
                // The meta.json never landed: invisible files, kept in their writer's unit.
                None => match epoch_unit {
                    Some(unit) => unit,
                    // Not elected at all: nothing to key them by; they reach no reader.
                    None => continue,
                },
            };
            if strict && !self.relaxed.contains(&unit) {
                if let Some(p) = all.entry(unit).or_default().note(&w.writer) {
                    found.push((
                        Invariant::SingleWriter,
                        w.at_ms,
                        format!("{unit}: {p}: {what}"),
                    ));
                }
            }
            if is_commit(w.op) {
                if let Some(p) = commits.entry(unit).or_default().note(&w.writer) {
                    found.push((
                        Invariant::CommitOrder,
                        w.at_ms,
                        format!("{unit}: {p}: {what}"),
                    ));
                }
            }
        }
        found
    }
}

/// The unit of an object outside the block directories: a stream's fence is the stream's,
/// everything else (`compactd/fence.json` above all) the bucket leader's.
fn fence_unit(path: &str) -> Unit {
    if path == BUCKET_FENCE_PATH {
        return Unit::Bucket;
    }
    path.strip_prefix(STREAM_FENCE_PREFIX)
        .and_then(|rest| rest.strip_suffix(".json"))
        .and_then(stream_id)
        .map_or(Unit::Bucket, Unit::Stream)
}

/// A stream id written as 16 hex digits.
fn stream_id(hex: &str) -> Option<u64> {
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

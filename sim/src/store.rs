//! The object store model: objects with ETags, conditional puts, listing and deletion, fault
//! injection per request, a write log naming the node and epoch behind every mutation, and
//! [`StoreModel::execute`], which performs one of the core's [`StoreRequest`]s object by object as
//! the production executor (`compactd::driver::store`) does.
//!
//! The semantics are those of `object_store` on S3, checked by `tests/store_conformance.rs`
//! against `object_store`'s `InMemory` and a real S3 server (SeaweedFS):
//! - A put is atomic. `Create` of an existing object is [`ObjectError::AlreadyExists`];
//!   `Update` is [`ObjectError::Precondition`] unless the ETag matches, also when the object
//!   is missing (InMemory and SeaweedFS answer so; AWS answers 404, which `object_store`
//!   turns into `Precondition`).
//! - ETags are derived from the content, as S3's MD5 ETags are: rewriting identical bytes
//!   keeps the ETag, so an `Update` carrying an ETag read before an A→B→A change succeeds.
//!   InMemory gives every write a new ETag instead; the model follows S3, the more permissive
//!   store (every update that succeeds with per-write ETags also succeeds here).
//! - Deleting a missing object succeeds. Listing goes by path segments (`a/b` lists
//!   `a/b/...`, neither `a/b` itself nor `a/bc`), in path order.
//! - Not modelled: multipart uploads (production uses them above 64 MiB; a put here is one
//!   atomic request), object versions, latency (the caller schedules requests), and the
//!   production executor's per-process meta.json cache (it saves GETs of immutable objects).
//!
//! Faults are decided per request by the caller: [`Fault::Unavailable`] refuses a request
//! before it is applied (a 5xx), [`Fault::TimeoutAfterApply`] applies it and loses the reply.
//! A process that crashes in the middle of an operation is modelled by failing the request
//! it would not have sent and dropping the operation's result.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use compactd::bucket::layout::{block_prefix, listed_blocks, marker_path, meta_path};
use compactd::bucket::markers::{
    encode_marker, parse_marker, DeletionMark, Marker, NoCompactMark, NoDownsampleMark,
    DELETION_MARK_FILENAME,
};
use compactd::core::fence::{fence_path, FenceRecord, FenceVersion};
use compactd::core::types::{
    MetaState, Millis, ReadOp, StoreError, StoreErrorKind, StoreRequest, StoreResult, SyncResult,
    SyncedBlock, WriteOp,
};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The content.
    pub bytes: Vec<u8>,
    /// The ETag, quoted as S3 sends it; a function of the content.
    pub e_tag: String,
    /// When it was last written, in the caller's milliseconds.
    pub last_modified_ms: i64,
}

/// How a put treats an existing object (`object_store::PutMode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Write unconditionally.
    Overwrite,
    /// Write only if absent (`If-None-Match: *`).
    Create,
    /// Write only if the object exists with this ETag (`If-Match`).
    Update {
        /// The ETag the object must have.
        e_tag: String,
    },
}

/// The kinds of object request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Read one object.
    Get,
    /// List the objects under a prefix.
    List,
    /// Write one object.
    Put,
    /// Delete one object.
    Delete,
}

/// One object request, as the fault hook of [`StoreModel::execute`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// What it does.
    pub method: Method,
    /// The object; for [`Method::List`], the prefix (`""`: the whole bucket).
    pub path: &'a str,
}

/// What happens to a request on its way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// It is served normally.
    #[default]
    Pass,
    /// Refused before it is applied (a 5xx): nothing changes.
    Unavailable,
    /// Applied, then its reply is lost: the caller sees a timeout.
    TimeoutAfterApply,
}

/// Why an object request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// A `Create` found the object.
    AlreadyExists,
    /// An `Update` found the object missing or with another ETag.
    Precondition,
    /// Injected: refused before it was applied.
    Unavailable,
    /// Injected: the reply was lost (a mutation was applied).
    TimedOut,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectError::AlreadyExists => "object already exists",
            ObjectError::Precondition => "precondition failed",
            ObjectError::Unavailable => "injected error: 503 Service Unavailable",
            ObjectError::TimedOut => "injected timeout: no reply",
        })
    }
}

/// Who sends a request, and when it reaches the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The node's name.
    pub node: &'a str,
    /// The epoch of the permit the request was issued under (0 for none).
    pub epoch: u64,
    /// When the request reaches the store, in the world's milliseconds.
    pub at_ms: i64,
}

/// What a mutation did, as the store saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A put wrote the object, which now has this ETag.
    Written {
        /// The new ETag.
        e_tag: String,
    },
    /// A delete removed the object.
    Deleted,
    /// A delete found nothing to remove (a success for the caller).
    Absent,
    /// A `Create` found the object.
    AlreadyExists,
    /// An `Update` found the object missing or with another ETag.
    Precondition,
    /// Injected: refused before it was applied.
    Unavailable,
}

/// One entry of the write log: a mutation that reached the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRecord {
    /// When it reached the store.
    pub at_ms: i64,
    /// The node that sent it.
    pub node: String,
    /// The epoch it was issued under.
    pub epoch: u64,
    /// The [`StoreRequest::name`] it belongs to, or `put` / `delete` for direct object calls.
    pub op: &'static str,
    /// [`Method::Put`] or [`Method::Delete`].
    pub method: Method,
    /// The object.
    pub path: String,
    /// What the store did.
    pub outcome: WriteOutcome,
    /// The reply was lost ([`Fault::TimeoutAfterApply`]): the sender saw a timeout.
    pub reply_lost: bool,
}

impl WriteRecord {
    /// True when the mutation changed the store.
    pub fn applied(&self) -> bool {
        matches!(
            self.outcome,
            WriteOutcome::Written { .. } | WriteOutcome::Deleted
        )
    }
}

/// The store: objects by path and the write log. Deterministic: no clock, no randomness.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreModel {
    objects: BTreeMap<String, Object>,
    log: Vec<WriteRecord>,
}

/// The ETag of `bytes`: a content hash, quoted.
fn e_tag_of(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", xxhash_rust::xxh64::xxh64(bytes, 0))
}

impl StoreModel {
    /// The object at `path`.
    pub fn get(&self, path: &str) -> Option<&Object> {
        self.objects.get(path)
    }

    /// The objects under `prefix` (by path segments; `""` lists everything), in path order.
    pub fn list(&self, prefix: &str) -> Vec<(&str, &Object)> {
        let prefix = prefix.trim_end_matches('/');
        let dir = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        self.objects
            .range(dir.clone()..)
            .take_while(|(path, _)| path.starts_with(&dir))
            .map(|(path, o)| (path.as_str(), o))
            .collect()
    }

    /// Every mutation that reached the store, in order.
    pub fn writes(&self) -> &[WriteRecord] {
        &self.log
    }

    /// Writes `bytes` at `path` under `mode`; the new ETag.
    pub fn put(
        &mut self,
        from: Origin<'_>,
        path: &str,
        bytes: Vec<u8>,
        mode: PutMode,
        fault: Fault,
    ) -> Result<String, ObjectError> {
        self.put_as(from, "put", path, bytes, mode, fault)
    }

    /// Deletes `path`; a missing object is a success.
    pub fn delete(
        &mut self,
        from: Origin<'_>,
        path: &str,
        fault: Fault,
    ) -> Result<(), ObjectError> {
        self.delete_as(from, "delete", path, fault)
    }

    fn put_as(
        &mut self,
        from: Origin<'_>,
        op: &'static str,
        path: &str,
        bytes: Vec<u8>,
        mode: PutMode,
        fault: Fault,
    ) -> Result<String, ObjectError> {
        let result = if fault == Fault::Unavailable {
            Err(ObjectError::Unavailable)
        } else {
            let current = self.objects.get(path).map(|o| o.e_tag.as_str());
            match (&mode, current) {
                (PutMode::Create, Some(_)) => Err(ObjectError::AlreadyExists),
                (PutMode::Update { e_tag }, current) if current != Some(e_tag.as_str()) => {
                    Err(ObjectError::Precondition)
                }
                _ => {
                    let e_tag = e_tag_of(&bytes);
                    let object = Object {
                        bytes,
                        e_tag: e_tag.clone(),
                        last_modified_ms: from.at_ms,
                    };
                    self.objects.insert(path.to_string(), object);
                    Ok(e_tag)
                }
            }
        };
        let outcome = match &result {
            Ok(e_tag) => WriteOutcome::Written {
                e_tag: e_tag.clone(),
            },
            Err(ObjectError::AlreadyExists) => WriteOutcome::AlreadyExists,
            Err(ObjectError::Precondition) => WriteOutcome::Precondition,
            Err(ObjectError::Unavailable | ObjectError::TimedOut) => WriteOutcome::Unavailable,
        };
        self.record(from, op, Method::Put, path, outcome, fault);
        reply(result, fault)
    }

    fn delete_as(
        &mut self,
        from: Origin<'_>,
        op: &'static str,
        path: &str,
        fault: Fault,
    ) -> Result<(), ObjectError> {
        let (result, outcome) = if fault == Fault::Unavailable {
            (Err(ObjectError::Unavailable), WriteOutcome::Unavailable)
        } else if self.objects.remove(path).is_some() {
            (Ok(()), WriteOutcome::Deleted)
        } else {
            (Ok(()), WriteOutcome::Absent)
        };
        self.record(from, op, Method::Delete, path, outcome, fault);
        reply(result, fault)
    }

    fn record(
        &mut self,
        from: Origin<'_>,
        op: &'static str,
        method: Method,
        path: &str,
        outcome: WriteOutcome,
        fault: Fault,
    ) {
        self.log.push(WriteRecord {
            at_ms: from.at_ms,
            node: from.node.to_string(),
            epoch: from.epoch,
            op,
            method,
            path: path.to_string(),
            outcome,
            reply_lost: fault == Fault::TimeoutAfterApply,
        });
    }

    /// Performs `req` for `from` as the production executor does, one object request at a
    /// time, each first passed to `faults`: [`Self::read`] or [`Self::write`].
    pub fn execute(
        &mut self,
        from: Origin<'_>,
        req: &StoreRequest,
        files: &[(String, Vec<u8>)],
        faults: impl FnMut(&Request<'_>) -> Fault,
    ) -> StoreResult {
        match req {
            StoreRequest::Read { op, .. } => self.read(from, op, faults),
            StoreRequest::Write { op, .. } => self.write(from, op, files, faults),
        }
    }

    /// Performs read `op` for `from`. The whole operation happens at `from.at_ms`; the first
    /// failed request ends it with [`StoreResult::Failed`].
    pub fn read(
        &mut self,
        from: Origin<'_>,
        op: &ReadOp,
        faults: impl FnMut(&Request<'_>) -> Fault,
    ) -> StoreResult {
        let mut exec = Exec {
            model: self,
            from,
            op: op.name(),
            faults,
        };
        let result = match op {
            ReadOp::Sync => exec.sync().map(StoreResult::Synced),
            ReadOp::ReadFence | ReadOp::ReadStreamFence { .. } => {
                let path = op.fence_path().expect("a fence read names its object");
                exec.read_fence(&path).map(StoreResult::Fence)
            }
        };
        result.unwrap_or_else(StoreResult::Failed)
    }

    /// Performs mutation `op` for `from`. `files` are the block's files for
    /// [`WriteOp::UploadFiles`] as `(path inside the block, content)`; they are uploaded in
    /// production's order, `chunks/*` by name, then the rest (`index`). The whole operation
    /// happens at `from.at_ms`; the first failed request ends it with [`StoreResult::Failed`].
    pub fn write(
        &mut self,
        from: Origin<'_>,
        op: &WriteOp,
        files: &[(String, Vec<u8>)],
        faults: impl FnMut(&Request<'_>) -> Fault,
    ) -> StoreResult {
        let mut exec = Exec {
            model: self,
            from,
            op: op.name(),
            faults,
        };
        let result = match op {
            WriteOp::UploadFiles { block, .. } => {
                exec.upload_files(*block, files).map(|()| StoreResult::Done)
            }
            WriteOp::PutMeta { meta } | WriteOp::AdoptMeta { meta } => {
                exec.put_meta(meta).map(|()| StoreResult::Done)
            }
            WriteOp::MarkDeletion(m) => exec.put_marker(m).map(|()| StoreResult::Done),
            WriteOp::MarkNoCompact(m) => exec.put_marker(m).map(|()| StoreResult::Done),
            WriteOp::MarkNoDownsample(m) => exec.put_marker(m).map(|()| StoreResult::Done),
            WriteOp::RemoveMarker { block, marker } => exec
                .delete(&marker_path(*block, marker))
                .map(|()| StoreResult::Done),
            WriteOp::DeleteBlock(id) => exec.delete_block(*id).map(|()| StoreResult::Done),
            WriteOp::CasFence {
                stream,
                record,
                expected,
            } => exec.cas_fence(&fence_path(*stream), record, expected.as_ref()),
        };
        result.unwrap_or_else(StoreResult::Failed)
    }
}

/// The failure of an object request in `context` (`read <path>`, ...), of the kind the
/// production executor gives the same `object_store` error: a lost reply is a timeout, a
/// failed condition a precondition, a 5xx another failure.
fn failed(context: String, e: ObjectError) -> StoreError {
    let kind = match e {
        ObjectError::AlreadyExists | ObjectError::Precondition => StoreErrorKind::Precondition,
        ObjectError::TimedOut => StoreErrorKind::Timeout,
        ObjectError::Unavailable => StoreErrorKind::Other,
    };
    StoreError::new(kind, format!("{context}: {e}"))
}

/// The reply the caller sees: the result, unless the fault lost it.
fn reply<T>(result: Result<T, ObjectError>, fault: Fault) -> Result<T, ObjectError> {
    match fault {
        Fault::TimeoutAfterApply => Err(ObjectError::TimedOut),
        Fault::Pass | Fault::Unavailable => result,
    }
}

/// One [`StoreModel::execute`] call: the production executor's steps over the model.
struct Exec<'m, 'o, F> {
    model: &'m mut StoreModel,
    from: Origin<'o>,
    op: &'static str,
    faults: F,
}

impl<F: FnMut(&Request<'_>) -> Fault> Exec<'_, '_, F> {
    fn fault(&mut self, method: Method, path: &str) -> Fault {
        (self.faults)(&Request { method, path })
    }

    /// A read: `Some(object)`, `None` when missing.
    fn get(&mut self, path: &str) -> Result<Option<Object>, StoreError> {
        match self.fault(Method::Get, path) {
            Fault::Pass => Ok(self.model.get(path).cloned()),
            Fault::Unavailable => Err(failed(format!("read {path}"), ObjectError::Unavailable)),
            Fault::TimeoutAfterApply => Err(failed(format!("read {path}"), ObjectError::TimedOut)),
        }
    }

    /// A listing: `(path, last modified)` in path order.
    fn list(&mut self, prefix: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let what = if prefix.is_empty() { "bucket" } else { prefix };
        match self.fault(Method::List, prefix) {
            Fault::Pass => Ok(self
                .model
                .list(prefix)
                .into_iter()
                .map(|(p, o)| (p.to_string(), o.last_modified_ms))
                .collect()),
            Fault::Unavailable => Err(failed(format!("list {what}"), ObjectError::Unavailable)),
            Fault::TimeoutAfterApply => Err(failed(format!("list {what}"), ObjectError::TimedOut)),
        }
    }

    fn put(&mut self, path: &str, bytes: Vec<u8>, mode: PutMode) -> Result<String, ObjectError> {
        let fault = self.fault(Method::Put, path);
        self.model
            .put_as(self.from, self.op, path, bytes, mode, fault)
    }

    fn delete(&mut self, path: &str) -> Result<(), StoreError> {
        let fault = self.fault(Method::Delete, path);
        self.model
            .delete_as(self.from, self.op, path, fault)
            .map_err(|e| failed(format!("delete {path}"), e))
    }

    /// `StoreExecutor::sync`: one listing of the bucket, then meta.json and the markers of
    /// every block directory (sequentially, in block order).
    fn sync(&mut self) -> Result<SyncResult, StoreError> {
        let objects = self.list("")?;
        let listed = listed_blocks(objects.iter().map(|(p, m)| (p.as_str(), *m)));
        let mut blocks = BTreeMap::new();
        for (id, l) in listed {
            let meta = if l.meta {
                self.read_meta(id)?
            } else {
                MetaState::Missing
            };
            let mut problems = Vec::new();
            let deletion_mark = if l.deletion_mark {
                self.read_marker::<DeletionMark>(id, &mut problems)?
            } else {
                None
            };
            let no_compact_mark = if l.no_compact_mark {
                self.read_marker::<NoCompactMark>(id, &mut problems)?
            } else {
                None
            };
            let no_downsample_mark = if l.no_downsample_mark {
                self.read_marker::<NoDownsampleMark>(id, &mut problems)?
            } else {
                None
            };
            let block = SyncedBlock {
                meta,
                deletion_mark,
                no_compact_mark,
                no_downsample_mark,
                marker_problems: problems,
                newest_modified: Millis(l.newest_modified),
            };
            blocks.insert(id, block);
        }
        Ok(SyncResult { blocks })
    }

    fn read_meta(&mut self, id: BlockId) -> Result<MetaState, StoreError> {
        let path = meta_path(id);
        let Some(object) = self.get(&path)? else {
            return Ok(MetaState::Missing);
        };
        Ok(match BlockMeta::parse(&object.bytes, Path::new(&path)) {
            Ok(m) if m.ulid == id => MetaState::Ok(Box::new(m)),
            Ok(m) => MetaState::Corrupt(format!("{path}: names block {}, not {id}", m.ulid)),
            Err(e) => MetaState::Corrupt(e.to_string()),
        })
    }

    fn read_marker<M: Marker>(
        &mut self,
        id: BlockId,
        problems: &mut Vec<String>,
    ) -> Result<Option<M>, StoreError> {
        let path = marker_path(id, M::FILENAME);
        let Some(object) = self.get(&path)? else {
            return Ok(None);
        };
        match parse_marker::<M>(&object.bytes, &path, id) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                problems.push(format!("ignoring unreadable marker: {e}"));
                Ok(None)
            }
        }
    }

    /// `StoreExecutor::upload_files`: plain (overwriting) puts, `chunks/*` first.
    fn upload_files(&mut self, id: BlockId, files: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut ordered: Vec<&(String, Vec<u8>)> = files.iter().collect();
        ordered.sort_by_key(|(rel, _)| (!rel.starts_with("chunks/"), rel.as_str()));
        for (rel, bytes) in ordered {
            let path = format!("{}/{rel}", block_prefix(id));
            self.put(&path, bytes.clone(), PutMode::Overwrite)
                .map_err(|e| failed(format!("upload {path}"), e))?;
        }
        Ok(())
    }

    /// `StoreExecutor::put_meta`: create-only; an existing meta.json with the same bytes (a
    /// retried request that did land) is a success.
    fn put_meta(&mut self, meta: &BlockMeta) -> Result<(), StoreError> {
        let path = meta_path(meta.ulid);
        let bytes = meta.to_json();
        if self.create(&path, bytes.clone())? {
            return Ok(());
        }
        match self.get(&path)? {
            Some(existing) if existing.bytes == bytes => Ok(()),
            _ => Err(StoreError::new(
                StoreErrorKind::Precondition,
                format!("{path} already exists with other content; refusing to overwrite"),
            )),
        }
    }

    /// `StoreExecutor::put_marker`: create-only; an existing marker is left as is.
    fn put_marker<M: Marker>(&mut self, m: &M) -> Result<(), StoreError> {
        self.create(&marker_path(m.block(), M::FILENAME), encode_marker(m))
            .map(|_| ())
    }

    /// A create-only put: `true` if created, `false` if the object existed.
    fn create(&mut self, path: &str, bytes: Vec<u8>) -> Result<bool, StoreError> {
        match self.put(path, bytes, PutMode::Create) {
            Ok(_) => Ok(true),
            Err(ObjectError::AlreadyExists) => Ok(false),
            Err(e) => Err(failed(format!("create {path}"), e)),
        }
    }

    /// `StoreExecutor::delete_block`: meta.json first, then every other object but the
    /// deletion mark (as listed after meta.json is gone), then the deletion mark.
    fn delete_block(&mut self, id: BlockId) -> Result<(), StoreError> {
        self.delete(&meta_path(id))?;
        let mark = marker_path(id, DELETION_MARK_FILENAME);
        for (path, _) in self.list(&block_prefix(id))? {
            if path != mark {
                self.delete(&path)?;
            }
        }
        self.delete(&mark)
    }

    /// `StoreExecutor::read_fence`: the fence object at `path`.
    fn read_fence(
        &mut self,
        path: &str,
    ) -> Result<Option<(FenceRecord, FenceVersion)>, StoreError> {
        let Some(object) = self.get(path)? else {
            return Ok(None);
        };
        let version = FenceVersion {
            e_tag: Some(object.e_tag),
            version: None,
        };
        let record = FenceRecord::parse(path, &object.bytes).map_err(StoreError::other)?;
        Ok(Some((record, version)))
    }

    /// `StoreExecutor::cas_fence` on a store with conditional update, of the fence object at
    /// `path`: create if `expected` is `None`, else `If-Match` its ETag; a lost condition is a
    /// conflict.
    fn cas_fence(
        &mut self,
        path: &str,
        record: &FenceRecord,
        expected: Option<&FenceVersion>,
    ) -> Result<StoreResult, StoreError> {
        let mode = match expected {
            None => PutMode::Create,
            Some(FenceVersion {
                e_tag: Some(e_tag), ..
            }) => PutMode::Update {
                e_tag: e_tag.clone(),
            },
            Some(_) => {
                return Err(StoreError::other(format!(
                    "write {path}: an ETag is required for a conditional put"
                )))
            }
        };
        match self.put(path, record.to_json(), mode) {
            Ok(e_tag) => Ok(StoreResult::FenceWritten(FenceVersion {
                e_tag: Some(e_tag),
                version: None,
            })),
            Err(ObjectError::Precondition | ObjectError::AlreadyExists) => {
                Ok(StoreResult::FenceConflict)
            }
            Err(e) => Err(failed(format!("write {path}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compactd::bucket::markers::NO_COMPACT_MARK_FILENAME;
    use compactd::core::fence::FENCE_PATH;
    use compactd::core::stream::StreamId;
    use compactd::core::types::JobId;

    const A: Origin<'static> = Origin {
        node: "a",
        epoch: 7,
        at_ms: 1_000,
    };

    fn pass(_: &Request<'_>) -> Fault {
        Fault::Pass
    }

    fn block(n: u128) -> BlockId {
        BlockId::from_parts(1_735_689_600_000, n)
    }

    fn meta(id: BlockId) -> BlockMeta {
        BlockMeta::level1(id, 0, 7_200_000)
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        ["index", "chunks/000002", "chunks/000001"]
            .iter()
            .map(|f| (f.to_string(), f.as_bytes().to_vec()))
            .collect()
    }

    fn deletion_mark(id: BlockId, details: &str) -> DeletionMark {
        DeletionMark {
            id,
            version: 1,
            details: details.into(),
            deletion_time: 1,
        }
    }

    fn fence(epoch: u64, seq: u64) -> FenceRecord {
        FenceRecord {
            epoch,
            holder: format!("node-{epoch}"),
            seq,
            renewed_unix_ms: 5,
            nonce: String::new(),
        }
    }

    /// The paths and outcomes of the write log from entry `from` on.
    fn log_since(s: &StoreModel, from: usize) -> Vec<(Method, &str, &WriteOutcome)> {
        s.writes()[from..]
            .iter()
            .map(|w| (w.method, w.path.as_str(), &w.outcome))
            .collect()
    }

    #[test]
    fn conditional_puts_delete_and_list() {
        let mut s = StoreModel::default();
        let create = |s: &mut StoreModel, p: &str, b: &[u8]| {
            s.put(A, p, b.to_vec(), PutMode::Create, Fault::Pass)
        };
        let v1 = create(&mut s, "x/f", b"one").unwrap();
        assert_eq!(
            create(&mut s, "x/f", b"two"),
            Err(ObjectError::AlreadyExists)
        );
        let update = |e_tag: &str| PutMode::Update {
            e_tag: e_tag.into(),
        };
        let v2 = s
            .put(A, "x/f", b"two".to_vec(), update(&v1), Fault::Pass)
            .unwrap();
        assert_ne!(v1, v2);
        let stale = s.put(A, "x/f", b"three".to_vec(), update(&v1), Fault::Pass);
        assert_eq!(stale, Err(ObjectError::Precondition));
        let missing = s.put(A, "x/none", b"1".to_vec(), update(&v2), Fault::Pass);
        assert_eq!(missing, Err(ObjectError::Precondition));
        assert_eq!(s.get("x/f").unwrap().bytes, b"two");
        assert_eq!(s.get("x/none"), None);
        s.delete(A, "x/none", Fault::Pass).unwrap();
        for p in ["x/b", "x", "x/a/1", "xy/z", "x-1", "y"] {
            s.put(A, p, p.as_bytes().to_vec(), PutMode::Overwrite, Fault::Pass)
                .unwrap();
        }
        let listed = |s: &StoreModel, prefix: &str| -> Vec<String> {
            s.list(prefix).iter().map(|(p, _)| p.to_string()).collect()
        };
        assert_eq!(listed(&s, "x"), ["x/a/1", "x/b", "x/f"]);
        assert_eq!(listed(&s, "x/"), ["x/a/1", "x/b", "x/f"]);
        assert_eq!(listed(&s, "x/a"), ["x/a/1"]);
        assert_eq!(
            listed(&s, ""),
            ["x", "x-1", "x/a/1", "x/b", "x/f", "xy/z", "y"]
        );
        s.delete(A, "x/b", Fault::Pass).unwrap();
        assert_eq!(listed(&s, "x"), ["x/a/1", "x/f"]);
    }

    #[test]
    fn write_log_names_sender_epoch_and_outcome() {
        let mut s = StoreModel::default();
        let b = Origin {
            node: "b",
            epoch: 9,
            at_ms: 2_000,
        };
        let e = s
            .put(A, "f", b"1".to_vec(), PutMode::Create, Fault::Pass)
            .unwrap();
        s.put(b, "f", b"2".to_vec(), PutMode::Create, Fault::Pass)
            .unwrap_err();
        s.delete(b, "g", Fault::Pass).unwrap();
        s.delete(b, "f", Fault::Pass).unwrap();
        let _ = s.get("f");
        let _ = s.list("");
        let want = |at_ms, node: &str, epoch, method, path: &str, outcome| WriteRecord {
            at_ms,
            node: node.into(),
            epoch,
            op: if method == Method::Put {
                "put"
            } else {
                "delete"
            },
            method,
            path: path.into(),
            outcome,
            reply_lost: false,
        };
        assert_eq!(
            s.writes(),
            [
                want(
                    1_000,
                    "a",
                    7,
                    Method::Put,
                    "f",
                    WriteOutcome::Written { e_tag: e }
                ),
                want(2_000, "b", 9, Method::Put, "f", WriteOutcome::AlreadyExists),
                want(2_000, "b", 9, Method::Delete, "g", WriteOutcome::Absent),
                want(2_000, "b", 9, Method::Delete, "f", WriteOutcome::Deleted),
            ]
        );
        let applied: Vec<bool> = s.writes().iter().map(WriteRecord::applied).collect();
        assert_eq!(applied, [true, false, false, true]);
    }

    #[test]
    fn injected_faults_before_and_after_apply() {
        let mut s = StoreModel::default();
        let refused = s.put(A, "f", b"1".to_vec(), PutMode::Create, Fault::Unavailable);
        assert_eq!(refused, Err(ObjectError::Unavailable));
        assert_eq!(s.get("f"), None);
        let lost = s.put(
            A,
            "f",
            b"1".to_vec(),
            PutMode::Create,
            Fault::TimeoutAfterApply,
        );
        assert_eq!(lost, Err(ObjectError::TimedOut));
        assert_eq!(s.get("f").unwrap().bytes, b"1");
        assert_eq!(
            s.delete(A, "f", Fault::Unavailable),
            Err(ObjectError::Unavailable)
        );
        assert!(s.get("f").is_some());
        assert_eq!(
            s.delete(A, "f", Fault::TimeoutAfterApply),
            Err(ObjectError::TimedOut)
        );
        assert_eq!(s.get("f"), None);
        let summary: Vec<(bool, bool)> = s
            .writes()
            .iter()
            .map(|w| (w.applied(), w.reply_lost))
            .collect();
        assert_eq!(
            summary,
            [(false, false), (true, true), (false, false), (true, true)]
        );
        assert_eq!(s.writes()[0].outcome, WriteOutcome::Unavailable);
    }

    #[test]
    fn deterministic_and_content_addressed_e_tags() {
        let run = || {
            let mut s = StoreModel::default();
            let id = block(1);
            s.write(
                A,
                &WriteOp::UploadFiles {
                    job: JobId(1),
                    block: id,
                },
                &files(),
                pass,
            );
            let put_meta = WriteOp::PutMeta {
                meta: Box::new(meta(id)),
            };
            s.write(A, &put_meta, &[], pass);
            let cas = WriteOp::CasFence {
                stream: None,
                record: fence(1, 1),
                expected: None,
            };
            let written = s.write(A, &cas, &[], pass);
            s.write(A, &WriteOp::DeleteBlock(id), &[], pass);
            (s, written)
        };
        let (first, written) = run();
        assert_eq!(run(), (first.clone(), written));
        // The ETag is a function of the content: rewriting the same bytes keeps it (S3).
        let mut s = first;
        let e1 = s
            .put(A, "f", b"x".to_vec(), PutMode::Overwrite, Fault::Pass)
            .unwrap();
        let e2 = s
            .put(A, "f", b"y".to_vec(), PutMode::Overwrite, Fault::Pass)
            .unwrap();
        let e3 = s
            .put(A, "f", b"x".to_vec(), PutMode::Overwrite, Fault::Pass)
            .unwrap();
        assert_ne!(e1, e2);
        assert_eq!(e1, e3);
    }

    #[test]
    fn block_upload_commit_marks_and_delete_in_thanos_order() {
        let mut s = StoreModel::default();
        let id = block(1);
        let upload = WriteOp::UploadFiles {
            job: JobId(1),
            block: id,
        };
        assert_eq!(s.write(A, &upload, &files(), pass), StoreResult::Done);
        let put = |p: String| (Method::Put, p);
        let uploaded: Vec<(Method, String)> = s
            .writes()
            .iter()
            .map(|w| (w.method, w.path.clone()))
            .collect();
        assert_eq!(
            uploaded,
            [
                put(format!("{id}/chunks/000001")),
                put(format!("{id}/chunks/000002")),
                put(format!("{id}/index")),
            ]
        );
        assert!(s
            .writes()
            .iter()
            .all(|w| w.op == "upload-files" && w.epoch == 7));
        let StoreResult::Synced(partial) = s.read(A, &ReadOp::Sync, pass) else {
            panic!("sync failed");
        };
        assert_eq!(partial.blocks[&id].meta, MetaState::Missing);
        assert_eq!(partial.blocks[&id].newest_modified, Millis(1_000));

        let later = Origin { at_ms: 3_000, ..A };
        let put_meta = WriteOp::PutMeta {
            meta: Box::new(meta(id)),
        };
        assert_eq!(s.write(later, &put_meta, &[], pass), StoreResult::Done);
        assert_eq!(s.write(later, &put_meta, &[], pass), StoreResult::Done);
        let mut other = meta(id);
        other.stats.num_samples = 1;
        let put_other = WriteOp::PutMeta {
            meta: Box::new(other),
        };
        let refused = s.write(later, &put_other, &[], pass);
        assert!(
            matches!(&refused, StoreResult::Failed(e) if e.kind == StoreErrorKind::Precondition),
            "{refused:?}"
        );
        assert_eq!(s.get(&meta_path(id)).unwrap().bytes, meta(id).to_json());

        let first = deletion_mark(id, "first");
        let no_compact = NoCompactMark {
            id,
            version: 1,
            details: String::new(),
            no_compact_time: 1,
            reason: "manual".into(),
        };
        for op in [
            WriteOp::MarkDeletion(first.clone()),
            WriteOp::MarkDeletion(deletion_mark(id, "second")),
            WriteOp::MarkNoCompact(no_compact.clone()),
        ] {
            assert_eq!(s.write(later, &op, &[], pass), StoreResult::Done);
        }
        let StoreResult::Synced(synced) = s.read(later, &ReadOp::Sync, pass) else {
            panic!("sync failed");
        };
        let b = &synced.blocks[&id];
        assert_eq!(b.meta, MetaState::Ok(Box::new(meta(id))));
        assert_eq!(b.deletion_mark, Some(first));
        assert_eq!(b.no_compact_mark, Some(no_compact));
        assert!(b.marker_problems.is_empty());
        assert_eq!(b.newest_modified, Millis(3_000));

        let before = s.writes().len();
        let delete = WriteOp::DeleteBlock(id);
        assert_eq!(s.write(later, &delete, &[], pass), StoreResult::Done);
        let del = |f: &str| format!("{id}/{f}");
        let deleted: Vec<String> = s.writes()[before..]
            .iter()
            .inspect(|w| assert_eq!((w.method, w.op), (Method::Delete, "delete-block")))
            .map(|w| w.path.clone())
            .collect();
        assert_eq!(
            deleted,
            [
                del("meta.json"),
                del("chunks/000001"),
                del("chunks/000002"),
                del("index"),
                del("no-compact-mark.json"),
                del("deletion-mark.json"),
            ]
        );
        assert!(s.list("").is_empty());
        let before = s.writes().len();
        assert_eq!(s.write(later, &delete, &[], pass), StoreResult::Done);
        let absent = log_since(&s, before);
        assert_eq!(
            absent.len(),
            2,
            "meta.json and the deletion mark: {absent:?}"
        );
        assert!(absent.iter().all(|(_, _, o)| **o == WriteOutcome::Absent));
    }

    #[test]
    fn sync_reports_corrupt_metas_and_markers_and_skips_other_objects() {
        let mut s = StoreModel::default();
        let (corrupt, wrong, marked) = (block(1), block(2), block(3));
        let raw = |s: &mut StoreModel, path: String, bytes: Vec<u8>| {
            s.put(A, &path, bytes, PutMode::Overwrite, Fault::Pass)
                .unwrap();
        };
        raw(&mut s, meta_path(corrupt), b"{".to_vec());
        raw(&mut s, meta_path(wrong), meta(marked).to_json());
        raw(&mut s, meta_path(marked), meta(marked).to_json());
        let mut v2 = deletion_mark(marked, "");
        v2.version = 2;
        raw(
            &mut s,
            marker_path(marked, DELETION_MARK_FILENAME),
            encode_marker(&v2),
        );
        raw(
            &mut s,
            marker_path(marked, NO_COMPACT_MARK_FILENAME),
            b"[".to_vec(),
        );
        raw(&mut s, FENCE_PATH.into(), fence(1, 1).to_json());
        raw(&mut s, "debug/metas/x.json".into(), b"{}".to_vec());
        let StoreResult::Synced(synced) = s.read(A, &ReadOp::Sync, pass) else {
            panic!("sync failed");
        };
        assert_eq!(
            synced.blocks.keys().copied().collect::<Vec<_>>(),
            [corrupt, wrong, marked]
        );
        assert!(
            matches!(&synced.blocks[&corrupt].meta, MetaState::Corrupt(e) if e.contains("meta.json"))
        );
        assert_eq!(
            synced.blocks[&wrong].meta,
            MetaState::Corrupt(format!(
                "{wrong}/meta.json: names block {marked}, not {wrong}"
            ))
        );
        let b = &synced.blocks[&marked];
        assert_eq!((&b.deletion_mark, &b.no_compact_mark), (&None, &None));
        assert_eq!(b.marker_problems.len(), 2, "{:?}", b.marker_problems);
        assert!(b.marker_problems[0].starts_with("ignoring unreadable marker:"));
    }

    #[test]
    fn fence_read_create_compare_and_swap() {
        let mut s = StoreModel::default();
        let read = |s: &mut StoreModel| s.read(A, &ReadOp::ReadFence, pass);
        let cas = |s: &mut StoreModel, record, expected| {
            let op = WriteOp::CasFence {
                stream: None,
                record,
                expected,
            };
            s.write(A, &op, &[], pass)
        };
        assert_eq!(read(&mut s), StoreResult::Fence(None));
        let StoreResult::FenceWritten(v1) = cas(&mut s, fence(1, 1), None) else {
            panic!("create failed");
        };
        assert_eq!(
            read(&mut s),
            StoreResult::Fence(Some((fence(1, 1), v1.clone())))
        );
        assert_eq!(cas(&mut s, fence(2, 1), None), StoreResult::FenceConflict);
        let StoreResult::FenceWritten(v2) = cas(&mut s, fence(1, 2), Some(v1.clone())) else {
            panic!("cas failed");
        };
        assert_ne!(v1, v2);
        assert_eq!(
            cas(&mut s, fence(2, 1), Some(v1)),
            StoreResult::FenceConflict
        );
        assert_eq!(
            read(&mut s),
            StoreResult::Fence(Some((fence(1, 2), v2.clone())))
        );
        let no_e_tag = FenceVersion {
            e_tag: None,
            version: Some("1".into()),
        };
        assert!(matches!(
            cas(&mut s, fence(2, 1), Some(no_e_tag)),
            StoreResult::Failed(_)
        ));
        s.delete(A, FENCE_PATH, Fault::Pass).unwrap();
        assert_eq!(
            cas(&mut s, fence(1, 3), Some(v2)),
            StoreResult::FenceConflict
        );
        s.put(
            A,
            FENCE_PATH,
            b"{".to_vec(),
            PutMode::Overwrite,
            Fault::Pass,
        )
        .unwrap();
        let StoreResult::Failed(e) = read(&mut s) else {
            panic!("an unreadable fence must fail");
        };
        assert_eq!(e.kind, StoreErrorKind::Other);
        assert!(
            e.message
                .starts_with("compactd/fence.json: invalid fence record"),
            "{e}"
        );
        let ops: Vec<&str> = s.writes().iter().map(|w| w.op).collect();
        assert_eq!(
            ops,
            [
                "cas-fence",
                "cas-fence",
                "cas-fence",
                "cas-fence",
                "delete",
                "cas-fence",
                "put"
            ]
        );
    }

    /// A stream's fence is an object of its own: the bucket fence's version does not match
    /// it, and writing one leaves the other as it was.
    #[test]
    fn stream_fences_are_objects_of_their_own() {
        let mut s = StoreModel::default();
        let stream = StreamId(42);
        let cas = |s: &mut StoreModel, stream, record, expected| {
            let op = WriteOp::CasFence {
                stream,
                record,
                expected,
            };
            s.write(A, &op, &[], pass)
        };
        let StoreResult::FenceWritten(bucket) = cas(&mut s, None, fence(1, 1), None) else {
            panic!("creating the bucket fence failed");
        };
        let read_stream = ReadOp::ReadStreamFence { stream };
        assert_eq!(s.read(A, &read_stream, pass), StoreResult::Fence(None));
        let StoreResult::FenceWritten(own) = cas(&mut s, Some(stream), fence(3, 1), None) else {
            panic!("creating the stream's fence failed");
        };
        let stale = cas(&mut s, Some(stream), fence(3, 2), Some(bucket.clone()));
        assert_eq!(stale, StoreResult::FenceConflict);
        assert_eq!(
            s.read(A, &read_stream, pass),
            StoreResult::Fence(Some((fence(3, 1), own)))
        );
        assert_eq!(
            s.read(A, &ReadOp::ReadFence, pass),
            StoreResult::Fence(Some((fence(1, 1), bucket)))
        );
        assert!(s.get(&stream.fence_path()).is_some());
        s.put(
            A,
            &stream.fence_path(),
            b"[".to_vec(),
            PutMode::Overwrite,
            Fault::Pass,
        )
        .unwrap();
        let StoreResult::Failed(e) = s.read(A, &read_stream, pass) else {
            panic!("an unreadable fence must fail");
        };
        let want = "compactd/fence/000000000000002a.json: invalid fence record";
        assert!(e.message.starts_with(want), "{e}");
        let ops: Vec<&str> = s.writes().iter().map(|w| w.op).collect();
        assert_eq!(
            ops,
            ["cas-fence", "cas-stream-fence", "cas-stream-fence", "put"]
        );
    }

    #[test]
    fn execute_stops_at_the_first_failed_request() {
        let mut s = StoreModel::default();
        let id = block(1);
        let upload = WriteOp::UploadFiles {
            job: JobId(1),
            block: id,
        };
        let fail_index = |r: &Request<'_>| {
            if r.path.ends_with("/index") {
                Fault::Unavailable
            } else {
                Fault::Pass
            }
        };
        let StoreResult::Failed(e) = s.write(A, &upload, &files(), fail_index) else {
            panic!("the upload must fail");
        };
        assert_eq!(e.kind, StoreErrorKind::Other);
        assert!(
            e.message.starts_with(&format!("upload {id}/index: ")),
            "{e}"
        );
        assert_eq!(s.list(&id.to_string()).len(), 2, "the chunks landed");
        assert_eq!(s.write(A, &upload, &files(), pass), StoreResult::Done);

        // A commit whose reply is lost landed; its retry finds the same bytes and succeeds.
        let put_meta = WriteOp::PutMeta {
            meta: Box::new(meta(id)),
        };
        let lose = |_: &Request<'_>| Fault::TimeoutAfterApply;
        assert!(matches!(
            s.write(A, &put_meta, &[], lose),
            StoreResult::Failed(e) if e.kind == StoreErrorKind::Timeout
        ));
        assert!(s.get(&meta_path(id)).is_some());
        assert_eq!(s.write(A, &put_meta, &[], pass), StoreResult::Done);

        // Reads fail too; nothing is logged for them.
        let before = s.writes().len();
        let fail_gets = |r: &Request<'_>| {
            if r.method == Method::Get {
                Fault::Unavailable
            } else {
                Fault::Pass
            }
        };
        let StoreResult::Failed(e) = s.read(A, &ReadOp::Sync, fail_gets) else {
            panic!("sync must fail");
        };
        assert_eq!(e.kind, StoreErrorKind::Other);
        assert!(
            e.message.starts_with(&format!("read {id}/meta.json: ")),
            "{e}"
        );
        assert_eq!(s.writes().len(), before);

        // A delete stopped after meta.json leaves a partial block; the retry finishes it.
        let mut deletes = 0;
        let second_delete_fails = |r: &Request<'_>| {
            deletes += u32::from(r.method == Method::Delete);
            if deletes == 2 {
                Fault::Unavailable
            } else {
                Fault::Pass
            }
        };
        let delete = WriteOp::DeleteBlock(id);
        assert!(matches!(
            s.write(A, &delete, &[], second_delete_fails),
            StoreResult::Failed(_)
        ));
        assert_eq!(s.get(&meta_path(id)), None);
        assert_eq!(s.list("").len(), 3);
        assert_eq!(s.write(A, &delete, &[], pass), StoreResult::Done);
        assert!(s.list("").is_empty());
    }
}

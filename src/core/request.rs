//! Store requests: what the core asks of the bucket, split by type into reads and writes.
//!
//! A [`StoreRequest::Write`] holds its [`Permit`] by value, so a mutation without a permit
//! does not compile: the core cannot send one, and a driver never has to decide what to do
//! with one. Reads ([`ReadOp`]) carry none: they change nothing, and a reader that lost its
//! term only wastes a request. Before a driver starts a request it passes it through the
//! shared admission check ([`super::admission`]).

use serde::{Deserialize, Serialize};

use super::fence::{fence_path, FenceRecord, FenceVersion};
use super::stream::StreamId;
use super::types::{Event, JobId, Permit, RequestId, StoreResult};
use crate::bucket::markers::{DeletionMark, NoCompactMark, NoDownsampleMark};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// One store request: a read, or a write under the permit it was issued with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StoreRequest {
    /// A read: needs no permit.
    Read {
        /// Matches the result.
        id: RequestId,
        /// What to read.
        op: ReadOp,
    },
    /// A mutation of the bucket.
    Write {
        /// Matches the result.
        id: RequestId,
        /// What to change.
        op: WriteOp,
        /// The permit it was issued under: the driver refuses it once expired.
        permit: Permit,
    },
}

/// The operations that only read the bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOp {
    /// List the blocks and read every meta.json and marker.
    Sync,
    /// Read the bucket fence, `compactd/fence.json`. Answered by [`StoreResult::Fence`].
    ReadFence,
    /// Read a stream's fence, `compactd/fence/<stream hex>.json`. Answered by
    /// [`StoreResult::Fence`].
    ReadStreamFence {
        /// The stream whose fence to read.
        stream: StreamId,
    },
}

/// The operations that change the bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// Upload a compacted block's `chunks/` and `index` (invisible without meta.json).
    UploadFiles {
        /// The job whose output to upload.
        job: JobId,
        /// The new block.
        block: BlockId,
    },
    /// Commit point: create `<block>/meta.json` (never overwrites).
    PutMeta {
        /// The block's final meta.
        meta: Box<BlockMeta>,
    },
    /// Commit point: create `<block>/meta.json` of a block an operator's tool uploaded (an
    /// operator request: `tools bucket rewrite --leader.url`). The driver first checks that
    /// every file the meta lists is in the bucket with its size; never overwrites.
    AdoptMeta {
        /// The block's final meta.
        meta: Box<BlockMeta>,
    },
    /// Commit point: create a deletion mark (an existing one is left as is).
    MarkDeletion(DeletionMark),
    /// Commit point: create a no-compact mark (an existing one is left as is).
    MarkNoCompact(NoCompactMark),
    /// Commit point: create a no-downsample mark (an existing one is left as is).
    MarkNoDownsample(NoDownsampleMark),
    /// Commit point: delete a block's marker file (an absent one is no error).
    RemoveMarker {
        /// The block.
        block: BlockId,
        /// The marker's file name (`deletion-mark.json`, `no-compact-mark.json`,
        /// `no-downsample-mark.json`).
        marker: String,
    },
    /// Commit point: delete a block in Thanos' order (meta.json first, the deletion mark last).
    DeleteBlock(BlockId),
    /// Write a fence object ([`WriteOp::fence_path`]) if its version is still `expected`
    /// (create it if `None`). Answered by [`StoreResult::FenceWritten`] or
    /// [`StoreResult::FenceConflict`].
    CasFence {
        /// Whose fence: a stream's, or the bucket's (`None`). Left out of the JSON when
        /// `None`, so the bucket fence's requests keep the bytes traces recorded before
        /// streams had fences.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<StreamId>,
        /// The new record.
        record: FenceRecord,
        /// The version read last; `None` creates the object.
        expected: Option<FenceVersion>,
    },
}

impl StoreRequest {
    /// A read.
    pub fn read(id: RequestId, op: ReadOp) -> StoreRequest {
        StoreRequest::Read { id, op }
    }

    /// A mutation under `permit`.
    pub fn write(id: RequestId, op: WriteOp, permit: Permit) -> StoreRequest {
        StoreRequest::Write { id, op, permit }
    }

    /// Matches the result.
    pub fn id(&self) -> RequestId {
        match self {
            StoreRequest::Read { id, .. } | StoreRequest::Write { id, .. } => *id,
        }
    }

    /// The permit of a mutation; `None` for a read.
    pub fn permit(&self) -> Option<Permit> {
        match self {
            StoreRequest::Read { .. } => None,
            StoreRequest::Write { permit, .. } => Some(*permit),
        }
    }

    /// The operation of a mutation; `None` for a read.
    pub fn write_op(&self) -> Option<&WriteOp> {
        match self {
            StoreRequest::Read { .. } => None,
            StoreRequest::Write { op, .. } => Some(op),
        }
    }

    /// The operation of a read; `None` for a mutation.
    pub fn read_op(&self) -> Option<&ReadOp> {
        match self {
            StoreRequest::Read { op, .. } => Some(op),
            StoreRequest::Write { .. } => None,
        }
    }

    /// True for mutations.
    pub fn is_mutation(&self) -> bool {
        matches!(self, StoreRequest::Write { .. })
    }

    /// True for commit points ([`WriteOp::is_commit`]).
    pub fn is_commit(&self) -> bool {
        self.write_op().is_some_and(WriteOp::is_commit)
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            StoreRequest::Read { op, .. } => op.name(),
            StoreRequest::Write { op, .. } => op.name(),
        }
    }
}

impl ReadOp {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ReadOp::Sync => "sync",
            ReadOp::ReadFence => "read-fence",
            ReadOp::ReadStreamFence { .. } => "read-stream-fence",
        }
    }

    /// The object a fence read reads (`core::fence::fence_path`); `None` for other reads.
    pub fn fence_path(&self) -> Option<String> {
        match self {
            ReadOp::Sync => None,
            ReadOp::ReadFence => Some(fence_path(None)),
            ReadOp::ReadStreamFence { stream } => Some(fence_path(Some(*stream))),
        }
    }
}

impl WriteOp {
    /// The event reporting this operation's success (answered by `result`), if it is worth
    /// one: a marker found already in place is not a new mark.
    pub fn completion_event(&self, result: &StoreResult) -> Option<Event> {
        if *result == StoreResult::MarkerExisted {
            return None;
        }
        match self {
            WriteOp::UploadFiles { .. } | WriteOp::CasFence { .. } => None,
            WriteOp::PutMeta { meta } | WriteOp::AdoptMeta { meta } => {
                Some(Event::Uploaded(meta.ulid))
            }
            WriteOp::MarkDeletion(m) => Some(Event::Marked {
                block: m.id,
                marker: crate::bucket::markers::DELETION_MARK_FILENAME.into(),
                reason: m.details.clone(),
            }),
            WriteOp::MarkNoCompact(m) => Some(Event::Marked {
                block: m.id,
                marker: crate::bucket::markers::NO_COMPACT_MARK_FILENAME.into(),
                reason: m.reason.clone(),
            }),
            WriteOp::MarkNoDownsample(m) => Some(Event::Marked {
                block: m.id,
                marker: crate::bucket::markers::NO_DOWNSAMPLE_MARK_FILENAME.into(),
                reason: m.reason.clone(),
            }),
            WriteOp::RemoveMarker { block, marker } => Some(Event::Unmarked {
                block: *block,
                marker: marker.clone(),
            }),
            WriteOp::DeleteBlock(id) => Some(Event::Deleted(*id)),
        }
    }

    /// True for commit points: the mutations a fence CAS must guard (they change what
    /// readers of the bucket see).
    pub fn is_commit(&self) -> bool {
        matches!(
            self,
            WriteOp::PutMeta { .. }
                | WriteOp::AdoptMeta { .. }
                | WriteOp::MarkDeletion(_)
                | WriteOp::MarkNoCompact(_)
                | WriteOp::MarkNoDownsample(_)
                | WriteOp::RemoveMarker { .. }
                | WriteOp::DeleteBlock(_)
        )
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            WriteOp::UploadFiles { .. } => "upload-files",
            WriteOp::PutMeta { .. } => "put-meta",
            WriteOp::AdoptMeta { .. } => "adopt-meta",
            WriteOp::MarkDeletion(_) => "mark-deletion",
            WriteOp::MarkNoCompact(_) => "mark-no-compact",
            WriteOp::MarkNoDownsample(_) => "mark-no-downsample",
            WriteOp::RemoveMarker { .. } => "remove-marker",
            WriteOp::DeleteBlock(_) => "delete-block",
            WriteOp::CasFence { stream: None, .. } => "cas-fence",
            WriteOp::CasFence {
                stream: Some(_), ..
            } => "cas-stream-fence",
        }
    }

    /// The object a fence CAS writes (`core::fence::fence_path`); `None` for other writes.
    pub fn fence_path(&self) -> Option<String> {
        match self {
            WriteOp::CasFence { stream, .. } => Some(fence_path(*stream)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fence::FENCE_PATH;

    fn cas(stream: Option<StreamId>) -> WriteOp {
        let record = FenceRecord {
            epoch: 3,
            holder: "a".into(),
            seq: 2,
            renewed_unix_ms: 1,
            nonce: String::new(),
        };
        WriteOp::CasFence {
            stream,
            record,
            expected: None,
        }
    }

    /// The bucket fence's CAS keeps the JSON it had before streams had fences, so recorded
    /// traces (and the simulation's hashes) stay the same; a stream's names its stream.
    #[test]
    fn a_bucket_fence_cas_keeps_its_json() {
        let json = serde_json::to_string(&cas(None)).expect("serializes");
        let before = r#"{"CasFence":{"record":{"epoch":3,"holder":"a","seq":2,"renewed_unix_ms":1},"expected":null}}"#;
        assert_eq!(json, before);
        let parsed: WriteOp = serde_json::from_str(before).expect("parses");
        assert_eq!(parsed, cas(None));
        let stream = cas(Some(StreamId(42)));
        let json = serde_json::to_string(&stream).expect("serializes");
        assert!(json.contains(r#""stream":42"#), "{json}");
        let parsed: WriteOp = serde_json::from_str(&json).expect("parses");
        assert_eq!(parsed, stream);
    }

    #[test]
    fn fence_requests_name_their_object() {
        let stream = StreamId(42);
        assert_eq!(ReadOp::Sync.fence_path(), None);
        assert_eq!(ReadOp::ReadFence.fence_path().as_deref(), Some(FENCE_PATH));
        let read = ReadOp::ReadStreamFence { stream };
        assert_eq!(read.fence_path(), Some(stream.fence_path()));
        assert_eq!(cas(None).fence_path().as_deref(), Some(FENCE_PATH));
        assert_eq!(cas(Some(stream)).fence_path(), Some(stream.fence_path()));
        let block = crate::tsdb::block_id::BlockId::from_parts(1, 1);
        assert_eq!(WriteOp::DeleteBlock(block).fence_path(), None);
        let names = [read.name(), cas(None).name(), cas(Some(stream)).name()];
        assert_eq!(
            names,
            ["read-stream-fence", "cas-fence", "cas-stream-fence"]
        );
    }
}

//! The admission check: the last word on whether a store request may start, run by every
//! driver (production's `driver::spawn_store`, the simulation's `node_host`) right before it
//! starts one, so both refuse exactly the same requests.
//!
//! It refuses a mutation whose permit has expired on the node's monotonic clock (layer 2 of
//! `docs/safety.md`: the core issued it in time, but it waited in the driver), and a block's
//! meta.json when this process did not upload the block's files (a commit must never make a
//! block visible whose files may be missing). The driver turns a [`Refusal`] into a failed
//! result for the core ([`StoreErrorKind::PermitExpired`] or [`StoreErrorKind::Refused`]).
//!
//! What it cannot do is stop a request already running: the production driver aborts an
//! upload or a delete when the node's permit lapses, which needs a clock while it waits.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{
    Input, Millis, ReadOp, RequestId, StoreError, StoreErrorKind, StoreRequest, StoreResult,
    WriteOp,
};
use crate::tsdb::block_id::BlockId;

/// Why a request was not started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The mutation's permit expired before it could start.
    #[error("refused: the write permit expired before the request started")]
    PermitExpired,
    /// A meta.json for a block whose files this process did not upload.
    #[error("meta.json of block {block} refused: its files were not uploaded by this process")]
    NotUploaded {
        /// The block.
        block: BlockId,
    },
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> StoreError {
        let kind = match r {
            Refusal::PermitExpired => StoreErrorKind::PermitExpired,
            Refusal::NotUploaded { .. } => StoreErrorKind::Refused,
        };
        StoreError::new(kind, r.to_string())
    }
}

/// What one process's driver knows to admit requests: the uploads it ran.
#[derive(Debug)]
pub struct Admission {
    /// False only in the simulation's `--bug no-permit-check`.
    expiry_check: bool,
    /// Uploads of block files admitted whose result has not come back, by request.
    uploading: BTreeMap<RequestId, BlockId>,
    /// meta.json puts admitted whose result has not come back, by request.
    committing: BTreeMap<RequestId, BlockId>,
    /// Blocks whose files this process uploaded and whose meta.json is not committed yet.
    uploaded: BTreeSet<BlockId>,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission {
            expiry_check: true,
            uploading: BTreeMap::new(),
            committing: BTreeMap::new(),
            uploaded: BTreeSet::new(),
        }
    }
}

impl Admission {
    /// Every check on: what production runs.
    pub fn new() -> Admission {
        Admission::default()
    }

    /// Without the permit expiry check: the simulation's `--bug no-permit-check`, which shows
    /// that its checker catches what the check prevents. Production never builds one.
    pub fn without_expiry_check() -> Admission {
        Admission {
            expiry_check: false,
            ..Admission::default()
        }
    }

    /// Admits `req` to start at monotonic time `mono`, or says why not. An admitted upload
    /// of block files or meta.json is remembered until its result comes back
    /// ([`Admission::on_input`]).
    pub fn admit(&mut self, req: &StoreRequest, mono: Millis) -> Result<(), Refusal> {
        if self.expiry_check {
            permit_live(req, mono)?;
        }
        match req {
            StoreRequest::Write {
                id,
                op: WriteOp::UploadFiles { block, .. },
                ..
            } => {
                self.uploading.insert(*id, *block);
            }
            StoreRequest::Write {
                id,
                op: WriteOp::PutMeta { meta },
                ..
            } => {
                if !self.uploaded.contains(&meta.ulid) {
                    return Err(Refusal::NotUploaded { block: meta.ulid });
                }
                self.committing.insert(*id, meta.ulid);
            }
            // Listed, not `_`, so that a new operation has to be decided on here. The other
            // mutations (either fence's CAS among them) need their permit alone; reads,
            // either fence's among them, need nothing.
            StoreRequest::Write {
                op:
                    WriteOp::AdoptMeta { .. }
                    | WriteOp::MarkDeletion(_)
                    | WriteOp::MarkNoCompact(_)
                    | WriteOp::MarkNoDownsample(_)
                    | WriteOp::RemoveMarker { .. }
                    | WriteOp::DeleteBlock(_)
                    | WriteOp::CasFence { .. },
                ..
            }
            | StoreRequest::Read {
                op: ReadOp::Sync | ReadOp::ReadFence | ReadOp::ReadStreamFence { .. },
                ..
            } => {}
        }
        Ok(())
    }

    /// Notes what an input of the node tells about admitted requests: an upload of block
    /// files that completed lets the block's meta.json in; a committed meta.json needs it no
    /// more.
    pub fn on_input(&mut self, input: &Input) {
        let Input::Store(id, result) = input else {
            return;
        };
        let done = *result == StoreResult::Done;
        if let Some(block) = self.uploading.remove(id).filter(|_| done) {
            self.uploaded.insert(block);
        }
        if let Some(block) = self.committing.remove(id).filter(|_| done) {
            self.uploaded.remove(&block);
        }
    }
}

/// The expiry check alone, for a driver that checks again where a request actually starts
/// (production's store task may start late): a mutation's permit must not have expired at
/// `mono`. Reads pass.
pub fn permit_live(req: &StoreRequest, mono: Millis) -> Result<(), Refusal> {
    match req.permit() {
        Some(p) if mono >= p.valid_until => Err(Refusal::PermitExpired),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fence::FenceRecord;
    use crate::core::stream::StreamId;
    use crate::core::types::{Epoch, JobId, Permit};
    use crate::tsdb::meta::BlockMeta;

    const PERMIT: Permit = Permit {
        epoch: Epoch(7),
        valid_until: Millis(1_000),
    };

    fn block() -> BlockId {
        BlockId::from_parts(1, 1)
    }

    fn upload(id: u64) -> StoreRequest {
        let op = WriteOp::UploadFiles {
            job: JobId(1),
            block: block(),
        };
        StoreRequest::write(RequestId(id), op, PERMIT)
    }

    fn put_meta(id: u64) -> StoreRequest {
        let op = WriteOp::PutMeta {
            meta: Box::new(BlockMeta::level1(block(), 0, 1)),
        };
        StoreRequest::write(RequestId(id), op, PERMIT)
    }

    fn answer(a: &mut Admission, id: u64, result: StoreResult) {
        a.on_input(&Input::Store(RequestId(id), result));
    }

    /// A mutation starts only before its permit expires; a read needs none.
    #[test]
    fn an_expired_permit_is_refused_and_a_read_passes() {
        let mut a = Admission::new();
        assert_eq!(a.admit(&upload(1), Millis(999)), Ok(()));
        assert_eq!(
            a.admit(&upload(2), Millis(1_000)),
            Err(Refusal::PermitExpired)
        );
        let sync = StoreRequest::read(RequestId(3), ReadOp::Sync);
        assert_eq!(a.admit(&sync, Millis(i64::MAX)), Ok(()));
        let error = StoreError::from(Refusal::PermitExpired);
        assert_eq!(error.kind, StoreErrorKind::PermitExpired);
    }

    /// Either fence's CAS is a mutation like any other: refused once its permit expired;
    /// reading either fence needs no permit.
    #[test]
    fn fence_requests_of_the_bucket_and_of_a_stream() {
        let mut a = Admission::new();
        for stream in [None, Some(StreamId(42))] {
            let op = WriteOp::CasFence {
                stream,
                record: FenceRecord::successor(None, 7, "me", 0),
                expected: None,
            };
            let cas = StoreRequest::write(RequestId(1), op, PERMIT);
            assert_eq!(a.admit(&cas, Millis(999)), Ok(()));
            assert_eq!(a.admit(&cas, Millis(1_000)), Err(Refusal::PermitExpired));
        }
        let stream = StreamId(42);
        for op in [ReadOp::ReadFence, ReadOp::ReadStreamFence { stream }] {
            let read = StoreRequest::read(RequestId(2), op);
            assert_eq!(a.admit(&read, Millis(i64::MAX)), Ok(()));
        }
    }

    /// meta.json goes in only after this process uploaded the block's files, and only until
    /// it is committed.
    #[test]
    fn meta_json_needs_the_files_uploaded_by_this_process() {
        let mut a = Admission::new();
        let refused = Err(Refusal::NotUploaded { block: block() });
        assert_eq!(a.admit(&put_meta(1), Millis(0)), refused);
        a.admit(&upload(2), Millis(0)).unwrap();
        answer(&mut a, 2, StoreResult::Failed(StoreError::other("503")));
        assert_eq!(a.admit(&put_meta(3), Millis(0)), refused, "a failed upload");
        a.admit(&upload(4), Millis(0)).unwrap();
        answer(&mut a, 4, StoreResult::Done);
        assert_eq!(a.admit(&put_meta(5), Millis(0)), Ok(()));
        answer(&mut a, 5, StoreResult::Failed(StoreError::timeout("lost")));
        assert_eq!(a.admit(&put_meta(6), Millis(0)), Ok(()), "a retry");
        answer(&mut a, 6, StoreResult::Done);
        assert_eq!(
            a.admit(&put_meta(7), Millis(0)),
            refused,
            "committed already"
        );
        let error = StoreError::from(Refusal::NotUploaded { block: block() });
        assert_eq!(error.kind, StoreErrorKind::Refused);
    }

    /// The simulation's `--bug no-permit-check` switches off the expiry check only.
    #[test]
    fn without_the_expiry_check_the_upload_guard_stays() {
        let mut a = Admission::without_expiry_check();
        assert_eq!(a.admit(&upload(1), Millis(5_000)), Ok(()));
        let refused = Err(Refusal::NotUploaded { block: block() });
        assert_eq!(a.admit(&put_meta(2), Millis(5_000)), refused);
        assert_eq!(
            permit_live(&upload(3), Millis(5_000)),
            Err(Refusal::PermitExpired)
        );
    }
}

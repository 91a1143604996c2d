//! The failures that come into the core as inputs: of a store request ([`StoreError`]) and of
//! a compaction or downsampling job ([`JobError`]). (The coordinator's are
//! [`super::coord::CoordError`].)
//!
//! Each is a kind, which the core decides on, and a message, which is what logs, events and
//! metrics show; the message is written by whoever saw the failure (the driver, an adapter,
//! the simulation) and the core never reads it for a decision.

use serde::{Deserialize, Serialize};

use crate::tsdb::block_id::BlockId;

/// Why a store request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// What went wrong, for logs and events.
    pub message: String,
}

/// The kinds of store failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreErrorKind {
    /// The write permit expired before the request started, or lapsed while it ran (an
    /// upload or a delete is aborted then): nothing more of it reaches the bucket.
    PermitExpired,
    /// The driver's admission check refused it for another reason than the permit (a
    /// meta.json for a block whose files this process did not upload).
    Refused,
    /// No answer within the request's timeout: it may or may not have been applied.
    Timeout,
    /// A precondition failed: an object to create exists with other content.
    Precondition,
    /// Something the request needs does not exist (the local copy of a block to upload).
    NotFound,
    /// Anything else: the store refused or failed, a transport error, local I/O, a panic.
    Other,
}

impl StoreError {
    /// A failure of `kind`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    /// A failure of kind [`StoreErrorKind::Other`].
    pub fn other(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Other, message)
    }

    /// A failure of kind [`StoreErrorKind::Timeout`].
    pub fn timeout(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Timeout, message)
    }
}

/// Why a compaction or downsampling job failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    /// What kind of failure: it decides whether the iteration is retried or compaction halts.
    pub kind: JobErrorKind,
    /// What went wrong, for logs and events.
    pub message: String,
}

/// The kinds of job failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobErrorKind {
    /// Reading or writing failed: a download, the local disk (full, unwritable). Retried.
    Io,
    /// The job's own task failed (it panicked, or returned another block than it was to
    /// write). Retried: the next iteration starts it afresh.
    Internal,
    /// The block engine cannot read or merge the inputs (corrupt, unsupported, a failed
    /// merge, a panic of the engine on them): compaction halts, as in Thanos.
    BadInput,
    /// An input block whose index lists a series' chunks out of time order (Thanos'
    /// `OutOfOrderChunksError`): with `--compact.skip-block-with-out-of-order-chunks` the
    /// compaction pass no-compact-marks `block` and goes on, otherwise it halts.
    OutOfOrderChunks {
        /// The offending input block.
        block: BlockId,
    },
}

impl JobErrorKind {
    /// True for failures worth retrying at the next iteration; the others halt (or, for
    /// out-of-order chunks, may mark the block).
    pub fn retryable(self) -> bool {
        matches!(self, JobErrorKind::Io | JobErrorKind::Internal)
    }
}

impl JobError {
    /// A failure of `kind`.
    pub fn new(kind: JobErrorKind, message: impl Into<String>) -> JobError {
        JobError {
            kind,
            message: message.into(),
        }
    }

    /// A failure of kind [`JobErrorKind::Io`].
    pub fn io(message: impl Into<String>) -> JobError {
        JobError::new(JobErrorKind::Io, message)
    }

    /// A failure of kind [`JobErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> JobError {
        JobError::new(JobErrorKind::Internal, message)
    }

    /// A failure of kind [`JobErrorKind::BadInput`].
    pub fn bad_input(message: impl Into<String>) -> JobError {
        JobError::new(JobErrorKind::BadInput, message)
    }

    /// Input `block` lists a series' chunks out of time order.
    pub fn out_of_order_chunks(block: BlockId, message: impl Into<String>) -> JobError {
        JobError::new(JobErrorKind::OutOfOrderChunks { block }, message)
    }

    /// True for failures worth retrying ([`JobErrorKind::retryable`]).
    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rendered message is the text as given: logs and the simulation's event log show
    /// it unchanged.
    #[test]
    fn display_is_the_message_and_kinds_decide_retries() {
        let e = StoreError::timeout("put meta.json: timed out after 10s");
        assert_eq!(e.to_string(), "put meta.json: timed out after 10s");
        assert!(JobError::io("x").retryable());
        assert!(JobError::internal("x").retryable());
        assert!(!JobError::bad_input("x").retryable());
        assert!(!JobError::out_of_order_chunks(BlockId::from_parts(1, 1), "x").retryable());
    }
}

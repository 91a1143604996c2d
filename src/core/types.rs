//! The core's vocabulary: time, ids, permits, and the inputs and outputs of [`Node::step`].
//!
//! Naming: a *request* is one I/O the core asks the driver to perform ([`StoreRequest`]); a
//! *job* is heavy local work (download + compact) the driver runs off the core's thread
//! ([`CompactJob`]); an *event* is something worth logging and counting ([`Event`]). Every
//! request that mutates the bucket carries the [`Permit`] it was issued under: the type of
//! [`StoreRequest::Write`] requires it.
//!
//! [`Node::step`]: super::node::Node::step

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::coord::{CoordId, CoordRequest, CoordResult};
use super::fence::{FenceRecord, FenceVersion};
use super::stream::StreamId;
use crate::bucket::markers::{DeletionMark, NoCompactMark, NoDownsampleMark};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockFile, BlockMeta};

// The requests and the failures of `step` have modules of their own; they are re-exported
// here, with the rest of its vocabulary.
pub use super::error::{JobError, JobErrorKind, StoreError, StoreErrorKind};
pub use super::request::{ReadOp, StoreRequest, WriteOp};

/// Milliseconds: on the monotonic clock for deadlines, since the Unix epoch for wall time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Millis(pub i64);

impl Millis {
    /// The latest representable time.
    pub const MAX: Millis = Millis(i64::MAX);

    /// `self + ms`, saturating.
    pub fn plus(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

/// The two clocks of a step: `mono` for deadlines (never goes back), `wall` (Unix ms) for
/// what Thanos compares with timestamps in the bucket (deletion marks, upload times, ULIDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Now {
    /// Monotonic milliseconds.
    pub mono: Millis,
    /// Unix milliseconds.
    pub wall: Millis,
}

/// A leadership term: the etcd create_revision of the leader key; 0 for a single instance.
/// Serialized as the bare number, as traces and JSON have always held it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

/// Permission to mutate the bucket: under `epoch`, until `valid_until` on the node's own
/// monotonic clock. The driver refuses a mutation whose permit has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    /// The term the mutation belongs to.
    pub epoch: Epoch,
    /// Monotonic deadline after which the mutation must not start.
    pub valid_until: Millis,
}

/// Identifies a store request, to match its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Identifies a compaction job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

/// What the core feeds on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Input {
    /// The first step after start-up.
    Start,
    /// A timer the core asked for fired (an early tick is harmless).
    Tick,
    /// The result of a store request.
    Store(RequestId, StoreResult),
    /// The result of a compaction job: the new block, `None` when it had no samples.
    Compacted(JobId, Box<Result<Option<CompactedBlock>, JobError>>),
    /// The result of a coordinator (etcd) request.
    Coord(CoordId, CoordResult),
    /// The process was asked to stop (SIGTERM/SIGINT).
    Shutdown,
    /// An operator request to commit under this writer's fence ([`super::admin`]).
    Admin(Box<super::admin::AdminRequest>),
}

/// What the core asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Perform a store request and feed back [`Input::Store`].
    Store(StoreRequest),
    /// Run a compaction job and feed back [`Input::Compacted`].
    Compact(CompactJob),
    /// Perform a coordinator (etcd) request and feed back [`Input::Coord`].
    Coord(CoordRequest),
    /// Feed [`Input::Tick`] at this monotonic time (replaces any earlier timer).
    Timer(Millis),
    /// Log and count this.
    Event(Event),
    /// Exit the process with this code (one-shot mode only).
    Exit(i32),
}

/// The result of a store request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StoreResult {
    /// A completed sync.
    Synced(SyncResult),
    /// A mutation completed.
    Done,
    /// A marker was not written because one was already there; it is left as it is (Thanos'
    /// `MarkForDeletion` does the same, without counting a new mark).
    MarkerExisted,
    /// The fence as read: `None` when it does not exist.
    Fence(Option<(FenceRecord, FenceVersion)>),
    /// The fence CAS succeeded; the object now has this version.
    FenceWritten(FenceVersion),
    /// The fence CAS lost: the object changed (or appeared) since it was read.
    FenceConflict,
    /// The request failed.
    Failed(StoreError),
}

/// Everything one sync found in the bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncResult {
    /// Every block directory, by id.
    pub blocks: BTreeMap<BlockId, SyncedBlock>,
}

/// One block directory as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncedBlock {
    /// Its meta.json.
    pub meta: MetaState,
    /// Its deletion mark, if present and readable.
    pub deletion_mark: Option<DeletionMark>,
    /// Its no-compact mark, if present and readable.
    pub no_compact_mark: Option<NoCompactMark>,
    /// Its no-downsample mark, if present and readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_downsample_mark: Option<NoDownsampleMark>,
    /// Problems with its markers (unreadable JSON, wrong version): reported, then ignored as
    /// Thanos does.
    pub marker_problems: Vec<String>,
    /// Newest last-modified time of its objects, Unix ms (partial-upload age).
    pub newest_modified: Millis,
}

/// The state of a block's meta.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaState {
    /// Parsed and valid.
    Ok(Box<BlockMeta>),
    /// Absent: a partial upload or a delete in progress.
    Missing,
    /// Present but unreadable; the text says why.
    Corrupt(String),
}

/// A job for the driver: download `inputs` and make `output` of them, as `kind` says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompactJob {
    /// Matches the result.
    pub job: JobId,
    /// The group (Thanos key `<resolution>@<hash>`), for logs and the local cache dir.
    pub group: String,
    /// The blocks to compact, in order (one block to downsample).
    pub inputs: Vec<BlockMeta>,
    /// The new block's id.
    pub output: BlockId,
    /// Compact or downsample. Written as it was before the kind existed (`downsample_to`,
    /// absent for a compaction), so traces keep their bytes and their hashes.
    #[serde(
        rename = "downsample_to",
        default,
        skip_serializing_if = "JobKind::is_compact"
    )]
    pub kind: JobKind,
}

/// What a driver job makes of its inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Option<i64>", into = "Option<i64>")]
pub enum JobKind {
    /// Compact the inputs into one block.
    #[default]
    Compact,
    /// Downsample the single input to another resolution.
    Downsample {
        /// The new block's resolution in ms.
        resolution_ms: i64,
    },
}

impl JobKind {
    /// True for [`JobKind::Compact`].
    pub fn is_compact(&self) -> bool {
        *self == JobKind::Compact
    }
}

/// The trace form: the resolution to downsample to, none for a compaction.
impl From<Option<i64>> for JobKind {
    fn from(downsample_to: Option<i64>) -> Self {
        match downsample_to {
            None => JobKind::Compact,
            Some(resolution_ms) => JobKind::Downsample { resolution_ms },
        }
    }
}

impl From<JobKind> for Option<i64> {
    fn from(kind: JobKind) -> Self {
        match kind {
            JobKind::Compact => None,
            JobKind::Downsample { resolution_ms } => Some(resolution_ms),
        }
    }
}

/// A compacted block ready for upload in the driver's data dir.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompactedBlock {
    /// Its meta as the block engine wrote it (stats filled in).
    pub meta: BlockMeta,
    /// Its files (`chunks/*`, `index`) with sizes.
    pub files: Vec<BlockFile>,
}

/// What the core reports for logs and metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A sync finished: counts per Thanos fetcher state.
    Synced {
        /// `thanos_blocks_meta_synced` states and counts.
        states: BTreeMap<String, u64>,
        /// Problems worth a warning (corrupt metas, unreadable markers).
        problems: Vec<String>,
    },
    /// A sync failed.
    SyncFailed(String),
    /// A group's plan.
    Planned {
        /// Group key.
        group: String,
        /// Resolution of the group (metric label).
        resolution: i64,
        /// Blocks to compact.
        inputs: Vec<BlockId>,
        /// The new block.
        output: BlockId,
    },
    /// A compaction job finished.
    Compacted {
        /// Group key.
        group: String,
        /// Resolution of the group (metric label).
        resolution: i64,
        /// The new block, `None` when the inputs held no samples.
        output: Option<BlockId>,
        /// Samples in the new block.
        samples: u64,
        /// True when the inputs overlapped (vertical compaction).
        vertical: bool,
    },
    /// A compaction job failed.
    CompactionFailed {
        /// Group key.
        group: String,
        /// Resolution of the group (metric label).
        resolution: i64,
        /// Why.
        error: String,
    },
    /// A downsampling pass starts: `todo` blocks to downsample; `resolutions` are those of
    /// every block it considered (their metric series start at 0, as in Thanos).
    DownsamplePass {
        /// Source resolutions of the considered blocks.
        resolutions: Vec<i64>,
        /// Blocks to downsample in this pass.
        todo: u64,
    },
    /// A downsampling job finished or failed.
    Downsampled {
        /// The source block.
        block: BlockId,
        /// Its resolution (metric label).
        resolution: i64,
        /// The new block (`None` when the source held no samples), or why it failed.
        result: Result<Option<BlockId>, String>,
    },
    /// A block's meta.json was committed: the block is visible.
    Uploaded(BlockId),
    /// A marker was written.
    Marked {
        /// The block.
        block: BlockId,
        /// `deletion-mark.json` or `no-compact-mark.json`.
        marker: String,
        /// Why.
        reason: String,
    },
    /// A marker was removed (an operator request).
    Unmarked {
        /// The block.
        block: BlockId,
        /// The marker's file name.
        marker: String,
    },
    /// A marked block was deleted.
    Deleted(BlockId),
    /// A partial upload older than the threshold was deleted.
    PartialDeleted(BlockId),
    /// A background clean-up (`--compact.cleanup-interval`) finished: its sync, then the
    /// deletion of stale partial uploads and of blocks whose deletion mark passed the delay.
    CleanupDone {
        /// Marked blocks deleted.
        blocks: u64,
        /// Partial uploads deleted.
        partials: u64,
    },
    /// A mutation failed; the iteration is retried.
    MutationFailed {
        /// The operation.
        op: String,
        /// Why.
        error: String,
    },
    /// The backlog gauges, as Thanos' progress calculators compute them over the view of the
    /// last sync (see [`crate::core::progress`]); every `--compact.progress-interval` with
    /// `--wait`.
    Progress {
        /// `thanos_compact_todo_compactions`: compaction runs until the planner finds
        /// nothing, synthetic rounds included.
        todo_compactions: u64,
        /// `thanos_compact_todo_compaction_blocks`: blocks in those runs.
        todo_compaction_blocks: u64,
        /// `thanos_compact_todo_downsample_blocks`: blocks to downsample; `None` when not
        /// computed (downsampling off, or a block of an unknown resolution).
        todo_downsample_blocks: Option<u64>,
        /// `thanos_compact_todo_deletion_blocks`: blocks past their resolution's retention.
        todo_deletion_blocks: u64,
    },
    /// Compaction stopped for good (overlaps, bad input); HTTP keeps serving.
    Halted(String),
    /// An iteration ended; the next one starts after the wait interval.
    IterationDone,
    /// An iteration ended in an error and will be retried.
    Retrying(String),
    /// An operator request ([`Input::Admin`]) ended.
    AdminDone {
        /// The request.
        id: super::admin::AdminId,
        /// What it did.
        outcome: super::admin::AdminOutcome,
    },
    /// The election chose this node; it fences the bucket next.
    Elected {
        /// The term (our election key's create revision).
        epoch: u64,
    },
    /// This node leads and may write: the fence holds its epoch and the takeover delay has
    /// passed.
    Leading {
        /// The term.
        epoch: u64,
        /// Since this node saw the previous leader go (ms), when it did.
        failover_ms: Option<i64>,
    },
    /// This node stopped leading (or stopped writing as a single instance).
    SteppedDown {
        /// The term it held.
        epoch: u64,
        /// Why.
        reason: String,
    },
    /// The leader this node knows of changed (`None`: no leader known).
    LeaderKnown(Option<LeaderInfo>),
    /// The fence CAS lost to another writer.
    FenceConflict {
        /// Our epoch.
        epoch: u64,
        /// What the fence holds now, when it could be read.
        found: Option<FenceRecord>,
    },
    /// The lease was renewed: remaining time of the write permit, in ms.
    LeaseRenewed {
        /// Until the permit lapses.
        permit_remaining_ms: i64,
    },
    /// No lease renewal sent within the last TTL was acknowledged: this node stopped
    /// renewing the lease (etcd expires it) and revokes it once etcd answers, then campaigns
    /// anew.
    LeaseAbandoned {
        /// Since the last acknowledged renewal was sent.
        unheard_ms: i64,
    },
    /// A coordinator request failed (it is retried with backoff).
    CoordFailed {
        /// The operation.
        op: String,
        /// Why.
        error: String,
    },
    /// The stream director adopted an assignment of streams to members.
    StreamsAssigned {
        /// Streams in the bucket.
        streams: usize,
        /// Live members.
        members: usize,
        /// Streams whose owner changed.
        moved: usize,
        /// Streams this node should hold.
        mine: usize,
    },
    /// An event of one stream's seat (its leader or its cycle).
    Stream {
        /// The stream.
        stream: StreamId,
        /// What happened.
        event: Box<Event>,
    },
}

/// A leader as a node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Its node name.
    pub node: String,
    /// Its epoch.
    pub epoch: u64,
    /// When this node learnt of it, Unix ms.
    pub since_unix_ms: i64,
}

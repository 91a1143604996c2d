//! Operator requests the writer commits under its own fence: `compactd tools bucket mark`,
//! `retention`, `cleanup` and `rewrite` sent to the leader (`POST /api/v1/admin/commit`)
//! instead of writing beside it. A request is a list of commits (marks, marker removals, block
//! deletions, the meta.json of a block the tool uploaded); the unit that owns the blocks (the bucket leader, or with per-stream ownership
//! the stream's seat) queues it in its cycle, which sends the commits one at a time through
//! the leader's gate, like its own: each is guarded by a fence CAS and carries the term's
//! permit, so they are ordered with the compactions. The answer is an
//! [`super::types::Event::AdminDone`].

use serde::{Deserialize, Serialize};

use super::request::WriteOp;
use super::stream::StreamId;

/// Identifies an operator request, to match its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AdminId(pub u64);

/// At most this many commits in one request (a retention over a large bucket is sent in
/// several requests).
pub const ADMIN_OPS_MAX: usize = 10_000;
/// At most this many requests wait in a unit's queue; more are refused.
pub const ADMIN_QUEUE_MAX: usize = 64;

/// An operator request: commits to make under the writer's fence, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminRequest {
    /// Matches the answer.
    pub id: AdminId,
    /// The stream whose writer commits them (per-stream ownership), `None` for the bucket
    /// leader.
    pub stream: Option<StreamId>,
    /// The commits, each a mark, a marker removal, a block deletion or the meta.json of a
    /// block the operator's tool uploaded.
    pub ops: Vec<WriteOp>,
}

impl AdminRequest {
    /// Why the request cannot be taken, if it cannot: no commits, too many, or an operation
    /// an operator may not ask for (uploads, meta.json, the fence).
    pub fn refusal(&self) -> Option<String> {
        if self.ops.is_empty() {
            return Some("the request holds no operation".into());
        }
        if self.ops.len() > ADMIN_OPS_MAX {
            return Some(format!(
                "{} operations in one request; at most {ADMIN_OPS_MAX}",
                self.ops.len()
            ));
        }
        self.ops.iter().find_map(|op| {
            (!Self::allowed(op))
                .then(|| format!("operation {} is not an operator request", op.name()))
        })
    }

    /// True for the operations an operator may ask the writer to commit (not
    /// [`WriteOp::PutMeta`], which commits only blocks this process uploaded).
    fn allowed(op: &WriteOp) -> bool {
        matches!(
            op,
            WriteOp::AdoptMeta { .. }
                | WriteOp::MarkDeletion(_)
                | WriteOp::MarkNoCompact(_)
                | WriteOp::MarkNoDownsample(_)
                | WriteOp::RemoveMarker { .. }
                | WriteOp::DeleteBlock(_)
        )
    }
}

/// How a request ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOutcome {
    /// Commits made.
    pub committed: u64,
    /// Marks not written because one was already there.
    pub existed: u64,
    /// Why the request stopped before its end (the commits before it stand).
    pub error: Option<String>,
    /// The epoch the commits were made under (0 when none was made).
    pub epoch: u64,
}

impl AdminOutcome {
    /// A request refused before any commit.
    pub fn failed(error: String) -> AdminOutcome {
        AdminOutcome {
            error: Some(error),
            ..AdminOutcome::default()
        }
    }
}

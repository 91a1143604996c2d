//! Where a bucket tool's commits go. By default the tool makes them itself under its own hold
//! of the fence ([`super::fenced::ToolFence`]: refused next to a live compactd). With
//! `--leader.url` they are sent to that compactd (`POST /api/v1/admin/commit`), which makes
//! them under its own epoch and fence, in order with its compactions; with per-stream
//! ownership one request goes per stream (each block's stream from its labels without the
//! `--deduplication.replica-label` labels), and the replica must own every stream named.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use super::fenced::{Committed, ToolCommit, ToolFence, ToolFenceOptions};
use crate::core::admin::{AdminOutcome, ADMIN_OPS_MAX};
use crate::core::request::WriteOp;
use crate::core::stream::StreamId;
use crate::core::types::{MetaState, SyncResult};
use crate::http::admin::AdminBody;
use crate::tsdb::block_id::BlockId;

/// How long the tool waits for the leader's answer to one request.
const LEADER_TIMEOUT: Duration = Duration::from_secs(600);

/// Who makes a tool's commits.
#[derive(Clone, Debug)]
pub enum CommitRoute {
    /// The tool, under its own hold of the fence.
    Fenced(ToolFenceOptions),
    /// The compactd at this base URL (`http://host:10902`), under its fence.
    Leader(String),
}

/// What the commits did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Commits made.
    pub committed: u64,
    /// Marks already there (left as they were).
    pub existed: u64,
    /// Who made them, and under which epoch (`holder@epoch`), one per request.
    pub writers: Vec<String>,
}

/// Makes `ops` (each with the stream of its block) by `route`, in order; stops at the first
/// failure, with an error saying how many were made before it.
pub async fn apply(
    store: Arc<dyn ObjectStore>,
    route: &CommitRoute,
    ops: Vec<(Option<StreamId>, WriteOp)>,
) -> anyhow::Result<CommitReport> {
    if ops.is_empty() {
        if let CommitRoute::Fenced(options) = route {
            ToolFence::check(&options.executor(store), options).await?;
        }
        return Ok(CommitReport::default());
    }
    match route {
        CommitRoute::Fenced(options) => apply_fenced(store, options, ops).await,
        CommitRoute::Leader(url) => apply_by_leader(url, ops).await,
    }
}

async fn apply_fenced(
    store: Arc<dyn ObjectStore>,
    options: &ToolFenceOptions,
    ops: Vec<(Option<StreamId>, WriteOp)>,
) -> anyhow::Result<CommitReport> {
    let exec = options.executor(store);
    let mut fence = ToolFence::acquire(&exec, options.clone()).await?;
    let mut report = CommitReport {
        writers: vec![format!("{}@0", fence.holder())],
        ..CommitReport::default()
    };
    let total = ops.len();
    for (_, op) in ops {
        let name = op.name();
        let commit = ToolCommit::from_op(op)?;
        match fence.commit(&exec, commit).await {
            Ok(Committed::Done) => report.committed += 1,
            Ok(Committed::MarkerExisted) => report.existed += 1,
            Err(e) => {
                let _ = fence.release(&exec).await;
                anyhow::bail!(
                    "{name} failed after {} of {total} commits: {e:#}",
                    report.committed + report.existed
                );
            }
        }
    }
    fence.release(&exec).await?;
    Ok(report)
}

async fn apply_by_leader(
    url: &str,
    ops: Vec<(Option<StreamId>, WriteOp)>,
) -> anyhow::Result<CommitReport> {
    let endpoint = format!("{}/api/v1/admin/commit", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(LEADER_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
    let mut by_stream: BTreeMap<Option<StreamId>, Vec<WriteOp>> = BTreeMap::new();
    for (stream, op) in ops {
        by_stream.entry(stream).or_default().push(op);
    }
    let mut report = CommitReport::default();
    for (stream, ops) in by_stream {
        for chunk in ops.chunks(ADMIN_OPS_MAX) {
            let body = AdminBody {
                stream,
                ops: chunk.to_vec(),
            };
            let outcome = post(&client, &endpoint, &body).await?;
            report.committed += outcome.committed;
            report.existed += outcome.existed;
            report
                .writers
                .push(format!("{url} (epoch {})", outcome.epoch));
            if let Some(error) = outcome.error {
                anyhow::bail!(
                    "{endpoint}: the request stopped after {} of its {} commits: {error}",
                    outcome.committed + outcome.existed,
                    chunk.len()
                );
            }
        }
    }
    Ok(report)
}

/// Sends one request; an answer that is not an [`AdminOutcome`] is an error with its text.
async fn post(
    client: &reqwest::Client,
    endpoint: &str,
    body: &AdminBody,
) -> anyhow::Result<AdminOutcome> {
    let bytes = serde_json::to_vec(body).expect("a request body serializes");
    let response = client
        .post(endpoint)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {endpoint}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| anyhow::anyhow!("POST {endpoint}: reading the answer: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|_| anyhow::anyhow!("POST {endpoint}: {status}: {}", text.trim()))
}

impl ToolCommit {
    /// The tool's form of a commit: a mark, a marker removal or a block deletion.
    pub fn from_op(op: WriteOp) -> anyhow::Result<ToolCommit> {
        Ok(match op {
            WriteOp::PutMeta { meta } => ToolCommit::PutMeta(meta),
            WriteOp::MarkDeletion(m) => ToolCommit::MarkDeletion(m),
            WriteOp::MarkNoCompact(m) => ToolCommit::MarkNoCompact(m),
            WriteOp::MarkNoDownsample(m) => ToolCommit::MarkNoDownsample(m),
            WriteOp::RemoveMarker { block, marker } => ToolCommit::RemoveMarker {
                block,
                name: marker,
            },
            WriteOp::DeleteBlock(id) => ToolCommit::DeleteBlock(id),
            other => anyhow::bail!("{} is not a commit a tool makes", other.name()),
        })
    }
}

/// Each commit with the stream of its block (none for a block without a readable meta).
pub fn with_streams(
    sync: &SyncResult,
    ops: Vec<WriteOp>,
    replica_labels: &[String],
) -> Vec<(Option<StreamId>, WriteOp)> {
    ops.into_iter()
        .map(|op| {
            let block = op_block(&op);
            let stream = block
                .and_then(|id| sync.blocks.get(&id))
                .and_then(|b| match &b.meta {
                    MetaState::Ok(m) => StreamId::of_block(m, replica_labels),
                    _ => None,
                });
            (stream, op)
        })
        .collect()
}

/// The block `op` is about, if any.
pub fn op_block(op: &WriteOp) -> Option<BlockId> {
    match op {
        WriteOp::MarkDeletion(m) => Some(m.id),
        WriteOp::MarkNoCompact(m) => Some(m.id),
        WriteOp::MarkNoDownsample(m) => Some(m.id),
        WriteOp::RemoveMarker { block, .. } => Some(*block),
        WriteOp::DeleteBlock(id) => Some(*id),
        _ => None,
    }
}

//! Fenced writes for the bucket tools (`mark`, `retention`, `cleanup`, `rewrite`,
//! `upload-blocks`, `replicate`, `verify --repair`): a tool takes part in compactd's fence
//! instead of writing beside it.
//!
//! [`ToolFence::acquire`] reads the bucket fence (`compactd/fence.json`) and every stream fence
//! (`compactd/fence/*.json`). If any holder other than this tool renewed one within the lease
//! TTL, a compactd writes to the bucket: the tool refuses, naming the holder and its epoch,
//! and writes nothing (the operator sends the request to the leader instead, which commits it
//! under its own fence). Otherwise the tool takes every fence, as a single instance does
//! (epoch 0, its own holder name), and before each commit ([`ToolFence::commit`]) it renews
//! them all unless a renewal was sent less than the commit window ago; a commit starts only
//! within the commit window after the renewal that guards it. A compactd that takes a fence
//! afterwards compare-and-swaps over the tool's record: the tool's next renewal conflicts and
//! it stops, while the newcomer's takeover delay (at least two op timeouts) lets a commit the
//! tool had started land before the newcomer's first. [`ToolFence::release`] marks the fences
//! released (renewed at 0), so a compactd can take them at once.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;

use crate::bucket::markers::{DeletionMark, NoCompactMark, NoDownsampleMark};
use crate::core::fence::{FenceRecord, FenceVersion, FENCE_PATH};
use crate::core::leader::stamp_writer;
use crate::core::types::{Epoch, StoreError};
use crate::driver::store::{with_timeout, CasOutcome, StoreExecutor};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// The folder of the stream fences.
const STREAM_FENCES_PREFIX: &str = "compactd/fence/";

/// How a tool holds the fence.
#[derive(Clone, Debug)]
pub struct ToolFenceOptions {
    /// The holder name written into the fence and stamped on what the tool commits.
    pub holder: String,
    /// A holder that renewed a fence less than this ago is alive (`--etcd.lease-ttl` of the
    /// compactd replicas).
    pub lease_ttl: Duration,
    /// Timeout of one store operation; also the commit window after a renewal.
    pub op_timeout: Duration,
    /// The store has conditional update (If-Match); without it (the local filesystem) the
    /// fence is compared, then overwritten, as a single instance does.
    pub conditional_update: bool,
}

impl ToolFenceOptions {
    /// Options with the holder `tools/<what>@<host>/<pid>`, compactd's default lease TTL (15s)
    /// and op timeout (5s).
    pub fn for_tool(what: &str) -> ToolFenceOptions {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        ToolFenceOptions {
            holder: format!("tools/{what}@{host}/{}", std::process::id()),
            lease_ttl: Duration::from_secs(15),
            op_timeout: Duration::from_secs(5),
            conditional_update: true,
        }
    }
}

impl ToolFenceOptions {
    /// An executor over `store` that stamps the markers it writes with this holder.
    pub fn executor(&self, store: std::sync::Arc<dyn object_store::ObjectStore>) -> StoreExecutor {
        StoreExecutor::new(store)
            .with_writer(self.holder.clone())
            .with_conditional_update(self.conditional_update)
    }
}

/// One commit a tool makes: what changes what readers of the bucket see.
#[derive(Clone, Debug)]
pub enum ToolCommit {
    /// Create `<block>/meta.json` (the block's other files are uploaded before). The meta is
    /// stamped with the tool's holder under epoch 0.
    PutMeta(Box<BlockMeta>),
    /// Create `<block>/meta.json` with exactly these bytes, not stamped: a replica of a block
    /// of another bucket (`replicate`), whose meta names the writer that made the block.
    CopyMeta {
        /// The block.
        block: BlockId,
        /// The source's meta.json, byte for byte.
        json: Vec<u8>,
    },
    /// Create a deletion mark (an existing one is left as it is).
    MarkDeletion(DeletionMark),
    /// Create a no-compact mark (an existing one is left as it is).
    MarkNoCompact(NoCompactMark),
    /// Create a no-downsample mark (an existing one is left as it is).
    MarkNoDownsample(NoDownsampleMark),
    /// Delete the marker file `name` of a block (absent: nothing to do).
    RemoveMarker {
        /// The block.
        block: BlockId,
        /// The marker's file name.
        name: String,
    },
    /// Delete a block in Thanos' order (meta.json first, the deletion mark last).
    DeleteBlock(BlockId),
}

/// What a commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// The change was made.
    Done,
    /// A marker was already there (left as it is).
    MarkerExisted,
}

/// Why a tool did not get the fence.
#[derive(Debug, thiserror::Error)]
pub enum FenceRefusal {
    /// A compactd renewed a fence within the lease TTL.
    #[error(
        "refusing to write: {path} is held by {holder:?} (epoch {epoch}), renewed {age} ago \
         (lease TTL {ttl}); a compactd is writing to this bucket. Send the request to its \
         leader instead (--leader.url), or stop it and wait one lease TTL"
    )]
    Live {
        /// The fence object.
        path: String,
        /// Its holder.
        holder: String,
        /// Its epoch.
        epoch: u64,
        /// How long ago it was renewed.
        age: String,
        /// The lease TTL the tool assumed.
        ttl: String,
    },
    /// A fence changed under the tool: another writer took it.
    #[error(
        "{path} was taken by {holder:?} (epoch {epoch}) while this tool held it: stopped \
         before the next commit"
    )]
    Taken {
        /// The fence object.
        path: String,
        /// Its new holder.
        holder: String,
        /// Its epoch.
        epoch: u64,
    },
    /// A fence changed between the tool's read and its write: someone is taking it now.
    #[error("{path} changed while this tool was taking it: another writer is starting")]
    Raced {
        /// The fence object.
        path: String,
    },
}

/// The fences a tool holds while it writes.
pub struct ToolFence {
    options: ToolFenceOptions,
    /// Every fence held: path, record, version.
    held: Vec<(String, FenceRecord, FenceVersion)>,
    /// A commit may start until then (the commit window after the last renewal's send).
    commit_until: Option<Instant>,
}

impl ToolFence {
    /// Takes the bucket fence and every stream fence, or refuses when a live holder has one.
    pub async fn acquire(
        exec: &StoreExecutor,
        options: ToolFenceOptions,
    ) -> anyhow::Result<ToolFence> {
        let mut paths = vec![FENCE_PATH.to_string()];
        paths.extend(stream_fences(exec, options.op_timeout).await?);
        let now = super::now_unix_ms();
        let mut found = Vec::new();
        for path in &paths {
            let read = with_timeout(options.op_timeout, path, exec.read_fence(path)).await?;
            if let Some((record, _)) = &read {
                refuse_if_live(path, record, now, &options)?;
            }
            found.push((path.clone(), read));
        }
        let mut fence = ToolFence {
            options,
            held: Vec::new(),
            commit_until: None,
        };
        let sent = Instant::now();
        for (path, read) in found {
            let (previous, version) = match read {
                Some((r, v)) => (Some(r), Some(v)),
                None => (None, None),
            };
            let record = FenceRecord::successor(
                previous.as_ref(),
                0,
                &fence.options.holder,
                super::now_unix_ms(),
            );
            match fence.cas(exec, &path, &record, version.as_ref()).await? {
                CasOutcome::Written(v) => fence.held.push((path, record, v)),
                CasOutcome::Conflict => {
                    // Give back what was taken, then report the race.
                    fence.release(exec).await?;
                    return Err(FenceRefusal::Raced { path }.into());
                }
            }
        }
        fence.commit_until = Some(sent + fence.options.op_timeout);
        Ok(fence)
    }

    /// Refuses, as [`ToolFence::acquire`] would, when a live holder has a fence; writes
    /// nothing (a tool with nothing to commit still tells the operator a compactd runs).
    pub async fn check(exec: &StoreExecutor, options: &ToolFenceOptions) -> anyhow::Result<()> {
        let mut paths = vec![FENCE_PATH.to_string()];
        paths.extend(stream_fences(exec, options.op_timeout).await?);
        let now = super::now_unix_ms();
        for path in &paths {
            let read = with_timeout(options.op_timeout, path, exec.read_fence(path)).await?;
            if let Some((record, _)) = &read {
                refuse_if_live(path, record, now, options)?;
            }
        }
        Ok(())
    }

    /// The holder name stamped on the tool's commits.
    pub fn holder(&self) -> &str {
        &self.options.holder
    }

    /// Makes one commit under the fence: renews the fences first unless the last renewal was
    /// sent less than the commit window ago, then starts the commit (with the op timeout).
    pub async fn commit(
        &mut self,
        exec: &StoreExecutor,
        commit: ToolCommit,
    ) -> anyhow::Result<Committed> {
        if self
            .commit_until
            .is_none_or(|until| Instant::now() >= until)
        {
            self.renew(exec).await?;
        }
        let timeout = self.options.op_timeout;
        let done = match commit {
            ToolCommit::PutMeta(mut meta) => {
                stamp_writer(&mut meta, Epoch(0), &self.options.holder);
                let what = format!("create {}/meta.json", meta.ulid);
                with_timeout(timeout, &what, exec.put_meta(&meta)).await?;
                true
            }
            ToolCommit::CopyMeta { block, json } => {
                let what = format!("create {block}/meta.json");
                with_timeout(timeout, &what, exec.put_meta_json(block, json)).await?;
                true
            }
            ToolCommit::MarkDeletion(m) => {
                with_timeout(timeout, "mark", exec.put_stamped_marker(&m, 0)).await?
            }
            ToolCommit::MarkNoCompact(m) => {
                with_timeout(timeout, "mark", exec.put_stamped_marker(&m, 0)).await?
            }
            ToolCommit::MarkNoDownsample(m) => {
                with_timeout(timeout, "mark", exec.put_stamped_marker(&m, 0)).await?
            }
            ToolCommit::RemoveMarker { block, name } => {
                let path = crate::bucket::layout::marker_path(block, &name);
                with_timeout(timeout, &path, exec.delete_object(&path)).await?;
                true
            }
            ToolCommit::DeleteBlock(id) => {
                let what = format!("delete block {id}");
                with_timeout(timeout, &what, exec.delete_block(id)).await?;
                true
            }
        };
        Ok(if done {
            Committed::Done
        } else {
            Committed::MarkerExisted
        })
    }

    /// Gives the fences back: each is written released (renewed at 0) if it still holds
    /// the tool's record.
    pub async fn release(mut self, exec: &StoreExecutor) -> anyhow::Result<()> {
        for (path, record, version) in std::mem::take(&mut self.held) {
            let released = FenceRecord {
                renewed_unix_ms: 0,
                ..FenceRecord::successor(Some(&record), 0, &self.options.holder, 0)
            };
            // A conflict means a compactd took it already: nothing to give back.
            self.cas(exec, &path, &released, Some(&version)).await?;
        }
        Ok(())
    }

    /// Renews every held fence; the commit window starts when the first renewal is sent.
    async fn renew(&mut self, exec: &StoreExecutor) -> anyhow::Result<()> {
        let sent = Instant::now();
        for i in 0..self.held.len() {
            let (path, record, version) = self.held[i].clone();
            let next = FenceRecord::successor(
                Some(&record),
                0,
                &self.options.holder,
                super::now_unix_ms(),
            );
            match self.cas(exec, &path, &next, Some(&version)).await? {
                CasOutcome::Written(v) => self.held[i] = (path, next, v),
                CasOutcome::Conflict => {
                    let now = with_timeout(self.options.op_timeout, &path, exec.read_fence(&path));
                    let (holder, epoch) = match now.await? {
                        Some((r, _)) => (r.holder, r.epoch),
                        None => ("nobody (deleted)".to_string(), 0),
                    };
                    self.held.remove(i);
                    return Err(FenceRefusal::Taken {
                        path,
                        holder,
                        epoch,
                    }
                    .into());
                }
            }
        }
        self.commit_until = Some(sent + self.options.op_timeout);
        Ok(())
    }

    async fn cas(
        &self,
        exec: &StoreExecutor,
        path: &str,
        record: &FenceRecord,
        expected: Option<&FenceVersion>,
    ) -> Result<CasOutcome, StoreError> {
        let what = format!("write {path}");
        with_timeout(
            self.options.op_timeout,
            &what,
            exec.cas_fence(path, record, expected),
        )
        .await
    }
}

/// Refuses when `record` was renewed by another holder within the lease TTL.
fn refuse_if_live(
    path: &str,
    record: &FenceRecord,
    now_ms: i64,
    options: &ToolFenceOptions,
) -> Result<(), FenceRefusal> {
    let age_ms = now_ms - record.renewed_unix_ms;
    let live = record.renewed_unix_ms > 0
        && record.holder != options.holder
        && age_ms < options.lease_ttl.as_millis() as i64;
    if !live {
        return Ok(());
    }
    Err(FenceRefusal::Live {
        path: path.to_string(),
        holder: record.holder.clone(),
        epoch: record.epoch,
        age: crate::duration::format_duration_ms(age_ms.max(0) as u64),
        ttl: crate::duration::format_duration_ms(options.lease_ttl.as_millis() as u64),
    })
}

/// The stream fences in the bucket.
async fn stream_fences(exec: &StoreExecutor, timeout: Duration) -> anyhow::Result<Vec<String>> {
    let prefix = ObjectPath::from(STREAM_FENCES_PREFIX);
    let list = exec.store().list(Some(&prefix)).try_collect::<Vec<_>>();
    let listed = tokio::time::timeout(timeout * 4, list)
        .await
        .map_err(|_| anyhow::anyhow!("list {STREAM_FENCES_PREFIX}: timed out"))?
        .map_err(|e| anyhow::anyhow!("list {STREAM_FENCES_PREFIX}: {e}"))?;
    let mut paths: Vec<String> = listed
        .into_iter()
        .map(|o| o.location.to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    use super::*;
    use crate::bucket::markers::{NoCompactMark, MARKER_VERSION};

    fn options(holder: &str) -> ToolFenceOptions {
        ToolFenceOptions {
            holder: holder.into(),
            ..ToolFenceOptions::for_tool("test")
        }
    }

    fn mark(n: u128) -> ToolCommit {
        ToolCommit::MarkNoCompact(NoCompactMark {
            id: BlockId::from_parts(1, n),
            version: MARKER_VERSION,
            details: "test".into(),
            no_compact_time: 1,
            reason: "manual".into(),
        })
    }

    async fn fence(exec: &StoreExecutor) -> FenceRecord {
        exec.read_fence(FENCE_PATH)
            .await
            .expect("read")
            .expect("a fence")
            .0
    }

    /// A live holder refuses the tool (nothing written); a holder that took the fence while
    /// the tool held it stops the tool before its next commit; a release leaves the fence
    /// renewed at 0.
    #[tokio::test]
    async fn a_tool_refuses_a_live_holder_stops_when_taken_and_releases() {
        let exec = StoreExecutor::new(Arc::new(InMemory::new()));
        let mut tool = ToolFence::acquire(&exec, options("tool"))
            .await
            .expect("free");
        assert_eq!(
            tool.commit(&exec, mark(1)).await.expect("commit"),
            Committed::Done
        );
        let held = fence(&exec).await;
        assert_eq!((held.holder.as_str(), held.epoch), ("tool", 0));

        let refused = ToolFence::acquire(&exec, options("other")).await;
        let error = refused.err().expect("the tool's fence is live").to_string();
        assert!(error.contains("held by \"tool\""), "{error}");

        // A compactd takes the fence over the tool's record.
        let (record, version) = exec
            .read_fence(FENCE_PATH)
            .await
            .expect("read")
            .expect("fence");
        let taken = FenceRecord::successor(Some(&record), 7, "r1", crate::tools::now_unix_ms());
        let cas = exec.cas_fence(FENCE_PATH, &taken, Some(&version)).await;
        assert!(matches!(cas, Ok(CasOutcome::Written(_))));
        tool.commit_until = None;
        let error = tool
            .commit(&exec, mark(2))
            .await
            .expect_err("taken")
            .to_string();
        assert!(error.contains("taken by \"r1\" (epoch 7)"), "{error}");
        let second = crate::bucket::layout::marker_path(BlockId::from_parts(1, 2), NO_COMPACT);
        let got = exec
            .store()
            .get(&object_store::path::Path::from(second))
            .await;
        assert!(got.is_err(), "the commit after the takeover was written");
        tool.release(&exec).await.expect("release");
        assert_eq!(
            fence(&exec).await,
            taken,
            "the release wrote over the new holder"
        );

        let exec = StoreExecutor::new(Arc::new(InMemory::new()));
        let tool = ToolFence::acquire(&exec, options("tool"))
            .await
            .expect("free");
        tool.release(&exec).await.expect("release");
        assert_eq!(fence(&exec).await.renewed_unix_ms, 0);
        ToolFence::acquire(&exec, options("other"))
            .await
            .expect("a released fence is free");
    }

    const NO_COMPACT: &str = crate::bucket::markers::NO_COMPACT_MARK_FILENAME;
}

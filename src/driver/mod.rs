//! The tokio driver: runs the core's outputs on the adapters and feeds the results back.
//!
//! One task owns the [`Node`] and is the only caller of `step`; store requests and compaction
//! jobs run as tasks of their own and report through a channel. The driver reads the clocks
//! (monotonic and wall) and stamps each step with them; it refuses to run a mutation whose
//! permit has expired on its own monotonic clock. This module and the adapters are the only
//! places that do I/O, read clocks or spawn tasks.

pub mod jobs;
mod report;
pub mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::core::node::Node;
use crate::core::types::{
    CompactJob, Input, JobId, Millis, Now, Output, StoreOp, StoreRequest, StoreResult,
};
use crate::tsdb::compact::CompactOptions;
pub use report::Reporter;
use store::StoreExecutor;

/// What the driver needs besides the node.
pub struct DriverConfig {
    /// The bucket.
    pub store: Arc<StoreExecutor>,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// Threads per compaction.
    pub compact_threads: usize,
    /// Timeout of metadata operations (sync, metas, markers, deletes).
    pub op_timeout: Duration,
    /// Metrics and logs.
    pub reporter: Reporter,
}

/// The clocks of this process.
struct Clock {
    start: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Now {
            mono: Millis(self.start.elapsed().as_millis() as i64),
            wall: Millis(wall),
        }
    }

    fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at.0.max(0) as u64)
    }
}

/// Runs `node` until it exits; returns the process exit code. `shutdown` resolves on
/// SIGTERM/SIGINT.
pub async fn run(
    mut node: Node,
    cfg: DriverConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> i32 {
    let clock = Clock {
        start: Instant::now(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let mut timer: Option<Instant> = None;
    let mut next: Option<Input> = Some(Input::Start);
    let mut outputs_dirs: BTreeMap<JobId, (String, crate::tsdb::block_id::BlockId)> =
        BTreeMap::new();
    tokio::pin!(shutdown);
    let mut shutting_down = false;
    loop {
        let input = match next.take() {
            Some(i) => i,
            None => {
                let sleep = timer.map(tokio::time::Instant::from_std);
                tokio::select! {
                    biased;
                    () = &mut shutdown, if !shutting_down => { shutting_down = true; Input::Shutdown }
                    Some(i) = rx.recv() => i,
                    () = async { tokio::time::sleep_until(sleep.expect("guarded")).await }, if sleep.is_some() => { timer = None; Input::Tick }
                }
            }
        };
        for output in node.step(clock.now(), input) {
            match output {
                Output::Store(req) => spawn_store(&cfg, &clock, req, &outputs_dirs, tx.clone()),
                Output::Compact(job) => {
                    outputs_dirs.insert(job.job, (job.group.clone(), job.output));
                    spawn_job(&cfg, job, tx.clone());
                }
                Output::Timer(at) => timer = Some(clock.instant(at)),
                Output::Event(e) => cfg.reporter.event(&e),
                Output::Exit(code) => return code,
            }
        }
    }
}

fn spawn_store(
    cfg: &DriverConfig,
    clock: &Clock,
    req: StoreRequest,
    outputs: &BTreeMap<JobId, (String, crate::tsdb::block_id::BlockId)>,
    tx: mpsc::UnboundedSender<Input>,
) {
    if let Some(permit) = req.permit {
        if clock.now().mono > permit.valid_until {
            cfg.reporter.permit_expired(&req.op);
            let _ = tx.send(Input::Store(
                req.id,
                StoreResult::Failed(format!("{}: write permit expired; not sent", req.op.name())),
            ));
            return;
        }
    }
    let store = Arc::clone(&cfg.store);
    let timeout = cfg.op_timeout;
    let local = match &req.op {
        StoreOp::UploadFiles { job, block } => outputs
            .get(job)
            .map(|(g, _)| jobs::output_dir(&cfg.data_dir, g, *block)),
        StoreOp::PutMeta { meta } => outputs
            .values()
            .find(|(_, b)| *b == meta.ulid)
            .map(|(g, b)| jobs::output_dir(&cfg.data_dir, g, *b)),
        _ => None,
    };
    let reporter = cfg.reporter.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let result = execute(&store, &req.op, local.clone(), timeout).await;
        reporter.store_op(&req.op, started.elapsed(), result.as_ref().err());
        let result = match result {
            Ok(r) => r,
            Err(e) => StoreResult::Failed(e),
        };
        if matches!(req.op, StoreOp::PutMeta { .. }) && result == StoreResult::Done {
            if let Some(dir) = local {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
        }
        let _ = tx.send(Input::Store(req.id, result));
    });
}

async fn execute(
    store: &StoreExecutor,
    op: &StoreOp,
    local: Option<PathBuf>,
    timeout: Duration,
) -> Result<StoreResult, String> {
    use store::with_timeout;
    match op {
        StoreOp::Sync => Ok(StoreResult::Synced(
            with_timeout(timeout * 10, "sync", store.sync()).await?,
        )),
        StoreOp::UploadFiles { block, .. } => {
            let dir = local.ok_or_else(|| format!("no local copy of block {block} to upload"))?;
            store
                .upload_files(*block, &dir)
                .await
                .map(|()| StoreResult::Done)
        }
        StoreOp::PutMeta { meta } => with_timeout(timeout, "put meta.json", store.put_meta(meta))
            .await
            .map(|()| StoreResult::Done),
        StoreOp::MarkDeletion(m) => with_timeout(timeout, "deletion mark", store.put_marker(m))
            .await
            .map(|_| StoreResult::Done),
        StoreOp::MarkNoCompact(m) => with_timeout(timeout, "no-compact mark", store.put_marker(m))
            .await
            .map(|_| StoreResult::Done),
        StoreOp::DeleteBlock(id) => {
            with_timeout(timeout * 10, "delete block", store.delete_block(*id))
                .await
                .map(|()| StoreResult::Done)
        }
    }
}

fn spawn_job(cfg: &DriverConfig, job: CompactJob, tx: mpsc::UnboundedSender<Input>) {
    let store = Arc::clone(cfg.store.store());
    let data_dir = cfg.data_dir.clone();
    let threads = cfg.compact_threads;
    let reporter = cfg.reporter.clone();
    tokio::spawn(async move {
        let id = job.job;
        let started = Instant::now();
        reporter.compaction_started(&job);
        let series_written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let opts = CompactOptions {
            threads,
            series_written: Some(Arc::clone(&series_written)),
            ..CompactOptions::default()
        };
        let work = jobs::run_job(store, data_dir, job.clone(), opts);
        tokio::pin!(work);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + report::PROGRESS_LOG_INTERVAL,
            report::PROGRESS_LOG_INTERVAL,
        );
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = ticker.tick() => reporter.compaction_progress(&job, started.elapsed(), series_written.load(std::sync::atomic::Ordering::Relaxed)),
            }
        };
        let shown = result
            .as_ref()
            .map(|b| b.as_ref().map(|b| &b.meta))
            .map_err(|e| &e.message);
        reporter.compaction_finished(&job, started.elapsed(), shown);
        let _ = tx.send(Input::Compacted(id, Box::new(result)));
    });
}

/// Removes the compaction cache of an earlier process (`--data-dir` is a cache).
pub fn reset_data_dir(data_dir: &std::path::Path) -> std::io::Result<()> {
    let compact = data_dir.join("compact");
    match std::fs::remove_dir_all(&compact) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(&compact)
}

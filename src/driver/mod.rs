//! The tokio driver: runs the core's outputs on the adapters and feeds the results back.
//!
//! One task owns the [`Node`] and is the only caller of `step`; store requests and compaction
//! jobs run as tasks of their own and report through a channel. The driver reads the clocks
//! (monotonic and wall) and stamps each step with them. Every store request passes the core's
//! [`Admission`] check (the one the simulation runs too) before it is queued, and its permit
//! is checked again where its task starts; a running upload or delete is aborted when the
//! node's permit lapses. This module and the adapters are the only places that do I/O, read
//! clocks or spawn tasks.

pub mod jobs;
pub mod ranged;
mod record;
mod report;
pub mod staged;
pub mod store;
pub mod streamed;
pub mod unit_gauges;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::core::admin::{AdminId, AdminOutcome};
use crate::core::admission::{permit_live, Admission, Refusal};
use crate::core::coord::{CoordError, CoordErrorKind, CoordRequest, CoordResult};
use crate::core::fence::fence_path;
use crate::core::node::Node;
use crate::core::types::{
    CompactJob, Epoch, Event, Input, JobError, JobId, JobKind, LeaderInfo, Millis, Now, Output,
    Permit, ReadOp, StoreError, StoreErrorKind, StoreRequest, StoreResult, WriteOp,
};
use crate::election::etcd::EtcdCoordinator;
use crate::http::{HttpState, StreamStatus, StreamsStatus};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::compact::{CompactOptions, DedupFunc};
use crate::web::board::{Board, JobProgress, Loaded};
pub use record::Recorder;
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
    /// `--deduplication.func`.
    pub dedup: DedupFunc,
    /// Timeout of metadata operations (metas, markers, the fence, deletes).
    pub op_timeout: Duration,
    /// etcd, when leadership is elected; `None` for a single instance.
    pub coordinator: Option<Arc<EtcdCoordinator>>,
    /// Timeout of coordinator requests (all but watches).
    pub coord_timeout: Duration,
    /// Metrics and logs.
    pub reporter: Reporter,
    /// Where `/api/v1/leader` reads the known leader.
    pub http: Option<Arc<HttpState>>,
    /// `--trace.record`: where every step of the node is recorded.
    pub trace: Option<Recorder>,
    /// `--hash-func`: hashes of the files of new blocks in their meta.json.
    pub hash_func: jobs::HashFunc,
    /// `--debug.accept-malformed-index`: compact and downsample blocks whose series have
    /// unsorted label names.
    pub accept_malformed_index: bool,
    /// How many jobs of each kind may run at once in this process.
    pub job_slots: JobSlots,
    /// How jobs read their inputs and write their output.
    pub job_io: JobIo,
}

/// How compaction and downsampling jobs reach the bucket.
#[derive(Clone, Debug)]
pub enum JobIo {
    /// Read the inputs where they are and write the output to the bucket as it is produced
    /// (the default; `docs/streaming.md`).
    Stream(streamed::InputSource),
    /// `--compact.download-blocks`: download every input into `--data-dir`, compact there,
    /// upload the result (Thanos' way).
    Download,
}

/// The process-wide bound on running jobs: `--compact.concurrency` compactions and
/// `--downsample.concurrency` downsamplings at once. A cycle already keeps its own jobs within
/// these; with `--ownership=stream` each held stream runs a cycle of its own, and these slots
/// keep the process within the flags however many streams it holds (a job waits for a slot
/// before it downloads anything).
#[derive(Clone, Debug)]
pub struct JobSlots {
    compact: Arc<tokio::sync::Semaphore>,
    downsample: Arc<tokio::sync::Semaphore>,
}

impl JobSlots {
    /// `compact` compactions and `downsample` downsamplings at once (each at least one).
    pub fn new(compact: usize, downsample: usize) -> JobSlots {
        JobSlots {
            compact: Arc::new(tokio::sync::Semaphore::new(compact.max(1))),
            downsample: Arc::new(tokio::sync::Semaphore::new(downsample.max(1))),
        }
    }

    /// Waits for a slot for a job of `kind`; the slot is free again when the permit drops.
    async fn acquire(&self, kind: &JobKind) -> tokio::sync::OwnedSemaphorePermit {
        let slots = match kind {
            JobKind::Compact => &self.compact,
            JobKind::Downsample { .. } => &self.downsample,
        };
        Arc::clone(slots)
            .acquire_owned()
            .await
            .expect("the job semaphores are never closed")
    }
}

/// The clocks of this process.
#[derive(Clone, Copy)]
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

/// What the driver remembers about work in flight, to check and clean up after it.
#[derive(Default)]
struct Books {
    /// Running compaction jobs: their group and output block.
    jobs: BTreeMap<JobId, (String, BlockId)>,
    /// Jobs whose result has not come back yet.
    running_jobs: usize,
    /// The admission check of store requests, and the uploads it follows.
    admission: Admission,
    /// Streamed jobs' blocks waiting for their upload step.
    staged: streamed::Staged,
}

impl Books {
    /// Notes what an input tells about work in flight.
    fn on_input(&mut self, input: &Input, data_dir: &Path) {
        self.admission.on_input(input);
        let Input::Compacted(job, result) = input else {
            return;
        };
        self.running_jobs = self.running_jobs.saturating_sub(1);
        if result.is_err() {
            if let Some((group, output)) = self.jobs.remove(job) {
                let _ = std::fs::remove_dir_all(jobs::job_dir(data_dir, &group, output));
            }
        }
    }

    /// The local job directory of `block`, if a job of this process made it.
    fn job_dir_of(&self, data_dir: &Path, block: BlockId) -> Option<PathBuf> {
        self.jobs
            .values()
            .find(|(_, b)| *b == block)
            .map(|(g, b)| jobs::job_dir(data_dir, g, *b))
    }
}

/// Runs `node` until it exits; returns the process exit code. `shutdown` resolves on
/// SIGTERM/SIGINT.
pub async fn run(
    mut node: Node,
    mut cfg: DriverConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> i32 {
    let clock = Clock {
        start: Instant::now(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let mut timer: Option<Instant> = None;
    let mut next: Option<Input> = Some(Input::Start);
    let mut books = Books::default();
    let mut recorder = cfg.trace.take();
    tokio::pin!(shutdown);
    let mut shutting_down = false;
    let mut published = None;
    let mut published_streams = StreamsStatus::default();
    // The node's current write permit, republished after every step: running uploads and
    // deletes follow it (renewals extend them, a lapse or a new term aborts them).
    let (permit_tx, permit_rx) = tokio::sync::watch::channel(Vec::new());
    if let Some(http) = &cfg.http {
        http.admin.connect(tx.clone());
    }
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
        books.on_input(&input, &cfg.data_dir);
        let synced = cfg
            .http
            .as_ref()
            .is_some_and(|h| board_input(&h.board, &input, clock));
        let outputs = record::step(&mut node, clock.now(), input, &mut recorder);
        permit_tx.send_replace(node.permits(clock.now()));
        if let Some(http) = &cfg.http {
            publish_leader(http, node.known_leader(), &mut published);
            publish_streams(http, &node, &mut published_streams);
            if synced {
                let units = node.views().cloned().collect();
                http.board.set_loaded(Loaded { units }, clock.now().wall.0);
            }
        }
        for output in outputs {
            match output {
                Output::Store(req) => {
                    let permits = permit_rx.clone();
                    spawn_store(&cfg, clock, permits, req, &mut books, tx.clone())
                }
                Output::Coord(req) => spawn_coord(&cfg, req, tx.clone()),
                Output::Compact(job) => {
                    books.jobs.insert(job.job, (job.group.clone(), job.output));
                    books.running_jobs += 1;
                    let gate = part_gate(permit_rx.clone(), clock);
                    spawn_job(&cfg, job, books.staged.clone(), gate, tx.clone());
                }
                Output::Timer(at) => timer = Some(clock.instant(at)),
                Output::Event(e) => {
                    cfg.reporter.event(&e);
                    if let Some(http) = &cfg.http {
                        http.board.on_event(&e, clock.now().wall.0);
                    }
                    if let (Some((id, outcome)), Some(http)) = (admin_done(&e), &cfg.http) {
                        http.admin.answer(id, outcome.clone());
                    }
                    let iteration_over = matches!(e, Event::IterationDone | Event::Retrying(_));
                    if iteration_over && books.running_jobs == 0 {
                        // Nothing runs: whatever is left in the cache (failed uploads) is garbage.
                        if matches!(cfg.job_io, JobIo::Download) {
                            if let Err(err) = reset_data_dir(&cfg.data_dir) {
                                tracing::warn!(error = %err, "could not empty the --data-dir cache");
                            }
                        }
                        books.jobs.clear();
                        // Staged blocks nobody uploads any more: their uploads are aborted.
                        books.staged.lock().expect("not poisoned").clear();
                    }
                }
                Output::Exit(code) => return code,
            }
        }
    }
}

/// Shows what `input` tells the block viewer: a sync's result is the global view (returns
/// true: the loaded view changes with it), a job's result ends the job.
fn board_input(board: &Board, input: &Input, clock: Clock) -> bool {
    match input {
        Input::Store(_, StoreResult::Synced(sync)) => {
            board.set_global(sync.clone(), clock.now().wall.0);
            true
        }
        Input::Compacted(job, _) => {
            board.job_ended(*job);
            false
        }
        _ => false,
    }
}

/// The answer to an operator request, if `e` is one (a stream seat's comes wrapped).
fn admin_done(e: &Event) -> Option<(AdminId, &AdminOutcome)> {
    match e {
        Event::AdminDone { id, outcome } => Some((*id, outcome)),
        Event::Stream { event, .. } => admin_done(event),
        _ => None,
    }
}

/// Publishes the known leader at `/api/v1/leader` when it changed.
fn publish_leader(
    http: &HttpState,
    known: Option<&LeaderInfo>,
    published: &mut Option<LeaderInfo>,
) {
    if known == published.as_ref() {
        return;
    }
    *published = known.cloned();
    match known {
        Some(l) => http.set_leader(
            l.node.clone(),
            l.epoch,
            crate::timefmt::format_rfc3339_ms(l.since_unix_ms),
        ),
        None => http.clear_leader(),
    }
}

/// Publishes per-stream ownership on `/api/v1/streams` and `compactd_owned_streams` when it
/// changed since `published`.
fn publish_streams(http: &HttpState, node: &Node, published: &mut StreamsStatus) {
    let held = node.owned_streams();
    let assignment = node.assignment();
    let mut streams: Vec<_> = assignment.keys().chain(held.keys()).collect();
    streams.sort();
    streams.dedup();
    let status = StreamsStatus {
        streams: streams
            .into_iter()
            .map(|stream| StreamStatus {
                stream: stream.to_string(),
                assigned: assignment.get(stream).cloned().unwrap_or_default(),
                held: held.contains_key(stream),
                epoch: held.get(stream).copied().unwrap_or(0),
            })
            .collect(),
    };
    if status == *published {
        return;
    }
    http.metrics.ha.owned_streams.set(held.len() as i64);
    http.set_streams(status.clone());
    *published = status;
}

/// Spawns `work`, which reports its own result; if it panics, `on_panic` is reported instead,
/// so the core never waits for a result that cannot come.
fn spawn_reporting(
    work: impl std::future::Future<Output = ()> + Send + 'static,
    tx: mpsc::UnboundedSender<Input>,
    on_panic: Input,
) {
    let handle = tokio::spawn(work);
    tokio::spawn(async move {
        if handle.await.is_err() {
            tracing::error!("a driver task panicked; reporting it as a failure");
            let _ = tx.send(on_panic);
        }
    });
}

fn spawn_store(
    cfg: &DriverConfig,
    clock: Clock,
    permits: tokio::sync::watch::Receiver<Vec<Permit>>,
    req: StoreRequest,
    books: &mut Books,
    tx: mpsc::UnboundedSender<Input>,
) {
    let id = req.id();
    if let Err(refusal) = books.admission.admit(&req, clock.now().mono) {
        if refusal == Refusal::PermitExpired {
            cfg.reporter.permit_expired(&req);
        }
        let _ = tx.send(Input::Store(id, StoreResult::Failed(refusal.into())));
        return;
    }
    let staged = match req.write_op() {
        Some(WriteOp::UploadFiles { block, .. }) => {
            books.staged.lock().expect("not poisoned").remove(block)
        }
        _ => None,
    };
    let local = match req.write_op() {
        Some(WriteOp::UploadFiles { block, .. }) => books
            .job_dir_of(&cfg.data_dir, *block)
            .map(|d| d.join(block.to_string())),
        Some(WriteOp::PutMeta { meta }) => books.job_dir_of(&cfg.data_dir, meta.ulid),
        _ => None,
    };
    let local = match staged {
        Some(block) => Some(Files::Staged(block)),
        None => local.map(Files::Local),
    };
    let store = Arc::clone(&cfg.store);
    let timeout = cfg.op_timeout;
    let reporter = cfg.reporter.clone();
    let on_panic = Input::Store(
        id,
        StoreResult::Failed(StoreError::other(format!(
            "{}: internal error (task panicked)",
            req.name()
        ))),
    );
    let panic_tx = tx.clone();
    let work = async move {
        let started = Instant::now();
        // Checked again where the request starts: the task may start late.
        if let Err(refusal) = permit_live(&req, clock.now().mono) {
            reporter.permit_expired(&req);
            let _ = tx.send(Input::Store(id, StoreResult::Failed(refusal.into())));
            return;
        }
        let lapse = req
            .permit()
            .map(|p| Box::pin(permit_lapsed(permits, p.epoch, clock)) as Lapse);
        let dir = match &local {
            Some(Files::Local(dir)) => Some(dir.clone()),
            _ => None,
        };
        let result = execute(&store, &req, local, timeout, lapse).await;
        reporter.store_op(&req, started.elapsed(), result.as_ref().err());
        let result = result.unwrap_or_else(StoreResult::Failed);
        let committed = matches!(req.write_op(), Some(WriteOp::PutMeta { .. }));
        if let (true, StoreResult::Done, Some(dir)) = (committed, &result, &dir) {
            // The block is visible: its local working directory is no longer needed.
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        let _ = tx.send(Input::Store(id, result));
    };
    spawn_reporting(work, panic_tx, on_panic);
}

/// Resolves when the permit of a running mutation lapses.
type Lapse = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Resolves when this node's write permit for `epoch` lapses. It follows the permit the
/// driver republishes after every step, so renewals extend it; a new term or no term ends it.
async fn permit_lapsed(
    mut permits: tokio::sync::watch::Receiver<Vec<Permit>>,
    epoch: Epoch,
    clock: Clock,
) {
    loop {
        let current = permits
            .borrow_and_update()
            .iter()
            .find(|p| p.epoch == epoch)
            .copied();
        let Some(p) = current else {
            return;
        };
        if clock.now().mono >= p.valid_until {
            return;
        }
        if p.valid_until == Millis::MAX {
            if permits.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            continue;
        }
        let at = tokio::time::Instant::from_std(clock.instant(p.valid_until));
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            changed = permits.changed() => if changed.is_err() { std::future::pending::<()>().await },
        }
    }
}

/// Runs `work` unless `lapse` resolves first (then the error names `what`).
async fn until_lapse<T>(
    lapse: Option<Lapse>,
    what: String,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match lapse {
        None => work.await,
        Some(lapse) => tokio::select! {
            r = work => r,
            () = lapse => Err(StoreError::new(
                StoreErrorKind::PermitExpired,
                format!("{what} aborted: the write permit lapsed"),
            )),
        },
    }
}

/// The files a mutation needs besides the bucket.
enum Files {
    /// A local job directory (downloaded jobs).
    Local(PathBuf),
    /// A streamed job's staged block.
    Staged(staged::StagedBlock),
}

async fn execute(
    store: &StoreExecutor,
    req: &StoreRequest,
    local: Option<Files>,
    timeout: Duration,
    lapse: Option<Lapse>,
) -> Result<StoreResult, StoreError> {
    match req {
        StoreRequest::Read { op, .. } => read(store, op, timeout).await,
        StoreRequest::Write { op, permit, .. } => {
            write(store, op, permit.epoch.0, local, timeout, lapse).await
        }
    }
}

async fn read(
    store: &StoreExecutor,
    op: &ReadOp,
    timeout: Duration,
) -> Result<StoreResult, StoreError> {
    match op {
        ReadOp::ReadFence | ReadOp::ReadStreamFence { .. } => {
            let path = op.fence_path().expect("a fence read names its object");
            let what = format!("read {path}");
            store::with_timeout(timeout, &what, store.read_fence(&path))
                .await
                .map(StoreResult::Fence)
        }
        // No total deadline: a sync lists the whole bucket, which may take long on a large
        // one; each of its requests has the client's own timeouts.
        ReadOp::Sync => Ok(StoreResult::Synced(store.sync().await?)),
    }
}

async fn write(
    store: &StoreExecutor,
    op: &WriteOp,
    epoch: u64,
    local: Option<Files>,
    timeout: Duration,
    lapse: Option<Lapse>,
) -> Result<StoreResult, StoreError> {
    use store::with_timeout;
    match op {
        WriteOp::CasFence {
            stream,
            record,
            expected,
        } => {
            let path = fence_path(*stream);
            let cas = store.cas_fence(&path, record, expected.as_ref());
            with_timeout(timeout, &format!("write {path}"), cas)
                .await
                .map(|o| match o {
                    store::CasOutcome::Written(v) => StoreResult::FenceWritten(v),
                    store::CasOutcome::Conflict => StoreResult::FenceConflict,
                })
        }
        WriteOp::UploadFiles { block, .. } => {
            let what = format!("upload of block {block}");
            match local {
                Some(Files::Staged(staged)) => until_lapse(lapse, what, staged.commit(store)).await,
                Some(Files::Local(dir)) => {
                    until_lapse(lapse, what, store.upload_files(*block, &dir)).await
                }
                None => Err(StoreError::new(
                    StoreErrorKind::NotFound,
                    format!("no staged or local copy of block {block} to upload"),
                )),
            }
            .map(|()| StoreResult::Done)
        }
        WriteOp::AdoptMeta { meta } => {
            with_timeout(timeout * 2, "adopt meta.json", store.adopt_meta(meta))
                .await
                .map(|()| StoreResult::Done)
        }
        WriteOp::PutMeta { meta } => with_timeout(timeout, "put meta.json", store.put_meta(meta))
            .await
            .map(|()| StoreResult::Done),
        WriteOp::MarkDeletion(m) => {
            with_timeout(timeout, "deletion mark", store.put_stamped_marker(m, epoch))
                .await
                .map(|created| marked(created, m))
        }
        WriteOp::MarkNoCompact(m) => with_timeout(
            timeout,
            "no-compact mark",
            store.put_stamped_marker(m, epoch),
        )
        .await
        .map(|created| marked(created, m)),
        WriteOp::MarkNoDownsample(m) => with_timeout(
            timeout,
            "no-downsample mark",
            store.put_stamped_marker(m, epoch),
        )
        .await
        .map(|created| marked(created, m)),
        WriteOp::RemoveMarker { block, marker } => {
            let path = crate::bucket::layout::marker_path(*block, marker);
            with_timeout(timeout, "remove marker", store.delete_object(&path))
                .await
                .map(|()| StoreResult::Done)
        }
        WriteOp::DeleteBlock(id) => {
            let delete = with_timeout(timeout * 10, "delete block", store.delete_block(*id));
            until_lapse(lapse, format!("delete of block {id}"), delete)
                .await
                .map(|()| StoreResult::Done)
        }
    }
}

/// The result of a marker write; warns, as Thanos does, when the marker was already there
/// (it is left as it is: one that cannot be read keeps the block from being deleted).
fn marked<M: crate::bucket::markers::Marker>(created: bool, m: &M) -> StoreResult {
    if created {
        return StoreResult::Done;
    }
    tracing::warn!(
        block = %m.block(),
        marker = M::FILENAME,
        "requested to mark, but the marker already exists; left as it is; investigate"
    );
    StoreResult::MarkerExisted
}

fn spawn_coord(cfg: &DriverConfig, req: CoordRequest, tx: mpsc::UnboundedSender<Input>) {
    let Some(coordinator) = cfg.coordinator.clone() else {
        let error = CoordError::new(CoordErrorKind::Other, "no coordinator configured");
        let _ = tx.send(Input::Coord(req.id, CoordResult::Failed(error)));
        return;
    };
    let timeout = cfg.coord_timeout;
    let what = format!("{}: internal error (task panicked)", req.op.name());
    let on_panic = Input::Coord(
        req.id,
        CoordResult::Failed(CoordError::new(CoordErrorKind::Other, what)),
    );
    let panic_tx = tx.clone();
    let work = async move {
        let result = coordinator.execute(&req.op, timeout).await;
        let _ = tx.send(Input::Coord(req.id, result));
    };
    spawn_reporting(work, panic_tx, on_panic);
}

/// The gate of a streaming job's part uploads: open while one of the permits the node held
/// when the job was issued is still published and unexpired by this process' clock (a
/// process that wakes from a pause past its deadline is refused before the driver has even
/// stepped the node).
fn part_gate(permits: tokio::sync::watch::Receiver<Vec<Permit>>, clock: Clock) -> staged::PartGate {
    let epochs: Vec<Epoch> = permits.borrow().iter().map(|p| p.epoch).collect();
    Arc::new(move || {
        let now = clock.now().mono;
        let live = permits
            .borrow()
            .iter()
            .any(|p| epochs.contains(&p.epoch) && p.valid_until > now);
        live.then_some(())
            .ok_or_else(|| "the write permit the job started under has lapsed".to_string())
    })
}

fn spawn_job(
    cfg: &DriverConfig,
    job: CompactJob,
    staged: streamed::Staged,
    gate: staged::PartGate,
    tx: mpsc::UnboundedSender<Input>,
) {
    let store = Arc::clone(cfg.store.store());
    let transfers = cfg.store.transfers();
    let hash = cfg.hash_func;
    let data_dir = cfg.data_dir.clone();
    let threads = cfg.compact_threads;
    let dedup = cfg.dedup;
    let accept_malformed_index = cfg.accept_malformed_index;
    let reporter = cfg.reporter.clone();
    let slots = cfg.job_slots.clone();
    let job_io = cfg.job_io.clone();
    let board = cfg.http.as_ref().map(|h| Arc::clone(&h.board));
    let id = job.job;
    let on_panic = Input::Compacted(
        id,
        Box::new(Err(JobError::internal(
            "internal error (compaction task panicked)",
        ))),
    );
    let panic_tx = tx.clone();
    let work = async move {
        let _slot = slots.acquire(&job.kind).await;
        // Shown as running from here: a job waiting for a slot is not running yet.
        let progress = match &board {
            Some(board) => board.job_started(&job, crate::tools::now_unix_ms()),
            None => Arc::<JobProgress>::default(),
        };
        let started = Instant::now();
        reporter.compaction_started(&job);
        let series_written = Arc::clone(&progress.series_done);
        let opts = CompactOptions {
            threads,
            series_written: Some(Arc::clone(&series_written)),
            dedup,
            accept_malformed_index,
            ..CompactOptions::default()
        };
        let work = async {
            match job_io {
                JobIo::Download => {
                    if let Err(e) = jobs::check_disk(&store, &data_dir, &job).await {
                        reporter.insufficient_disk(&e);
                        return Err(e);
                    }
                    jobs::run_job(store, data_dir, job.clone(), opts, transfers, hash).await
                }
                JobIo::Stream(source) => {
                    let job = job.clone();
                    let io = streamed::JobStreams {
                        gate,
                        staged,
                        progress,
                    };
                    streamed::run_streamed_job(store, source, job, opts, hash, io).await
                }
            }
        };
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
        match job.kind {
            JobKind::Downsample { .. } => {
                reporter.downsample_finished(&job, started.elapsed(), shown)
            }
            JobKind::Compact => reporter.compaction_finished(&job, started.elapsed(), shown),
        }
        let _ = tx.send(Input::Compacted(id, Box::new(result)));
    };
    spawn_reporting(work, panic_tx, on_panic);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// However many cycles ask, no more jobs of a kind run than its slots; the two kinds do
    /// not wait for each other.
    #[test]
    fn job_slots_bound_each_kind_on_its_own() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let slots = JobSlots::new(2, 1);
            let a = slots.acquire(&JobKind::Compact).await;
            let _b = slots.acquire(&JobKind::Compact).await;
            let third =
                tokio::time::timeout(Duration::from_millis(50), slots.acquire(&JobKind::Compact));
            assert!(third.await.is_err(), "a third compaction must wait");
            let down = JobKind::Downsample {
                resolution_ms: 300_000,
            };
            let d = tokio::time::timeout(Duration::from_millis(50), slots.acquire(&down));
            assert!(d.await.is_ok(), "a downsampling has slots of its own");
            drop(a);
            let third =
                tokio::time::timeout(Duration::from_secs(5), slots.acquire(&JobKind::Compact));
            assert!(third.await.is_ok(), "a freed slot is taken");
        });
    }

    /// A streaming job's parts go out only while a permit of the epoch it started under is
    /// published and unexpired by the clock.
    #[test]
    fn a_streaming_jobs_part_gate_closes_with_its_permit() {
        let clock = Clock {
            start: Instant::now(),
        };
        let permit = |epoch: u64, until_ms: i64| Permit {
            epoch: Epoch(epoch),
            valid_until: clock.now().mono.plus(until_ms),
        };
        let (tx, rx) = tokio::sync::watch::channel(vec![permit(7, 60_000)]);
        let gate = part_gate(rx, clock);
        assert!(gate().is_ok(), "open under the permit the job started with");
        tx.send_replace(vec![permit(7, 120_000)]);
        assert!(gate().is_ok(), "a renewal keeps it open");
        tx.send_replace(vec![permit(9, 60_000)]);
        assert!(gate().is_err(), "another term's permit does not open it");
        tx.send_replace(vec![permit(7, -1)]);
        let why = gate().unwrap_err();
        assert!(
            why.contains("lapsed"),
            "past its deadline by the clock: {why}"
        );
    }

    /// A running upload follows the node's current permit: a renewal published before the
    /// first permit ends keeps it going; a lapse of the renewed permit ends it; a new term
    /// ends it at once.
    #[test]
    fn permit_lapse_follows_renewals_and_terms() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = Clock {
                start: Instant::now(),
            };
            let permit = |epoch: u64, until_ms: i64| {
                vec![Permit {
                    epoch: Epoch(epoch),
                    valid_until: clock.now().mono.plus(until_ms),
                }]
            };
            let (tx, rx) = tokio::sync::watch::channel(permit(7, 300));
            let started = Instant::now();
            let lapse = tokio::spawn(permit_lapsed(rx.clone(), Epoch(7), clock));
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.send_replace(permit(7, 600)); // renewed: now ends ~700 ms after the start
            let waited = lapse.await.map(|()| started.elapsed()).unwrap();
            assert!(
                waited >= Duration::from_millis(650),
                "lapsed after {waited:?}"
            );
            assert!(waited < Duration::from_secs(5), "lapsed after {waited:?}");

            let lapse = tokio::spawn(permit_lapsed(rx, Epoch(7), clock));
            tx.send_replace(permit(8, 60_000)); // a new term: epoch 7's writes stop
            let ended = tokio::time::timeout(Duration::from_secs(5), lapse).await;
            assert!(ended.is_ok(), "a new term must end epoch 7's writes");

            // With streams, permits of other epochs leave epoch 7's alone.
            let mut both = permit(9, 60_000);
            both.extend(permit(7, 60_000));
            tx.send_replace(both);
            let lapse = tokio::spawn(permit_lapsed(tx.subscribe(), Epoch(7), clock));
            tx.send_replace(permit(9, 60_000)); // epoch 7's seat stopped
            let ended = tokio::time::timeout(Duration::from_secs(5), lapse).await;
            assert!(ended.is_ok(), "losing epoch 7's permit must end its writes");
        });
    }
}

//! The core's `Node::step` fed an arbitrary sequence of inputs never panics, and every
//! mutation it asks for is issued under a live permit according to its own inputs.
//!
//! The fuzz bytes are a small program (see [`Harness::run`]): a header picks the mode
//! (elected through etcd, elected on the bucket — the fence object is the lease — or single
//! instance), the cycle settings and the blocks of a model bucket; then each op advances the clocks, fires a tick, answers one pending coordinator,
//! store or compaction request (truthfully from the model, failed, or with a wrong variant),
//! answers everything pending, changes the bucket behind the node's back (another fence
//! writer, marks, removed metas), delivers a stale answer or shuts down.
//!
//! Every step also runs the node's own invariants (`Node::step` checks them in debug builds,
//! which cargo-fuzz makes). After every step, for each store request the node emitted:
//! - a mutation carries a permit (its type requires one) that is live at `now`
//!   (`now.mono < valid_until`);
//! - elected through etcd: the permit ends no later than the lease deadline derived
//!   independently from the inputs (`sent_at` of the last acknowledged grant or keepalive of
//!   a lease that is not known dead, plus the TTL less drift, margin and op timeout), and its
//!   epoch is a create revision the coordinator answered to a campaign; single: epoch 0;
//! - elected on the bucket: no coordinator request ever; a fence CAS is issued under the
//!   epoch it writes, with a permit no longer than a lease starting now; any other mutation's
//!   permit ends no later than the deadline of the latest of our fence CASes that landed
//!   (its `sent_at` plus the same span), under an epoch one of them wrote;
//! - a commit (meta.json, marks, deletes) is released only by a step that delivered a
//!   successful fence CAS, and its permit ends within the commit window after that CAS was
//!   sent.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use compactd::bucket::markers::{DeletionMark, NoCompactMark, MARKER_VERSION};
use compactd::core::coord::{
    CoordError, CoordErrorKind, CoordId, CoordOp, CoordRequest, CoordResult, ElectionKey, LeaseId,
};
use compactd::core::cycle::{CycleConfig, PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT};
use compactd::core::fence::{FenceRecord, FenceVersion, FENCE_PATH};
use compactd::core::leader::{
    LeaderConfig, Provider, Safety, MAX_DRIFT_PERMILLE, SAFETY_MARGIN_MS,
};
use compactd::core::node::Node;
use compactd::core::plan::compaction_ranges;
use compactd::core::stream::StreamId;
use compactd::core::types::{
    CompactJob, CompactedBlock, Input, JobError, JobId, JobKind, MetaState, Millis, Now, Output, ReadOp,
    RequestId, StoreError, StoreRequest, StoreResult, SyncResult, SyncedBlock, WriteOp,
};
use compactd::core::view::ViewConfig;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::{merge_metas, BlockFile, BlockMeta, BlockStats, ThanosMeta};
use compactd::units::HOUR_MS;
use libfuzzer_sys::fuzz_target;

/// 2025-01-01T00:00Z, where the model's blocks start.
const T0: i64 = 1_735_689_600_000;
const LEASE_TTL_MS: i64 = 15_000;
const OP_TIMEOUT_MS: i64 = 1_000;
const COMMIT_WINDOW_MS: i64 = 1_000;
/// Clock advances an op can pick, in ms.
const ADVANCES: [i64; 12] = [
    0, 1, 10, 100, 250, 999, 1_000, 2_000, 3_000, 5_000, 15_000, 600_000,
];
/// TTLs (s) the coordinator may answer, within etcd's range (1 s to 9e9 s).
const TTLS: [i64; 6] = [15, 15, 2, 5, 60, 9_000_000_000];

/// The fuzz bytes, read one at a time; 0 once they run out.
struct Src<'a> {
    data: &'a [u8],
}

impl Src<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u8(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    /// An index below `n` (`n > 0`).
    fn pick(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }
}

/// A lease as the inputs describe it.
struct LeaseModel {
    /// When the last acknowledged grant or keepalive was sent.
    acked_sent_at: Millis,
    ttl_ms: i64,
    alive: bool,
}

impl LeaseModel {
    /// The latest instant a mutation may still start under this lease.
    fn deadline(&self) -> Millis {
        permit_end(self.acked_sent_at, self.ttl_ms)
    }
}

/// The latest instant a mutation may still start under a lease of `ttl_ms` whose last
/// acknowledged renewal was sent at `sent_at`.
fn permit_end(sent_at: Millis, ttl_ms: i64) -> Millis {
    let span = ttl_ms * (1000 - MAX_DRIFT_PERMILLE) / 1000 - SAFETY_MARGIN_MS;
    sent_at.plus(span - OP_TIMEOUT_MS)
}

/// What the inputs say of the bucket provider's lease (the fence).
#[derive(Default)]
struct BucketLeaseModel {
    /// When the latest of our fence CASes that landed was sent.
    landed_sent_at: Option<Millis>,
    /// The epochs our landed fence CASes wrote.
    epochs: BTreeSet<u64>,
}

struct Harness {
    node: Node,
    elected: bool,
    /// Elected on the bucket rather than through etcd.
    on_bucket: bool,
    bucket_lease: BucketLeaseModel,
    now: Now,
    /// Wall clock minus monotonic clock.
    skew: i64,
    coord: Vec<(CoordRequest, Millis)>,
    store: Vec<(StoreRequest, Millis)>,
    jobs: Vec<CompactJob>,
    timer: Option<Millis>,
    exited: bool,
    /// The model bucket.
    blocks: BTreeMap<BlockId, SyncedBlock>,
    fence: Option<(FenceRecord, u64)>,
    /// Streams' fences (none until the leader fences streams).
    stream_fences: BTreeMap<StreamId, (FenceRecord, u64)>,
    fence_versions: u64,
    /// Leases by id, as granted, renewed and revoked by the inputs.
    leases: BTreeMap<i64, LeaseModel>,
    /// Create revisions answered to campaigns.
    revisions: BTreeSet<i64>,
    next_revision: i64,
    /// The key and revision of the last answered campaign.
    ours: Option<(String, i64)>,
    /// Ids answered already, for stale answers.
    answered: Vec<RequestId>,
}

impl Harness {
    fn new(src: &mut Src<'_>) -> Self {
        let flags = src.u8();
        let elected = flags & 1 == 1;
        // The low 4 bits count the blocks; bit 4 puts an elected node on the bucket.
        let count = src.u8();
        let on_bucket = elected && count & 0x10 != 0;
        let cycle = CycleConfig {
            view: ViewConfig {
                min_time: i64::MIN,
                max_time: i64::MAX,
                consistency_delay_ms: 0,
                delete_delay_ms: [0, 60_000, 48 * HOUR_MS, 0][usize::from(flags >> 3 & 3)],
                replica_labels: if flags & 4 != 0 {
                    vec!["replica".into()]
                } else {
                    vec![]
                },
                selector_relabel: vec![],
                scope: Default::default(),
            },
            wait: true,
            wait_interval_ms: 300_000,
            concurrency: 1 + usize::from(flags >> 5 & 1),
            ranges: compaction_ranges(4).expect("4 levels"),
            vertical: flags & 4 != 0,
            index_size_limit_bytes: None,
            retention_ms: [if flags & 0x40 != 0 { 24 * HOUR_MS } else { 0 }, 0, 0],
            partial_upload_threshold_ms: PARTIAL_UPLOAD_THRESHOLD_MS_DEFAULT,
            downsampling: flags & 2 != 0,
            downsample_concurrency: 1,
            // Every sync a minute apart or more runs the backlog calculators.
            progress_interval_ms: 60_000,
            // A background clean-up every 45 s of the ops' clock, between jobs of long passes.
            cleanup_interval_ms: 45_000,
            halt_on_error: true,
            skip_out_of_order_chunks: flags & 0x80 != 0,
        };
        let leader = LeaderConfig {
            node: "me".into(),
            election: match (elected, on_bucket) {
                (true, true) => Some(FENCE_PATH.into()),
                (true, false) => Some("/compactd/election".into()),
                (false, _) => None,
            },
            provider: if on_bucket {
                Provider::Bucket
            } else {
                Provider::Etcd
            },
            nonce: "n1".into(),
            lease_ttl_ms: LEASE_TTL_MS,
            op_timeout_ms: OP_TIMEOUT_MS,
            takeover_delay_ms: 2_000,
            commit_window_ms: COMMIT_WINDOW_MS,
            safety: Safety::ALL,
            stream: None,
            streams: None,
        };
        leader.validate().expect("the harness' settings are valid");
        let mut blocks = BTreeMap::new();
        for i in 0..count % 16 {
            let (a, b) = (src.u8(), src.u8());
            let slot = i64::from(a % 32);
            let span = if b & 1 == 0 { 2 * HOUR_MS } else { 8 * HOUR_MS };
            let (min, max) = (T0 + slot * 2 * HOUR_MS, T0 + slot * 2 * HOUR_MS + span);
            let id = BlockId::from_parts(max as u64, u128::from(i) + 1);
            let cluster = if a & 0x80 != 0 { "eu-1" } else { "us-1" };
            let mut labels = BTreeMap::from([("cluster".to_string(), cluster.to_string())]);
            if b & 0x40 != 0 {
                labels.insert("replica".into(), format!("r{}", b >> 7));
            }
            let mut meta = BlockMeta::level1(id, min, max);
            meta.compaction.level = 1 + u32::from(b & 1);
            meta.stats = BlockStats {
                num_samples: 100,
                num_series: 1,
                num_chunks: 1,
                ..BlockStats::default()
            };
            meta.thanos = Some(ThanosMeta {
                labels,
                source: "sidecar".into(),
                ..ThanosMeta::default()
            });
            let meta = match b >> 1 & 7 {
                0 => MetaState::Missing,
                1 => MetaState::Corrupt("unexpected end of JSON input".into()),
                _ => MetaState::Ok(Box::new(meta)),
            };
            let mut block = synced(meta, Millis(T0));
            if b & 0x10 != 0 {
                block.deletion_mark = Some(deletion_mark(id));
            }
            if b & 0x20 != 0 {
                block.no_compact_mark = Some(NoCompactMark {
                    id,
                    version: MARKER_VERSION,
                    details: String::new(),
                    no_compact_time: T0 / 1000,
                    reason: "manual".into(),
                });
            }
            blocks.insert(id, block);
        }
        let mono = Millis(1_000_000);
        let skew = T0 + 96 * HOUR_MS - mono.0;
        Harness {
            node: Node::new(cycle, leader, u64::from(flags)),
            elected,
            on_bucket,
            bucket_lease: BucketLeaseModel::default(),
            now: Now {
                mono,
                wall: mono.plus(skew),
            },
            skew,
            coord: Vec::new(),
            store: Vec::new(),
            jobs: Vec::new(),
            timer: None,
            exited: false,
            blocks,
            fence: None,
            stream_fences: BTreeMap::new(),
            fence_versions: 0,
            leases: BTreeMap::new(),
            revisions: BTreeSet::new(),
            next_revision: 100,
            ours: None,
            answered: Vec::new(),
        }
    }

    /// Runs the ops until the bytes or the node end.
    fn run(&mut self, src: &mut Src<'_>) {
        self.step(Input::Start);
        while let Some(op) = src.byte() {
            if self.exited {
                return;
            }
            match op % 10 {
                0 => self.advance(ADVANCES[src.pick(ADVANCES.len())]),
                1 => self.step(Input::Tick),
                2 => {
                    if let Some(at) = self.timer.filter(|&at| at > self.now.mono) {
                        self.advance(at.0 - self.now.mono.0);
                    }
                    self.step(Input::Tick);
                }
                3 if !self.coord.is_empty() => {
                    let i = src.pick(self.coord.len());
                    let choice = src.u8();
                    self.answer_coord(i, choice);
                }
                4 if !self.store.is_empty() => {
                    let i = src.pick(self.store.len());
                    let choice = src.u8();
                    self.answer_store(i, choice);
                }
                5 if !self.jobs.is_empty() => {
                    let i = src.pick(self.jobs.len());
                    let choice = src.u8();
                    self.answer_job(i, choice);
                }
                6 => self.answer_all(),
                7 => self.meddle(src),
                8 => self.stale_answer(src),
                9 if src.u8() == 0xff => self.step(Input::Shutdown),
                _ => {}
            }
        }
    }

    fn advance(&mut self, ms: i64) {
        self.now.mono = self.now.mono.plus(ms);
        self.now.wall = self.now.mono.plus(self.skew);
    }

    /// Answers every pending request truthfully, oldest first, and lets a second pass.
    fn answer_all(&mut self) {
        for _ in 0..64 {
            if self.exited {
                return;
            }
            if !self.coord.is_empty() {
                self.answer_coord(0, 0);
            } else if !self.store.is_empty() {
                self.answer_store(0, 0);
            } else if !self.jobs.is_empty() {
                self.answer_job(0, 0);
            } else {
                return;
            }
        }
    }

    fn answer_coord(&mut self, i: usize, choice: u8) {
        let (req, sent_at) = self.coord.remove(i);
        let failed = || {
            let error = CoordError::new(CoordErrorKind::Unavailable, "injected: etcd unavailable");
            CoordResult::Failed(error)
        };
        let result = if choice % 8 == 7 {
            failed()
        } else {
            match &req.op {
                CoordOp::Grant { .. } => {
                    // Unique lease ids, so a late answer never alters another lease.
                    let lease = req.id.0 as i64;
                    let ttl_secs = TTLS[usize::from(choice >> 3) % TTLS.len()];
                    self.leases.insert(
                        lease,
                        LeaseModel {
                            acked_sent_at: sent_at,
                            ttl_ms: ttl_secs * 1000,
                            alive: true,
                        },
                    );
                    CoordResult::Granted {
                        lease: LeaseId(lease),
                        ttl_secs,
                    }
                }
                CoordOp::KeepAlive { lease } => {
                    let ttl_secs = if choice % 8 == 6 {
                        0
                    } else {
                        TTLS[usize::from(choice >> 3) % TTLS.len()]
                    };
                    if let Some(l) = self.leases.get_mut(&lease.0) {
                        if ttl_secs > 0 {
                            l.acked_sent_at = l.acked_sent_at.max(sent_at);
                            l.ttl_ms = ttl_secs * 1000;
                        } else {
                            l.alive = false;
                        }
                    }
                    CoordResult::KeptAlive { ttl_secs }
                }
                CoordOp::Campaign { key, .. } => {
                    self.next_revision += 1 + i64::from(choice >> 6);
                    let create_revision = self.next_revision;
                    self.revisions.insert(create_revision);
                    self.ours = Some((key.clone(), create_revision));
                    CoordResult::Campaigned { create_revision }
                }
                CoordOp::Observe { prefix } => {
                    let other = |rev: i64| ElectionKey {
                        key: format!("{prefix}other"),
                        create_revision: rev,
                        value: "other".into(),
                    };
                    let mut keys = Vec::new();
                    if let Some((key, rev)) = &self.ours {
                        let mine = ElectionKey {
                            key: key.clone(),
                            create_revision: *rev,
                            value: "me".into(),
                        };
                        match choice % 8 {
                            0..=3 => keys.push(mine),
                            4 => keys.extend([other(rev - 1), mine]),
                            5 => keys.push(other(rev + 1)),
                            _ => {}
                        }
                    }
                    CoordResult::Observed {
                        keys,
                        revision: self.next_revision,
                    }
                }
                CoordOp::WaitDelete { .. } if choice & 8 == 0 => CoordResult::Deleted,
                CoordOp::WaitDelete { .. } => CoordResult::StillThere,
                CoordOp::Resign { lease, .. } => {
                    if let Some(l) = self.leases.get_mut(&lease.0) {
                        l.alive = false;
                    }
                    CoordResult::Resigned
                }
                CoordOp::Withdraw { .. } => CoordResult::Resigned,
            }
        };
        self.step(Input::Coord(req.id, result));
    }

    fn answer_store(&mut self, i: usize, choice: u8) {
        let (req, sent_at) = self.store.remove(i);
        self.answered.push(req.id());
        let fence = matches!(
            (req.read_op(), req.write_op()),
            (Some(ReadOp::ReadFence | ReadOp::ReadStreamFence { .. }), _)
                | (_, Some(WriteOp::CasFence { .. }))
        );
        let result = match choice % 16 {
            14 => StoreResult::Failed(StoreError::other("injected: 503 Slow Down")),
            // A variant that answers a different request.
            15 if fence => StoreResult::Done,
            15 => StoreResult::FenceConflict,
            _ => self.apply(&req, choice),
        };
        let cas_sent_at = match (req.write_op(), &result) {
            (Some(WriteOp::CasFence { record, .. }), StoreResult::FenceWritten(_)) => {
                let lease = &mut self.bucket_lease;
                lease.epochs.insert(record.epoch);
                lease.landed_sent_at = lease.landed_sent_at.max(Some(sent_at));
                Some(sent_at)
            }
            _ => None,
        };
        self.step_checked(Input::Store(req.id(), result), cas_sent_at);
    }

    /// Applies `req` to the model bucket and answers as a healthy bucket would.
    fn apply(&mut self, req: &StoreRequest, choice: u8) -> StoreResult {
        let now = self.now;
        let op = match req {
            StoreRequest::Read {
                op: ReadOp::Sync, ..
            } => {
                let mut blocks = self.blocks.clone();
                // A listing that misses the newest block (eventual consistency).
                if choice & 0x80 != 0 {
                    blocks.pop_last();
                }
                return StoreResult::Synced(SyncResult { blocks });
            }
            StoreRequest::Read {
                op: ReadOp::ReadFence,
                ..
            } => {
                let fence = self.fence.as_ref();
                return StoreResult::Fence(fence.map(|(record, v)| (record.clone(), version(*v))));
            }
            StoreRequest::Read {
                op: ReadOp::ReadStreamFence { stream },
                ..
            } => {
                let fence = self.stream_fences.get(stream);
                return StoreResult::Fence(fence.map(|(record, v)| (record.clone(), version(*v))));
            }
            StoreRequest::Write { op, .. } => op,
        };
        match op {
            WriteOp::UploadFiles { .. } => StoreResult::Done,
            WriteOp::PutMeta { meta } | WriteOp::AdoptMeta { meta } => {
                let block = synced(MetaState::Ok(meta.clone()), now.wall);
                self.blocks.insert(meta.ulid, block);
                StoreResult::Done
            }
            WriteOp::MarkDeletion(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.deletion_mark.get_or_insert(m.clone());
                }
                StoreResult::Done
            }
            WriteOp::MarkNoCompact(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.no_compact_mark.get_or_insert(m.clone());
                }
                StoreResult::Done
            }
            WriteOp::MarkNoDownsample(m) => {
                if let Some(b) = self.blocks.get_mut(&m.id) {
                    b.no_downsample_mark.get_or_insert(m.clone());
                }
                StoreResult::Done
            }
            WriteOp::RemoveMarker { block, marker } => {
                if let Some(b) = self.blocks.get_mut(block) {
                    match marker.as_str() {
                        "deletion-mark.json" => b.deletion_mark = None,
                        "no-compact-mark.json" => b.no_compact_mark = None,
                        _ => b.no_downsample_mark = None,
                    }
                }
                StoreResult::Done
            }
            WriteOp::DeleteBlock(id) => {
                self.blocks.remove(id);
                StoreResult::Done
            }
            WriteOp::CasFence {
                stream,
                record,
                expected,
            } => {
                let current = match stream {
                    None => self.fence.as_ref(),
                    Some(stream) => self.stream_fences.get(stream),
                };
                if current.map(|(_, v)| version(*v)) != *expected {
                    return StoreResult::FenceConflict;
                }
                self.fence_versions += 1;
                let written = (record.clone(), self.fence_versions);
                match stream {
                    None => self.fence = Some(written),
                    Some(stream) => {
                        self.stream_fences.insert(*stream, written);
                    }
                }
                StoreResult::FenceWritten(version(self.fence_versions))
            }
        }
    }

    fn answer_job(&mut self, i: usize, choice: u8) {
        let job = self.jobs.remove(i);
        let result = match choice % 8 {
            5 => Ok(None),
            6 => Err(JobError::io("injected: disk full")),
            // Out-of-order chunks in the first input (no-compact-marked when the flag is on).
            7 if choice & 8 != 0 && !job.inputs.is_empty() => Err(JobError::out_of_order_chunks(
                job.inputs[0].ulid,
                "injected: out-of-order chunks",
            )),
            7 => Err(JobError::bad_input("injected: corrupt chunk")),
            _ => {
                let meta = match job.kind {
                    JobKind::Downsample { .. } => Ok(BlockMeta {
                        ulid: job.output,
                        ..job.inputs[0].clone()
                    }),
                    JobKind::Compact => merge_metas(job.output, &job.inputs),
                };
                match meta {
                    Ok(meta) => Ok(Some(CompactedBlock {
                        meta,
                        files: vec![
                            BlockFile {
                                rel_path: "chunks/000001".into(),
                                size_bytes: 10,
                                hash: None,
                            },
                            BlockFile {
                                rel_path: "index".into(),
                                size_bytes: 5,
                                hash: None,
                            },
                        ],
                    })),
                    Err(e) => Err(JobError::bad_input(e.to_string())),
                }
            }
        };
        self.step(Input::Compacted(job.job, Box::new(result)));
    }

    /// Changes the world behind the node's back.
    fn meddle(&mut self, src: &mut Src<'_>) {
        let b = src.u8();
        match b % 4 {
            // Another writer takes the fence, with an epoch around ours.
            0 => {
                let base = self.fence.as_ref().map_or(0, |(r, _)| r.epoch);
                let epoch = base.saturating_add(u64::from(b >> 2 & 3)).saturating_sub(1);
                let seq = self.fence.as_ref().map_or(1, |(r, _)| r.seq + 1);
                self.fence_versions += 1;
                let record = FenceRecord {
                    epoch,
                    holder: "other".into(),
                    seq,
                    renewed_unix_ms: self.now.wall.0,
                    nonce: String::new(),
                };
                self.fence = Some((record, self.fence_versions));
            }
            // The wall clock jumps (NTP), either way.
            1 => self.skew += (i64::from(b >> 2) - 32) * 60_000,
            // Someone marks or deletes a block by hand.
            2 => {
                if let Some((&id, block)) = self.blocks.iter_mut().nth(usize::from(b >> 2)) {
                    if b & 0x80 != 0 {
                        block.meta = MetaState::Missing;
                    } else {
                        block.deletion_mark = Some(deletion_mark(id));
                    }
                }
            }
            // The fence object is deleted.
            _ => self.fence = None,
        }
    }

    /// An answer nobody waits for: a repeated or unknown id (never a pending one: that would
    /// be an answer the model does not know of).
    fn stale_answer(&mut self, src: &mut Src<'_>) {
        let b = src.u8();
        let id = u64::from(b >> 2);
        let input = match b % 4 {
            0 if !self.answered.is_empty() => {
                let id = self.answered[usize::from(b >> 2) % self.answered.len()];
                Input::Store(id, StoreResult::Done)
            }
            1 if !self.store.iter().any(|(r, _)| r.id().0 == id) => {
                Input::Store(RequestId(id), StoreResult::Failed(StoreError::other("late")))
            }
            2 if !self.coord.iter().any(|(r, _)| r.id.0 == id) => {
                Input::Coord(CoordId(id), CoordResult::KeptAlive { ttl_secs: 15 })
            }
            3 if !self.jobs.iter().any(|j| j.job.0 == id) => {
                Input::Compacted(JobId(id), Box::new(Ok(None)))
            }
            _ => return,
        };
        self.step(input);
    }

    fn step(&mut self, input: Input) {
        self.step_checked(input, None);
    }

    /// Steps the node and checks its outputs; `cas_sent_at` is when the fence CAS whose
    /// success this step delivers was sent.
    fn step_checked(&mut self, input: Input, cas_sent_at: Option<Millis>) {
        let now = self.now;
        let out = self.node.step(now, input);
        for o in out {
            match o {
                Output::Store(req) => {
                    self.check(&req, cas_sent_at);
                    self.store.push((req, now.mono));
                }
                Output::Coord(req) => {
                    assert!(!self.on_bucket, "a coordinator request on the bucket: {req:?}");
                    self.coord.push((req, now.mono));
                }
                Output::Compact(job) => self.jobs.push(job),
                Output::Timer(at) => self.timer = Some(at),
                Output::Exit(_) => self.exited = true,
                Output::Event(_) => {}
            }
        }
    }

    /// The permit rules of the module doc (that every mutation carries one is the type's).
    fn check(&self, req: &StoreRequest, cas_sent_at: Option<Millis>) {
        let now = self.now;
        let Some(permit) = req.permit() else {
            return;
        };
        assert!(
            now.mono < permit.valid_until,
            "a mutation issued under an expired permit at {:?}: {req:?}",
            now.mono
        );
        if self.on_bucket {
            self.check_bucket(req);
        } else if self.elected {
            let deadline = self
                .leases
                .values()
                .filter(|l| l.alive)
                .map(LeaseModel::deadline)
                .max();
            assert!(
                deadline.is_some_and(|d| permit.valid_until <= d),
                "permit until {:?} outlives every lease (latest deadline {deadline:?}): {req:?}",
                permit.valid_until
            );
            assert!(
                i64::try_from(permit.epoch.0).is_ok_and(|e| self.revisions.contains(&e)),
                "epoch {} was never a campaign's revision: {req:?}",
                permit.epoch.0
            );
        } else {
            assert_eq!(permit.epoch.0, 0, "a single instance writes under epoch 0");
        }
        if req.is_commit() {
            let sent = cas_sent_at
                .unwrap_or_else(|| panic!("a commit released without a fence CAS: {req:?}"));
            assert!(
                permit.valid_until <= sent.plus(COMMIT_WINDOW_MS),
                "a commit's permit outlives the commit window of its CAS sent at {sent:?}: {req:?}"
            );
        }
    }

    /// The bucket provider's permit rules (the module doc): a fence CAS under its record's
    /// epoch and at most a lease from now; any other mutation within the lease of our latest
    /// landed fence CAS, under an epoch one of them wrote.
    fn check_bucket(&self, req: &StoreRequest) {
        let permit = req.permit().expect("a mutation");
        if let Some(WriteOp::CasFence { record, .. }) = req.write_op() {
            assert_eq!(permit.epoch.0, record.epoch, "{req:?}");
            let end = permit_end(self.now.mono, LEASE_TTL_MS);
            assert!(
                permit.valid_until <= end,
                "a fence CAS's permit outlives a lease from now: {req:?}"
            );
            return;
        }
        let lease = &self.bucket_lease;
        let end = lease.landed_sent_at.map(|t| permit_end(t, LEASE_TTL_MS));
        assert!(
            end.is_some_and(|end| permit.valid_until <= end),
            "permit until {:?} outlives the lease of our last landed fence CAS ({end:?}): {req:?}",
            permit.valid_until
        );
        assert!(
            lease.epochs.contains(&permit.epoch.0),
            "epoch {} was never written to the fence by us: {req:?}",
            permit.epoch.0
        );
    }
}

fn version(v: u64) -> FenceVersion {
    FenceVersion {
        e_tag: Some(v.to_string()),
        version: None,
    }
}

fn synced(meta: MetaState, newest_modified: Millis) -> SyncedBlock {
    SyncedBlock {
        meta,
        deletion_mark: None,
        no_compact_mark: None,
        no_downsample_mark: None,
        marker_problems: vec![],
        newest_modified,
    }
}

fn deletion_mark(id: BlockId) -> DeletionMark {
    DeletionMark {
        id,
        version: MARKER_VERSION,
        details: "manual".into(),
        deletion_time: T0 / 1000,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut src = Src { data };
    let mut h = Harness::new(&mut src);
    h.run(&mut src);
});

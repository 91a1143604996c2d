//! A compactor node: the production core ([`Node`]) driven by a simulation driver that does
//! what `compactd::driver` does — sends store and etcd requests (with timeouts), passes each
//! store request through the core's [`Admission`] check when it is sent (the production
//! driver's check: an expired permit, a meta.json whose files this process did not upload),
//! runs compaction jobs with the real block engine — over turmoil's network, on the node's
//! own (skewed) clock. A paused process does nothing while its requests stay in flight; a
//! crash drops everything it held.
//!
//! Production also aborts an upload whose permit lapses while it runs. The model has nothing
//! to abort: the store applies a request whole at the instant it arrives, and drops one that
//! arrives more than an op timeout after it was sent (`store_host`), so a request's effect
//! happens at one moment no later than the permit's check plus the op timeout, which the
//! permit already leaves room for.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use compactd::bucket::markers::{NoDownsampleMark, MARKER_VERSION, NO_DOWNSAMPLE_MARK_FILENAME};
use compactd::core::admin::{AdminId, AdminRequest};
use compactd::core::admission::{Admission, Refusal};
use compactd::core::coord::{CoordError, CoordErrorKind, CoordId, CoordOp, CoordResult};
use compactd::core::leader::Provider;
use compactd::core::node::Node;
use compactd::core::stream::StreamId;
use compactd::core::types::{
    CompactJob, CompactedBlock, Event, Input, JobError, JobId, Millis, Output, RequestId,
    StoreError, StoreRequest, StoreResult, WriteOp,
};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;
use turmoil::net::UdpSocket;

use crate::blocks::run_job;
use crate::bug::Bug;
use crate::checker::Invariant;
use crate::clock::Clock;
use crate::net::{bind_addr, decode, encode, Files, Message, ETCD, PORT, STORE};
use crate::setup::nonce;
use crate::shared::{sim_ms, Shared, World};
use crate::store_host::target;

/// Turns of a driver at one world instant, each finding something due at once, that make a
/// busy loop.
const SPIN_MAX: u32 = 10_000;
/// How long a spinning driver waits between turns (one turmoil tick).
const SPIN_WAIT_MS: u64 = 25;

/// Runs node `name`'s process until it exits.
pub async fn run(world: World, name: String) -> turmoil::Result {
    let first = world.borrow().nodes[&name].starts == 0;
    let start_ms = world.borrow().nodes[&name].start_ms;
    if first && start_ms > sim_ms() {
        tokio::time::sleep(Duration::from_millis((start_ms - sim_ms()) as u64)).await;
    }
    let socket = UdpSocket::bind(bind_addr()).await?;
    let mut d = Driver::start(&world, &name);
    let mut buf = [0u8; 16];
    loop {
        loop {
            let until = world.borrow().nodes[&name].paused_until_ms;
            let now = sim_ms();
            if until <= now {
                break;
            }
            // In slices, so an early resume (the faults heal) is seen.
            let slice = (until - now).min(1_000);
            tokio::time::sleep(Duration::from_millis(slice as u64)).await;
        }
        let outbox = {
            let mut w = world.borrow_mut();
            let outbox = d.work(&mut w, sim_ms());
            let unsent = d.queued.values().filter(|q| q.req.is_mutation()).count();
            let state = w.nodes.get_mut(&name).expect("node");
            state.unsent_mutations = unsent;
            state.compacting = d.job_streams.values().copied().collect();
            if d.exited {
                state.streams_led.clear();
            }
            outbox
        };
        for (to, n) in outbox {
            socket.send_to(&encode(n), (to, PORT)).await?;
        }
        if d.exited {
            return Ok(());
        }
        let wait = d.wait(&mut world.borrow_mut(), sim_ms());
        tokio::select! {
            biased;
            r = socket.recv_from(&mut buf) => {
                let (len, _) = r?;
                if let Some(n) = decode(&buf[..len]) {
                    d.arrived.push_back(n);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// A store request waiting to be sent.
struct Queued {
    req: StoreRequest,
    files: Files,
}

/// The simulation driver of one process.
struct Driver {
    name: String,
    /// This process's start count (replies to earlier processes are dropped).
    process: u32,
    node: Node,
    clock: Clock,
    /// The admission check of store requests (without its expiry check under
    /// `--bug no-permit-check`).
    admission: Admission,
    inputs: VecDeque<Input>,
    /// Message numbers received, not yet looked at (a paused process reads them later).
    arrived: VecDeque<u64>,
    timer: Option<Millis>,
    /// Store requests by the world time they are sent at (then by order of issue).
    queued: BTreeMap<(i64, u64), Queued>,
    issued: u64,
    store_deadlines: BTreeMap<RequestId, i64>,
    coord_deadlines: BTreeMap<CoordId, i64>,
    downloads: BTreeMap<JobId, (CompactJob, i64)>,
    /// Jobs computing, by the world time they finish.
    computing: BTreeMap<(i64, JobId), Result<Option<CompactedBlock>, JobError>>,
    /// Files of compacted blocks, for their upload.
    outputs: BTreeMap<BlockId, Files>,
    /// The stream of each job running (downloading or computing), in stream worlds.
    job_streams: BTreeMap<JobId, u64>,
    scratch: PathBuf,
    exited: bool,
    /// Turns in a row that found something due at once, and the world time of the last.
    spins: u32,
    spin_at: i64,
    /// True once this process was found spinning.
    spun: bool,
    /// When this process next hands its node an operator request, and how many it sent.
    admin_next_at: i64,
    admin_sent: u64,
}

impl Driver {
    fn start(world: &World, name: &str) -> Driver {
        let mut w = world.borrow_mut();
        let now = sim_ms();
        let admission = if w.bug == Some(Bug::NoPermitCheck) {
            Admission::without_expiry_check()
        } else {
            Admission::new()
        };
        let node_state = w.nodes.get_mut(name).expect("node exists");
        node_state.starts += 1;
        node_state.leading = None;
        let seed = w.rng.next_u64();
        let n = &w.nodes[name];
        let mut leader = n.leader.clone();
        if leader.provider == Provider::Bucket {
            leader.nonce = nonce(name, n.starts);
        }
        let node = Node::new(n.cycle.clone(), leader, seed);
        let (clock, starts) = (n.clock, n.starts);
        let scratch = w.scratch.join(format!("{name}-{starts}"));
        w.log(now, name, &format!("process started (#{starts})"));
        Driver {
            name: name.to_string(),
            process: starts,
            node,
            clock,
            admission,
            inputs: VecDeque::from([Input::Start]),
            arrived: VecDeque::new(),
            timer: None,
            queued: BTreeMap::new(),
            issued: 0,
            store_deadlines: BTreeMap::new(),
            coord_deadlines: BTreeMap::new(),
            downloads: BTreeMap::new(),
            computing: BTreeMap::new(),
            outputs: BTreeMap::new(),
            job_streams: BTreeMap::new(),
            scratch,
            exited: false,
            spins: 0,
            spin_at: i64::MIN,
            spun: false,
            admin_next_at: now + ADMIN_INTERVAL_MS,
            admin_sent: 0,
        }
    }

    /// Does everything due at world time `now`; returns the datagrams to send.
    fn work(&mut self, w: &mut Shared, now: i64) -> Vec<(&'static str, u64)> {
        // Wall-clock jumps change the node's clock while it runs.
        self.clock = w.nodes[&self.name].clock;
        let mut outbox = Vec::new();
        while let Some(n) = self.arrived.pop_front() {
            self.receive(w, n, now);
        }
        self.expire(now);
        let due: Vec<(i64, u64)> = self.queued.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
        for key in due {
            let q = self.queued.remove(&key).expect("due");
            self.send_store(w, q, now, &mut outbox);
        }
        if self.timer.is_some_and(|t| self.clock.now(now).mono >= t) {
            self.timer = None;
            self.inputs.push_back(Input::Tick);
        }
        if now >= self.admin_next_at {
            self.admin_next_at = now + ADMIN_INTERVAL_MS;
            self.admin_sent += 1;
            let request = operator_request(w, &self.name, self.admin_sent);
            self.inputs.push_back(request);
        }
        while let Some(input) = self.inputs.pop_front() {
            if self.exited {
                break;
            }
            self.admission.on_input(&input);
            let outputs = self.node.step(self.clock.now(now), input);
            for o in outputs {
                self.output(w, o, now, &mut outbox);
            }
        }
        outbox
    }

    /// How long to wait for the next thing due (a message may come first). A driver that
    /// finds something due at once, over and over at one instant, spins: the node asks to be
    /// woken at a time already past after every tick, and turmoil's clock would never move
    /// again. That is reported once as a liveness violation, and the process then waits a
    /// turmoil tick instead of not at all, so that the world goes on.
    fn wait(&mut self, w: &mut Shared, now: i64) -> Duration {
        let Some(at) = self.next_wake() else {
            return Duration::from_secs(3600);
        };
        if at > now {
            self.spins = 0;
            return Duration::from_millis((at - now) as u64);
        }
        self.spins = if self.spin_at == now {
            self.spins + 1
        } else {
            1
        };
        self.spin_at = now;
        if self.spins < SPIN_MAX && !self.spun {
            return Duration::ZERO;
        }
        if !self.spun {
            self.spun = true;
            let text = format!(
                "{} spins: its node asks to be woken at {at} (world ms) again after every turn \
                 at {now}",
                self.name
            );
            w.log(now, &self.name, &text);
            w.checker.violate(Invariant::Liveness, now, text);
        }
        Duration::from_millis(SPIN_WAIT_MS)
    }

    /// The next world time something is due.
    fn next_wake(&self) -> Option<i64> {
        let timer = self.timer.map(|t| self.clock.sim_at(t));
        let queued = self.queued.keys().next().map(|k| k.0);
        let store = self.store_deadlines.values().min().copied();
        let coord = self.coord_deadlines.values().min().copied();
        let download = self.downloads.values().map(|(_, d)| *d).min();
        let job = self.computing.keys().next().map(|k| k.0);
        [timer, queued, store, coord, download, job]
            .into_iter()
            .flatten()
            .min()
    }

    fn receive(&mut self, w: &mut Shared, n: u64, now: i64) {
        let Some(msg) = w.mailbox.take(n) else {
            return;
        };
        match msg {
            Message::StoreReply(p, ..)
            | Message::CoordReply(p, ..)
            | Message::DownloadReply(p, ..)
                if p != self.process =>
            {
                // A reply to this node's previous process (it crashed since): dropped, as the
                // connection it was sent on is gone.
            }
            Message::StoreReply(_, id, result) => {
                if self.store_deadlines.remove(&id).is_some() {
                    self.inputs.push_back(Input::Store(id, result));
                }
            }
            Message::CoordReply(_, id, result) => {
                if self.coord_deadlines.remove(&id).is_some() {
                    self.inputs.push_back(Input::Coord(id, result));
                }
            }
            Message::DownloadReply(_, job, result) => {
                let Some((job, _)) = self.downloads.remove(&job) else {
                    return;
                };
                let result = result
                    .map_err(JobError::io)
                    .and_then(|inputs| run_job(&self.scratch, &job, &inputs));
                let result = result.map(|done| {
                    done.map(|(block, files)| {
                        self.outputs.insert(block.meta.ulid, files);
                        block
                    })
                });
                w.stats.compactions += 1;
                let mut took = 500 + w.rng.below(w.timing.compact_max_ms as u64) as i64;
                let state = &w.nodes[&self.name];
                if now < state.slow_until_ms {
                    took += state.slow_by_ms;
                }
                self.computing.insert((now + took, job.job), result);
            }
            other => w.log(now, &self.name, &format!("unexpected message {other:?}")),
        }
    }

    /// Timeouts and finished jobs.
    fn expire(&mut self, now: i64) {
        for id in take_due(&mut self.store_deadlines, now, |d| *d) {
            let error = StoreError::timeout("timed out after --objstore.op-timeout");
            self.inputs
                .push_back(Input::Store(id, StoreResult::Failed(error)));
        }
        for id in take_due(&mut self.coord_deadlines, now, |d| *d) {
            let error = CoordError::new(CoordErrorKind::Timeout, "etcd request timed out");
            self.inputs
                .push_back(Input::Coord(id, CoordResult::Failed(error)));
        }
        for id in take_due(&mut self.downloads, now, |(_, d)| *d) {
            let err = JobError::io("download timed out");
            self.job_streams.remove(&id);
            self.inputs
                .push_back(Input::Compacted(id, Box::new(Err(err))));
        }
        let done: Vec<(i64, JobId)> = self
            .computing
            .range(..(now + 1, JobId(0)))
            .map(|(k, _)| *k)
            .collect();
        for key in done {
            let result = self.computing.remove(&key).expect("done");
            self.job_streams.remove(&key.1);
            self.inputs
                .push_back(Input::Compacted(key.1, Box::new(result)));
        }
    }

    fn output(
        &mut self,
        w: &mut Shared,
        o: Output,
        now: i64,
        outbox: &mut Vec<(&'static str, u64)>,
    ) {
        match o {
            Output::Store(req) => {
                let files = match req.write_op() {
                    Some(WriteOp::UploadFiles { block, .. }) => {
                        self.outputs.get(block).cloned().unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                if let Some(WriteOp::PutMeta { meta }) = req.write_op() {
                    self.outputs.remove(&meta.ulid);
                }
                let delay = w.rng.below(w.timing.send_delay_max_ms as u64 + 1) as i64;
                self.issued += 1;
                self.queued
                    .insert((now + delay, self.issued), Queued { req, files });
            }
            Output::Coord(req) => {
                let mut timeout = w.timing.coord_timeout_ms;
                if let CoordOp::WaitDelete { max_wait_ms, .. } = &req.op {
                    timeout += max_wait_ms;
                }
                self.coord_deadlines
                    .insert(req.id, now + self.clock.sim_span(timeout));
                let what = format!("coord#{} {}", req.id.0, req.op.name());
                w.log(now, &self.name, &what);
                let n = w.mailbox.post(Message::Coord {
                    from: self.name.clone(),
                    process: self.process,
                    req,
                });
                outbox.push((ETCD, n));
            }
            Output::Compact(job) => {
                let what = format!(
                    "compact job#{} {} blocks -> {}",
                    job.job.0,
                    job.inputs.len(),
                    job.output
                );
                w.log(now, &self.name, &what);
                let labels = &w.nodes[&self.name].cycle.view.replica_labels;
                if let Some(s) = job
                    .inputs
                    .first()
                    .and_then(|m| StreamId::of_block(m, labels))
                {
                    self.job_streams.insert(job.job, s.0);
                }
                let deadline = now + self.clock.sim_span(3 * w.timing.op_timeout_ms);
                let n = w.mailbox.post(Message::Download {
                    from: self.name.clone(),
                    process: self.process,
                    job: job.job,
                    blocks: job.inputs.iter().map(|m| m.ulid).collect(),
                    sent_ms: now,
                });
                self.downloads.insert(job.job, (job, deadline));
                outbox.push((STORE, n));
            }
            Output::Timer(t) => self.timer = Some(t),
            Output::Event(e) => self.event(w, e, now),
            Output::Exit(code) => {
                self.exited = true;
                let state = w.nodes.get_mut(&self.name).expect("node");
                state.exited = Some(code);
                state.leading = None;
                w.log(now, &self.name, &format!("exit {code}"));
            }
        }
    }

    /// Sends a queued store request, unless the admission check refuses it (its permit
    /// expired while it waited, or a meta.json's files were not uploaded by this process).
    fn send_store(
        &mut self,
        w: &mut Shared,
        q: Queued,
        now: i64,
        outbox: &mut Vec<(&'static str, u64)>,
    ) {
        let id = q.req.id();
        if let Err(refusal) = self.admission.admit(&q.req, self.clock.now(now).mono) {
            let why = match refusal {
                Refusal::PermitExpired => {
                    w.stats.permit_refusals += 1;
                    "permit expired"
                }
                Refusal::NotUploaded { .. } => "its files were not uploaded by this process",
            };
            let what = format!("store#{} {} refused: {why}", id.0, q.req.name());
            w.log(now, &self.name, &what);
            self.inputs
                .push_back(Input::Store(id, StoreResult::Failed(refusal.into())));
            return;
        }
        if q.req.is_commit() {
            let state = w.nodes.get_mut(&self.name).expect("node");
            state.commits_sent += 1;
            let epoch = q.req.permit().map_or(0, |p| p.epoch.0);
            *state.commits_by_epoch.entry(epoch).or_default() += 1;
        }
        let what = format!("store#{} {} {}", id.0, q.req.name(), target(&q.req));
        w.log(now, &self.name, &what);
        self.store_deadlines
            .insert(id, now + self.clock.sim_span(w.timing.op_timeout_ms));
        let n = w.mailbox.post(Message::Store {
            from: self.name.clone(),
            process: self.process,
            req: q.req,
            files: q.files,
            sent_ms: now,
        });
        outbox.push((STORE, n));
    }

    fn event(&mut self, w: &mut Shared, e: Event, now: i64) {
        match &e {
            Event::Leading { epoch, .. } => {
                w.nodes.get_mut(&self.name).expect("node").leading = Some(*epoch);
                w.stats.terms += 1;
                // A node leads again (a newer epoch, or the old leader back in its term
                // once the fault healed): the failover ends.
                if let Some(lost) = w.stats.leader_lost.take_if(|l| *epoch >= l.epoch) {
                    w.stats.failovers.push(now - lost.at_ms);
                    if lost.judged {
                        w.stats.bounded_failovers.push(now - lost.at_ms);
                    }
                }
            }
            Event::Elected { epoch } => w.stats.max_elected = w.stats.max_elected.max(*epoch),
            Event::SteppedDown { .. } => {
                w.nodes.get_mut(&self.name).expect("node").leading = None;
            }
            Event::Stream { stream, event } => self.stream_event(w, stream.0, event, now),
            Event::Progress { .. } | Event::Planned { .. } | Event::LeaseRenewed { .. } => return,
            _ => {}
        }
        w.log(now, &self.name, &format!("{e:?}"));
    }

    /// What a stream's seat says: which streams this node leads, and the end of a stream's
    /// failover when it leads one that a fault took out.
    fn stream_event(&mut self, w: &mut Shared, stream: u64, e: &Event, now: i64) {
        let led = &mut w.nodes.get_mut(&self.name).expect("node").streams_led;
        match e {
            Event::Leading { epoch, .. } => {
                led.insert(stream, *epoch);
                let Some(lost) = w.stats.streams_lost.as_mut() else {
                    return;
                };
                if let Some(took) = lost.led(stream, *epoch, now) {
                    w.stats.stream_failovers.push(took);
                    if lost.judged {
                        w.stats.bounded_stream_failovers.push(took);
                    }
                }
                if lost.left.is_empty() {
                    w.stats.streams_lost = None;
                }
            }
            Event::SteppedDown { .. } => {
                led.remove(&stream);
            }
            _ => {}
        }
    }
}

/// How often each process hands its node an operator request (world ms): followers refuse
/// it, the leader (or, in stream worlds, the stream's seat) commits it through its gate; a
/// node without the stream's seat refuses it (`--bug admin-wrong-unit` lets its bucket unit
/// commit it, a write under another unit's epoch).
const ADMIN_INTERVAL_MS: i64 = 4_000;

/// The `n`-th operator request of node `name`: a no-downsample mark on a visible block
/// (odd `n`), then its removal (even `n`), sent with the block's stream in stream worlds; the
/// world does not downsample, so these commits change nothing the checker's oracle judges,
/// but they are ordered like any other. A marker of no block while the bucket has none yet.
fn operator_request(w: &Shared, name: &str, n: u64) -> Input {
    let node = &w.nodes[name];
    let blocks: Vec<(BlockId, BlockMeta)> = crate::checker::visible_blocks(&w.store)
        .into_iter()
        .map(|(id, (meta, _))| (id, meta))
        .collect();
    let pick = n.div_ceil(2) as usize;
    let (block, stream) = match blocks.get(pick % blocks.len().max(1)) {
        Some((id, meta)) => {
            let stream = node
                .leader
                .streams
                .as_ref()
                .and_then(|_| StreamId::of_block(meta, &node.cycle.view.replica_labels));
            (*id, stream)
        }
        None => (BlockId::from_parts(1, u128::from(n)), None),
    };
    let op = if n % 2 == 1 {
        WriteOp::MarkNoDownsample(NoDownsampleMark {
            id: block,
            version: MARKER_VERSION,
            details: "simulated operator".into(),
            no_downsample_time: 0,
            reason: "manual".into(),
        })
    } else {
        WriteOp::RemoveMarker {
            block,
            marker: NO_DOWNSAMPLE_MARK_FILENAME.into(),
        }
    };
    Input::Admin(Box::new(AdminRequest {
        id: AdminId(n),
        stream,
        ops: vec![op],
    }))
}

/// Removes and returns, in key order, the entries whose deadline (`deadline` of the value) is
/// at or before `now`.
fn take_due<K: Copy + Ord, V>(
    map: &mut BTreeMap<K, V>,
    now: i64,
    deadline: impl Fn(&V) -> i64,
) -> Vec<K> {
    let due: Vec<K> = map
        .iter()
        .filter(|(_, v)| deadline(v) <= now)
        .map(|(k, _)| *k)
        .collect();
    for k in &due {
        map.remove(k);
    }
    due
}

//! The node: the core's single entry point, advanced only by [`Node::step`]. It owns the
//! bucket's unit — leadership ([`Leader`]) and the compaction cycle that runs under its terms
//! (`node/unit.rs`) — and, when every replica compacts, the streams it holds: the director
//! that decides which (`node/director.rs`) and a seat per stream, each a unit of its own whose
//! leader campaigns with the session's lease (the bucket leader's) and whose cycle sees only
//! the stream's blocks. Results find their unit by the slot of their id
//! ([`super::request_ids`]). In debug builds (unit tests, the fuzz target, every simulated
//! world) each step ends by checking the node's invariants (`node/invariants.rs`).

mod director;
mod invariants;
mod unit;

use std::collections::BTreeMap;

use super::admin::{AdminId, AdminOutcome};
use super::cycle::{Cycle, CycleConfig};
use super::leader::{Leader, LeaderConfig};
use super::request_ids::Slot;
use super::stream::StreamId;
use super::types::{Event, Input, LeaderInfo, Millis, Now, Output, Permit};
use super::view::{BucketView, Scope};
use director::Director;
use unit::Unit;

/// A compactor node.
#[derive(Debug)]
pub struct Node {
    /// The bucket's leader and cycle.
    bucket: Unit,
    /// The streams this node holds, when every replica compacts.
    streams: Option<Streams>,
    last_mono: Millis,
}

/// Per-stream ownership on a node: the director and a seat for each stream held.
#[derive(Debug)]
struct Streams {
    director: Director,
    /// The seats, by stream: each a stream leader on the session's lease and its cycle.
    seats: BTreeMap<StreamId, Seat>,
    /// The slot of the next seat.
    next_slot: Slot,
    /// The settings seats are made from.
    cycle: CycleConfig,
    leader: LeaderConfig,
    seed: u64,
}

/// One stream held (or being handed over).
#[derive(Debug)]
struct Seat {
    slot: Slot,
    unit: Unit,
}

impl Node {
    /// A node with these settings; `seed` drives every random choice (block ids). With
    /// [`LeaderConfig::streams`] set, elected and `--wait`, every replica compacts: the node
    /// holds the streams assigned to it, and the bucket's leader keeps the bucket's chores.
    pub fn new(cfg: CycleConfig, leader: LeaderConfig, seed: u64) -> Self {
        let scaled_out = leader.election.is_some() && cfg.wait;
        let streams = leader
            .streams
            .clone()
            .filter(|_| scaled_out)
            .map(|sc| Streams {
                director: Director::new(sc, leader.node.clone(), cfg.view.clone()),
                seats: BTreeMap::new(),
                next_slot: Slot::FIRST_SEAT,
                cycle: cfg.clone(),
                leader: leader.clone(),
                seed,
            });
        let mut bucket_cycle = cfg;
        if streams.is_some() {
            bucket_cycle.view.scope = Scope::BucketChores;
        }
        Node {
            bucket: Unit::new(Leader::new(leader), Cycle::new(bucket_cycle, seed)),
            streams,
            last_mono: Millis(i64::MIN),
        }
    }

    /// Advances the node on `input` at `now` and returns what to do, in order.
    ///
    /// Contract: `now.mono` never decreases between calls; the outputs are executed in
    /// order; an early [`Input::Tick`] is a no-op. Deterministic: the same sequence of
    /// `(now, input)` from the same initial state gives the same outputs, bit for bit.
    pub fn step(&mut self, now: Now, input: Input) -> Vec<Output> {
        let out = self.advance(now, input);
        if cfg!(debug_assertions) {
            self.check_invariants(now, &out);
        }
        out
    }

    /// The body of [`Node::step`].
    fn advance(&mut self, now: Now, input: Input) -> Vec<Output> {
        debug_assert!(now.mono >= self.last_mono, "monotonic time went back");
        self.last_mono = now.mono;
        let mut out = Vec::new();
        match self.streams.as_mut() {
            None => self.bucket.step(now, input, &mut out),
            Some(streams) => {
                streams.route(now, input, &mut self.bucket, &mut out);
                streams.tend(now, &self.bucket, &mut out);
            }
        }
        let bucket = self.bucket.next_timer(now);
        let streams = self
            .streams
            .as_mut()
            .and_then(|s| s.next_timer(now, &self.bucket));
        if let Some(at) = [bucket, streams].into_iter().flatten().min() {
            out.push(Output::Timer(at));
        }
        out
    }

    /// The permits this node writes under at `now`: the bucket leader's and every stream
    /// seat's that leads.
    pub fn permits(&self, now: Now) -> Vec<Permit> {
        let seats = self.seats().map(|(_, seat)| &seat.unit);
        std::iter::once(&self.bucket)
            .chain(seats)
            .filter_map(|u| u.leader.permit(now))
            .collect()
    }

    /// The bucket's cycle, for status reporting.
    pub fn cycle(&self) -> &Cycle {
        &self.bucket.cycle
    }

    /// The views of the bucket's unit and of every stream held, as of their last syncs.
    pub fn views(&self) -> impl Iterator<Item = &BucketView> {
        let seats = self.seats().map(|(_, seat)| seat.unit.cycle.view());
        std::iter::once(self.bucket.cycle.view()).chain(seats)
    }

    /// The bucket leader this node knows of (itself when it leads).
    pub fn known_leader(&self) -> Option<&LeaderInfo> {
        self.bucket.leader.known_leader()
    }

    /// The streams this node leads now, with their epochs.
    pub fn owned_streams(&self) -> BTreeMap<StreamId, u64> {
        self.seats()
            .filter_map(|(s, seat)| Some((*s, seat.unit.leader.leading()?.0)))
            .collect()
    }

    /// The assignment of streams to members this node acts on (empty without streams).
    pub fn assignment(&self) -> BTreeMap<StreamId, String> {
        self.streams
            .as_ref()
            .map(|s| s.director.assignment().clone())
            .unwrap_or_default()
    }

    fn seats(&self) -> impl Iterator<Item = (&StreamId, &Seat)> {
        self.streams.iter().flat_map(|s| s.seats.iter())
    }
}

impl Streams {
    /// Routes `input` to its unit (by the slot of its id) or the director.
    fn route(&mut self, now: Now, input: Input, bucket: &mut Unit, out: &mut Vec<Output>) {
        let slot = match &input {
            Input::Coord(id, _) => Slot::of_coord(*id),
            Input::Store(id, _) => Slot::of_request(*id),
            Input::Compacted(job, _) => Slot::of_job(*job),
            Input::Start | Input::Tick => Slot::BUCKET,
            Input::Admin(request) => match request.stream {
                None => Slot::BUCKET,
                Some(stream) => match self.seats.get(&stream) {
                    Some(seat) => seat.slot,
                    // `--bug admin-wrong-unit`: the bucket leader takes it instead.
                    None if !self.leader.safety.admin_stream_routing => Slot::BUCKET,
                    None => {
                        out.push(self.not_held(stream, request.id));
                        return;
                    }
                },
            },
            Input::Shutdown => {
                // Hand every stream over at once; the bucket leader then resigns, which
                // revokes the session's lease and the seats' keys with it.
                for (stream, seat) in &mut self.seats {
                    let mut seat_out = Vec::new();
                    seat.unit.step(now, Input::Shutdown, &mut seat_out);
                    wrap(*stream, seat_out, out);
                }
                Slot::BUCKET
            }
        };
        match (slot, input) {
            (Slot::BUCKET, input) => bucket.step(now, input, out),
            (Slot::DIRECTOR, Input::Coord(id, result)) => self.director.on_coord(now, id, result),
            (Slot::DIRECTOR, Input::Store(id, result)) => self.director.on_store(now, id, result),
            (slot, input) => {
                // A late answer to a seat handed over finds none and is dropped.
                if let Some((stream, seat)) = self.seats.iter_mut().find(|(_, s)| s.slot == slot) {
                    let mut seat_out = Vec::new();
                    seat.unit.step(now, input, &mut seat_out);
                    wrap(*stream, seat_out, out);
                }
            }
        }
    }

    /// The answer to an operator request for a stream this node holds no seat for.
    fn not_held(&self, stream: StreamId, id: AdminId) -> Output {
        let owner = match self.director.assignment().get(&stream) {
            Some(member) => format!("it is assigned to {member:?}"),
            None => "no replica is assigned it".into(),
        };
        Output::Event(Event::AdminDone {
            id,
            outcome: AdminOutcome::failed(format!(
                "this replica does not hold stream {stream}: {owner}"
            )),
        })
    }

    /// Keeps the seats in line with the assignment and the session: seats for the streams
    /// assigned to this node, hand-over of the others at their cycle's next job boundary (the
    /// jobs running finish, none starts), the session's lease lent to every seat; then every
    /// seat gets its turn.
    fn tend(&mut self, now: Now, bucket: &Unit, out: &mut Vec<Output>) {
        let session = bucket.leader.session_lease();
        self.director.drive(now, session.is_some(), out);
        let mine = self.director.mine();
        for stream in &mine {
            if !self.seats.contains_key(stream) {
                let seat = self.seat(*stream);
                self.seats.insert(*stream, seat);
            }
        }
        for (stream, seat) in &mut self.seats {
            let mut seat_out = Vec::new();
            seat.unit
                .leader
                .adopt_session(now, session.clone(), &mut seat_out);
            let input = if seat.unit.leader.started() {
                Input::Tick
            } else {
                Input::Start
            };
            let handing_over = !mine.contains(stream);
            // With `stream_release` off (`--bug stale-ownership`) nothing stops the cycle: it
            // withdraws the key when at rest and goes on writing.
            let drain = handing_over && self.leader.safety.stream_release;
            seat.unit.cycle.hand_over(drain);
            seat.unit.step(now, input, &mut seat_out);
            if handing_over && seat.unit.cycle.may_hand_over() {
                seat.unit.step(now, Input::Shutdown, &mut seat_out);
            }
            wrap(*stream, seat_out, out);
        }
        self.seats.retain(|_, seat| !seat.unit.leader.exited());
    }

    /// A new seat for `stream`, before its start.
    fn seat(&mut self, stream: StreamId) -> Seat {
        let slot = self.next_slot;
        self.next_slot = slot.next();
        let prefix = self.director_prefix();
        let mut leader = LeaderConfig {
            election: Some(format!("{prefix}/streams/{stream}")),
            stream: Some(stream),
            streams: None,
            ..self.leader.clone()
        };
        leader.safety.fence &= leader.safety.stream_fence;
        if !leader.safety.stream_takeover_delay {
            leader.takeover_delay_ms = 0;
        }
        let mut cycle = self.cycle.clone();
        cycle.view.scope = Scope::Stream(stream);
        let seed = self.seed ^ u64::from(slot.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Seat {
            slot,
            unit: Unit::new(
                Leader::in_slot(leader, slot),
                Cycle::in_slot(cycle, seed, slot),
            ),
        }
    }

    fn director_prefix(&self) -> String {
        self.leader
            .streams
            .as_ref()
            .map(|s| s.prefix.clone())
            .unwrap_or_default()
    }

    /// The earliest wake-up of the director and the seats.
    fn next_timer(&mut self, now: Now, bucket: &Unit) -> Option<Millis> {
        let member = bucket.leader.session_lease().is_some();
        let seats = self
            .seats
            .values_mut()
            .filter_map(|s| s.unit.next_timer(now));
        seats.chain(self.director.next_timer(member)).min()
    }
}

/// Passes a seat's outputs on: its events marked with its stream; its exit (a hand-over
/// done) stays with the node.
fn wrap(stream: StreamId, seat_out: Vec<Output>, out: &mut Vec<Output>) {
    for o in seat_out {
        match o {
            Output::Event(event) => out.push(Output::Event(Event::Stream {
                stream,
                event: Box::new(event),
            })),
            Output::Exit(_) | Output::Timer(_) => {}
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests;

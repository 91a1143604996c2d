//! The stream director: who the members are (the keys of the bucket's election, one per live
//! replica), which streams the bucket holds (a listing), and which of them this node should
//! hold — the balanced rendezvous assignment over both ([`assign`]).
//!
//! Adoption: an assignment that gives a stream to a node because its owner left (its key
//! is gone) or because the stream is new is adopted at once — nobody holds those streams.
//! One that only moves streams between live members (a replica joined) is adopted once it has
//! been the computed one for `rebalance_delay_ms`, so that a replica coming and going does
//! not move streams back and forth.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::assign::assign;
use crate::core::coord::{CoordId, CoordOp, CoordRequest, CoordResult};
use crate::core::leader::StreamsConfig;
use crate::core::request_ids::{Requester, Slot, StoreRequestIds};
use crate::core::stream::StreamId;
use crate::core::types::{
    Event, MetaState, Millis, Now, Output, ReadOp, RequestId, StoreRequest, StoreResult, SyncResult,
};
use crate::core::view::{in_time_range, selected, ViewConfig};

/// The director's state.
#[derive(Debug)]
pub(super) struct Director {
    cfg: StreamsConfig,
    /// This node's name.
    me: String,
    /// The filters that decide which blocks this node acts on at all.
    view: ViewConfig,
    /// The members as last observed.
    members: Option<BTreeSet<String>>,
    /// The streams as last listed.
    streams: Option<BTreeSet<StreamId>>,
    /// The assignment in force.
    in_force: BTreeMap<StreamId, String>,
    /// A computed assignment that waits for the rebalance delay, and since when.
    pending: Option<(BTreeMap<StreamId, String>, Millis)>,
    /// The members' range in flight, or when to send the next.
    observe: Request<CoordId>,
    /// The listing in flight, or when to send the next.
    discover: Request<RequestId>,
    last_coord: u64,
    requests: StoreRequestIds,
}

/// A periodic request: in flight, or due at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request<Id> {
    InFlight(Id),
    DueAt(Millis),
}

impl Director {
    /// A director for node `me`, acting on the blocks `view` selects.
    pub(super) fn new(cfg: StreamsConfig, me: String, view: ViewConfig) -> Director {
        Director {
            cfg,
            me,
            view,
            members: None,
            streams: None,
            in_force: BTreeMap::new(),
            pending: None,
            observe: Request::DueAt(Millis(i64::MIN)),
            discover: Request::DueAt(Millis(i64::MIN)),
            last_coord: Slot::DIRECTOR.coord_base(),
            requests: StoreRequestIds::new(Requester::Cycle, Slot::DIRECTOR),
        }
    }

    /// The streams this node should hold now.
    pub(super) fn mine(&self) -> BTreeSet<StreamId> {
        self.in_force
            .iter()
            .filter(|(_, owner)| **owner == self.me)
            .map(|(s, _)| *s)
            .collect()
    }

    /// The assignment in force: every stream and the member that should hold it.
    pub(super) fn assignment(&self) -> &BTreeMap<StreamId, String> {
        &self.in_force
    }

    /// Sends what is due: the members' range while this node is a member itself (`member`:
    /// it holds the session's lease), the listing; then adopts the assignment if it may.
    pub(super) fn drive(&mut self, now: Now, member: bool, out: &mut Vec<Output>) {
        if member && self.observe.due(now) {
            self.last_coord += 1;
            let id = CoordId(self.last_coord);
            let prefix = format!("{}/election/", self.cfg.prefix);
            out.push(Output::Coord(CoordRequest {
                id,
                op: CoordOp::Observe { prefix },
            }));
            self.observe = Request::InFlight(id);
        }
        if member && self.discover.due(now) {
            let id = self.requests.next();
            out.push(Output::Store(StoreRequest::read(id, ReadOp::Sync)));
            self.discover = Request::InFlight(id);
        }
        if !member {
            // Without the session nothing may be held: forget the members until we are one,
            // and the assignment that waited for them (its delay would be due at once, and
            // stay due, until a member again: a busy loop).
            self.members = None;
            self.pending = None;
        }
        self.adopt(now, out);
    }

    /// Takes the answer to the members' range `id`, if it is ours.
    pub(super) fn on_coord(&mut self, now: Now, id: CoordId, result: CoordResult) {
        if self.observe != Request::InFlight(id) {
            return;
        }
        self.observe = Request::DueAt(now.mono.plus(self.cfg.observe_interval_ms));
        if let CoordResult::Observed { keys, .. } = result {
            self.members = Some(keys.into_iter().map(|k| k.value).collect());
        }
    }

    /// Takes the answer to the listing `id`, if it is ours.
    pub(super) fn on_store(&mut self, now: Now, id: RequestId, result: StoreResult) {
        if self.discover != Request::InFlight(id) {
            return;
        }
        match result {
            StoreResult::Synced(sync) => {
                self.streams = Some(self.streams_of(&sync));
                self.discover = Request::DueAt(now.mono.plus(self.cfg.discover_interval_ms));
            }
            _ => self.discover = Request::DueAt(now.mono.plus(self.cfg.observe_interval_ms)),
        }
    }

    /// The streams of the blocks this node acts on.
    fn streams_of(&self, sync: &SyncResult) -> BTreeSet<StreamId> {
        sync.blocks
            .values()
            .filter_map(|b| match &b.meta {
                MetaState::Ok(meta) => Some(meta),
                _ => None,
            })
            .filter(|m| in_time_range(m, &self.view) && selected(m, &self.view))
            .filter_map(|m| StreamId::of_block(m, &self.view.replica_labels))
            .collect()
    }

    /// Adopts the computed assignment: at once when it gives out streams nobody holds, after
    /// the rebalance delay when it only moves streams between live members.
    fn adopt(&mut self, now: Now, out: &mut Vec<Output>) {
        let (Some(members), Some(streams)) = (&self.members, &self.streams) else {
            return;
        };
        let computed = assign(members, streams);
        if computed == self.in_force {
            self.pending = None;
            return;
        }
        let orphans = computed
            .keys()
            .any(|s| !self.in_force.get(s).is_some_and(|o| members.contains(o)));
        let since = match &self.pending {
            Some((p, since)) if *p == computed => *since,
            _ => now.mono,
        };
        if orphans || now.mono >= since.plus(self.cfg.rebalance_delay_ms) {
            let moved = computed
                .iter()
                .filter(|(s, o)| self.in_force.get(s) != Some(o))
                .count();
            out.push(Output::Event(Event::StreamsAssigned {
                streams: computed.len(),
                members: members.len(),
                moved,
                mine: computed.values().filter(|o| **o == self.me).count(),
            }));
            self.in_force = computed;
            self.pending = None;
        } else {
            self.pending = Some((computed, since));
        }
    }

    /// When the director next has something to do, if ever; its requests wait while this
    /// node is no `member`.
    pub(super) fn next_timer(&self, member: bool) -> Option<Millis> {
        let pending = self
            .pending
            .as_ref()
            .map(|(_, since)| since.plus(self.cfg.rebalance_delay_ms));
        let requests = [self.observe.due_at(), self.discover.due_at()];
        requests
            .into_iter()
            .filter(|_| member)
            .chain([pending])
            .flatten()
            .min()
    }
}

impl<Id: Copy> Request<Id> {
    fn due(&self, now: Now) -> bool {
        matches!(self, Request::DueAt(at) if now.mono >= *at)
    }

    fn due_at(&self) -> Option<Millis> {
        match self {
            Request::DueAt(at) => Some(*at),
            Request::InFlight(_) => None,
        }
    }
}

//! Request and job ids, split between their requesters. A node runs several *units* — the
//! bucket's leader and cycle and, when every replica compacts, a leader and a cycle for each
//! stream it holds, plus the stream director — and all of them share the driver and the node's
//! input channel; a result is told apart by its id alone ([`Node::step`] routes it), so each
//! requester counts up in a range of its own:
//!
//! - a [`Slot`] (bits 32..62) names the unit: 0 the bucket, 1 the stream director, then one
//!   per stream seat, never reused within a process (a late answer to a seat that was handed
//!   over finds no unit and is dropped);
//! - bit 62 ([`LEADER_STORE_REQUEST_ID_BASE`]) marks a leader's store requests (fence reads
//!   and CASes), apart from its cycle's;
//! - the low 32 bits count. The bucket's slot is 0, so a node without streams numbers its
//!   requests exactly as before slots existed: the cycle from 1, the leader from just above
//!   bit 62, coordinator requests and jobs from 1.
//!
//! [`Node::step`]: super::node::Node::step

use super::coord::CoordId;
use super::types::{JobId, RequestId};

/// Leaders' store request ids have this bit set.
const LEADER_STORE_REQUEST_ID_BASE: u64 = 1 << 62;
/// Where the slot starts in an id.
const SLOT_SHIFT: u32 = 32;

/// A unit's range of ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Slot(pub u32);

impl Slot {
    /// The bucket's leader and cycle.
    pub const BUCKET: Slot = Slot(0);
    /// The stream director (membership and stream discovery).
    pub const DIRECTOR: Slot = Slot(1);
    /// The first stream seat's.
    pub const FIRST_SEAT: Slot = Slot(2);

    /// The first id of the slot's range (ids count up from one past it).
    fn base(self) -> u64 {
        u64::from(self.0) << SLOT_SHIFT
    }

    /// The slot a raw id belongs to.
    fn of(raw: u64) -> Slot {
        Slot(((raw & !LEADER_STORE_REQUEST_ID_BASE) >> SLOT_SHIFT) as u32)
    }

    /// The slot of a store request.
    pub fn of_request(id: RequestId) -> Slot {
        Slot::of(id.0)
    }

    /// The slot of a coordinator request.
    pub fn of_coord(id: CoordId) -> Slot {
        Slot::of(id.0)
    }

    /// The slot of a job.
    pub fn of_job(id: JobId) -> Slot {
        Slot::of(id.0)
    }

    /// The next slot.
    pub fn next(self) -> Slot {
        Slot(self.0 + 1)
    }

    /// The first job id of the slot's range (job ids count up from one past it).
    pub(super) fn job_base(self) -> u64 {
        self.base()
    }

    /// The first coordinator id of the slot's range.
    pub(super) fn coord_base(self) -> u64 {
        self.base()
    }
}

/// Who issued a store request, within a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Requester {
    /// The compaction cycle (or the stream director).
    Cycle,
    /// Leadership (the fence).
    Leader,
}

impl Requester {
    /// The requester whose range holds `id`.
    pub(super) fn of(id: RequestId) -> Requester {
        if id.0 & LEADER_STORE_REQUEST_ID_BASE != 0 && id.0 != LEADER_STORE_REQUEST_ID_BASE {
            Requester::Leader
        } else {
            Requester::Cycle
        }
    }
}

/// One requester's store request ids, counting up in its range.
#[derive(Debug)]
pub(super) struct StoreRequestIds {
    requester: Requester,
    last: u64,
}

impl StoreRequestIds {
    /// No id issued yet by `requester` of the unit in `slot`.
    pub(super) fn new(requester: Requester, slot: Slot) -> StoreRequestIds {
        let last = match requester {
            Requester::Cycle => slot.base(),
            Requester::Leader => LEADER_STORE_REQUEST_ID_BASE | slot.base(),
        };
        StoreRequestIds { requester, last }
    }

    /// The id of the next store request.
    pub(super) fn next(&mut self) -> RequestId {
        self.last += 1;
        let id = RequestId(self.last);
        debug_assert_eq!(Requester::of(id), self.requester, "out of its range");
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_requester_counts_in_its_own_range() {
        let mut cycle = StoreRequestIds::new(Requester::Cycle, Slot::BUCKET);
        let mut leader = StoreRequestIds::new(Requester::Leader, Slot::BUCKET);
        assert_eq!((cycle.next(), cycle.next()), (RequestId(1), RequestId(2)));
        let first = leader.next();
        assert_eq!(first, RequestId(LEADER_STORE_REQUEST_ID_BASE + 1));
        assert_eq!(leader.next(), RequestId(first.0 + 1));
        assert_eq!(Requester::of(first), Requester::Leader);
        assert_eq!(Requester::of(RequestId(1)), Requester::Cycle);
        assert_eq!(
            Requester::of(RequestId(LEADER_STORE_REQUEST_ID_BASE)),
            Requester::Cycle
        );
    }

    #[test]
    fn every_unit_counts_in_its_slot() {
        let seat = Slot(7);
        let mut cycle = StoreRequestIds::new(Requester::Cycle, seat);
        let mut leader = StoreRequestIds::new(Requester::Leader, seat);
        let (c, l) = (cycle.next(), leader.next());
        assert_eq!((Slot::of_request(c), Slot::of_request(l)), (seat, seat));
        assert_eq!(
            (Requester::of(c), Requester::of(l)),
            (Requester::Cycle, Requester::Leader)
        );
        assert_eq!(Slot::of_request(RequestId(1)), Slot::BUCKET);
        assert_eq!(Slot::of_coord(CoordId(seat.coord_base() + 3)), seat);
        assert_eq!(Slot::of_job(JobId(seat.job_base() + 1)), seat);
        assert_eq!(Slot::BUCKET.next(), Slot::DIRECTOR);
    }
}

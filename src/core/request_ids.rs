//! Store request ids, split between their two requesters. The cycle's store requests and the
//! leader's (fence reads and CASes) share the driver and the node's input channel, and a
//! result is told apart by its id alone ([`Node::step`] routes it by [`Requester::of`]), so
//! each requester counts up in a range of its own: the cycle from 1, the leader from just
//! above [`LEADER_STORE_REQUEST_ID_BASE`].
//!
//! [`Node::step`]: super::node::Node::step

use super::types::RequestId;

/// The leader's store request ids are the ones above this. The cycle counts up from 1 and
/// would need 2^62 requests to get here.
const LEADER_STORE_REQUEST_ID_BASE: u64 = 1 << 62;

/// Who issued a store request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Requester {
    /// The compaction cycle.
    Cycle,
    /// Leadership (the fence).
    Leader,
}

impl Requester {
    /// The requester whose range holds `id`.
    pub(super) fn of(id: RequestId) -> Requester {
        if id.0 > LEADER_STORE_REQUEST_ID_BASE {
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
    /// No id issued yet by `requester`.
    pub(super) fn new(requester: Requester) -> StoreRequestIds {
        let last = match requester {
            Requester::Cycle => 0,
            Requester::Leader => LEADER_STORE_REQUEST_ID_BASE,
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
        let mut cycle = StoreRequestIds::new(Requester::Cycle);
        let mut leader = StoreRequestIds::new(Requester::Leader);
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
}

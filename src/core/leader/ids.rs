//! The ids of the leader's requests. Its store requests (fence reads and CASes) share the
//! driver, and the node's input channel, with the cycle's; they are told apart by the id
//! alone, so the leader draws its store ids from a range of its own.

use crate::core::coord::CoordId;
use crate::core::types::RequestId;

/// The leader's store request ids are the ones above this. The cycle numbers its store
/// requests up from 1, and would need 2^62 of them to get here, so [`Node::step`] routes a
/// store result to the leader by [`RequestIds::is_leaders`] alone.
///
/// [`Node::step`]: crate::core::node::Node::step
const LEADER_STORE_REQUEST_ID_BASE: u64 = 1 << 62;

/// Allocates the leader's request ids: coordinator requests count up from 1, store requests
/// from just above [`LEADER_STORE_REQUEST_ID_BASE`].
#[derive(Debug)]
pub(super) struct RequestIds {
    last_coord: u64,
    last_store: u64,
}

impl RequestIds {
    /// No id issued yet.
    pub(super) fn new() -> RequestIds {
        RequestIds {
            last_coord: 0,
            last_store: LEADER_STORE_REQUEST_ID_BASE,
        }
    }

    /// The id of the next coordinator request.
    pub(super) fn next_coord(&mut self) -> CoordId {
        self.last_coord += 1;
        CoordId(self.last_coord)
    }

    /// The id of the next store request.
    pub(super) fn next_store(&mut self) -> RequestId {
        self.last_store += 1;
        debug_assert!(Self::is_leaders(RequestId(self.last_store)));
        RequestId(self.last_store)
    }

    /// True if `id` is in the leader's range of store request ids.
    pub(super) fn is_leaders(id: RequestId) -> bool {
        id.0 > LEADER_STORE_REQUEST_ID_BASE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_the_leaders_and_the_cycles_are_not() {
        let mut ids = RequestIds::new();
        let first = ids.next_store();
        assert!(RequestIds::is_leaders(first));
        assert!(!RequestIds::is_leaders(RequestId(1)));
        assert!(!RequestIds::is_leaders(RequestId(
            LEADER_STORE_REQUEST_ID_BASE
        )));
        assert_eq!(ids.next_store(), RequestId(first.0 + 1));
        assert_eq!(
            (ids.next_coord(), ids.next_coord()),
            (CoordId(1), CoordId(2))
        );
    }
}

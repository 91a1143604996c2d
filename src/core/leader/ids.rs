//! The ids of the leader's requests: its coordinator requests count up in its unit's slot
//! (from 1 for the bucket's); its store requests (fence reads and CASes) draw from the
//! leader's range of store request ids ([`super::super::request_ids`]), apart from the
//! cycle's.

use crate::core::coord::CoordId;
use crate::core::request_ids::{Requester, Slot, StoreRequestIds};
use crate::core::types::RequestId;

/// Allocates the leader's request ids.
#[derive(Debug)]
pub(super) struct RequestIds {
    last_coord: u64,
    store: StoreRequestIds,
}

impl RequestIds {
    /// No id issued yet by the leader of the unit in `slot`.
    pub(super) fn new(slot: Slot) -> RequestIds {
        RequestIds {
            last_coord: slot.coord_base(),
            store: StoreRequestIds::new(Requester::Leader, slot),
        }
    }

    /// The id of the next coordinator request.
    pub(super) fn next_coord(&mut self) -> CoordId {
        self.last_coord += 1;
        CoordId(self.last_coord)
    }

    /// The id of the next store request.
    pub(super) fn next_store(&mut self) -> RequestId {
        self.store.next()
    }

    /// True if `id` is in the leader's range of store request ids.
    pub(super) fn is_leaders(id: RequestId) -> bool {
        Requester::of(id) == Requester::Leader
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_the_leaders_and_the_cycles_are_not() {
        let mut ids = RequestIds::new(Slot::BUCKET);
        let first = ids.next_store();
        assert!(RequestIds::is_leaders(first));
        assert!(!RequestIds::is_leaders(RequestId(1)));
        assert_eq!(ids.next_store(), RequestId(first.0 + 1));
        assert_eq!(
            (ids.next_coord(), ids.next_coord()),
            (CoordId(1), CoordId(2))
        );
    }
}

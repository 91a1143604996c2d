//! The cycle's ids: of its store requests, of its jobs, and of the blocks its jobs write.
//!
//! - **Store requests** count up in the cycle's range ([`super::super::request_ids`]), apart
//!   from the leader's.
//! - **Jobs**: a pass reserves one id per queued item when it starts ([`CycleIds::reserve`]),
//!   used or not, so ids never repeat within a process and a late result of an abandoned
//!   pass's job cannot be taken for a job of a later pass.
//! - **New blocks**: a job's output is named at its pass's start time, with random bits the
//!   reservation draws from the seeded RNG (one draw per queued item, up front), mixed with
//!   the job's number; the pass needs no RNG later, so the draws do not depend on the order
//!   in which results arrive.

use std::collections::VecDeque;

use super::super::request_ids::{Requester, Slot, StoreRequestIds};
use super::super::types::{JobId, Now, RequestId};
use crate::rng::Rng;
use crate::tsdb::block_id::BlockId;

/// Every id the cycle hands out.
#[derive(Debug)]
pub(super) struct CycleIds {
    requests: StoreRequestIds,
    /// The last job id reserved.
    last_job: u64,
    /// The random part of new block ids.
    rng: Rng,
}

impl CycleIds {
    /// No id issued yet by the cycle of the unit in `slot`; `seed` drives block ids.
    pub(super) fn new(seed: u64, slot: Slot) -> CycleIds {
        CycleIds {
            requests: StoreRequestIds::new(Requester::Cycle, slot),
            last_job: slot.job_base(),
            rng: Rng::new(seed),
        }
    }

    /// The id of the next store request.
    pub(super) fn next_request(&mut self) -> RequestId {
        self.requests.next()
    }

    /// Reserves the ids of a pass of up to `jobs` jobs starting at `now`.
    pub(super) fn reserve(&mut self, jobs: usize, now: Now) -> JobIds {
        let random = (0..jobs).map(|_| self.rng.ulid_bits()).collect();
        let first = self.last_job;
        self.last_job += jobs as u64;
        JobIds {
            last: first,
            end: self.last_job,
            random,
            started_wall_ms: now.wall.0,
        }
    }
}

/// The job ids and new block ids reserved for one pass.
#[derive(Debug)]
pub(super) struct JobIds {
    /// The last job id handed out.
    last: u64,
    /// The last job id reserved.
    end: u64,
    /// The random part of each remaining job's block id, in order.
    random: VecDeque<u128>,
    /// When the pass started (Unix ms): the time part of its block ids.
    started_wall_ms: i64,
}

impl JobIds {
    /// The next job's id and the id of the block it writes.
    pub(super) fn next(&mut self) -> (JobId, BlockId) {
        debug_assert!(self.last < self.end, "more jobs than queued items");
        self.last += 1;
        let random = self
            .random
            .pop_front()
            .expect("one random draw per reserved job");
        let output = BlockId::from_parts(
            self.started_wall_ms.max(0) as u64,
            random ^ u128::from(self.last),
        );
        (JobId(self.last), output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::Millis;

    fn at(wall_ms: i64) -> Now {
        Now {
            mono: Millis(0),
            wall: Millis(wall_ms),
        }
    }

    #[test]
    fn a_pass_reserves_a_job_id_per_queued_item_used_or_not() {
        let mut ids = CycleIds::new(1, Slot::BUCKET);
        let mut first = ids.reserve(3, at(5_000));
        assert_eq!(first.next().0, JobId(1));
        let mut second = ids.reserve(2, at(6_000));
        assert_eq!(second.next().0, JobId(4), "after the first pass's three");
        assert_eq!(first.next().0, JobId(2));
        assert_eq!(ids.next_request(), RequestId(1));
        assert_eq!(ids.next_request(), RequestId(2));
    }

    #[test]
    fn block_ids_carry_the_pass_start_and_the_seeded_draws() {
        let mut rng = Rng::new(9);
        let random = rng.ulid_bits();
        let mut ids = CycleIds::new(9, Slot::BUCKET);
        let (job, block) = ids.reserve(2, at(7_000)).next();
        assert_eq!(job, JobId(1));
        assert_eq!(block, BlockId::from_parts(7_000, random ^ 1));
    }
}

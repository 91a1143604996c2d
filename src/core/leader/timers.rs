//! The leader's timers: one named deadline for each thing it waits to do, in one table, so
//! that the next wake-up is the earliest entry ([`Timers::next`]) and an early tick finds
//! nothing due. Also the retry backoff that sets the retry deadlines.
//!
//! Two kinds of entry. Timers that schedule an action (the next keepalive, the role's next
//! coordinator request, the end of the takeover delay, a fence retry) live only here: set where
//! the action is scheduled, stopped where it is done or abandoned. Deadlines that follow from
//! other state (the lease's two, the fence renewal) are re-armed from that state at the end of
//! every input (`Leader::arm_state_timers`); within a step the leader reads those from the state
//! itself.

use std::collections::BTreeMap;

use crate::core::types::Millis;

/// First retry delay after a failed coordinator or fence request; doubles up to
/// [`RETRY_MAX_MS`].
pub(super) const RETRY_MIN_MS: i64 = 250;
/// The longest retry delay.
const RETRY_MAX_MS: i64 = 5_000;

/// What the leader waits to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// Send the next lease keepalive. Armed while the node holds a lease and no keepalive is
    /// in flight.
    Keepalive,
    /// Give up the lease: no renewal sent within the last TTL was acknowledged. Armed while
    /// the node holds a lease and [`Safety::abandon_unheard_lease`] is in force.
    ///
    /// [`Safety::abandon_unheard_lease`]: super::Safety::abandon_unheard_lease
    LeaseUnheard,
    /// The write permit lapses (`op_timeout` before the lease deadline): stop writing. Armed
    /// while the node holds a lease in a role that may write (fencing, delaying, leading).
    PermitLapse,
    /// Send the role's next coordinator request (grant, campaign, observe, revoke), first or
    /// retried. Armed while the role has that request to send.
    CoordRequest,
    /// The takeover delay ends: lead. Armed while delaying.
    TakeoverDelay,
    /// Renew the fence (its heartbeat CAS, every TTL/3). Armed while leading with no fence
    /// request in flight and no fence retry pending: the retry replaces the renewal.
    FenceRenewal,
    /// Retry a failed fence request, with a read (whether a failed CAS applied is unknown).
    FenceRetry,
}

/// The deadline of every armed [`Timer`], on the monotonic clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Timers(BTreeMap<Timer, Millis>);

impl Timers {
    /// Arms `timer` for `at`, replacing its earlier deadline.
    pub(super) fn set(&mut self, timer: Timer, at: Millis) {
        self.0.insert(timer, at);
    }

    /// Arms `timer` for `at`, or stops it when `at` is `None`.
    pub(super) fn arm(&mut self, timer: Timer, at: Option<Millis>) {
        match at {
            Some(at) => self.set(timer, at),
            None => self.stop(timer),
        }
    }

    /// Stops `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.0.remove(&timer);
    }

    /// The deadline of `timer`, when armed.
    pub(super) fn get(&self, timer: Timer) -> Option<Millis> {
        self.0.get(&timer).copied()
    }

    /// True when `timer` is armed and its deadline is at or before `now`.
    pub(super) fn is_due(&self, timer: Timer, now: Millis) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    /// The earliest deadline of all, if any timer is armed.
    pub(super) fn next(&self) -> Option<Millis> {
        self.0.values().min().copied()
    }
}

/// The retry delay of coordinator and fence requests: [`RETRY_MIN_MS`] after a success,
/// doubling with every failure up to [`RETRY_MAX_MS`]. One delay serves both kinds: a
/// failure of either means etcd or the store is in trouble, and the next retry of either
/// backs off further.
#[derive(Debug)]
pub(super) struct Backoff {
    delay_ms: i64,
}

impl Backoff {
    /// The minimum delay.
    pub(super) fn new() -> Backoff {
        Backoff {
            delay_ms: RETRY_MIN_MS,
        }
    }

    /// When to retry a request that failed at `now`; the delay after the next failure
    /// doubles.
    pub(super) fn retry_at(&mut self, now: Millis) -> Millis {
        let at = now.plus(self.delay_ms);
        self.delay_ms = (self.delay_ms * 2).min(RETRY_MAX_MS);
        at
    }

    /// A request succeeded: the next failure is retried after the minimum delay again.
    pub(super) fn reset(&mut self) {
        self.delay_ms = RETRY_MIN_MS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_wake_is_the_earliest_armed_timer() {
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Keepalive, Millis(30));
        timers.set(Timer::FenceRetry, Millis(20));
        timers.arm(Timer::TakeoverDelay, Some(Millis(25)));
        assert_eq!(timers.next(), Some(Millis(20)));
        assert!(timers.is_due(Timer::FenceRetry, Millis(20)));
        assert!(!timers.is_due(Timer::Keepalive, Millis(29)));
        timers.stop(Timer::FenceRetry);
        timers.arm(Timer::TakeoverDelay, None);
        assert_eq!(timers.next(), Some(Millis(30)));
        assert!(!timers.is_due(Timer::FenceRetry, Millis(100)));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_maximum_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<i64> = (0..7).map(|_| backoff.retry_at(Millis(0)).0).collect();
        assert_eq!(delays, [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
        backoff.reset();
        assert_eq!(backoff.retry_at(Millis(10)), Millis(260));
    }
}

//! A node's clocks in the simulation: turmoil has one global clock, so each node reads
//! `offset + rate * sim_now` on its monotonic clock and a wall clock that may also jump.

use compactd::core::types::{Millis, Now};

/// One node's clocks, as functions of the world's milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    /// Monotonic milliseconds at world time 0.
    pub mono_offset_ms: i64,
    /// Unix milliseconds at world time 0 (moved by wall-clock jumps).
    pub wall_offset_ms: i64,
    /// How fast the node's clocks run against the world's (1.0: exactly).
    pub rate: f64,
}

impl Clock {
    /// The node's [`Now`] at world time `sim_ms`.
    pub fn now(&self, sim_ms: i64) -> Now {
        let elapsed = (sim_ms as f64 * self.rate) as i64;
        Now {
            mono: Millis(self.mono_offset_ms + elapsed),
            wall: Millis(self.wall_offset_ms + elapsed),
        }
    }

    /// The first world time at which the node's monotonic clock reads `mono` or later.
    pub fn sim_at(&self, mono: Millis) -> i64 {
        if mono == Millis::MAX {
            return i64::MAX;
        }
        let mut at = ((mono.0 - self.mono_offset_ms) as f64 / self.rate).ceil() as i64;
        while self.now(at).mono < mono {
            at += 1;
        }
        at
    }

    /// The world duration that lasts `ms` on this node's clock (rounded up).
    pub fn sim_span(&self, ms: i64) -> i64 {
        (ms as f64 / self.rate).ceil() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_at_inverts_now() {
        let c = Clock {
            mono_offset_ms: 1_000,
            wall_offset_ms: 5_000,
            rate: 0.97,
        };
        for sim in [0, 1, 999, 123_457] {
            let mono = c.now(sim).mono;
            let at = c.sim_at(mono);
            assert!(at <= sim && c.now(at).mono == mono, "{sim}");
        }
        assert_eq!(c.now(0).wall, Millis(5_000));
    }
}

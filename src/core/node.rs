//! The node: the core's single entry point. It owns the compaction cycle (and, with
//! leadership, the state that grants write permits) and is advanced only by
//! [`Node::step`].

use super::cycle::{Cycle, CycleConfig};
use super::types::{Epoch, Input, Millis, Now, Output, Permit};

/// A compactor node.
#[derive(Debug)]
pub struct Node {
    cycle: Cycle,
    last_mono: Millis,
}

impl Node {
    /// A node with this configuration; `seed` drives every random choice (block ids).
    pub fn new(cfg: CycleConfig, seed: u64) -> Self {
        Node {
            cycle: Cycle::new(cfg, seed),
            last_mono: Millis(i64::MIN),
        }
    }

    /// Advances the node on `input` at `now` and returns what to do, in order.
    ///
    /// Contract: `now.mono` never decreases between calls; the outputs are executed in
    /// order; an early [`Input::Tick`] is a no-op. Deterministic: the same sequence of
    /// `(now, input)` from the same initial state gives the same outputs, bit for bit.
    pub fn step(&mut self, now: Now, input: Input) -> Vec<Output> {
        debug_assert!(now.mono >= self.last_mono, "monotonic time went back");
        self.last_mono = now.mono;
        let mut out = Vec::new();
        self.cycle
            .step(now, input, Some(single_instance_permit()), &mut out);
        out
    }

    /// The cycle, for status reporting.
    pub fn cycle(&self) -> &Cycle {
        &self.cycle
    }
}

/// The permit of a single instance without leader election: epoch 0, never expiring.
fn single_instance_permit() -> Permit {
    Permit {
        epoch: Epoch(0),
        valid_until: Millis::MAX,
    }
}

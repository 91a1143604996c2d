//! `compactd-sim`: the deterministic simulation harness (grows with the simulation issue).

fn main() {}

//! compactd: a highly available compactor for Prometheus/Thanos block buckets.
//!
//! `tsdb` is the block engine (formats and compaction); `tools` holds the offline
//! subcommands (`generate`, `compact`, `inspect`) built on it; `rng` and `duration` are small
//! shared utilities.

pub mod duration;
pub mod rng;
pub mod tools;
pub mod tsdb;

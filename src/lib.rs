//! compactd: a highly available compactor for Prometheus/Thanos block buckets.
//!
//! `tsdb` is the block engine (formats and compaction); `tools` holds the offline
//! subcommands (`generate`, `compact`, `inspect`) built on it; `rng`, `duration` and `units`
//! (time and resolution constants) are small shared utilities.

pub mod bucket;
pub mod core;
pub mod driver;
pub mod duration;
pub mod election;
pub mod flags;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod objstore;
pub mod relabel;
pub mod rng;
pub mod run;
pub mod timefmt;
pub mod tools;
pub mod trace;
pub mod tsdb;
pub mod units;
pub mod web;

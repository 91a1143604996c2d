//! compactd: a highly available compactor for Prometheus/Thanos block buckets.
//!
//! `tsdb` is the block engine (formats and compaction); `tools` holds the offline
//! subcommands (`generate`, `compact`, `inspect`) built on it.

pub mod tsdb;

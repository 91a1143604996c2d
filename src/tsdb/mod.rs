//! The Prometheus TSDB block format, one module per on-disk format, and the compaction of
//! N blocks into one.
//!
//! A block is a directory `<ULID>/` holding `meta.json` ([`meta`]), `index` ([`index`]),
//! `chunks/000001…` ([`chunks`], whose float chunks are [`xor`] encoded and native histogram
//! chunks [`histogram`] encoded) and `tombstones` ([`tombstones`]). [`block`] opens and writes
//! whole block directories; [`compact`] merges blocks by streaming their series in label order.
//!
//! This module never depends on `core`: the core uses only its plain data types.

pub mod block;
pub mod block_id;
pub mod block_writer;
pub mod bstream;
pub mod chunks;
pub mod compact;
pub mod downsample;
pub mod encoding;
pub mod error;
pub mod files;
pub mod fsutil;
pub mod histogram;
pub mod index;
pub mod labels;
pub mod meta;
pub mod tombstones;
pub mod window;
pub mod xor;

pub use error::{Result, TsdbError};

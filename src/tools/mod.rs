//! Offline subcommands under `compactd tools`: generate sample blocks, compact block
//! directories, downsample a block, inspect and verify a block, look at, plan and audit a bucket,
//! and change it (mark, retention, cleanup, rewrite, replicate, upload-blocks, verify --repair)
//! under compactd's fence (`fenced`, `commits`).
//! Each reports errors that name the object and the problem; the CLI in `main.rs` only parses
//! arguments and prints.

pub mod audit;
pub mod bucket;
pub mod bucket_inspect;
pub mod commits;
pub mod compact;
pub mod downsample;
pub mod fenced;
pub mod generate;
pub mod gofmt;
pub mod gotemplate;
pub mod inspect;
pub mod label_matcher;
pub mod ls;
pub mod maintenance;
pub mod plan;
pub mod replicate;
pub mod rewrite;
pub mod upload;
pub mod verify;
pub mod web;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::tsdb::block_id::BlockId;

/// The wall clock in Unix ms, for the offline commands (marker times, fence renewals,
/// relative `--min-time` flags). (The HA core never calls this: time comes in as input.)
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A fresh block id for an offline command: the wall clock and 80 bits from the OS.
/// (The HA core never calls this; it derives ids from its inputs and its seeded RNG.)
pub fn fresh_block_id() -> std::io::Result<BlockId> {
    let now_ms = now_unix_ms() as u64;
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(BlockId::from_parts(now_ms, u128::from_le_bytes(bytes)))
}

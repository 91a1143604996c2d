//! The pure, sans-IO core: every decision of the compactor, and nothing else. No I/O, no
//! async, no clock reads, no randomness, no `HashMap` iteration order: time, randomness and
//! every I/O result come in as inputs, and the outputs are plain requests for the driver.
//! The same core runs in production (`driver`) and in the simulation (`sim/`).

pub mod admin;
pub mod admission;
pub mod assign;
pub mod coord;
pub mod cycle;
pub mod error;
pub mod fence;
pub mod leader;
pub mod node;
pub mod plan;
pub mod progress;
pub mod request;
pub mod request_ids;
pub mod stream;
pub mod types;
pub mod view;

#[cfg(test)]
pub(crate) mod testing;

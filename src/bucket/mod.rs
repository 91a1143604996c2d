//! The Thanos bucket layout: where a block's objects live, and the marker files Thanos and
//! compactd write next to them. Plain formats only; reading and writing objects is the
//! driver's job.

pub mod layout;
pub mod markers;

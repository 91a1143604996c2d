//! compactd's deterministic simulation: turmoil hosts for etcd (unless the bucket elects the
//! leader: `--election bucket`), the object store and several compactor nodes running the
//! production core (`compactd::core::node::Node`) with a simulation driver; scenarios of
//! faults (partitions, pauses, skew, crashes, restarts, store errors); a checker of the
//! invariants on the store's write log and final bucket; `--bug` mutations that must be
//! caught; replay of recorded worlds and production traces.

pub mod blocks;
pub mod bug;
pub mod checker;
pub mod clock;
pub mod election;
pub mod etcd;
pub mod etcd_host;
pub mod failover;
pub mod injector;
pub mod log;
pub mod net;
pub mod node_host;
pub mod scenario;
pub mod setup;
pub mod shared;
pub mod store;
pub mod store_host;
pub mod summary;
pub mod trace;
pub mod trace_replay;
pub mod world;

//! compactd's deterministic simulation. Today: one world per seed runs the production core
//! (`compactd::core::node::Node`, unchanged) against a model bucket with injected store
//! failures and process crashes at random points, then checks what the bucket must guarantee.
//! `store` models the object store at the level of objects (ETags, conditional puts, faults,
//! a write log of who mutated what under which epoch) and runs the core's store operations on
//! it as the production executor does; the world moves onto it next.
//! `etcd` models the etcd the election uses (keys, revisions, leases expiring on its own
//! clock, txn compares, watches, compaction, restarts) and answers the core's coordinator
//! operations as the production adapter does; the world will run the election on it.
//! The turmoil world with etcd, several nodes and network faults grows here (issue 5).

pub mod bucket;
pub mod etcd;
pub mod store;
pub mod world;

//! compactd's deterministic simulation. Today: one world per seed runs the production core
//! (`compactd::core::node::Node`, unchanged) against a model bucket with injected store
//! failures and process crashes at random points, then checks what the bucket must guarantee.
//! The turmoil world with etcd, several nodes and network faults grows here (issue 5).

pub mod bucket;
pub mod world;

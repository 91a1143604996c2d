//! The coordinator adapters: they execute the core's coordinator requests
//! ([`crate::core::coord::CoordOp`]) against a real coordination service.
//!
//! `etcd` is the only one. Running as a single instance (`none`, no `--etcd.url`) means no
//! coordinator at all: the core then never asks for one.

pub mod etcd;
pub mod selftest;

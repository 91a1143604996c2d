//! The commit gate: a commit ([`StoreOp::is_commit`]: a block's meta.json, a mark, a delete)
//! waits here until a fence CAS succeeds, and leaves with a permit that ends within the
//! commit window of that CAS's send time, a block's meta.json stamped with the writer.

use std::collections::VecDeque;

use super::election::Role;
use super::Leader;
use crate::core::types::{Epoch, Millis, Now, Output, Permit, StoreOp, StoreRequest};

/// The commits waiting for a fence CAS, oldest first.
#[derive(Debug, Default)]
pub(super) struct CommitGate {
    waiting: VecDeque<StoreRequest>,
}

impl CommitGate {
    /// Holds `req` until a CAS guards it.
    pub(super) fn push(&mut self, req: StoreRequest) {
        debug_assert!(req.op.is_commit());
        self.waiting.push_back(req);
    }

    /// True when no commit waits.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Drops every waiting commit (the term ended: the cycle is abandoned).
    pub(super) fn clear(&mut self) {
        self.waiting.clear();
    }
}

impl Leader {
    /// A fence CAS sent at `cas_sent_at` succeeded while leading: release the oldest commit,
    /// under a permit that ends with the commit window, unless the answer came too late to
    /// commit under it (the next CAS guards it then).
    pub(super) fn release_guarded_commit(
        &mut self,
        now: Now,
        cas_sent_at: Millis,
        out: &mut Vec<Output>,
    ) {
        let Some(permit) = self.permit(now) else {
            return;
        };
        let valid_until = permit
            .valid_until
            .min(cas_sent_at.plus(self.cfg.commit_window_ms));
        if now.mono >= valid_until {
            return;
        }
        if let Some(req) = self.gate.waiting.pop_front() {
            self.release(
                req,
                Permit {
                    valid_until,
                    ..permit
                },
                out,
            );
        }
    }

    /// With the fence switched off ([`Safety::fence`]): release every commit at once, under
    /// the leader's permit.
    ///
    /// [`Safety::fence`]: super::Safety::fence
    pub(super) fn release_unguarded_commits(&mut self, now: Now, out: &mut Vec<Output>) {
        debug_assert!(matches!(self.role, Role::Leading(_)));
        while let Some(permit) = self.permit(now) {
            let Some(req) = self.gate.waiting.pop_front() else {
                break;
            };
            self.release(req, permit, out);
        }
    }

    /// Sends a commit under `permit`, a block's meta.json stamped with its writer.
    fn release(&self, mut req: StoreRequest, permit: Permit, out: &mut Vec<Output>) {
        if let StoreOp::PutMeta { meta } = &mut req.op {
            stamp_writer(meta, permit.epoch, &self.cfg.node);
        }
        req.permit = Some(permit);
        out.push(Output::Store(req));
    }
}

/// Stamps `thanos.extensions.compactd = {"epoch": N, "holder": "<node>"}` into a block's meta.
pub fn stamp_writer(meta: &mut crate::tsdb::meta::BlockMeta, epoch: Epoch, holder: &str) {
    let Some(thanos) = meta.thanos.as_mut() else {
        return;
    };
    let stamp = serde_json::json!({ "epoch": epoch, "holder": holder });
    match thanos.extensions.as_mut() {
        Some(serde_json::Value::Object(map)) => {
            map.insert("compactd".into(), stamp);
        }
        _ => {
            let mut map = serde_json::Map::new();
            map.insert("compactd".into(), stamp);
            thanos.extensions = Some(serde_json::Value::Object(map));
        }
    }
}

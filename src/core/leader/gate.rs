//! The commit gate: a commit ([`WriteOp::is_commit`]: a block's meta.json, a mark, a delete)
//! waits here until a fence CAS succeeds, and leaves with a permit that ends within the
//! commit window of that CAS's send time, a block's meta.json stamped with the writer.

use std::collections::VecDeque;

use super::election::Role;
use super::Leader;
use crate::core::types::{Epoch, Millis, Now, Output, Permit, RequestId, StoreRequest, WriteOp};

/// The commits waiting for a fence CAS, oldest first.
#[derive(Debug, Default)]
pub(super) struct CommitGate {
    waiting: VecDeque<(RequestId, WriteOp)>,
}

impl CommitGate {
    /// Holds commit `op` (request `id`) until a CAS guards it.
    pub(super) fn push(&mut self, id: RequestId, op: WriteOp) {
        debug_assert!(op.is_commit(), "only commits wait for a fence CAS: {op:?}");
        self.waiting.push_back((id, op));
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
        if let Some(commit) = self.gate.waiting.pop_front() {
            self.release(
                commit,
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
            let Some(commit) = self.gate.waiting.pop_front() else {
                break;
            };
            self.release(commit, permit, out);
        }
    }

    /// Sends a commit under `permit`, a block's meta.json stamped with its writer.
    fn release(&self, (id, mut op): (RequestId, WriteOp), permit: Permit, out: &mut Vec<Output>) {
        if let WriteOp::PutMeta { meta } | WriteOp::AdoptMeta { meta } = &mut op {
            stamp_writer(meta, permit.epoch, &self.cfg.node);
        }
        out.push(Output::Store(StoreRequest::write(id, op, permit)));
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

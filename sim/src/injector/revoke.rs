//! [`Fault::RevokeLease`](crate::scenario::Fault::RevokeLease): the leader's lease taken
//! away behind its back just as it sends a commit, its store link holding that commit. With
//! etcd, an operator revokes the lease (`etcdctl lease revoke`) while the leader is cut from
//! etcd. Under the bucket provider the fence is the lease: an operator rewrites
//! `compactd/fence.json` as released (renewed 0, what a leader's own shutdown writes, without
//! its nonce), so that candidates take it over at their next read.

use compactd::core::coord::{CoordOp, CoordResult, LeaseId};
use compactd::core::fence::{FenceRecord, FENCE_PATH};

use super::{Heal, Injector};
use crate::checker::OPERATOR;
use crate::election::Coordinator;
use crate::etcd::Answer;
use crate::net::{ETCD, STORE};
use crate::scenario::Way;
use crate::setup::ELECTION;
use crate::shared::{Shared, WALL0};
use crate::store::{Fault, Origin, PutMode};

impl Injector {
    /// Takes the lease of the node leading now: etcd's revoked while the node is cut from
    /// etcd for `ms`, or the fence released by hand; its store link holds for `hold_ms`.
    pub(super) fn revoke_lease(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        now: i64,
        ms: i64,
        hold_ms: i64,
    ) {
        let Some(node) = self.world.borrow().leader().map(str::to_string) else {
            return;
        };
        self.leader_lost(sim, &node, std::slice::from_ref(&node), now);
        if self.coordinator == Coordinator::Etcd {
            sim.partition(node.as_str(), ETCD);
            let heal = Heal::Repair {
                node: node.clone(),
                peer: ETCD,
                way: Way::Both,
            };
            self.heals.push((now + ms, heal));
        }
        sim.hold(node.as_str(), STORE);
        let heal = Heal::Release {
            node: node.clone(),
            peer: STORE,
        };
        self.heals.push((now + hold_ms, heal));
        let mut w = self.world.borrow_mut();
        let what = match self.coordinator {
            Coordinator::Etcd => {
                revoke_in_etcd(&mut w, &node, now);
                format!(
                    "revoke {node}'s lease, cut it from etcd for {ms}ms, hold its store link \
                     {hold_ms}ms"
                )
            }
            _ => format!(
                "{}; hold {node}'s store link {hold_ms}ms",
                release_fence(&mut w, now)
            ),
        };
        w.log(now, "world", &what);
    }
}

/// Revokes the leases of `node`'s election keys in etcd.
fn revoke_in_etcd(w: &mut Shared, node: &str, now: i64) {
    let prefix = format!("{ELECTION}/");
    let keys = match w.etcd.execute(now, &CoordOp::Observe { prefix }) {
        Answer::Now(CoordResult::Observed { keys, .. }) => keys,
        _ => Vec::new(),
    };
    for k in keys.iter().filter(|k| k.value == node) {
        let hex = k.key.rsplit('/').next().unwrap_or_default();
        if let Ok(lease) = i64::from_str_radix(hex, 16) {
            let op = CoordOp::Resign {
                key: None,
                lease: LeaseId(lease),
            };
            w.etcd.execute(now, &op);
        }
    }
}

/// An operator rewrites the bucket fence as released (If-Match on what it read); says what
/// it did.
fn release_fence(w: &mut Shared, now: i64) -> String {
    let Shared { store, checker, .. } = w;
    let Some(object) = store.get(FENCE_PATH).cloned() else {
        return "no fence to release".into();
    };
    let Ok(record) = FenceRecord::parse(FENCE_PATH, &object.bytes) else {
        return "an unreadable fence left alone".into();
    };
    let released = FenceRecord {
        renewed_unix_ms: 0,
        nonce: String::new(),
        ..record
    };
    let from = Origin {
        node: OPERATOR,
        epoch: 0,
        at_ms: WALL0 + now,
    };
    let e_tag = object.e_tag;
    let put = store.put(
        from,
        FENCE_PATH,
        released.to_json(),
        PutMode::Update { e_tag },
        Fault::Pass,
    );
    checker.after(store);
    match put {
        Ok(_) => format!(
            "release the fence by hand (epoch {} of {}, seq {})",
            released.epoch, released.holder, released.seq
        ),
        Err(e) => format!("the fence's release by hand failed: {e}"),
    }
}

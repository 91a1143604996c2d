//! The etcd host: answers the nodes' coordinator requests from the etcd model, and the
//! pending `WaitDelete`s when the model decides them (a delete, a lease expiry on etcd's own
//! clock, the wait's deadline). Restarting the host restarts etcd: the data stays, leases are
//! refreshed, open watches break.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use compactd::core::coord::{CoordId, CoordResult};
use turmoil::net::UdpSocket;

use crate::etcd::{Answer, WatchId};
use crate::net::{bind_addr, decode, encode, Message};
use crate::shared::{sim_ms, World};

/// The longest the host sleeps without looking at the model.
const WAKE_MS: i64 = 250;

/// Runs the etcd host.
pub async fn run(world: World) -> turmoil::Result {
    let socket = UdpSocket::bind(bind_addr()).await?;
    {
        let mut w = world.borrow_mut();
        w.etcd_starts += 1;
        if w.etcd_starts > 1 {
            let now = sim_ms();
            w.etcd.restart(now);
            w.log(
                now,
                "etcd",
                "started again: leases refreshed, watches broken",
            );
        }
    }
    let mut watches: BTreeMap<WatchId, (SocketAddr, u32, CoordId)> = BTreeMap::new();
    let mut buf = [0u8; 16];
    loop {
        let next = world.borrow().etcd.next_event_at();
        // At most WAKE_MS: the world may change the model between steps (a lease revoked by
        // an operator), and the waiters must hear of it.
        let wait = next.map_or(WAKE_MS, |at| (at - sim_ms()).clamp(0, WAKE_MS));
        let wait = Duration::from_millis(wait as u64);
        let mut replies: Vec<(SocketAddr, u64)> = Vec::new();
        tokio::select! {
            biased;
            r = socket.recv_from(&mut buf) => {
                let (len, from) = r?;
                if let Some(n) = decode(&buf[..len]) {
                    let mut w = world.borrow_mut();
                    let now = sim_ms();
                    if let Some(Message::Coord { from: node, process, req }) = w.mailbox.take(n) {
                        match w.etcd.execute(now, &req.op) {
                            Answer::Now(result) => {
                                let what = format!("{} for {node}: {}", req.op.name(), logged(&result));
                                w.log(now, "etcd", &what);
                                replies.push((from, w.mailbox.post(Message::CoordReply(process, req.id, result))));
                            }
                            Answer::Pending(watch) => {
                                watches.insert(watch, (from, process, req.id));
                            }
                        }
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
        {
            let mut w = world.borrow_mut();
            let now = sim_ms();
            for (watch, result) in w.etcd.poll_watches(now) {
                if let Some((to, process, id)) = watches.remove(&watch) {
                    w.log(
                        now,
                        "etcd",
                        &format!("wait-delete answered: {}", logged(&result)),
                    );
                    replies.push((to, w.mailbox.post(Message::CoordReply(process, id, result))));
                }
            }
        }
        for (to, n) in replies {
            socket.send_to(&encode(n), to).await?;
        }
    }
}

/// A coordinator result as the event log shows it: a failure by its text alone, as it always
/// has (its kind is the adapter's classification, not what etcd answered).
fn logged(result: &CoordResult) -> String {
    match result {
        CoordResult::Failed(e) => format!("Failed({:?})", e.message),
        other => format!("{other:?}"),
    }
}

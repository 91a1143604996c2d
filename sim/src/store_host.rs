//! The object store host: serves the nodes' requests on the store model, with injected
//! faults, and feeds the checker. A request that reaches it more than one op timeout after it
//! was sent is dropped unserved: that is assumption (b) of `docs/safety.md` (the client gave
//! up and closed the connection), which every scenario keeps.

use compactd::bucket::layout::is_block_data;
use compactd::core::types::{StoreRequest, WriteOp};
use compactd::tsdb::block_id::BlockId;
use turmoil::net::UdpSocket;

use crate::checker::block_files;
use crate::net::{bind_addr, decode, encode, Files, Message};
use crate::shared::{sim_ms, Shared, World, WALL0};
use crate::store::{Fault, Method, Origin};

/// Runs the store host.
pub async fn run(world: World) -> turmoil::Result {
    let socket = UdpSocket::bind(bind_addr()).await?;
    let mut buf = [0u8; 16];
    loop {
        let (len, from) = socket.recv_from(&mut buf).await?;
        let Some(n) = decode(&buf[..len]) else {
            continue;
        };
        let reply = {
            let mut w = world.borrow_mut();
            serve(&mut w, n, sim_ms()).map(|m| w.mailbox.post(m))
        };
        if let Some(n) = reply {
            socket.send_to(&encode(n), from).await?;
        }
    }
}

/// Serves message `n`; the reply to send, if any.
fn serve(w: &mut Shared, n: u64, now: i64) -> Option<Message> {
    match w.mailbox.take(n)? {
        Message::Store {
            from,
            process,
            req,
            files,
            sent_ms,
        } => {
            if too_late(w, &from, req.name(), sent_ms, now) {
                return None;
            }
            let epoch = req.permit().map_or(0, |p| p.epoch.0);
            let faults = w.store_faults;
            let mut lost_reply = false;
            let mut injected = 0;
            let Shared {
                store,
                rng,
                checker,
                ..
            } = w;
            checker.before(store, &req, now);
            let origin = Origin {
                node: &from,
                epoch,
                at_ms: WALL0 + now,
            };
            let result = store.execute(origin, &req, &files, |r| {
                let fault = if rng.chance(faults.unavailable) {
                    Fault::Unavailable
                } else if rng.chance(faults.timeout) {
                    Fault::TimeoutAfterApply
                } else {
                    Fault::Pass
                };
                if fault != Fault::Pass {
                    injected += 1;
                }
                if fault == Fault::TimeoutAfterApply && r.method != Method::List {
                    lost_reply = true;
                }
                fault
            });
            checker.after(store);
            w.stats.store_faults += injected;
            let what = format!(
                "{} {} from {from} (epoch {epoch}): {}",
                req.name(),
                target(&req),
                if lost_reply {
                    "reply lost".to_string()
                } else {
                    summary(&result)
                }
            );
            w.log(now, "store", &what);
            (!lost_reply).then_some(Message::StoreReply(process, req.id(), result))
        }
        Message::Download {
            from,
            process,
            job,
            blocks,
            sent_ms,
        } => {
            if too_late(w, &from, "download", sent_ms, now) {
                return None;
            }
            let result = if w.rng.chance(w.store_faults.unavailable) {
                w.stats.store_faults += 1;
                Err("download: injected error: 503 Service Unavailable".to_string())
            } else {
                download(w, &blocks)
            };
            let what = format!(
                "download {} blocks for {from}: {}",
                blocks.len(),
                result.as_ref().map_or_else(|e| e.clone(), |_| "ok".into())
            );
            w.log(now, "store", &what);
            Some(Message::DownloadReply(process, job, result))
        }
        other => {
            w.log(now, "store", &format!("unexpected message {other:?}"));
            None
        }
    }
}

/// True (and logged) when a request arrives after its sender gave up on it.
fn too_late(w: &mut Shared, from: &str, what: &str, sent_ms: i64, now: i64) -> bool {
    if now - sent_ms <= w.timing.op_timeout_ms {
        return false;
    }
    w.stats.late_requests += 1;
    let text = format!(
        "{what} from {from} dropped: arrived {}ms after it was sent",
        now - sent_ms
    );
    w.log(now, "store", &text);
    true
}

fn download(w: &Shared, blocks: &[BlockId]) -> Result<Vec<(BlockId, Files)>, String> {
    blocks
        .iter()
        .map(|id| {
            let files: Files = block_files(&w.store, *id)
                .into_iter()
                .filter(|(rel, _)| is_block_data(rel))
                .collect();
            if files.iter().any(|(rel, _)| rel == "index") {
                Ok((*id, files))
            } else {
                Err(format!("download {id}/index: not found"))
            }
        })
        .collect()
}

/// The block (or object) a request is about, for the log; nothing for a read.
pub fn target(req: &StoreRequest) -> String {
    let Some(op) = req.write_op() else {
        return String::new();
    };
    match op {
        WriteOp::UploadFiles { block, .. } => block.to_string(),
        WriteOp::PutMeta { meta } | WriteOp::AdoptMeta { meta } => meta.ulid.to_string(),
        WriteOp::MarkDeletion(m) => m.id.to_string(),
        WriteOp::MarkNoCompact(m) => m.id.to_string(),
        WriteOp::MarkNoDownsample(m) => m.id.to_string(),
        WriteOp::RemoveMarker { block, marker } => format!("{block}/{marker}"),
        WriteOp::DeleteBlock(id) => id.to_string(),
        // The bucket fence's as before streams had fences, so logs (and their hashes) stay.
        WriteOp::CasFence {
            stream: None,
            record,
            ..
        } => format!("epoch {} seq {}", record.epoch, record.seq),
        WriteOp::CasFence {
            stream: Some(stream),
            record,
            ..
        } => format!("stream {stream} epoch {} seq {}", record.epoch, record.seq),
    }
}

/// A short form of a store result, for the log.
pub fn summary(result: &compactd::core::types::StoreResult) -> String {
    use compactd::core::types::StoreResult;
    match result {
        StoreResult::Synced(s) => format!("synced {} blocks", s.blocks.len()),
        StoreResult::Done => "done".into(),
        StoreResult::MarkerExisted => "marker already there".into(),
        StoreResult::Fence(None) => "no fence".into(),
        StoreResult::Fence(Some((r, _))) => {
            format!("fence epoch {} holder {} seq {}", r.epoch, r.holder, r.seq)
        }
        StoreResult::FenceWritten(_) => "fence written".into(),
        StoreResult::FenceConflict => "fence conflict".into(),
        StoreResult::Failed(e) => format!("failed: {e}"),
    }
}

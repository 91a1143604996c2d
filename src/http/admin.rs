//! `POST /api/v1/admin/commit`: operator requests (`compactd tools bucket mark|retention|
//! cleanup|rewrite --leader.url ...`) handed to the node, which commits them under its own fence
//! ([`crate::core::admin`]), and the answer once the node reports it.
//!
//! The body is `{"stream": <stream id or null>, "ops": [<WriteOp>, ...]}` (the core's
//! operations as JSON, e.g. `{"MarkNoCompact": {...}}`); the answer is the
//! [`AdminOutcome`] as JSON: `200` when every commit was made, `409` when the request stopped
//! or was refused (not the leader, not the stream's owner, a commit failed), `403` with
//! `--disable-admin-operations`, `503` before the node runs, `400` for a malformed body.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{json_with, text, HttpState};
use crate::core::admin::{AdminId, AdminOutcome, AdminRequest};
use crate::core::request::WriteOp;
use crate::core::stream::StreamId;
use crate::core::types::Input;

/// How long a request waits for the node's answer before the HTTP request gives up (the
/// node still finishes it).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// The body of `POST /api/v1/admin/commit`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminBody {
    /// The stream whose writer commits (per-stream ownership); `null` for the bucket leader.
    #[serde(default)]
    pub stream: Option<StreamId>,
    /// The commits, in order.
    pub ops: Vec<WriteOp>,
}

/// Where operator requests go: the node's input channel and the requests waiting for an
/// answer.
#[derive(Debug, Default)]
pub struct AdminDesk {
    disabled: AtomicBool,
    inner: Mutex<Desk>,
}

#[derive(Debug, Default)]
struct Desk {
    node: Option<mpsc::UnboundedSender<Input>>,
    waiting: BTreeMap<AdminId, oneshot::Sender<AdminOutcome>>,
    last_id: u64,
}

impl AdminDesk {
    /// Refuses every request (`--disable-admin-operations`).
    pub fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
    }

    /// Sends requests to the node through `node` from now on.
    pub fn connect(&self, node: mpsc::UnboundedSender<Input>) {
        self.inner.lock().expect("admin desk lock").node = Some(node);
    }

    /// Hands the node's answer to the request waiting for it.
    pub fn answer(&self, id: AdminId, outcome: AdminOutcome) {
        let waiting = self
            .inner
            .lock()
            .expect("admin desk lock")
            .waiting
            .remove(&id);
        if let Some(tx) = waiting {
            let _ = tx.send(outcome);
        }
    }

    /// Sends `body` to the node and waits for its answer (a failed outcome when the node
    /// stops first or does not answer in time); an error when the node does not run.
    pub(crate) async fn request(&self, body: AdminBody) -> Result<AdminOutcome, String> {
        let answer = self.submit(body)?;
        Ok(match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => AdminOutcome::failed("the node stopped before answering".into()),
            Err(_) => AdminOutcome::failed(format!(
                "no answer within {ANSWER_TIMEOUT:?}; the request may still complete"
            )),
        })
    }

    /// Sends `body` to the node; the receiver gets the answer.
    fn submit(&self, body: AdminBody) -> Result<oneshot::Receiver<AdminOutcome>, String> {
        let mut desk = self.inner.lock().expect("admin desk lock");
        let Some(node) = desk.node.clone() else {
            return Err("the node is not running yet".into());
        };
        desk.last_id += 1;
        let id = AdminId(desk.last_id);
        let (tx, rx) = oneshot::channel();
        desk.waiting.insert(id, tx);
        let request = AdminRequest {
            id,
            stream: body.stream,
            ops: body.ops,
        };
        if node.send(Input::Admin(Box::new(request))).is_err() {
            desk.waiting.remove(&id);
            return Err("the node has stopped".into());
        }
        Ok(rx)
    }
}

/// The handler of `POST /api/v1/admin/commit`.
pub(super) async fn commit(State(state): State<Arc<HttpState>>, body: Bytes) -> Response {
    if state.admin.disabled.load(Ordering::Relaxed) {
        return text(
            StatusCode::FORBIDDEN,
            "admin operations are disabled (--disable-admin-operations)\n",
        );
    }
    let body: AdminBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("malformed request body: {e}\n"),
            )
        }
    };
    let outcome = match state.admin.request(body).await {
        Ok(outcome) => outcome,
        Err(why) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    };
    let status = if outcome.error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    json_with(status, &outcome, "admin outcome")
}

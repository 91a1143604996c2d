//! The viewer's JSON API: Thanos' `GET /api/v1/blocks`, `POST /api/v1/blocks/mark` and
//! `/api/v1/status/{flags,buildinfo}` in Thanos' shapes (its envelope `{"status", "data"}`),
//! and compactd's own `GET /api/v1/compactor` (plan, running jobs, halt, backlog, ownership,
//! failovers, last audit) and `POST /api/v1/compactor/audit`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::board::{AuditStatus, Snapshot};
use super::{MarkRoute, Role, WebState};
use crate::core::stream::StreamId;
use crate::core::types::{MetaState, SyncResult, SyncedBlock};
use crate::http::admin::AdminBody;
use crate::metrics::ThanosBuildLabels;
use crate::timefmt::format_rfc3339_ms;
use crate::tools::maintenance::{mark_ops, MarkerKind};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;

/// The detail of a mark made from the page without one (Thanos leaves it empty).
const DEFAULT_MARK_DETAIL: &str = "marked in the block viewer";

/// An error in Thanos' envelope.
pub(super) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    /// An error answered with `status`; its `errorType` follows from the status.
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let kind = match status {
            StatusCode::BAD_REQUEST => "bad_data",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        };
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        envelope(self.status, &body)
    }
}

/// `data` in Thanos' success envelope.
fn success(data: &impl Serialize) -> Response {
    match serde_json::to_value(data) {
        Ok(data) => envelope(StatusCode::OK, &json!({"status": "success", "data": data})),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the answer: {e}"),
        )
        .into_response(),
    }
}

fn envelope(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /api/v1/blocks?view=global|loaded`.
pub(super) async fn blocks(State(web): State<WebState>, RawQuery(query): RawQuery) -> Response {
    let view = form_value(query.as_deref().unwrap_or("").as_bytes(), "view");
    let label = web.viewer.settings.label.clone();
    let board = &web.http.board;
    let (global, error) = board.global();
    let mut refreshed_ms = global.as_ref().map(|g| g.refreshed_ms);
    let blocks = if view.as_deref() == Some("loaded") {
        let loaded = board.loaded();
        refreshed_ms = loaded.as_ref().map(|l| l.refreshed_ms);
        loaded_blocks(loaded.as_deref(), global.as_deref())
    } else {
        global_blocks(global.as_deref(), &web)
    };
    success(&json!({
        "label": label,
        "blocks": blocks,
        "refreshedAt": refreshed_ms.map(format_rfc3339_ms),
        "err": error,
    }))
}

/// Every block of the bucket with a readable meta.json.
fn global_blocks(global: Option<&Snapshot<SyncResult>>, web: &WebState) -> Vec<Value> {
    let Some(global) = global else {
        return Vec::new();
    };
    let loaded = web.http.board.loaded();
    let duplicate = |id: &BlockId| {
        loaded
            .as_ref()
            .is_some_and(|l| l.view.units.iter().any(|u| u.duplicates.contains(id)))
    };
    global
        .view
        .blocks
        .iter()
        .filter_map(|(id, block)| {
            let MetaState::Ok(meta) = &block.meta else {
                return None;
            };
            let state = if block.deletion_mark.is_some() {
                "deletion-marked"
            } else if duplicate(id) {
                "duplicate"
            } else {
                "visible"
            };
            Some(block_json(meta, Some(block), state))
        })
        .collect()
}

/// The blocks this node's units act on (replica labels removed), with their marks.
fn loaded_blocks(
    loaded: Option<&Snapshot<crate::web::board::Loaded>>,
    global: Option<&Snapshot<SyncResult>>,
) -> Vec<Value> {
    let Some(loaded) = loaded else {
        return Vec::new();
    };
    let mut blocks = BTreeMap::new();
    for unit in &loaded.view.units {
        for (id, meta) in &unit.blocks {
            let synced = global.and_then(|g| g.view.blocks.get(id));
            blocks.insert(*id, block_json(meta, synced, "visible"));
        }
    }
    blocks.into_values().collect()
}

/// A block's meta.json as JSON with compactd's `compactd` key: its marks and state.
fn block_json(meta: &BlockMeta, synced: Option<&SyncedBlock>, state: &str) -> Value {
    let mut value = serde_json::to_value(meta).unwrap_or(Value::Null);
    let mut marks = Vec::new();
    if let Some(b) = synced {
        if let Some(m) = &b.deletion_mark {
            marks.push(json!({"kind": "deletion", "time": m.deletion_time, "details": m.details}));
        }
        if let Some(m) = &b.no_compact_mark {
            marks.push(json!({"kind": "no-compact", "time": m.no_compact_time, "details": m.details, "reason": m.reason}));
        }
        if let Some(m) = &b.no_downsample_mark {
            marks.push(json!({"kind": "no-downsample", "time": m.no_downsample_time, "details": m.details, "reason": m.reason}));
        }
    }
    if let Value::Object(map) = &mut value {
        map.insert("compactd".into(), json!({"marks": marks, "state": state}));
    }
    value
}

/// `POST /api/v1/blocks/mark`: form fields `id`, `action` (`DELETION`, `NO_COMPACTION`,
/// `NO_DOWNSAMPLE`), `detail`, in the body or the query.
pub(super) async fn mark(
    State(web): State<WebState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(why) = cross_site(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("marks are refused from another site's page: {why}"),
        )
        .into_response();
    }
    match mark_block(&web, query.as_deref().unwrap_or(""), &body).await {
        Ok(()) => success(&Value::Null),
        Err(e) => e.into_response(),
    }
}

/// Why a request comes from a page of another site, if it does: a form on any web page can
/// POST to this port (no CORS preflight for a form), so a mark must come from the viewer's
/// own page or from a client that is not a browser (no `Origin`, no `Sec-Fetch-Site`).
fn cross_site(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("sec-fetch-site") {
        // The viewer's own page, or typed in by the user.
        Some("same-origin" | "none") => return None,
        // Another port of the host or another subdomain is another application.
        Some(site) => return Some(format!("Sec-Fetch-Site: {site}")),
        None => {}
    }
    let origin = header("origin")?;
    let host = header("x-forwarded-host").or_else(|| header("host"))?;
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    (origin_host != host).then(|| format!("Origin {origin} is not {host}"))
}

async fn mark_block(web: &WebState, query: &str, body: &[u8]) -> Result<(), ApiError> {
    if web.viewer.settings.disable_admin {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Admin operations are disabled",
        ));
    }
    let field = |name| form_value(body, name).or_else(|| form_value(query.as_bytes(), name));
    let id = field("id").unwrap_or_default();
    let action = field("action").unwrap_or_default();
    let detail = field("detail").unwrap_or_default();
    if id.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ID cannot be empty"));
    }
    if action.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Action cannot be empty",
        ));
    }
    let block: BlockId = id.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("ULID {id:?} is not valid: {e}"),
        )
    })?;
    let kind = match action.as_str() {
        "DELETION" => MarkerKind::Deletion,
        "NO_COMPACTION" => MarkerKind::NoCompact,
        "NO_DOWNSAMPLE" => MarkerKind::NoDownsample,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("not supported marker {other}"),
            ))
        }
    };
    let detail = if detail.is_empty() {
        DEFAULT_MARK_DETAIL
    } else {
        detail.as_str()
    };
    let (global, _) = web.http.board.global();
    let Some(global) = global else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the bucket has not been synced yet; try again shortly",
        ));
    };
    let now_ms = crate::tools::now_unix_ms();
    let ops = mark_ops(&global.view, &[block], kind, detail, false, now_ms)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let ops = crate::tools::commits::with_streams(
        &global.view,
        ops,
        &web.viewer.settings.plan.replica_labels,
    );
    match &web.viewer.marks {
        MarkRoute::Node => {
            for (stream, op) in ops.iter().cloned() {
                let body = AdminBody {
                    stream,
                    ops: vec![op],
                };
                let outcome = web
                    .http
                    .admin
                    .request(body)
                    .await
                    .map_err(|why| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why))?;
                if let Some(error) = outcome.error {
                    return Err(ApiError::new(StatusCode::CONFLICT, error));
                }
            }
        }
        MarkRoute::Tool(route) => {
            crate::tools::commits::apply(Arc::clone(&web.viewer.store), route, ops.clone())
                .await
                .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("{e:#}")))?;
        }
    }
    for (_, op) in &ops {
        web.http.board.note_commit(op);
    }
    Ok(())
}

/// The value of `name` in an `application/x-www-form-urlencoded` text.
fn form_value(form: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(form)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /api/v1/compactor`: what the compactor is doing.
pub(super) async fn compactor(State(web): State<WebState>) -> Response {
    let board = &web.http.board;
    let settings = &web.viewer.settings;
    let leader = web.http.leader();
    let node = web.viewer.node.clone();
    let role = match web.viewer.role {
        Role::Single => "single",
        Role::Tool => "tool",
        Role::Elected if settings.per_stream => "streams",
        Role::Elected if !leader.leader.is_empty() && leader.leader == node => "leader",
        Role::Elected => "follower",
    };
    let (global, _) = board.global();
    let loaded = board.loaded();
    let plan: Vec<Value> = loaded
        .as_ref()
        .map(|l| {
            l.view
                .units
                .iter()
                .flat_map(|unit| {
                    crate::tools::plan::plan_view(unit, &settings.plan, &settings.ranges)
                })
                .filter(|g| !g.compact.is_empty() || !g.marks.is_empty() || g.halts_on_overlap)
                .map(|g| {
                    json!({
                        "group": g.key, "labels": g.labels, "resolution": g.resolution,
                        "blocks": g.blocks,
                        "compact": g.compact.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
                        "marks": g.marks.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
                        "halts_on_overlap": g.halts_on_overlap,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let status = web.http.streams();
    let labels = match (&global, status.streams.is_empty()) {
        (Some(g), false) => stream_labels(&g.view, &settings.plan.replica_labels),
        _ => BTreeMap::new(),
    };
    let streams: Vec<Value> = status
        .streams
        .into_iter()
        .map(|s| {
            let labels = labels.get(&s.stream).cloned().unwrap_or_default();
            let owner_url = settings.node_url(&s.assigned);
            json!({"stream": s.stream, "labels": labels, "assigned": s.assigned, "owner_url": owner_url, "held": s.held, "epoch": s.epoch})
        })
        .collect();
    let mut data = Map::new();
    data.insert("node".into(), json!(node));
    data.insert("role".into(), json!(role));
    data.insert("admin_operations".into(), json!(!settings.disable_admin));
    let leader_url = (role == "follower")
        .then(|| settings.node_url(&leader.leader))
        .flatten();
    data.insert("leader".into(), json!(leader));
    data.insert("leader_url".into(), json!(leader_url));
    data.insert(
        "lease_remaining_seconds".into(),
        json!(board.lease_remaining_seconds()),
    );
    data.insert("streams".into(), json!(streams));
    data.insert("failovers".into(), json!(board.failovers_of(&node)));
    data.insert("halt".into(), json!(board.halt()));
    data.insert("backlog".into(), json!(board.backlog()));
    data.insert("jobs".into(), json!(board.jobs()));
    data.insert("plan".into(), json!(plan));
    data.insert("audit".into(), json!(board.audit()));
    data.insert(
        "refreshed_at".into(),
        json!(loaded.map(|l| format_rfc3339_ms(l.refreshed_ms))),
    );
    success(&Value::Object(data))
}

/// Every stream's labels (without the replica labels, as Prometheus prints them), by its id
/// as 16 hex digits, from one look at each block.
fn stream_labels(sync: &SyncResult, replica_labels: &[String]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for block in sync.blocks.values() {
        let MetaState::Ok(meta) = &block.meta else {
            continue;
        };
        let Some(id) = StreamId::of_block(meta, replica_labels) else {
            continue;
        };
        labels.entry(id.to_string()).or_insert_with(|| {
            let pairs = crate::tools::audit::stream_labels(meta, replica_labels);
            crate::tsdb::labels::Labels::from_pairs(pairs).to_string()
        });
    }
    labels
}

/// `POST /api/v1/compactor/audit`: runs `tools bucket audit` once (one at a time, bounded by
/// `--block-viewer.global.sync-block-timeout`, not from another site's page).
pub(super) async fn audit(State(web): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(why) = cross_site(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("audits are refused from another site's page: {why}"),
        )
        .into_response();
    }
    let Some(_running) = web.http.board.start_audit() else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "an audit is running; its result will show here",
        )
        .into_response();
    };
    let replica_labels = &web.viewer.settings.plan.replica_labels;
    let timeout = web.viewer.settings.global_sync_timeout;
    let audit = crate::tools::audit::audit_bucket(&web.viewer.store, replica_labels);
    let report = match tokio::time::timeout(timeout, audit).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("audit: {e:#}"))
                .into_response()
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("audit: longer than {timeout:?}"),
            )
            .into_response()
        }
    };
    let status = AuditStatus {
        at: format_rfc3339_ms(crate::tools::now_unix_ms()),
        clean: report.ok() && report.problems.is_empty(),
        violations: report.violations.iter().map(|v| v.to_string()).collect(),
        problems: report.problems.clone(),
        text: report.render_text(),
    };
    web.http.board.set_audit(status.clone());
    success(&status)
}

/// `GET /api/v1/status/flags`: the flags this process runs with (secrets redacted).
pub(super) async fn flags(State(web): State<WebState>) -> Response {
    success(&web.viewer.settings.flags)
}

/// `GET /api/v1/status/buildinfo`, in Thanos' shape.
pub(super) async fn buildinfo() -> Response {
    let build = ThanosBuildLabels::of_this_build();
    success(&json!({
        "version": build.version,
        "revision": build.revision,
        "branch": build.branch,
        "buildUser": "",
        "buildDate": "",
        "goVersion": build.goversion,
    }))
}

//! The HTTP server: `/metrics`, the Thanos probes `/-/healthy` and `/-/ready`, and the
//! leader status `/api/v1/leader`, on `--http-address` (Thanos' default `0.0.0.0:10902`).
//!
//! Probes answer like Thanos' `pkg/prober` (`200 OK` / `503 NOT OK`) so existing Kubernetes
//! probes keep working. Readiness means "set up and serving", not "leader": followers must stay
//! in their Service and must not be restarted for not leading. Who leads is a separate
//! endpoint and the `compactd_leader` gauge.
//!
//! [`HttpState`] is the only thing the rest of compactd touches: the driver flips readiness and
//! publishes the leader; the handlers only read it. Probe changes also update
//! `thanos_status{check}` so the metric and the endpoint cannot disagree.
//!
//! `--http.config` ([`web_config`]) adds TLS, basic authentication, response headers and a
//! rate limit to every endpoint, as the Prometheus web configuration does in Thanos.

pub mod admin;
mod guard;
mod tls;
pub mod web_config;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;

pub use web_config::{WebConfig, WebConfigError};

use crate::metrics::{Metrics, ProbeCheck, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE};

/// Thanos' default `--http-address`.
pub const DEFAULT_HTTP_ADDRESS: &str = "0.0.0.0:10902";

/// `Content-Type` of the plain-text responses (Go's `http.Error` uses the same).
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// `Content-Type` of the JSON responses.
const JSON_CONTENT_TYPE: &str = "application/json";
/// Readiness reason until [`HttpState::set_ready`] is first called.
const NOT_READY_STARTING: &str = "starting";
/// Readiness reason once the shutdown signal fired.
const NOT_READY_SHUTTING_DOWN: &str = "shutting down";

/// The endpoint list served at `/` without the block viewer (`--web.disable`).
const INDEX: &str = "compactd\n\n\
    /metrics         Prometheus metrics (OpenMetrics when accepted, else text 0.0.4)\n\
    /-/healthy       liveness probe: 200 OK once the server runs\n\
    /-/ready         readiness probe: 200 OK once set up, 503 NOT OK: <reason> before\n\
    /api/v1/leader   current leader as JSON: {\"leader\", \"epoch\", \"since\"}\n\
    /api/v1/streams  per-stream ownership as JSON: {\"streams\": [{\"stream\", \"assigned\", \"held\", \"epoch\"}]}\n\
    /api/v1/admin/commit  POST: marks, marker removals and deletions committed under this writer's fence (tools bucket mark|retention|cleanup --leader.url)\n";

/// Errors of [`parse_address`] and [`bind`].
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address is not `host:port`.
    #[error("invalid --http-address {address:?}: {reason} (expected host:port, e.g. {DEFAULT_HTTP_ADDRESS})")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The address is well-formed but could not be bound (in use, not local, no permission).
    #[error("binding --http-address {address:?}: {source}")]
    Bind {
        /// The address as given.
        address: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Who leads, as far as this replica knows; served at `/api/v1/leader`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LeaderStatus {
    /// The leader's node name; empty when no leader is known.
    pub leader: String,
    /// The leader's epoch (its election key's create revision); 0 when none is known.
    pub epoch: u64,
    /// When this replica learnt of the term, RFC3339 UTC; empty when none is known.
    pub since: String,
}

impl LeaderStatus {
    /// Records that `leader` leads under `epoch` since `since` (RFC3339).
    pub fn set(&mut self, leader: impl Into<String>, epoch: u64, since: impl Into<String>) {
        self.leader = leader.into();
        self.epoch = epoch;
        self.since = since.into();
    }

    /// Records that no leader is known.
    pub fn clear(&mut self) {
        *self = LeaderStatus::default();
    }
}

/// Per-stream ownership as this replica sees it; served at `/api/v1/streams`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamsStatus {
    /// Every stream of the assignment in force here, by id.
    pub streams: Vec<StreamStatus>,
}

/// One stream's line of [`StreamsStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamStatus {
    /// The stream id (16 hex digits; the hash in its Thanos group keys, in decimal).
    pub stream: String,
    /// The replica the assignment gives it to.
    pub assigned: String,
    /// True when this replica holds it now (leads it, fenced).
    pub held: bool,
    /// The epoch this replica holds it under; 0 when it does not.
    pub epoch: u64,
}

/// State shared between the driver and the HTTP handlers.
#[derive(Debug)]
pub struct HttpState {
    /// Everything `/metrics` exports.
    pub metrics: Arc<Metrics>,
    /// `Ok` when ready, else why not.
    readiness: RwLock<Result<(), String>>,
    healthy: AtomicBool,
    leader: RwLock<LeaderStatus>,
    streams: RwLock<StreamsStatus>,
    /// Operator requests on their way to the node (`POST /api/v1/admin/commit`).
    pub admin: admin::AdminDesk,
    /// What the block viewer shows, fed by the driver.
    pub board: Arc<crate::web::board::Board>,
    /// The block viewer, unless `--web.disable`.
    viewer: Option<Arc<crate::web::Viewer>>,
}

impl HttpState {
    /// A state that is neither healthy nor ready (reason `starting`) and knows no leader.
    pub fn new(metrics: Arc<Metrics>) -> HttpState {
        metrics.status.set(ProbeCheck::Ready, false);
        metrics.status.set(ProbeCheck::Healthy, false);
        HttpState {
            metrics,
            readiness: RwLock::new(Err(NOT_READY_STARTING.to_owned())),
            healthy: AtomicBool::new(false),
            leader: RwLock::new(LeaderStatus::default()),
            streams: RwLock::new(StreamsStatus::default()),
            admin: admin::AdminDesk::default(),
            board: Arc::default(),
            viewer: None,
        }
    }

    /// Serves the block viewer `viewer` too (its page, `/api/v1/blocks`, ...).
    pub fn with_viewer(mut self, viewer: Arc<crate::web::Viewer>) -> HttpState {
        self.viewer = Some(viewer);
        self
    }

    /// Marks compactd ready: `/-/ready` answers 200.
    pub fn set_ready(&self) {
        *self
            .readiness
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Ok(());
        self.metrics.status.set(ProbeCheck::Ready, true);
    }

    /// Marks compactd not ready: `/-/ready` answers 503 with `reason`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self
            .readiness
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Err(reason.into());
        self.metrics.status.set(ProbeCheck::Ready, false);
    }

    /// `Ok` when ready, else the reason it is not.
    pub fn readiness(&self) -> Result<(), String> {
        self.readiness
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks compactd healthy: `/-/healthy` answers 200. [`serve`] does this when it starts.
    pub fn set_healthy(&self) {
        self.healthy.store(true, Ordering::SeqCst);
        self.metrics.status.set(ProbeCheck::Healthy, true);
    }

    /// Marks compactd unhealthy: `/-/healthy` answers 503, so a liveness probe restarts it.
    pub fn set_not_healthy(&self) {
        self.healthy.store(false, Ordering::SeqCst);
        self.metrics.status.set(ProbeCheck::Healthy, false);
    }

    /// Whether `/-/healthy` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Publishes the leader (see [`LeaderStatus::set`]).
    pub fn set_leader(&self, leader: impl Into<String>, epoch: u64, since: impl Into<String>) {
        self.leader
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .set(leader, epoch, since);
    }

    /// Publishes that no leader is known.
    pub fn clear_leader(&self) {
        self.leader
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Publishes per-stream ownership.
    pub fn set_streams(&self, status: StreamsStatus) {
        *self.streams.write().unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// Per-stream ownership as last published.
    pub fn streams(&self) -> StreamsStatus {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The leader as last published.
    pub fn leader(&self) -> LeaderStatus {
        self.leader
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Parses `host:port` (`[v6]:port` for IPv6; an empty host means all interfaces, as in Go).
/// Host names are not resolved here; [`bind`] resolves them.
pub fn parse_address(address: &str) -> Result<(String, u16), HttpError> {
    let invalid = |reason| HttpError::InvalidAddress {
        address: address.to_owned(),
        reason,
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| invalid("missing port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("port is not a number in 0..=65535"))?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => {
            let v6 = bracketed
                .strip_suffix(']')
                .ok_or_else(|| invalid("unclosed '['"))?;
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| invalid("invalid IPv6 address"))?;
            v6.to_owned()
        }
        None if host.contains(':') => return Err(invalid("IPv6 hosts must be in brackets")),
        None if host.is_empty() => Ipv4Addr::UNSPECIFIED.to_string(),
        None => host.to_owned(),
    };
    Ok((host, port))
}

/// Parses `address` (see [`parse_address`]) and binds a listener on it.
pub async fn bind(address: &str) -> Result<TcpListener, HttpError> {
    let (host, port) = parse_address(address)?;
    let bound = match host.parse::<IpAddr>() {
        Ok(ip) => TcpListener::bind(SocketAddr::new(ip, port)).await,
        Err(_) => TcpListener::bind((host.as_str(), port)).await,
    };
    bound.map_err(|source| HttpError::Bind {
        address: address.to_owned(),
        source,
    })
}

/// The routes, for embedding; [`serve`] runs them.
pub fn router(state: Arc<HttpState>) -> Router {
    let base = Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/leader", get(leader))
        .route("/api/v1/streams", get(streams))
        .route("/api/v1/admin/commit", axum::routing::post(admin::commit))
        .fallback(not_found)
        .with_state(Arc::clone(&state));
    match &state.viewer {
        Some(viewer) => base.merge(crate::web::routes(Arc::clone(&state), Arc::clone(viewer))),
        None => base.route("/", get(index)),
    }
}

/// Serves the routes on `listener` until `shutdown` completes, then finishes in-flight
/// requests and returns. Marks the state healthy on start, and not ready as soon as
/// `shutdown` fires (so load balancers drain first) and unhealthy on return, like Thanos.
///
/// With `web` (`--http.config`), every request passes its checks ([`guard`]) and, when it
/// configures TLS, the port speaks HTTPS only ([`tls`]).
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    web: Option<Arc<WebConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.set_healthy();
    let on_shutdown = Arc::clone(&state);
    let signal = async move {
        shutdown.await;
        on_shutdown.set_not_ready(NOT_READY_SHUTTING_DOWN);
    };
    let mut app = router(Arc::clone(&state));
    let served = match web {
        Some(web) => {
            let guard = Arc::new(guard::Guard::new(Arc::clone(&web)));
            app = app.layer(axum::middleware::from_fn_with_state(guard, guard::check));
            if web.current().tls.is_some() {
                let listener = tls::TlsListener::new(listener, web)?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(signal)
                    .await
            } else {
                axum::serve(listener, app)
                    .with_graceful_shutdown(signal)
                    .await
            }
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
        }
    };
    state.set_not_healthy();
    served
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
        body.into(),
    )
        .into_response()
}

async fn index() -> Response {
    text(StatusCode::OK, INDEX)
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// Whether the client takes OpenMetrics (Prometheus asks for it first in `Accept`).
fn accepts_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"))
}

async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let (content_type, body) = if accepts_openmetrics(&headers) {
        (OPENMETRICS_CONTENT_TYPE, state.metrics.encode())
    } else {
        (
            PROMETHEUS_TEXT_CONTENT_TYPE,
            state.metrics.encode_prometheus_text(),
        )
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn healthy(State(state): State<Arc<HttpState>>) -> Response {
    if state.is_healthy() {
        text(StatusCode::OK, "OK")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "NOT OK\n")
    }
}

async fn ready(State(state): State<Arc<HttpState>>) -> Response {
    match state.readiness() {
        Ok(()) => text(StatusCode::OK, "OK"),
        Err(reason) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("NOT OK: {reason}\n"),
        ),
    }
}

async fn leader(State(state): State<Arc<HttpState>>) -> Response {
    json(&state.leader(), "leader status")
}

async fn streams(State(state): State<Arc<HttpState>>) -> Response {
    json(&state.streams(), "stream status")
}

/// `value` as a JSON response; the error names `what`.
fn json(value: &impl Serialize, what: &str) -> Response {
    json_with(StatusCode::OK, value, what)
}

/// `value` as a JSON response with `status`; the error names `what`.
fn json_with(status: StatusCode, value: &impl Serialize, what: &str) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response(),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding {what}: {error}\n"),
        ),
    }
}

#[cfg(test)]
mod tests;

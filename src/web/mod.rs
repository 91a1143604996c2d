//! The block viewer: a page on the HTTP port (and `compactd tools bucket web`) that shows the
//! bucket's blocks on timelines and what the compactor is doing with them (`docs/web.md`).
//!
//! The page is three static files compiled into the binary ([`assets`]); it reads the JSON
//! API ([`api`]), which answers from the [`board::Board`] — the views of the bucket the
//! compactor synced anyway and what its node reported — so opening the page costs no bucket
//! request. Marks made on the page are committed through the node, under its fence, like
//! `tools bucket mark --leader.url` ([`MarkRoute`]).

pub mod api;
mod assets;
pub mod board;
pub mod refresh;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use object_store::ObjectStore;

use crate::http::HttpState;
use crate::tools::commits::CommitRoute;
use crate::tools::plan::PlanSettings;

/// Thanos' `--block-viewer.global.sync-block-interval` default.
pub const GLOBAL_SYNC_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);
/// Thanos' `--block-viewer.global.sync-block-timeout` default.
pub const GLOBAL_SYNC_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);

/// The `--web.*` flags and what the page needs to know of the compactor's.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// `--web.route-prefix`, normalised: empty or `/a/b` (no trailing slash).
    pub route_prefix: String,
    /// The path of `--web.external-prefix`, normalised likewise; empty when not given.
    pub external_prefix: String,
    /// `--web.prefix-header`: the request header carrying the prefix links must use.
    pub prefix_header: Option<String>,
    /// `--web.disable-cors`.
    pub disable_cors: bool,
    /// `--bucket-web-label`: the external label the page groups rows by.
    pub label: String,
    /// `--disable-admin-operations`.
    pub disable_admin: bool,
    /// `--per-stream` ownership (`--ownership=stream`).
    pub per_stream: bool,
    /// The flags of this process for `/api/v1/status/flags` (secrets redacted).
    pub flags: BTreeMap<String, String>,
    /// The flags that change the plan.
    pub plan: PlanSettings,
    /// The compaction ranges in ms.
    pub ranges: Vec<i64>,
    /// `--block-viewer.global.sync-block-interval`.
    pub global_sync_interval: Duration,
    /// `--block-viewer.global.sync-block-timeout`.
    pub global_sync_timeout: Duration,
    /// `--web.node-url-template`: another replica's viewer URL with `{node}` for its
    /// `--node.name`, so that a follower's page links to the leader's live state.
    pub node_url_template: Option<String>,
}

impl WebSettings {
    /// The viewer URL of replica `node`, from `--web.node-url-template`.
    pub fn node_url(&self, node: &str) -> Option<String> {
        let template = self.node_url_template.as_deref()?;
        (!node.is_empty()).then(|| template.replace("{node}", node))
    }
}

impl WebSettings {
    /// Settings for `run_prefix` (`--web.route-prefix`) and `external` (`--web.external-prefix`,
    /// a URL or a path); as in Thanos, the route prefix defaults to the external prefix's path.
    ///
    /// A prefix holds letters, digits and `-._~/` only (a route of the HTTP router; no
    /// `{`, `:` or `*`); anything else is an error naming the flag.
    pub fn prefixes(
        route: Option<&str>,
        external: Option<&str>,
    ) -> Result<(String, String), String> {
        let external = external.map(url_path).unwrap_or_default();
        check_prefix("--web.external-prefix", &external)?;
        let route = match route {
            Some(r) if !r.is_empty() => normalise(r),
            _ => external.clone(),
        };
        check_prefix("--web.route-prefix", &route)?;
        Ok((route, external))
    }
}

/// The path of `url` (`http://host/a/` → `/a`), normalised; a bare path is taken as it is.
fn url_path(url: &str) -> String {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    normalise(path)
}

/// Fails naming `flag` unless `prefix` is a plain path.
fn check_prefix(flag: &str, prefix: &str) -> Result<(), String> {
    match prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~/".contains(*c)))
    {
        Some(c) => Err(format!(
            "{flag} {prefix:?}: {c:?} is not allowed in a path prefix (letters, digits and -._~/ only)"
        )),
        None => Ok(()),
    }
}

/// `a/b/` → `/a/b`; `/` → ``.
pub(crate) fn normalise(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// What the viewer runs next to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `compactd run` without `--etcd.url`.
    Single,
    /// `compactd run` elected through etcd.
    Elected,
    /// `compactd tools bucket web`: no compactor.
    Tool,
}

/// Who commits the marks made on the page.
#[derive(Clone, Debug)]
pub enum MarkRoute {
    /// The node of this process, under its fence (`compactd run`).
    Node,
    /// A bucket tool's route: its own fence, or a compactd's `--leader.url`.
    Tool(CommitRoute),
}

/// The viewer of one process.
#[derive(Debug)]
pub struct Viewer {
    /// Its settings.
    pub settings: WebSettings,
    /// The bucket, for audits and the global view's own syncs.
    pub store: Arc<dyn ObjectStore>,
    /// Who commits marks.
    pub marks: MarkRoute,
    /// This node's name (`--node.name`), empty for a tool.
    pub node: String,
    /// What it runs next to.
    pub role: Role,
}

/// The state of the viewer's handlers.
#[derive(Clone)]
pub struct WebState {
    /// The process' HTTP state: the board, the node's desk, the leader.
    pub http: Arc<HttpState>,
    /// The viewer.
    pub viewer: Arc<Viewer>,
}

/// The viewer's routes, under `--web.route-prefix`; `/` redirects there when it is set.
pub fn routes(http: Arc<HttpState>, viewer: Arc<Viewer>) -> Router {
    let prefix = viewer.settings.route_prefix.clone();
    let cors = !viewer.settings.disable_cors;
    let state = WebState { http, viewer };
    let at = |path: &str| format!("{prefix}{path}");
    let mut api = Router::new()
        .route(&at("/api/v1/blocks"), get(api::blocks))
        .route(&at("/api/v1/blocks/mark"), post(api::mark))
        .route(&at("/api/v1/compactor"), get(api::compactor))
        .route(&at("/api/v1/compactor/audit"), post(api::audit))
        .route(&at("/api/v1/status/flags"), get(api::flags))
        .route(&at("/api/v1/status/buildinfo"), get(api::buildinfo));
    if cors {
        api = api.layer(axum::middleware::from_fn(with_cors));
    }
    let mut pages = Router::new()
        .route(&at("/"), get(assets::index))
        .route(&at("/blocks"), get(assets::index))
        .route(&at("/loaded"), get(assets::index))
        .route(&at("/static/app.js"), get(assets::script))
        .route(&at("/static/style.css"), get(assets::style));
    if !prefix.is_empty() {
        let target = at("/");
        pages = pages
            .route(&prefix, get(assets::index))
            .route("/", get(move || async move { Redirect::to(&target) }));
    }
    pages.merge(api).with_state(state)
}

/// Thanos' CORS headers on every API answer (`--web.disable-cors` leaves them out); a
/// preflight `OPTIONS` is answered here.
async fn with_cors(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::OK.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "access-control-allow-headers",
            "Accept, Accept-Encoding, Authorization, Content-Type, Origin",
        ),
        ("access-control-allow-methods", "GET, POST, OPTIONS"),
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "Date"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests;

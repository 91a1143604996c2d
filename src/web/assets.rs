//! The page's three files, compiled into the binary: `index.html` (with the prefix its links
//! use filled in), `app.js` and `style.css`. No build step: they are served as written.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::WebState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Where `index.html` takes the prefix of its links.
const PREFIX_PLACEHOLDER: &str = "{{PATH_PREFIX}}";

/// The page, at `/`, `/blocks` (the global view) and `/loaded` (this compactor's view).
pub(super) async fn index(State(web): State<WebState>, headers: HeaderMap) -> Response {
    let prefix = link_prefix(&web, &headers);
    let page = INDEX_HTML.replace(PREFIX_PLACEHOLDER, &escape_js(&prefix));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// The prefix of the page's links: `--web.external-prefix`'s path, else the
/// `--web.prefix-header` header's value, else `--web.route-prefix` (Thanos' order).
fn link_prefix(web: &WebState, headers: &HeaderMap) -> String {
    let settings = &web.viewer.settings;
    if !settings.external_prefix.is_empty() {
        return settings.external_prefix.clone();
    }
    let from_header = settings
        .prefix_header
        .as_deref()
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .map(super::normalise);
    from_header.unwrap_or_else(|| settings.route_prefix.clone())
}

/// `s` safe inside a double-quoted JavaScript string in an HTML `<script>`, and inside an
/// attribute.
fn escape_js(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/-_.~%".contains(*c))
        .collect()
}

/// `app.js`.
pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

/// `style.css`.
pub(super) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
        .into_response()
}

//! `compactd tools bucket web`: the block viewer for any bucket, without a compactor (Thanos'
//! `tools bucket web`). It syncs the bucket every `--refresh` (bounded by `--timeout`) into
//! the viewer's board — the global view, and the view through its own filters as the loaded
//! one — and serves the page and the API until SIGTERM or SIGINT. Marks made on the page go
//! the bucket tools' way ([`super::commits`]): under the tool's own hold of the fence (refused
//! next to a live compactd), or to a compactd with `--leader.url`.

use std::sync::Arc;
use std::time::Duration;

use crate::core::view::ViewConfig;
use crate::http::{HttpState, WebConfig};
use crate::metrics::Metrics;
use crate::web::refresh::{refresh_loop, Refresh};
use crate::web::Viewer;

/// What `tools bucket web` serves.
pub struct WebTool {
    /// The viewer (its settings, bucket and mark route).
    pub viewer: Arc<Viewer>,
    /// `--http-address`.
    pub http_address: String,
    /// `--http.config`.
    pub web_config: Option<Arc<WebConfig>>,
    /// The filters of the loaded view (`--min-time`, `--max-time`, `--selector.relabel-config`).
    pub view: ViewConfig,
    /// `--refresh`.
    pub refresh: Duration,
    /// `--timeout`.
    pub timeout: Duration,
}

/// Serves the viewer until SIGTERM or SIGINT.
pub async fn serve(tool: WebTool, bucket_name: &str) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(bucket_name));
    let http = Arc::new(HttpState::new(metrics).with_viewer(Arc::clone(&tool.viewer)));
    let listener = crate::http::bind(&tool.http_address).await?;
    let scheme = match &tool.web_config {
        Some(web) if web.current().tls.is_some() => "https",
        _ => "http",
    };
    tracing::info!(scheme, address = %listener.local_addr()?, "serving HTTP: the block viewer");
    let refresher = tokio::spawn(refresh_loop(
        Arc::clone(&http.board),
        Arc::clone(&tool.viewer.store),
        Refresh::Always(tool.view),
        tool.refresh,
        tool.timeout,
    ));
    http.set_ready();
    let server = tokio::spawn(crate::http::serve(
        listener,
        Arc::clone(&http),
        tool.web_config,
        crate::run::shutdown_signal(),
    ));
    let served = server.await;
    refresher.abort();
    match served {
        Ok(result) => Ok(result?),
        Err(e) => anyhow::bail!("the HTTP server stopped: {e}"),
    }
}

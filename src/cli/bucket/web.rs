//! `tools bucket web`: Thanos' flags of `thanos tools bucket web`, and the mark route of the
//! other bucket tools.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::maintain::FenceArgs;
use super::{open_bucket, BucketArgs, SelectorArgs};
use crate::cli::duration_ms;
use compactd::core::plan::compaction_ranges;
use compactd::core::view::{Scope, ViewConfig};
use compactd::tools::plan::PlanSettings;
use compactd::tools::web::{serve, WebTool};
use compactd::web::{MarkRoute, Role, Viewer, WebSettings};

/// The plan the page shows is `run`'s with its defaults: `--debug.max-compaction-level`.
const MAX_COMPACTION_LEVEL_DEFAULT: usize = 4;
/// And `--compact.block-max-index-size`.
const BLOCK_MAX_INDEX_SIZE_DEFAULT: &str = "64GB";

/// `tools bucket web`.
#[derive(Args)]
pub struct WebArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    fence: FenceArgs,
    /// Listen address of the page and its API.
    #[arg(long = "http-address", default_value = compactd::http::DEFAULT_HTTP_ADDRESS)]
    http_address: String,
    /// The Prometheus web configuration file of the port: TLS, basic auth, headers.
    #[arg(long = "http.config")]
    http_config: Option<PathBuf>,
    /// Prefix of the page and API routes (default: the path of --web.external-prefix).
    #[arg(long = "web.route-prefix")]
    route_prefix: Option<String>,
    /// The URL (or path) the page is reached at behind a proxy; its links use its path.
    #[arg(long = "web.external-prefix")]
    external_prefix: Option<String>,
    /// Request header whose value prefixes the page's links (ignored with --web.external-prefix).
    #[arg(long = "web.prefix-header")]
    prefix_header: Option<String>,
    /// Leave out the CORS headers of the API.
    #[arg(long = "web.disable-cors")]
    disable_cors: bool,
    /// Refresh interval: the bucket is synced this often.
    #[arg(long = "refresh", default_value = "30m", value_parser = duration_ms)]
    refresh: u64,
    /// Timeout of one sync of the bucket.
    #[arg(long = "timeout", default_value = "5m", value_parser = duration_ms)]
    timeout: u64,
    /// External label the page groups its timeline rows by.
    #[arg(long = "label")]
    label: Option<String>,
    /// Blocks ending before this (RFC3339, Unix ms or a duration before now) are left out of the loaded view.
    #[arg(long = "min-time", default_value = "0000-01-01T00:00:00Z")]
    min_time: String,
    /// Blocks starting after this are left out of the loaded view.
    #[arg(long = "max-time", default_value = "9999-12-31T23:59:59Z")]
    max_time: String,
    #[command(flatten)]
    selector: SelectorArgs,
    /// Refuse marks from the page.
    #[arg(long = "disable-admin-operations")]
    disable_admin_operations: bool,
}

/// Runs `tools bucket web`.
pub fn run(a: WebArgs) -> anyhow::Result<ExitCode> {
    compactd::logging::init("info", compactd::logging::LogFormat::Logfmt)
        .map_err(anyhow::Error::msg)?;
    let selector_relabel = a.selector.load()?;
    let web_config = match &a.http_config {
        Some(path) => Some(Arc::new(compactd::http::WebConfig::load(path)?)),
        None => None,
    };
    let now_ms = compactd::tools::now_unix_ms();
    let time = |flag: &str, v: &str| {
        compactd::flags::parse_time_or_duration(v, now_ms)
            .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let view = ViewConfig {
        min_time: time("min-time", &a.min_time)?,
        max_time: time("max-time", &a.max_time)?,
        consistency_delay_ms: 0,
        delete_delay_ms: 0,
        replica_labels: a.fence.replica_labels.clone(),
        selector_relabel: selector_relabel.clone(),
        scope: Scope::All,
    };
    let (bucket, runtime) = open_bucket(&a.bucket)?;
    let (route_prefix, external_prefix) =
        WebSettings::prefixes(a.route_prefix.as_deref(), a.external_prefix.as_deref())
            .map_err(anyhow::Error::msg)?;
    let max_compaction_level = MAX_COMPACTION_LEVEL_DEFAULT;
    let settings = WebSettings {
        route_prefix,
        external_prefix,
        prefix_header: a.prefix_header.filter(|h| !h.is_empty()),
        disable_cors: a.disable_cors,
        label: a.label.unwrap_or_default(),
        disable_admin: a.disable_admin_operations,
        per_stream: false,
        flags: Default::default(),
        plan: PlanSettings {
            replica_labels: a.fence.replica_labels.clone(),
            vertical: false,
            consistency_delay_ms: 0,
            delete_delay_ms: 0,
            max_compaction_level,
            block_max_index_size: compactd::flags::parse_bytes(BLOCK_MAX_INDEX_SIZE_DEFAULT)
                .map_err(anyhow::Error::msg)?,
            selector_relabel,
        },
        ranges: compaction_ranges(max_compaction_level).map_err(|e| anyhow::anyhow!("{e}"))?,
        global_sync_interval: Duration::from_millis(a.refresh),
        global_sync_timeout: Duration::from_millis(a.timeout),
        node_url_template: None,
    };
    let viewer = Arc::new(Viewer {
        settings,
        store: Arc::clone(&bucket.store),
        marks: MarkRoute::Tool(a.fence.route("web", &bucket)),
        node: String::new(),
        role: Role::Tool,
    });
    let tool = WebTool {
        viewer,
        http_address: a.http_address,
        web_config,
        view,
        refresh: Duration::from_millis(a.refresh),
        timeout: Duration::from_millis(a.timeout),
    };
    runtime.block_on(serve(tool, &bucket.name))?;
    Ok(ExitCode::SUCCESS)
}

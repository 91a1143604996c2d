//! `compactd run`: wires the configuration, the bucket, the HTTP server and the driver
//! together and runs the compactor until it exits (one-shot) or is stopped (`--wait`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::core::cycle::CycleConfig;
use crate::core::fence::FENCE_PATH;
use crate::core::leader::{LeaderConfig, Provider, Safety, StreamsConfig};
use crate::core::node::Node;
use crate::core::plan::compaction_ranges;
use crate::core::view::{Scope, ViewConfig};
use crate::driver::store::StoreExecutor;
use crate::driver::streamed::InputSource;
use crate::driver::{DriverConfig, JobIo, Recorder, Reporter};
use crate::election::etcd::{EtcdConfig, EtcdCoordinator};
use crate::http::HttpState;
use crate::metrics::Metrics;
use crate::relabel::selector::load_selector;
use crate::relabel::RelabelConfig;
use crate::tools::plan::PlanSettings;
use crate::trace::TraceHeader;
use crate::tsdb::compact::DedupFunc;
use crate::units::{DOWNSAMPLE_RANGE_1H_MS, DOWNSAMPLE_RANGE_5M_MS};
use crate::web::{
    MarkRoute, Role, Viewer, WebSettings, GLOBAL_SYNC_INTERVAL_DEFAULT, GLOBAL_SYNC_TIMEOUT_DEFAULT,
};

/// How jobs reach the bucket: streaming unless `--compact.download-blocks` asks otherwise or
/// the bucket cannot take multipart uploads (S3 `disable_multipart: true`).
fn job_io(cfg: &RunConfig, bucket: &crate::objstore::Bucket) -> JobIo {
    if cfg.download_blocks {
        tracing::info!(data_dir = %cfg.data_dir.display(), "jobs download their input blocks into --data-dir (--compact.download-blocks)");
        return JobIo::Download;
    }
    if bucket.part_size_bytes.is_none() {
        tracing::warn!(data_dir = %cfg.data_dir.display(), "the bucket disables multipart uploads: jobs download their input blocks into --data-dir instead of streaming");
        return JobIo::Download;
    }
    let source = match &bucket.local_root {
        Some(root) => InputSource::Directory(root.clone()),
        None => InputSource::Bucket,
    };
    tracing::info!(inputs = ?source, "jobs stream: inputs read from the bucket, output written to it as produced; --data-dir is not used");
    JobIo::Stream(source)
}

/// Everything `compactd run` is configured with (parsed flags).
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// `--objstore.config-file`.
    pub objstore_config_file: Option<PathBuf>,
    /// `--objstore.config`.
    pub objstore_config: Option<String>,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `--http-address`.
    pub http_address: String,
    /// `--wait`.
    pub wait: bool,
    /// `--wait-interval` in ms.
    pub wait_interval_ms: u64,
    /// `--compact.progress-interval` in ms (0 disables the backlog gauges).
    pub progress_interval_ms: u64,
    /// `--compact.cleanup-interval` in ms: with `--wait`, how often marked blocks past the
    /// delete delay and stale partial uploads are deleted during a pass (0: only in every
    /// iteration).
    pub cleanup_interval_ms: u64,
    /// `--consistency-delay` in ms.
    pub consistency_delay_ms: u64,
    /// `--delete-delay` in ms.
    pub delete_delay_ms: u64,
    /// `--min-time`, Unix ms.
    pub min_time_ms: i64,
    /// `--max-time`, Unix ms.
    pub max_time_ms: i64,
    /// `--retention.resolution-raw`, `-5m`, `-1h` in ms.
    pub retention_ms: [u64; 3],
    /// `--compact.concurrency`.
    pub concurrency: usize,
    /// `--compact.enable-vertical-compaction`.
    pub vertical: bool,
    /// `--deduplication.replica-label`.
    pub replica_labels: Vec<String>,
    /// `--selector.relabel-config-file`.
    pub selector_relabel_config_file: Option<PathBuf>,
    /// `--selector.relabel-config`.
    pub selector_relabel_config: Option<String>,
    /// `--deduplication.func`.
    pub dedup: DedupFunc,
    /// `--debug.max-compaction-level`.
    pub max_compaction_level: usize,
    /// `--compact.block-max-index-size` in bytes.
    pub block_max_index_size: u64,
    /// `--downsampling.disable`.
    pub downsampling_disabled: bool,
    /// `--downsample.concurrency`.
    pub downsample_concurrency: usize,
    /// `--compact.download-blocks`: jobs download their inputs into --data-dir.
    pub download_blocks: bool,
    /// `--objstore.op-timeout` in ms.
    pub op_timeout_ms: u64,
    /// Leadership flags.
    pub ha: HaSettings,
    /// Threads per compaction.
    pub compact_threads: usize,
    /// `--debug.partial-upload-threshold` in ms (Thanos' fixed 48h by default).
    pub partial_upload_threshold_ms: u64,
    /// `--trace.record`: the file to record every step of the node to.
    pub trace_record: Option<PathBuf>,
    /// `--block-meta-fetch-concurrency`, `--compact.blocks-fetch-concurrency`,
    /// `--block-files-concurrency`.
    pub transfers: crate::driver::store::Transfers,
    /// `--http-grace-period`: how long in-flight HTTP requests may finish after a shutdown
    /// signal.
    pub http_grace_period_ms: u64,
    /// `--http.config`: the Prometheus web configuration file (TLS, basic auth) of the port.
    pub http_config: Option<PathBuf>,
    /// `--hash-func`: hashes of the files of new blocks in their meta.json.
    pub hash_func: crate::driver::jobs::HashFunc,
    /// `--debug.halt-on-error`: stay up halted (true) or exit (false) on a halting error.
    pub halt_on_error: bool,
    /// `--compact.skip-block-with-out-of-order-chunks`: no-compact-mark a block whose index
    /// lists chunks out of time order instead of halting.
    pub skip_out_of_order_chunks: bool,
    /// `--debug.accept-malformed-index`: compact and downsample blocks whose series have
    /// unsorted label names (Prometheus 2.8.0 and older) instead of halting on them.
    pub accept_malformed_index: bool,
    /// `--disable-admin-operations`: `POST /api/v1/admin/commit` answers 403.
    pub disable_admin_operations: bool,
    /// The block viewer's flags (`--web.*`, `--bucket-web-label`, `--block-viewer.*`).
    pub web: WebFlags,
}

/// The block viewer's flags of `compactd run`.
#[derive(Clone, Debug, Default)]
pub struct WebFlags {
    /// `--web.disable`: no page and no viewer API.
    pub disable: bool,
    /// `--web.route-prefix`.
    pub route_prefix: Option<String>,
    /// `--web.external-prefix`.
    pub external_prefix: Option<String>,
    /// `--web.prefix-header`.
    pub prefix_header: Option<String>,
    /// `--web.disable-cors`.
    pub disable_cors: bool,
    /// `--bucket-web-label`.
    pub label: Option<String>,
    /// `--block-viewer.global.sync-block-interval` in ms (`None`: Thanos' 1m).
    pub global_sync_interval_ms: Option<u64>,
    /// `--block-viewer.global.sync-block-timeout` in ms (`None`: Thanos' 5m).
    pub global_sync_timeout_ms: Option<u64>,
    /// `--web.node-url-template`.
    pub node_url_template: Option<String>,
    /// Every flag of the command line and its value, for `/api/v1/status/flags`.
    pub flags: std::collections::BTreeMap<String, String>,
}

/// `--election`: who elects the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionFlag {
    /// Through etcd (`--etcd.url`).
    Etcd,
    /// On the bucket itself: the fence object is the lease.
    Bucket,
    /// None: a single instance.
    None,
}

impl std::str::FromStr for ElectionFlag {
    type Err = String;

    fn from_str(s: &str) -> Result<ElectionFlag, String> {
        match s {
            "etcd" => Ok(ElectionFlag::Etcd),
            "bucket" => Ok(ElectionFlag::Bucket),
            "none" => Ok(ElectionFlag::None),
            other => Err(format!("--election={other:?}: one of etcd, bucket, none")),
        }
    }
}

/// The flags of leadership (`--election`, `--etcd.*`, `--leader.*`, `--node.name`).
#[derive(Clone, Debug, Default)]
pub struct HaSettings {
    /// `--election` (`None`: etcd with `--etcd.url`, else a single instance).
    pub election: Option<ElectionFlag>,
    /// `--etcd.url`; empty runs a single instance.
    pub etcd_urls: Vec<String>,
    /// `--etcd.prefix`.
    pub etcd_prefix: Option<String>,
    /// `--etcd.lease-ttl` in ms.
    pub lease_ttl_ms: u64,
    /// `--etcd.username`.
    pub username: Option<String>,
    /// `--etcd.password`.
    pub password: Option<String>,
    /// `--etcd.ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--etcd.cert-file`.
    pub cert_file: Option<PathBuf>,
    /// `--etcd.key-file`.
    pub key_file: Option<PathBuf>,
    /// `--leader.takeover-delay` in ms.
    pub takeover_delay_ms: u64,
    /// `--node.name`.
    pub node_name: Option<String>,
    /// `--ownership=stream`: every replica compacts the streams assigned to it (elected,
    /// with `--wait`).
    pub per_stream: bool,
    /// `--streams.rebalance-delay` in ms.
    pub rebalance_delay_ms: u64,
}

/// How often a replica reads the members from etcd with per-stream ownership: a replica
/// that left is noticed within this after its lease expired, so it adds to every stream's
/// failover (one small range read per replica each time).
const STREAMS_OBSERVE_INTERVAL_MS: i64 = 250;

/// Downsampling needs raw data kept at least this long (Thanos' start-up check).
const MIN_RAW_RETENTION_WITH_DOWNSAMPLING_MS: u64 = DOWNSAMPLE_RANGE_5M_MS as u64;
/// And 5m data at least this long.
const MIN_5M_RETENTION_WITH_DOWNSAMPLING_MS: u64 = DOWNSAMPLE_RANGE_1H_MS as u64;

impl RunConfig {
    /// Checks combinations Thanos refuses at start-up.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 {
            anyhow::bail!("--compact.concurrency must be at least 1");
        }
        if self.downsample_concurrency == 0 {
            anyhow::bail!("--downsample.concurrency must be at least 1");
        }
        if self.wait_interval_ms == 0 && self.wait {
            anyhow::bail!("--wait-interval must be positive");
        }
        if self.min_time_ms > self.max_time_ms {
            anyhow::bail!("--min-time is after --max-time");
        }
        if self.dedup == DedupFunc::Penalty && self.replica_labels.is_empty() {
            anyhow::bail!("--deduplication.func=penalty needs at least one --deduplication.replica-label (Thanos' rule): it deduplicates replicas");
        }
        if !self.downsampling_disabled {
            let [raw, five, _] = self.retention_ms;
            if raw != 0 && raw < MIN_RAW_RETENTION_WITH_DOWNSAMPLING_MS {
                anyhow::bail!("--retention.resolution-raw must be at least 40h while downsampling is enabled (Thanos' rule)");
            }
            if five != 0 && five < MIN_5M_RETENTION_WITH_DOWNSAMPLING_MS {
                anyhow::bail!("--retention.resolution-5m must be at least 10d while downsampling is enabled (Thanos' rule)");
            }
        }
        compaction_ranges(self.max_compaction_level)
            .map_err(|e| anyhow::anyhow!("--debug.max-compaction-level: {e}"))?;
        Ok(())
    }

    fn leader_config(&self, bucket_name: &str) -> anyhow::Result<LeaderConfig> {
        let node = match &self.ha.node_name {
            Some(n) => n.clone(),
            None => hostname()?,
        };
        if node.is_empty() || node.contains(char::is_whitespace) {
            anyhow::bail!("--node.name {node:?}: must be non-empty, without spaces");
        }
        let provider = self.election_provider()?;
        let prefix = (provider == Some(Provider::Etcd)).then(|| {
            let prefix = match &self.ha.etcd_prefix {
                Some(p) => p.trim_end_matches('/').to_string(),
                None => format!("/compactd/{bucket_name}"),
            };
            prefix
        });
        let streams = prefix
            .as_ref()
            .filter(|_| self.ha.per_stream && self.wait)
            .map(|prefix| StreamsConfig {
                prefix: prefix.clone(),
                observe_interval_ms: STREAMS_OBSERVE_INTERVAL_MS,
                discover_interval_ms: (self.wait_interval_ms as i64)
                    .max(STREAMS_OBSERVE_INTERVAL_MS),
                rebalance_delay_ms: self.ha.rebalance_delay_ms as i64,
            });
        if provider == Some(Provider::Bucket) && self.ha.per_stream && self.wait {
            tracing::info!("--ownership=stream needs --election=etcd (the members and stream seats live in etcd): with --election=bucket one leader owns the bucket");
        }
        let election = match provider {
            Some(Provider::Bucket) => Some(FENCE_PATH.to_string()),
            _ => prefix.map(|p| format!("{p}/election")),
        };
        let cfg = LeaderConfig {
            node,
            election,
            provider: provider.unwrap_or_default(),
            nonce: format!("{:016x}", seed_from_entropy()),
            stream: None,
            streams,
            lease_ttl_ms: self.ha.lease_ttl_ms as i64,
            op_timeout_ms: self.op_timeout_ms as i64,
            takeover_delay_ms: self.ha.takeover_delay_ms as i64,
            commit_window_ms: self.op_timeout_ms as i64,
            safety: Safety::ALL,
        };
        cfg.validate().map_err(anyhow::Error::msg)?;
        Ok(cfg)
    }

    /// Who elects the leader (`None`: a single instance), from `--election` and
    /// `--etcd.url`; contradictory flags are an error naming both.
    fn election_provider(&self) -> anyhow::Result<Option<Provider>> {
        let etcd = !self.ha.etcd_urls.is_empty();
        Ok(match (self.ha.election, etcd) {
            (Some(ElectionFlag::Etcd), false) => anyhow::bail!("--election=etcd needs --etcd.url"),
            (Some(ElectionFlag::Etcd), true) | (None, true) => Some(Provider::Etcd),
            (Some(ElectionFlag::Bucket), false) => Some(Provider::Bucket),
            (Some(ElectionFlag::Bucket), true) => anyhow::bail!(
                "--election=bucket elects on the bucket itself: remove --etcd.url (or use --election=etcd)"
            ),
            (Some(ElectionFlag::None), true) => anyhow::bail!(
                "--election=none runs a single instance: remove --etcd.url (or use --election=etcd)"
            ),
            (Some(ElectionFlag::None), false) | (None, false) => None,
        })
    }

    /// The rules of `--selector.relabel-config[-file]` (none: every block); the error names
    /// the flag, the file, the rule and the field.
    pub fn selector_relabel(&self) -> anyhow::Result<Vec<RelabelConfig>> {
        Ok(load_selector(
            self.selector_relabel_config_file.as_deref(),
            self.selector_relabel_config.as_deref(),
        )?)
    }

    /// The block viewer of this run.
    fn viewer(
        &self,
        bucket: &crate::objstore::Bucket,
        leader: &LeaderConfig,
        selector_relabel: Vec<RelabelConfig>,
    ) -> anyhow::Result<Arc<Viewer>> {
        let web = &self.web;
        let (route_prefix, external_prefix) =
            WebSettings::prefixes(web.route_prefix.as_deref(), web.external_prefix.as_deref())
                .map_err(anyhow::Error::msg)?;
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let settings = WebSettings {
            route_prefix,
            external_prefix,
            prefix_header: web.prefix_header.clone().filter(|h| !h.is_empty()),
            disable_cors: web.disable_cors,
            label: web.label.clone().unwrap_or_default(),
            disable_admin: self.disable_admin_operations,
            per_stream: leader.streams.is_some(),
            flags: web.flags.clone(),
            plan: PlanSettings {
                replica_labels: self.replica_labels.clone(),
                vertical: self.vertical,
                consistency_delay_ms: self.consistency_delay_ms as i64,
                delete_delay_ms: self.delete_delay_ms as i64,
                max_compaction_level: self.max_compaction_level,
                block_max_index_size: self.block_max_index_size,
                selector_relabel,
            },
            ranges: compaction_ranges(self.max_compaction_level)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            global_sync_interval: ms(web.global_sync_interval_ms, GLOBAL_SYNC_INTERVAL_DEFAULT),
            global_sync_timeout: ms(web.global_sync_timeout_ms, GLOBAL_SYNC_TIMEOUT_DEFAULT),
            node_url_template: web.node_url_template.clone().filter(|t| !t.is_empty()),
        };
        Ok(Arc::new(Viewer {
            settings,
            store: Arc::clone(&bucket.store),
            marks: MarkRoute::Node,
            node: leader.node.clone(),
            role: if leader.election.is_some() {
                Role::Elected
            } else {
                Role::Single
            },
        }))
    }

    fn cycle_config(&self, selector_relabel: Vec<RelabelConfig>) -> anyhow::Result<CycleConfig> {
        Ok(CycleConfig {
            view: ViewConfig {
                min_time: self.min_time_ms,
                max_time: self.max_time_ms,
                consistency_delay_ms: self.consistency_delay_ms as i64,
                delete_delay_ms: self.delete_delay_ms as i64,
                replica_labels: self.replica_labels.clone(),
                selector_relabel,
                scope: Scope::All,
            },
            wait: self.wait,
            wait_interval_ms: self.wait_interval_ms as i64,
            concurrency: self.concurrency,
            ranges: compaction_ranges(self.max_compaction_level)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            vertical: self.vertical || !self.replica_labels.is_empty(),
            index_size_limit_bytes: Some(self.block_max_index_size),
            retention_ms: self.retention_ms.map(|r| r as i64),
            partial_upload_threshold_ms: self.partial_upload_threshold_ms as i64,
            downsampling: !self.downsampling_disabled,
            downsample_concurrency: self.downsample_concurrency,
            progress_interval_ms: i64::try_from(self.progress_interval_ms).unwrap_or(i64::MAX),
            cleanup_interval_ms: i64::try_from(self.cleanup_interval_ms).unwrap_or(i64::MAX),
            halt_on_error: self.halt_on_error,
            skip_out_of_order_chunks: self.skip_out_of_order_chunks,
        })
    }
}

/// Runs the compactor; returns the process exit code.
pub async fn run(cfg: RunConfig) -> anyhow::Result<i32> {
    cfg.validate()?;
    // A bad selector stops compactd here, before anything touches the bucket.
    let selector_relabel = cfg.selector_relabel()?;
    if !selector_relabel.is_empty() {
        tracing::info!(
            rules = selector_relabel.len(),
            "acting only on the blocks --selector.relabel-config selects"
        );
    }
    // So does a bad --http.config.
    let web = match &cfg.http_config {
        Some(path) => Some(Arc::new(crate::http::WebConfig::load(path)?)),
        None => None,
    };
    let bucket_cfg = crate::objstore::load(
        cfg.objstore_config_file.as_deref(),
        cfg.objstore_config.as_deref(),
    )?;
    let bucket = crate::objstore::open(&bucket_cfg)?;
    tracing::info!(bucket = %crate::objstore::describe(&bucket_cfg), "opened bucket");
    let job_io = job_io(&cfg, &bucket);
    if matches!(job_io, JobIo::Download) {
        crate::driver::reset_data_dir(&cfg.data_dir)
            .with_context(|| format!("--data-dir {}", cfg.data_dir.display()))?;
    }
    let metrics = Arc::new(Metrics::new(&bucket.name));
    metrics
        .compact
        .delete_delay_seconds
        .set(cfg.delete_delay_ms as f64 / 1000.0);
    metrics
        .compact
        .consistency_delay_seconds
        .set(cfg.consistency_delay_ms as f64 / 1000.0);
    let leader = cfg.leader_config(&bucket.name)?;
    if leader.election.is_some() && leader.provider == Provider::Bucket {
        check_bucket_election(&bucket, &leader).await?;
    }
    let viewer = (!cfg.web.disable)
        .then(|| cfg.viewer(&bucket, &leader, selector_relabel.clone()))
        .transpose()?;
    let mut http = HttpState::new(Arc::clone(&metrics));
    if let Some(viewer) = &viewer {
        http = http.with_viewer(Arc::clone(viewer));
    }
    let http = Arc::new(http);
    if let (Some(viewer), Some(_)) = (&viewer, &leader.election) {
        // The node's own syncs feed the views; a follower syncs nothing, so it syncs the
        // bucket for the page.
        let settings = &viewer.settings;
        tokio::spawn(crate::web::refresh::refresh_loop(
            Arc::clone(&http.board),
            Arc::clone(&bucket.store),
            crate::web::refresh::Refresh::WhileFollowing {
                node: leader.node.clone(),
                http: Arc::clone(&http),
            },
            settings.global_sync_interval,
            settings.global_sync_timeout,
        ));
    }
    if cfg.disable_admin_operations {
        http.admin.disable();
    }
    let listener = crate::http::bind(&cfg.http_address).await?;
    let scheme = match &web {
        Some(web) if web.current().tls.is_some() => "https",
        _ => "http",
    };
    // The address last: tests and scripts read the rest of the line as the address.
    tracing::info!(scheme, address = %listener.local_addr()?, "serving HTTP");
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::http::serve(
        listener,
        Arc::clone(&http),
        web,
        async move {
            let _ = http_stopped.await;
        },
    ));
    let seed = seed_from_entropy();
    let cycle = cfg.cycle_config(selector_relabel)?;
    let trace = match &cfg.trace_record {
        Some(path) => {
            let recorder = Recorder::create(path, &TraceHeader::new(&cycle, &leader, seed))?;
            tracing::info!(file = %path.display(), "recording every step of the node (--trace.record)");
            Some(recorder)
        }
        None => None,
    };
    let coordinator = match &leader.election {
        Some(_) if leader.provider == Provider::Bucket => {
            tracing::info!(node = %leader.node, lease = FENCE_PATH, "leader election on the bucket (--election=bucket): the fence object is the lease");
            None
        }
        Some(election) => {
            let etcd = connect_etcd(&cfg.ha).await?;
            tracing::info!(node = %leader.node, election = %election, etcd = %etcd.endpoints(), "leader election through etcd");
            Some(Arc::new(etcd))
        }
        None => {
            tracing::info!(node = %leader.node, "single instance (no --etcd.url): keeping the bucket fence");
            None
        }
    };
    if !bucket.conditional_update {
        tracing::warn!("this bucket has no conditional update (If-Match): the fence CAS compares then overwrites, which is not atomic; safety rests on the lease deadline and the takeover delay (docs/safety.md)");
    }
    let coord_timeout = Duration::from_millis((cfg.ha.lease_ttl_ms / 5).max(1_000));
    let leader_node = leader.node.clone();
    let node = Node::new(cycle, leader, seed);
    let driver = DriverConfig {
        store: Arc::new(
            StoreExecutor::new(Arc::clone(&bucket.store))
                .with_metrics(Arc::clone(&metrics))
                .with_conditional_update(bucket.conditional_update)
                .with_transfers(cfg.transfers)
                .with_writer(leader_node.clone()),
        ),
        data_dir: cfg.data_dir.clone(),
        compact_threads: cfg.compact_threads,
        dedup: cfg.dedup,
        op_timeout: Duration::from_millis(cfg.op_timeout_ms),
        coordinator,
        coord_timeout,
        reporter: Reporter::new(Arc::clone(&metrics)),
        http: Some(Arc::clone(&http)),
        trace,
        hash_func: cfg.hash_func,
        accept_malformed_index: cfg.accept_malformed_index,
        job_slots: crate::driver::JobSlots::new(cfg.concurrency, cfg.downsample_concurrency),
        job_io,
    };
    http.set_ready();
    let code = crate::driver::run(node, driver, shutdown_signal()).await;
    let _ = stop_http.send(());
    let grace = Duration::from_millis(cfg.http_grace_period_ms);
    if tokio::time::timeout(grace, server).await.is_err() {
        tracing::warn!(
            grace = ?grace,
            "HTTP requests still open after --http-grace-period; closing them"
        );
    }
    Ok(code)
}

async fn connect_etcd(ha: &HaSettings) -> anyhow::Result<EtcdCoordinator> {
    let cfg = EtcdConfig {
        endpoints: ha.etcd_urls.clone(),
        username: ha.username.clone(),
        password: ha.password.clone(),
        ca_file: ha.ca_file.clone(),
        cert_file: ha.cert_file.clone(),
        key_file: ha.key_file.clone(),
        connect_timeout: Duration::from_secs(5),
    };
    EtcdCoordinator::connect(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!("--etcd.url: {e}"))
}

/// The host name (the default `--node.name`).
fn hostname() -> anyhow::Result<String> {
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            return Ok(h.to_string());
        }
    }
    match std::env::var("HOSTNAME") {
        Ok(h) if !h.is_empty() => Ok(h),
        _ => anyhow::bail!("cannot determine the host name; pass --node.name"),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("received a stop signal; exiting");
}

/// Refuses a bucket that cannot hold the election: the filesystem (no atomic
/// compare-and-swap), and any store whose conditional writes fail the self-test
/// (`election::selftest`) on a scratch object of this replica's own.
async fn check_bucket_election(
    bucket: &crate::objstore::Bucket,
    leader: &LeaderConfig,
) -> anyhow::Result<()> {
    if !bucket.conditional_update {
        anyhow::bail!(
            "--election=bucket: this {} bucket has no atomic compare-and-swap (If-Match), which the election on the bucket needs; use S3, GCS or AZURE, or --election=etcd",
            bucket.kind.as_str()
        );
    }
    let scratch = format!(
        "compactd/election/selftest-{}-{}.json",
        leader.node, leader.nonce
    );
    crate::election::selftest::check_conditional_writes(&bucket.store, &scratch, 8)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "--election=bucket: the store failed the conditional-write self-test: {e}"
            )
        })?;
    tracing::info!(object = %scratch, "the store's conditional writes passed the self-test (one winner of 8 concurrent creates; a stale If-Match refused)");
    Ok(())
}

/// A seed for the node's RNG (block ids); recorded traces replay it.
fn seed_from_entropy() -> u64 {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    u64::from_le_bytes(bytes) ^ std::process::id() as u64
}

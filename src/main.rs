//! The `compactd` command line: argument parsing and printing only; the work lives in the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use compactd::tools;
use compactd::tsdb::chunks::DEFAULT_SEGMENT_SIZE;
use compactd::tsdb::compact::{CompactOptions, DedupFunc};

mod cli;

use cli::{bytes, duration_ms};

/// A highly available compactor for Prometheus/Thanos block buckets.
#[derive(Parser)]
#[command(name = "compactd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level: error, warn, info, debug (before or after the subcommand, as in Thanos).
    #[arg(long = "log.level", default_value = "info", global = true)]
    log_level: String,
    /// Log format: logfmt or json (Thanos' formats).
    #[arg(long = "log.format", default_value = "logfmt", global = true, value_parser = compactd::logging::LogFormat::parse)]
    log_format: compactd::logging::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Compact a bucket, as `thanos compact` does (one pass, or forever with --wait); also
    /// called `compact`, Thanos' name.
    #[command(visible_alias = "compact")]
    Run(Box<RunArgs>),
    /// Offline tools that work on local block directories.
    #[command(subcommand)]
    Tools(ToolsCommand),
}

/// Flags of `compactd run`; names and defaults follow `thanos compact`.
#[derive(Args)]
struct RunArgs {
    /// Path to the bucket configuration YAML (Thanos objstore format).
    #[arg(long = "objstore.config-file")]
    objstore_config_file: Option<PathBuf>,
    /// Bucket configuration YAML inline (alternative to --objstore.config-file).
    #[arg(long = "objstore.config")]
    objstore_config: Option<String>,
    /// Local cache for blocks being compacted with --compact.download-blocks; safe to delete
    /// when compactd is stopped. Not used (it may be absent or read-only) otherwise.
    #[arg(long = "data-dir", default_value = "./data")]
    data_dir: PathBuf,
    /// Download each job's input blocks into --data-dir, compact there and upload the result
    /// (Thanos' way), instead of reading the inputs from the bucket and writing the output to
    /// it as it is produced.
    #[arg(long = "compact.download-blocks", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    download_blocks: bool,
    /// Listen address for /metrics, /-/healthy, /-/ready and /api/v1/leader.
    #[arg(long = "http-address", default_value = compactd::http::DEFAULT_HTTP_ADDRESS)]
    http_address: String,
    /// Keep running, compacting every --wait-interval; without it, one pass then exit.
    #[arg(short = 'w', long = "wait", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    wait: bool,
    /// Time between two iterations with --wait.
    #[arg(long = "wait-interval", default_value = "5m", value_parser = duration_ms)]
    wait_interval: u64,
    /// With --wait, how often the thanos_compact_todo_* backlog gauges are recomputed (after a bucket sync); 0s disables them.
    #[arg(long = "compact.progress-interval", default_value = "5m", value_parser = duration_ms)]
    progress_interval: u64,
    /// With --wait, how often blocks marked for deletion past --delete-delay and aborted partial uploads are deleted while compaction runs (after a bucket sync); 0s: only once per iteration.
    #[arg(long = "compact.cleanup-interval", default_value = "5m", value_parser = duration_ms)]
    cleanup_interval: u64,
    /// Blocks uploaded less than this long ago are left alone (except compactor outputs).
    #[arg(long = "consistency-delay", default_value = "30m", value_parser = duration_ms)]
    consistency_delay: u64,
    /// Time between a block's deletion mark and its deletion.
    #[arg(long = "delete-delay", default_value = "48h", value_parser = duration_ms)]
    delete_delay: u64,
    /// Only blocks ending after this time (RFC3339 or duration relative to now, e.g. -2w).
    #[arg(long = "min-time", default_value = "0000-01-01T00:00:00Z")]
    min_time: String,
    /// Only blocks starting before this time (RFC3339 or duration relative to now).
    #[arg(long = "max-time", default_value = "9999-12-31T23:59:59Z")]
    max_time: String,
    /// How long to keep raw samples; 0d keeps forever.
    #[arg(long = "retention.resolution-raw", default_value = "0d", value_parser = duration_ms)]
    retention_raw: u64,
    /// How long to keep 5m-downsampled samples; 0d keeps forever.
    #[arg(long = "retention.resolution-5m", default_value = "0d", value_parser = duration_ms)]
    retention_5m: u64,
    /// How long to keep 1h-downsampled samples; 0d keeps forever.
    #[arg(long = "retention.resolution-1h", default_value = "0d", value_parser = duration_ms)]
    retention_1h: u64,
    /// Groups compacted in parallel.
    #[arg(long = "compact.concurrency", default_value_t = 1)]
    concurrency: usize,
    /// Merge overlapping blocks instead of halting on them.
    #[arg(long = "compact.enable-vertical-compaction", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    vertical: bool,
    /// Label removed before grouping, so replicas' blocks merge (repeatable, or comma-separated as in Thanos); enables vertical compaction.
    #[arg(long = "deduplication.replica-label", value_delimiter = ',')]
    replica_labels: Vec<String>,
    #[command(flatten)]
    selector: cli::bucket::SelectorArgs,
    /// How overlapping samples merge: "" keeps one sample per timestamp; "penalty" is Thanos' replica deduplication (needs a replica label).
    #[arg(long = "deduplication.func", default_value = "", value_parser = DedupFunc::parse)]
    dedup_func: DedupFunc,
    /// Highest compaction level (0..4 = 1h, 2h, 8h, 2d, 14d).
    #[arg(long = "debug.max-compaction-level", default_value_t = 4, hide = true)]
    max_compaction_level: usize,
    /// Plans whose index would pass 85% of this get their largest block no-compact-marked.
    #[arg(long = "compact.block-max-index-size", default_value = "64GB", value_parser = bytes, hide = true)]
    block_max_index_size: u64,
    /// Do not downsample.
    #[arg(long = "downsampling.disable", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    downsampling_disable: bool,
    /// Blocks downsampled in parallel.
    #[arg(long = "downsample.concurrency", default_value_t = 1)]
    downsample_concurrency: usize,
    /// Hard timeout of each bucket request that commits (meta.json, markers, deletes, the fence).
    #[arg(long = "objstore.op-timeout", default_value = "5s", value_parser = duration_ms)]
    op_timeout: u64,
    /// Who elects one leader among the replicas: `etcd` (--etcd.url), `bucket` (the bucket itself, with conditional writes; S3, GCS, AZURE) or `none` (a single instance) [default: etcd with --etcd.url, else none].
    #[arg(long = "election", value_parser = ["etcd", "bucket", "none"])]
    election: Option<String>,
    /// etcd endpoints (comma-separated or repeated): elect one leader among the replicas. Without it, a single instance.
    #[arg(long = "etcd.url", value_delimiter = ',')]
    etcd_urls: Vec<String>,
    /// Key prefix in etcd [default: /compactd/<bucket name>].
    #[arg(long = "etcd.prefix")]
    etcd_prefix: Option<String>,
    /// TTL of the leader's etcd lease: a dead leader is replaced after about this long.
    #[arg(long = "etcd.lease-ttl", default_value = "15s", value_parser = duration_ms)]
    etcd_lease_ttl: u64,
    /// etcd user name.
    #[arg(long = "etcd.username", env = "COMPACTD_ETCD_USERNAME")]
    etcd_username: Option<String>,
    /// etcd password.
    #[arg(
        long = "etcd.password",
        env = "COMPACTD_ETCD_PASSWORD",
        hide_env_values = true
    )]
    etcd_password: Option<String>,
    /// CA certificate (PEM) to verify etcd's TLS certificate.
    #[arg(long = "etcd.ca-file")]
    etcd_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd TLS.
    #[arg(long = "etcd.cert-file")]
    etcd_cert_file: Option<PathBuf>,
    /// Client key (PEM) for etcd TLS.
    #[arg(long = "etcd.key-file")]
    etcd_key_file: Option<PathBuf>,
    /// Wait between fencing the bucket and a new leader's first commit (at least twice --objstore.op-timeout).
    #[arg(long = "leader.takeover-delay", default_value = "10s", value_parser = duration_ms)]
    takeover_delay: u64,
    /// This replica's name in etcd, the fence and block stamps [default: the host name].
    #[arg(long = "node.name")]
    node_name: Option<String>,
    /// What one elected writer owns: `stream` (every replica compacts the streams assigned to it; with --etcd.url and --wait, else the one instance owns the bucket) or `bucket` (one leader writes everything).
    #[arg(long = "ownership", default_value = "stream", value_parser = ["stream", "bucket"])]
    ownership: String,
    /// How long an assignment that moves streams between live replicas (one joined) must hold before it is adopted.
    #[arg(long = "streams.rebalance-delay", default_value = "30s", value_parser = duration_ms)]
    rebalance_delay: u64,
    /// Partial uploads (no meta.json) whose newest object is older than this are deleted.
    #[arg(long = "debug.partial-upload-threshold", default_value = "48h", value_parser = duration_ms, hide = true)]
    partial_upload_threshold: u64,
    /// Record every step of the core to this file (JSON Lines), for `compactd-sim replay`.
    #[arg(long = "trace.record")]
    trace_record: Option<PathBuf>,
    /// Thanos' other flags.
    #[command(flatten)]
    thanos: cli::thanos::ThanosCompat,
}

#[derive(Subcommand)]
enum ToolsCommand {
    /// Write realistic sample blocks (counters with resets, gauges, several metrics).
    Generate(GenerateArgs),
    /// Compact block directories into one new block.
    Compact(CompactArgs),
    /// Downsample a block directory to 5m (from raw) or 1h (from 5m), as Thanos does.
    Downsample(DownsampleArgs),
    /// Print a block's meta and contents and verify every checksum; non-zero exit on damage.
    Inspect(InspectArgs),
    /// Look at a bucket (any Thanos objstore config).
    #[command(subcommand)]
    Bucket(cli::bucket::BucketCommand),
}

#[derive(Args)]
struct GenerateArgs {
    /// Directory to write the blocks into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Number of series.
    #[arg(long)]
    series: usize,
    /// Time span to cover, in hours.
    #[arg(long)]
    hours: f64,
    /// Block length; blocks are aligned to multiples of it.
    #[arg(long, default_value = "2h", value_parser = duration_ms)]
    block_duration: u64,
    /// First scrape time, Unix milliseconds.
    #[arg(long, default_value_t = 1_735_689_600_000)]
    start_ms: i64,
    /// Time between two samples of a series.
    #[arg(long, default_value = "15s", value_parser = duration_ms)]
    scrape_interval: u64,
    /// External labels `k=v,k2=v2`; adds the Thanos section to each block.
    #[arg(long, default_value = "")]
    external_labels: String,
    /// Seed of every random choice (same seed, same blocks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write native histogram series per instance (integer counter histograms and float
    /// gauge histograms); the float series stay the same.
    #[arg(long)]
    histograms: bool,
}

#[derive(Args)]
struct CompactArgs {
    /// Directory to write the new block into.
    #[arg(long)]
    out: PathBuf,
    /// Maximum size of a chunk segment file, in bytes.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SIZE, hide = true)]
    segment_size: u64,
    /// How overlapping samples merge: "" (one sample per timestamp) or "penalty" (Thanos' replica deduplication).
    #[arg(long = "deduplication.func", default_value = "", value_parser = DedupFunc::parse)]
    dedup_func: DedupFunc,
    /// The block directories to compact.
    #[arg(required = true)]
    blocks: Vec<PathBuf>,
}

#[derive(Args)]
struct DownsampleArgs {
    /// Target resolution, 5m or 1h; it must be coarser than the block's (Thanos: raw to 5m, 5m to 1h).
    #[arg(long, value_parser = tools::downsample::parse_resolution)]
    resolution: i64,
    /// Directory to write the new block into.
    #[arg(long)]
    out: PathBuf,
    /// The block directory to downsample.
    block: PathBuf,
}

#[derive(Args)]
struct InspectArgs {
    /// The block directory.
    block: PathBuf,
}

fn main() -> ExitCode {
    let command = Cli::command();
    let bools = cli::thanos::bool_flags(&command);
    let matches = command
        .clone()
        .get_matches_from(cli::thanos::kingpin_args(std::env::args_os(), &bools));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let logging = (cli.log_level, cli.log_format);
    let result = match cli.command {
        Command::Run(a) => {
            let flags = match (
                command.find_subcommand("run"),
                matches.subcommand_matches("run"),
            ) {
                (Some(cmd), Some(m)) => cli::flags_map(cmd, m),
                _ => Default::default(),
            };
            run(*a, flags, logging)
        }
        Command::Tools(ToolsCommand::Generate(a)) => generate(a),
        Command::Tools(ToolsCommand::Compact(a)) => compact(a),
        Command::Tools(ToolsCommand::Downsample(a)) => downsample(a),
        Command::Tools(ToolsCommand::Inspect(a)) => inspect(a),
        Command::Tools(ToolsCommand::Bucket(c)) => cli::bucket::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    a: RunArgs,
    flags: std::collections::BTreeMap<String, String>,
    (log_level, log_format): (String, compactd::logging::LogFormat),
) -> anyhow::Result<ExitCode> {
    compactd::logging::init(&log_level, log_format).map_err(anyhow::Error::msg)?;
    for warning in a.thanos.warnings() {
        tracing::warn!("{warning}");
    }
    let now_ms = compactd::tools::now_unix_ms();
    let time = |flag: &str, v: &str| {
        compactd::flags::parse_time_or_duration(v, now_ms)
            .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let cfg = compactd::run::RunConfig {
        objstore_config_file: a.objstore_config_file,
        objstore_config: a.objstore_config,
        data_dir: a.data_dir,
        http_address: a.http_address,
        wait: a.wait,
        wait_interval_ms: a.wait_interval,
        progress_interval_ms: a.progress_interval,
        cleanup_interval_ms: a.cleanup_interval,
        consistency_delay_ms: a.consistency_delay,
        delete_delay_ms: a.delete_delay,
        min_time_ms: time("min-time", &a.min_time)?,
        max_time_ms: time("max-time", &a.max_time)?,
        retention_ms: [a.retention_raw, a.retention_5m, a.retention_1h],
        concurrency: a.concurrency,
        vertical: a.vertical,
        replica_labels: a.replica_labels,
        selector_relabel_config_file: a.selector.file,
        selector_relabel_config: a.selector.inline,
        dedup: a.dedup_func,
        max_compaction_level: a.max_compaction_level,
        block_max_index_size: a.block_max_index_size,
        downsampling_disabled: a.downsampling_disable,
        downsample_concurrency: a.downsample_concurrency,
        download_blocks: a.download_blocks,
        op_timeout_ms: a.op_timeout,
        ha: compactd::run::HaSettings {
            election: a
                .election
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            etcd_urls: a.etcd_urls,
            etcd_prefix: a.etcd_prefix,
            lease_ttl_ms: a.etcd_lease_ttl,
            username: a.etcd_username,
            password: a.etcd_password,
            ca_file: a.etcd_ca_file,
            cert_file: a.etcd_cert_file,
            key_file: a.etcd_key_file,
            takeover_delay_ms: a.takeover_delay,
            node_name: a.node_name,
            per_stream: a.ownership == "stream",
            rebalance_delay_ms: a.rebalance_delay,
        },
        compact_threads: std::thread::available_parallelism().map_or(1, usize::from),
        partial_upload_threshold_ms: a.partial_upload_threshold,
        trace_record: a.trace_record,
        transfers: compactd::driver::store::Transfers {
            meta_fetch: a.thanos.block_meta_fetch_concurrency,
            blocks_fetch: a.thanos.blocks_fetch_concurrency,
            block_files: a.thanos.block_files_concurrency,
        },
        http_grace_period_ms: a.thanos.http_grace_period,
        http_config: a
            .thanos
            .http_config
            .filter(|f| !f.is_empty())
            .map(PathBuf::from),
        hash_func: a.thanos.hash_func,
        halt_on_error: a.thanos.halt_on_error,
        skip_out_of_order_chunks: a.thanos.skip_out_of_order,
        accept_malformed_index: a.thanos.accept_malformed_index,
        disable_admin_operations: a.thanos.disable_admin_operations,
        web: compactd::run::WebFlags {
            disable: a.thanos.web_disable,
            route_prefix: a.thanos.web_route_prefix,
            external_prefix: a.thanos.web_external_prefix,
            prefix_header: a.thanos.web_prefix_header,
            disable_cors: a.thanos.web_disable_cors,
            label: a.thanos.bucket_web_label,
            global_sync_interval_ms: a.thanos.block_viewer_sync_interval,
            global_sync_timeout_ms: a.thanos.block_viewer_sync_timeout,
            node_url_template: a.thanos.web_node_url_template,
            flags,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(compactd::run::run(cfg))?;
    // A compaction still running on a blocking thread must not hold up the exit.
    runtime.shutdown_background();
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn generate(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let opts = tools::generate::GenerateOptions {
        out: a.out,
        series: a.series,
        hours: a.hours,
        block_duration_ms: i64::try_from(a.block_duration)?,
        start_ms: a.start_ms,
        scrape_interval_ms: i64::try_from(a.scrape_interval)?,
        external_labels: tools::generate::parse_external_labels(&a.external_labels)
            .map_err(anyhow::Error::msg)?,
        seed: a.seed,
    };
    let extras = tools::generate::GenerateExtras {
        histograms: a.histograms,
    };
    let blocks = tools::generate::generate_with(&opts, &extras)?;
    for b in &blocks {
        let s = &b.meta.stats;
        println!(
            "{}  [{}, {})  {} series  {} chunks  {} samples",
            b.meta.ulid,
            b.meta.min_time,
            b.meta.max_time,
            s.num_series,
            s.num_chunks,
            s.num_samples
        );
    }
    let total: u64 = blocks.iter().map(|b| b.meta.stats.num_samples).sum();
    println!(
        "wrote {} blocks ({total} samples) to {}",
        blocks.len(),
        opts.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn compact(a: CompactArgs) -> anyhow::Result<ExitCode> {
    let opts = CompactOptions {
        segment_size: a.segment_size,
        dedup: a.dedup_func,
        ..CompactOptions::default()
    };
    let report = tools::compact::run(&a.blocks, &a.out, &opts)?;
    print!("{}", tools::compact::render(&report, a.blocks.len()));
    Ok(ExitCode::SUCCESS)
}

fn downsample(a: DownsampleArgs) -> anyhow::Result<ExitCode> {
    let report = tools::downsample::run(&a.block, &a.out, a.resolution)?;
    print!("{}", tools::downsample::render(&report));
    Ok(ExitCode::SUCCESS)
}

fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let ins = tools::inspect::inspect(&a.block)?;
    print!("{}", ins.summary);
    if ins.problems.is_empty() {
        println!("OK: every checksum verified, every chunk decoded");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &ins.problems {
        println!("PROBLEM: {p}");
    }
    println!("CORRUPT: {} problems found", ins.problems.len());
    Ok(ExitCode::FAILURE)
}

//! `compactd tools bucket replicate`: Thanos' flags, the run loop and what it prints. The work
//! is `compactd::tools::replicate`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{open_bucket, BucketArgs};
use crate::cli::duration_ms;
use compactd::driver::store::StoreExecutor;
use compactd::tools::fenced::ToolFenceOptions;
use compactd::tools::replicate::{matchers, Replicator, Selection};
use compactd::tsdb::block_id::BlockId;

/// Time between runs without `--single-run` (Thanos repeats every minute).
const RUN_INTERVAL: Duration = Duration::from_secs(60);

/// `tools bucket replicate`.
#[derive(Args)]
pub struct ReplicateArgs {
    /// The source bucket.
    #[command(flatten)]
    bucket: BucketArgs,
    /// Path to the target bucket's configuration YAML (Thanos objstore format).
    #[arg(long = "objstore-to.config-file")]
    to_config_file: Option<PathBuf>,
    /// The target bucket's configuration YAML inline.
    #[arg(long = "objstore-to.config")]
    to_config: Option<String>,
    /// Only blocks with these resolutions are replicated (repeated flag).
    #[arg(long = "resolution", default_values = ["0s", "5m", "1h"], value_parser = duration_ms)]
    resolutions: Vec<u64>,
    /// Only blocks with at least this compaction level are replicated.
    #[arg(long = "compaction-min", default_value_t = 1)]
    compaction_min: u32,
    /// Only blocks up to this compaction level are replicated.
    #[arg(long = "compaction-max", default_value_t = 4)]
    compaction_max: u32,
    /// Only blocks with these compaction levels (repeated; overrides --compaction-min/-max).
    #[arg(long = "compaction")]
    compactions: Vec<u32>,
    /// Blocks whose external labels match these matchers (`{a="b",c=~"d.*"}`; =, !=, =~, !~).
    #[arg(long = "matcher", default_value = "")]
    matcher: String,
    /// Run replication only one time, then exit (else every minute until stopped).
    #[arg(long = "single-run", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    single_run: bool,
    /// Only blocks ending after this time (RFC3339 or duration relative to now, e.g. -1d).
    #[arg(long = "min-time", default_value = "0000-01-01T00:00:00Z")]
    min_time: String,
    /// Only blocks starting before this time (RFC3339 or duration relative to now).
    #[arg(long = "max-time", default_value = "9999-12-31T23:59:59Z")]
    max_time: String,
    /// Block to replicate (repeated); other selectors are ignored and the command runs once.
    #[arg(long = "id")]
    ids: Vec<String>,
    /// Do not replicate blocks that have a deletion mark.
    #[arg(long = "ignore-marked-for-deletion", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    ignore_marked_for_deletion: bool,
    /// Thanos' HTTP listener: compactd's replicate serves no HTTP (accepted, warns).
    #[arg(long = "http-address")]
    http_address: Option<String>,
    /// Thanos' HTTP grace period: no HTTP server here (accepted, warns).
    #[arg(long = "http-grace-period")]
    http_grace_period: Option<String>,
    /// Thanos' HTTP web config: no HTTP server here (accepted, warns).
    #[arg(long = "http.config")]
    http_config: Option<String>,
}

impl ReplicateArgs {
    /// The block selection the flags describe.
    fn selection(&self) -> anyhow::Result<Selection> {
        let matchers = matchers::parse_matchers(&self.matcher)
            .map_err(|e| anyhow::anyhow!("--matcher: parse block label matchers: {e}"))?;
        let levels = if self.compactions.is_empty() {
            if self.compaction_min > self.compaction_max {
                anyhow::bail!("--compaction-min must be less than or equal to --compaction-max");
            }
            (self.compaction_min..=self.compaction_max).collect()
        } else {
            self.compactions.clone()
        };
        let ids = self
            .ids
            .iter()
            .map(|s| {
                s.parse::<BlockId>()
                    .map_err(|e| anyhow::anyhow!("--id {s:?}: invalid ULID: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let now_ms = compactd::tools::now_unix_ms();
        let time = |flag: &str, v: &str| {
            compactd::flags::parse_time_or_duration(v, now_ms)
                .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
        };
        Ok(Selection {
            resolutions: self.resolutions.iter().map(|r| *r as i64).collect(),
            levels,
            matchers,
            ids,
            min_time_ms: time("min-time", &self.min_time)?,
            max_time_ms: time("max-time", &self.max_time)?,
            ignore_marked_for_deletion: self.ignore_marked_for_deletion,
        })
    }

    fn warn_http_flags(&self) {
        let given = [
            ("--http-address", self.http_address.is_some()),
            ("--http-grace-period", self.http_grace_period.is_some()),
            ("--http.config", self.http_config.is_some()),
        ];
        for (flag, _) in given.iter().filter(|(_, g)| *g) {
            eprintln!("warning: {flag}: compactd's replicate serves no HTTP; ignored");
        }
    }
}

/// Runs `tools bucket replicate`.
pub fn run(a: ReplicateArgs) -> anyhow::Result<ExitCode> {
    a.warn_http_flags();
    let selection = a.selection()?;
    let (source, runtime) = open_bucket(&a.bucket)?;
    let to_cfg = compactd::objstore::load(a.to_config_file.as_deref(), a.to_config.as_deref())
        .map_err(|e| anyhow::anyhow!("--objstore-to.config: {e}"))?;
    let target = compactd::objstore::open(&to_cfg)?;
    let source = StoreExecutor::new(source.store);
    let target =
        StoreExecutor::new(target.store).with_conditional_update(target.conditional_update);
    let replicator = Replicator {
        source: &source,
        target: &target,
        selection: &selection,
        fence: ToolFenceOptions::for_tool("replicate"),
    };
    if a.single_run || !selection.ids.is_empty() {
        let report = runtime.block_on(replicator.run_once())?;
        print!("{}", report.render());
        return Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    runtime.block_on(repeat(&replicator))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs every [`RUN_INTERVAL`] until SIGINT or SIGTERM; a failed run is printed and repeated.
async fn repeat(replicator: &Replicator<'_>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        // A signal stops a run too: its copies are invisible without their meta.json, and the
        // fence it holds lapses after one lease TTL.
        tokio::select! {
            r = replicator.run_once() => match r {
                Ok(report) => print!("{}", report.render()),
                Err(e) => eprintln!("replication run failed: {e:#}"),
            },
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
        tokio::select! {
            _ = tokio::time::sleep(RUN_INTERVAL) => {}
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

//! The flags of `thanos compact` (Thanos v0.42) that compactd takes for compatibility, so
//! that a deployment's argument list works unchanged; and kingpin's syntax for booleans
//! (`--flag`, `--flag=false`, `--no-flag`), which clap lacks and [`kingpin_args`] adds.
//!
//! Each flag either does what it does in Thanos (wired in `main.rs`), or, where compactd has
//! nothing to do with it yet, is accepted with one warning line at start-up that says so
//! ([`ThanosCompat::warnings`]). `docs/operations.md` lists every flag and its status.

use std::ffi::OsString;

use clap::Args;

/// Thanos' flags without a compactd counterpart of their own.
#[derive(Args, Debug)]
pub struct ThanosCompat {
    /// Time to wait after a shutdown signal for in-flight HTTP requests to finish.
    #[arg(long = "http-grace-period", default_value = "2m", value_parser = super::duration_ms)]
    pub http_grace_period: u64,
    /// Metas and markers fetched from the bucket at once during a sync.
    #[arg(long = "block-meta-fetch-concurrency", default_value_t = 32)]
    pub block_meta_fetch_concurrency: usize,
    /// Input blocks of one compaction downloaded at once.
    #[arg(long = "compact.blocks-fetch-concurrency", default_value_t = 1)]
    pub blocks_fetch_concurrency: usize,
    /// Files of one block downloaded or uploaded at once.
    #[arg(long = "block-files-concurrency", default_value_t = 1)]
    pub block_files_concurrency: usize,
    /// How blocks are discovered: concurrent or recursive. compactd always lists the bucket
    /// recursively in one listing; both give the same blocks.
    #[arg(long = "block-discovery-strategy", default_value = "concurrent", value_parser = ["concurrent", "recursive"])]
    pub block_discovery_strategy: String,
    /// Accepted for Thanos compatibility; compactd's Go memory limit has no meaning (warns).
    #[arg(long = "enable-auto-gomemlimit", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub enable_auto_gomemlimit: bool,
    /// Accepted for Thanos compatibility (warns when set).
    #[arg(long = "auto-gomemlimit.ratio")]
    pub auto_gomemlimit_ratio: Option<f64>,
    /// Thanos' tracing configuration (file): not supported yet, warns.
    #[arg(long = "tracing.config-file")]
    pub tracing_config_file: Option<String>,
    /// Thanos' tracing configuration (inline): not supported yet, warns.
    #[arg(long = "tracing.config")]
    pub tracing_config: Option<String>,
    /// Prefix of the block viewer's page and API routes (default: the path of --web.external-prefix).
    #[arg(long = "web.route-prefix")]
    pub web_route_prefix: Option<String>,
    /// The URL (or path) the block viewer is reached at behind a proxy; its links use its path.
    #[arg(long = "web.external-prefix")]
    pub web_external_prefix: Option<String>,
    /// Request header whose value prefixes the block viewer's links (ignored with --web.external-prefix).
    #[arg(long = "web.prefix-header")]
    pub web_prefix_header: Option<String>,
    /// Serve no block viewer (page and API); /metrics, the probes and the admin API stay.
    #[arg(long = "web.disable", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub web_disable: bool,
    /// Leave out the CORS headers (Access-Control-Allow-Origin: *) of the viewer's API.
    #[arg(long = "web.disable-cors", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub web_disable_cors: bool,
    /// compactd: another replica's block viewer URL with {node} for its --node.name (e.g. http://{node}.compactd:10902); a follower's page links to the leader's.
    #[arg(long = "web.node-url-template")]
    pub web_node_url_template: Option<String>,
    /// External label the block viewer groups its timeline rows by.
    #[arg(long = "bucket-web-label")]
    pub bucket_web_label: Option<String>,
    /// Refuse operator requests on the HTTP port: the block viewer's mark buttons and `POST /api/v1/admin/commit` (marks, marker removals, deletions).
    #[arg(long = "disable-admin-operations", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub disable_admin_operations: bool,
    /// How old the block viewer's global view may get on a follower, which syncs the bucket for its page (a writing replica's page shows its own syncs).
    #[arg(long = "block-viewer.global.sync-block-interval", value_parser = super::duration_ms)]
    pub block_viewer_sync_interval: Option<u64>,
    /// Bound of one such sync.
    #[arg(long = "block-viewer.global.sync-block-timeout", value_parser = super::duration_ms)]
    pub block_viewer_sync_timeout: Option<u64>,
    /// Hash of each file of a new block in its meta.json: "" (none) or SHA256, as Thanos.
    #[arg(long = "hash-func", default_value = "", value_parser = compactd::driver::jobs::HashFunc::parse)]
    pub hash_func: compactd::driver::jobs::HashFunc,
    /// The Prometheus web configuration file of the HTTP port: TLS, basic auth, headers.
    #[arg(long = "http.config")]
    pub http_config: Option<String>,
    /// No-compact-mark blocks whose index lists chunks out of time order instead of halting.
    #[arg(long = "compact.skip-block-with-out-of-order-chunks", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub skip_out_of_order: bool,
    /// With --wait, stay up halted on an error that needs an operator (true) or exit (false).
    #[arg(long = "debug.halt-on-error", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", action = clap::ArgAction::Set)]
    pub halt_on_error: bool,
    /// Compact and downsample blocks with unsorted label names (Prometheus 2.8.0) instead of
    /// halting.
    #[arg(long = "debug.accept-malformed-index", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub accept_malformed_index: bool,
}

impl ThanosCompat {
    /// One line per flag that was given but does nothing in compactd yet.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let no_go = "has no meaning for compactd (not a Go process); ignored";
        if self.enable_auto_gomemlimit {
            w.push(format!("--enable-auto-gomemlimit {no_go}"));
        }
        if self.auto_gomemlimit_ratio.is_some() {
            w.push(format!("--auto-gomemlimit.ratio {no_go}"));
        }
        if self.tracing_config_file.is_some() || self.tracing_config.is_some() {
            w.push("--tracing.config: compactd exports no traces yet; ignored".into());
        }
        w
    }
}

/// The arguments with kingpin's `--no-<flag>` turned into `--<flag>=false` for every boolean
/// flag of `bool_flags` (long names without dashes); everything else unchanged.
pub fn kingpin_args(
    args: impl IntoIterator<Item = OsString>,
    bool_flags: &[String],
) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            let Some(name) = arg.to_str().and_then(|a| a.strip_prefix("--no-")) else {
                return arg;
            };
            if bool_flags.iter().any(|f| f == name) {
                OsString::from(format!("--{name}=false"))
            } else {
                arg
            }
        })
        .collect()
}

/// The long names of the boolean flags of `cmd` and its subcommands that take a value
/// (`--flag=true|false`, kingpin style); `--flag` alone means true.
pub fn bool_flags(cmd: &clap::Command) -> Vec<String> {
    let mut names: Vec<String> = cmd
        .get_arguments()
        .filter(|a| {
            matches!(a.get_action(), clap::ArgAction::Set)
                && a.get_value_parser().type_id() == clap::builder::ValueParser::bool().type_id()
        })
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    for sub in cmd.get_subcommands() {
        names.extend(bool_flags(sub));
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        thanos: ThanosCompat,
    }

    #[test]
    fn out_of_order_chunks_and_malformed_index_flags_are_taken_without_a_warning() {
        use clap::Parser as _;
        let flags = Flags::parse_from([
            "compactd",
            "--compact.skip-block-with-out-of-order-chunks",
            "--debug.accept-malformed-index",
        ]);
        assert!(flags.thanos.skip_out_of_order);
        assert!(flags.thanos.accept_malformed_index);
        assert_eq!(flags.thanos.warnings(), Vec::<String>::new());
        let defaults = Flags::parse_from(["compactd"]);
        assert!(!defaults.thanos.skip_out_of_order);
        assert!(!defaults.thanos.accept_malformed_index);
    }

    #[test]
    fn no_prefix_becomes_false_only_for_boolean_flags() {
        let bools = vec!["wait".to_string(), "debug.halt-on-error".to_string()];
        let args = [
            "compactd",
            "--no-wait",
            "--no-debug.halt-on-error",
            "--no-such",
        ]
        .map(OsString::from);
        let out = kingpin_args(args, &bools);
        assert_eq!(
            out,
            [
                "compactd",
                "--wait=false",
                "--debug.halt-on-error=false",
                "--no-such"
            ]
            .map(OsString::from)
        );
    }
}

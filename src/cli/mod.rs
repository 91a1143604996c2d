//! Command-line pieces of the `compactd` binary that are not the subcommands' own flags:
//! Thanos' compatibility flags and kingpin's flag syntax ([`thanos`]).

pub mod bucket;
pub mod thanos;

/// A duration flag value (`30s`, `5m`, `2h`, `1d`, ...) in milliseconds.
pub fn duration_ms(s: &str) -> Result<u64, String> {
    compactd::duration::parse_duration_ms(s)
}

/// A byte-size flag value (`64GB`, `512MiB`, ...).
pub fn bytes(s: &str) -> Result<u64, String> {
    compactd::flags::parse_bytes(s)
}

/// Flags whose values are secrets: `/api/v1/status/flags` shows them redacted.
const SECRET_FLAGS: [&str; 4] = [
    "objstore.config",
    "etcd.password",
    "objstore-to.config",
    "tracing.config",
];

/// Every long flag of `cmd` with its value in `matches` (given or default; repeated values
/// joined by commas), secrets redacted: what `/api/v1/status/flags` shows, as Thanos does.
pub fn flags_map(
    cmd: &clap::Command,
    matches: &clap::ArgMatches,
) -> std::collections::BTreeMap<String, String> {
    let mut flags = std::collections::BTreeMap::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let Ok(Some(raw)) = matches.try_get_raw(arg.get_id().as_str()) else {
            continue;
        };
        let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
        let value = if SECRET_FLAGS.contains(&long) && !values.is_empty() {
            "<secret>".to_string()
        } else {
            values.join(",")
        };
        flags.insert(long.to_string(), value);
    }
    flags
}

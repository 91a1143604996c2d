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

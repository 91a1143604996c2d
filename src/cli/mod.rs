//! Command-line pieces of the `compactd` binary that are not the subcommands' own flags:
//! Thanos' compatibility flags and kingpin's flag syntax ([`thanos`]).

pub mod thanos;

/// A duration flag value (`30s`, `5m`, `2h`, `1d`, ...) in milliseconds.
pub fn duration_ms(s: &str) -> Result<u64, String> {
    compactd::duration::parse_duration_ms(s)
}

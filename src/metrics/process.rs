//! Process metrics (`process_*`), read from `/proc` at every scrape, as the Prometheus client
//! libraries export them.
//!
//! Thanos registers Go's process collector (`collectors.NewProcessCollector` in
//! `cmd/thanos/main.go`), and the standard resource panels (the Thanos mixin's, node and
//! Kubernetes dashboards) query these names. [`ProcessCollector`] exports the same families
//! with the same names, types, units and help texts as `client_golang`'s Linux collector:
//!
//! | family | type | source |
//! |---|---|---|
//! | `process_cpu_seconds_total` | counter | `utime + stime` of `/proc/self/stat`, in clock ticks |
//! | `process_resident_memory_bytes` | gauge | `VmRSS` of `/proc/self/status` (kB) |
//! | `process_virtual_memory_bytes` | gauge | `vsize` of `/proc/self/stat` (bytes) |
//! | `process_virtual_memory_max_bytes` | gauge | soft `Max address space` of `/proc/self/limits` |
//! | `process_open_fds` | gauge | entries of `/proc/self/fd` |
//! | `process_max_fds` | gauge | soft `Max open files` of `/proc/self/limits` |
//! | `process_start_time_seconds` | gauge | `btime` of `/proc/stat` + `starttime` of `/proc/self/stat` |
//!
//! The values are read when the registry is encoded, not sampled in the background, so a
//! scrape sees the process as it is. A source that cannot be read or parsed (not Linux, a
//! sandbox without `/proc`) leaves its families out of the scrape instead of failing it.
//! The parsers are pure functions of the file contents, so they are tested on fixed text.

use std::fmt;
use std::path::Path;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`). It is part of the
/// kernel ABI and 100 on every architecture Linux runs compactd on; the standard library does
/// not expose `sysconf(_SC_CLK_TCK)`, and Go's procfs uses the same constant.
const USER_HZ: f64 = 100.0;

/// What `/proc/<pid>/limits` prints for a limit without a bound; Go's procfs reads it as the
/// largest `uint64`, and so do we.
const LIMIT_UNLIMITED: &str = "unlimited";

/// The fields of `/proc/<pid>/stat` the collector exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// User-mode CPU time of all threads, in clock ticks (field 14, `utime`).
    pub utime_ticks: u64,
    /// Kernel-mode CPU time of all threads, in clock ticks (field 15, `stime`).
    pub stime_ticks: u64,
    /// Start of the process after boot, in clock ticks (field 22, `starttime`).
    pub start_ticks: u64,
    /// Virtual memory size in bytes (field 23, `vsize`).
    pub virtual_memory_bytes: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (_, after_command) = text.rsplit_once(')')?;
    // Field 3 (`state`) is the first after the command name.
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    Some(ProcStat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
        virtual_memory_bytes: field(23)?,
    })
}

/// The resident set size of `/proc/<pid>/status` (`VmRSS:   1234 kB`), in bytes.
pub fn parse_status_rss_bytes(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kilobytes = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kilobytes.checked_mul(1024)
}

/// The boot time of `/proc/stat` (`btime 1700000000`), in Unix seconds.
pub fn parse_boot_time_seconds(text: &str) -> Option<u64> {
    let value = text.lines().find_map(|line| line.strip_prefix("btime "))?;
    value.trim().parse().ok()
}

/// The soft limit of the row `name` of `/proc/<pid>/limits` (`Max open files  1024  4096
/// files`); `unlimited` is `u64::MAX`.
pub fn parse_soft_limit(text: &str, name: &str) -> Option<u64> {
    let row = text.lines().find_map(|line| line.strip_prefix(name))?;
    let soft = row.split_whitespace().next()?;
    if soft == LIMIT_UNLIMITED {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// One reading of the process' resources; a field is `None` when its source could not be read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: Option<f64>,
    /// `process_resident_memory_bytes`.
    pub resident_memory_bytes: Option<u64>,
    /// `process_virtual_memory_bytes`.
    pub virtual_memory_bytes: Option<u64>,
    /// `process_virtual_memory_max_bytes`.
    pub virtual_memory_max_bytes: Option<u64>,
    /// `process_open_fds`.
    pub open_fds: Option<u64>,
    /// `process_max_fds`.
    pub max_fds: Option<u64>,
    /// `process_start_time_seconds`.
    pub start_time_seconds: Option<f64>,
}

impl ProcessSample {
    /// Reads this process' resources from `/proc`.
    pub fn read_self() -> ProcessSample {
        ProcessSample::read(Path::new("/proc"), Path::new("/proc/self"))
    }

    /// Reads the resources of the process whose `/proc/<pid>` directory is `process`, with
    /// `proc` the procfs mount (for `/proc/stat`).
    pub fn read(proc: &Path, process: &Path) -> ProcessSample {
        let read = |path: &Path| std::fs::read_to_string(path).ok();
        let stat = read(&process.join("stat")).as_deref().and_then(parse_stat);
        let limits = read(&process.join("limits"));
        let boot_time_seconds = read(&proc.join("stat"))
            .as_deref()
            .and_then(parse_boot_time_seconds);
        // Precision loss above 2^53 ticks or seconds is irrelevant here.
        let ticks_to_seconds = |ticks: u64| ticks as f64 / USER_HZ;
        ProcessSample {
            cpu_seconds: stat.map(|s| ticks_to_seconds(s.utime_ticks + s.stime_ticks)),
            resident_memory_bytes: read(&process.join("status"))
                .as_deref()
                .and_then(parse_status_rss_bytes),
            virtual_memory_bytes: stat.map(|s| s.virtual_memory_bytes),
            virtual_memory_max_bytes: limits
                .as_deref()
                .and_then(|l| parse_soft_limit(l, "Max address space")),
            open_fds: std::fs::read_dir(process.join("fd"))
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: limits
                .as_deref()
                .and_then(|l| parse_soft_limit(l, "Max open files")),
            start_time_seconds: stat
                .zip(boot_time_seconds)
                .map(|(s, boot)| boot as f64 + ticks_to_seconds(s.start_ticks)),
        }
    }
}

/// Exports the `process_*` families, read from `/proc/self` at every scrape. Register it with
/// [`prometheus_client::registry::Registry::register_collector`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessCollector;

/// Writes one family without labels. `help` is written as given (the registry's `.` suffix
/// applies to registered metrics only), so it ends in `.` like Go's.
fn encode_one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), fmt::Error> {
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let sample = ProcessSample::read_self();
        let encoder = &mut encoder;
        if let Some(seconds) = sample.cpu_seconds {
            // Registered without `_total`: the encoder appends it to counters.
            let help = "Total user and system CPU time spent in seconds.";
            encode_one(
                encoder,
                "process_cpu_seconds",
                help,
                &ConstCounter::new(seconds),
            )?;
        }
        let gauges = [
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sample.virtual_memory_bytes,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                sample.virtual_memory_max_bytes,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_memory_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                encode_one(encoder, name, help, &ConstGauge::new(value))?;
            }
        }
        if let Some(seconds) = sample.start_time_seconds {
            let help = "Start time of the process since unix epoch in seconds.";
            encode_one(
                encoder,
                "process_start_time_seconds",
                help,
                &ConstGauge::new(seconds),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `/proc/<pid>/stat` line whose command name holds a space and a `)`.
    const STAT: &str = "6457 (my (cmd) x) S 6455 6455 3500 0 -1 4194304 100 0 0 0 \
        250 75 0 0 20 0 9 0 258634 3133440 359 18446744073709551615 94360318836736\n";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = parse_stat(STAT).expect("parses");
        assert_eq!(stat.utime_ticks, 250);
        assert_eq!(stat.stime_ticks, 75);
        assert_eq!(stat.start_ticks, 258634);
        assert_eq!(stat.virtual_memory_bytes, 3133440);
        assert_eq!(parse_stat("6457 (cat) R 1 2"), None, "truncated");
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn status_rss_is_in_kilobytes() {
        let status = "Name:\tcat\nVmSize:\t    3892 kB\nVmRSS:\t    1944 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss_bytes(status), Some(1944 * 1024));
        assert_eq!(parse_status_rss_bytes("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn boot_time_and_limits_parse() {
        let stat = "cpu  1 2 3\nintr 5\nbtime 1796580817\nprocesses 9\n";
        assert_eq!(parse_boot_time_seconds(stat), Some(1796580817));
        let limits =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max open files            20000                40000                files     \n\
            Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(parse_soft_limit(limits, "Max open files"), Some(20000));
        assert_eq!(
            parse_soft_limit(limits, "Max address space"),
            Some(u64::MAX)
        );
        assert_eq!(parse_soft_limit(limits, "Max processes"), None);
    }

    #[test]
    fn a_missing_proc_leaves_every_field_out() {
        let nowhere = Path::new("/nonexistent-proc");
        assert_eq!(
            ProcessSample::read(nowhere, nowhere),
            ProcessSample::default()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_plausibly() {
        let sample = ProcessSample::read_self();
        let rss = sample.resident_memory_bytes.expect("VmRSS");
        assert!(rss > 0);
        assert!(sample.virtual_memory_bytes.expect("vsize") >= rss);
        assert!(
            sample.open_fds.expect("fd dir") > 0,
            "at least the listing's own"
        );
        assert!(sample.max_fds.expect("limits") >= sample.open_fds.expect("fd dir"));
        assert!(sample.cpu_seconds.expect("stat") >= 0.0);
        assert!(sample.start_time_seconds.expect("btime") > 1.0e9);
    }
}

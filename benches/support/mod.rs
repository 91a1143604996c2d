//! What the benchmarks share: environment knobs, and running a child process while taking its
//! wall time and peak RSS.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Wall time and peak resident set size of one child process.
pub struct Measure {
    /// Wall time from spawn to exit.
    pub seconds: f64,
    /// `ru_maxrss` of the child, in KiB.
    pub peak_rss_kb: i64,
    /// Bytes the child wrote to disk-backed files (`ru_oublock` × 512: the bytes it dirtied
    /// in the page cache of a block-device file system; tmpfs writes count nothing).
    #[allow(dead_code)] // Each bench compiles this module; only the streaming bench reads it.
    pub disk_written_bytes: i64,
    /// User plus system CPU time of the child, in seconds.
    #[allow(dead_code)] // Each bench compiles this module; only the streaming bench reads it.
    pub cpu_seconds: f64,
}

/// The environment variable `key` parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median (upper median for an even count); `v` must not be empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `cmd` to completion after a `sync(2)` (so that no run pays for an earlier one's
/// writeback) and returns its measure and standard output; panics unless it exits 0.
#[allow(clippy::zombie_processes)] // The child is reaped by wait4, which also gives its rusage.
pub fn run_measured(cmd: &mut Command) -> (Measure, String) {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)
        .expect("read the child's stdout");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    let measure = Measure {
        seconds,
        peak_rss_kb: usage.ru_maxrss,
        disk_written_bytes: usage.ru_oublock * 512,
        cpu_seconds: [usage.ru_utime, usage.ru_stime]
            .iter()
            .map(|t| t.tv_sec as f64 + t.tv_usec as f64 / 1e6)
            .sum(),
    };
    (measure, stdout)
}

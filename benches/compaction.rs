//! `cargo bench --bench compaction`: compactd against the Prometheus 2.42 Go compactor
//! (`gocompact`, built by shared/bench/gocompact/build.sh) on the same inputs, in one run.
//!
//! Cases: 12 x 2h blocks of 10k series (non-overlapping: chunks are copied) and a vertical
//! case (a second set of the same series shifted by 1h+7s, so every block overlaps another and
//! every chunk is decoded, merged and re-encoded). Each tool runs as a child process; wall
//! time and peak RSS (`wait4`'s `ru_maxrss`) are taken per run, after a warm-up run, with a
//! `sync` before each run so that no run pays for the previous one's writeback. Prints the
//! medians and the ratios against the targets (2x faster non-overlapping, 3x vertical, at
//! most half the peak RSS).
//!
//! A last case compares downsampling with compaction on one raw 48h block (the span Thanos
//! downsamples): `compactd tools compact` (a copy of the block) and `compactd tools downsample
//! --resolution 5m`, each as a child process; it prints raw samples per second for both and
//! the ratio downsample/compaction.
//!
//! Environment: `COMPACTD_GOCOMPACT` (default /tmp/gocompact-build/gocompact),
//! `BENCH_SERIES` (default 10000), `BENCH_RUNS` (default 5).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod support;

use support::{env_or, median, run_measured, Measure};

const START_MS: i64 = 1_735_689_600_000;
/// 2024-12-31T00:00Z, a multiple of 48h.
const DOWNSAMPLE_START_MS: i64 = 1_735_603_200_000;

fn generate(bin: &str, out: &Path, series: usize, hours: u32, start_ms: i64) {
    let st = Command::new(bin)
        .args([
            "tools",
            "generate",
            "--series",
            &series.to_string(),
            "--hours",
            &hours.to_string(),
        ])
        .args(["--start-ms", &start_ms.to_string(), "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .expect("generate");
    assert!(st.success(), "generate failed");
}

/// One raw block of 48h: the start is a multiple of 48h, so the block is not cut.
fn generate_48h(bin: &str, out: &Path, series: usize) {
    let st = Command::new(bin)
        .args(["tools", "generate", "--series", &series.to_string()])
        .args(["--hours", "48", "--block-duration", "48h"])
        .args(["--start-ms", &DOWNSAMPLE_START_MS.to_string(), "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .expect("generate");
    assert!(st.success(), "generate failed");
}

fn blocks(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read inputs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    v.sort();
    v
}

struct Case {
    name: &'static str,
    inputs: Vec<PathBuf>,
    speed_target: f64,
}

fn bench_case(case: &Case, bin: &str, go: &Path, scratch: &Path, runs: usize) -> (f64, f64) {
    let out = scratch.join("out");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..=runs {
        for tool in ["go", "compactd"] {
            let _ = std::fs::remove_dir_all(&out);
            let mut cmd = if tool == "go" {
                let mut c = Command::new(go);
                c.args(["compact", "-out"]).arg(&out).args(&case.inputs);
                c
            } else {
                let mut c = Command::new(bin);
                c.args(["tools", "compact", "--out"])
                    .arg(&out)
                    .args(&case.inputs);
                c
            };
            let (m, _) = run_measured(&mut cmd);
            if run > 0 {
                if tool == "go" {
                    theirs.push(m)
                } else {
                    ours.push(m)
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    let (t_ours, t_go) = (
        median(ours.iter().map(|m| m.seconds).collect()),
        median(theirs.iter().map(|m| m.seconds).collect()),
    );
    let rss = |v: &[Measure]| v.iter().map(|m| m.peak_rss_kb).max().unwrap_or(0) as f64 / 1024.0;
    let (r_ours, r_go) = (rss(&ours), rss(&theirs));
    println!(
        "{:<16} {:>10} {:>12.3} {:>14.1}",
        case.name, "gocompact", t_go, r_go
    );
    println!(
        "{:<16} {:>10} {:>12.3} {:>14.1}",
        case.name, "compactd", t_ours, r_ours
    );
    let speedup = t_go / t_ours;
    let rss_ratio = r_ours / r_go;
    println!(
        "{:<16} speed {:.2}x (target >= {:.0}x: {})   peak RSS {:.2}x of Go (target <= 0.5x: {})",
        "",
        speedup,
        case.speed_target,
        if speedup >= case.speed_target {
            "met"
        } else {
            "MISSED"
        },
        rss_ratio,
        if rss_ratio <= 0.5 { "met" } else { "MISSED" }
    );
    (speedup, rss_ratio)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks benches to list themselves.
    }
    let bin = env!("CARGO_BIN_EXE_compactd");
    let go = PathBuf::from(
        std::env::var("COMPACTD_GOCOMPACT")
            .unwrap_or_else(|_| "/tmp/gocompact-build/gocompact".into()),
    );
    if !go.is_file() {
        eprintln!("error: the Go baseline {} is missing; build it with `bash ../shared/bench/gocompact/build.sh` (as root) or set COMPACTD_GOCOMPACT", go.display());
        std::process::exit(1);
    }
    let series: usize = env_or("BENCH_SERIES", 10_000);
    let runs: usize = env_or("BENCH_RUNS", 5).max(1);
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{series}"));
    let (non, vert) = (data.join("non-overlapping"), data.join("vertical"));
    if !non.is_dir() {
        eprintln!("generating inputs in {}", data.display());
        generate(bin, &non, series, 24, START_MS);
        generate(bin, &vert, series, 6, START_MS);
        generate(bin, &vert, series, 6, START_MS + 3_607_000);
    }
    let cases = [
        Case {
            name: "non-overlapping",
            inputs: blocks(&non),
            speed_target: 2.0,
        },
        Case {
            name: "vertical",
            inputs: blocks(&vert),
            speed_target: 3.0,
        },
    ];
    println!(
        "compaction benchmark: {series} series, median of {runs} runs after a warm-up, {} cores",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "{:<16} {:>10} {:>12} {:>14}",
        "case", "tool", "wall (s)", "peak RSS (MiB)"
    );
    for case in &cases {
        println!("{:<16} {} input blocks", case.name, case.inputs.len());
        bench_case(case, bin, &go, &data, runs);
    }
    let raw48 = data.join("downsample-48h");
    if !raw48.is_dir() {
        eprintln!("generating the 48h block in {}", raw48.display());
        generate_48h(bin, &raw48, series);
    }
    bench_downsample(bin, &blocks(&raw48), &data, runs);
}

/// Times `tools compact` and `tools downsample --resolution 5m` on the same raw block and
/// prints raw samples per second for both.
fn bench_downsample(bin: &str, inputs: &[PathBuf], scratch: &Path, runs: usize) {
    let [block] = inputs else {
        panic!("expected one 48h block, found {}", inputs.len());
    };
    let samples = compactd::tsdb::meta::BlockMeta::read_dir(block)
        .expect("meta of the 48h block")
        .stats
        .num_samples as f64;
    let out = scratch.join("out");
    let (mut compaction, mut downsample) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        for tool in ["compact", "downsample"] {
            let _ = std::fs::remove_dir_all(&out);
            let mut c = Command::new(bin);
            c.args(["tools", tool]);
            if tool == "downsample" {
                c.args(["--resolution", "5m"]);
            }
            c.arg("--out").arg(&out).arg(block);
            let (m, _) = run_measured(&mut c);
            if run > 0 {
                if tool == "compact" {
                    compaction.push(m.seconds)
                } else {
                    downsample.push(m.seconds)
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    let (t_compact, t_down) = (median(compaction), median(downsample));
    println!(
        "downsampling: one raw 48h block, {samples} samples, median of {runs} runs after a warm-up"
    );
    println!(
        "{:<16} {:>10} {:>12} {:>14}",
        "case", "tool", "wall (s)", "M samples/s"
    );
    println!(
        "{:<16} {:>10} {:>12.3} {:>14.1}",
        "compact 48h",
        "compactd",
        t_compact,
        samples / t_compact / 1e6
    );
    println!(
        "{:<16} {:>10} {:>12.3} {:>14.1}",
        "downsample 5m",
        "compactd",
        t_down,
        samples / t_down / 1e6
    );
    println!(
        "{:<16} downsample/compaction throughput {:.2}x",
        "",
        t_compact / t_down
    );
}

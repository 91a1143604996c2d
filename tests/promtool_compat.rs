//! Block compatibility against the real Prometheus code: promtool 2.42 makes blocks from
//! OpenMetrics text and dumps blocks as text (our oracle), and the Prometheus 2.42 Go compactor
//! (`gocompact`, built by scripts/test.sh) is the byte-compatibility reference.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const START_S: i64 = 1_735_689_600;

/// A deterministic value for series `i` at time `t_ms`, so that two overlapping inputs agree
/// on the value wherever they share a timestamp. Covers integers, fractions, huge and tiny
/// magnitudes, negatives and ±Inf.
fn value(i: usize, t_ms: i64) -> f64 {
    let k = (t_ms / 1000) as f64;
    match i % 6 {
        0 => (k * 3.0).floor(),
        1 => (k * 0.37).sin() * 100.0,
        2 => 1e15 + k,
        3 => -(k * 1e-9),
        4 if t_ms % 600_000 < 1000 => f64::INFINITY,
        4 => 1.0 / (1.0 + k),
        _ => (k * 0.01).cos() * 1e-7,
    }
}

/// Writes an OpenMetrics file: `series` gauges sampled every `step_ms` in
/// `[start_ms, end_ms)`.
fn write_openmetrics(path: &Path, series: usize, start_ms: i64, end_ms: i64, step_ms: i64) {
    let mut s = String::new();
    for fam in 0..3 {
        let name = format!("compat_metric_{fam}");
        writeln!(s, "# HELP {name} compatibility test metric {fam}").unwrap();
        writeln!(s, "# TYPE {name} gauge").unwrap();
        for i in (fam..series).step_by(3) {
            let mut t = start_ms;
            while t < end_ms {
                let v = value(i, t);
                let v = if v.is_infinite() {
                    "+Inf".to_string()
                } else {
                    format!("{v:?}")
                };
                writeln!(
                    s,
                    "{name}{{instance=\"host-{i:03}\",job=\"compat\"}} {v} {}.{:03}",
                    t / 1000,
                    t % 1000
                )
                .unwrap();
                t += step_ms;
            }
        }
    }
    s.push_str("# EOF\n");
    std::fs::write(path, s).unwrap();
}

fn promtool_blocks(promtool: &Path, om: &Path, out: &Path) -> Vec<PathBuf> {
    let st = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(om)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "create-blocks-from: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    block_dirs(out)
}

fn compact_cli(out: &Path, inputs: &[PathBuf], extra: &[&str]) -> PathBuf {
    let mut args = vec!["tools", "compact", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let stdout = compactd_ok(&args);
    let id = stdout.lines().next().unwrap().trim();
    let dir = out.join(id);
    assert!(dir.join("meta.json").is_file(), "{stdout}");
    dir
}

#[test]
fn promtool_blocks_read_back_exactly() {
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("in.om");
    write_openmetrics(
        &om,
        30,
        START_S * 1000 + 250,
        START_S * 1000 + 5 * 3_600_000,
        15_000,
    );
    let blocks = promtool_blocks(&promtool, &om, &tmp.path().join("blocks"));
    assert_eq!(
        blocks.len(),
        3,
        "5h of data from 00:00:00.25 gives three 2h blocks"
    );
    let want = promtool_dump(&promtool, &blocks);
    assert_eq!(want.lines().count(), 30 * 1200);
    assert_eq!(our_dump(&blocks), want);
}

#[test]
fn compacted_blocks_match_inputs_in_promtool() {
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("in.om");
    write_openmetrics(
        &om,
        24,
        START_S * 1000,
        START_S * 1000 + 8 * 3_600_000,
        15_000,
    );
    let blocks = promtool_blocks(&promtool, &om, &tmp.path().join("blocks"));
    assert_eq!(blocks.len(), 4);
    let out = compact_cli(&tmp.path().join("out"), &blocks, &[]);
    let analyze = promtool_analyze(&promtool, &out);
    assert!(analyze.contains("Series: 24"), "{analyze}");
    assert_eq!(
        promtool_dump(&promtool, std::slice::from_ref(&out)),
        promtool_dump(&promtool, &blocks)
    );
    compactd_ok(&["tools", "inspect", out.to_str().unwrap()]);
}

#[test]
fn overlapping_blocks_compact_to_the_deduplicated_union() {
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let t0 = START_S * 1000;
    // Set A every 15s over 6h; set B every 10s over hours 1..7: they overlap in time, share
    // every 30s timestamp (with equal values) and interleave elsewhere.
    write_openmetrics(&tmp.path().join("a.om"), 12, t0, t0 + 6 * 3_600_000, 15_000);
    write_openmetrics(
        &tmp.path().join("b.om"),
        18,
        t0 + 3_600_000,
        t0 + 7 * 3_600_000,
        10_000,
    );
    let mut blocks = promtool_blocks(&promtool, &tmp.path().join("a.om"), &tmp.path().join("a"));
    blocks.extend(promtool_blocks(
        &promtool,
        &tmp.path().join("b.om"),
        &tmp.path().join("b"),
    ));
    let want = promtool_dump(&promtool, &blocks);
    let out = compact_cli(&tmp.path().join("out"), &blocks, &[]);
    promtool_analyze(&promtool, &out);
    let got = promtool_dump(&promtool, std::slice::from_ref(&out));
    assert_eq!(got.lines().count(), want.lines().count());
    assert_eq!(got, want);
    compactd_ok(&["tools", "inspect", out.to_str().unwrap()]);
}

/// Compacts `inputs` with the Go compactor and with ours and compares every chunk file.
fn assert_same_chunks_as_go(gocompact: &Path, inputs: &[PathBuf], tmp: &Path, segment_size: u64) {
    let go_out = tmp.join(format!("go-{segment_size}"));
    let st = Command::new(gocompact)
        .args(["compact", "-out"])
        .arg(&go_out)
        .arg("-segment-size")
        .arg(segment_size.to_string())
        .args(inputs)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "gocompact: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let go_block = block_dirs(&go_out).pop().unwrap();
    let size = segment_size.to_string();
    let ours = compact_cli(
        &tmp.join(format!("ours-{segment_size}")),
        inputs,
        &["--segment-size", &size],
    );
    let files = |b: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(b.join("chunks"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let (go_files, our_files) = (files(&go_block), files(&ours));
    assert_eq!(go_files.len(), our_files.len(), "segment count");
    for (g, o) in go_files.iter().zip(&our_files) {
        assert_eq!(g.file_name(), o.file_name());
        assert!(
            std::fs::read(g).unwrap() == std::fs::read(o).unwrap(),
            "{} differs from {}",
            o.display(),
            g.display()
        );
    }
    eprintln!(
        "chunks/ byte-identical to Prometheus 2.42 ({} segments of at most {segment_size} bytes)",
        go_files.len()
    );
}

#[test]
fn non_overlapping_chunks_are_byte_identical_to_prometheus() {
    let Some(gocompact) = require_tool("gocompact", Some("COMPACTD_GOCOMPACT")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let gen = tmp.path().join("gen");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        gen.to_str().unwrap(),
        "--series",
        "300",
        "--hours",
        "8",
        "--seed",
        "7",
    ]);
    let inputs = block_dirs(&gen);
    assert_eq!(inputs.len(), 4);
    assert_same_chunks_as_go(&gocompact, &inputs, tmp.path(), 536_870_912);
    // Small segments exercise Prometheus' segment cut rule across many files.
    assert_same_chunks_as_go(&gocompact, &inputs, tmp.path(), 65_536);
}

#[test]
fn generated_blocks_are_reproducible_and_valid() {
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let gen = |name: &str| {
        let dir = tmp.path().join(name);
        compactd_ok(&[
            "tools",
            "generate",
            "--out",
            dir.to_str().unwrap(),
            "--series",
            "150",
            "--hours",
            "4",
            "--scrape-interval",
            "30s",
            "--external-labels",
            "cluster=eu-1,replica=a",
            "--seed",
            "3",
        ]);
        block_dirs(&dir)
    };
    let (a, b) = (gen("a"), gen("b"));
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name(), "same seed, same ULIDs");
        for f in ["index", "chunks/000001", "meta.json"] {
            assert!(
                std::fs::read(x.join(f)).unwrap() == std::fs::read(y.join(f)).unwrap(),
                "{f} differs"
            );
        }
        let meta = compactd::tsdb::meta::BlockMeta::read_dir(x).unwrap();
        let thanos = meta.thanos.expect("thanos section");
        assert_eq!(thanos.labels["cluster"], "eu-1");
        assert_eq!(thanos.source, "sidecar");
        promtool_analyze(&promtool, x);
    }
    let dump = promtool_dump(&promtool, &a);
    assert_eq!(dump, our_dump(&a));
    assert!(dump.contains("http_requests_total") && dump.contains("node_load1"));
}
#[test]
fn go_format_g_matches_go() {
    for (v, want) in [
        (1.0, "1"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (1.5e300, "1.5e+300"),
        (0.1, "0.1"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
    ] {
        assert_eq!(go_format_g(v), want, "{v}");
    }
}

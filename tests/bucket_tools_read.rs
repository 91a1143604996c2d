//! `compactd tools bucket ls` (Thanos' `-o`, `--exclude-delete`, `--min-time`/`--max-time`)
//! and `tools bucket inspect` (table, csv, tsv, `-l`, `--sort-by`) on a local-filesystem
//! bucket and on S3 (SeaweedFS): three generated blocks of two streams, one of them marked
//! for deletion.

mod common;

use std::path::Path;

use common::seaweed::Seaweed;
use common::*;
use compactd::tsdb::meta::BlockMeta;

/// 2025-01-01T00:00:00Z, where `tools generate` starts.
const T0_MS: i64 = 1_735_689_600_000;

/// The generated blocks: eu-1 from T0 (2h), eu-1 from T0+2h (2h, marked for deletion),
/// us-1 from T0 (8h).
struct Blocks {
    eu_early: String,
    eu_late: String,
    us: String,
}

/// Generates the blocks into `dir` and marks `eu_late` for deletion.
fn generate(dir: &Path) -> Blocks {
    generate_stream(dir, 2, 4, "cluster=eu-1", 1, &[]);
    generate_stream(
        dir,
        2,
        8,
        "cluster=us-1,env=prod",
        2,
        &["--block-duration", "8h"],
    );
    let metas: Vec<BlockMeta> = block_dirs(dir)
        .iter()
        .map(|d| BlockMeta::read_dir(d).unwrap())
        .collect();
    assert_eq!(metas.len(), 3);
    let find = |cluster: &str, min: i64| {
        metas
            .iter()
            .find(|m| m.min_time == min && m.thanos.as_ref().unwrap().labels["cluster"] == cluster)
            .unwrap_or_else(|| panic!("no {cluster} block from {min}"))
            .ulid
            .to_string()
    };
    let blocks = Blocks {
        eu_early: find("eu-1", T0_MS),
        eu_late: find("eu-1", T0_MS + 7_200_000),
        us: find("us-1", T0_MS),
    };
    let mark = serde_json::json!({"id": blocks.eu_late, "version": 1, "details": "test", "deletion_time": 1_735_700_000});
    std::fs::write(
        dir.join(&blocks.eu_late).join("deletion-mark.json"),
        serde_json::to_vec(&mark).unwrap(),
    )
    .unwrap();
    blocks
}

fn run_ok(config: &str, args: &[&str]) -> String {
    let mut all = vec!["tools", "bucket"];
    all.extend(args);
    all.extend(["--objstore.config", config]);
    compactd_ok(&all)
}

/// The ULIDs of `ls -o ''` with `extra` flags.
fn ulids(config: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["ls", "-o", ""];
    args.extend(extra);
    run_ok(config, &args).lines().map(str::to_string).collect()
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn check_ls_filters(config: &str, b: &Blocks) {
    let json = run_ok(config, &["ls", "-o", "json"]);
    let metas: Vec<BlockMeta> = serde_json::Deserializer::from_str(&json)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("ls -o json is not a stream of metas: {e}\n{json}"));
    let ids: Vec<String> = metas.iter().map(|m| m.ulid.to_string()).collect();
    assert_eq!(ids, sorted(&[&b.eu_early, &b.eu_late, &b.us]), "{json}");
    assert!(json.starts_with("{\n\t\"ulid\": \""), "{json}");

    assert_eq!(
        ulids(config, &["--exclude-delete"]),
        sorted(&[&b.eu_early, &b.us])
    );
    // Thanos' TimePartitionMetaFilter: maxTime >= min-time and minTime <= max-time.
    let late = ulids(config, &["--min-time", "2025-01-01T02:00:01Z"]);
    assert_eq!(late, sorted(&[&b.eu_late, &b.us]));
    let touching = ulids(config, &["--min-time=2025-01-01T02:00:00Z"]);
    assert_eq!(touching.len(), 3);
    let early = ulids(config, &["--max-time", "2025-01-01T01:59:59Z"]);
    assert_eq!(early, sorted(&[&b.eu_early, &b.us]));
    let window = ulids(
        config,
        &[
            "--min-time",
            "2025-01-01T04:00:01Z",
            "--max-time",
            "2025-01-01T05:00:00Z",
        ],
    );
    assert_eq!(window, [b.us.as_str()]);
    // Relative times: the blocks lie in the past.
    assert_eq!(ulids(config, &["--max-time", "-1h"]).len(), 3);
    assert!(ulids(config, &["--min-time", "-1h"]).is_empty());
}

fn check_ls_formats(config: &str, b: &Blocks) {
    let template = run_ok(
        config,
        &[
            "ls",
            "-o",
            "{{.ULID}} {{.Thanos.Labels.cluster}} {{.MinTime}} {{.Thanos.Downsample.Resolution}}",
        ],
    );
    let mut want: Vec<String> = [
        (&b.eu_early, "eu-1", T0_MS),
        (&b.eu_late, "eu-1", T0_MS + 7_200_000),
        (&b.us, "us-1", T0_MS),
    ]
    .iter()
    .map(|(id, c, min)| format!("{id} {c} {min} 0"))
    .collect();
    want.sort();
    assert_eq!(template.lines().collect::<Vec<_>>(), want);

    let wide = run_ok(config, &["ls", "--output", "wide", "--exclude-delete"]);
    assert!(
        wide.contains(&format!(
            "{} -- 2025-01-01T00:00:00Z - 2025-01-01T08:00:00Z Diff: 8h0m0s, Compaction: 1, \
         Downsample: 0, Source: sidecar\n",
            b.us
        )),
        "{wide}"
    );
    assert_eq!(wide.lines().count(), 2, "{wide}");

    // The default stays compactd's table, which shows the mark.
    let table = run_ok(config, &["ls"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&b.eu_late) && l.ends_with("deletion")),
        "{table}"
    );

    let out = compactd(&[
        "tools",
        "bucket",
        "ls",
        "-o",
        "{{.ULID}} {{.Thanos.Nope}}",
        "--objstore.config",
        config,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("invalid template \"{{.ULID}} {{.Thanos.Nope}}\"")
            && stderr.contains("field Nope in type metadata.Thanos"),
        "{stderr}"
    );
}

/// Thanos' inspect columns, comma-separated.
const HEADER: &str = "ULID,FROM,UNTIL,RANGE,UNTIL-DOWN,#SERIES,#SAMPLES,#CHUNKS,COMP-LEVEL,\
                      COMP-FAILED,LABELS,RESOLUTION,SOURCE";

fn check_inspect_csv(config: &str, b: &Blocks) {
    let csv = run_ok(config, &["inspect", "--output", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], HEADER);
    // Default order: FROM, then UNTIL.
    let order: Vec<&str> = lines[1..].iter().map(|l| &l[..26]).collect();
    assert_eq!(order, [&b.eu_early, &b.us, &b.eu_late]);
    assert!(
        lines[2].starts_with(&format!(
            "{},2025-01-01T00:00:00Z,2025-01-01T08:00:00Z,8h0m0s,32h0m0s,2,",
            b.us
        )),
        "{csv}"
    );
    assert!(
        lines[2].ends_with(",1,false,\"cluster=us-1,env=prod\",0s,sidecar"),
        "{csv}"
    );
}

fn check_inspect_selectors(config: &str, b: &Blocks) {
    let tsv = run_ok(
        config,
        &["inspect", "--output", "tsv", "-l", "cluster=\"us-1\""],
    );
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines[0], HEADER.replace(',', "\t"));
    assert_eq!(lines.len(), 2, "{tsv}");
    assert!(
        lines[1].starts_with(&format!("{}\t", b.us))
            && lines[1].contains("\tcluster=us-1,env=prod\t"),
        "{tsv}"
    );
    let eu = ["--selector", "cluster=~eu-.*", "-l", "env!=prod"];
    let eu = run_ok(config, &[&["inspect", "--output=tsv"][..], &eu].concat());
    assert_eq!(eu.lines().count(), 3, "{eu}");
    assert!(!eu.contains(&b.us), "{eu}");
    let bad = [
        "tools",
        "bucket",
        "inspect",
        "-l",
        "cluster",
        "--objstore.config",
        config,
    ];
    let out = compactd(&bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--selector \"cluster\""), "{stderr}");
}

fn check_inspect_order_and_table(config: &str, b: &Blocks) {
    let by_down = ["--sort-by", "UNTIL-DOWN", "--sort-by", "FROM"];
    let by_down = run_ok(
        config,
        &[&["inspect", "--output", "csv"][..], &by_down].concat(),
    );
    let order: Vec<&str> = by_down.lines().skip(1).map(|l| &l[..26]).collect();
    assert_eq!(order, [&b.us, &b.eu_early, &b.eu_late]);

    let table = run_ok(config, &["inspect"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    let head = "|            ULID            |         FROM         |        UNTIL         |";
    assert!(lines[0].starts_with(head), "{table}");
    assert!(
        lines[1].starts_with("|----------------------------|"),
        "{table}"
    );
    let first = format!(
        "| {} | 2025-01-01T00:00:00Z | 2025-01-01T02:00:00Z | 2h0m0s | 38h0m0s    |",
        b.eu_early
    );
    assert!(lines[2].starts_with(&first), "{table}");
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{table}");
}

/// Every check, on the bucket of `config`.
fn check_all(config: &str, b: &Blocks) {
    check_ls_filters(config, b);
    check_ls_formats(config, b);
    check_inspect_csv(config, b);
    check_inspect_selectors(config, b);
    check_inspect_order_and_table(config, b);
}

#[test]
fn ls_and_inspect_on_a_filesystem_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let blocks = generate(&bucket);
    let config = fs_config(&bucket);
    check_all(&config, &blocks);
}

#[test]
fn ls_and_inspect_on_s3() {
    let Some(server) = Seaweed::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let blocks = generate(tmp.path());
    let config = server.objstore_yaml();
    upload_dir(&config, tmp.path());
    check_all(&config, &blocks);
}

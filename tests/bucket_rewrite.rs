//! `compactd tools bucket rewrite` against a filesystem bucket and SeaweedFS S3, on generated
//! blocks, with promtool reading the results: deletions (a metric whole, another over an
//! interval) leave every other sample as it was; the default dry run writes nothing;
//! `--delete-blocks` marks the old block; the change log reads as Thanos writes it; a relabel
//! config renames a label; bad input (unknown or malformed id, malformed matcher or relabel
//! config, a rewrite that deletes everything) fails naming the problem and writes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The generated block starts here (`tools generate`'s default start).
const T0: i64 = 1_735_689_600_000;
/// The interval deleted from `node_load1`: inside the second 30-minute chunk of each series.
const CUT: (i64, i64) = (T0 + 40 * 60_000, T0 + 50 * 60_000);

/// Generates one 2h block (150 series: 2 instances) into a local dir and uploads it to the
/// bucket; returns its id and local directory.
fn seed(config: &str, dir: &Path, external_labels: &str) -> (String, PathBuf) {
    let local = dir.join("generated");
    let mut args = vec!["tools", "generate", "--out", local.to_str().unwrap()];
    args.extend(["--series", "150", "--hours", "2"]);
    if !external_labels.is_empty() {
        args.extend(["--external-labels", external_labels]);
    }
    compactd_ok(&args);
    let block = block_dirs(&local).pop().expect("one block");
    // A bucket block carries no tombstones file.
    let _ = std::fs::remove_file(block.join("tombstones"));
    upload_dir(config, &local);
    let id = block.file_name().unwrap().to_str().unwrap().to_string();
    (id, block)
}

/// Every object name in the bucket, sorted.
fn objects(config: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let bucket = open(config);
    let mut names: Vec<String> = runtime()
        .block_on(bucket.store.list(None).try_collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|o| o.location.to_string())
        .collect();
    names.sort();
    names
}

/// Runs the rewrite with `args` after the bucket flag.
fn rewrite(config: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["tools", "bucket", "rewrite", "--objstore.config", config];
    all.extend(args);
    compactd(&all)
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "rewrite failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The id of the block the rewrite printed it wrote.
fn new_id(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rewrote block"))
        .expect(stdout);
    line.split_whitespace()
        .nth(4)
        .unwrap()
        .trim_end_matches(';')
        .to_string()
}

/// The promtool dump of block `id` downloaded from the bucket.
fn bucket_dump(promtool: &Path, config: &str, id: &str, dir: &Path) -> String {
    let local = dir.join(format!("download-{id}"));
    download_bucket(config, &local);
    promtool_dump(promtool, &[local.join(id)])
}

/// A dump line's metric name and timestamp.
fn name_and_time(line: &str) -> (&str, i64) {
    let name = line.split('"').nth(1).unwrap();
    let t = line.rsplit(' ').next().unwrap().parse().unwrap();
    (name, t)
}

fn deletion_config() -> String {
    format!(
        "- matchers: '{{__name__=\"up\"}}'\n- matchers: 'node_load1{{job=~\".+\"}}'\n  \
         intervals: [{{mint: {}, maxt: {}}}]\n",
        CUT.0, CUT.1
    )
}

/// Deletes `up` whole and `node_load1` over [`CUT`] in bucket `config`.
fn deletes_series_and_ranges(config: &str) {
    let Some(promtool) = require_tool("promtool", Some("PROMTOOL")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (id, block) = seed(config, tmp.path(), "cluster=eu-1");
    let original = promtool_dump(&promtool, std::slice::from_ref(&block));
    let delete = deletion_config();
    let work = tmp.path().join("work");
    let before = objects(config);
    let common = ["--id", &id, "--rewrite.to-delete-config", &delete];
    let work_flag = ["--tmp.dir", work.to_str().unwrap()];

    // The default is a dry run: the change log is printed, nothing is written.
    let dry = ok(&rewrite(config, &[&common[..], &work_flag[..]].concat()));
    assert!(
        dry.contains(&format!("dry run: block {id} would be rewritten")),
        "{dry}"
    );
    assert_eq!(dry.matches("Deleted {__name__=\"up\"").count(), 2, "{dry}");
    assert_eq!(objects(config), before, "a dry run writes nothing");

    let mut args = vec!["--no-dry-run", "--delete-blocks"];
    args.extend(common);
    args.extend(work_flag);
    let out = ok(&rewrite(config, &args));
    let new = new_id(&out);
    assert!(
        out.contains(&format!("marked block {id} for deletion")),
        "{out}"
    );

    // Every sample but the deleted ones, unchanged.
    let want: Vec<&str> = original
        .lines()
        .filter(|l| {
            let (name, t) = name_and_time(l);
            name != "up" && !(name == "node_load1" && CUT.0 <= t && t <= CUT.1)
        })
        .collect();
    assert!(
        want.len() + 960 + 2 * 30 < original.lines().count(),
        "the test cuts samples"
    );
    let got = bucket_dump(&promtool, config, &new, tmp.path());
    assert_same_lines(got.lines().collect(), want);

    // The old block is marked; the new one is a rewrite of it.
    let mark: serde_json::Value =
        serde_json::from_str(&read_object(config, &format!("{id}/deletion-mark.json"))).unwrap();
    assert_eq!(mark["details"], "block rewritten");
    let meta: serde_json::Value =
        serde_json::from_str(&read_object(config, &format!("{new}/meta.json"))).unwrap();
    let old: serde_json::Value =
        serde_json::from_slice(&std::fs::read(block.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["minTime"], old["minTime"]);
    assert_eq!(meta["maxTime"], old["maxTime"]);
    assert_eq!(meta["compaction"]["level"], old["compaction"]["level"]);
    assert_eq!(meta["compaction"]["sources"], serde_json::json!([new]));
    assert_eq!(meta["thanos"]["labels"], old["thanos"]["labels"]);
    assert_eq!(meta["thanos"]["source"], "bucket.rewrite");
    assert_eq!(
        meta["thanos"]["rewrites"][0]["sources"],
        serde_json::json!([id])
    );
    assert_eq!(
        meta["thanos"]["rewrites"][0]["deletions_applied"][1]["intervals"],
        serde_json::json!([{"Mint": CUT.0, "Maxt": CUT.1}])
    );
    let after = objects(config);
    assert_eq!(
        after.len(),
        before.len() + 5,
        "new block (3), mark, fence: {after:?}"
    );

    // The change log: node_load1 cut (inside one chunk: the interval itself), then up whole
    // (first to last sample), in label order.
    let mut expected = Vec::new();
    for name in ["node_load1", "up"] {
        let mut series: Vec<(String, Vec<i64>)> = Vec::new();
        for l in original.lines().filter(|l| name_and_time(l).0 == name) {
            let labels = l[..l.find('}').unwrap() + 1].to_string();
            match series.last_mut() {
                Some((s, times)) if *s == labels => times.push(name_and_time(l).1),
                _ => series.push((labels, vec![name_and_time(l).1])),
            }
        }
        for (labels, times) in series {
            let range = match name {
                "up" => (times[0], *times.last().unwrap()),
                _ => CUT,
            };
            expected.push(format!("Deleted {labels} [{{{} {}}}]\n", range.0, range.1));
        }
    }
    let log = std::fs::read_to_string(work.join(&new).join("change.log")).unwrap();
    assert_eq!(log, expected.concat());
}

/// A dump line with its labels sorted by name (`{a="1", b="2"} value time`).
fn canonical(line: &str) -> String {
    let end = line.find('}').unwrap();
    let mut labels: Vec<&str> = line[1..end].split(", ").collect();
    labels.sort();
    format!("{{{}}}{}", labels.join(", "), &line[end + 1..])
}

/// Asserts equal line lists, naming the first difference (not printing whole dumps).
fn assert_same_lines(got: Vec<&str>, want: Vec<&str>) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "dumps differ at line {i} of {} (want {}): got {:?}, want {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

fn read_object(config: &str, name: &str) -> String {
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    runtime().block_on(async {
        let got = bucket
            .store
            .get(&object_store::path::Path::from(name))
            .await
            .unwrap();
        String::from_utf8(got.bytes().await.unwrap().to_vec()).unwrap()
    })
}

#[test]
fn rewrite_deletes_series_and_ranges_on_a_filesystem_bucket() {
    let dir = tempfile::tempdir().unwrap();
    deletes_series_and_ranges(&fs_config(dir.path()));
}

#[test]
fn rewrite_deletes_series_and_ranges_on_s3() {
    let Some(s3) = seaweed::Seaweed::start() else {
        return;
    };
    deletes_series_and_ranges(&s3.objstore_yaml());
}

#[test]
fn relabelling_renames_a_label_and_keeps_every_sample() {
    let Some(promtool) = require_tool("promtool", Some("PROMTOOL")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = fs_config(&tmp.path().join("bucket"));
    let (id, block) = seed(&config, tmp.path(), "cluster=eu-1");
    let original = promtool_dump(&promtool, &[block]);
    let relabel =
        "- source_labels: [job]\n  target_label: service\n- action: labeldrop\n  regex: job\n";
    let work = tmp.path().join("work");
    let out = ok(&rewrite(
        &config,
        &[
            "--id",
            &id,
            "--no-dry-run",
            "--hash-func=SHA256",
            "--rewrite.to-relabel-config",
            relabel,
            "--tmp.dir",
            work.to_str().unwrap(),
        ],
    ));
    let new = new_id(&out);
    // The original's samples with the label renamed (series now sort differently).
    let renamed = original.replace(", job=\"", ", service=\"");
    let mut want: Vec<String> = renamed.lines().map(canonical).collect();
    want.sort();
    let got = bucket_dump(&promtool, &config, &new, tmp.path());
    let mut got: Vec<String> = got.lines().map(canonical).collect();
    got.sort();
    assert_same_lines(
        got.iter().map(String::as_str).collect(),
        want.iter().map(String::as_str).collect(),
    );
    let log = std::fs::read_to_string(work.join(&new).join("change.log")).unwrap();
    assert_eq!(log.lines().count(), 150);
    let first = log.lines().next().unwrap();
    assert!(
        first.starts_with("Relabelled {__name__=\"go_goroutines\", instance=\"host-00000:9100\", job=\"api\"} {__name__=\"go_goroutines\", instance=\"host-00000:9100\", service=\"api\"}"),
        "{first}"
    );
    let meta = read_object(&config, &format!("{new}/meta.json"));
    assert!(meta.contains("\"hashFunc\": \"SHA256\""), "{meta}");
    assert!(meta.contains("\"relabels_applied\""), "{meta}");
}

#[test]
fn bad_input_fails_naming_the_problem_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = fs_config(&tmp.path().join("bucket"));
    let (id, _) = seed(&config, tmp.path(), "cluster=eu-1");
    let before = objects(&config);
    let work = tmp.path().join("work");
    let fails = |args: &[&str], needle: &str| {
        let mut all = vec!["--no-dry-run", "--tmp.dir", work.to_str().unwrap()];
        all.extend(args);
        let out = rewrite(&config, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(objects(&config), before, "{args:?} wrote to the bucket");
    };
    let up = "- matchers: '{__name__=\"up\"}'";
    let unknown = "01JGFSEP805HZ1DCPHDVAB6620";
    fails(
        &["--id", unknown, "--rewrite.to-delete-config", up],
        &format!("block {unknown}: no {unknown}/meta.json"),
    );
    fails(
        &[
            "--id",
            &id,
            "--id",
            unknown,
            "--rewrite.to-delete-config",
            up,
        ],
        unknown,
    );
    fails(
        &["--id", "nope", "--rewrite.to-delete-config", up],
        "--id: not a valid block ULID, got: nope",
    );
    fails(
        &[
            "--id",
            &id,
            "--rewrite.to-delete-config",
            "- matchers: '{__name__=\"up\"'",
        ],
        "--rewrite.to-delete-config: request 1: matchers:",
    );
    fails(
        &[
            "--id",
            &id,
            "--rewrite.to-relabel-config",
            "- action: nope\n",
        ],
        "--rewrite.to-relabel-config: rule 1: action",
    );
    fails(&["--id", &id], "rewrite configuration should be provided");
    fails(
        &[
            "--id",
            &id,
            "--rewrite.to-delete-config",
            "- matchers: '{__name__=~\".+\"}'",
        ],
        "the rewrite leaves no samples",
    );
    let prom = tmp.path().join("prom");
    let prom_config = fs_config(&prom);
    let (prom_id, _) = seed(&prom_config, &tmp.path().join("p"), "");
    let mut args = vec!["--id", prom_id.as_str(), "--rewrite.to-delete-config", up];
    args.extend(["--no-dry-run", "--tmp.dir", work.to_str().unwrap()]);
    let out = rewrite(&prom_config, &args);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prom-blocks"));
    args.push("--prom-blocks");
    ok(&rewrite(&prom_config, &args));
}

#[test]
fn rewrite_refuses_next_to_a_live_compactd_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = fs_config(&tmp.path().join("bucket"));
    let (id, _) = seed(&config, tmp.path(), "cluster=eu-1");
    put_live_fence(&config, "node-x");
    let before = objects(&config);
    let work = tmp.path().join("work");
    let up = "- matchers: '{__name__=\"up\"}'";
    let base = ["--id", &id, "--rewrite.to-delete-config", up];
    let base = [&base[..], &["--tmp.dir", work.to_str().unwrap()]].concat();
    let out = rewrite(&config, &[&base[..], &["--no-dry-run"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rewrote next to a live compactd");
    assert!(
        err.contains("refusing to write") && err.contains("\"node-x\""),
        "{err}"
    );
    assert_eq!(
        objects(&config),
        before,
        "a refused rewrite changed the bucket"
    );
    // A dry run only reads: it reports next to a live compactd.
    let dry = ok(&rewrite(&config, &base));
    assert!(dry.contains("dry run"), "{dry}");
}

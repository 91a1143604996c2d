//! `compactd tools bucket replicate` and `upload-blocks` against real buckets: two prefixes of
//! one SeaweedFS (S3) bucket, a filesystem bucket to S3, and filesystem buckets for the fence
//! and the error paths. Replicas must be byte-identical to the source (every object of a
//! block, meta.json included), a second run copies nothing, filters select what Thanos'
//! would, and a live compactd fence on the target makes a run refuse without writing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::replicas::verify_ok;
use common::seaweed::Seaweed;
use common::*;
use compactd::core::fence::FENCE_PATH;

/// The objects of the blocks `ids` only.
fn of_blocks(all: &BTreeMap<String, Vec<u8>>, ids: &[&str]) -> BTreeMap<String, Vec<u8>> {
    all.iter()
        .filter(|(k, _)| ids.iter().any(|id| k.starts_with(&format!("{id}/"))))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Asserts that `got` and `want` hold the same objects with the same bytes (naming the
/// objects that differ rather than printing their bytes).
fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let (g, w): (Vec<&String>, Vec<&String>) = (got.keys().collect(), want.keys().collect());
    assert_eq!(g, w, "{what}: object names");
    let differ: Vec<&String> = want.keys().filter(|k| got[*k] != want[*k]).collect();
    assert!(differ.is_empty(), "{what}: other bytes in {differ:?}");
}

/// The block ids (ULIDs) among object names.
fn block_ids(all: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut ids: Vec<String> = all
        .keys()
        .filter_map(|k| k.split_once('/').map(|(d, _)| d.to_string()))
        .filter(|d| d.len() == 26 && d != "compactd")
        .collect();
    ids.dedup();
    ids
}

/// Rewrites `<dir>/meta.json` through `edit`.
fn edit_meta(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut meta);
    std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

/// A source with four blocks and a partial one: `[a, b, c, d]` = eu-1 level 1 raw, eu-1
/// level 2 raw, eu-1 level 1 at 5m, us-1 level 1 raw.
fn source_blocks(dir: &Path) -> [String; 4] {
    generate_stream(dir, 3, 6, "cluster=eu-1", 1, &[]);
    generate_stream(dir, 3, 2, "cluster=us-1", 2, &[]);
    let eu: Vec<_> = block_dirs(dir)
        .into_iter()
        .filter(|d| {
            std::fs::read_to_string(d.join("meta.json"))
                .unwrap()
                .contains("eu-1")
        })
        .collect();
    let us: Vec<_> = block_dirs(dir)
        .into_iter()
        .filter(|d| !eu.contains(d))
        .collect();
    assert_eq!((eu.len(), us.len()), (3, 1));
    edit_meta(&eu[1], |m| m["compaction"]["level"] = 2.into());
    edit_meta(&eu[2], |m| {
        m["thanos"]["downsample"]["resolution"] = 300_000.into()
    });
    let partial = dir.join("01JGZZZZZZZZZZZZZZZZZZZZZZ");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(eu[0].join("index"), partial.join("index")).unwrap();
    let name = |d: &Path| d.file_name().unwrap().to_str().unwrap().to_string();
    [name(&eu[0]), name(&eu[1]), name(&eu[2]), name(&us[0])]
}

/// Runs `tools bucket replicate --single-run` from `from` to `to` with `extra` flags, asserting
/// success; returns stdout.
fn replicate(from: &str, to: &str, extra: &[&str]) -> String {
    let mut args = vec!["tools", "bucket", "replicate", "--single-run"];
    args.extend(["--objstore.config", from, "--objstore-to.config", to]);
    args.extend(extra);
    compactd_ok(&args)
}

#[test]
fn replicates_between_two_s3_prefixes_with_filters_then_copies_nothing() {
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("source");
    let [a, b, c, d] = source_blocks(&local);
    let (from, to) = (
        s3.objstore_yaml_with_prefix("src"),
        s3.objstore_yaml_with_prefix("dst"),
    );
    upload_dir(&from, &local);
    let source = bucket_objects(&from);

    let out = replicate(
        &from,
        &to,
        &[
            "--resolution=0s",
            "--compaction=1",
            "--matcher",
            r#"{cluster=~"eu-.*"}"#,
        ],
    );
    assert!(
        out.contains("1 blocks replicated, 0 already replicated"),
        "{out}"
    );
    assert!(
        out.contains("01JGZZZZZZZZZZZZZZZZZZZZZZ: no meta.json"),
        "{out}"
    );
    assert_eq!(block_ids(&bucket_objects(&to)), [a.as_str()]);
    assert_same(
        &of_blocks(&bucket_objects(&to), &[&a]),
        &of_blocks(&source, &[&a]),
        "block a",
    );

    // --id overrides matchers, resolution and level.
    let out = replicate(&from, &to, &["--id", &b, "--matcher", "cluster=nowhere"]);
    assert!(out.contains(&format!("replicated {b} (")), "{out}");
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(block_ids(&bucket_objects(&to)), want);

    let out = replicate(&from, &to, &[]);
    assert!(
        out.contains("2 blocks replicated, 2 already replicated"),
        "{out}"
    );
    let target = bucket_objects(&to);
    let all = [a.as_str(), b.as_str(), c.as_str(), d.as_str()];
    assert_eq!(
        of_blocks(&target, &all),
        of_blocks(&source, &all),
        "byte-identical"
    );
    assert!(!target
        .keys()
        .any(|k| k.starts_with("01JGZZZZZZZZZZZZZZZZZZZZZZ")));

    let out = replicate(&from, &to, &[]);
    assert!(
        out.contains("0 blocks replicated, 4 already replicated, 0 objects"),
        "{out}"
    );
    assert_eq!(
        bucket_objects(&to),
        target,
        "a second run writes nothing, not even the fence"
    );
    verify_ok(&to);
}

#[test]
fn replicates_a_filesystem_bucket_to_s3_leaving_marked_blocks_out() {
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let [a, b, c, d] = source_blocks(&bucket);
    std::fs::write(
        bucket.join(&d).join("deletion-mark.json"),
        format!(r#"{{"id":"{d}","version":1,"details":"","deletion_time":1}}"#),
    )
    .unwrap();
    let (from, to) = (fs_config(&bucket), s3.objstore_yaml());
    let out = replicate(
        &from,
        &to,
        &["--ignore-marked-for-deletion", "--compaction-max=2"],
    );
    assert!(out.contains("3 blocks replicated"), "{out}");
    let (source, target) = (bucket_objects(&from), bucket_objects(&to));
    let copied = [a.as_str(), b.as_str(), c.as_str()];
    assert_same(
        &of_blocks(&target, &copied),
        &of_blocks(&source, &copied),
        "copied",
    );
    assert!(
        of_blocks(&target, &[&d]).is_empty(),
        "the marked block stays out"
    );
    let meta = String::from_utf8(target[&format!("{a}/meta.json")].clone()).unwrap();
    assert!(
        !meta.contains("compactd"),
        "replicas carry no writer stamp: {meta}"
    );
}

#[test]
fn a_live_fence_on_the_target_refuses_the_replication_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    source_blocks(&src);
    let fence = put_live_fence(&fs_config(&dst), "compactd-0");
    let out = compactd(&[
        "tools",
        "bucket",
        "replicate",
        "--single-run",
        "--objstore.config",
        &fs_config(&src),
        "--objstore-to.config",
        &fs_config(&dst),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "replicated beside a live compactd");
    assert!(
        stderr.contains("refusing to write") && stderr.contains("compactd-0"),
        "{stderr}"
    );
    let written = bucket_objects(&fs_config(&dst));
    assert_eq!(written.keys().collect::<Vec<_>>(), [FENCE_PATH]);
    assert_eq!(written[FENCE_PATH], fence, "the fence is untouched");
}

#[test]
fn without_single_run_replication_repeats_until_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let ids = source_blocks(&src);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_compactd"))
        .args([
            "tools",
            "bucket",
            "replicate",
            "--http-address=0.0.0.0:10902",
        ])
        .args(["--objstore.config", &fs_config(&src)])
        .args(["--objstore-to.config", &fs_config(&dst)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let summary = lines
        .find(|l| l.as_ref().unwrap().starts_with("replicate: "))
        .expect("a run summary")
        .unwrap();
    assert!(summary.contains("4 blocks replicated"), "{summary}");
    assert_eq!(
        block_ids(&bucket_objects(&fs_config(&dst))).len(),
        ids.len()
    );
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("--http-address: compactd's replicate serves no HTTP"),
        "{stderr}"
    );
}

/// Runs `tools bucket upload-blocks` on `path` into `config` with `extra` flags.
fn upload_blocks(config: &str, path: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "tools",
        "bucket",
        "upload-blocks",
        "--objstore.config",
        config,
    ];
    args.extend(["--path", path.to_str().unwrap()]);
    args.extend(extra);
    compactd(&args)
}

fn stdout_ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn upload_blocks_adds_labels_skips_compacted_and_uploads_once() {
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    generate_stream(&data, 3, 6, "", 1, &[]);
    std::fs::create_dir_all(data.join("wal")).unwrap();
    let dirs = block_dirs(&data);
    assert_eq!(dirs.len(), 3);
    edit_meta(&dirs[2], |m| m["compaction"]["level"] = 2.into());
    let name = |d: &Path| d.file_name().unwrap().to_str().unwrap().to_string();
    let config = s3.objstore_yaml();
    let labels = ["--label", r#"cluster="eu-1""#, "--label", "replica=r1"];

    let out = stdout_ok(upload_blocks(&config, &data, &labels));
    assert!(out.contains("2 blocks uploaded, 1 skipped"), "{out}");
    assert!(
        out.contains(&format!("skipped {}: compaction level 2", name(&dirs[2]))),
        "{out}"
    );
    let bucket = bucket_objects(&config);
    for dir in &dirs[..2] {
        let id = name(dir);
        for f in ["index", "chunks/000001"] {
            assert_eq!(
                bucket[&format!("{id}/{f}")],
                std::fs::read(dir.join(f)).unwrap(),
                "{f}"
            );
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&bucket[&format!("{id}/meta.json")]).unwrap();
        let t = &meta["thanos"];
        assert_eq!(
            t["labels"],
            serde_json::json!({"cluster": "eu-1", "replica": "r1"})
        );
        assert_eq!(t["source"], "bucket.upload");
        assert_eq!(t["downsample"]["resolution"], 0);
        assert!(t["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rel_path"] == "index"));
        let holder = t["extensions"]["compactd"]["holder"].as_str().unwrap();
        assert!(holder.starts_with("tools/upload-blocks@"), "{holder}");
    }

    let out = stdout_ok(upload_blocks(&config, &data, &labels));
    assert!(out.contains("0 blocks uploaded, 3 skipped"), "{out}");
    assert_same(
        &bucket_objects(&config),
        &bucket,
        "a second run writes nothing",
    );

    let mut compacted = labels.to_vec();
    compacted.push("--shipper.upload-compacted");
    let out = stdout_ok(upload_blocks(&config, &data, &compacted));
    assert!(
        out.contains(&format!("uploaded {}", name(&dirs[2]))),
        "{out}"
    );
    verify_ok(&config);
}

#[test]
fn upload_blocks_names_a_corrupt_block_directory_and_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, bucket) = (tmp.path().join("data"), tmp.path().join("bucket"));
    std::fs::create_dir_all(&bucket).unwrap();
    generate_stream(&data, 2, 4, "", 1, &[]);
    let dirs = block_dirs(&data);
    std::fs::write(dirs[1].join("meta.json"), b"{not json").unwrap();
    let config = fs_config(&bucket);
    let out = upload_blocks(&config, &data, &["--label", "cluster=\"eu-1\""]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("block directory {}", dirs[1].display())),
        "{stderr}"
    );
    assert!(bucket_objects(&config).is_empty(), "nothing uploaded");

    let out = upload_blocks(&config, &data, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--label"),
        "{stderr}"
    );
}

//! `compactd tools bucket verify` on a filesystem bucket and on SeaweedFS (S3) holding three
//! streams: `eu-1` with a block and a copy of it under a new ULID (a duplicated compaction,
//! which is also an overlap), `us-1` with a block and a longer copy of it (an overlap only),
//! and `ap-1` with a block whose meta.json range was cut to its first hour (its later chunks
//! break `index_known_issues`). Covers `-i` selection, `--id`, the refusals of `--repair`
//! (no backup bucket, index issues), the repair of the duplicate (backed up, then marked with
//! `--delete-delay` or deleted without it; the block kept stays), and a live compactd fence
//! making `--repair` refuse without writing anything.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::seaweed::Seaweed;
use common::*;
use compactd::tsdb::block_id::BlockId;

/// The blocks of the fixture.
struct Fixture {
    /// eu-1's generated block (kept) and its copy (the duplicate).
    original: String,
    duplicate: String,
    /// us-1's generated block and its longer copy.
    overlapped: [String; 2],
    /// ap-1's block with the cut range.
    broken: String,
}

fn only_block(dir: &Path) -> String {
    let blocks = block_dirs(dir);
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    blocks[0].file_name().unwrap().to_str().unwrap().to_string()
}

/// Copies block `src` of `bucket` under a new id (later than `src`'s), editing its meta.json.
fn copy_block(
    bucket: &Path,
    src: &str,
    n: u128,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let src_id: BlockId = src.parse().unwrap();
    let id = BlockId::from_parts(src_id.timestamp_ms() + 1000, n).to_string();
    copy_dir(&bucket.join(src), &bucket.join(&id));
    edit_meta(&bucket.join(&id), |m| {
        m["ulid"] = serde_json::json!(id);
        edit(m);
    });
    id
}

fn edit_meta(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut meta);
    std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

/// Writes the three streams into `bucket` (each generated alone, to know its block).
fn fixture(bucket: &Path) -> Fixture {
    let stream = |labels: &str, seed: u64| {
        let dir = bucket.with_extension(labels.replace('=', "-"));
        generate_stream(&dir, 3, 2, labels, seed, &[]);
        let id = only_block(&dir);
        std::fs::create_dir_all(bucket).unwrap();
        copy_dir(&dir.join(&id), &bucket.join(&id));
        id
    };
    let original = stream("cluster=eu-1", 1);
    let duplicate = copy_block(bucket, &original, 1, |_| {});
    let first = stream("cluster=us-1", 2);
    let longer = copy_block(bucket, &first, 2, |m| {
        let max = m["maxTime"].as_i64().unwrap();
        m["maxTime"] = serde_json::json!(max + 3_600_000);
        m["compaction"]["sources"] = serde_json::json!([m["ulid"].clone()]);
    });
    let broken = stream("cluster=ap-1", 3);
    edit_meta(&bucket.join(&broken), |m| {
        let min = m["minTime"].as_i64().unwrap();
        m["maxTime"] = serde_json::json!(min + 3_600_000);
    });
    Fixture {
        original,
        duplicate,
        overlapped: [first, longer],
        broken,
    }
}

/// Runs verify with `args`; returns (success, stdout, stderr).
fn verify(config: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["tools", "bucket", "verify", "--objstore.config", config];
    all.extend(args);
    let out = compactd(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The `ISSUE:` lines of `text` for `issue`.
fn issues<'a>(text: &'a str, issue: &str) -> Vec<&'a str> {
    let prefix = format!("ISSUE: {issue}: ");
    text.lines().filter(|l| l.starts_with(&prefix)).collect()
}

fn of_block(all: &BTreeMap<String, Vec<u8>>, id: &str) -> BTreeMap<String, Vec<u8>> {
    all.iter()
        .filter(|(k, _)| k.starts_with(&format!("{id}/")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The default issues, then each `-i` alone, then `--id`.
fn check_selection(config: &str, f: &Fixture) {
    let (ok, out, err) = verify(config, &[]);
    assert!(!ok, "{out}{err}");
    let overlaps = issues(&out, "overlapped_blocks");
    assert_eq!(overlaps.len(), 2, "{out}");
    for id in [
        &f.original,
        &f.duplicate,
        &f.overlapped[0],
        &f.overlapped[1],
    ] {
        assert!(
            overlaps.iter().any(|l| l.contains(id.as_str())),
            "{id}: {out}"
        );
    }
    let index = issues(&out, "index_known_issues");
    assert!(!index.is_empty(), "{out}");
    for l in &index {
        assert!(l.contains(&format!("block {}: series {{", f.broken)), "{l}");
        assert!(l.contains("outside the block range"), "{l}");
    }
    assert!(issues(&out, "duplicated_compaction").is_empty(), "{out}");
    assert!(issues(&out, "bucket_consistency").is_empty(), "{out}");
    let summary = out.lines().last().unwrap();
    assert!(summary.ends_with("0 repaired"), "{summary}");

    let (ok, out, _) = verify(config, &["-i", "duplicated_compaction"]);
    assert!(!ok);
    let dups = issues(&out, "duplicated_compaction");
    assert_eq!(dups.len(), 1, "{out}");
    assert!(
        dups[0].contains(&format!("[{}]", f.duplicate))
            && dups[0].contains(&format!("as block {}, which is kept", f.original)),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ISSUE")).count(),
        1,
        "{out}"
    );

    let (ok, out, _) = verify(config, &["-i", "index_known_issues", "--id", &f.original]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("OK: 1 blocks verified for index_known_issues"),
        "{out}"
    );
    let (ok, out, _) = verify(
        config,
        &["-i", "overlapped_blocks", "--id", &f.overlapped[1]],
    );
    assert!(!ok);
    let overlaps = issues(&out, "overlapped_blocks");
    assert_eq!(overlaps.len(), 1, "{out}");
    assert!(overlaps[0].contains(&f.overlapped[0]), "{out}");
    let (ok, out, _) = verify(
        config,
        &[
            "--issues=bucket_consistency",
            "-i",
            "overlapped_blocks",
            "--id",
            &f.broken,
        ],
    );
    assert!(ok, "{out}");
}

/// Refusals of `--repair`: without a backup bucket, and of index issues.
fn check_repair_refusals(config: &str, backup: &str) {
    let (ok, _, err) = verify(config, &["--repair", "-i", "duplicated_compaction"]);
    assert!(!ok && err.contains("--objstore-backup.config"), "{err}");
    let (ok, _, err) = verify(config, &["-r", "--objstore-backup.config", backup]);
    assert!(
        !ok && err.contains("index_known_issues is not supported yet"),
        "{err}"
    );
}

/// `--repair -i duplicated_compaction` with `extra` flags; asserts success and returns stdout.
fn repair(config: &str, backup: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "-i",
        "duplicated_compaction",
        "--repair",
        "--objstore-backup.config",
        backup,
    ];
    args.extend(extra);
    let (ok, out, err) = verify(config, &args);
    assert!(ok, "{out}{err}");
    out
}

fn check_marking_repair(config: &str, backup: &str, f: &Fixture) {
    let before = bucket_objects(config);
    let out = repair(config, backup, &["--delete-delay=48h"]);
    assert!(
        out.contains("1 blocks backed up and marked for deletion"),
        "{out}"
    );
    let after = bucket_objects(config);
    let mark = format!("{}/deletion-mark.json", f.duplicate);
    assert!(after.contains_key(&mark), "{out}");
    assert!(!after.contains_key(&format!("{}/deletion-mark.json", f.original)));
    assert_eq!(
        of_block(&after, &f.original),
        of_block(&before, &f.original)
    );
    assert_eq!(
        bucket_objects(backup),
        of_block(&before, &f.duplicate),
        "the backup is the block"
    );
    let (ok, out, _) = verify(config, &["-i", "duplicated_compaction"]);
    assert!(ok, "a marked duplicate is no longer one: {out}");
}

#[test]
fn filesystem_bucket_selection_id_and_marking_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let f = fixture(&bucket);
    let (config, backup) = (fs_config(&bucket), fs_config(&tmp.path().join("backup")));
    check_selection(&config, &f);
    check_repair_refusals(&config, &backup);
    check_marking_repair(&config, &backup, &f);
    // The duplicate is in the backup already: a second backup of it is refused.
    std::fs::remove_file(bucket.join(&f.duplicate).join("deletion-mark.json")).unwrap();
    let (ok, _, err) = verify(
        &config,
        &[
            "-i",
            "duplicated_compaction",
            "-r",
            "--objstore-backup.config",
            &backup,
        ],
    );
    assert!(!ok && err.contains("already holds"), "{err}");
}

#[test]
fn without_delete_delay_the_duplicate_is_deleted_after_its_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let f = fixture(&bucket);
    let (config, backup) = (fs_config(&bucket), fs_config(&tmp.path().join("backup")));
    let before = bucket_objects(&config);
    let out = repair(&config, &backup, &[]);
    assert!(out.contains("1 blocks backed up and deleted"), "{out}");
    let after = bucket_objects(&config);
    assert!(of_block(&after, &f.duplicate).is_empty(), "{out}");
    assert_eq!(
        of_block(&after, &f.original),
        of_block(&before, &f.original)
    );
    assert_eq!(bucket_objects(&backup), of_block(&before, &f.duplicate));
}

#[test]
fn a_live_fence_makes_repair_refuse_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    fixture(&bucket);
    let (config, backup) = (fs_config(&bucket), fs_config(&tmp.path().join("backup")));
    put_live_fence(&config, "compactd-0");
    let before = bucket_objects(&config);
    let (ok, _, err) = verify(
        &config,
        &[
            "-i",
            "duplicated_compaction",
            "-r",
            "--objstore-backup.config",
            &backup,
        ],
    );
    assert!(!ok, "repaired beside a live compactd");
    assert!(
        err.contains("refusing to write") && err.contains("compactd-0"),
        "{err}"
    );
    assert_eq!(
        bucket_objects(&config),
        before,
        "nothing written to the bucket"
    );
    assert!(bucket_objects(&backup).is_empty(), "nothing backed up");
    // Verifying alone needs no fence.
    let (ok, out, _) = verify(&config, &["-i", "duplicated_compaction"]);
    assert!(
        !ok && issues(&out, "duplicated_compaction").len() == 1,
        "{out}"
    );
}

#[test]
fn seaweedfs_bucket_selection_id_and_marking_repair() {
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("bucket");
    let f = fixture(&local);
    let (config, backup) = (
        s3.objstore_yaml_with_prefix("main"),
        s3.objstore_yaml_with_prefix("backup"),
    );
    upload_dir(&config, &local);
    check_selection(&config, &f);
    check_repair_refusals(&config, &backup);
    check_marking_repair(&config, &backup, &f);
}

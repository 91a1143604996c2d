//! `--selector.relabel-config[-file]` through `compactd run` (and `compact`) on a filesystem
//! bucket of 12 streams: two one-shot instances with Thanos' hashmod sharding (modulus 2 over
//! the stream label) each compact exactly the streams whose hash they own, disjoint sets whose
//! union is every stream; `keep` and `drop` configs limit an instance to its streams; a bad
//! config stops compactd before it touches the bucket, naming the file and the field.
//!
//! The expected shards come from Python, not from compactd's relabel code:
//! `int.from_bytes(hashlib.md5(s.encode()).digest()[8:], "big") % 2` for `c00`..`c11`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use compactd::tsdb::meta::BlockMeta;

/// Streams `cluster=c00` .. `cluster=c11`.
const STREAM_COUNT: usize = 12;
/// Hours generated per stream: six 2h blocks, of which the first four make one 8h block.
const HOURS: u32 = 12;
/// Python's hashmod 2 of `c00`..`c11` (see the module doc).
const SHARD_BY_PYTHON: [u64; STREAM_COUNT] = [0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1];

fn streams() -> Vec<String> {
    (0..STREAM_COUNT).map(|i| format!("c{i:02}")).collect()
}

/// A second, md5-based computation of the shard, independent of `compactd::relabel`.
fn shard_of(value: &str, modulus: u64) -> u64 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(value.as_bytes());
    let mut low = 0u64;
    for byte in &digest[8..16] {
        low = (low << 8) | u64::from(*byte);
    }
    low % modulus
}

/// Generates every stream into a fresh bucket; returns it.
fn bucket_of_streams(tmp: &Path) -> PathBuf {
    let bucket = tmp.join("bucket");
    for (i, stream) in streams().iter().enumerate() {
        let labels = format!("cluster={stream},env=prod");
        generate_stream(&bucket, 1, HOURS, &labels, i as u64 + 1, &[]);
    }
    bucket
}

/// Thanos' sharding config: instance `shard` of `modulus` keeps the streams it hashes to.
fn hashmod_selector(shard: u64) -> String {
    format!(
        "- source_labels: [cluster]\n  target_label: __tmp_shard\n  modulus: 2\n  action: hashmod\n- source_labels: [__tmp_shard]\n  regex: {shard}\n  action: keep\n"
    )
}

/// Runs one one-shot instance named `node` with `selector` flags; asserts it succeeded.
fn run_instance(tmp: &Path, bucket: &Path, subcommand: &str, node: &str, selector: &[&str]) {
    let out = run_raw(tmp, bucket, subcommand, node, selector);
    assert!(
        out.status.success(),
        "{node}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_raw(tmp: &Path, bucket: &Path, subcommand: &str, node: &str, selector: &[&str]) -> Output {
    CompactdRun::on_dir(bucket)
        .subcommand(subcommand)
        .data_dir(&tmp.join(format!("data-{node}")))
        .arg("--downsampling.disable")
        .flag("--delete-delay", "0s")
        .flag("--consistency-delay", "0s")
        .node(node)
        .extra(selector)
        .output()
}

/// Per stream, the writers (`--node.name`) of its compacted blocks and its level-1 block
/// count, over the blocks without a deletion mark.
fn streams_in(bucket: &Path) -> BTreeMap<String, (BTreeSet<String>, usize)> {
    let mut out: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
    for dir in block_dirs(bucket) {
        if dir.join("deletion-mark.json").exists() {
            continue;
        }
        let meta = BlockMeta::read_dir(&dir).unwrap();
        let thanos = meta.thanos.as_ref().unwrap();
        let entry = out.entry(thanos.labels["cluster"].clone()).or_default();
        if meta.compaction.level == 1 {
            entry.1 += 1;
            continue;
        }
        let holder = thanos.extensions.as_ref().unwrap()["compactd"]["holder"]
            .as_str()
            .unwrap()
            .to_string();
        entry.0.insert(holder);
    }
    out
}

/// The streams compacted by `node`.
fn compacted_by(bucket: &Path, node: &str) -> BTreeSet<String> {
    streams_in(bucket)
        .into_iter()
        .filter(|(_, (holders, _))| holders.contains(node))
        .map(|(stream, _)| stream)
        .collect()
}

/// Asserts the streams not in `compacted` are exactly as generated (six level-1 blocks).
fn assert_untouched_except(bucket: &Path, compacted: &BTreeSet<String>) {
    for (stream, (holders, level1)) in streams_in(bucket) {
        if !compacted.contains(&stream) {
            assert!(holders.is_empty(), "{stream} was compacted by {holders:?}");
            assert_eq!(level1, 6, "{stream} lost blocks");
        }
    }
}

#[test]
fn hashmod_shards_compact_disjoint_streams_that_cover_the_bucket() {
    let names = streams();
    for (name, shard) in names.iter().zip(SHARD_BY_PYTHON) {
        assert_eq!(shard_of(name, 2), shard, "{name}");
    }
    let expected = |shard: u64| -> BTreeSet<String> {
        names
            .iter()
            .zip(SHARD_BY_PYTHON)
            .filter(|(_, s)| *s == shard)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = bucket_of_streams(tmp.path());
    let shard0_file = tmp.path().join("shard-0.yml");
    std::fs::write(&shard0_file, hashmod_selector(0)).unwrap();
    let shard0_flag = format!("--selector.relabel-config-file={}", shard0_file.display());

    // `tools bucket plan` takes the selector as `run` does.
    let plan = compactd_ok(&[
        "tools",
        "bucket",
        "plan",
        "--objstore.config",
        &fs_config(&bucket),
        "--consistency-delay",
        "0s",
        &shard0_flag,
    ]);
    let hidden = 6 * expected(1).len();
    assert!(
        plan.contains(&format!("label-excluded={hidden} ")),
        "{plan}"
    );
    let groups = expected(0).len();
    assert!(
        plan.contains(&format!(
            "in {groups} groups, {groups} with a compaction to run"
        )),
        "{plan}"
    );

    // Shard 0 through Thanos' command name and the file flag.
    run_instance(tmp.path(), &bucket, "compact", "shard-0", &[&shard0_flag]);
    let by_shard0 = compacted_by(&bucket, "shard-0");
    assert_eq!(by_shard0, expected(0));
    assert_untouched_except(&bucket, &by_shard0);

    // Shard 1 through `run` and the inline flag.
    let inline = hashmod_selector(1);
    run_instance(
        tmp.path(),
        &bucket,
        "run",
        "shard-1",
        &["--selector.relabel-config", &inline],
    );
    let by_shard1 = compacted_by(&bucket, "shard-1");
    assert_eq!(by_shard1, expected(1));
    assert!(by_shard0.is_disjoint(&by_shard1));
    let union: BTreeSet<String> = by_shard0.union(&by_shard1).cloned().collect();
    assert_eq!(union, names.iter().cloned().collect());
    // Shard 1 left shard 0's output alone: each stream has one writer.
    for (stream, (holders, level1)) in streams_in(&bucket) {
        assert_eq!(holders.len(), 1, "{stream}: {holders:?}");
        assert_eq!(level1, 2, "{stream}: the two newest 2h blocks stay");
    }
}

#[test]
fn keep_and_drop_configs_limit_an_instance_to_its_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = bucket_of_streams(tmp.path());
    let first_four: BTreeSet<String> = streams().into_iter().take(4).collect();
    let keep = "- {source_labels: [cluster], regex: 'c0[0-3]', action: keep}";
    run_instance(
        tmp.path(),
        &bucket,
        "run",
        "keeper",
        &["--selector.relabel-config", keep],
    );
    assert_eq!(compacted_by(&bucket, "keeper"), first_four);
    assert_untouched_except(&bucket, &first_four);

    // `env` and `__block_id` are there too: this drops the first four streams only.
    let drop = "- {source_labels: [env, cluster], separator: /, regex: 'prod/c0[0-3]', action: drop}\n- {source_labels: [__block_id], regex: '[0-9A-Z]{26}', action: keep}";
    run_instance(
        tmp.path(),
        &bucket,
        "run",
        "dropper",
        &["--selector.relabel-config", drop],
    );
    let rest: BTreeSet<String> = streams().into_iter().skip(4).collect();
    assert_eq!(compacted_by(&bucket, "dropper"), rest);
    assert_eq!(
        compacted_by(&bucket, "keeper"),
        first_four,
        "kept as it was"
    );
}

/// Every file under `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

/// A bucket of one stream, for the refusals; returns it.
fn one_stream_bucket(tmp: &Path) -> PathBuf {
    let bucket = tmp.join("bucket");
    generate_stream(&bucket, 1, 12, "cluster=c00", 1, &[]);
    bucket
}

/// Runs `compactd run` with `flags` and asserts it exits non-zero with every one of `wants`
/// in its message, the bucket byte for byte as `before` and no data dir made.
fn assert_refused(tmp: &Path, bucket: &Path, flags: &[&str], wants: &[&str]) {
    let before = snapshot(bucket);
    let out = run_raw(tmp, bucket, "run", "bad", flags);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{flags:?} was accepted");
    for want in wants {
        assert!(
            stderr.contains(want),
            "{flags:?}: want {want:?} in {stderr}"
        );
    }
    assert_eq!(snapshot(bucket), before, "{flags:?} changed the bucket");
    let data = tmp.join("data-bad");
    assert!(!data.exists(), "{flags:?} made the data dir");
}

#[test]
fn bad_selector_files_stop_compactd_before_it_touches_the_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = one_stream_bucket(tmp.path());
    let cases: [(&str, Option<&str>, &str); 6] = [
        (
            "yaml.yml",
            Some("- source_labels: [cluster\n"),
            "invalid YAML: ",
        ),
        (
            "action.yml",
            Some("- {source_labels: [cluster], action: shard}\n"),
            "rule 1: action: unknown relabel action \"shard\"",
        ),
        (
            "regex.yml",
            Some("- {source_labels: [cluster], regex: 'c(0', action: keep}\n"),
            "rule 1: regex: invalid regular expression \"c(0\"",
        ),
        (
            "modulus.yml",
            Some("- {source_labels: [cluster], target_label: s, action: hashmod}\n"),
            "rule 1: modulus: hashmod requires a non-zero modulus",
        ),
        (
            "replace.yml",
            Some("- {source_labels: [cluster], target_label: x}\n"),
            "rule 1: action: replace is not supported",
        ),
        ("missing.yml", None, "cannot read it"),
    ];
    for (name, content, want) in cases {
        let path = tmp.path().join(name);
        if let Some(content) = content {
            std::fs::write(&path, content).unwrap();
        }
        let flag = format!("--selector.relabel-config-file={}", path.display());
        // The message names the flag and the file, then the rule and the field.
        let named = format!("--selector.relabel-config-file {}: {want}", path.display());
        assert_refused(tmp.path(), &bucket, &[&flag], &[&named]);
    }
}

#[test]
fn both_flags_and_bad_inline_configs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = one_stream_bucket(tmp.path());
    let good = tmp.path().join("good.yml");
    std::fs::write(&good, "[]").unwrap();
    let file_flag = format!("--selector.relabel-config-file={}", good.display());
    assert_refused(
        tmp.path(),
        &bucket,
        &[&file_flag, "--selector.relabel-config=[]"],
        &["both --selector.relabel-config-file and --selector.relabel-config"],
    );
    assert_refused(
        tmp.path(),
        &bucket,
        &[
            "--selector.relabel-config",
            "- {source_labels: [c], regex: '(', action: drop}",
        ],
        &["--selector.relabel-config: rule 1: regex: invalid regular expression \"(\""],
    );
}

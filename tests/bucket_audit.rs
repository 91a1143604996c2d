//! `compactd tools bucket audit` on a local-filesystem bucket: generated (unstamped) blocks,
//! copies stamped with epochs whose meta.json modification times are set by hand (the
//! filesystem store reports them as last_modified, the commit time), and the fence. The audit
//! passes while commits are ordered by epoch, and fails (exit 1), naming the block, once a
//! lower epoch commits after a higher one began; bucket errors fail with a message.

mod common;

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use compactd::core::fence::{FenceRecord, FENCE_PATH};
use compactd::core::stream::StreamId;
use compactd::tsdb::block_id::BlockId;

/// 2025-06-01T00:00:00Z: the base of the commit times.
const T0_MS: u64 = 1_748_736_000_000;

/// Copies the block `src` to a new block `n` stamped `{epoch, holder}`, whose meta.json was
/// last modified at `T0_MS + secs` seconds. Returns the new id.
fn stamped_copy(bucket: &Path, src: &Path, n: u128, epoch: u64, holder: &str, secs: u64) -> String {
    stamped_copy_in(bucket, src, n, None, (epoch, holder), secs)
}

/// [`stamped_copy`] with the block's external labels replaced by `labels` (`None`: kept).
fn stamped_copy_in(
    bucket: &Path,
    src: &Path,
    n: u128,
    labels: Option<serde_json::Value>,
    (epoch, holder): (u64, &str),
    secs: u64,
) -> String {
    let id = BlockId::from_parts(T0_MS, n).to_string();
    let dir = bucket.join(&id);
    copy_dir(src, &dir);
    let meta_path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["ulid"] = serde_json::json!(id);
    if let Some(labels) = labels {
        meta["thanos"]["labels"] = labels;
    }
    meta["thanos"]["extensions"] = serde_json::json!({
        "other": {"kept": true},
        "compactd": {"epoch": epoch, "holder": holder},
    });
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    let modified = UNIX_EPOCH + Duration::from_millis(T0_MS + secs * 1000);
    std::fs::File::options()
        .write(true)
        .open(&meta_path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    id
}

#[test]
fn audit_passes_ordered_epochs_and_fails_a_late_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        bucket.to_str().unwrap(),
        "--series",
        "1",
        "--hours",
        "2",
        "--external-labels",
        "cluster=eu-1",
    ]);
    let generated = block_dirs(&bucket);
    assert_eq!(generated.len(), 1);
    let src = &generated[0];
    stamped_copy(&bucket, src, 1, 5, "node-a", 10);
    stamped_copy(&bucket, src, 2, 5, "node-a", 20);
    stamped_copy(&bucket, src, 3, 9, "node-b", 30);
    let fence = FenceRecord {
        epoch: 9,
        holder: "node-b".into(),
        seq: 4,
        renewed_unix_ms: T0_MS as i64 + 35_000,
        nonce: String::new(),
    };
    std::fs::create_dir_all(bucket.join("compactd")).unwrap();
    std::fs::write(bucket.join(FENCE_PATH), fence.to_json()).unwrap();
    let config = fs_config(&bucket);

    let text = compactd_ok(&["tools", "bucket", "audit", "--objstore.config", &config]);
    assert_eq!(
        text,
        "fence: epoch 9, holder node-b, seq 4, renewed 2025-06-01T00:00:35Z\n\
         EPOCH  HOLDERS  BLOCKS  FIRST COMMIT              LAST COMMIT\n\
         \x20   5  node-a        2  2025-06-01T00:00:10Z      2025-06-01T00:00:20Z\n\
         \x20   9  node-b        1  2025-06-01T00:00:30Z      2025-06-01T00:00:30Z\n\
         3 stamped blocks in 2 epochs; 1 unstamped blocks (not written by compactd)\n\
         OK: commits ordered by epoch, one holder per epoch, every stamp valid\n"
    );

    // The old leader commits after the new one began: a violation.
    let late = stamped_copy(&bucket, src, 4, 5, "node-a", 40);
    let out = compactd(&["tools", "bucket", "audit", "--objstore.config", &config]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let want = format!(
        "VIOLATION: stream {}: block {late}: epoch 5 (holder node-a) committed at \
         2025-06-01T00:00:40Z, after epoch 9 first committed at 2025-06-01T00:00:30Z\n",
        stream("eu-1")
    );
    assert!(text.contains(&want), "{text}");
    assert!(text.ends_with("1 violations found\n"), "{text}");

    let out = compactd(&[
        "tools",
        "bucket",
        "audit",
        "--objstore.config",
        &config,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ok"], serde_json::json!(false));
    assert_eq!(j["fence"]["epoch"], serde_json::json!(9));
    assert_eq!(j["unstamped"], serde_json::json!(1));
    assert_eq!(j["epochs"][0]["blocks"], serde_json::json!(3));
    assert_eq!(
        j["epochs"][0]["last_commit"],
        serde_json::json!("2025-06-01T00:00:40Z")
    );
    let v = &j["violations"][0];
    assert_eq!(v["kind"], serde_json::json!("late-commit"));
    assert_eq!(v["block"], serde_json::json!(late));
    assert_eq!(v["higher_epoch"], serde_json::json!(9));
}

/// The stream of the blocks labelled `cluster`.
fn stream(cluster: &str) -> StreamId {
    let labels = [("cluster".to_string(), cluster.to_string())].into();
    StreamId::of_labels(&labels, &[]).expect("a label")
}

fn write_fence(bucket: &Path, path: &str, epoch: u64, holder: &str) {
    let fence = FenceRecord {
        epoch,
        holder: holder.into(),
        seq: 1,
        renewed_unix_ms: T0_MS as i64,
        nonce: String::new(),
    };
    let path = bucket.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, fence.to_json()).unwrap();
}

/// Two streams, each with its own writers and fence, whose epochs interleave: clean. Once a
/// stream's epoch goes back, the audit fails naming that stream.
#[test]
fn audit_orders_commits_per_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let generated = tmp.path().join("generated");
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        generated.to_str().unwrap(),
        "--series",
        "1",
        "--hours",
        "2",
        "--external-labels",
        "cluster=eu-1",
    ]);
    let src = &block_dirs(&generated)[0];
    let labels = |cluster: &str, replica: &str| {
        Some(serde_json::json!({"cluster": cluster, "replica": replica}))
    };
    stamped_copy_in(&bucket, src, 1, labels("eu-1", "a"), (5, "node-a"), 10);
    stamped_copy_in(&bucket, src, 2, labels("us-1", "a"), (9, "node-b"), 20);
    stamped_copy_in(&bucket, src, 3, labels("eu-1", "b"), (5, "node-a"), 30);
    stamped_copy_in(&bucket, src, 4, labels("us-1", "b"), (12, "node-a"), 40);
    write_fence(&bucket, &stream("eu-1").fence_path(), 5, "node-a");
    write_fence(&bucket, &stream("us-1").fence_path(), 12, "node-a");
    let config = fs_config(&bucket);
    let audit = |extra: &[&str]| {
        let mut args = vec!["tools", "bucket", "audit", "--objstore.config", &config];
        args.extend_from_slice(extra);
        compactd(&args)
    };

    let out = audit(&["--deduplication.replica-label", "replica"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let eu = format!(
        "stream {} {{cluster=\"eu-1\"}}, fence: epoch 5, holder node-a, seq 1, renewed \
         2025-06-01T00:00:00Z\n",
        stream("eu-1")
    );
    assert!(text.contains(&eu), "{text}");
    assert!(text.starts_with("fence: none\n"), "{text}");

    // node-b, us-1's writer before epoch 12, commits once more: us-1's epoch goes back.
    let late = stamped_copy_in(&bucket, src, 5, labels("us-1", "a"), (9, "node-b"), 50);
    let out = audit(&[
        "--deduplication.replica-label",
        "replica",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &j["violations"];
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{j:#}");
    assert_eq!(
        v[0]["stream"],
        serde_json::json!(stream("us-1").to_string())
    );
    assert_eq!(v[0]["block"], serde_json::json!(late));
    assert_eq!(j["streams"].as_array().map(Vec::len), Some(2), "{j:#}");
}

#[test]
fn audit_fails_with_a_message_when_the_bucket_cannot_be_opened() {
    let out = compactd(&[
        "tools",
        "bucket",
        "audit",
        "--objstore.config",
        "type: NOPE\nconfig: {}\n",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("NOPE"), "{err}");
}

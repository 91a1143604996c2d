//! The writing bucket tools next to a live compactd (issue 19): `mark`, `retention` and
//! `cleanup` refuse while a compactd holds the fence and write nothing; sent to the leader
//! (`--leader.url`) they take effect under its epoch, and `tools bucket audit` shows the marks
//! under it; once the holder is gone for a lease TTL, a tool holds the fence itself and
//! gives it back. Bad input (an unknown block, a marker already there) writes nothing; with
//! `--disable-admin-operations` the leader refuses requests.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::etcd::Etcd;
use common::replicas::*;
use common::seaweed::Seaweed;
use common::*;
use compactd::core::types::MetaState;
use compactd::tsdb::block_id::BlockId;

/// Every object of the bucket but the fences (which live holders renew), with its size.
fn listing(config: &str) -> BTreeMap<String, u64> {
    use futures::TryStreamExt;
    let bucket = open(config);
    let objects: Vec<object_store::ObjectMeta> = runtime()
        .block_on(bucket.store.list(None).try_collect())
        .expect("list the bucket");
    objects
        .into_iter()
        .map(|o| (o.location.to_string(), o.size))
        .filter(|(path, _)| !path.starts_with("compactd/"))
        .collect()
}

/// The visible blocks (readable meta.json, no deletion mark), oldest first.
fn live_blocks(config: &str) -> Vec<BlockId> {
    let bucket = open(config);
    let sync = runtime()
        .block_on(compactd::tools::bucket::sync(&bucket.store))
        .expect("sync");
    sync.blocks
        .iter()
        .filter(|(_, b)| matches!(b.meta, MetaState::Ok(_)) && b.deletion_mark.is_none())
        .map(|(id, _)| *id)
        .collect()
}

/// Runs `compactd tools bucket <args> --objstore.config <config>`.
fn tool(config: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["tools", "bucket"];
    all.extend(args);
    all.extend(["--objstore.config", config]);
    compactd(&all)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A marker's JSON from the bucket.
fn marker(config: &str, block: BlockId, name: &str) -> serde_json::Value {
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    let path = object_store::path::Path::from(format!("{block}/{name}"));
    let bytes = runtime()
        .block_on(async { bucket.store.get(&path).await?.bytes().await })
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_slice(&bytes).expect("marker JSON")
}

/// A deletion request of the `up` series.
const DELETE_UP: &str = "- matchers: '{__name__=\"up\"}'";

/// `POST`s `body` to `url`; the status and the answer.
fn post(url: &str, body: &serde_json::Value) -> (u16, String) {
    runtime().block_on(async {
        let response = reqwest::Client::new()
            .post(url)
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.text().await.expect("answer"))
    })
}

/// `rewrite --leader.url`: the tool uploads the new block, the leader checks its files and
/// commits its meta.json and the old block's deletion mark under its epoch; a meta.json whose
/// files are not in the bucket is refused.
fn rewrite_through_the_leader(config: &str, url: &str, block: BlockId, epoch: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let id = block.to_string();
    let work = tmp.path().to_str().unwrap();
    let mut args = vec!["rewrite", "--id", &id, "--no-dry-run", "--delete-blocks"];
    args.extend(["--tmp.dir", work, "--rewrite.to-delete-config", DELETE_UP]);
    args.extend(["--leader.url", url]);
    let out = tool(config, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let new: BlockId = stdout(&out)
        .split_whitespace()
        .skip_while(|w| *w != "as")
        .nth(1)
        .and_then(|w| w.trim_end_matches(';').parse().ok())
        .unwrap_or_else(|| panic!("no new block in {}", stdout(&out)));
    let meta = marker(config, new, "meta.json");
    assert_eq!(meta["thanos"]["source"], "bucket.rewrite", "{meta}");
    assert_eq!(
        meta["thanos"]["extensions"]["compactd"]["epoch"], epoch,
        "{meta}"
    );
    assert_eq!(
        meta["thanos"]["extensions"]["compactd"]["holder"], "r1",
        "{meta}"
    );
    let mark = marker(config, block, "deletion-mark.json");
    assert_eq!(mark["details"], "block rewritten", "{mark}");
    assert_eq!(mark["compactd"]["epoch"], epoch, "{mark}");

    // A meta.json whose files were never uploaded: refused, nothing written.
    let before = listing(config);
    let mut orphan = meta.clone();
    let ghost = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    orphan["ulid"] = serde_json::json!(ghost);
    let body = serde_json::json!({"stream": null, "ops": [{"AdoptMeta": {"meta": orphan}}]});
    let (status, answer) = post(&format!("{url}/api/v1/admin/commit"), &body);
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("is not in the bucket"), "{answer}");
    assert_eq!(listing(config), before, "a refused meta.json was written");
}

/// The bucket fence as stored.
fn fence_record(config: &str) -> Option<compactd::core::fence::FenceRecord> {
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    let path = object_store::path::Path::from(compactd::core::fence::FENCE_PATH);
    let bytes = runtime()
        .block_on(async { bucket.store.get(&path).await?.bytes().await })
        .ok()?;
    Some(serde_json::from_slice(&bytes).expect("fence JSON"))
}

/// Each writing tool, without `--leader.url`, refuses next to the live holder `holder` and
/// changes nothing.
fn assert_refused(config: &str, block: BlockId, holder: &str) {
    let before = listing(config);
    let id = block.to_string();
    let attempts: [&[&str]; 3] = [
        &[
            "mark",
            "--id",
            &id,
            "--marker",
            "no-compact-mark.json",
            "--details",
            "x",
        ],
        &["retention", "--retention.resolution-raw", "1d"],
        &["cleanup", "--delete-delay", "0s"],
    ];
    for args in attempts {
        let out = tool(config, args);
        assert!(
            !out.status.success(),
            "{args:?} wrote next to a live compactd"
        );
        let err = stderr(&out);
        assert!(
            err.contains("refusing to write") && err.contains(&format!("held by {holder:?}")),
            "{args:?}: {err}"
        );
    }
    assert_eq!(listing(config), before, "a refused tool changed the bucket");
}

/// Bad input: an unknown block and a marker already there fail and write nothing.
fn assert_bad_input_writes_nothing(config: &str, marked: BlockId, extra: &[&str]) {
    let before = listing(config);
    let unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let mut args = vec!["mark", "--id", unknown, "--marker", "deletion-mark.json"];
    args.extend(["--details", "x"]);
    args.extend(extra);
    let out = tool(config, &args);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not in the bucket"),
        "{}",
        stderr(&out)
    );
    let id = marked.to_string();
    let mut args = vec!["mark", "--id", &id, "--marker", "no-compact-mark.json"];
    args.extend(["--details", "again"]);
    args.extend(extra);
    let out = tool(config, &args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = tool(config, &["mark", "--id", "nope", "--marker", "x.json"]);
    assert!(!out.status.success());
    assert_eq!(listing(config), before, "bad input changed the bucket");
}

/// One replica leads `config`'s bucket through etcd; the tools go through it.
fn tools_next_to_a_leader(etcd: &Etcd, dir: &Path, config: &str, prefix: &str) {
    let cluster = Cluster::new(etcd, dir, config, prefix).with_replicas(1);
    let ((leader, epoch), _) = cluster.agreed_leader(SLOW);
    let r1 = &cluster.replicas[leader];
    wait_for(SLOW, "the leader's first iteration", || {
        (r1.count(ITERATION_DONE) > 0).then_some(())
    });
    let blocks = live_blocks(config);
    assert!(blocks.len() >= 2, "{blocks:?}");
    assert_refused(config, blocks[0], "r1");

    let url = format!("http://127.0.0.1:{}", r1.port);
    let id = blocks[0].to_string();
    let args = ["mark", "--id", &id, "--marker", "no-compact-mark.json"];
    let out = tool(
        config,
        &[&args[..], &["--details", "halts", "--leader.url", &url]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("epoch {epoch}")),
        "{}",
        stdout(&out)
    );
    let m = marker(config, blocks[0], "no-compact-mark.json");
    assert_eq!(m["compactd"]["epoch"], epoch, "{m}");
    assert_eq!(m["compactd"]["holder"], "r1", "{m}");
    assert_eq!(m["reason"], "manual", "{m}");
    assert_bad_input_writes_nothing(config, blocks[0], &["--leader.url", &url]);
    rewrite_through_the_leader(config, &url, blocks[1], epoch);

    // No consistency delay: the rewritten block is fresh.
    let mut args = vec!["retention", "--retention.resolution-raw", "1d"];
    args.extend(["--consistency-delay", "0s", "--leader.url", &url]);
    let out = tool(config, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(live_blocks(config).is_empty(), "retention left blocks live");
    let audit = tool(config, &["audit", "--output", "json"]);
    assert!(audit.status.success(), "{}", stdout(&audit));
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).expect("audit JSON");
    let marks = report["marks"].as_array().expect("marks");
    let by_leader = marks
        .iter()
        .filter(|m| m["marker"] == "deletion-mark.json" && m["epoch"] == epoch)
        .count();
    assert!(by_leader >= blocks.len(), "{report}");
    assert!(marks.iter().all(|m| m["holder"] == "r1"), "{report}");

    let out = tool(
        config,
        &["cleanup", "--delete-delay", "0s", "--leader.url", &url],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(SLOW, "every marked block deleted", || {
        listing(config).is_empty().then_some(())
    });
}

/// After the holder died, a tool is refused for a lease TTL, then holds the fence itself and
/// gives it back (`renewed_unix_ms` 0).
fn tool_takes_the_fence_once_the_holder_is_gone(config: &str, dir: &Path, holder: &str) {
    generate_stream(dir, 10, 4, "cluster=late", 9, &[]);
    upload_dir(config, dir);
    let block = live_blocks(config)[0];
    let id = block.to_string();
    let args = [
        "mark",
        "--id",
        &id,
        "--marker",
        "no-downsample-mark.json",
        "--details",
        "d",
    ];
    let ttl = ["--etcd.lease-ttl", "3s"];
    let (_, took) = wait_for(SLOW, "the tool's own hold of the fence", || {
        let out = tool(config, &[&args[..], &ttl].concat());
        if out.status.success() {
            return Some(());
        }
        assert!(
            stderr(&out).contains(&format!("held by {holder:?}")),
            "{}",
            stderr(&out)
        );
        None
    });
    eprintln!(
        "the tool held the fence {} after the holder died",
        secs(took)
    );
    let m = marker(config, block, "no-downsample-mark.json");
    assert_eq!(m["compactd"]["epoch"], 0, "{m}");
    assert!(
        m["compactd"]["holder"]
            .as_str()
            .unwrap()
            .starts_with("tools/mark@"),
        "{m}"
    );
    let fence = fence_record(config).expect("the fence");
    assert_eq!(
        fence.renewed_unix_ms, 0,
        "the tool kept the fence: {fence:?}"
    );
    assert!(fence.holder.starts_with("tools/mark@"), "{fence:?}");
}

#[test]
fn s3_tools_refuse_next_to_a_leader_and_commit_through_it() {
    let Some(etcd) = Etcd::start() else { return };
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("generated");
    generate_streams(&local, 20, 12);
    let config = s3.objstore_yaml_with_prefix("fenced-tools");
    upload_dir(&config, &local);
    {
        tools_next_to_a_leader(&etcd, tmp.path(), &config, "fenced-tools");
        // The cluster is dropped here: its replica is killed without releasing the fence.
    }
    tool_takes_the_fence_once_the_holder_is_gone(&config, &tmp.path().join("late"), "r1");
}

#[test]
fn filesystem_tools_refuse_next_to_a_single_instance_and_commit_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 20, 12);
    let config = fs_config(&bucket);
    let mut cluster = Cluster::single(tmp.path(), &config);
    cluster.spawn("solo");
    let solo = &cluster.replicas[0];
    wait_for(SLOW, "the first iteration", || {
        (solo.count(ITERATION_DONE) > 0).then_some(())
    });
    let blocks = live_blocks(&config);
    assert_refused(&config, blocks[0], "solo");
    let url = format!("http://127.0.0.1:{}", solo.port);
    let id = blocks[0].to_string();
    let mut args = vec!["mark", "--id", &id, "--marker", "deletion-mark.json"];
    args.extend(["--details", "bad data", "--leader.url", &url]);
    let out = tool(&config, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = marker(&config, blocks[0], "deletion-mark.json");
    assert_eq!(
        (m["compactd"]["epoch"].as_u64(), m["details"].as_str()),
        (Some(0), Some("bad data"))
    );
    assert_eq!(m["compactd"]["holder"], "solo", "{m}");
}

#[test]
fn admin_operations_disabled_refuse_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 4);
    let config = fs_config(&bucket);
    let mut cluster =
        Cluster::single(tmp.path(), &config).with_flags(&["--disable-admin-operations"]);
    cluster.spawn("solo");
    let solo = &cluster.replicas[0];
    wait_for(SLOW, "the first iteration", || {
        (solo.count(ITERATION_DONE) > 0).then_some(())
    });
    let before = listing(&config);
    let id = live_blocks(&config)[0].to_string();
    let url = format!("http://127.0.0.1:{}", solo.port);
    let mut args = vec!["mark", "--id", &id, "--marker", "no-compact-mark.json"];
    args.extend(["--details", "x", "--leader.url", &url]);
    let out = tool(&config, &args);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--disable-admin-operations"),
        "{}",
        stderr(&out)
    );
    assert_eq!(listing(&config), before);
}

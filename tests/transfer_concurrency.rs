//! Thanos' transfer concurrency flags (`--block-meta-fetch-concurrency`,
//! `--compact.blocks-fetch-concurrency`, `--block-files-concurrency`) bound how many requests
//! compactd has in flight against a real S3 server (SeaweedFS). compactd reaches the server
//! through a TCP proxy that counts the most connections open at once: the S3 client's pool
//! opens a connection only when every open one is busy, so that count is the peak of requests
//! in flight. The same bucket content is compacted twice, with every flag at 1 and at 8.

mod common;

use std::process::Command;

use common::proxy::Proxy;
use common::seaweed::Seaweed;
use common::*;

/// Compacts a copy of `local` under `prefix` through a proxy with the three flags at `n`;
/// returns the proxy's peak of open connections.
fn peak_in_flight(s3: &Seaweed, local: &std::path::Path, prefix: &str, n: usize) -> u64 {
    let direct = s3.objstore_yaml_with_prefix(prefix);
    upload_dir(&direct, local);
    let target: std::net::SocketAddr = s3.url()["http://".len()..]
        .parse()
        .expect("SeaweedFS address");
    let proxy = Proxy::start(target);
    let config = direct.replace(&target.to_string(), &proxy.addr().to_string());
    let data = tempfile::tempdir().expect("data dir");
    let n = n.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_compactd"))
        .args(["compact", "--objstore.config", &config])
        .args(["--data-dir", data.path().to_str().expect("utf-8")])
        .args(["--http-address=127.0.0.1:0", "--consistency-delay=0s"])
        .args(["--downsampling.disable", "--compact.concurrency=1"])
        .args([
            &format!("--block-meta-fetch-concurrency={n}"),
            &format!("--compact.blocks-fetch-concurrency={n}"),
            &format!("--block-files-concurrency={n}"),
        ])
        .output()
        .expect("run compactd");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compactd failed:\n{log}");
    assert!(log.contains("uploaded block"), "nothing compacted:\n{log}");
    proxy.stats().peak_open
}

#[test]
fn the_concurrency_flags_bound_requests_in_flight() {
    let Some(s3) = Seaweed::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let local = tmp.path().join("generated");
    // Two streams of twelve 2h blocks: groups of four inputs, each with a chunk segment, an
    // index and a meta.json, and about thirty metas to sync.
    generate_streams(&local, 20, 24);
    let one = peak_in_flight(&s3, &local, "one", 1);
    let eight = peak_in_flight(&s3, &local, "eight", 8);
    report_figure(&format!(
        "transfer concurrency: peak S3 requests in flight {one} with the flags at 1, {eight} at 8"
    ));
    assert!(one <= 2, "at 1, {one} requests were in flight at once");
    assert!(
        eight >= 4,
        "at 8, only {eight} requests were in flight at once"
    );
}

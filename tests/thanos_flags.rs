//! Drop-in for `thanos compact`: the argument list a Helm chart writes for Thanos (Thanos'
//! command name, kingpin's flag syntax, every tuning flag) starts compactd unchanged against a
//! real S3 server (SeaweedFS) and compacts; the flags with an effect show it: the log format,
//! `--no-` booleans, transfer concurrency and the start-up warnings of the flags compactd does
//! not act on (`--http.config` has tests/http_config.rs).

mod common;

use std::process::Command;

use common::seaweed::Seaweed;
use common::*;

/// The arguments of a Thanos compactor as the Bitnami and kube-thanos charts write them
/// (`--flag=value` form), with the bucket config and the ports of this test.
fn helm_args(config_file: &str, data_dir: &str, web_config: &str) -> Vec<String> {
    [
        "compact",
        "--log.level=info",
        "--log.format=logfmt",
        "--http-address=127.0.0.1:0",
        "--http-grace-period=2m",
        &format!("--data-dir={data_dir}"),
        &format!("--objstore.config-file={config_file}"),
        "--retention.resolution-raw=0d",
        "--retention.resolution-5m=0d",
        "--retention.resolution-1h=0d",
        "--consistency-delay=0s",
        "--compact.concurrency=2",
        "--downsample.concurrency=1",
        "--delete-delay=0s",
        "--block-files-concurrency=4",
        "--compact.blocks-fetch-concurrency=2",
        "--block-meta-fetch-concurrency=16",
        "--block-discovery-strategy=concurrent",
        "--compact.cleanup-interval=5m",
        "--compact.progress-interval=5m",
        "--selector.relabel-config=- action: keep\n  source_labels: [__block_id]\n  regex: .+",
        "--deduplication.replica-label=prometheus_replica,rule_replica",
        "--deduplication.func=",
        "--hash-func=",
        "--downsampling.disable",
        "--web.disable",
        "--web.route-prefix=/compactor",
        "--web.external-prefix=",
        "--web.prefix-header=X-Forwarded-Prefix",
        "--web.disable-cors",
        "--bucket-web-label=cluster",
        "--block-viewer.global.sync-block-interval=1m",
        "--block-viewer.global.sync-block-timeout=5m",
        "--disable-admin-operations",
        "--no-wait",
        "--enable-auto-gomemlimit",
        "--auto-gomemlimit.ratio=0.9",
        "--debug.halt-on-error",
        "--no-compact.enable-vertical-compaction",
        "--compact.skip-block-with-out-of-order-chunks",
        "--debug.accept-malformed-index=false",
        &format!("--http.config={web_config}"),
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn a_thanos_helm_argument_list_compacts_on_s3() {
    let Some(s3) = Seaweed::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("generated");
    generate_streams(&local, 20, 12);
    let before = block_dirs(&local).len();
    let config = s3.objstore_yaml();
    upload_dir(&config, &local);
    let config_file = tmp.path().join("bucket.yml");
    std::fs::write(&config_file, &config).unwrap();
    let data = tmp.path().join("data");
    // The chart's web config: HTTPS with the test certificates (tests/http_config.rs uses it).
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/webconfig");
    let web = tmp.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            fixtures.join("server.pem").display(),
            fixtures.join("server-key.pem").display()
        ),
    )
    .unwrap();
    let args = helm_args(
        config_file.to_str().unwrap(),
        data.to_str().unwrap(),
        web.to_str().unwrap(),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_compactd"))
        .args(&args)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compactd compact failed:\n{log}");
    assert!(
        log.contains("scheme=https"),
        "--http.config not applied:\n{log}"
    );
    // logfmt lines with Thanos' leading keys.
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with("ts="), "not logfmt: {line}");
        assert!(line.contains(" level="), "{line}");
        assert!(line.contains(" caller="), "{line}");
        assert!(line.contains(" msg="), "{line}");
    }
    // The flags compactd does not act on each warn once, naming themselves.
    for flag in ["--enable-auto-gomemlimit", "--auto-gomemlimit.ratio"] {
        let warned = lines
            .iter()
            .filter(|l| l.contains("level=warn") && l.contains(flag))
            .count();
        assert_eq!(warned, 1, "{flag} warns once:\n{log}");
    }
    // --no-wait: one pass, then exit 0 (checked above); it compacted.
    let back = tmp.path().join("downloaded");
    download_bucket(&config, &back);
    let after = block_dirs(&back).len();
    assert!(
        after < before,
        "compacted: {before} blocks before, {after} after"
    );
    assert!(log.contains("msg=\"uploaded block\""), "{log}");
}

/// Runs `compactd <global...> compact` on a small filesystem bucket; returns its log.
fn run_with_globals(globals: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 5, 8);
    let run = CompactdRun::on_dir(&bucket)
        .subcommand("compact")
        .arg("--consistency-delay=0s")
        .data_dir(&tmp.path().join("data"))
        .arg("--downsampling.disable=true");
    // The global flags come before the subcommand.
    let out = Command::new(env!("CARGO_BIN_EXE_compactd"))
        .args(globals)
        .args(run.args())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    log
}

#[test]
fn json_logs_and_global_flags_before_the_subcommand() {
    let log = run_with_globals(&["--log.format", "json"]);
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["ts", "level", "caller", "msg"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let leading = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["msg"].as_str().is_some_and(|m| m.starts_with("leading")))
        .expect("a leading line");
    assert_eq!(leading["epoch"], 0, "numbers stay numbers");
    // --log.level before the subcommand takes effect: no info line at warn.
    let log = run_with_globals(&["--log.level=warn"]);
    assert!(log.lines().any(|l| l.contains("level=warn")), "{log}");
    assert!(!log.lines().any(|l| l.contains("level=info")), "{log}");
}

#[test]
fn unknown_values_of_thanos_flags_are_refused() {
    for bad in [
        "--log.format=text",
        "--block-discovery-strategy=sideways",
        "--hash-func=MD5",
    ] {
        let out = compactd(&["compact", "--objstore.config", "type: FILESYSTEM", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        let flag = bad.split('=').next().unwrap();
        assert!(err.contains(flag), "{bad}: {err}");
    }
}

#[test]
fn hash_func_sha256_writes_each_file_hash_into_meta_json_as_thanos() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 5, 12);
    let sources = block_dirs(&bucket);
    let out = CompactdRun::on_dir(&bucket)
        .subcommand("compact")
        .arg("--consistency-delay=0s")
        .arg("--downsampling.disable")
        .arg("--hash-func=SHA256")
        .data_dir(&tmp.path().join("data"))
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new: Vec<_> = block_dirs(&bucket)
        .into_iter()
        .filter(|b| !sources.contains(b))
        .collect();
    assert!(!new.is_empty(), "compacted");
    for block in new {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(block.join("meta.json")).unwrap()).unwrap();
        let files = meta["thanos"]["files"].as_array().unwrap();
        let mut hashed = 0;
        for f in files {
            let rel = f["rel_path"].as_str().unwrap();
            if rel == "meta.json" {
                assert!(f.get("hash").is_none(), "meta.json is not hashed");
                continue;
            }
            assert_eq!(f["hash"]["hashFunc"], "SHA256", "{f}");
            // sha256sum, not compactd's code, is the oracle.
            let sum = Command::new("sha256sum")
                .arg(block.join(rel))
                .output()
                .unwrap();
            let want = String::from_utf8_lossy(&sum.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            assert_eq!(f["hash"]["value"].as_str().unwrap(), want, "{rel}");
            hashed += 1;
        }
        assert!(
            hashed >= 2,
            "index and at least one chunk segment: {files:?}"
        );
    }
}

/// `compactd compact --wait` on an empty filesystem bucket with `--http-grace-period=grace`.
fn serving(dir: &std::path::Path, name: &str, grace: &str) -> common::replicas::Replica {
    let grace = format!("--http-grace-period={grace}");
    common::replicas::Replica::spawn_single(dir, name, &[&grace])
}

/// An HTTP request whose head is still arriving: in flight for the server.
fn open_request(port: u16) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    // The server has read the partial head before the signal comes.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s
}

#[test]
fn http_grace_period_bounds_the_wait_for_open_requests_at_shutdown() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();

    // A short grace period: SIGTERM ends the process soon despite the open request.
    let mut short = serving(tmp.path(), "short", "1s");
    let _stalled = open_request(short.port);
    let signalled = Instant::now();
    short.signal(libc::SIGTERM);
    let status = short.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "still running 30 s after SIGTERM");
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before its grace period"
    );
    assert!(
        short.count("--http-grace-period") > 0,
        "{}",
        short.log_text()
    );

    // A long one: the process waits for the open request, which is then answered.
    let mut long = serving(tmp.path(), "long", "2m");
    let mut request = open_request(long.port);
    long.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        long.try_exit().is_none(),
        "did not wait for the open request"
    );
    request.write_all(b"Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    request.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        long.wait_exit(Duration::from_secs(30)).is_some(),
        "still running after its last request was answered"
    );
}

//! Shared support for the integration tests: finding external tools (failing loudly under
//! CI=true when one is missing), running the `compactd` binary and promtool, and dumping
//! blocks in promtool's text format with our own reader. `run` builds the `compactd run`
//! command line; `etcd` and `seaweed` run real servers (etcd, an S3 store) on loopback;
//! `replicas` runs `compactd run` replicas and clusters of them for the HA tests; `proxy` is a
//! TCP proxy whose forwarding can be cut one way or both ways; `stderr` follows a running
//! child's log and finds its HTTP port; `webdriver` drives a headless Chromium for the web UI's
//! browser tests.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod etcd;
pub mod proxy;
pub mod replicas;
pub mod run;
pub mod seaweed;
pub mod stderr;
pub mod webdriver;

pub use run::CompactdRun;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use compactd::tsdb::block::BlockReader;
use compactd::tsdb::chunks::ENCODING_XOR;
use compactd::tsdb::labels::Labels;
use compactd::tsdb::xor::XorIter;

/// True when running in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of an external tool, or `None` (with a loud message) outside CI. Under CI=true a
/// missing tool fails the test.
pub fn require_tool(name: &str, env_override: Option<&str>) -> Option<PathBuf> {
    let path = env_override
        .and_then(std::env::var_os)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| which(name));
    if path.is_none() {
        let msg = format!("{name} is not installed (scripts/test.sh installs it)");
        assert!(!in_ci(), "CI=true and {msg}");
        eprintln!("SKIPPED: {msg}");
    }
    path
}

/// The first `name` on the PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Runs the compactd binary built for this test run.
pub fn compactd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compactd"))
        .args(args)
        .output()
        .expect("run compactd")
}

/// Runs compactd and asserts success; returns stdout.
pub fn compactd_ok(args: &[&str]) -> String {
    let out = compactd(args);
    assert!(
        out.status.success(),
        "compactd {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The block directories (ULID-named) directly inside `dir`, sorted.
pub fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    v.sort();
    v
}

/// `promtool tsdb dump` of the given blocks, run on a copy (promtool 2.42 wants a `wal` dir
/// and writes `chunks_head` into the directory it dumps).
pub fn promtool_dump(promtool: &Path, blocks: &[PathBuf]) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    for b in blocks {
        copy_dir(b, &tmp.path().join(b.file_name().expect("block name")));
    }
    std::fs::create_dir(tmp.path().join("wal")).expect("wal dir");
    let out = Command::new(promtool)
        .args(["tsdb", "dump"])
        .arg(tmp.path())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 dump")
}

/// Runs `promtool tsdb analyze` on one block and asserts that it succeeds.
pub fn promtool_analyze(promtool: &Path, block: &Path) -> String {
    let out = Command::new(promtool)
        .args(["tsdb", "analyze"])
        .arg(block.parent().expect("parent"))
        .arg(block.file_name().expect("block name"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool analyze: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Recursively copies a directory.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}

/// Every float sample of the given blocks read with our reader, merged per series with one
/// sample per timestamp (as a querier over the blocks returns them).
pub fn read_samples(blocks: &[PathBuf]) -> BTreeMap<Labels, BTreeMap<i64, f64>> {
    let mut out: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
    for dir in blocks {
        let mut b = BlockReader::open(dir).expect("open block");
        let range = b.meta.min_time..b.meta.max_time;
        for series in b.series().expect("postings") {
            let series = series.expect("series");
            let samples = out.entry(series.labels).or_default();
            for c in &series.chunks {
                assert_eq!(c.encoding, ENCODING_XOR, "float chunks only");
                let mut it = XorIter::new(&c.data);
                while let Some((t, v)) = it.next_sample().expect("decode") {
                    if range.contains(&t) {
                        samples.entry(t).or_insert(v);
                    }
                }
            }
        }
    }
    out
}

/// Our reader's samples in `promtool tsdb dump` format.
pub fn our_dump(blocks: &[PathBuf]) -> String {
    let mut s = String::new();
    for (labels, samples) in read_samples(blocks) {
        let l = labels.to_string();
        for (t, v) in samples {
            s.push_str(&format!("{l} {} {t}\n", go_format_g(v)));
        }
    }
    s
}

/// Formats a float as Go's `fmt.Sprintf("%g", v)`: shortest round-trip digits, exponent form
/// when the decimal exponent is below -4 or at least 6 (strconv's rule for the shortest form).
pub fn go_format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-point) as usize));
    }
    let point = point as usize;
    if digits.len() <= point {
        format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

/// A plain HTTP/1.1 GET on loopback with 5 s timeouts: (status code, body), or the I/O error
/// (connection refused once the server is gone, a timeout while it is paused).
pub fn try_http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = std::time::Duration::from_secs(5);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// [`try_http_get`] that panics on an I/O error.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http_get(port, path).unwrap_or_else(|e| panic!("GET 127.0.0.1:{port}{path}: {e}"))
}

/// The two streams (external label sets) the bucket tests generate.
pub const STREAMS: [&str; 2] = ["cluster=eu-1", "cluster=us-1"];

/// A Thanos objstore config of a local-filesystem bucket in `dir`.
pub fn fs_config(dir: &Path) -> String {
    format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        dir.display()
    )
}

/// Generates `hours` of 2h blocks with `series` series for each of [`STREAMS`] into `dir`.
pub fn generate_streams(dir: &Path, series: usize, hours: u32) {
    for (i, labels) in STREAMS.iter().enumerate() {
        generate_stream(dir, series, hours, labels, i as u64 + 1, &[]);
    }
}

/// Writes one stream with `compactd tools generate` into `dir`: `series` instances over
/// `hours`, external labels `labels` (`k=v,...`), `seed`, and any `extra` flags
/// (`--block-duration`, `--start-ms`, ...).
pub fn generate_stream(
    dir: &Path,
    series: usize,
    hours: u32,
    labels: &str,
    seed: u64,
    extra: &[&str],
) -> String {
    let (series, hours, seed) = (series.to_string(), hours.to_string(), seed.to_string());
    let mut args = vec!["tools", "generate", "--out", dir.to_str().unwrap()];
    args.extend(["--series", &series, "--hours", &hours]);
    args.extend(["--external-labels", labels, "--seed", &seed]);
    args.extend(extra);
    compactd_ok(&args)
}

/// A current-thread tokio runtime for the bucket helpers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the bucket of an objstore YAML config.
pub fn open(config: &str) -> compactd::objstore::Bucket {
    let cfg = compactd::objstore::parse_config(config, "test").unwrap();
    compactd::objstore::open(&cfg).unwrap()
}

/// Every object of the bucket of `config`: name → bytes.
pub fn bucket_objects(config: &str) -> BTreeMap<String, Vec<u8>> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    runtime().block_on(async {
        let listed: Vec<_> = bucket.store.list(None).try_collect().await.unwrap();
        let mut out = BTreeMap::new();
        for o in listed {
            let got = bucket.store.get(&o.location).await.unwrap();
            out.insert(o.location.to_string(), got.bytes().await.unwrap().to_vec());
        }
        out
    })
}

/// Writes `compactd/fence.json` of a live compactd into the bucket of `config`: `holder`
/// under epoch 3, renewed now. Returns the bytes written.
pub fn put_live_fence(config: &str, holder: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt;
    let record = compactd::core::fence::FenceRecord {
        epoch: 3,
        holder: holder.into(),
        seq: 7,
        renewed_unix_ms: compactd::tools::now_unix_ms(),
        nonce: String::new(),
    };
    let bucket = open(config);
    let path = object_store::path::Path::from(compactd::core::fence::FENCE_PATH);
    let bytes = record.to_json();
    runtime()
        .block_on(bucket.store.put(&path, bytes.clone().into()))
        .expect("write the fence");
    bytes
}

/// Uploads every file under `dir` (relative paths become object names).
pub fn upload_dir(config: &str, dir: &Path) {
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    runtime().block_on(async {
        for f in files {
            let name = f.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
            let data = std::fs::read(&f).unwrap();
            bucket
                .store
                .put(&object_store::path::Path::from(name), data.into())
                .await
                .unwrap();
        }
    });
}

/// Every file under `dir`, recursively, appended to `out`.
pub fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Kills the child process if the test ends early.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Downloads every object of the bucket into `dir` (object names become relative paths).
/// Objects deleted between the listing and their download (by a compactor at work) are left
/// out.
pub fn download_bucket(config: &str, dir: &Path) {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    runtime().block_on(async {
        let objects: Vec<_> = bucket.store.list(None).try_collect().await.unwrap();
        for o in objects {
            let target = dir.join(o.location.as_ref());
            let got = match bucket.store.get(&o.location).await {
                Err(object_store::Error::NotFound { .. }) => continue,
                r => r.unwrap(),
            };
            let bytes = got.bytes().await.unwrap();
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, bytes).unwrap();
        }
    });
}

/// A small deterministic PRNG (xorshift64*) for seeded test schedules.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Prints a measured figure and appends it to `target/tmp/figures.txt`, which
/// `scripts/test.sh` prints after the tests (cargo hides a passing test's output).
pub fn report_figure(line: &str) {
    use std::io::Write as _;
    eprintln!("{line}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("figures.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{line}");
    }
}

//! `cargo bench --bench streaming`: streaming compaction against the download path (issue 18),
//! in one run on a real S3 server (SeaweedFS).
//!
//! One stream of `BENCH_BLOCKS` (default 12) 2h blocks of `BENCH_SERIES` series (default 50,000)
//! is generated once into the target's tmp dir and uploaded under a fresh prefix for every run. Each run is one `compactd run` (one shot,
//! downsampling off, delete delay 0) that compacts the group as Thanos' planner does, either
//! streaming (the default) or with `--compact.download-blocks` and `--data-dir` on this
//! machine's disk. compactd talks to the store through a counting TCP proxy, so the bytes it
//! sends and receives are measured outside it. Per path: wall time, peak RSS (`ru_maxrss`),
//! bytes the process wrote to disk (`ru_oublock` × 512: what it dirtied in the page cache of a
//! real file system) and bytes to and from the store; then the ratios, with the goals
//! (streaming ≥ 1.3x faster, 0 disk bytes, peak RSS ≤ download + 64 MiB).
//!
//! The floor: the same client reading every input file once and writing as many bytes as the
//! compacted blocks hold, over the same proxy, with no compaction (ranged GETs of 8 MiB, 8 MiB
//! parts): what moving the data costs at least; the streaming path's wall time is printed as a
//! multiple of it. `BENCH_RUNS` (default 1) runs of each path; medians are reported.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::proxy::Proxy;
use common::seaweed::Seaweed;
use common::{block_dirs, generate_stream, runtime, upload_dir};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use support::{env_or, median, run_measured, Measure};

/// Bytes of one GET or one part of the floor's transfers.
const FLOOR_PIECE_BYTES: u64 = 8 << 20;

/// What one run of a path measured.
struct Figures {
    measure: Measure,
    to_store: u64,
    from_store: u64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks benches to list themselves.
    }
    let series: usize = env_or("BENCH_SERIES", 50_000);
    let blocks: u32 = env_or("BENCH_BLOCKS", 12);
    let runs: usize = env_or("BENCH_RUNS", 1).max(1);
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("streaming-{series}x{blocks}"));
    let generated = data.join("generated");
    let done = data.join("generated.done");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&data);
        let hours = blocks * 2;
        eprintln!(
            "generating {blocks} x 2h blocks of {series} series into {}",
            generated.display()
        );
        generate_stream(&generated, series, hours, "cluster=bench", 1, &[]);
        std::fs::write(&done, "").unwrap();
    }
    let input_bytes = dir_bytes(&generated);
    let s3 = Seaweed::start()
        .expect("the benchmark needs SeaweedFS: set COMPACTD_WEED or run scripts/test.sh once");
    let proxy = Proxy::start(s3.endpoint.parse().expect("weed's endpoint is an address"));
    let via_proxy = |prefix: &str| objstore_yaml(&s3, &proxy.addr().to_string(), prefix);
    println!(
        "streaming bench: {blocks} x 2h blocks of {series} series, {:.1} MiB of block files, SeaweedFS behind a counting proxy",
        input_bytes as f64 / 1048576.0
    );
    let (mut stream, mut download) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (downloads, out) in [(true, &mut download), (false, &mut stream)] {
            let name = if downloads { "download" } else { "stream" };
            let prefix = format!("{name}-{run}");
            upload_dir(&objstore_yaml(&s3, &s3.endpoint, &prefix), &generated);
            let figures = compact(&proxy, &via_proxy(&prefix), &data.join(&prefix), downloads);
            println!(
                "  {name:>8} run {run}: {:.2} s ({:.2} s CPU), peak RSS {:.0} MiB, disk written {:.1} MiB, to store {:.1} MiB, from store {:.1} MiB",
                figures.measure.seconds,
                figures.measure.cpu_seconds,
                figures.measure.peak_rss_kb as f64 / 1024.0,
                figures.measure.disk_written_bytes as f64 / 1048576.0,
                figures.to_store as f64 / 1048576.0,
                figures.from_store as f64 / 1048576.0
            );
            out.push(figures);
        }
    }
    let output_bytes = compacted_bytes(&objstore_yaml(&s3, &s3.endpoint, "stream-0"));
    upload_dir(&objstore_yaml(&s3, &s3.endpoint, "floor"), &generated);
    let floor = floor_seconds(&via_proxy("floor"), &generated, output_bytes);
    report(&stream, &download, floor, output_bytes);
}

/// The objstore YAML for `prefix` of the bench bucket at `endpoint`.
fn objstore_yaml(s3: &Seaweed, endpoint: &str, prefix: &str) -> String {
    format!(
        "type: S3\nconfig:\n  bucket: {}\n  endpoint: {endpoint}\n  access_key: {}\n  secret_key: {}\n  insecure: true\nprefix: {prefix}\n",
        s3.bucket, s3.access_key, s3.secret_key
    )
}

/// One `compactd run` of the bucket `config`, measured.
fn compact(proxy: &Proxy, config: &str, data_dir: &Path, downloads: bool) -> Figures {
    let _ = std::fs::remove_dir_all(data_dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compactd"));
    cmd.args(["--log.level=warn", "run", "--objstore.config", config])
        .arg("--downsampling.disable")
        .args(["--delete-delay", "0s", "--consistency-delay", "0s"])
        .arg("--data-dir")
        .arg(data_dir);
    if downloads {
        cmd.arg("--compact.download-blocks");
    }
    let before = proxy.stats();
    let (measure, _) = run_measured(&mut cmd);
    let after = proxy.stats();
    let _ = std::fs::remove_dir_all(data_dir);
    Figures {
        measure,
        to_store: after.forwarded_to_target - before.forwarded_to_target,
        from_store: after.forwarded_to_client - before.forwarded_to_client,
    }
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut files = Vec::new();
    common::collect_files(dir, &mut files);
    files.iter().map(|f| f.metadata().unwrap().len()).sum()
}

/// Bytes of the `index` and `chunks/*` of the blocks compactd made under `config` (level ≥ 2).
fn compacted_bytes(config: &str) -> u64 {
    let bucket = common::open(config);
    runtime().block_on(async {
        let objects: Vec<object_store::ObjectMeta> =
            futures::TryStreamExt::try_collect(bucket.store.list(None))
                .await
                .unwrap();
        let mut total = 0;
        for o in &objects {
            let path = o.location.as_ref();
            let Some((block, "meta.json")) = path.split_once('/') else {
                continue;
            };
            let meta = bucket
                .store
                .get(&o.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let meta = compactd::tsdb::meta::BlockMeta::parse(&meta, Path::new(path)).unwrap();
            if meta.compaction.level < 2 {
                continue;
            }
            total += objects
                .iter()
                .filter(|f| {
                    let rel = f.location.as_ref().strip_prefix(&format!("{block}/"));
                    rel.is_some_and(|r| r == "index" || r.starts_with("chunks/"))
                })
                .map(|f| f.size)
                .sum::<u64>();
        }
        total
    })
}

/// Reads every input file once (ranged GETs, one file at a time) and writes `output_bytes`
/// in multipart uploads of the same piece size: the transfers' floor, in seconds.
fn floor_seconds(config: &str, generated: &Path, output_bytes: u64) -> f64 {
    let bucket = common::open(config);
    let store = bucket.store;
    let mut inputs = Vec::new();
    for b in block_dirs(generated) {
        let mut files = Vec::new();
        common::collect_files(&b, &mut files);
        for f in files {
            let rel = f
                .strip_prefix(generated)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.ends_with("/index") || rel.contains("/chunks/") {
                inputs.push((rel, f.metadata().unwrap().len()));
            }
        }
    }
    runtime().block_on(async {
        let started = Instant::now();
        for (rel, len) in &inputs {
            let path = ObjectPath::from(rel.as_str());
            let mut at = 0;
            while at < *len {
                let end = (at + FLOOR_PIECE_BYTES).min(*len);
                store.get_range(&path, at..end).await.unwrap();
                at = end;
            }
        }
        let path = ObjectPath::from("floor/output");
        let mut upload = store.put_multipart(&path).await.unwrap();
        let mut left = output_bytes;
        while left > 0 {
            let n = left.min(FLOOR_PIECE_BYTES);
            upload.put_part(vec![0u8; n as usize].into()).await.unwrap();
            left -= n;
        }
        upload.complete().await.unwrap();
        started.elapsed().as_secs_f64()
    })
}

fn report(stream: &[Figures], download: &[Figures], floor: f64, output_bytes: u64) {
    let med = |v: &[Figures], f: &dyn Fn(&Figures) -> f64| median(v.iter().map(f).collect());
    let secs = |f: &Figures| f.measure.seconds;
    let rss = |f: &Figures| f.measure.peak_rss_kb as f64 / 1024.0;
    let disk = |f: &Figures| f.measure.disk_written_bytes as f64;
    let (ts, td) = (med(stream, &secs), med(download, &secs));
    let (rs, rd) = (med(stream, &rss), med(download, &rss));
    println!("medians of {} run(s):", stream.len());
    println!(
        "  download: {td:.2} s, peak RSS {rd:.0} MiB, disk written {:.1} MiB",
        med(download, &disk) / 1048576.0
    );
    println!(
        "  stream:   {ts:.2} s, peak RSS {rs:.0} MiB, disk written {:.1} MiB",
        med(stream, &disk) / 1048576.0
    );
    println!(
        "  speed-up stream/download: {:.2}x (goal >= 1.3x); RSS stream - download: {:+.0} MiB (goal <= +64 MiB)",
        td / ts,
        rs - rd
    );
    println!(
        "  floor (read the inputs once, write {:.1} MiB, no compaction): {floor:.2} s; streaming takes {:.2}x the floor",
        output_bytes as f64 / 1048576.0,
        ts / floor
    );
}

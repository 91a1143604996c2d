//! `cargo bench --bench scale`: a large bucket, on the filesystem and on S3 (SeaweedFS `weed
//! mini`, started by the benchmark): what one full sync and the planning of every group cost.
//!
//! The bucket: `BENCH_GROUPS` groups (default 200, one external label set each) of
//! `BENCH_BLOCKS_PER_GROUP` 2h blocks (default 25, so 5,000 blocks), each a real block of
//! `BENCH_SERIES` series (default 10) copied from one generated template with a new ULID and
//! new labels. Each run is `compactd tools bucket plan --consistency-delay 0s` as a child
//! process (one sync: a recursive listing and a GET per meta.json; then the filters, the
//! grouping and Thanos' planner over every group), `BENCH_RUNS` times (default 3) after a
//! warm-up. It prints the median sync time and blocks/s, the planning time, the process's
//! wall time and peak RSS (`wait4`'s `ru_maxrss`), and on S3 the requests of one sync by type,
//! read off SeaweedFS's own `SeaweedFS_s3_request_total`.
//!
//! Baseline, measured in the same run: the reads no sync can avoid, done in this process with
//! the same concurrency and nothing parsed: one listing, then a GET of every meta.json. The
//! ratio sync/baseline is the cost of everything else (parsing, the markers' bookkeeping).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use compactd::driver::store::META_FETCH_CONCURRENCY;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::{BlockMeta, META_FILENAME};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use common::seaweed::Seaweed;
use support::{env_or, median, run_measured};

/// What one configuration of the benchmark measured.
struct Row {
    bucket: &'static str,
    sync_seconds: f64,
    plan_seconds: f64,
    wall_seconds: f64,
    peak_rss_mib: f64,
    baseline_seconds: f64,
    requests: BTreeMap<String, u64>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks benches to list themselves.
    }
    let bin = env!("CARGO_BIN_EXE_compactd");
    let groups: usize = env_or("BENCH_GROUPS", 200);
    let per_group: usize = env_or("BENCH_BLOCKS_PER_GROUP", 25);
    let series: usize = env_or("BENCH_SERIES", 10);
    let runs: usize = env_or("BENCH_RUNS", 3).max(1);
    let blocks = groups * per_group;
    let data =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scale-{groups}x{per_group}x{series}"));
    let bucket = data.join("bucket");
    if !bucket.is_dir() {
        eprintln!("building the bucket in {}", bucket.display());
        build_bucket(bin, &data, &bucket, groups, per_group, series);
    }
    println!(
        "scale benchmark: {blocks} blocks in {groups} groups ({per_group} x 2h blocks of {series} series each), median of {runs} runs after a warm-up, {} cores",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let fs_yaml = format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        bucket.display()
    );
    let mut rows = vec![measure("filesystem", bin, &fs_yaml, None, runs, blocks)];
    let Some(weed) = Seaweed::start() else {
        eprintln!(
            "error: SeaweedFS (weed) is missing: run scripts/test.sh once, or set COMPACTD_WEED"
        );
        std::process::exit(1);
    };
    let s3_yaml = weed.objstore_yaml();
    let started = Instant::now();
    let objects = upload(&s3_yaml, &bucket);
    eprintln!(
        "uploaded {objects} objects to S3 in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    rows.push(measure("s3", bin, &s3_yaml, Some(&weed), runs, blocks));
    print_rows(&rows, blocks);
}

/// Generates one group's blocks, then copies them into `groups` groups with fresh ids and
/// labels (index and chunks hard-linked: sync never reads them, but they are listed).
fn build_bucket(
    bin: &str,
    data: &Path,
    bucket: &Path,
    groups: usize,
    per_group: usize,
    series: usize,
) {
    let template = data.join("template");
    let _ = std::fs::remove_dir_all(&template);
    let st = Command::new(bin)
        .args(["tools", "generate", "--series", &series.to_string()])
        .args(["--hours", &(2 * per_group).to_string()])
        .args(["--external-labels", "cluster=template", "--out"])
        .arg(&template)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("generate");
    assert!(st.success(), "generate failed");
    let blocks = common::block_dirs(&template);
    assert_eq!(blocks.len(), per_group, "template blocks");
    let building = data.join("bucket.partial");
    let _ = std::fs::remove_dir_all(&building);
    for g in 0..groups {
        for (i, block) in blocks.iter().enumerate() {
            let mut meta = BlockMeta::read_dir(block).expect("template meta");
            let id = BlockId::from_parts(meta.ulid.timestamp_ms(), ((g as u128) << 32) | i as u128);
            meta.ulid = id;
            meta.compaction.sources = vec![id];
            let thanos = meta.thanos.as_mut().expect("template blocks have labels");
            thanos.labels = BTreeMap::from([("cluster".to_string(), format!("c{g:04}"))]);
            let dir = building.join(id.to_string());
            std::fs::create_dir_all(dir.join("chunks")).expect("block dir");
            for file in ["index", "chunks/000001"] {
                std::fs::hard_link(block.join(file), dir.join(file)).expect("link");
            }
            std::fs::write(dir.join(META_FILENAME), meta.to_json()).expect("meta.json");
        }
    }
    std::fs::rename(&building, bucket).expect("bucket in place");
    std::fs::remove_dir_all(&template).expect("template removed");
}

/// Uploads the bucket directory, 64 objects at a time; returns the object count.
fn upload(yaml: &str, dir: &Path) -> usize {
    let store = common::open(yaml).store;
    let mut files = Vec::new();
    common::collect_files(dir, &mut files);
    let n = files.len();
    multi_thread().block_on(async {
        futures::stream::iter(files)
            .map(|f| {
                let store = Arc::clone(&store);
                let name = f.strip_prefix(dir).expect("under the bucket").to_owned();
                async move {
                    let bytes = std::fs::read(&f).expect("read");
                    let path = ObjectPath::from(name.to_str().expect("utf-8 name"));
                    store.put(&path, bytes.into()).await.map(|_| ())
                }
            })
            .buffer_unordered(64)
            .try_collect::<()>()
            .await
            .expect("upload");
    });
    n
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the plan tool (a warm-up, then `runs` measured runs) and the baseline.
fn measure(
    name: &'static str,
    bin: &str,
    yaml: &str,
    weed: Option<&Seaweed>,
    runs: usize,
    blocks: usize,
) -> Row {
    let (mut sync, mut plan, mut wall, mut rss) = (vec![], vec![], vec![], 0i64);
    let mut requests = BTreeMap::new();
    for run in 0..=runs {
        let before = weed.map(Seaweed::s3_requests);
        let (m, stdout) = run_measured(
            Command::new(bin)
                .args(["tools", "bucket", "plan", "--consistency-delay", "0s"])
                .args(["--objstore.config", yaml]),
        );
        let (dirs, sync_s) = parse_sync_line(&stdout);
        assert_eq!(dirs, blocks, "the sync saw every block: {stdout}");
        if let (Some(before), Some(w)) = (before, weed) {
            requests = w
                .s3_requests()
                .into_iter()
                .map(|(k, after)| {
                    let was = before.get(&k).copied().unwrap_or(0);
                    (k, after - was)
                })
                .filter(|(_, n)| *n > 0)
                .collect();
        }
        if run > 0 {
            sync.push(sync_s);
            plan.push(parse_plan_seconds(&stdout));
            wall.push(m.seconds);
            rss = rss.max(m.peak_rss_kb);
        }
    }
    let store = common::open(yaml).store;
    let baseline: Vec<f64> = (0..runs)
        .map(|_| baseline_seconds(&store, blocks))
        .collect();
    Row {
        bucket: name,
        sync_seconds: median(sync),
        plan_seconds: median(plan),
        wall_seconds: median(wall),
        peak_rss_mib: rss as f64 / 1024.0,
        baseline_seconds: median(baseline),
        requests,
    }
}

/// `sync: N block directories in X.XXXs ...` → (N, X).
fn parse_sync_line(stdout: &str) -> (usize, f64) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sync: "))
        .unwrap_or_else(|| panic!("no sync line in: {stdout}"));
    let mut words = line.split_whitespace();
    let dirs = words.next().and_then(|w| w.parse().ok()).expect("count");
    let seconds = words
        .nth(3)
        .and_then(|w| w.trim_end_matches('s').parse().ok())
        .expect("seconds");
    (dirs, seconds)
}

/// `plan: ... in X.XXXs` → X.
fn parse_plan_seconds(stdout: &str) -> f64 {
    stdout
        .lines()
        .find(|l| l.starts_with("plan: "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|w| w.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no plan line in: {stdout}"))
}

/// One listing and a GET of every meta.json, `META_FETCH_CONCURRENCY` at a time.
fn baseline_seconds(store: &Arc<dyn ObjectStore>, blocks: usize) -> f64 {
    multi_thread().block_on(async {
        let started = Instant::now();
        let listed: Vec<_> = store.list(None).try_collect().await.expect("list");
        let metas: Vec<ObjectPath> = listed
            .into_iter()
            .map(|o| o.location)
            .filter(|p| p.filename() == Some(META_FILENAME))
            .collect();
        assert_eq!(metas.len(), blocks, "every meta.json listed");
        let bytes: usize = futures::stream::iter(metas)
            .map(|p| async move { store.get(&p).await?.bytes().await.map(|b| b.len()) })
            .buffer_unordered(META_FETCH_CONCURRENCY)
            .try_fold(0, |acc, n| async move { Ok(acc + n) })
            .await
            .expect("get");
        assert!(bytes > 0);
        started.elapsed().as_secs_f64()
    })
}

fn print_rows(rows: &[Row], blocks: usize) {
    println!(
        "{:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>9}  requests per sync",
        "bucket",
        "sync (s)",
        "blocks/s",
        "plan (s)",
        "wall (s)",
        "RSS (MiB)",
        "baseline (s)",
        "sync/base"
    );
    for r in rows {
        let requests: Vec<String> = r.requests.iter().map(|(k, n)| format!("{k}={n}")).collect();
        println!(
            "{:<11} {:>9.3} {:>9.0} {:>9.4} {:>9.3} {:>9.1} {:>12.3} {:>8.2}x  {}",
            r.bucket,
            r.sync_seconds,
            blocks as f64 / r.sync_seconds,
            r.plan_seconds,
            r.wall_seconds,
            r.peak_rss_mib,
            r.baseline_seconds,
            r.sync_seconds / r.baseline_seconds,
            if requests.is_empty() {
                "(no requests: local files)".to_string()
            } else {
                requests.join(" ")
            }
        );
    }
}

//! `cargo bench --bench scaleout`: what a second replica buys (issue 17). The same bucket is
//! compacted by one `--ownership=stream` replica pinned to one core (`taskset -c 0`) and by two
//! replicas pinned to one core each (`taskset -c 0` and `-c 1`), electing through a real etcd;
//! it prints the time until the bucket is fully compacted for each, and the ratio (goal ≥ 1.8).
//!
//! The bucket: `BENCH_STREAMS` streams (default 8, one external label set each) of
//! `BENCH_HOURS` hours (default 48) of 2h blocks with `BENCH_SERIES` series (default 2000),
//! generated once into the target's tmp dir. Each run gets a fresh copy in a filesystem bucket
//! under `BENCH_WORK_DIR` (default `/dev/shm`, memory, when it exists), with the replicas'
//! data dirs next to it: no store server competes for the two cores and no shared disk
//! serializes the replicas (on this machine's disk, fsync-bound copies made one replica and
//! two nearly the same speed, measuring the disk, not compactd). The replicas start on an
//! empty bucket, and once every one is a member the blocks are moved in (a rename per block),
//! which starts the clock: the *cold* figure, where every stream is new and its first holder
//! must be elected and wait out the takeover delay. The *warm* figure is the backlog case
//! (streams the replicas already hold get more blocks than they keep up with): the first
//! block of each stream is moved in first, the clock starts once every stream is held, and
//! then the rest are moved in. "Fully compacted": the bucket's blocks without a deletion mark are
//! exactly those a single instance (`compactd compact`, one shot, also on core 0, measured
//! too) leaves, by labels and time range. Timings of the HA layer as in the HA tests (3 s
//! TTL, 2 s takeover delay, 1 s rebalance delay, 1 s `--wait-interval`); both runs pay them.
//! `BENCH_RUNS` (default 1) runs of each cluster size; the median is reported.
//!
//! The machine's ceiling, measured in the same run: the streams split in two halves, one half
//! compacted alone on core 0, then both at once on cores 0 and 1 (one-shot runs, no etcd):
//! 2 × alone / together is what two processes can gain here at most; each speed-up is also
//! printed as a share of it.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::etcd::Etcd;
use common::replicas::{Replica, TIMING_FLAGS};
use common::run::CompactdRun;
use common::{block_dirs, copy_dir, generate_stream};
use support::{env_or, median, run_measured, Measure};

/// How long one run may take before the benchmark gives up.
const RUN_LIMIT: Duration = Duration::from_secs(3600);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks benches to list themselves.
    }
    let streams: usize = env_or("BENCH_STREAMS", 8);
    let series: usize = env_or("BENCH_SERIES", 2000);
    let hours: u32 = env_or("BENCH_HOURS", 48);
    let runs: usize = env_or("BENCH_RUNS", 1).max(1);
    let data =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scaleout-{streams}x{series}x{hours}"));
    let src = data.join("src");
    if !data.join("generated").exists() {
        let _ = std::fs::remove_dir_all(&data);
        for i in 0..streams {
            let labels = format!("cluster=bench-{i:02}");
            generate_stream(&src, series, hours, &labels, 7000 + i as u64, &[]);
        }
        std::fs::write(data.join("generated"), "").unwrap();
    }
    println!(
        "scaleout: {streams} streams x {hours}h of 2h blocks x {series} series ({} blocks)",
        block_dirs(&src).len()
    );

    let shm = Path::new("/dev/shm");
    let default_work = if shm.is_dir() { shm } else { data.as_path() };
    let work = std::env::var_os("BENCH_WORK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_work.join(format!("compactd-scaleout-{}", std::process::id())));
    println!("  work dir: {}", work.display());
    let (single, expected) = single_instance(&work, &src);
    println!(
        "  single instance, one shot, core 0:       {:8.2} s (peak RSS {} MiB)",
        single.seconds,
        single.peak_rss_kb / 1024
    );
    let (alone, together, most) = ceiling(&work, &src, runs);
    println!(
        "  the machine's ceiling: half the streams alone on core 0 {alone:.2} s, both halves \
         at once on cores 0 and 1 {together:.2} s (medians of {runs}): {most:.2}x at most"
    );
    let etcd = Etcd::start().expect("etcd is needed (scripts/test.sh installs it)");
    for warm in [false, true] {
        let median_of = |cpus: &[&str]| {
            median(
                (0..runs)
                    .map(|_| cluster_run(&etcd, &work, &src, cpus, &expected, warm))
                    .collect(),
            )
        };
        let what = if warm {
            "warm: streams already held"
        } else {
            "cold: every stream new"
        };
        println!("  {what}");
        let one = median_of(&["0"]);
        println!("  1 replica (--ownership=stream), core 0: {one:8.2} s (median of {runs})");
        let two = median_of(&["0", "1"]);
        println!("  2 replicas, cores 0 and 1:               {two:8.2} s (median of {runs})");
        println!(
            "  speed-up of the second replica: {:.2}x (goal >= 1.8x; {:.0}% of the machine's \
             ceiling)",
            one / two,
            100.0 * one / two / most
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// The blocks of `bucket` without a deletion mark: (external labels, min time, max time).
fn live_blocks(bucket: &Path) -> BTreeSet<(String, i64, i64)> {
    block_dirs(bucket)
        .into_iter()
        .filter(|b| !b.join("deletion-mark.json").exists())
        .filter_map(|b| {
            // A block being deleted may vanish between the listing and this read.
            let bytes = std::fs::read(b.join("meta.json")).ok()?;
            let meta: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            let labels = meta["thanos"]["labels"].to_string();
            Some((labels, meta["minTime"].as_i64()?, meta["maxTime"].as_i64()?))
        })
        .collect()
}

/// Compacts a copy of `src` with one `compactd compact` on core 0: its wall time and peak
/// RSS, and the blocks it leaves.
fn single_instance(data: &Path, src: &Path) -> (Measure, BTreeSet<(String, i64, i64)>) {
    one_shot(&data.join("single"), src, "0")
}

/// What two cores can give at most on this machine, with no etcd and nothing shared but the
/// machine (memory bus, kernel): the streams of `src` split in two halves, one half compacted
/// by a one-shot `compactd compact` on core 0 alone, then both at once, one per core. Returns
/// the medians of `runs` runs (alone, together) and 2 × alone / together.
fn ceiling(data: &Path, src: &Path, runs: usize) -> (f64, f64, f64) {
    let dir = fresh(&data.join("ceiling"));
    let halves = [dir.join("half-a"), dir.join("half-b")];
    let labels_of = |block: &Path| {
        let bytes = std::fs::read(block.join("meta.json")).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        meta["thanos"]["labels"].to_string()
    };
    let blocks = block_dirs(src);
    // Streams in label order, every other one to each half.
    let streams: Vec<String> = blocks
        .iter()
        .map(|b| labels_of(b))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for block in &blocks {
        let i = streams.binary_search(&labels_of(block)).unwrap();
        copy_dir(block, &halves[i % 2].join(block.file_name().unwrap()));
    }
    let alone = median(
        (0..runs)
            .map(|_| one_shot(&dir.join("alone"), &halves[0], "0").0.seconds)
            .collect(),
    );
    let together = median(
        (0..runs)
            .map(|_| {
                std::thread::scope(|s| {
                    let a = s.spawn(|| one_shot(&dir.join("a"), &halves[0], "0").0.seconds);
                    let b = s.spawn(|| one_shot(&dir.join("b"), &halves[1], "1").0.seconds);
                    a.join().unwrap().max(b.join().unwrap())
                })
            })
            .collect(),
    );
    (alone, together, 2.0 * alone / together)
}

/// Compacts a copy of `src` in `dir` with one `compactd compact` pinned to `cpu`: its wall
/// time and peak RSS, and the blocks it leaves.
fn one_shot(dir: &Path, src: &Path, cpu: &str) -> (Measure, BTreeSet<(String, i64, i64)>) {
    let dir = fresh(dir);
    let bucket = dir.join("bucket");
    copy_dir(src, &bucket);
    let run = CompactdRun::on_dir(&bucket)
        .subcommand("compact")
        .data_dir(&dir.join("data"))
        .flag("--delete-delay", "0s")
        .flag("--consistency-delay", "0s")
        .flag("--log.level", "warn")
        .arg("--downsampling.disable");
    let mut cmd = std::process::Command::new("taskset");
    cmd.args(["-c", cpu, env!("CARGO_BIN_EXE_compactd")])
        .args(run.args());
    let (measure, _) = run_measured(&mut cmd);
    (measure, live_blocks(&bucket))
}

/// Starts one replica per entry of `cpus` (pinned to it) on an empty bucket, moves a copy of
/// `src` in once all are members (when `warm`, each stream's first block, then the rest once
/// every stream is held), and returns the seconds from the last move until the bucket holds
/// `expected`.
fn cluster_run(
    etcd: &Etcd,
    data: &Path,
    src: &Path,
    cpus: &[&str],
    expected: &BTreeSet<(String, i64, i64)>,
    warm: bool,
) -> f64 {
    let n = cpus.len();
    let dir = fresh(&data.join(format!("replicas-{n}")));
    let (bucket, staging) = (dir.join("bucket"), dir.join("staging"));
    std::fs::create_dir_all(&bucket).unwrap();
    copy_dir(src, &staging);
    let prefix = format!("/compactd/bench-{n}-{}", std::process::id());
    let replicas: Vec<Replica> = cpus
        .iter()
        .enumerate()
        .map(|(i, cpu)| {
            let name = format!("r{}", i + 1);
            let run = CompactdRun::on_dir(&bucket)
                .subcommand("compact")
                .data_dir(&dir.join(format!("data-{name}")))
                .node(&name)
                .wait()
                .wait_interval("1s")
                .flag("--delete-delay", "0s")
                .flag("--consistency-delay", "0s")
                .arg("--downsampling.disable")
                .extra(&TIMING_FLAGS)
                .flag("--etcd.url", &etcd.endpoint())
                .flag("--etcd.prefix", &prefix)
                .flag("--ownership", "stream")
                .flag("--streams.rebalance-delay", "1s");
            Replica::spawn_pinned(&dir, &name, &run.args(), Some(cpu))
        })
        .collect();
    wait_members(etcd, &prefix, n);
    // Each replica reads the members four times a second: let all see all before any stream
    // appears, so that the first assignment is the balanced one.
    std::thread::sleep(Duration::from_secs(1));
    if warm {
        let streams = move_first_blocks(&staging, &bucket);
        wait_held(&replicas, streams);
    }
    let start = Instant::now();
    for block in block_dirs(&staging) {
        std::fs::rename(&block, bucket.join(block.file_name().unwrap())).unwrap();
    }
    while live_blocks(&bucket) != *expected {
        assert!(
            start.elapsed() < RUN_LIMIT,
            "{n} replicas did not finish within {RUN_LIMIT:?}; logs in {}",
            dir.display()
        );
        for r in &replicas {
            assert!(
                !r.log_text().contains("halting"),
                "{} halted:\n{}",
                r.name,
                r.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seconds = start.elapsed().as_secs_f64();
    for r in &replicas {
        println!(
            "    {}: {} blocks uploaded",
            r.name,
            r.count("uploaded block")
        );
    }
    seconds
}

/// Moves the first block (by ULID: the oldest) of each stream of `staging` into `bucket`;
/// returns how many streams there are.
fn move_first_blocks(staging: &Path, bucket: &Path) -> usize {
    let mut first: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for block in block_dirs(staging) {
        let bytes = std::fs::read(block.join("meta.json")).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let labels = meta["thanos"]["labels"].to_string();
        first.entry(labels).or_insert(block);
    }
    for block in first.values() {
        std::fs::rename(block, bucket.join(block.file_name().unwrap())).unwrap();
    }
    first.len()
}

/// Waits until the replicas hold `streams` streams in all (their logs say so).
fn wait_held(replicas: &[Replica], streams: usize) {
    let start = Instant::now();
    while replicas
        .iter()
        .map(|r| r.count("holding the stream; writing"))
        .sum::<usize>()
        < streams
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{streams} streams held"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `n` members are registered under `<prefix>/election/`.
fn wait_members(etcd: &Etcd, prefix: &str, n: usize) {
    let start = Instant::now();
    loop {
        let out = etcd
            .etcdctl()
            .expect("etcdctl")
            .args(["get", "--prefix", "--keys-only"])
            .arg(format!("{prefix}/election/"))
            .output()
            .expect("run etcdctl");
        let keys = String::from_utf8_lossy(&out.stdout);
        if keys.lines().filter(|l| !l.trim().is_empty()).count() == n {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{n} members");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `dir`, emptied.
fn fresh(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    dir.to_path_buf()
}

//! Scale-out, end to end (`docs/scaleout.md`): three real `compactd compact --wait
//! --ownership=stream` (the default) replicas, a real etcd and a SeaweedFS S3 bucket of 30 streams.
//!
//! - Every replica does its share (10 ± 1 streams once stable, each uploads blocks) and the
//!   bucket ends exactly as one single instance leaves a copy of it: the same blocks, byte for
//!   byte (index and chunks), with the same sources and stats. `tools bucket audit` is clean:
//!   no stream was written by two replicas under one epoch, or under an older epoch after a
//!   newer one began. Each replica's `thanos_blocks_meta_synced{state="loaded"}` counts the
//!   blocks of the streams it holds: over the three, every block once.
//! - kill -9 of a replica: each of its streams is held by another and committing again (a
//!   block marked for deletion in it, put in after the kill, is deleted) within lease TTL +
//!   takeover delay + 2 s; the measured times are printed.
//! - SIGSTOP of a replica past its TTL: the others take its streams; after SIGCONT it sends no
//!   mutating request to the store (every request it sends goes through a proxy that records
//!   the request lines, `common::proxy`), holds nothing, and rejoins as a member (its election
//!   key is back in etcd); once the rebalance delay has passed it holds streams again.
//!
//! Timings as in `tests/ha.rs` (3 s TTL, 2 s takeover delay, `common::replicas`); the tests of
//! this file run one at a time so that six replicas never share the two cores of a CI machine.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::etcd::Etcd;
use common::proxy::Proxy;
use common::replicas::*;
use common::seaweed::Seaweed;
use common::*;

/// The streams of the bucket.
const STREAMS: usize = 30;
/// The replicas.
const REPLICAS: usize = 3;
/// How long the bucket may take to be compacted by the cluster (debug build, two cores).
const CONVERGE: Duration = Duration::from_secs(300);

/// Serializes the tests of this file.
static SERIAL: Mutex<()> = Mutex::new(());

/// The external labels of stream `i`.
fn stream_labels(i: usize) -> String {
    format!("cluster=c{i:02},env=prod")
}

/// Generates `hours` of 2h blocks with `series` series for each of the [`STREAMS`] streams.
fn generate_bucket(dir: &Path, series: usize, hours: u32) {
    for i in 0..STREAMS {
        generate_stream(dir, series, hours, &stream_labels(i), 1000 + i as u64, &[]);
    }
}

/// Uploads the blocks in `dir` with every `meta.json` last, so that a replica that lists the
/// bucket meanwhile sees whole blocks or none (a block without meta.json is a partial upload
/// to it).
fn upload_meta_last(config: &str, dir: &Path) {
    use object_store::ObjectStoreExt;
    let bucket = open(config);
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    files.sort_by_key(|f| f.ends_with("meta.json"));
    runtime().block_on(async {
        for f in files {
            let name = f.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
            let data = std::fs::read(&f).unwrap();
            let path = object_store::path::Path::from(name);
            bucket.store.put(&path, data.into()).await.unwrap();
        }
    });
}

/// A fingerprint of a file's bytes (equal bytes, equal fingerprint, within one test process).
fn fingerprint(path: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .hash(&mut h);
    h.finish()
}

/// The blocks of a downloaded bucket that are not marked for deletion, by their external
/// labels: time range, level, sources, stats, and fingerprints of the index and each chunk
/// segment. Block ids are left out (a compaction draws a new one).
fn final_blocks(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for block in block_dirs(dir) {
        if block.join("deletion-mark.json").exists() {
            continue;
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(block.join("meta.json")).unwrap()).unwrap();
        let mut chunks = Vec::new();
        collect_files(&block.join("chunks"), &mut chunks);
        chunks.sort();
        let chunk_prints: Vec<u64> = chunks.iter().map(|c| fingerprint(c)).collect();
        let mut sources: Vec<String> = meta["compaction"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        sources.sort();
        out.entry(meta["thanos"]["labels"].to_string())
            .or_default()
            .insert(format!(
                "{}..{} level {} sources {sources:?} stats {} index {:x} chunks {chunk_prints:x?}",
                meta["minTime"],
                meta["maxTime"],
                meta["compaction"]["level"],
                meta["stats"],
                fingerprint(&block.join("index")),
            ));
    }
    out
}

/// What one single instance leaves of a copy of the bucket in `src`: one `compactd compact`
/// run (no `--wait`: it compacts until nothing is left to plan) with the cluster's flags.
fn single_instance_result(src: &Path, work: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let bucket = work.join("reference");
    copy_dir(src, &bucket);
    let out = CompactdRun::on_dir(&bucket)
        .subcommand("compact")
        .data_dir(&work.join("data-reference"))
        .flag("--delete-delay", "0s")
        .flag("--consistency-delay", "0s")
        .arg("--downsampling.disable")
        .output();
    assert!(
        out.status.success(),
        "the single instance failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    final_blocks(&bucket)
}

/// `/api/v1/streams` of a replica: (stream, assigned, held, epoch) for each stream it knows.
fn streams_of(r: &Replica) -> Option<Vec<(String, String, bool, u64)>> {
    let (status, body) = try_http_get(r.port, "/api/v1/streams").ok()?;
    assert_eq!(status, 200, "{} /api/v1/streams: {body}", r.name);
    let v: serde_json::Value = serde_json::from_str(&body).expect("/api/v1/streams JSON");
    let streams = v["streams"].as_array()?;
    Some(
        streams
            .iter()
            .map(|s| {
                (
                    s["stream"].as_str().unwrap().to_string(),
                    s["assigned"].as_str().unwrap().to_string(),
                    s["held"].as_bool().unwrap(),
                    s["epoch"].as_u64().unwrap(),
                )
            })
            .collect(),
    )
}

/// The streams replica `r` holds now, with their epochs.
fn held_by(r: &Replica) -> BTreeMap<String, u64> {
    streams_of(r)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, _, held, _)| *held)
        .map(|(s, _, _, e)| (s, e))
        .collect()
}

/// The members in etcd: the values (node names) of the keys under `<prefix>/election/`.
fn members(etcd: &Etcd, prefix: &str) -> BTreeSet<String> {
    let mut cmd = etcd.etcdctl().expect("etcdctl");
    let out = cmd
        .args(["get", "--prefix", "--print-value-only"])
        .arg(format!("/compactd/{prefix}/election/"))
        .output()
        .expect("run etcdctl");
    assert!(out.status.success(), "etcdctl get failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// Milliseconds since midnight (UTC) of a log line's `ts=` field, if it has one.
fn logged_ms_of_day(line: &str) -> Option<i64> {
    let ts = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("ts="))?;
    let (_, time) = ts.trim_end_matches('Z').split_once('T')?;
    let mut parts = time.split(':');
    let (h, m) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
    );
    let (s, ms) = parts.next()?.split_once('.')?;
    Some(((h * 60 + m) * 60 + s.parse::<i64>().ok()?) * 1000 + ms.parse::<i64>().ok()?)
}

/// Milliseconds since midnight (UTC) now, by the clock the replicas log with.
fn now_ms_of_day() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (since_epoch.as_millis() % 86_400_000) as i64
}

/// For each value of the field `key` on lines of `r`'s log containing `msg` logged after
/// `since` (ms of day), how long after `since` it was first logged.
fn logged_after(r: &Replica, msg: &str, key: &str, since: i64) -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    for line in r.log_text().lines().filter(|l| l.contains(msg)) {
        let Some(at) = logged_ms_of_day(line) else {
            continue;
        };
        let after = (at - since).rem_euclid(86_400_000);
        let value = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='));
        // Lines from before `since` come out as most of a day.
        if let (Some(v), true) = (value, after < 3_600_000) {
            out.entry(v.to_string())
                .or_insert(Duration::from_millis(after as u64));
        }
    }
    out
}

/// A cluster of [`REPLICAS`] stream-mode replicas (`r1`, `r2` and, through `proxy` when
/// given, `r3`) on `config`, every one a member before it returns.
fn stream_cluster(
    etcd: &Etcd,
    dir: &Path,
    config: &str,
    prefix: &str,
    rebalance: &str,
    proxied: Option<&str>,
) -> Cluster {
    let mut cluster = Cluster::new(etcd, dir, config, prefix)
        .wait_interval("2s")
        .ownership("stream")
        .with_flags(&["--streams.rebalance-delay", rebalance]);
    for i in 1..=REPLICAS {
        let name = format!("r{i}");
        match proxied {
            Some(config) if i == REPLICAS => cluster.spawn_on(&name, config),
            _ => cluster.spawn(&name),
        }
    }
    wait_for(SLOW, "every replica to be a member", || {
        (members(etcd, prefix).len() == REPLICAS).then_some(())
    });
    // Each replica reads the members every second: let every one see all of them before the
    // streams appear, so that the first assignment is already the balanced one.
    std::thread::sleep(Duration::from_millis(1500));
    cluster
}

/// Waits until the live replicas hold every one of the `STREAMS` streams between them, each
/// by exactly one, and returns what each holds.
fn all_held(c: &Cluster, limit: Duration) -> (Vec<BTreeMap<String, u64>>, Duration) {
    wait_for(limit, "every stream held by exactly one replica", || {
        let held: Vec<BTreeMap<String, u64>> = c
            .replicas
            .iter()
            .map(|r| {
                if r.alive() {
                    held_by(r)
                } else {
                    BTreeMap::new()
                }
            })
            .collect();
        let total: usize = held.iter().map(BTreeMap::len).sum();
        let distinct: BTreeSet<&String> = held.iter().flat_map(BTreeMap::keys).collect();
        (total == STREAMS && distinct.len() == STREAMS).then_some(held)
    })
}

#[test]
fn three_replicas_share_the_streams_and_compact_as_one_instance_does() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(etcd) = Etcd::start() else { return };
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    generate_bucket(&src, 4, 24);
    let expected = single_instance_result(&src, tmp.path());
    assert_eq!(expected.len(), STREAMS, "one entry per stream");

    let config = s3.objstore_yaml();
    let cluster = stream_cluster(&etcd, tmp.path(), &config, "share", "2s", None);
    let start = Instant::now();
    upload_meta_last(&config, &src);
    let uploaded = start.elapsed();

    let mut polls = 0;
    let (_, took) = wait_for(
        CONVERGE,
        "the bucket to match the single instance's",
        || {
            polls += 1;
            let got = tmp.path().join(format!("poll-{polls}"));
            download_bucket(&config, &got);
            let same = final_blocks(&got) == expected;
            std::fs::remove_dir_all(&got).unwrap();
            if !same {
                std::thread::sleep(Duration::from_secs(1));
            }
            same.then_some(())
        },
    );
    eprintln!(
        "[share] {STREAMS} streams uploaded in {}; the cluster's bucket equals the single \
         instance's {} after the upload began",
        secs(uploaded),
        secs(took)
    );

    let (held, _) = all_held(&cluster, SLOW);
    let (low, high) = (STREAMS / REPLICAS - 1, STREAMS.div_ceil(REPLICAS) + 1);
    for (r, streams) in cluster.replicas.iter().zip(&held) {
        let uploads = r.count("uploaded block");
        eprintln!(
            "[share] {} holds {} streams, uploaded {uploads} blocks",
            r.name,
            streams.len()
        );
        assert!(
            (low..=high).contains(&streams.len()),
            "{} holds {} streams, not {low}..={high}",
            r.name,
            streams.len()
        );
        assert_eq!(
            r.metric("compactd_owned_streams"),
            Some(streams.len() as f64),
            "{}'s compactd_owned_streams",
            r.name
        );
        assert!(uploads > 0, "{} did no compaction", r.name);
    }
    // Each replica's block gauges sum its units: together they count every block once.
    let blocks: usize = expected.values().map(BTreeSet::len).sum();
    let loaded = r#"thanos_blocks_meta_synced{state="loaded"}"#;
    wait_for(
        SLOW,
        "the replicas' loaded blocks to add up to the bucket's",
        || {
            let per: Vec<f64> = cluster
                .replicas
                .iter()
                .map(|r| r.metric(loaded).unwrap_or(0.0))
                .collect();
            (per.iter().sum::<f64>() == blocks as f64 && per.iter().all(|n| *n > 0.0)).then_some(())
        },
    );
    audit_ok(&config);
    // The seats' deletions of compacted sources may still be under way: a block between the
    // delete of its meta.json and of its last file is an "unfinished delete" to verify.
    wait_for(SLOW, "`tools bucket verify` to find no issue", || {
        let out = compactd(&["tools", "bucket", "verify", "--objstore.config", &config]);
        out.status.success().then_some(())
    });
}

/// Puts one block marked for deletion a week ago into each of `streams` (by their labels), so
/// that whoever holds the stream commits its deletion at its next iteration. Returns the block
/// ids by stream.
fn add_marked_blocks(
    config: &str,
    work: &Path,
    streams: &[usize],
    seed: u64,
) -> BTreeMap<usize, String> {
    let staging = work.join(format!("marked-{seed}"));
    let week_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7 * 86_400;
    let mut ids = BTreeMap::new();
    for &i in streams {
        let out = staging.join(i.to_string());
        // A day of 2024: no other block of the stream is near it.
        let extra = ["--start-ms", "1704067200000"];
        generate_stream(&out, 2, 2, &stream_labels(i), seed + i as u64, &extra);
        let [block] = &block_dirs(&out)[..] else {
            panic!("one generated block")
        };
        let id = block.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::write(
            block.join("deletion-mark.json"),
            format!(r#"{{"id": "{id}", "deletion_time": {week_ago}, "version": 1}}"#),
        )
        .unwrap();
        ids.insert(i, id);
    }
    for i in streams {
        upload_meta_last(config, &staging.join(i.to_string()));
    }
    ids
}

/// How many of the blocks `ids` still have a meta.json in the bucket.
fn blocks_present(config: &str, ids: &BTreeMap<usize, String>) -> usize {
    use futures::TryStreamExt;
    let bucket = open(config);
    let names: BTreeSet<String> = runtime().block_on(async {
        let objects: Vec<_> = bucket.store.list(None).try_collect().await.unwrap();
        objects
            .into_iter()
            .map(|o| o.location.as_ref().to_string())
            .collect()
    });
    ids.values()
        .filter(|id| names.contains(&format!("{id}/meta.json")))
        .count()
}

/// The indexes of the generated streams among `held` (stream ids as the API prints them).
fn stream_indexes(held: &BTreeMap<String, u64>, ids: &BTreeMap<String, usize>) -> Vec<usize> {
    held.keys().map(|s| ids[s]).collect()
}

/// Stream id (16 hex digits, as `/api/v1/streams` prints it) → index of the generated stream.
fn stream_ids() -> BTreeMap<String, usize> {
    (0..STREAMS)
        .map(|i| {
            let labels: BTreeMap<String, String> = stream_labels(i)
                .split(',')
                .map(|kv| kv.split_once('=').unwrap())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let id = compactd::core::stream::StreamId::of_labels(&labels, &[]).unwrap();
            (id.to_string(), i)
        })
        .collect()
}

#[test]
fn a_killed_or_paused_replica_loses_its_streams_and_a_paused_one_writes_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(etcd) = Etcd::start() else { return };
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    generate_bucket(&src, 2, 8);
    let config = s3.objstore_yaml();
    let proxy = Proxy::start(s3.endpoint.parse().expect("weed's S3 address"));
    let proxied = config.replace(&s3.endpoint, &proxy.addr().to_string());
    let mut cluster = stream_cluster(
        &etcd,
        tmp.path(),
        &config,
        "failover",
        "15s",
        Some(&proxied),
    );
    upload_meta_last(&config, &src);
    let (held, _) = all_held(&cluster, SLOW);
    let ids = stream_ids();
    let limit = TTL + TAKEOVER + Duration::from_secs(2);

    // kill -9 r1: each of its streams is held and committing elsewhere within the limit.
    let victim = cluster.by_name("r1");
    let lost = stream_indexes(&held[victim], &ids);
    assert!(!lost.is_empty(), "r1 held streams");
    let killed = now_ms_of_day();
    cluster.replicas[victim].kill9();
    let marked = add_marked_blocks(&config, tmp.path(), &lost, 5000);
    wait_for(
        SLOW,
        "the marked blocks of r1's streams to be deleted",
        || {
            std::thread::sleep(Duration::from_millis(200));
            (blocks_present(&config, &marked) == 0).then_some(())
        },
    );
    // When each replica logged holding each stream and deleting each block, after the kill.
    let (mut held_at, mut deleted_at) = (BTreeMap::new(), BTreeMap::new());
    for r in cluster.replicas.iter().filter(|r| r.alive()) {
        held_at.extend(logged_after(r, "holding the stream", "stream", killed));
        deleted_at.extend(logged_after(r, "deleted block marked", "block", killed));
    }
    let held_at: Vec<Duration> = held[victim].keys().map(|s| held_at[s]).collect();
    let deleted_at: Vec<Duration> = marked.values().map(|b| deleted_at[b]).collect();
    let (held_max, committed) = (held_at.iter().max(), deleted_at.iter().max());
    let (held_max, committed) = (*held_max.unwrap(), *committed.unwrap());
    eprintln!(
        "[kill9] kill -9 r1 ({} streams): all held elsewhere after {} (first {}), all \
         committing (marked blocks deleted) after {} (first {}); limit {} = TTL + takeover \
         delay + 2s",
        lost.len(),
        secs(held_max),
        secs(*held_at.iter().min().unwrap()),
        secs(committed),
        secs(*deleted_at.iter().min().unwrap()),
        secs(limit)
    );
    assert!(committed < limit, "failover took {}", secs(committed));

    // SIGSTOP r3 past its TTL; r2 takes everything; r3 wakes and sends no mutation.
    let (held, _) = all_held(&cluster, SLOW);
    let paused = cluster.by_name("r3");
    assert!(!held[paused].is_empty(), "r3 holds streams");
    let before = proxy.mutations();
    assert!(
        before.iter().any(|l| l.starts_with("PUT ")),
        "the proxy saw r3's writes (fences, blocks) before the pause: {before:?}"
    );
    let r3_streams = stream_indexes(&held[paused], &ids);
    let marked = add_marked_blocks(&config, tmp.path(), &r3_streams, 6000);
    cluster.replicas[paused].signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let survivor = cluster.by_name("r2");
    wait_for(SLOW, "r2 to hold every stream", || {
        (held_by(&cluster.replicas[survivor]).len() == STREAMS).then_some(())
    });
    wait_for(
        SLOW,
        "the marked blocks of r3's streams to be deleted",
        || (blocks_present(&config, &marked) == 0).then_some(()),
    );
    eprintln!(
        "[pause] SIGSTOP r3 ({} streams): r2 holds all and committed after {}",
        r3_streams.len(),
        secs(stopped.elapsed())
    );
    let woke_at = proxy.mutations().len();
    let log_lines = cluster.replicas[paused].log_text().lines().count();
    cluster.replicas[paused].signal(libc::SIGCONT);
    let woke = Instant::now();
    wait_for(SLOW, "r3 to be a member again", || {
        let names = members(&etcd, "failover");
        (names.len() == 2 && names.contains("r3")).then_some(())
    });
    let rejoined = woke.elapsed();
    std::thread::sleep(TTL);
    let after: Vec<String> = proxy.mutations().split_off(woke_at);
    let r3 = &cluster.replicas[paused];
    let r3_writes: Vec<String> = r3
        .log_text()
        .lines()
        .skip(log_lines)
        .filter(|l| WRITE_LINES.iter().any(|w| l.contains(w)))
        .map(String::from)
        .collect();
    eprintln!(
        "[pause] SIGCONT r3: a member again after {}; {} mutating requests since",
        secs(rejoined),
        after.len()
    );
    assert!(after.is_empty(), "r3 wrote after waking: {after:#?}");
    assert!(r3_writes.is_empty(), "r3 logged writes: {r3_writes:#?}");
    assert!(
        held_by(r3).is_empty(),
        "r3 holds nothing before the rebalance delay"
    );

    // After the rebalance delay r3 gets its share back.
    let r2_held = held_by(&cluster.replicas[survivor]).len();
    wait_for(SLOW, "r3 to hold its share again", || {
        let n = held_by(&cluster.replicas[paused]).len();
        (n >= STREAMS / 2 - 1).then_some(())
    });
    eprintln!(
        "[pause] r3 holds streams again {} after waking ({} held by r2 before)",
        secs(woke.elapsed()),
        r2_held
    );
    all_held(&cluster, SLOW);
    audit_ok(&config);
}

//! High availability, end to end: three real `compactd run --wait` replicas against a real
//! etcd (`common::etcd`) on one bucket (the local filesystem, and SeaweedFS for S3). One leader
//! is elected and compacts once; kill -9 of the leader hands over within TTL + takeover delay;
//! SIGTERM hands over within a round trip; a leader stopped (SIGSTOP) past its lease, idle or
//! in the middle of a compaction, writes nothing once it wakes after a newer leader committed;
//! an etcd outage stops every write before the lease deadline and leadership comes back with
//! etcd; two single instances refuse to share a bucket (`docs/safety.md`, "At most one
//! writer").
//!
//! Timings are tight so that each test takes seconds: a 3 s lease TTL, a 1 s op timeout and a
//! 2 s takeover delay (the replicas and their helpers are in `common::replicas`, shared with
//! `tests/ha_oneway.rs`). Each replica serves HTTP on a port the kernel picks
//! (`--http-address 127.0.0.1:0`, read back from its log) and logs to a file in the test's
//! temp dir; the logs are printed when a test fails (and always with `COMPACTD_HA_LOGS=1`).
//! Measured times are printed with `eprintln!` (shown with `--nocapture`, and for failed
//! tests). The bucket oracle of the pause and outage tests is a listing of every file (size,
//! mtime, and the content of JSON files) taken before and after, and the fence polled every
//! 5 ms in between.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::etcd::Etcd;
use common::replicas::*;
use common::seaweed::Seaweed;
use common::*;
use compactd::core::fence::FENCE_PATH;

/// One file of a bucket listing.
#[derive(Debug, PartialEq, Eq)]
struct FileState {
    len: u64,
    modified: SystemTime,
    /// The content of JSON files (meta.json, markers, the fence).
    json: Option<String>,
}

/// Every file under `dir` (relative path -> size, mtime, JSON content). Files that vanish
/// while it lists (a staging file renamed into place) are left out, and so are multipart
/// uploads in progress: `object_store` keeps one as `<object>#<n>` until it is completed or
/// aborted, and it is no object (listings skip it). A stale leader sends no part after waking
/// (its job's part gate is closed), but aborts the parts it sent before its pause.
fn listing(dir: &Path) -> BTreeMap<String, FileState> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, FileState>) {
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let entries = match std::fs::read_dir(dir) {
            Err(e) if gone(&e) => return,
            r => r.expect("read bucket dir"),
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            let md = match std::fs::metadata(&p) {
                Err(e) if gone(&e) => continue,
                r => r.expect("stat"),
            };
            if md.is_dir() {
                walk(root, &p, out);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let multipart = rel
                .rsplit_once('#')
                .is_some_and(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()));
            if multipart {
                continue;
            }
            let json = if rel.ends_with(".json") {
                match std::fs::read_to_string(&p) {
                    Err(e) if gone(&e) => continue,
                    r => Some(r.expect("read JSON file")),
                }
            } else {
                None
            };
            out.insert(
                rel,
                FileState {
                    len: md.len(),
                    modified: md.modified().expect("mtime"),
                    json,
                },
            );
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// [`listing`] without the `compactd/` directory (the fence, renewed by the leader every
/// TTL/3, and its staging files).
fn listing_without_fence(dir: &Path) -> BTreeMap<String, FileState> {
    let mut l = listing(dir);
    l.retain(|k, _| !k.starts_with("compactd/"));
    l
}

/// What differs between two listings, one line per path.
fn listing_diff(a: &BTreeMap<String, FileState>, b: &BTreeMap<String, FileState>) -> String {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}\n", a.get(k), b.get(k)))
        .collect()
}

/// The first two lines `etcdctl elect -l <election>` prints (the leader's key and value);
/// etcdctl keeps observing, so it is killed once it printed them.
fn etcdctl_observe(mut etcdctl: Command, election: &str) -> (String, String) {
    let mut child = etcdctl
        .args(["elect", "-l", election])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run etcdctl elect -l");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(10));
    let lines = (next(), next());
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    (
        lines.0.expect("etcdctl elect -l printed a key"),
        lines.1.expect("etcdctl elect -l printed a value"),
    )
}

/// Starts three replicas on the bucket of `config`, which holds two streams of 12 2h blocks,
/// and checks that one leader compacts it, alone, under one epoch: two 8h blocks per stream
/// (Thanos' planner holds back the newest 8h window), stamped with the leader's epoch and name,
/// and the eight 2h blocks left as they were.
fn three_replicas_compact_once(
    etcd: &Etcd,
    etcdctl: Command,
    dir: &Path,
    config: &str,
    what: &str,
) {
    let prefix = format!("three-replicas-{what}");
    let started = Instant::now();
    let c = Cluster::new(etcd, dir, config, &prefix).with_replicas(3);
    let ((li, epoch), _) = c.agreed_leader(SLOW);
    let leader = c.replicas[li].name.clone();
    eprintln!(
        "[{what}] {leader} leads (epoch {epoch}); all 3 replicas agree {} after start",
        secs(started.elapsed())
    );
    assert_eq!(
        c.replicas[li].metric("compactd_leader_epoch"),
        Some(epoch as f64)
    );

    let election = format!("/compactd/{prefix}/election");
    let (key, value) = etcdctl_observe(etcdctl, &election);
    assert!(
        key.starts_with(&format!("{election}/")),
        "etcdctl key {key}"
    );
    assert_eq!(value, leader, "etcdctl elect -l names the leader");

    wait_for(SLOW, "the leader's first iteration", || {
        (c.replicas[li].count(ITERATION_DONE) > 0).then_some(())
    });
    eprintln!(
        "[{what}] {leader} finished its iteration {} after start",
        secs(started.elapsed())
    );
    let ((li2, epoch2), _) = c.agreed_leader(Duration::from_secs(5));
    assert_eq!((li2, epoch2), (li, epoch), "leadership did not move");

    verify_ok(config);
    let uploaded = c.replicas[li].count("uploaded block");
    assert_eq!(uploaded, 4, "two 8h blocks per stream");
    audit_one_term(config, &leader, epoch, uploaded);
    for r in &c.replicas {
        if r.name == leader {
            continue;
        }
        for line in ["elected leader", LEADING] {
            assert_eq!(r.count(line), 0, "follower {} logged {line:?}", r.name);
        }
        for line in WRITE_LINES {
            assert_eq!(r.count(line), 0, "follower {} wrote: {line:?}", r.name);
        }
        assert_eq!(r.metric("compactd_leader"), Some(0.0));
    }
    eprintln!(
        "[{what}] {uploaded} blocks uploaded by {leader} alone, epoch {epoch}; audit and verify \
         clean; total {}",
        secs(started.elapsed())
    );
}

#[test]
fn three_replicas_elect_one_leader_and_compact_once_filesystem() {
    let Some(etcd) = Etcd::start() else { return };
    let Some(etcdctl) = etcd.etcdctl() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 50, 24);
    three_replicas_compact_once(&etcd, etcdctl, tmp.path(), &fs_config(&bucket), "fs");
}

#[test]
fn three_replicas_elect_one_leader_and_compact_once_s3() {
    let Some(etcd) = Etcd::start() else { return };
    let Some(etcdctl) = etcd.etcdctl() else {
        return;
    };
    let Some(s3) = Seaweed::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("generated");
    generate_streams(&local, 50, 24);
    let config = s3.objstore_yaml();
    upload_dir(&config, &local);
    three_replicas_compact_once(&etcd, etcdctl, tmp.path(), &config, "s3");
}

/// A started cluster whose leader finished its first iteration (and is idle).
struct Compacted {
    /// The test's temp dir (owned by the cluster).
    dir: PathBuf,
    bucket: PathBuf,
    config: String,
    cluster: Cluster,
    leader: usize,
    epoch: u64,
}

/// Three replicas on a small generated filesystem bucket, once the leader finished its first
/// iteration.
fn compacted_cluster(etcd: &Etcd, prefix: &str) -> Compacted {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 20, 24);
    let config = fs_config(&bucket);
    let dir = tmp.path().to_path_buf();
    let cluster = Cluster::new(etcd, &dir, &config, prefix)
        .owning(tmp)
        .with_replicas(3);
    let ((leader, epoch), took) = cluster.agreed_leader(SLOW);
    wait_for(SLOW, "the leader's first iteration", || {
        (cluster.replicas[leader].count(ITERATION_DONE) > 0).then_some(())
    });
    eprintln!(
        "[{prefix}] {} leads (epoch {epoch}, agreed after {}), first iteration done",
        cluster.replicas[leader].name,
        secs(took)
    );
    Compacted {
        dir,
        bucket,
        config,
        cluster,
        leader,
        epoch,
    }
}

#[test]
fn kill9_of_the_leader_hands_over_within_ttl_plus_takeover_delay() {
    let Some(etcd) = Etcd::start() else { return };
    let Compacted {
        dir,
        bucket,
        config,
        mut cluster,
        leader,
        epoch,
    } = compacted_cluster(&etcd, "kill9");
    let old = cluster.replicas[leader].name.clone();
    let marked = add_marked_block(&dir, &bucket, 1);

    let killed = Instant::now();
    cluster.replicas[leader].kill9();
    wait_for(SLOW, "the marked block to be deleted", || {
        (!marked.exists()).then_some(())
    });
    let took = killed.elapsed();
    let limit = TTL + TAKEOVER + Duration::from_secs(2);
    eprintln!(
        "[kill9] kill -9 {old}: the next leader committed (deleted the marked block) after {} \
         (limit {} = TTL + takeover delay + 2s)",
        secs(took),
        secs(limit)
    );
    assert!(
        took < limit,
        "handover took {} (limit {})",
        secs(took),
        secs(limit)
    );

    let ((new, new_epoch), _) = cluster.agreed_leader(Duration::from_secs(10));
    let new_name = cluster.replicas[new].name.clone();
    assert_ne!(new_name, old);
    assert!(
        new_epoch > epoch,
        "new epoch {new_epoch} > old epoch {epoch}"
    );
    cluster.replicas[new].leading_line(new_epoch);
    eprintln!(
        "[kill9] {new_name} leads with epoch {new_epoch} (was {old}, epoch {epoch}); \
         killed {} ago",
        secs(killed.elapsed())
    );
    wait_for(SLOW, "the new leader's iteration", || {
        (cluster.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    verify_ok(&config);
    audit_ok(&config);
    assert_eq!(read_fence(&bucket).holder, new_name);
}

#[test]
fn sigterm_of_the_leader_resigns_and_hands_over_in_under_two_seconds() {
    let Some(etcd) = Etcd::start() else { return };
    let Compacted {
        config,
        mut cluster,
        leader,
        epoch,
        ..
    } = compacted_cluster(&etcd, "sigterm");
    let (new, new_epoch) = cluster.sigterm_hands_over(leader, epoch);
    let ((agreed, agreed_epoch), _) = cluster.agreed_leader(Duration::from_secs(10));
    assert_eq!((agreed, agreed_epoch), (new, new_epoch));
    wait_for(SLOW, "the new leader's iteration", || {
        (cluster.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    audit_ok(&config);
}

#[test]
fn paused_leader_makes_no_write_after_a_newer_leader_committed() {
    let Some(etcd) = Etcd::start() else { return };
    let Compacted {
        dir,
        bucket,
        config,
        cluster,
        leader,
        epoch,
    } = compacted_cluster(&etcd, "pause");
    let old = cluster.replicas[leader].name.clone();

    // Paused while leading and idle: its fence renewal (every TTL/3) is overdue when it wakes.
    let paused = Instant::now();
    cluster.replicas[leader].signal(libc::SIGSTOP);
    let marked = add_marked_block(&dir, &bucket, 1);
    wait_for(SLOW, "the marked block to be deleted", || {
        (!marked.exists()).then_some(())
    });
    eprintln!(
        "[pause] {old} stopped; a new leader committed {} later",
        secs(paused.elapsed())
    );
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (new, _) = cluster.sole_leader_among(&others, Duration::from_secs(10));
    let new_name = cluster.replicas[new].name.clone();
    let (_, new_epoch) = cluster.replicas[new].leader().expect("new leader's view");
    assert!(new_epoch > epoch, "epoch {new_epoch} > {epoch}");
    // The new leader is idle once its iteration is done; only its fence renewals write then.
    wait_for(SLOW, "the new leader's iteration", || {
        (cluster.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    wake_stale_leader(&cluster, &bucket, leader, new, new_epoch, &[], "pause");
    let ((agreed, _), _) = cluster.agreed_leader(Duration::from_secs(10));
    assert_eq!(agreed, new, "leadership stayed with {new_name}");
    eprintln!("[pause] total {} since SIGSTOP", secs(paused.elapsed()));
    audit_ok(&config);
}

/// The stronger variant: the leader is stopped in the middle of a compaction, so that when it
/// wakes it holds a compacted block it was about to upload and sources it was about to mark.
/// By then a newer leader has compacted the same blocks itself; the old one must write nothing.
#[test]
fn leader_paused_mid_compaction_uploads_nothing_when_it_wakes() {
    let Some(etcd) = Etcd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    // 10h of one stream: one compaction of four 2h blocks into an 8h block, big enough (about
    // half a second of compaction) for the test to stop the leader in the middle of it.
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        bucket.to_str().unwrap(),
        "--series",
        "10000",
        "--hours",
        "10",
        "--external-labels",
        "cluster=big",
        "--seed",
        "7",
    ]);
    let config = fs_config(&bucket);
    let dir = tmp.path().to_path_buf();
    let cluster = Cluster::new(&etcd, &dir, &config, "pause-compaction")
        .owning(tmp)
        .with_replicas(3);
    let (leader, _) = wait_for(SLOW, "a replica to be elected", || {
        cluster
            .replicas
            .iter()
            .position(|r| r.count("elected leader") > 0)
    });
    let old = cluster.replicas[leader].name.clone();
    let epoch = logged_epoch(&cluster.replicas[leader], "elected leader");
    // Stop it once its job has started ("compacting", logged as the job's task begins: it
    // reads its inputs from the bucket and writes its output as it goes): it then wakes
    // holding a block it was about to upload.
    let (output, _) = wait_for(SLOW, "the leader's compaction plan", || {
        let text = cluster.replicas[leader].log_text();
        let line = text.lines().find(|l| l.contains("compaction plan"))?;
        let output = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("output="))?
            .to_string();
        Some(output)
    });
    let start = Instant::now();
    let started = format!("output={output}");
    while !cluster.replicas[leader]
        .log_text()
        .lines()
        .any(|l| l.contains("compacting") && l.contains(&started))
    {
        assert!(
            start.elapsed() < SLOW,
            "{old} never started compacting {output}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    cluster.replicas[leader].signal(libc::SIGSTOP);
    let paused = Instant::now();
    let at_pause = cluster.replicas[leader].log_text();
    assert!(
        !at_pause.contains("compacted blocks") && !at_pause.contains("compaction job failed"),
        "{old} was stopped only after its compaction ended; the test needs a bigger one"
    );
    eprintln!(
        "[pause-compaction] {old} (epoch {epoch}) stopped while compacting {output}, {} after \
         its plan was logged",
        secs(start.elapsed())
    );

    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (new, took) = cluster.sole_leader_among(&others, SLOW);
    let new_name = cluster.replicas[new].name.clone();
    let new_epoch = logged_epoch(&cluster.replicas[new], LEADING);
    assert!(new_epoch > epoch, "epoch {new_epoch} > {epoch}");
    wait_for(SLOW, "the new leader's iteration", || {
        (cluster.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    assert_eq!(cluster.replicas[new].count("uploaded block"), 1);
    eprintln!(
        "[pause-compaction] {new_name} (epoch {new_epoch}) leads {} after the pause and \
         compacted the same blocks {} after it",
        secs(took),
        secs(paused.elapsed())
    );
    // The old leader's compaction ends after it wakes: with a block it would upload, or
    // failed, when the new leader had already deleted the inputs it had yet to read (the
    // test's delete delay is 0).
    let ends = ["compacted blocks", "compaction job failed"];
    wake_stale_leader(
        &cluster,
        &bucket,
        leader,
        new,
        new_epoch,
        &ends,
        "pause-compaction",
    );
    let old_log = cluster.replicas[leader].log_text();
    assert!(
        old_log.contains(&format!("output={output}")) && ends.iter().any(|e| old_log.contains(e)),
        "{old} ended its compaction of {output} after waking up"
    );
    verify_ok(&config);
    let audit = audit_ok(&config);
    assert_eq!(
        audit["epochs"].as_array().map(Vec::len),
        Some(1),
        "{audit:#}"
    );
    assert_eq!(audit["epochs"][0]["epoch"], new_epoch, "{audit:#}");
    assert_eq!(audit["epochs"][0]["holders"], serde_json::json!([new_name]));
}

/// Continues the stopped replica `old` once the newer leader `new` (epoch `new_epoch`)
/// committed and went idle, and watches the bucket for 4 s (and at least 2 s after `old` logged
/// one of `wait_lines`, when given): only `new` renews the fence (it is polled every 5 ms),
/// nothing else in the bucket changes, and `old` steps down without logging a write.
fn wake_stale_leader(
    c: &Cluster,
    bucket: &Path,
    old: usize,
    new: usize,
    new_epoch: u64,
    wait_lines: &[&str],
    tag: &str,
) {
    let (old_r, new_name) = (&c.replicas[old], c.replicas[new].name.clone());
    let old_name = &old_r.name;
    let stopped_before = old_r.count(STOPPED);
    let count_waited = || wait_lines.iter().map(|l| old_r.count(l)).sum::<usize>();
    let waited_before = count_waited();
    let writes_before: Vec<usize> = WRITE_LINES.iter().map(|l| old_r.count(l)).collect();
    let before = listing_without_fence(bucket);
    let fence_before = read_fence(bucket);
    assert_eq!(
        (fence_before.epoch, fence_before.holder.as_str()),
        (new_epoch, new_name.as_str())
    );

    let woke = Instant::now();
    let woke_unix_ms = compactd::tools::now_unix_ms();
    old_r.signal(libc::SIGCONT);
    let mut foreign = Vec::new();
    let mut late = Vec::new();
    let mut last_seq = fence_before.seq;
    let mut stopped_after = None;
    let mut waited_after = wait_lines.is_empty().then_some(Duration::ZERO);
    let mut until = Duration::from_secs(4);
    while woke.elapsed() < until {
        let f = read_fence(bucket);
        // A fence CAS the old leader stamped before it was stopped may land after it wakes:
        // on the filesystem the store runs inside the stopped process, so a write already
        // under way finishes then. The new leader must see it and fence again; a record
        // stamped after the wake would be a write the old leader started after its deadline.
        let stale_in_flight = f.holder == *old_name && f.renewed_unix_ms < woke_unix_ms;
        if (f.epoch != new_epoch || f.holder != new_name || f.seq < last_seq)
            && !foreign.contains(&f)
            && !late.contains(&f)
        {
            match stale_in_flight {
                true => late.push(f.clone()),
                false => foreign.push(f.clone()),
            }
        }
        // The new leader's next CAS continues from the late record's seq.
        last_seq = match stale_in_flight {
            true => f.seq,
            false => last_seq.max(f.seq),
        };
        if stopped_after.is_none() && old_r.count(STOPPED) > stopped_before {
            stopped_after = Some(woke.elapsed());
        }
        if waited_after.is_none() && count_waited() > waited_before {
            waited_after = Some(woke.elapsed());
            until = until.max(woke.elapsed() + Duration::from_secs(2));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        foreign.is_empty(),
        "the fence was written by someone other than {new_name} (epoch {new_epoch}): {foreign:?}"
    );
    if !late.is_empty() {
        eprintln!(
            "[{tag}] a fence write {old_name} started before it was stopped landed after it \
             woke (the new leader fenced again): {late:?}"
        );
    }
    let stopped_after = stopped_after.expect("the old leader logged that it stopped leading");
    let waited_after = waited_after
        .unwrap_or_else(|| panic!("{old_name} did not log any of {wait_lines:?} after waking up"));
    let after = listing_without_fence(bucket);
    assert!(
        before == after,
        "the bucket changed after {old_name} woke up:\n{}",
        listing_diff(&before, &after)
    );
    let fence_after = read_fence(bucket);
    assert_eq!(
        (fence_after.epoch, fence_after.holder.as_str()),
        (new_epoch, new_name.as_str()),
        "the fence still names the new leader"
    );
    let floor = late.last().map_or(fence_before.seq, |f| f.seq);
    assert!(
        fence_after.seq > floor,
        "the new leader kept renewing the fence"
    );
    assert_eq!(
        old_r.metric("compactd_leader"),
        Some(0.0),
        "{old_name} is no leader"
    );
    let writes: Vec<usize> = WRITE_LINES.iter().map(|l| old_r.count(l)).collect();
    assert_eq!(
        writes, writes_before,
        "{old_name} logged no write after waking up"
    );
    let expired = old_r.metric("compactd_permit_expired_writes_total");
    let conflicts = old_r.metric("compactd_fence_conflicts_total");
    let waited = if wait_lines.is_empty() {
        String::new()
    } else {
        format!(
            "; logged one of {wait_lines:?} {} after SIGCONT",
            secs(waited_after)
        )
    };
    eprintln!(
        "[{tag}] {old_name} stopped leading {} after SIGCONT{waited}; fence renewed only by \
         {new_name} (seq {} -> {}); bucket otherwise unchanged over {}; {old_name}: \
         permit_expired_writes {expired:?}, fence_conflicts {conflicts:?}",
        secs(stopped_after),
        fence_before.seq,
        fence_after.seq,
        secs(until)
    );
}

#[test]
fn etcd_outage_stops_writes_before_the_deadline_and_leadership_recovers() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let Compacted {
        dir,
        bucket,
        config,
        cluster,
        leader,
        epoch,
    } = compacted_cluster(&etcd, "outage");
    let old = cluster.replicas[leader].name.clone();
    let stopped_before = cluster.replicas[leader].count(STOPPED);
    let iterations_before: Vec<usize> = cluster
        .replicas
        .iter()
        .map(|r| r.count(ITERATION_DONE))
        .collect();

    let down = Instant::now();
    etcd.stop();
    // Before its lease could have expired: at most TTL after the last renewal it sent.
    let (_, step_down) = wait_for(TTL, "the leader to step down", || {
        (cluster.replicas[leader].count(STOPPED) > stopped_before).then_some(())
    });
    eprintln!(
        "[outage] etcd stopped ({} to stop it); {old} stopped leading {} after",
        secs(down.elapsed() - step_down),
        secs(down.elapsed())
    );
    // A request sent under the last permit may land up to the op timeout after it lapsed.
    let quiet_from = (down + TTL + Duration::from_secs(1)).max(down + step_down + OP_TIMEOUT);
    std::thread::sleep(quiet_from.saturating_duration_since(Instant::now()));
    for r in &cluster.replicas {
        assert_eq!(
            r.metric("compactd_leader"),
            Some(0.0),
            "{} still leads {} after etcd stopped",
            r.name,
            secs(down.elapsed())
        );
    }
    let fence = std::fs::read(bucket.join(FENCE_PATH)).unwrap();
    let fence_mtime = std::fs::metadata(bucket.join(FENCE_PATH))
        .unwrap()
        .modified()
        .unwrap();
    let before = listing(&bucket);
    std::thread::sleep(Duration::from_secs(2));
    let after = listing(&bucket);
    assert!(
        before == after,
        "the bucket changed while etcd was down:\n{}",
        listing_diff(&before, &after)
    );
    assert_eq!(std::fs::read(bucket.join(FENCE_PATH)).unwrap(), fence);
    let fence_age = SystemTime::now()
        .duration_since(fence_mtime)
        .unwrap_or_default();
    eprintln!(
        "[outage] no write for 2s; fence last written {} before the check ({} after etcd stopped)",
        secs(fence_age),
        secs(down.elapsed())
    );

    // Work for whoever leads next; added while nobody leads, so its first sync sees it.
    let marked = add_marked_block(&dir, &bucket, 1);
    let restarted = Instant::now();
    etcd.start_again();
    let etcd_up = restarted.elapsed();
    let (new, took) = wait_for(
        Duration::from_secs(15),
        "a leader after etcd restarted",
        || {
            let l = cluster.leaders();
            (l.len() == 1).then(|| l[0])
        },
    );
    eprintln!(
        "[outage] etcd up again in {}; {} leads {} after that",
        secs(etcd_up),
        cluster.replicas[new].name,
        secs(took)
    );
    let (_, deleted) = wait_for(SLOW, "the marked block to be deleted", || {
        (!marked.exists()).then_some(())
    });
    let ((agreed, new_epoch), _) = cluster.agreed_leader(Duration::from_secs(15));
    assert_eq!(agreed, new);
    assert!(new_epoch >= epoch, "epoch {new_epoch} >= {epoch}");
    eprintln!(
        "[outage] {} (epoch {new_epoch}; before the outage {old}, epoch {epoch}) committed {} \
         after etcd was up",
        cluster.replicas[new].name,
        secs(deleted + took)
    );
    wait_for(SLOW, "the recovered leader's iteration", || {
        (cluster.replicas[new].count(ITERATION_DONE) > iterations_before[new]).then_some(())
    });
    audit_ok(&config);
}

#[test]
fn two_single_instances_refuse_to_share_a_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 12);
    let config = fs_config(&bucket);
    let mut cluster = Cluster::single(tmp.path(), &config);
    cluster.spawn("a");
    let (_, took) = wait_for(SLOW, "a to lead", || {
        (cluster.replicas[0].count(LEADING) > 0).then_some(())
    });
    eprintln!("[single] a leads {} after serving HTTP", secs(took));

    let one_shot_b = cluster.run("b");
    let start = Instant::now();
    let refused = one_shot_b.output();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    eprintln!("[single] b refused in {} ({})", secs(took), refused.status);
    assert_eq!(refused.status.code(), Some(1), "b must refuse:\n{stderr}");
    assert!(took < Duration::from_secs(5), "b took {}", secs(took));
    // logfmt escapes the quotes inside the quoted reason.
    let unescaped = stderr.replace("\\\"", "\"");
    assert!(
        unescaped.contains(FENCE_PATH) && unescaped.contains(r#"held by "a""#),
        "b names the fence and its holder:\n{stderr}"
    );
    assert!(
        !stderr.contains("uploaded block") && !stderr.contains("marked block"),
        "b wrote nothing:\n{stderr}"
    );
    assert_eq!(read_fence(&bucket).holder, "a");

    wait_for(SLOW, "a's iteration", || {
        (cluster.replicas[0].count(ITERATION_DONE) > 0).then_some(())
    });
    let a = &mut cluster.replicas[0];
    a.signal(libc::SIGTERM);
    let status = a.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "a exits 0 on SIGTERM"
    );
    let released = read_fence(&bucket);
    assert_eq!(
        (released.holder.as_str(), released.renewed_unix_ms),
        ("a", 0),
        "a released the fence on exit"
    );

    let out = one_shot_b.output();
    assert!(
        out.status.success(),
        "b runs once a released the fence: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fence = read_fence(&bucket);
    assert_eq!((fence.holder.as_str(), fence.renewed_unix_ms), ("b", 0));
    audit_ok(&config);
}

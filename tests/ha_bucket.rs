//! High availability with the election on the bucket itself (`--election=bucket`, issue 21),
//! end to end: three real `compactd run --wait` replicas and no etcd, on a real S3 store
//! (SeaweedFS, `common::seaweed`) that each replica reaches through a TCP proxy of its own
//! (`common::proxy`), whose log of mutating requests is what that replica alone sent. The
//! fence object `compactd/fence.json` is the lease: candidates read it every TTL/3 and take it
//! over with a conditional write once one version stood unchanged for the observe wait,
//! TTL·1.05 + 0.5 s on their own clock (an absent or released fence: at once).
//!
//! One leader is elected and compacts once; after kill -9 of the leader the next leader's
//! first fenced commit comes within the observe wait + takeover delay + 2 s; SIGTERM releases
//! the fence and hands over within 2 s; a leader stopped (SIGSTOP) until a newer leader took
//! over and committed sends no mutating request once it is continued, and steps down; start-up
//! refuses the filesystem bucket and contradictory election flags.
//!
//! Timings are those of `tests/ha.rs` (`common::replicas`): a 3 s TTL, a 1 s op timeout and a
//! 2 s takeover delay. The SeaweedFS scenarios run one at a time, so that on a 2-core machine
//! the times they measure are not another scenario's load. Measured times are printed with
//! `eprintln!` (shown with `--nocapture`, and for failed tests); the replicas' log tails are
//! printed when a test fails (and always with `COMPACTD_HA_LOGS=1`). Without weed the
//! SeaweedFS scenarios are skipped with a printed reason; under CI=true they fail.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::replicas::*;
use common::seaweed::Seaweed;
use common::*;
use compactd::core::fence::{FenceRecord, FENCE_PATH};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;

/// How long a candidate watches one version of the fence before it takes over: TTL·1.05 +
/// 0.5 s (the largest clock-rate drift and the safety margin).
fn observe_wait() -> Duration {
    TTL.mul_f64(1.05) + Duration::from_millis(500)
}

/// Held by each SeaweedFS scenario from its start to its replicas' end.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The test's own view of the bucket: straight to SeaweedFS, never through a replica's proxy.
struct Store {
    bucket: compactd::objstore::Bucket,
    runtime: tokio::runtime::Runtime,
}

impl Store {
    fn open(config: &str) -> Store {
        Store {
            bucket: open(config),
            runtime: runtime(),
        }
    }

    /// The fence record; panics when there is none.
    fn fence(&self) -> FenceRecord {
        let path = ObjectPath::from(FENCE_PATH);
        let bytes = self
            .runtime
            .block_on(async { self.bucket.store.get(&path).await?.bytes().await })
            .expect("read the fence");
        FenceRecord::parse(FENCE_PATH, &bytes).expect("parse the fence")
    }

    /// Whether the object `path` exists.
    fn exists(&self, path: &str) -> bool {
        match self
            .runtime
            .block_on(self.bucket.store.head(&ObjectPath::from(path)))
        {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("HEAD {path}: {e}"),
        }
    }

    /// Every object outside `compactd/` (the fence, which the leader renews every TTL/3, and
    /// the start-up self-test's scratch objects): name → its size, ETag and last modified.
    fn blocks_listing(&self) -> BTreeMap<String, String> {
        use futures::TryStreamExt;
        let listed: Vec<_> = self
            .runtime
            .block_on(self.bucket.store.list(None).try_collect())
            .expect("list the bucket");
        listed
            .into_iter()
            .filter(|o| !o.location.as_ref().starts_with("compactd/"))
            .map(|o| {
                let state = format!("{} {:?} {}", o.size, o.e_tag, o.last_modified);
                (o.location.to_string(), state)
            })
            .collect()
    }

    /// Puts the block of [`stage_marked_block`] (`<dir>/staging-<n>`) into the bucket, its
    /// meta.json last, so that a sync sees it whole or not at all; returns the path of its
    /// meta.json, deleted first when the block is deleted (the commit).
    fn add_marked_block(&self, dir: &Path, n: u32) -> String {
        let block = stage_marked_block(dir, n);
        let id = block.file_name().unwrap().to_str().unwrap().to_string();
        let mut files = Vec::new();
        collect_files(&block, &mut files);
        files.sort_by_key(|f| f.ends_with("meta.json"));
        for f in files {
            let rel = f.strip_prefix(&block).unwrap().to_str().unwrap();
            let path = ObjectPath::from(format!("{id}/{rel}"));
            let data = std::fs::read(&f).unwrap();
            self.runtime
                .block_on(self.bucket.store.put(&path, data.into()))
                .expect("upload the marked block");
        }
        format!("{id}/meta.json")
    }
}

/// Three replicas electing on a SeaweedFS bucket, each through a proxy of its own, once the
/// leader finished its first iteration (and is idle: `--wait-interval 1h`). Its fields drop in
/// order: the replicas (their logs printed on failure), their proxies, the lock, SeaweedFS.
struct OnBucket {
    cluster: Cluster,
    /// `proxies[i]` carries replica `i`'s requests to the store.
    proxies: Vec<Proxy>,
    store: Store,
    config: String,
    /// The test's temp dir (owned by the cluster).
    dir: PathBuf,
    leader: usize,
    epoch: u64,
    /// How many mutating requests each proxy had forwarded when all replicas agreed on the
    /// leader (those of the start-up self-test and of the race for the absent fence).
    sent_at_agreement: Vec<usize>,
    _one_at_a_time: MutexGuard<'static, ()>,
    _s3: Seaweed,
}

/// Starts SeaweedFS with two streams of 12 2h blocks (as `tests/ha.rs`' S3 test) and three
/// replicas `r1`..`r3` on it; `None` when weed is not installed (outside CI).
fn on_bucket(tag: &str) -> Option<OnBucket> {
    let one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = Seaweed::start()?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let local = dir.join("generated");
    generate_streams(&local, 50, 24);
    let config = s3.objstore_yaml();
    upload_dir(&config, &local);
    let target: SocketAddr = s3.endpoint.parse().expect("weed's endpoint is ip:port");
    let mut cluster = Cluster::on_bucket(&dir, &config).owning(tmp);
    let mut proxies = Vec::new();
    let started = Instant::now();
    for i in 1..=3 {
        let proxy = Proxy::start(target);
        let via = s3.objstore_yaml_via(&proxy.addr().to_string());
        cluster.spawn_on(&format!("r{i}"), &via);
        proxies.push(proxy);
    }
    let ((leader, epoch), _) = cluster.agreed_leader(SLOW);
    let agreed = started.elapsed();
    let sent_at_agreement = proxies.iter().map(|p| p.mutations().len()).collect();
    wait_for(SLOW, "the leader's first iteration", || {
        (cluster.replicas[leader].count(ITERATION_DONE) > 0).then_some(())
    });
    eprintln!(
        "[{tag}] {} leads (epoch {epoch}): all 3 replicas agree {} after start; its first \
         iteration done {} after start",
        cluster.replicas[leader].name,
        secs(agreed),
        secs(started.elapsed())
    );
    Some(OnBucket {
        cluster,
        proxies,
        store: Store::open(&config),
        config,
        dir,
        leader,
        epoch,
        sent_at_agreement,
        _one_at_a_time: one_at_a_time,
        _s3: s3,
    })
}

/// The replicas other than `i`.
fn others(i: usize) -> Vec<usize> {
    (0..3).filter(|&j| j != i).collect()
}

/// The `PUT` request lines `proxy`'s replica sent for objects outside `compactd/` (the
/// fence, the start-up self-test's scratch objects). Deletes are not told apart: `object_store`
/// sends each as a bulk delete (`POST /<bucket>?delete`) whose keys are in the body.
fn block_puts(proxy: &Proxy) -> Vec<String> {
    proxy
        .mutations()
        .into_iter()
        .filter(|m| m.starts_with("PUT ") && !m.contains("/compactd/"))
        .collect()
}

/// The mutating requests (`PUT`, `POST`, `DELETE` request lines) replica `i` sent through
/// its proxy since all replicas agreed on the leader.
fn sent_since_agreement(s: &OnBucket, i: usize) -> Vec<String> {
    s.proxies[i].mutations()[s.sent_at_agreement[i]..].to_vec()
}

#[test]
fn three_replicas_elect_one_leader_on_the_bucket_and_compact_once() {
    let started = Instant::now();
    let Some(s) = on_bucket("three") else { return };
    let c = &s.cluster;
    let leader = c.replicas[s.leader].name.clone();
    let ((li, epoch), _) = c.agreed_leader(Duration::from_secs(5));
    assert_eq!((li, epoch), (s.leader, s.epoch), "leadership did not move");
    assert_eq!(
        c.replicas[li].metric("compactd_leader_epoch"),
        Some(epoch as f64)
    );
    let fence = s.store.fence();
    assert_eq!(
        (fence.epoch, fence.holder.as_str()),
        (epoch, leader.as_str())
    );

    verify_ok(&s.config);
    let uploaded = c.replicas[li].count("uploaded block");
    assert_eq!(uploaded, 4, "two 8h blocks per stream");
    audit_one_term(&s.config, &leader, epoch, uploaded);

    let leader_puts = block_puts(&s.proxies[li]);
    assert!(
        leader_puts.iter().any(|m| m.contains("/meta.json")),
        "the leader's proxy saw its uploads: {leader_puts:?}"
    );
    for i in others(li) {
        let r = &c.replicas[i];
        assert_eq!(
            r.count(LEADING),
            0,
            "follower {} logged {LEADING:?}",
            r.name
        );
        for line in WRITE_LINES {
            assert_eq!(r.count(line), 0, "follower {} wrote: {line:?}", r.name);
        }
        assert_eq!(
            sent_since_agreement(&s, i),
            Vec::<String>::new(),
            "follower {} sent no mutating request while {leader} led",
            r.name
        );
        assert_eq!(
            block_puts(&s.proxies[i]),
            Vec::<String>::new(),
            "follower {} wrote no object outside compactd/",
            r.name
        );
        assert_eq!(r.metric("compactd_leader"), Some(0.0));
        // A follower that lost the race for the absent fence logged its attempt and its loss.
        assert!(
            r.count("elected leader") <= r.count("fence conflict"),
            "follower {}: every takeover attempt ended in a fence conflict",
            r.name
        );
    }
    eprintln!(
        "[three] {uploaded} blocks uploaded by {leader} alone ({} PUTs of block files through \
         its proxy, none through the followers'), epoch {epoch}; audit and verify clean; \
         total {}",
        leader_puts.len(),
        secs(started.elapsed())
    );
}

#[test]
fn kill9_of_the_leader_hands_over_within_the_observe_wait_plus_takeover_delay() {
    let Some(mut s) = on_bucket("kill9") else {
        return;
    };
    let old = s.cluster.replicas[s.leader].name.clone();
    let marked = s.store.add_marked_block(&s.dir, 1);

    let killed = Instant::now();
    s.cluster.replicas[s.leader].kill9();
    wait_for(SLOW, "the marked block to be deleted", || {
        (!s.store.exists(&marked)).then_some(())
    });
    let took = killed.elapsed();
    let limit = observe_wait() + TAKEOVER + Duration::from_secs(2);
    eprintln!(
        "[kill9] kill -9 {old}: the next leader's first fenced commit (the marked block's \
         meta.json deleted) {} after (limit {} = TTL·1.05 + 0.5s + takeover delay + 2s)",
        secs(took),
        secs(limit)
    );
    assert!(
        took < limit,
        "handover took {} (limit {})",
        secs(took),
        secs(limit)
    );

    let ((new, new_epoch), _) = s.cluster.agreed_leader(Duration::from_secs(10));
    let new_name = s.cluster.replicas[new].name.clone();
    assert_ne!(new_name, old);
    assert!(
        new_epoch > s.epoch,
        "new epoch {new_epoch} > old epoch {}",
        s.epoch
    );
    let leading = s.cluster.replicas[new].leading_line(new_epoch);
    let fence = s.store.fence();
    assert_eq!(
        (fence.epoch, fence.holder.as_str()),
        (new_epoch, new_name.as_str()),
        "the fence names the new leader"
    );
    eprintln!(
        "[kill9] {new_name} leads with epoch {new_epoch} (was {old}, epoch {}); its log: {}",
        s.epoch,
        leading
            .split_whitespace()
            .find(|f| f.starts_with("failover_ms="))
            .unwrap_or("no failover_ms")
    );
    wait_for(SLOW, "the new leader's iteration", || {
        (s.cluster.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    verify_ok(&s.config);
    audit_ok(&s.config);
}

#[test]
fn sigterm_of_the_leader_releases_the_fence_and_hands_over_in_under_two_seconds() {
    let Some(mut s) = on_bucket("sigterm") else {
        return;
    };
    let (leader, epoch) = (s.leader, s.epoch);
    // Well under the observe wait (TTL·1.05 + 0.5 s): taken over at once, so released.
    let (new, new_epoch) = s.cluster.sigterm_hands_over(leader, epoch);
    let c = &s.cluster;
    let ((agreed, agreed_epoch), _) = c.agreed_leader(Duration::from_secs(10));
    assert_eq!((agreed, agreed_epoch), (new, new_epoch));
    wait_for(SLOW, "the new leader's iteration", || {
        (c.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    audit_ok(&s.config);
}

#[test]
fn leader_stopped_past_its_lease_sends_no_mutation_once_continued() {
    let Some(s) = on_bucket("pause") else { return };
    let c = &s.cluster;
    let (old, epoch) = (s.leader, s.epoch);
    let old_name = c.replicas[old].name.clone();
    let marked = s.store.add_marked_block(&s.dir, 1);

    // Stopped while leading and idle: its fence renewal (every TTL/3) is overdue when it wakes.
    let paused = Instant::now();
    c.replicas[old].signal(libc::SIGSTOP);
    wait_for(SLOW, "the marked block to be deleted", || {
        (!s.store.exists(&marked)).then_some(())
    });
    let committed = paused.elapsed();
    let (new, _) = c.sole_leader_among(&others(old), Duration::from_secs(10));
    let new_name = c.replicas[new].name.clone();
    let (_, new_epoch) = c.replicas[new].leader().expect("the new leader's view");
    assert!(new_epoch > epoch, "epoch {new_epoch} > {epoch}");
    // Idle once its iteration is done: only its fence renewals write then.
    wait_for(SLOW, "the new leader's iteration", || {
        (c.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    // Its last renewal was sent before the stop: its lease ran out a TTL after it at most.
    let stopped_for = paused.elapsed();
    assert!(stopped_for > TTL, "stopped past the lease");
    eprintln!(
        "[pause] {old_name} stopped; {new_name} (epoch {new_epoch}) committed {} later; \
         continuing {old_name} after {}",
        secs(committed),
        secs(stopped_for)
    );
    wake_stale_leader(&s, old, new, new_epoch);
    let ((agreed, _), _) = c.agreed_leader(Duration::from_secs(10));
    assert_eq!(agreed, new, "leadership stayed with {new_name}");
    audit_ok(&s.config);
}

/// Continues the stopped leader `old` once the newer leader `new` (epoch `new_epoch`)
/// committed and went idle, and watches for 4 s: `old` sends no mutating request through its
/// proxy, logs that it stopped leading and follows `new`; only `new` renews the fence (read
/// every 20 ms) and nothing else in the bucket changes.
fn wake_stale_leader(s: &OnBucket, old: usize, new: usize, new_epoch: u64) {
    let (old_r, new_name) = (&s.cluster.replicas[old], &s.cluster.replicas[new].name);
    let old_name = &old_r.name;
    let stopped_before = old_r.count(STOPPED);
    let writes_before: Vec<usize> = WRITE_LINES.iter().map(|l| old_r.count(l)).collect();
    let before = s.store.blocks_listing();
    let fence_before = s.store.fence();
    assert_eq!(
        (fence_before.epoch, fence_before.holder.as_str()),
        (new_epoch, new_name.as_str())
    );
    let sent_before = s.proxies[old].mutations().len();

    let woke = Instant::now();
    old_r.signal(libc::SIGCONT);
    let mut foreign = Vec::new();
    let mut last_seq = fence_before.seq;
    let (mut stopped_after, mut follows_after) = (None, None);
    while woke.elapsed() < Duration::from_secs(4) {
        let f = s.store.fence();
        if (f.epoch != new_epoch || &f.holder != new_name || f.seq < last_seq)
            && !foreign.contains(&f)
        {
            foreign.push(f.clone());
        }
        last_seq = last_seq.max(f.seq);
        if stopped_after.is_none() && old_r.count(STOPPED) > stopped_before {
            stopped_after = Some(woke.elapsed());
        }
        if follows_after.is_none() && old_r.leader() == Some((new_name.clone(), new_epoch)) {
            follows_after = Some(woke.elapsed());
        }
        std::thread::sleep(POLL);
    }
    let sent: Vec<String> = s.proxies[old].mutations()[sent_before..].to_vec();
    assert_eq!(
        sent,
        Vec::<String>::new(),
        "{old_name} sent mutating requests to the store after SIGCONT"
    );
    assert!(
        foreign.is_empty(),
        "the fence was written by someone other than {new_name} (epoch {new_epoch}): {foreign:?}"
    );
    let stopped_after = stopped_after.expect("the old leader logged that it stopped leading");
    let follows_after = follows_after.expect("the old leader names the new one");
    let after = s.store.blocks_listing();
    assert!(
        before == after,
        "the bucket changed after {old_name} woke up"
    );
    let fence_after = s.store.fence();
    assert!(
        fence_after.seq > fence_before.seq,
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
        "{old_name} logged no write after waking"
    );
    eprintln!(
        "[pause] {old_name} stopped leading {} and named {new_name} as leader {} after SIGCONT; \
         no mutating request from it over 4s; fence renewed only by {new_name} (seq {} -> {}); \
         {old_name}: fence_conflicts {:?}, permit_expired_writes {:?}",
        secs(stopped_after),
        secs(follows_after),
        fence_before.seq,
        fence_after.seq,
        old_r.metric("compactd_fence_conflicts_total"),
        old_r.metric("compactd_permit_expired_writes_total"),
    );
}

/// Runs `compactd run --wait` as `r1` on the filesystem bucket `<dir>/bucket` with this suite's
/// timings and `flags`, expecting it to refuse to start: asserts that it exits non-zero within
/// 30 s without writing the fence, and returns the line that says why (`error: ...`).
fn refused(dir: &Path, flags: &[&str]) -> String {
    let bucket = dir.join("bucket");
    generate_streams(&bucket, 5, 2);
    let log = dir.join("r1.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = KillOnDrop(
        CompactdRun::on_dir(&bucket)
            .data_dir(&dir.join("data-r1"))
            .node("r1")
            .wait()
            .extra(&TIMING_FLAGS)
            .extra(flags)
            .command()
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn compactd"),
    );
    let (status, took) = wait_for(Duration::from_secs(30), "compactd to refuse", || {
        child.0.try_wait().expect("try_wait")
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "compactd {flags:?} started:\n{text}");
    assert!(
        !bucket.join(FENCE_PATH).exists(),
        "it wrote the fence:\n{text}"
    );
    let error = text
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{text}"));
    eprintln!(
        "[refused] {flags:?}: {status} after {}: {error}",
        secs(took)
    );
    error.to_string()
}

/// [`refused`] with `flags` on a fresh bucket, the error naming each of `needles`.
fn refused_naming(flags: &[&str], needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let error = refused(tmp.path(), flags);
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} in {error:?}");
    }
}

#[test]
fn election_on_a_filesystem_bucket_is_refused() {
    refused_naming(
        &["--election=bucket"],
        &[
            "--election=bucket",
            "FILESYSTEM",
            "no atomic compare-and-swap",
        ],
    );
}

#[test]
fn election_on_the_bucket_with_an_etcd_url_is_refused() {
    refused_naming(
        &["--election=bucket", "--etcd.url", "http://127.0.0.1:1"],
        &["--election=bucket", "remove --etcd.url"],
    );
}

#[test]
fn election_through_etcd_without_an_etcd_url_is_refused() {
    refused_naming(&["--election=etcd"], &["--election=etcd needs --etcd.url"]);
}

#[test]
fn no_election_with_an_etcd_url_is_refused() {
    refused_naming(
        &["--election=none", "--etcd.url", "http://127.0.0.1:1"],
        &[
            "--election=none runs a single instance",
            "remove --etcd.url",
        ],
    );
}

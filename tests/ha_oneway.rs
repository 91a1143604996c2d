//! High availability under a partial network fault: the leader alone loses its etcd link, one
//! way or both ways, while the bucket and the other replicas stay reachable.
//!
//! Three real `compactd run --wait` replicas on one filesystem bucket elect through a real etcd
//! (`common::etcd`) with the tight timings of `tests/ha.rs` (3 s lease TTL, 1 s op timeout,
//! 2 s takeover delay). `r1` is started first, so it leads, and it reaches etcd through a TCP
//! proxy (`common::proxy`); `r2` and `r3` talk to etcd directly. At `t0` the proxy cuts `r1`'s
//! link:
//!
//! - `DropAnswers`: `r1`'s requests still reach etcd, etcd's answers never reach `r1`. Its
//!   keepalives keep renewing its lease in etcd although `r1` hears no acknowledgement. The
//!   leader must stop sending keepalives once its last acknowledged one was sent more than a
//!   TTL ago, so that etcd expires its election key about a TTL after the last one it got; if
//!   it keeps sending them, its key lives on and nobody else can be elected.
//! - `BlackHole`: nothing passes either way and connections stay open (no refusal that would
//!   make the client fail fast); the lease expires a TTL after the last keepalive.
//!
//! Either way another replica must lead and commit (delete a block marked for deletion that
//! was put in the bucket before the cut, or upload the compaction of a fresh stream) within
//! 2 × TTL (keepalives stop at most a TTL after the last acknowledged one, the lease expires a
//! TTL later) + takeover delay + op timeout (the fence CAS before a commit) + 2 s slack
//! (observing, syncing the bucket, a loaded machine): 11 s. The fault is kept until
//! `t0 + 15 s` (and at least 4 s after that commit), then healed; 8 s later at the earliest,
//! `r1` must still run and follow the new leader, and it must not have written to the bucket
//! since `t0`: no write in its log, the fence (polled every 5 ms from the new leader's first
//! commit to the end) only ever names the new leader's epoch, and `compactd tools bucket
//! audit` finds no block of the old epoch committed after the new epoch's first commit.
//!
//! The measured times are printed with `eprintln!` (`--nocapture`); the replicas' and etcd's
//! log tails are printed when a test fails (and always with `COMPACTD_HA_LOGS=1`).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::etcd::Etcd;
use common::proxy::{Mode, Proxy};
use common::replicas::*;
use common::*;

/// Slack of the failover bound: observing the expired key, syncing the bucket, a busy machine.
const SLACK: Duration = Duration::from_secs(2);
/// How long the fault lasts at least, from the cut.
const FAULT: Duration = Duration::from_secs(15);
/// How long the fault lasts at least after the new leader's first commit, so that a stale
/// write of the old leader would have time to show while it is still cut off.
const FAULT_AFTER_COMMIT: Duration = Duration::from_secs(4);
/// How long the cluster runs at least after the heal before the final checks.
const AFTER_HEAL: Duration = Duration::from_secs(8);
/// How long the old leader may take after the heal to follow the new one: its HTTP/2
/// connection may need a ping timeout (15 s) to be found dead, and a new one up to the
/// connect timeout (5 s).
const FOLLOW_LIMIT: Duration = Duration::from_secs(30);

/// 2 × TTL + takeover delay + op timeout + slack (11 s with this suite's flags).
fn failover_bound() -> Duration {
    TTL * 2 + TAKEOVER + OP_TIMEOUT + SLACK
}

#[test]
fn leader_whose_etcd_answers_are_dropped_is_replaced_within_the_bound() {
    one_way_cut(Mode::DropAnswers, "drop-answers");
}

#[test]
fn leader_behind_an_etcd_black_hole_is_replaced_within_the_bound() {
    one_way_cut(Mode::BlackHole, "black-hole");
}

/// The proxy itself, against an echo server (no etcd needed): each mode does what the tests
/// above rely on, on a connection opened before the switch and on one opened after it.
#[test]
fn proxy_passes_drops_answers_black_holes_and_heals() {
    use std::io::{Read, Write};
    let echo = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let target = echo.local_addr().unwrap();
    // Echoes each connection, and counts the bytes it received from all of them: the proof
    // that a request reached the server although its answer was dropped.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r = received.clone();
    std::thread::spawn(move || {
        for conn in echo.incoming() {
            let Ok(mut conn) = conn else { return };
            let r = r.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    r.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let received = || received.load(std::sync::atomic::Ordering::SeqCst);
    let proxy = Proxy::start(target);
    let connect = || {
        let s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s
    };
    // Some(bytes) if an answer came within the read timeout, None if the read timed out.
    let ask = |s: &mut TcpStream, what: &[u8]| -> Option<Vec<u8>> {
        s.write_all(what).unwrap();
        let mut buf = vec![0u8; what.len()];
        match s.read_exact(&mut buf) {
            Ok(()) => Some(buf),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("read through the proxy: {e}"),
        }
    };
    let wait_received = |n: u64| {
        wait_for(Duration::from_secs(5), "the echo server to receive", || {
            (received() >= n).then_some(())
        })
    };

    let mut old = connect();
    assert_eq!(ask(&mut old, b"pass").as_deref(), Some(&b"pass"[..]));
    assert_eq!(received(), 4);

    proxy.set_mode(Mode::DropAnswers);
    assert_eq!(ask(&mut old, b"drop"), None, "the answer is dropped");
    wait_received(8);
    let mut new = connect();
    assert_eq!(ask(&mut new, b"new1"), None, "new connections too");
    wait_received(12);

    proxy.set_mode(Mode::BlackHole);
    assert_eq!(ask(&mut old, b"hole"), None);
    assert_eq!(ask(&mut new, b"hole"), None);
    let mut third = connect();
    assert_eq!(ask(&mut third, b"hole"), None, "accepted, not refused");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(received(), 12, "nothing reached the server");

    proxy.set_mode(Mode::Pass);
    // The answers dropped before the heal are gone; the next request is answered at once.
    for s in [&mut old, &mut new] {
        assert_eq!(ask(s, b"heal").as_deref(), Some(&b"heal"[..]));
    }
    // Its first request was swallowed, so the echo of the second comes first.
    assert_eq!(ask(&mut third, b"next").as_deref(), Some(&b"next"[..]));
    let mut fresh = connect();
    assert_eq!(ask(&mut fresh, b"more").as_deref(), Some(&b"more"[..]));
    let stats = proxy.stats();
    assert_eq!(stats.connections, 4, "{stats:?}");
    assert_eq!(stats.discarded_to_target, 12, "{stats:?}");
    assert_eq!(stats.discarded_to_client, 8, "{stats:?}");
    assert_eq!(proxy.mode(), Mode::Pass);
}

/// What the poll loop after the cut saw, as times since the cut.
#[derive(Debug, Default)]
struct Seen {
    /// The old leader logged that it stopped leading.
    stopped: Option<Duration>,
    /// A follower's /api/v1/leader named another node with a higher epoch: (when, node, epoch).
    announced: Option<(Duration, String, u64)>,
    /// Another replica reported `compactd_leader 1`: (when, index).
    leading: Option<(Duration, usize)>,
    /// The new leader's first commit: the marked block gone, or a write line in its log.
    committed: Option<Duration>,
}

/// The scenario of the module doc, with the proxy switched to `mode` at the cut.
fn one_way_cut(mode: Mode, tag: &str) {
    let Some(etcd) = Etcd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let bucket = dir.join("bucket");
    generate_streams(&bucket, 20, 24);
    let config = fs_config(&bucket);
    let etcd_addr: SocketAddr = etcd
        .endpoint()
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("etcd endpoint {} is not http://ip:port", etcd.endpoint()));
    let proxy = Proxy::start(etcd_addr);
    // Declared after the proxy, so it is dropped first: the replicas die (and their logs are
    // printed on failure) before their etcd link goes away.
    let mut c = Cluster::new(&etcd, &dir, &config, tag).owning(tmp);

    // r1 alone first, so that it wins the election; then the two that reach etcd directly.
    let started = Instant::now();
    c.spawn_through("r1", &proxy.url());
    wait_for(SLOW, "r1 to lead", || {
        (c.replicas[0].count(LEADING) > 0).then_some(())
    });
    c.spawn("r2");
    c.spawn("r3");
    let ((leader, epoch), _) = c.agreed_leader(SLOW);
    assert_eq!(c.replicas[leader].name, "r1", "r1, started first, leads");
    // Idle from here on (--wait-interval 1h): whatever r1 writes after the cut is stale.
    wait_for(SLOW, "r1's first iteration", || {
        (c.replicas[0].count(ITERATION_DONE) > 0).then_some(())
    });
    eprintln!(
        "[{tag}] r1 leads through the proxy (epoch {epoch}) and finished its first iteration {} \
         after start; r2 and r3 follow",
        secs(started.elapsed())
    );

    // Work for the next leader, put in place before the cut (r1 stays idle): a block marked
    // for deletion a week ago (its delete is a commit) and a fresh stream whose four oldest 2h
    // blocks compact into an 8h block (an upload stamped with the new epoch, for the audit).
    let marked = add_marked_block(&dir, &bucket, 1);
    add_stream(&dir, &bucket, "cluster=after-cut", 10);

    let old = &c.replicas[0];
    let others = [1, 2];
    let old_writes_before = write_counts(old);
    let old_leading_before = old.count(LEADING);
    let stopped_before = old.count(STOPPED);
    let other_writes_before: Vec<Vec<usize>> = others
        .iter()
        .map(|&i| write_counts(&c.replicas[i]))
        .collect();
    assert!(
        other_writes_before.iter().flatten().all(|&n| n == 0),
        "the followers wrote before the cut: {other_writes_before:?}"
    );
    let stats_before = proxy.stats();

    let t0 = Instant::now();
    proxy.set_mode(mode);
    let mut seen = Seen::default();
    // Each time is taken when the probe returned: at most a poll late, never early.
    while seen.committed.is_none() && t0.elapsed() < FAULT {
        if seen.stopped.is_none() && old.count(STOPPED) > stopped_before {
            seen.stopped = Some(t0.elapsed());
        }
        for &i in &others {
            let r = &c.replicas[i];
            if seen.announced.is_none() {
                if let Some((node, e)) = r.leader() {
                    if !node.is_empty() && node != old.name && e > epoch {
                        seen.announced = Some((t0.elapsed(), node, e));
                    }
                }
            }
            if seen.leading.is_none() && r.is_leader() {
                seen.leading = Some((t0.elapsed(), i));
            }
        }
        let wrote = others
            .iter()
            .zip(&other_writes_before)
            .any(|(&i, before)| write_counts(&c.replicas[i]) != *before);
        if !marked.exists() || wrote {
            seen.committed = Some(t0.elapsed());
        }
        std::thread::sleep(POLL);
    }
    let bound = failover_bound();
    let stats_cut = proxy.stats();
    let traffic = format!(
        "through the proxy since the cut: {} bytes r1 -> etcd forwarded, {} discarded; {} bytes \
         etcd -> r1 forwarded, {} discarded; {} new connections",
        stats_cut.forwarded_to_target - stats_before.forwarded_to_target,
        stats_cut.discarded_to_target - stats_before.discarded_to_target,
        stats_cut.forwarded_to_client - stats_before.forwarded_to_client,
        stats_cut.discarded_to_client - stats_before.discarded_to_client,
        stats_cut.connections - stats_before.connections,
    );
    eprintln!("[{tag}] {mode:?} from t0; seen: {seen:?}; {traffic}");
    let Some(committed) = seen.committed else {
        eprintln!(
            "[{tag}] failover after one-way etcd cut: none within {} (bound {}s)",
            secs(FAULT),
            bound.as_secs()
        );
        // With answers dropped, r1's requests still reach etcd: if they include keepalives,
        // its lease, and so its election key, stay alive and nobody else can be elected.
        let hint = if mode == Mode::DropAnswers {
            " (r1's requests reach etcd: a leader that goes on sending keepalives nobody \
             acknowledges keeps its election key alive)"
        } else {
            ""
        };
        panic!(
            "[{tag}] no other replica committed within {} of cutting r1's etcd link \
             ({mode:?}){hint}; a follower saw a new leader: {:?}; another replica led: {:?}; \
             {traffic}",
            secs(FAULT),
            seen.announced,
            seen.leading,
        );
    };
    report_figure(&format!(
        "ha_oneway [{tag}] failover after one-way etcd cut: {:.2}s to the new leader's first \
         commit (bound {}s)",
        committed.as_secs_f64(),
        bound.as_secs()
    ));
    assert!(
        committed <= bound,
        "[{tag}] the new leader's first commit came {} after the cut (bound {})",
        secs(committed),
        secs(bound)
    );

    // Who leads now: the replica that reported compactd_leader 1 (it committed, so it did).
    let (leading_at, new) = seen.leading.unwrap_or_else(|| {
        let (i, _) = wait_for(
            Duration::from_secs(5),
            "the committer's leader gauge",
            || others.iter().copied().find(|&i| c.replicas[i].is_leader()),
        );
        (committed, i)
    });
    let new_name = c.replicas[new].name.clone();
    let new_epoch = logged_epoch(&c.replicas[new], LEADING);
    assert!(
        new_epoch > epoch,
        "new epoch {new_epoch} > old epoch {epoch}"
    );
    let stopped = seen
        .stopped
        .expect("r1 logged that it stopped leading before the new leader committed");
    assert!(
        stopped <= leading_at,
        "r1 stopped leading only {} after the cut, after {new_name} led ({} after it)",
        secs(stopped),
        secs(leading_at)
    );
    eprintln!(
        "[{tag}] r1 stopped leading {} after the cut; {} announced {} after it; {new_name} led \
         (epoch {new_epoch}) {} after it and committed {} after it",
        secs(stopped),
        seen.announced
            .as_ref()
            .map_or("nobody".to_string(), |(_, n, e)| format!("{n} (epoch {e})")),
        seen.announced
            .as_ref()
            .map_or("-".to_string(), |(t, _, _)| secs(*t)),
        secs(leading_at),
        secs(committed)
    );

    // The fault goes on; from the first commit on, only the new leader may write the fence.
    let mut fence = FenceWatch::new(&bucket, &new_name, new_epoch);
    let heal_at = FAULT.max(committed + FAULT_AFTER_COMMIT);
    while t0.elapsed() < heal_at {
        fence.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        old.metric("compactd_leader"),
        Some(0.0),
        "r1 still leads, cut off from etcd, while {new_name} leads"
    );
    proxy.set_mode(Mode::Pass);
    let healed = Instant::now();
    eprintln!(
        "[{tag}] healed {} after the cut; r1 logged no write meanwhile: {}",
        secs(t0.elapsed()),
        write_counts(old) == old_writes_before
    );

    // After the heal r1 must find out that it lost its key and follow the new leader.
    let mut followed = None;
    while healed.elapsed() < AFTER_HEAL || followed.is_none() {
        fence.poll();
        if followed.is_none()
            && old.leader() == Some((new_name.clone(), new_epoch))
            && !old.is_leader()
        {
            followed = Some(healed.elapsed());
        }
        assert!(
            healed.elapsed() < FOLLOW_LIMIT,
            "[{tag}] r1 does not follow {new_name} (epoch {new_epoch}) {} after the heal; its \
             view: {:?}",
            secs(FOLLOW_LIMIT),
            old.leader()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let followed = followed.unwrap();
    let status = c.replicas[0].try_exit();
    assert_eq!(status, None, "r1 is still running after the heal");
    let old = &c.replicas[0];
    eprintln!(
        "[{tag}] r1 follows {new_name} (epoch {new_epoch}) {} after the heal; {} in all since \
         the cut",
        secs(followed),
        secs(t0.elapsed())
    );

    // r1 made no bucket write since the cut, and the new leader did its work.
    assert_eq!(
        write_counts(old),
        old_writes_before,
        "r1 logged a bucket write after the cut ({WRITE_LINES:?})"
    );
    assert_eq!(
        old.count(LEADING),
        old_leading_before,
        "r1 did not lead again after the cut"
    );
    fence.assert_clean();
    let ((agreed, agreed_epoch), _) = c.agreed_leader(Duration::from_secs(10));
    assert_eq!(
        (agreed, agreed_epoch),
        (new, new_epoch),
        "all three replicas agree on {new_name}"
    );
    wait_for(SLOW, "the new leader's iteration", || {
        (c.replicas[new].count(ITERATION_DONE) > 0).then_some(())
    });
    assert!(!marked.exists(), "the new leader deleted the marked block");
    assert!(
        c.replicas[new].count("uploaded block") >= 1,
        "the new leader compacted the fresh stream"
    );
    verify_ok(&config);
    let audit = audit_ok(&config);
    let epochs: Vec<(u64, serde_json::Value)> = audit["epochs"]
        .as_array()
        .expect("audit epochs")
        .iter()
        .map(|e| (e["epoch"].as_u64().unwrap(), e["holders"].clone()))
        .collect();
    assert_eq!(
        epochs,
        [
            (epoch, serde_json::json!(["r1"])),
            (new_epoch, serde_json::json!([new_name]))
        ],
        "blocks of r1's epoch, then of {new_name}'s: {audit:#}"
    );
    let fence_now = read_fence(&bucket);
    assert_eq!(
        (fence_now.epoch, fence_now.holder.as_str()),
        (new_epoch, new_name.as_str())
    );
    eprintln!(
        "[{tag}] audit and verify clean; fence seq {} -> {} renewed only by {new_name}; {} in \
         all",
        fence.first_seq,
        fence.last_seq,
        secs(started.elapsed())
    );
}

/// How many log lines of each of [`WRITE_LINES`] `r` logged so far.
fn write_counts(r: &Replica) -> Vec<usize> {
    WRITE_LINES.iter().map(|l| r.count(l)).collect()
}

/// Generates `hours` of 2h blocks of one stream (`labels`) next to the bucket and moves them
/// in, one rename per block, so that a sync sees each block whole or not at all.
fn add_stream(dir: &Path, bucket: &Path, labels: &str, hours: u32) -> Vec<PathBuf> {
    let staging = dir.join("staging-stream");
    generate_stream(&staging, 20, hours, labels, 42, &[]);
    block_dirs(&staging)
        .into_iter()
        .map(|b| {
            let target = bucket.join(b.file_name().unwrap());
            std::fs::rename(&b, &target).expect("move the block into the bucket");
            target
        })
        .collect()
}

/// The fence, polled: every record seen must be the new leader's (its name and epoch) with a
/// sequence number that never goes back. A record of the old epoch, or of anyone else, after
/// the new leader's first commit is a stale write.
struct FenceWatch {
    bucket: PathBuf,
    holder: String,
    epoch: u64,
    first_seq: u64,
    last_seq: u64,
    foreign: Vec<compactd::core::fence::FenceRecord>,
}

impl FenceWatch {
    fn new(bucket: &Path, holder: &str, epoch: u64) -> FenceWatch {
        let mut w = FenceWatch {
            bucket: bucket.to_path_buf(),
            holder: holder.to_string(),
            epoch,
            first_seq: 0,
            last_seq: 0,
            foreign: Vec::new(),
        };
        w.poll();
        w.first_seq = w.last_seq;
        w
    }

    fn poll(&mut self) {
        let f = read_fence(&self.bucket);
        if (f.epoch != self.epoch || f.holder != self.holder || f.seq < self.last_seq)
            && !self.foreign.contains(&f)
        {
            self.foreign.push(f.clone());
        }
        self.last_seq = self.last_seq.max(f.seq);
    }

    fn assert_clean(&self) {
        assert!(
            self.foreign.is_empty(),
            "the fence was written by someone other than {} (epoch {}) after its first commit: \
             {:?}",
            self.holder,
            self.epoch,
            self.foreign
        );
        assert!(
            self.last_seq > self.first_seq,
            "the new leader kept renewing the fence"
        );
    }
}

//! `compactd run` replicas for the HA tests (`tests/ha.rs`, `tests/ha_oneway.rs`,
//! `tests/ha_bucket.rs`): each a child process with its log in a file, its HTTP port read back
//! from that log, probes of /metrics and /api/v1/leader, and the flags and bucket helpers these
//! tests share.
//!
//! A [`Cluster`] is the harness of these tests: one bucket, one directory for the replicas'
//! data dirs and logs, and the election they share (through etcd, on the bucket itself with
//! `--election=bucket`, or none for single instances); it starts replicas by name with this
//! suite's flags ([`Cluster::run`]). Timings are tight so
//! that each test takes seconds: a 3 s lease TTL, a 1 s op timeout and a 2 s takeover delay.
//! A cluster prints its replicas' log tails (and etcd's) when the test fails, and always with
//! `COMPACTD_HA_LOGS=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use compactd::core::fence::{FenceRecord, FENCE_PATH};

use super::etcd::Etcd;
use super::{block_dirs, compactd, generate_stream, try_http_get, CompactdRun};

/// `--etcd.lease-ttl`.
pub const TTL: Duration = Duration::from_secs(3);
/// `--leader.takeover-delay`.
pub const TAKEOVER: Duration = Duration::from_secs(2);
/// `--objstore.op-timeout`.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// The flags above, as passed.
pub const TIMING_FLAGS: [&str; 6] = [
    "--etcd.lease-ttl",
    "3s",
    "--objstore.op-timeout",
    "1s",
    "--leader.takeover-delay",
    "2s",
];
/// The limit of waits that are not measured (start-up, a first compaction on a busy machine).
pub const SLOW: Duration = Duration::from_secs(60);
/// The polling interval of the measured waits.
pub const POLL: Duration = Duration::from_millis(20);

/// Logged when a replica starts writing as the leader (after its fence CAS and the takeover
/// delay); carries `epoch=N`.
pub const LEADING: &str = "leading: the fence holds our epoch; writing";
/// Logged when a leader loses the right to write.
pub const STOPPED: &str = "stopped leading; no more writes";
/// Logged at the end of each compaction iteration.
pub const ITERATION_DONE: &str = "compaction iteration done";
/// Log lines of bucket writes other than the fence.
pub const WRITE_LINES: [&str; 4] = [
    "uploaded block",
    "marked block",
    "deleted block marked for deletion",
    "deleted aborted partial upload",
];

/// A duration as seconds with millisecond precision, for the measured times the tests print.
pub fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// Polls `probe` every [`POLL`] until it returns `Some`, or panics naming `what` after
/// `limit`. Returns the value and how long it took.
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return (v, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {} waiting for {what}",
            secs(limit)
        );
        std::thread::sleep(POLL);
    }
}

/// One `compactd run` process, its stderr (and stdout) in a file; killed on drop.
pub struct Replica {
    /// Its `--node.name`.
    pub name: String,
    child: Child,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// The port it serves HTTP on.
    pub port: u16,
    /// Its exit status, once reaped.
    status: Option<ExitStatus>,
}

impl Replica {
    /// Spawns `compactd compact --wait` as `name` on the filesystem bucket `<dir>/bucket`
    /// (created if missing) with its own data dir, serving HTTP on a kernel-picked port, plus
    /// `extra` flags: a single instance for the tests of a flag.
    pub fn spawn_single(dir: &Path, name: &str, extra: &[&str]) -> Replica {
        let bucket = dir.join("bucket");
        std::fs::create_dir_all(&bucket).expect("bucket dir");
        let run = CompactdRun::on_dir(&bucket)
            .subcommand("compact")
            .data_dir(&dir.join(format!("data-{name}")))
            .wait()
            .extra(extra);
        Replica::spawn(dir, name, &run.args())
    }

    /// Spawns `compactd <args>` with its output in `<dir>/<name>.log`; waits until it serves
    /// HTTP (on the port the kernel picked for `--http-address 127.0.0.1:0`).
    pub fn spawn(dir: &Path, name: &str, args: &[String]) -> Replica {
        Replica::spawn_pinned(dir, name, args, None)
    }

    /// [`spawn`](Self::spawn), on the CPUs `cpus` only (`taskset -c <cpus>`) when given.
    pub fn spawn_pinned(dir: &Path, name: &str, args: &[String], cpus: Option<&str>) -> Replica {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("replica log file");
        let bin = env!("CARGO_BIN_EXE_compactd");
        let mut cmd = match cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", cpus, bin]);
                taskset
            }
            None => Command::new(bin),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file);
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec. The
        // replica dies with the test thread that started it, even without unwinding.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn compactd");
        let mut r = Replica {
            name: name.to_string(),
            child,
            log,
            port: 0,
            status: None,
        };
        let (port, _) = wait_for(SLOW, &format!("{name} to serve HTTP"), || {
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("{name} exited early ({status}):\n{}", r.log_text());
            }
            r.log_text()
                .lines()
                .find(|l| l.contains("serving HTTP"))
                .and_then(|l| l.split("address=").nth(1))
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
        });
        r.port = port;
        r
    }

    /// The whole log so far (empty if it cannot be read).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// False once the test reaped the process ([`Self::kill9`], [`Self::wait_exit`]).
    pub fn alive(&self) -> bool {
        self.status.is_none()
    }

    /// Sends `signal` (the process must not have been reaped).
    pub fn signal(&self, signal: libc::c_int) {
        assert!(self.alive(), "{} has exited", self.name);
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.name);
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.status = Some(self.child.wait().expect("wait for the killed replica"));
    }

    /// The exit status if the process has exited (it is reaped then), `None` while it runs.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while self.status.is_none() && start.elapsed() < limit {
            self.status = self.child.try_wait().expect("try_wait");
            if self.status.is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.status
    }

    /// The value of an unlabelled sample on /metrics, if the replica answers.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = try_http_get(self.port, "/metrics").ok()?;
        assert_eq!(status, 200, "{} /metrics: {body}", self.name);
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Its first `leading` log line, asserting it names `epoch`.
    pub fn leading_line(&self, epoch: u64) -> String {
        let leading = self
            .log_text()
            .lines()
            .find(|l| l.contains(LEADING))
            .map(String::from)
            .unwrap_or_else(|| panic!("{} logged no {LEADING:?}", self.name));
        assert!(leading.contains(&format!("epoch={epoch}")), "{leading}");
        leading
    }

    /// True when it reports `compactd_leader 1` on /metrics.
    pub fn is_leader(&self) -> bool {
        self.metric("compactd_leader") == Some(1.0)
    }

    /// `/api/v1/leader`: (leader, epoch), if the replica answers.
    pub fn leader(&self) -> Option<(String, u64)> {
        let (status, body) = try_http_get(self.port, "/api/v1/leader").ok()?;
        assert_eq!(status, 200, "{} /api/v1/leader: {body}", self.name);
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{} /api/v1/leader is not JSON ({e}): {body}", self.name));
        assert!(v["since"].is_string(), "{body}");
        Some((v["leader"].as_str()?.to_string(), v["epoch"].as_u64()?))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.status.is_none() {
            // SAFETY: kill(2) on our own child, not reaped yet; a stopped process must be
            // continued to die promptly.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGCONT) };
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Who elects the leader of a [`Cluster`].
enum Election {
    /// Nobody: single instances, which only the bucket's fence keeps apart.
    Single,
    /// etcd, at its client URL; its log is printed on failure.
    Etcd { url: String, log: PathBuf },
    /// The bucket itself (`--election=bucket`): the fence object is the lease.
    Bucket,
}

/// The harness of one HA test: its replicas, the bucket they share, the directory of their
/// data dirs and logs, and the election they take part in. Prints their logs if the test
/// fails; kills them on drop, then deletes the test's temp dir if it owns it.
pub struct Cluster {
    /// The replicas, in start order.
    pub replicas: Vec<Replica>,
    /// Who elects the leader.
    election: Election,
    /// The election's key prefix is `/compactd/<prefix>`.
    prefix: String,
    /// The bucket's objstore config.
    config: String,
    /// Where the replicas' data dirs (`data-<name>`) and logs (`<name>.log`) go.
    dir: PathBuf,
    /// The test's temp dir when the cluster owns it: deleted after the replicas are killed.
    tmp: Option<tempfile::TempDir>,
    /// `--wait-interval` of the replicas it starts.
    wait_interval: String,
    /// Flags added to every replica it starts, after this suite's.
    flags: Vec<String>,
    /// `--ownership` of the replicas it starts: `bucket` unless a test asks otherwise. The
    /// HA tests are about the bucket election and its fence, which every replica runs in
    /// both modes; `tests/scaleout.rs` runs the default, `stream`.
    ownership: &'static str,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("COMPACTD_HA_LOGS").is_none() {
            return;
        }
        for r in &self.replicas {
            let text = r.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "----- {} (port {}, {}) last lines -----\n{}",
                r.name,
                r.port,
                r.log.display(),
                lines[lines.len().saturating_sub(80)..].join("\n")
            );
        }
        if let Election::Etcd { log, .. } = &self.election {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "----- etcd log tail -----\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

impl Cluster {
    /// A cluster without replicas yet on the bucket of `config`, electing through `etcd`
    /// under `/compactd/<prefix>`, with its replicas' data dirs and logs in `dir`.
    pub fn new(etcd: &Etcd, dir: &Path, config: &str, prefix: &str) -> Cluster {
        let election = Election::Etcd {
            url: etcd.endpoint(),
            log: etcd.log_path(),
        };
        Cluster::with_election(election, dir, config, prefix)
    }

    /// A cluster of single instances (no election) on the bucket of `config`, with their
    /// data dirs and logs in `dir`.
    pub fn single(dir: &Path, config: &str) -> Cluster {
        Cluster::with_election(Election::Single, dir, config, "")
    }

    /// A cluster without replicas yet on the bucket of `config` (a store with conditional
    /// writes), electing on the bucket itself (`--election=bucket`, no etcd), with its
    /// replicas' data dirs and logs in `dir`.
    pub fn on_bucket(dir: &Path, config: &str) -> Cluster {
        Cluster::with_election(Election::Bucket, dir, config, "")
    }

    fn with_election(election: Election, dir: &Path, config: &str, prefix: &str) -> Cluster {
        Cluster {
            replicas: Vec::new(),
            election,
            prefix: prefix.to_string(),
            config: config.to_string(),
            dir: dir.to_path_buf(),
            tmp: None,
            wait_interval: "1h".to_string(),
            flags: Vec::new(),
            ownership: "bucket",
        }
    }

    /// Takes the test's temp dir, to delete it only after the replicas are killed.
    pub fn owning(mut self, tmp: tempfile::TempDir) -> Cluster {
        self.tmp = Some(tmp);
        self
    }

    /// Replicas started from now on run one iteration every `interval` (default 1h).
    pub fn wait_interval(mut self, interval: &str) -> Cluster {
        self.wait_interval = interval.to_string();
        self
    }

    /// Replicas started from now on get `--ownership <mode>`.
    pub fn ownership(mut self, mode: &'static str) -> Cluster {
        self.ownership = mode;
        self
    }

    /// Replicas started from now on also get `flags`.
    pub fn with_flags(mut self, flags: &[&str]) -> Cluster {
        self.flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// Starts replicas `r1`..`rN`.
    pub fn with_replicas(mut self, n: usize) -> Cluster {
        for i in 1..=n {
            self.spawn(&format!("r{i}"));
        }
        self
    }

    /// The one-shot `compactd run` of replica `name` with this suite's flags, without the
    /// election ([`spawn`](Self::spawn) adds `--wait` and the election flags).
    pub fn run(&self, name: &str) -> CompactdRun {
        CompactdRun::new(&self.config)
            .data_dir(&self.dir.join(format!("data-{name}")))
            .node(name)
            .flag("--delete-delay", "0s")
            .flag("--consistency-delay", "0s")
            .arg("--downsampling.disable")
            .extra(&TIMING_FLAGS)
    }

    /// Starts one more replica `name`, `--wait`ing and taking part in the cluster's election.
    pub fn spawn(&mut self, name: &str) {
        let election = match &self.election {
            Election::Single => Vec::new(),
            Election::Etcd { url, .. } => self.etcd_flags(url),
            Election::Bucket => vec!["--election".to_string(), "bucket".to_string()],
        };
        self.spawn_with(name, &election);
    }

    /// [`spawn`](Self::spawn), reaching the cluster's etcd at `etcd_url` (a proxy to it).
    pub fn spawn_through(&mut self, name: &str, etcd_url: &str) {
        assert!(
            matches!(self.election, Election::Etcd { .. }),
            "a cluster without etcd has no etcd to reach"
        );
        let election = self.etcd_flags(etcd_url);
        self.spawn_with(name, &election);
    }

    /// [`spawn`](Self::spawn), reaching the bucket through `config` (a proxy to it) instead of
    /// the cluster's config.
    pub fn spawn_on(&mut self, name: &str, config: &str) {
        let cluster_config = std::mem::replace(&mut self.config, config.to_string());
        self.spawn(name);
        self.config = cluster_config;
    }

    /// The flags of an election through etcd at `url`, under `/compactd/<prefix>`.
    fn etcd_flags(&self, url: &str) -> Vec<String> {
        let prefix = format!("/compactd/{}", self.prefix);
        ["--etcd.url", url, "--etcd.prefix", &prefix]
            .map(String::from)
            .to_vec()
    }

    /// Starts replica `name` with the flags of its `election`.
    fn spawn_with(&mut self, name: &str, election: &[String]) {
        let run = self
            .run(name)
            .wait()
            .wait_interval(&self.wait_interval)
            .flag("--ownership", self.ownership)
            .extra(&self.flags)
            .extra(election);
        self.replicas
            .push(Replica::spawn(&self.dir, name, &run.args()));
    }

    /// The index of the replica called `name`.
    pub fn by_name(&self, name: &str) -> usize {
        self.replicas
            .iter()
            .position(|r| r.name == name)
            .unwrap_or_else(|| panic!("no replica {name}"))
    }

    /// The live replicas reporting `compactd_leader 1`.
    pub fn leaders(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|&i| self.replicas[i].alive() && self.replicas[i].is_leader())
            .collect()
    }

    /// SIGTERM to the leader `leader` (epoch `epoch`): another replica names a new leader
    /// with a higher epoch within 2 s, the old one exits 0 within 3 s, and the new one
    /// reports `compactd_leader 1` (after its takeover delay). Prints the times; returns the
    /// new leader's index and epoch.
    pub fn sigterm_hands_over(&mut self, leader: usize, epoch: u64) -> (usize, u64) {
        let old = self.replicas[leader].name.clone();
        let others: Vec<usize> = (0..self.replicas.len()).filter(|&i| i != leader).collect();
        let sent = Instant::now();
        self.replicas[leader].signal(libc::SIGTERM);
        let ((seen_by, new_name, new_epoch), _) =
            wait_for(Duration::from_secs(10), "another leader announced", || {
                others.iter().find_map(|&i| {
                    let (name, e) = self.replicas[i].leader()?;
                    (!name.is_empty() && name != old).then_some((i, name, e))
                })
            });
        let took = sent.elapsed();
        eprintln!(
            "[sigterm] SIGTERM {old}: {} reports leader {new_name} (epoch {new_epoch}) after {}",
            self.replicas[seen_by].name,
            secs(took)
        );
        assert!(
            took < Duration::from_secs(2),
            "handover took {}",
            secs(took)
        );
        assert!(new_epoch > epoch, "epoch {new_epoch} > {epoch}");

        let status = self.replicas[leader].wait_exit(Duration::from_secs(10));
        let exited = sent.elapsed();
        eprintln!(
            "[sigterm] {old} exited {status:?} {} after SIGTERM",
            secs(exited)
        );
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{old} exits 0");
        assert!(
            exited < Duration::from_secs(3),
            "{old} took {}",
            secs(exited)
        );

        let new = self.by_name(&new_name);
        let (_, writing) = wait_for(Duration::from_secs(10), "the new leader to write", || {
            self.replicas[new].is_leader().then_some(())
        });
        eprintln!(
            "[sigterm] {new_name} reports compactd_leader 1 after {} more (takeover delay {})",
            secs(writing),
            secs(TAKEOVER)
        );
        (new, new_epoch)
    }

    /// Waits until exactly one of the replicas `among` reports `compactd_leader 1`.
    pub fn sole_leader_among(&self, among: &[usize], limit: Duration) -> (usize, Duration) {
        wait_for(limit, "one leader", || {
            let l: Vec<usize> = among
                .iter()
                .copied()
                .filter(|&i| self.replicas[i].is_leader())
                .collect();
            (l.len() == 1).then(|| l[0])
        })
    }

    /// Waits until exactly one live replica reports `compactd_leader 1` and every live
    /// replica's /api/v1/leader names it with the same epoch; returns (index, epoch).
    pub fn agreed_leader(&self, limit: Duration) -> ((usize, u64), Duration) {
        wait_for(limit, "one leader all replicas agree on", || {
            let leaders = self.leaders();
            let [i] = leaders[..] else { return None };
            let name = &self.replicas[i].name;
            let views: Vec<(String, u64)> = self
                .replicas
                .iter()
                .filter(|r| r.alive())
                .map(|r| r.leader())
                .collect::<Option<_>>()?;
            let epoch = views[0].1;
            views
                .iter()
                .all(|(n, e)| n == name && *e == epoch && epoch > 0)
                .then_some((i, epoch))
        })
    }
}

/// The epoch of the last log line of `r` that contains `line` (its `epoch=N` field).
pub fn logged_epoch(r: &Replica, line: &str) -> u64 {
    let text = r.log_text();
    let l = text
        .lines()
        .rev()
        .find(|l| l.contains(line))
        .unwrap_or_else(|| panic!("{} never logged {line:?}", r.name));
    l.split_whitespace()
        .find_map(|f| f.strip_prefix("epoch=")?.parse().ok())
        .unwrap_or_else(|| panic!("no epoch in {l:?}"))
}

/// Puts work for a leader into the bucket: a block of a stream of its own (`cluster=extra-n`)
/// with a deletion mark from a week ago, which the next iteration deletes (a commit). It is
/// built next to the bucket and renamed into it, so a sync sees all of it or nothing.
pub fn add_marked_block(dir: &Path, bucket: &Path, n: u32) -> PathBuf {
    let block = stage_marked_block(dir, n);
    let target = bucket.join(block.file_name().unwrap());
    std::fs::rename(&block, &target).expect("move the block into the bucket");
    target
}

/// The block of [`add_marked_block`], with its deletion mark, built in `<dir>/staging-<n>`;
/// returns its directory (named by its id).
pub fn stage_marked_block(dir: &Path, n: u32) -> PathBuf {
    let staging = dir.join(format!("staging-{n}"));
    let labels = format!("cluster=extra-{n}");
    generate_stream(&staging, 5, 2, &labels, u64::from(100 + n), &[]);
    let blocks = block_dirs(&staging);
    assert_eq!(blocks.len(), 1, "one generated block");
    let id = blocks[0].file_name().unwrap().to_str().unwrap().to_string();
    let week_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7 * 86_400;
    std::fs::write(
        blocks[0].join("deletion-mark.json"),
        format!(r#"{{"id": "{id}", "deletion_time": {week_ago}, "version": 1}}"#),
    )
    .unwrap();
    blocks[0].clone()
}

/// The fence record of a filesystem bucket.
pub fn read_fence(bucket: &Path) -> FenceRecord {
    let bytes = std::fs::read(bucket.join(FENCE_PATH)).expect("read the fence");
    FenceRecord::parse(FENCE_PATH, &bytes).expect("parse the fence")
}

/// `compactd tools bucket audit --output json`, asserting exit 0 and `"ok": true`.
pub fn audit_ok(config: &str) -> serde_json::Value {
    let out = compactd(&[
        "tools",
        "bucket",
        "audit",
        "--objstore.config",
        config,
        "--output",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "audit failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("audit JSON");
    assert_eq!(v["ok"], serde_json::json!(true), "{stdout}");
    assert_eq!(v["violations"], serde_json::json!([]), "{stdout}");
    v
}

/// [`audit_ok`] of a bucket compacted in one term: every one of the `uploaded` blocks
/// compactd wrote carries `leader`'s `epoch` and name, the 8 source blocks carry no stamp,
/// and the fence holds that term.
pub fn audit_one_term(
    config: &str,
    leader: &str,
    epoch: u64,
    uploaded: usize,
) -> serde_json::Value {
    let audit = audit_ok(config);
    assert_eq!(audit["unstamped"], 8, "{audit:#}");
    assert_eq!(
        audit["epochs"],
        serde_json::json!([{
            "epoch": epoch,
            "holders": [leader],
            "blocks": uploaded,
            "first_commit": audit["epochs"][0]["first_commit"],
            "last_commit": audit["epochs"][0]["last_commit"],
        }]),
        "every block compactd wrote carries the leader's epoch and name: {audit:#}"
    );
    assert_eq!(audit["fence"]["state"], "present", "{audit:#}");
    assert_eq!(audit["fence"]["epoch"], epoch, "{audit:#}");
    assert_eq!(audit["fence"]["holder"], leader, "{audit:#}");
    audit
}

/// `compactd tools bucket verify`, asserting exit 0.
pub fn verify_ok(config: &str) {
    let out = compactd(&["tools", "bucket", "verify", "--objstore.config", config]);
    assert!(
        out.status.success(),
        "verify: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

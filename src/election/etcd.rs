//! The etcd coordinator: executes the core's [`CoordOp`]s on etcd's KV, lease and watch APIs
//! exactly as clientv3's `concurrency.Election` recipe does.
//!
//! The connection is lazy: [`EtcdCoordinator::connect`] checks the configuration (endpoints,
//! TLS files, credentials when etcd answers) and tries to connect once, but a replica started
//! while etcd is down still comes up; each [`EtcdCoordinator::execute`] then connects first
//! if there is no client yet, and answers [`CoordResult::Failed`] while etcd stays
//! unreachable (the core retries with backoff). A client that exists reconnects by itself
//! when etcd comes back. With several endpoints, a request that fails on one member is tried
//! on the next within its timeout (see [`EtcdCoordinator`]).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, Error, EventType, GetOptions,
    Identity, PutOptions, SortOrder, SortTarget, TlsOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::core::coord::{CoordError, CoordErrorKind, CoordOp, CoordResult, ElectionKey, LeaseId};

/// HTTP/2 ping interval while a stream is open. etcd closes connections that ping more often
/// than its `--grpc-keepalive-min-time` (5s by default), or at all while no stream is open.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may stay unanswered before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach etcd.
#[derive(Clone)]
pub struct EtcdConfig {
    /// Client URLs: `http://host:port`, `https://host:port` or `host:port` (HTTPS when TLS
    /// files are given, HTTP otherwise).
    pub endpoints: Vec<String>,
    /// User name for etcd's authentication, if enabled.
    pub username: Option<String>,
    /// Password of `username`.
    pub password: Option<String>,
    /// PEM file of the CA that signed etcd's server certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM file of our client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM file of the private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Bound on establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Executes coordinator requests on etcd. Share it through an `Arc`; requests may run
/// concurrently.
///
/// One client per endpoint, used one at a time: a request goes to the member that answered
/// last and fails over to the next one (within the request's timeout) when that member
/// fails or does not answer. (etcd-client's own balancing over several endpoints keeps
/// sending requests to a dead member, and they fail.)
pub struct EtcdCoordinator {
    members: Vec<Member>,
    /// The endpoints joined by commas, for logs and error texts.
    display: String,
    options: ConnectOptions,
    /// The index of the member the next request goes to first.
    current: AtomicUsize,
}

/// One endpoint and its client.
struct Member {
    endpoint: String,
    /// `None` until a connection attempt succeeded.
    client: Mutex<Option<Client>>,
}

impl Member {
    /// The client, connecting first if there is none yet.
    async fn client(&self, options: &ConnectOptions) -> Result<Client, Failure> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = Client::connect([&self.endpoint], Some(options.clone()))
            .await
            .map_err(|e| Failure {
                kind: error_kind(&e),
                text: format!("connecting: {}", describe(&e)),
            })?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

impl EtcdCoordinator {
    /// Checks the configuration and tries to connect once. Fails on a configuration problem
    /// (no or malformed endpoint, unreadable TLS file, certificate without key, credentials
    /// that etcd refuses), not when etcd is merely unreachable: [`Self::execute`] connects
    /// later.
    pub async fn connect(cfg: &EtcdConfig) -> Result<EtcdCoordinator, String> {
        let endpoints: Vec<String> = cfg
            .endpoints
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err("etcd: no endpoint given".into());
        }
        let display = endpoints.join(",");
        let options =
            connect_options(cfg, &endpoints).map_err(|e| format!("etcd {display}: {e}"))?;
        // Without credentials this touches no network; with them it authenticates.
        let attempts = endpoints.iter().map(|endpoint| {
            let connecting = Client::connect([endpoint], Some(options.clone()));
            tokio::time::timeout(cfg.connect_timeout, connecting)
        });
        let outcomes = futures::future::join_all(attempts).await;
        let mut members = Vec::with_capacity(endpoints.len());
        for (endpoint, outcome) in endpoints.into_iter().zip(outcomes) {
            let client = match outcome {
                Ok(Ok(client)) => Some(client),
                Ok(Err(e)) if is_config_error(&e) => {
                    return Err(format!("etcd {endpoint}: {}", describe(&e)));
                }
                Ok(Err(e)) => {
                    tracing::warn!(
                        etcd = %endpoint, error = %describe(&e),
                        "etcd unreachable; connecting again on the next request"
                    );
                    None
                }
                Err(_) => {
                    tracing::warn!(
                        etcd = %endpoint, timeout = ?cfg.connect_timeout,
                        "etcd did not answer; connecting again on the next request"
                    );
                    None
                }
            };
            members.push(Member {
                endpoint,
                client: Mutex::new(client),
            });
        }
        Ok(EtcdCoordinator {
            members,
            display,
            options,
            current: AtomicUsize::new(0),
        })
    }

    /// The endpoints, comma-separated, for logs.
    pub fn endpoints(&self) -> &str {
        &self.display
    }

    /// Executes one request. Every operation but `WaitDelete` is bounded by `timeout`;
    /// `WaitDelete` is bounded by `timeout` to open its watch, then by its `max_wait_ms`.
    /// Errors come back as [`CoordResult::Failed`] naming the operation and the endpoints,
    /// of the kind of the last attempt's failure.
    pub async fn execute(&self, op: &CoordOp, timeout: Duration) -> CoordResult {
        let result = match op {
            CoordOp::Grant { ttl_secs } => self.on_a_member(timeout, |c| grant(c, *ttl_secs)).await,
            CoordOp::KeepAlive { lease } => {
                self.on_a_member(timeout, |c| keep_alive(c, *lease)).await
            }
            CoordOp::Campaign { key, value, lease } => {
                self.on_a_member(timeout, |c| campaign(c, key, value, *lease))
                    .await
            }
            CoordOp::Observe { prefix } => self.on_a_member(timeout, |c| observe(c, prefix)).await,
            CoordOp::WaitDelete {
                key,
                after_revision,
                max_wait_ms,
            } => {
                self.wait_delete(key, *after_revision, *max_wait_ms, timeout)
                    .await
            }
            CoordOp::Resign { key, lease } => {
                self.on_a_member(timeout, |c| resign(c, key, *lease)).await
            }
            CoordOp::Withdraw {
                key,
                create_revision,
            } => {
                self.on_a_member(timeout, |c| withdraw(c, key, *create_revision))
                    .await
            }
        };
        result.unwrap_or_else(|e| {
            let message = format!("{}: etcd {}: {}", op.name(), self.display, e.text);
            CoordResult::Failed(CoordError::new(e.kind, message))
        })
    }

    /// Runs `attempt` on the current member, then on each other one in turn while they
    /// fail, all within `timeout` (shared evenly between the members still to try). A
    /// failure moves the next request on to the next member. The error lists each attempt,
    /// and has the kind of the last one.
    async fn on_a_member<T, F, Fut>(&self, timeout: Duration, attempt: F) -> Result<T, Failure>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let deadline = Instant::now() + timeout;
        let n = self.members.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        let mut kind = CoordErrorKind::Other;
        for k in 0..n {
            let i = (first + k) % n;
            let member = &self.members[i];
            let left = deadline.saturating_duration_since(Instant::now());
            let budget = left / u32::try_from(n - k).unwrap_or(u32::MAX);
            let outcome = tokio::time::timeout(budget, async {
                attempt(member.client(&self.options).await?).await
            })
            .await;
            let error = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => Failure {
                    kind: CoordErrorKind::Timeout,
                    text: format!("timed out after {:?}", whole_millis(budget)),
                },
            };
            kind = error.kind;
            let error = error.text;
            let next = (i + 1) % n;
            let _ = self
                .current
                .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
            errors.push(if n == 1 {
                error
            } else {
                format!("{}: {error}", member.endpoint)
            });
        }
        Err(Failure {
            kind,
            text: errors.join("; "),
        })
    }

    /// Watches `key` from `after_revision + 1` for its deletion, for at most `max_wait_ms`.
    async fn wait_delete(
        &self,
        key: &str,
        after_revision: i64,
        max_wait_ms: i64,
        timeout: Duration,
    ) -> Result<CoordResult, Failure> {
        let deadline =
            Instant::now() + Duration::from_millis(u64::try_from(max_wait_ms).unwrap_or(0));
        let options = WatchOptions::new().with_start_revision(after_revision + 1);
        let mut stream = self
            .on_a_member(timeout, |mut c| {
                let options = options.clone();
                async move { c.watch(key, Some(options)).await.map_err(|e| failure(&e)) }
            })
            .await?;
        // Dropping the stream on return cancels the watch.
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, stream.message()).await else {
                return Ok(CoordResult::StillThere);
            };
            let resp = message
                .map_err(|e| failure(&e))?
                .ok_or("the watch stream closed")?;
            if resp.compact_revision() > 0 {
                // The start revision was compacted away: the caller observes again.
                return Ok(CoordResult::Deleted);
            }
            if resp.canceled() {
                return Err(format!("watch canceled: {}", resp.cancel_reason()).into());
            }
            let deleted = resp.events().iter().any(|ev| {
                ev.event_type() == EventType::Delete
                    && ev.kv().is_some_and(|kv| kv.key() == key.as_bytes())
            });
            if deleted {
                return Ok(CoordResult::Deleted);
            }
        }
    }
}

/// `LeaseGrant`.
async fn grant(mut client: Client, ttl_secs: i64) -> Result<CoordResult, Failure> {
    let resp = client
        .lease_grant(ttl_secs, None)
        .await
        .map_err(|e| failure(&e))?;
    if !resp.error().is_empty() {
        return Err(resp.error().to_string().into());
    }
    Ok(CoordResult::Granted {
        lease: LeaseId(resp.id()),
        ttl_secs: resp.ttl(),
    })
}

/// One keepalive round trip on a fresh stream, so that a late answer cannot be taken for
/// the answer to a later request.
async fn keep_alive(mut client: Client, lease: LeaseId) -> Result<CoordResult, Failure> {
    // Opening the stream already sends one keepalive and reads its answer; it fails with
    // "lease not found" when etcd answers TTL 0 (the lease is gone).
    let (mut keeper, mut stream) = match client.lease_keep_alive(lease.0).await {
        Ok(pair) => pair,
        Err(Error::LeaseKeepAliveError(m)) if m == "lease not found" => {
            return Ok(CoordResult::KeptAlive { ttl_secs: 0 });
        }
        Err(e) => return Err(failure(&e)),
    };
    keeper.keep_alive().await.map_err(|e| failure(&e))?;
    match stream.message().await.map_err(|e| failure(&e))? {
        Some(resp) => Ok(CoordResult::KeptAlive {
            ttl_secs: resp.ttl(),
        }),
        None => Err("the keepalive stream closed without an answer".into()),
    }
}

/// Txn `if create_revision(key) == 0 then put(key, value, lease) else get(key)`.
async fn campaign(
    mut client: Client,
    key: &str,
    value: &str,
    lease: LeaseId,
) -> Result<CoordResult, Failure> {
    let put = PutOptions::new().with_lease(lease.0);
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, value, Some(put))])
        .or_else([TxnOp::get(key, None)]);
    let resp = client.txn(txn).await.map_err(|e| failure(&e))?;
    if resp.succeeded() {
        let header = resp.header().ok_or("the txn response has no header")?;
        return Ok(CoordResult::Campaigned {
            create_revision: header.revision(),
        });
    }
    resp.op_responses()
        .iter()
        .find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.create_revision()),
            _ => None,
        })
        .map(|create_revision| CoordResult::Campaigned { create_revision })
        .ok_or_else(|| format!("{key} existed for the compare but not for the get").into())
}

/// Range over `prefix`, oldest create revision first.
async fn observe(mut client: Client, prefix: &str) -> Result<CoordResult, Failure> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend);
    let resp = client
        .get(prefix, Some(options))
        .await
        .map_err(|e| failure(&e))?;
    let revision = resp
        .header()
        .ok_or("the range response has no header")?
        .revision();
    let keys = resp
        .kvs()
        .iter()
        .map(|kv| ElectionKey {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            create_revision: kv.create_revision(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
        })
        .collect();
    Ok(CoordResult::Observed { keys, revision })
}

/// Deletes our key if it is still the one we created, then revokes the lease.
async fn resign(
    mut client: Client,
    key: &Option<(String, i64)>,
    lease: LeaseId,
) -> Result<CoordResult, Failure> {
    if let Some((key, rev)) = key {
        delete_own_key(&mut client, key, *rev).await?;
    }
    match client.lease_revoke(lease.0).await {
        Ok(_) => Ok(CoordResult::Resigned),
        Err(Error::GRpcStatus(s)) if s.message().contains("lease not found") => {
            Ok(CoordResult::Resigned)
        }
        Err(e) => Err(failure(&e)),
    }
}

/// Deletes our key if it is still the one we created; the lease stays.
async fn withdraw(
    mut client: Client,
    key: &str,
    create_revision: i64,
) -> Result<CoordResult, Failure> {
    delete_own_key(&mut client, key, create_revision).await?;
    Ok(CoordResult::Resigned)
}

/// Txn `if create_revision(key) == create_revision then delete(key)`. Whether the compare
/// held does not matter: if not, the key is gone or not ours.
async fn delete_own_key(
    client: &mut Client,
    key: &str,
    create_revision: i64,
) -> Result<(), Failure> {
    let txn = Txn::new()
        .when([Compare::create_revision(
            key,
            CompareOp::Equal,
            create_revision,
        )])
        .and_then([TxnOp::delete(key, None)]);
    client.txn(txn).await.map_err(|e| failure(&e))?;
    Ok(())
}

/// `d` rounded up to whole milliseconds, for messages.
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX))
}

/// The client options: timeouts, pings, leader requirement, credentials and TLS.
fn connect_options(cfg: &EtcdConfig, endpoints: &[String]) -> Result<ConnectOptions, String> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(cfg.connect_timeout)
        .with_keep_alive(PING_INTERVAL, PING_TIMEOUT)
        .with_keep_alive_while_idle(false)
        .with_require_leader(true);
    match (&cfg.username, &cfg.password) {
        (Some(user), password) => {
            let password = password.clone().unwrap_or_default();
            // etcd forgets its simple auth tokens when it restarts, and they expire.
            options = options
                .with_user(user, password)
                .with_auto_token_refresh(true);
        }
        (None, Some(_)) => return Err("a password is given without a user name".into()),
        (None, None) => {}
    }
    let tls = tls_options(cfg)?;
    if tls.is_none() {
        if let Some(e) = endpoints.iter().find(|e| e.starts_with("https://")) {
            return Err(format!(
                "{e} is an HTTPS endpoint but no CA file is given (no system roots are built in)"
            ));
        }
    }
    Ok(match tls {
        Some(tls) => options.with_tls(tls),
        None => options,
    })
}

/// TLS settings when a CA file or a client certificate is given.
fn tls_options(cfg: &EtcdConfig) -> Result<Option<TlsOptions>, String> {
    let identity = match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), Some(key)) => Some(Identity::from_pem(
            read_pem(cert, "client certificate", "CERTIFICATE")?,
            read_pem(key, "client key", "PRIVATE KEY")?,
        )),
        (None, None) => None,
        (Some(cert), None) => {
            return Err(format!(
                "the client certificate {} is given without its key file",
                cert.display()
            ))
        }
        (None, Some(key)) => {
            return Err(format!(
                "the client key {} is given without its certificate file",
                key.display()
            ))
        }
    };
    let ca = match &cfg.ca_file {
        Some(path) => Some(Certificate::from_pem(read_pem(
            path,
            "CA certificate",
            "CERTIFICATE",
        )?)),
        None => None,
    };
    if identity.is_none() && ca.is_none() {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = ca {
        tls = tls.ca_certificate(ca);
    }
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Ok(Some(tls))
}

/// Reads a PEM file and checks that it holds a `-----BEGIN ...<label>-----` block.
fn read_pem(path: &Path, what: &str, label: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("reading the {what} file {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    let has_block = text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.ends_with(&format!("{label}-----")));
    if !has_block {
        return Err(format!(
            "the {what} file {} holds no PEM {label}",
            path.display()
        ));
    }
    Ok(pem)
}

/// True when a connection attempt failed because of the configuration rather than because
/// etcd is unreachable: everything but a gRPC status, or etcd refusing the credentials.
fn is_config_error(e: &Error) -> bool {
    match e {
        Error::GRpcStatus(s) => s.message().contains("authentication"),
        _ => true,
    }
}

/// A failed attempt: its kind and what went wrong.
struct Failure {
    kind: CoordErrorKind,
    text: String,
}

impl From<String> for Failure {
    /// A failure of kind [`CoordErrorKind::Other`].
    fn from(text: String) -> Failure {
        Failure {
            kind: CoordErrorKind::Other,
            text,
        }
    }
}

impl From<&str> for Failure {
    /// A failure of kind [`CoordErrorKind::Other`].
    fn from(text: &str) -> Failure {
        Failure::from(text.to_string())
    }
}

/// gRPC status codes (the spec's numbers) the failure kinds come from.
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_NOT_FOUND: i32 = 5;
const GRPC_UNAVAILABLE: i32 = 14;

/// The failure for error `e` of the etcd client.
fn failure(e: &Error) -> Failure {
    Failure {
        kind: error_kind(e),
        text: describe(e),
    }
}

/// The kind of error `e` of the etcd client: gRPC's deadline and unavailable statuses, a
/// transport error, etcd's "requested lease not found".
fn error_kind(e: &Error) -> CoordErrorKind {
    match e {
        Error::GRpcStatus(s) => match i32::from(s.code()) {
            GRPC_DEADLINE_EXCEEDED => CoordErrorKind::Timeout,
            GRPC_UNAVAILABLE => CoordErrorKind::Unavailable,
            GRPC_NOT_FOUND if s.message().contains("lease not found") => {
                CoordErrorKind::LeaseNotFound
            }
            _ => CoordErrorKind::Other,
        },
        Error::TransportError(_) => CoordErrorKind::Unavailable,
        _ => CoordErrorKind::Other,
    }
}

/// An error with its chain of causes, gRPC statuses as `Code: message`.
fn describe(e: &Error) -> String {
    use std::error::Error as _;
    let (mut text, mut source) = match e {
        Error::GRpcStatus(s) => (format!("{:?}: {}", s.code(), s.message()), s.source()),
        Error::TransportError(t) => (e.to_string(), t.source()),
        other => (other.to_string(), None),
    };
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

//! The etcd coordinator adapter against a real etcd 3.4: every coordinator operation, the
//! clientv3 election layout (`etcdctl elect -l` sees our leader), lease expiry, timeouts,
//! reconnection after etcd restarts or was down at start, authentication and mutual TLS.
//!
//! Each test starts its own etcd (under a second) on free loopback ports.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::etcd::{Etcd, EtcdTls};
use compactd::core::coord::{CoordErrorKind, CoordOp, CoordResult, ElectionKey, LeaseId};
use compactd::election::etcd::{EtcdConfig, EtcdCoordinator};

/// The election name (what `etcdctl elect` takes); keys live under `<NAME>/`.
const NAME: &str = "compactd-test/election";
/// The bound of every request but `WaitDelete`.
const TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config(endpoint: &str) -> EtcdConfig {
    EtcdConfig {
        endpoints: vec![endpoint.to_string()],
        username: None,
        password: None,
        ca_file: None,
        cert_file: None,
        key_file: None,
        connect_timeout: Duration::from_secs(2),
    }
}

async fn connect(etcd: &Etcd) -> EtcdCoordinator {
    EtcdCoordinator::connect(&config(&etcd.endpoint()))
        .await
        .expect("connect")
}

/// The election key of a lease, as clientv3 names it.
fn key_of(lease: LeaseId) -> String {
    format!("{NAME}/{:x}", lease.0)
}

fn prefix() -> String {
    format!("{NAME}/")
}

async fn grant(c: &EtcdCoordinator, ttl_secs: i64) -> LeaseId {
    match c.execute(&CoordOp::Grant { ttl_secs }, TIMEOUT).await {
        CoordResult::Granted { lease, ttl_secs: t } => {
            assert_eq!(t, ttl_secs, "granted TTL");
            lease
        }
        other => panic!("grant: {other:?}"),
    }
}

async fn keep_alive(c: &EtcdCoordinator, lease: LeaseId) -> i64 {
    match c.execute(&CoordOp::KeepAlive { lease }, TIMEOUT).await {
        CoordResult::KeptAlive { ttl_secs } => ttl_secs,
        other => panic!("keepalive: {other:?}"),
    }
}

async fn campaign(c: &EtcdCoordinator, lease: LeaseId, value: &str) -> i64 {
    let op = CoordOp::Campaign {
        key: key_of(lease),
        value: value.into(),
        lease,
    };
    match c.execute(&op, TIMEOUT).await {
        CoordResult::Campaigned { create_revision } => create_revision,
        other => panic!("campaign: {other:?}"),
    }
}

async fn observe(c: &EtcdCoordinator) -> (Vec<ElectionKey>, i64) {
    let op = CoordOp::Observe { prefix: prefix() };
    match c.execute(&op, TIMEOUT).await {
        CoordResult::Observed { keys, revision } => (keys, revision),
        other => panic!("observe: {other:?}"),
    }
}

async fn resign(c: &EtcdCoordinator, key: Option<(String, i64)>, lease: LeaseId) {
    let result = c.execute(&CoordOp::Resign { key, lease }, TIMEOUT).await;
    assert_eq!(result, CoordResult::Resigned);
}

fn wait_delete(key: &str, after_revision: i64, max_wait_ms: i64) -> CoordOp {
    CoordOp::WaitDelete {
        key: key.into(),
        after_revision,
        max_wait_ms,
    }
}

fn assert_failed(result: &CoordResult, op: &str, endpoint: &str) {
    match result {
        CoordResult::Failed(e) => {
            assert!(
                e.message.starts_with(&format!("{op}: etcd ")) && e.message.contains(endpoint),
                "{e:?} should name {op} and {endpoint}"
            );
        }
        other => panic!("{op}: expected Failed, got {other:?}"),
    }
}

/// Executes `op` until it does not fail, for at most `limit`; returns the result and how
/// long it took.
async fn until_ok(c: &EtcdCoordinator, op: &CoordOp, limit: Duration) -> (CoordResult, Duration) {
    let start = Instant::now();
    loop {
        let result = c.execute(op, Duration::from_secs(1)).await;
        if !matches!(result, CoordResult::Failed(_)) || start.elapsed() > limit {
            return (result, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn lease_grant_keepalive_and_revoke() {
    let Some(etcd) = Etcd::start() else { return };
    runtime().block_on(async {
        let c = connect(&etcd).await;
        assert_eq!(c.endpoints(), etcd.endpoint());
        let lease = grant(&c, 5).await;
        assert_eq!(keep_alive(&c, lease).await, 5);
        assert_eq!(
            keep_alive(&c, lease).await,
            5,
            "a second keepalive, new stream"
        );
        resign(&c, None, lease).await;
        // etcd answers a keepalive for a missing lease with TTL 0.
        assert!(keep_alive(&c, lease).await <= 0);
        assert!(
            keep_alive(&c, LeaseId(0x1234_5678)).await <= 0,
            "never granted"
        );
        // Revoking a missing lease counts as success.
        resign(&c, None, lease).await;
    });
}

#[test]
fn campaign_is_idempotent_and_observe_sorts_by_create_revision() {
    let Some(etcd) = Etcd::start() else { return };
    runtime().block_on(async {
        let c = connect(&etcd).await;
        let (keys, _) = observe(&c).await;
        assert!(keys.is_empty());
        // Granted in the order b, a, so that lease ids do not sort like create revisions.
        let lease_b = grant(&c, 30).await;
        let lease_a = grant(&c, 30).await;
        let rev_a = campaign(&c, lease_a, "node-a").await;
        assert_eq!(campaign(&c, lease_a, "node-a").await, rev_a, "idempotent");
        let rev_b = campaign(&c, lease_b, "node-b").await;
        assert!(rev_b > rev_a);
        assert_eq!(campaign(&c, lease_a, "node-a").await, rev_a, "still");
        let (keys, revision) = observe(&c).await;
        let expected = vec![
            ElectionKey {
                key: key_of(lease_a),
                create_revision: rev_a,
                value: "node-a".into(),
            },
            ElectionKey {
                key: key_of(lease_b),
                create_revision: rev_b,
                value: "node-b".into(),
            },
        ];
        assert_eq!(keys, expected);
        assert!(revision >= rev_b);
        // A key outside the election's prefix is not listed.
        let outsider = grant(&c, 30).await;
        let op = CoordOp::Campaign {
            key: format!("{NAME}-other/{:x}", outsider.0),
            value: "other".into(),
            lease: outsider,
        };
        assert!(matches!(
            c.execute(&op, TIMEOUT).await,
            CoordResult::Campaigned { .. }
        ));
        assert_eq!(observe(&c).await.0, expected);
    });
}

#[test]
fn etcdctl_elect_shows_our_leader() {
    let Some(etcd) = Etcd::start() else { return };
    let Some(mut etcdctl) = etcd.etcdctl() else {
        return;
    };
    let rt = runtime();
    let c = rt.block_on(connect(&etcd));
    let (lease_a, lease_b) = rt.block_on(async { (grant(&c, 30).await, grant(&c, 30).await) });
    let rev_a = rt.block_on(campaign(&c, lease_a, "node-a"));
    rt.block_on(campaign(&c, lease_b, "node-b"));

    // `elect -l` (observe) prints the current leader's key and value, then each new leader.
    let mut observer = etcdctl
        .args(["elect", "-l", NAME])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl elect -l");
    let lines = std::sync::mpsc::channel();
    let stdout = observer.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.0.send(line).is_err() {
                break;
            }
        }
    });
    let next = || lines.1.recv_timeout(Duration::from_secs(10));
    let first = (next(), next());
    assert_eq!(
        first,
        (Ok(key_of(lease_a)), Ok("node-a".to_string())),
        "etcdctl elect -l shows the key with the lowest create revision"
    );
    // When the leader resigns, etcdctl sees the next one.
    rt.block_on(resign(&c, Some((key_of(lease_a), rev_a)), lease_a));
    let second = (next(), next());
    let _ = observer.kill();
    let _ = observer.wait();
    let _ = reader.join();
    assert_eq!(second, (Ok(key_of(lease_b)), Ok("node-b".to_string())));
}

#[test]
fn wait_delete_answers_deleted_or_still_there() {
    let Some(etcd) = Etcd::start() else { return };
    runtime().block_on(async {
        let c = connect(&etcd).await;
        let lease_a = grant(&c, 30).await;
        let lease_b = grant(&c, 30).await;
        let rev_a = campaign(&c, lease_a, "node-a").await;
        campaign(&c, lease_b, "node-b").await;
        let (_, revision) = observe(&c).await;
        let key_a = key_of(lease_a);

        // Nothing happens: the bounded wait ends with the key still there.
        let start = Instant::now();
        let result = c
            .execute(&wait_delete(&key_a, revision, 400), TIMEOUT)
            .await;
        let waited = start.elapsed();
        assert_eq!(result, CoordResult::StillThere);
        assert!(
            waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
            "waited {waited:?}"
        );

        let c = std::sync::Arc::new(c);
        let waiter = {
            let (c, key_a) = (c.clone(), key_a.clone());
            tokio::spawn(async move {
                c.execute(&wait_delete(&key_a, revision, 20_000), TIMEOUT)
                    .await
            })
        };
        // A put to the key is not a delete.
        let mut raw = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .expect("raw client");
        let put = etcd_client::PutOptions::new().with_lease(lease_a.0);
        raw.put(key_a.as_str(), "node-a, again", Some(put))
            .await
            .expect("put");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished());
        // The predecessor resigns: the waiter is told at once.
        let resigned_at = Instant::now();
        resign(&c, Some((key_a.clone(), rev_a)), lease_a).await;
        let result = waiter.await.expect("waiter task");
        assert_eq!(result, CoordResult::Deleted);
        assert!(
            resigned_at.elapsed() < Duration::from_secs(2),
            "told {:?} after the resign",
            resigned_at.elapsed()
        );

        // A delete between the observed revision and the watch start is found in history.
        let result = c
            .execute(&wait_delete(&key_a, revision, 5_000), TIMEOUT)
            .await;
        assert_eq!(result, CoordResult::Deleted);
    });
}

#[test]
fn wait_delete_after_compaction_answers_deleted() {
    let Some(etcd) = Etcd::start() else { return };
    let Some(mut etcdctl) = etcd.etcdctl() else {
        return;
    };
    let rt = runtime();
    let c = rt.block_on(connect(&etcd));
    let (key, revision) = rt.block_on(async {
        let lease = grant(&c, 30).await;
        campaign(&c, lease, "node-a").await;
        let (_, revision) = observe(&c).await;
        // Move the store on by a few revisions, so that `revision + 1` can be compacted.
        for value in ["node-b", "node-c", "node-d"] {
            let other = grant(&c, 30).await;
            campaign(&c, other, value).await;
        }
        (key_of(lease), revision)
    });
    let (_, now) = rt.block_on(observe(&c));
    let out = etcdctl
        .args(["compact", &now.to_string()])
        .output()
        .expect("etcdctl compact");
    assert!(out.status.success(), "{out:?}");
    // The watch cannot start at `revision + 1` any more: etcd cancels it with the compact
    // revision, and the caller is told to observe again (the key is still there).
    let start = Instant::now();
    let result = rt.block_on(c.execute(&wait_delete(&key, revision, 10_000), TIMEOUT));
    assert_eq!(result, CoordResult::Deleted);
    assert!(start.elapsed() < Duration::from_secs(3));
    let (keys, _) = rt.block_on(observe(&c));
    assert!(keys.iter().any(|k| k.key == key));
}

#[test]
fn resign_deletes_only_our_key_and_revokes_the_lease() {
    let Some(etcd) = Etcd::start() else { return };
    runtime().block_on(async {
        let c = connect(&etcd).await;
        let lease_a = grant(&c, 30).await;
        let lease_b = grant(&c, 30).await;
        let rev_a = campaign(&c, lease_a, "node-a").await;
        let rev_b = campaign(&c, lease_b, "node-b").await;

        // The wrong create revision: a's key is not deleted, but b's lease is revoked (and
        // with it b's key).
        resign(&c, Some((key_of(lease_a), rev_b)), lease_b).await;
        let (keys, _) = observe(&c).await;
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].key.as_str(), keys[0].create_revision),
            (key_of(lease_a).as_str(), rev_a)
        );
        assert!(keep_alive(&c, lease_b).await <= 0);

        resign(&c, Some((key_of(lease_a), rev_a)), lease_a).await;
        assert!(observe(&c).await.0.is_empty());
        assert!(keep_alive(&c, lease_a).await <= 0);
        // Resigning again (key gone, lease gone) still succeeds.
        resign(&c, Some((key_of(lease_a), rev_a)), lease_a).await;
    });
}

#[test]
fn an_expired_lease_takes_its_key_away() {
    let Some(etcd) = Etcd::start() else { return };
    runtime().block_on(async {
        let c = connect(&etcd).await;
        let granted = Instant::now();
        let lease = grant(&c, 2).await;
        campaign(&c, lease, "node-a").await;
        assert_eq!(observe(&c).await.0.len(), 1);
        // No keepalive: etcd revokes the lease about 2 s later (its expiry check runs every
        // 500 ms).
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        let mut keys = observe(&c).await.0;
        while !keys.is_empty() && granted.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            keys = observe(&c).await.0;
        }
        assert!(keys.is_empty(), "still there after {:?}", granted.elapsed());
        assert!(keep_alive(&c, lease).await <= 0);
    });
}

#[test]
fn a_frozen_etcd_makes_requests_time_out() {
    let Some(etcd) = Etcd::start() else { return };
    runtime().block_on(async {
        let c = connect(&etcd).await;
        let lease = grant(&c, 30).await;
        let endpoint = etcd.endpoint();
        etcd.pause();
        let short = Duration::from_millis(500);
        for op in [
            CoordOp::Grant { ttl_secs: 30 },
            CoordOp::KeepAlive { lease },
            CoordOp::Observe { prefix: prefix() },
        ] {
            let start = Instant::now();
            let result = c.execute(&op, short).await;
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
            assert_failed(&result, op.name(), &endpoint);
            let CoordResult::Failed(e) = result else {
                unreachable!()
            };
            assert_eq!(e.kind, CoordErrorKind::Timeout, "{e}");
        }
        // WaitDelete: opening the watch is bounded by the request timeout.
        let result = c
            .execute(&wait_delete(&key_of(lease), 1, 10_000), short)
            .await;
        assert_failed(&result, "wait-delete", &endpoint);
        etcd.resume();
        assert_eq!(keep_alive(&c, lease).await, 30);
    });
}

#[test]
fn reconnects_after_etcd_restarts() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let rt = runtime();
    let c = rt.block_on(connect(&etcd));
    let lease = rt.block_on(grant(&c, 60));
    let rev = rt.block_on(campaign(&c, lease, "node-a"));
    etcd.stop();
    let endpoint = etcd.endpoint();
    for op in [
        CoordOp::Grant { ttl_secs: 30 },
        CoordOp::KeepAlive { lease },
        CoordOp::Observe { prefix: prefix() },
    ] {
        let result = rt.block_on(c.execute(&op, Duration::from_secs(1)));
        assert_failed(&result, op.name(), &endpoint);
    }
    etcd.start_again();
    // The same client works again; the key and lease survived the restart.
    let (result, took) = rt.block_on(until_ok(
        &c,
        &CoordOp::Observe { prefix: prefix() },
        Duration::from_secs(20),
    ));
    let CoordResult::Observed { keys, .. } = result else {
        panic!("no reconnect within {took:?}: {result:?}");
    };
    eprintln!("answered {took:?} after etcd was healthy again");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].create_revision, rev);
    rt.block_on(async {
        assert!(keep_alive(&c, lease).await > 0);
        grant(&c, 30).await;
    });
}

#[test]
fn starts_while_etcd_is_down() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    etcd.stop();
    let rt = runtime();
    let endpoint = etcd.endpoint();
    // Connecting does not need etcd; requests fail, naming the operation and the endpoint.
    let c = rt
        .block_on(EtcdCoordinator::connect(&config(&endpoint)))
        .expect("connect while etcd is down");
    let result = rt.block_on(c.execute(&CoordOp::Grant { ttl_secs: 30 }, Duration::from_secs(1)));
    assert_failed(&result, "lease-grant", &endpoint);
    etcd.start_again();
    let (result, took) = rt.block_on(until_ok(
        &c,
        &CoordOp::Grant { ttl_secs: 30 },
        Duration::from_secs(20),
    ));
    assert!(
        matches!(result, CoordResult::Granted { .. }),
        "after {took:?}: {result:?}"
    );
}

#[test]
fn fails_over_between_endpoints_and_accepts_bare_ones() {
    let Some(etcd) = Etcd::start() else { return };
    let bare = etcd.endpoint().trim_start_matches("http://").to_string();
    // Nothing listens on port 1.
    let dead = "127.0.0.1:1";
    runtime().block_on(async {
        let mut cfg = config(dead);
        cfg.endpoints.push(bare.clone());
        let c = EtcdCoordinator::connect(&cfg).await.expect("connect");
        assert_eq!(c.endpoints(), format!("{dead},{bare}"));
        // The first request fails over to the live member; the next ones stay there.
        for _ in 0..5 {
            grant(&c, 30).await;
        }
        let op = CoordOp::Observe { prefix: prefix() };
        assert!(matches!(
            c.execute(&op, TIMEOUT).await,
            CoordResult::Observed { .. }
        ));
    });
}

#[test]
fn every_member_down_lists_each_error() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    etcd.stop();
    let endpoint = etcd.endpoint();
    runtime().block_on(async {
        let mut cfg = config("127.0.0.1:1");
        cfg.endpoints.push(endpoint.clone());
        let c = EtcdCoordinator::connect(&cfg).await.expect("connect");
        let result = c.execute(&CoordOp::Grant { ttl_secs: 30 }, TIMEOUT).await;
        let CoordResult::Failed(e) = result else {
            panic!("{result:?}")
        };
        assert_eq!(e.kind, CoordErrorKind::Unavailable, "{e}");
        let expected = format!("lease-grant: etcd 127.0.0.1:1,{endpoint}: 127.0.0.1:1: ");
        assert!(e.message.starts_with(&expected), "{e}");
        assert!(e.message.contains(&format!("; {endpoint}: ")), "{e}");
    });
}

#[test]
fn authentication() {
    let Some(mut etcd) = Etcd::start() else {
        return;
    };
    let Some(_) = etcd.etcdctl() else { return };
    let etcdctl = |args: &[&str]| {
        let out = etcd
            .etcdctl()
            .expect("etcdctl")
            .args(args)
            .output()
            .expect("etcdctl");
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    };
    etcdctl(&["user", "add", "root:root-secret"]);
    etcdctl(&["auth", "enable"]);
    let rt = runtime();
    let endpoint = etcd.endpoint();
    let with_user = |user: &str, password: &str| EtcdConfig {
        username: Some(user.into()),
        password: Some(password.into()),
        ..config(&endpoint)
    };

    let err = rt
        .block_on(EtcdCoordinator::connect(&with_user("root", "wrong")))
        .err()
        .expect("a wrong password is refused at connect");
    assert!(
        err.contains(&endpoint) && err.contains("authentication failed"),
        "{err}"
    );

    // etcd 3.4 grants leases to anyone, but reads need a user.
    let anonymous = rt
        .block_on(EtcdCoordinator::connect(&config(&endpoint)))
        .expect("connect");
    let result = rt.block_on(anonymous.execute(&CoordOp::Observe { prefix: prefix() }, TIMEOUT));
    assert_failed(&result, "observe", &endpoint);

    let c = rt
        .block_on(EtcdCoordinator::connect(&with_user("root", "root-secret")))
        .expect("connect as root");
    rt.block_on(async {
        let lease = grant(&c, 30).await;
        campaign(&c, lease, "node-a").await;
        assert_eq!(observe(&c).await.0.len(), 1);
    });

    // etcd forgets its tokens when it restarts: the client authenticates again.
    etcd.stop();
    etcd.start_again();
    let (result, took) = rt.block_on(until_ok(
        &c,
        &CoordOp::Grant { ttl_secs: 30 },
        Duration::from_secs(20),
    ));
    assert!(
        matches!(result, CoordResult::Granted { .. }),
        "after {took:?}: {result:?}"
    );

    // Credentials, etcd down at start: connect still succeeds and authenticates later.
    etcd.stop();
    let late = rt
        .block_on(EtcdCoordinator::connect(&with_user("root", "root-secret")))
        .expect("connect with credentials while etcd is down");
    etcd.start_again();
    let (result, took) = rt.block_on(until_ok(
        &late,
        &CoordOp::Observe { prefix: prefix() },
        Duration::from_secs(20),
    ));
    assert!(
        matches!(result, CoordResult::Observed { .. }),
        "after {took:?}: {result:?}"
    );
}

/// Writes a CA, a server certificate for 127.0.0.1 and a client certificate with openssl.
fn make_certs(openssl: &Path, dir: &Path) -> (EtcdTls, (PathBuf, PathBuf)) {
    let run = |args: &[&str]| {
        let out = Command::new(openssl)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=compactd-test-ca",
        ],
    ]
    .concat());
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
    (
        EtcdTls {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        },
        (dir.join("client.crt"), dir.join("client.key")),
    )
}

#[test]
fn mutual_tls() {
    let Some(openssl) = common::require_tool("openssl", None) else {
        return;
    };
    let certs = tempfile::tempdir().expect("tempdir");
    let (tls, (client_cert, client_key)) = make_certs(&openssl, certs.path());
    let Some(etcd) = Etcd::start_tls(tls.clone()) else {
        return;
    };
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("https://"));
    let cfg = EtcdConfig {
        ca_file: Some(tls.ca.clone()),
        cert_file: Some(client_cert),
        key_file: Some(client_key),
        ..config(&endpoint)
    };
    runtime().block_on(async {
        let c = EtcdCoordinator::connect(&cfg)
            .await
            .expect("connect with TLS");
        let lease = grant(&c, 30).await;
        campaign(&c, lease, "node-a").await;
        assert_eq!(observe(&c).await.0.len(), 1);
        if let Some(mut etcdctl) = etcd.etcdctl() {
            let out = etcdctl
                .args(["get", "--prefix", "--print-value-only", &prefix()])
                .output()
                .expect("etcdctl get");
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node-a");
        }

        // The same with a bare host:port: TLS files make it HTTPS.
        let bare = EtcdConfig {
            endpoints: vec![endpoint.trim_start_matches("https://").into()],
            ..cfg.clone()
        };
        let c = EtcdCoordinator::connect(&bare).await.expect("connect bare");
        grant(&c, 30).await;

        // Without a client certificate etcd refuses the handshake.
        let no_identity = EtcdConfig {
            cert_file: None,
            key_file: None,
            ..cfg.clone()
        };
        let c = EtcdCoordinator::connect(&no_identity)
            .await
            .expect("connect");
        let result = c
            .execute(&CoordOp::Grant { ttl_secs: 30 }, Duration::from_secs(2))
            .await;
        assert_failed(&result, "lease-grant", &endpoint);
    });
}

#[test]
fn connect_rejects_bad_configurations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let pem = dir.path().join("looks-like.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let base = config("http://127.0.0.1:2379");
    let cases: Vec<(EtcdConfig, &str)> = vec![
        (
            EtcdConfig {
                endpoints: vec![],
                ..base.clone()
            },
            "no endpoint",
        ),
        (
            EtcdConfig {
                endpoints: vec![" ".into()],
                ..base.clone()
            },
            "no endpoint",
        ),
        (config("http://bad host:2379"), "bad host"),
        (
            EtcdConfig {
                ca_file: Some(missing.clone()),
                ..config("https://127.0.0.1:2379")
            },
            "missing.pem",
        ),
        (
            EtcdConfig {
                cert_file: Some(garbage.clone()),
                ..config("127.0.0.1:2379")
            },
            "without its key file",
        ),
        (
            EtcdConfig {
                key_file: Some(garbage.clone()),
                ..config("127.0.0.1:2379")
            },
            "without its certificate file",
        ),
        (config("https://127.0.0.1:2379"), "no CA file"),
        (
            EtcdConfig {
                ca_file: Some(garbage.clone()),
                ..config("https://127.0.0.1:2379")
            },
            "garbage.pem holds no PEM CERTIFICATE",
        ),
        (
            EtcdConfig {
                cert_file: Some(pem.clone()),
                key_file: Some(pem.clone()),
                ..config("127.0.0.1:2379")
            },
            "looks-like.pem holds no PEM PRIVATE KEY",
        ),
        (
            EtcdConfig {
                ca_file: Some(pem.clone()),
                ..base.clone()
            },
            "HTTPS",
        ),
        (
            EtcdConfig {
                password: Some("x".into()),
                ..base.clone()
            },
            "without a user name",
        ),
    ];
    let rt = runtime();
    for (cfg, needle) in cases {
        let err = rt
            .block_on(EtcdCoordinator::connect(&cfg))
            .err()
            .unwrap_or_else(|| panic!("{cfg:?} was accepted"));
        assert!(
            err.contains(needle),
            "{cfg:?}: {err:?} should contain {needle:?}"
        );
        assert!(err.starts_with("etcd"), "{err}");
    }
}

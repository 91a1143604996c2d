//! `--http.config`: `compactd compact` serves HTTPS with the Prometheus web configuration file
//! Thanos reads: a server certificate from a self-signed CA, basic-auth users with bcrypt
//! hashes (a wrong password gets 401), client certificates when required, response headers;
//! and a bad file stops it at start-up, naming the file and the field, before the bucket is
//! touched. Requests go through a real TLS client (rustls) that trusts only the test CA.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::replicas::Replica;
use common::{compactd, fs_config, generate_stream, try_http_get};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The committed test certificates (testdata/webconfig/gen.sh).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/webconfig")
        .join(name)
}

/// A client that trusts `ca` only, presenting the test client certificate if `with_cert`.
fn client(ca: &str, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture(ca)).expect("read CA") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = if with_cert {
        let certs = CertificateDer::pem_file_iter(fixture("client.pem"))
            .expect("read client cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("client cert");
        let key = PrivateKeyDer::from_pem_file(fixture("client-key.pem")).expect("client key");
        builder
            .with_client_auth_cert(certs, key)
            .expect("client auth")
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

/// A response: status, headers (lowercase names) and body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// GET `path` over TLS to `localhost:port`; `auth` as basic-auth user and password.
fn https_get(
    port: u16,
    path: &str,
    tls: Arc<rustls::ClientConfig>,
    auth: Option<(&str, &str)>,
) -> std::io::Result<Reply> {
    use base64::Engine;
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(tls, name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let authorization = auth.map_or(String::new(), |(user, password)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Authorization: Basic {token}\r\n")
    });
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{authorization}Connection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

/// `compactd compact --wait` on an empty filesystem bucket with `--http.config web`.
fn start(dir: &Path, name: &str, web: &Path) -> Replica {
    Replica::spawn_single(dir, name, &[&format!("--http.config={}", web.display())])
}

#[test]
fn https_with_basic_auth_from_a_web_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("s3cret", 6).expect("bcrypt");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  admin: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            fixture("server.pem").display(),
            fixture("server-key.pem").display()
        ),
    )
    .expect("write web.yml");
    let replica = start(dir.path(), "https", &web);
    assert!(replica.count("scheme=https") > 0, "{}", replica.log_text());
    let trusted = client("ca.pem", false);

    let ok = https_get(
        replica.port,
        "/-/healthy",
        trusted.clone(),
        Some(("admin", "s3cret")),
    )
    .expect("GET with the right password");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.head.contains("x-frame-options: deny"), "{}", ok.head);
    let metrics = https_get(
        replica.port,
        "/metrics",
        trusted.clone(),
        Some(("admin", "s3cret")),
    )
    .expect("GET /metrics");
    assert!(
        metrics.body.contains("thanos_build_info"),
        "{}",
        metrics.body
    );

    for (what, auth) in [
        ("a wrong password", Some(("admin", "wrong"))),
        ("an unknown user", Some(("root", "s3cret"))),
        ("no credentials", None),
    ] {
        let r = https_get(replica.port, "/metrics", trusted.clone(), auth).expect(what);
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(
            r.head.contains("www-authenticate: basic"),
            "{what}: {}",
            r.head
        );
        assert!(!r.body.contains("thanos_build_info"), "{what}");
    }

    // A client that does not trust our CA refuses the server; plain HTTP gets no page.
    let untrusted = https_get(
        replica.port,
        "/-/healthy",
        client("other-ca.pem", false),
        None,
    );
    assert!(untrusted.is_err(), "a client trusting another CA connected");
    if let Ok((status, _)) = try_http_get(replica.port, "/-/healthy") {
        assert_ne!(status, 200, "plain HTTP was served");
    }
}

#[test]
fn client_certificates_are_required_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            fixture("server.pem").display(),
            fixture("server-key.pem").display(),
            fixture("ca.pem").display()
        ),
    )
    .expect("write web.yml");
    let replica = start(dir.path(), "mtls", &web);
    let with_cert = https_get(replica.port, "/-/ready", client("ca.pem", true), None)
        .expect("GET with a client certificate");
    assert_eq!(with_cert.status, 200, "{}", with_cert.body);
    let without = https_get(replica.port, "/-/ready", client("ca.pem", false), None);
    assert!(
        without.map_or(true, |r| r.status == 0),
        "served a client without a certificate"
    );
}

#[test]
fn a_bad_web_config_stops_compactd_before_the_bucket_is_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = dir.path().join("bucket");
    generate_stream(&bucket, 4, 2, "cluster=eu-1", 1, &[]);
    let files = || {
        let mut f = Vec::new();
        common::collect_files(&bucket, &mut f);
        f.sort();
        f
    };
    let before = files();
    let cases = [
        ("tls_server_config:\n  cert_fil: server.pem\n", "cert_fil"),
        (
            "tls_server_config:\n  cert_file: nowhere.pem\n  key_file: nowhere-key.pem\n",
            "tls_server_config.cert_file",
        ),
        (
            "basic_auth_users:\n  admin: plaintext\n",
            "basic_auth_users.admin",
        ),
    ];
    for (text, field) in cases {
        let web = dir.path().join("bad-web.yml");
        std::fs::write(&web, text).expect("write web.yml");
        let out = compactd(&[
            "compact",
            "--objstore.config",
            &fs_config(&bucket),
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
            "--http-address=127.0.0.1:0",
            &format!("--http.config={}", web.display()),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: started");
        assert!(
            stderr.contains(&web.display().to_string()) && stderr.contains(field),
            "{text}: the error must name the file and {field}: {stderr}"
        );
    }
    let unreadable = dir.path().join("missing-web.yml");
    let out = compactd(&[
        "compact",
        "--objstore.config",
        &fs_config(&bucket),
        "--http-address=127.0.0.1:0",
        &format!("--http.config={}", unreadable.display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("missing-web.yml"),
        "{stderr}"
    );
    assert_eq!(files(), before, "the bucket changed");
}

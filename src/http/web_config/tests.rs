use std::path::{Path, PathBuf};

use super::*;

/// The committed test certificates (testdata/webconfig/gen.sh).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/webconfig")
}

/// A directory holding the fixtures and `web.yml` with `text`.
fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["ca.pem", "server.pem", "server-key.pem"] {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).expect("copy fixture");
    }
    let path = dir.path().join("web.yml");
    std::fs::write(&path, text).expect("write web.yml");
    (dir, path)
}

fn error(text: &str) -> String {
    let (_dir, path) = config(text);
    let e = WebConfig::load(&path)
        .err()
        .expect("the config must be refused");
    let shown = e.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    shown
}

const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n";
/// bcrypt of "s3cret", cost 4.
fn hash() -> String {
    bcrypt::hash("s3cret", 4).expect("bcrypt")
}

#[test]
fn tls_files_are_read_relative_to_the_config_file() {
    let (_dir, path) = config(TLS);
    let web = WebConfig::load(&path).expect("load");
    let s = web.current();
    assert!(s.tls.is_some());
    assert!(s.users.is_empty() && s.headers.is_empty() && s.rate_limit.is_none());
}

#[test]
fn an_empty_file_changes_nothing() {
    let (_dir, path) = config("");
    let s = WebConfig::load(&path).expect("load").current();
    assert!(s.tls.is_none() && s.users.is_empty());
}

#[test]
fn users_headers_and_rate_limit_load() {
    let text = format!(
        "basic_auth_users:\n  admin: '{}'\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\nrate_limit:\n  burst: 3\n  interval: 1s\n",
        hash()
    );
    let (_dir, path) = config(&text);
    let s = WebConfig::load(&path).expect("load").current();
    assert!(s.tls.is_none());
    assert_eq!(s.users.keys().collect::<Vec<_>>(), ["admin"]);
    assert_eq!(s.headers.len(), 1);
    assert_eq!(
        s.rate_limit,
        Some(RateLimit {
            burst: 3,
            interval: Duration::from_secs(1)
        })
    );
}

#[test]
fn mistakes_are_named_by_field() {
    let e = error("tls_server_config:\n  cert_fil: server.pem\n");
    assert!(e.contains("cert_fil"), "{e}");
    let e = error("tls_server_config:\n  cert_file: missing.pem\n  key_file: server-key.pem\n");
    assert!(
        e.contains("tls_server_config.cert_file") && e.contains("missing.pem"),
        "{e}"
    );
    let e = error("tls_server_config:\n  cert_file: server.pem\n");
    assert!(e.contains("missing one of key or key_file"), "{e}");
    let e = error("tls_server_config:\n  cert_file: server.pem\n  key_file: ca.pem\n");
    assert!(e.contains("tls_server_config.key"), "{e}");
    let e = error("basic_auth_users:\n  admin: plaintext\n");
    assert!(
        e.contains("basic_auth_users.admin: not a bcrypt hash"),
        "{e}"
    );
    let e = error("http_server_config:\n  headers:\n    Server: me\n");
    assert!(e.contains("\"Server\" can not be configured"), "{e}");
    let e = error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
    assert!(e.contains("headers.X-Frame-Options"), "{e}");
    let e = error(&format!("{TLS}  min_version: TLS10\n"));
    assert!(e.contains("min_version: TLS10 is not supported"), "{e}");
    let e = error(&format!(
        "{TLS}  min_version: TLS13\n  max_version: TLS12\n"
    ));
    assert!(e.contains("min_version is above max_version"), "{e}");
    let e = error(&format!("{TLS}  client_ca_file: ca.pem\n"));
    assert!(e.contains("without a client_auth_type"), "{e}");
    let e = error(&format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n"
    ));
    assert!(e.contains("needs client_ca_file"), "{e}");
    let e = error(&format!("{TLS}  client_auth_type: Sometimes\n"));
    assert!(e.contains("client_auth_type: invalid"), "{e}");
    let e = error(&format!(
        "{TLS}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"
    ));
    assert!(e.contains("cipher_suites"), "{e}");
    let e = error(&format!("{TLS}  curve_preferences: [CurveP999]\n"));
    assert!(e.contains("unknown curve"), "{e}");
    let e = error("rate_limit:\n  burst: 1\n  interval: soon\n");
    assert!(e.contains("rate_limit.interval"), "{e}");
    let e = error("tls_server_config: [1]\n");
    assert!(e.contains("tls_server_config"), "{e}");
}

#[test]
fn client_certificates_and_narrowed_suites_load() {
    let text = format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n"
    );
    let (_dir, path) = config(&text);
    let s = WebConfig::load(&path).expect("load").current();
    assert!(s.tls.is_some());
}

#[test]
fn a_change_is_loaded_and_a_broken_change_keeps_the_running_config() {
    let (_dir, path) = config("");
    let web = WebConfig::load(&path).expect("load");
    assert!(web.current().users.is_empty());
    std::fs::write(&path, format!("basic_auth_users:\n  admin: '{}'\n", hash())).unwrap();
    assert_eq!(web.current().users.len(), 1, "a new user is loaded");
    std::fs::write(
        &path,
        "basic_auth_users:\n  admin: broken-hash-of-other-length\n",
    )
    .unwrap();
    assert_eq!(
        web.current().users.len(),
        1,
        "a broken change is not loaded"
    );
    std::fs::write(&path, TLS).unwrap();
    assert!(
        web.current().tls.is_none(),
        "turning TLS on takes a restart"
    );
}

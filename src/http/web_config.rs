//! `--http.config`: the Prometheus web configuration file that Thanos reads (the format of
//! Prometheus' exporter-toolkit): TLS for the HTTP port, basic-auth users with bcrypt hashes,
//! extra response headers and a request rate limit.
//!
//! The file is read and checked completely at start-up, before the bucket is touched: a bad
//! file stops compactd with an error naming the file and the field. As in Prometheus, the file
//! and the certificates it names are read again when they change (certificate rotation needs
//! no restart); unlike Prometheus, a change that does not load (a half-written certificate)
//! keeps the last good configuration and logs why, instead of failing requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// A problem with the `--http.config` file: names the file and what is wrong in it.
#[derive(Debug, thiserror::Error)]
#[error("--http.config {}: {problem}", file.display())]
pub struct WebConfigError {
    /// The web configuration file.
    pub file: PathBuf,
    /// What is wrong, starting with the field.
    pub problem: String,
}

/// The file as written (exporter-toolkit's field names; unknown fields are errors, as there).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    client_ca: String,
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted, no effect: the port speaks HTTP/1.1.
    #[serde(default, rename = "http2")]
    _http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    #[serde(default)]
    burst: u32,
    #[serde(default)]
    interval: Option<String>,
}

/// Response headers the file may set, with the values allowed (none listed: any value), as
/// Prometheus allows them.
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A request rate limit: `burst` requests at once, one more every `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed at once.
    pub burst: u32,
    /// Time to earn one more request.
    pub interval: Duration,
}

/// The loaded configuration: what the server applies.
#[derive(Debug)]
pub struct WebSettings {
    /// TLS of the port, when the file configures it.
    pub tls: Option<Arc<ServerConfig>>,
    /// Basic-auth users and their bcrypt hashes; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The request rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

/// Modification time and length of each file the configuration was loaded from.
type Fingerprint = Vec<Option<(SystemTime, u64)>>;

struct Loaded {
    files: Vec<PathBuf>,
    fingerprint: Fingerprint,
    settings: Arc<WebSettings>,
}

/// The `--http.config` file, loaded, and loaded again when it or a file it names changes.
pub struct WebConfig {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl WebConfig {
    /// Reads and checks the file and everything it names.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let (settings, files) = read(path)?;
        let loaded = Loaded {
            fingerprint: fingerprint(&files),
            files,
            settings: Arc::new(settings),
        };
        Ok(WebConfig {
            path: path.to_path_buf(),
            loaded: Mutex::new(loaded),
        })
    }

    /// The configuration in force: loaded again first if a file changed since. A change that
    /// does not load, or that would turn TLS on or off (that needs a restart), is logged and
    /// the last good configuration stays.
    pub fn current(&self) -> Arc<WebSettings> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let now = fingerprint(&loaded.files);
        if now == loaded.fingerprint {
            return Arc::clone(&loaded.settings);
        }
        loaded.fingerprint = now;
        match read(&self.path) {
            Ok((settings, _)) if settings.tls.is_some() != loaded.settings.tls.is_some() => {
                tracing::error!(
                    file = %self.path.display(),
                    "--http.config changed whether the port serves TLS; that takes a restart: keeping the running configuration"
                );
            }
            Ok((settings, files)) => {
                tracing::info!(file = %self.path.display(), "--http.config changed: loaded again");
                loaded.fingerprint = fingerprint(&files);
                loaded.files = files;
                loaded.settings = Arc::new(settings);
            }
            Err(e) => {
                tracing::error!(error = %e, "--http.config changed but does not load: keeping the running configuration");
            }
        }
        Arc::clone(&loaded.settings)
    }
}

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

/// Reads the file; returns the settings and the files they came from (for reloading).
fn read(path: &Path) -> Result<(WebSettings, Vec<PathBuf>), WebConfigError> {
    let fail = |problem: String| WebConfigError {
        file: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("reading: {e}")))?;
    let file: FileConfig = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = vec![path.to_path_buf()];
    let tls = match &file.tls_server_config {
        Some(t) if tls_enabled(t) => Some(Arc::new(tls_config(t, dir, &mut files).map_err(fail)?)),
        _ => None,
    };
    let users = file.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| fail(format!("basic_auth_users.{user}: not a bcrypt hash: {e}")))?;
    }
    let http = file.http_server_config.unwrap_or_default();
    let headers = headers(&http.headers).map_err(fail)?;
    let rate_limit = match file.rate_limit {
        Some(RateLimitFile {
            burst,
            interval: Some(interval),
        }) => {
            let ms = crate::duration::parse_duration_ms(&interval)
                .map_err(|e| fail(format!("rate_limit.interval: {e}")))?;
            (ms > 0).then_some(RateLimit {
                burst,
                interval: Duration::from_millis(ms),
            })
        }
        _ => None,
    };
    let settings = WebSettings {
        tls,
        users,
        headers,
        rate_limit,
    };
    Ok((settings, files))
}

/// Whether the TLS section asks for TLS at all (Prometheus' `IsEnabled`).
fn tls_enabled(t: &TlsFile) -> bool {
    [
        &t.cert_file,
        &t.cert,
        &t.key_file,
        &t.key,
        &t.client_ca_file,
        &t.client_ca,
        &t.client_auth_type,
    ]
    .iter()
    .any(|s| !s.is_empty())
}

fn headers(
    configured: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in configured {
        let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(n, _)| n == name) else {
            return Err(format!(
                "http_server_config.headers: HTTP header {name:?} can not be configured"
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!(
                "http_server_config.headers.{name}: {value:?} is not one of {allowed:?}"
            ));
        }
        let field = || format!("http_server_config.headers.{name}");
        let name = HeaderName::try_from(name.as_str()).map_err(|e| format!("{}: {e}", field()))?;
        let value =
            HeaderValue::try_from(value.as_str()).map_err(|e| format!("{}: {e}", field()))?;
        out.push((name, value));
    }
    Ok(out)
}

/// Reads PEM from `file` (relative to the configuration's directory) or takes the inline text.
fn pem(
    inline: &str,
    file: &str,
    field: &str,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<u8>, String> {
    if file.is_empty() {
        return Ok(inline.as_bytes().to_vec());
    }
    let path = dir.join(file);
    files.push(path.clone());
    std::fs::read(&path).map_err(|e| format!("{field} {}: {e}", path.display()))
}

fn tls_config(t: &TlsFile, dir: &Path, files: &mut Vec<PathBuf>) -> Result<ServerConfig, String> {
    if t.cert_file.is_empty() && t.cert.is_empty() {
        return Err("tls_server_config: missing one of cert or cert_file".into());
    }
    if t.key_file.is_empty() && t.key.is_empty() {
        return Err("tls_server_config: missing one of key or key_file".into());
    }
    let cert_pem = pem(
        &t.cert,
        &t.cert_file,
        "tls_server_config.cert_file",
        dir,
        files,
    )?;
    let key_pem = pem(
        &t.key,
        &t.key_file,
        "tls_server_config.key_file",
        dir,
        files,
    )?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_server_config.cert: {e}"))?;
    if certs.is_empty() {
        return Err("tls_server_config.cert: no PEM certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("tls_server_config.key: {e}"))?;
    let provider = Arc::new(provider(t)?);
    let versions = versions(t)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let verifier = client_verifier(t, dir, files, &provider)?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: the certificate and key do not load: {e}"))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The crypto provider, narrowed to `cipher_suites` (TLS 1.2 suites, as in Go: TLS 1.3 suites
/// are not configurable) and `curve_preferences`.
fn provider(t: &TlsFile) -> Result<CryptoProvider, String> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if !t.cipher_suites.is_empty() {
        for name in &t.cipher_suites {
            if !p
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()) == *name)
            {
                return Err(format!(
                    "tls_server_config.cipher_suites: {name:?} is unknown or not supported (TLS 1.2 AEAD suites only)"
                ));
            }
        }
        p.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || t.cipher_suites.contains(&format!("{:?}", s.suite()))
        });
    }
    if !t.curve_preferences.is_empty() {
        let mut groups = Vec::new();
        for name in &t.curve_preferences {
            let wanted = match name.as_str() {
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                "CurveP521" => rustls::NamedGroup::secp521r1,
                "X25519" => rustls::NamedGroup::X25519,
                _ => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: unknown curve {name:?}"
                    ))
                }
            };
            let Some(g) = p.kx_groups.iter().find(|g| g.name() == wanted) else {
                return Err(format!(
                    "tls_server_config.curve_preferences: {name} is not supported"
                ));
            };
            groups.push(*g);
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

fn versions(t: &TlsFile) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |field: &str, v: &Option<String>, default: u8| match v.as_deref() {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(old @ ("TLS10" | "TLS11")) => Err(format!(
            "tls_server_config.{field}: {old} is not supported (TLS 1.2 and 1.3 only)"
        )),
        Some(other) => Err(format!(
            "tls_server_config.{field}: unknown TLS version {other:?}"
        )),
    };
    let min = rank("min_version", &t.min_version, 12)?;
    let max = rank("max_version", &t.max_version, 13)?;
    if min > max {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let mut out = Vec::new();
    if min <= 12 {
        out.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

fn client_verifier(
    t: &TlsFile,
    dir: &Path,
    files: &mut Vec<PathBuf>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, String> {
    let has_ca = !t.client_ca_file.is_empty() || !t.client_ca.is_empty();
    let verify_if_given = match t.client_auth_type.as_str() {
        "" | "NoClientCert" if has_ca => {
            return Err("tls_server_config: client CAs are configured without a client_auth_type".into())
        }
        "" | "NoClientCert" => return Ok(None),
        "RequireAndVerifyClientCert" => false,
        "VerifyClientCertIfGiven" => true,
        other @ ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert") => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other} (accepting client certificates without verifying them) is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
            ))
        }
        other => return Err(format!("tls_server_config.client_auth_type: invalid {other:?}")),
    };
    if t.client_allowed_sans.is_some() {
        return Err("tls_server_config.client_allowed_sans: not supported".into());
    }
    if !has_ca {
        return Err(format!(
            "tls_server_config: client_auth_type {} needs client_ca_file or client_ca",
            t.client_auth_type
        ));
    }
    let ca_pem = pem(
        &t.client_ca,
        &t.client_ca_file,
        "tls_server_config.client_ca_file",
        dir,
        files,
    )?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| format!("tls_server_config.client_ca: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("tls_server_config.client_ca: {e}"))?;
    }
    if roots.is_empty() {
        return Err("tls_server_config.client_ca: no PEM certificate".into());
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if verify_if_given {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    let verifier = builder
        .build()
        .map_err(|e| format!("tls_server_config.client_ca: {e}"))?;
    Ok(Some(verifier))
}

#[cfg(test)]
mod tests;

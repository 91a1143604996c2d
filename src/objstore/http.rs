//! Thanos' `http_config` section (`exthttp.HTTPConfig`, shared by S3, GCS and AZURE) mapped
//! onto `object_store`'s `ClientOptions`.
//!
//! | Thanos field (default)               | here                                                |
//! |--------------------------------------|-----------------------------------------------------|
//! | `idle_conn_timeout` (90s)            | pool idle timeout                                   |
//! | `response_header_timeout` (2m)       | read timeout: no byte for this long fails the try  |
//! | `tls_handshake_timeout` (10s)        | connect timeout = Go's 30 s dial + this             |
//! | `insecure_skip_verify`, `tls_config.insecure_skip_verify` | accept invalid certificates |
//! | `tls_config.ca_file`                 | extra root certificates (PEM bundle)                |
//! | `max_idle_conns` (100), `max_idle_conns_per_host` (100) | idle pool per host = the smaller |
//! | `max_conns_per_host` (0 = no limit)  | `LimitStore`: at most this many requests in flight  |
//! | `expect_continue_timeout` (1s)       | accepted: `object_store` never sends `Expect`       |
//! | `disable_compression`                | accepted: `object_store` never asks for gzip        |
//! | `tls_config.cert_file`, `key_file`, `server_name` | **rejected**: not supported            |
//!
//! There is deliberately no total request timeout (`object_store`'s default is 30 s, which
//! would cut off any download of a large chunk file): Go's transport has none either, and
//! compactd's driver bounds every call with its own operation timeout.

use std::time::Duration;

use object_store::{Certificate, ClientOptions};
use serde::Deserialize;

use super::yaml::{nullable, DurationMs, Text};

/// Go's `net.Dialer` timeout in Thanos' transport; reqwest times dial and TLS together.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// `http_config`, with Thanos' defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HttpConfig {
    idle_conn_timeout: DurationMs,
    response_header_timeout: DurationMs,
    #[serde(deserialize_with = "nullable")]
    insecure_skip_verify: bool,
    tls_handshake_timeout: DurationMs,
    expect_continue_timeout: DurationMs,
    #[serde(deserialize_with = "nullable")]
    max_idle_conns: i64,
    #[serde(deserialize_with = "nullable")]
    max_idle_conns_per_host: i64,
    #[serde(deserialize_with = "nullable")]
    max_conns_per_host: i64,
    #[serde(deserialize_with = "nullable")]
    tls_config: TlsConfig,
    #[serde(deserialize_with = "nullable")]
    disable_compression: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            idle_conn_timeout: DurationMs(90_000),
            response_header_timeout: DurationMs(120_000),
            insecure_skip_verify: false,
            tls_handshake_timeout: DurationMs(10_000),
            expect_continue_timeout: DurationMs(1_000),
            max_idle_conns: 100,
            max_idle_conns_per_host: 100,
            max_conns_per_host: 0,
            tls_config: TlsConfig::default(),
            disable_compression: false,
        }
    }
}

/// `http_config.tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TlsConfig {
    ca_file: Text,
    cert_file: Text,
    key_file: Text,
    server_name: Text,
    #[serde(deserialize_with = "nullable")]
    insecure_skip_verify: bool,
}

impl HttpConfig {
    /// Rejects what `object_store` cannot do; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let tls = &self.tls_config;
        if !tls.cert_file.is_empty() || !tls.key_file.is_empty() {
            return Err(
                "http_config.tls_config.cert_file/key_file: TLS client certificates \
                        are not supported by compactd's object_store client"
                    .into(),
            );
        }
        if !tls.server_name.is_empty() {
            return Err(
                "http_config.tls_config.server_name: overriding the TLS server name \
                        is not supported by compactd's object_store client"
                    .into(),
            );
        }
        for (field, value) in [
            ("max_idle_conns", self.max_idle_conns),
            ("max_idle_conns_per_host", self.max_idle_conns_per_host),
            ("max_conns_per_host", self.max_conns_per_host),
        ] {
            if value < 0 {
                return Err(format!(
                    "http_config.{field}: must not be negative, got {value}"
                ));
            }
        }
        Ok(())
    }

    /// Whether certificate verification is off (for `describe`).
    pub fn skips_verify(&self) -> bool {
        self.insecure_skip_verify || self.tls_config.insecure_skip_verify
    }

    /// The request limit for `LimitStore`; 0 means none.
    pub fn max_requests(&self) -> usize {
        usize::try_from(self.max_conns_per_host).unwrap_or(0)
    }

    /// The client options; reads `tls_config.ca_file`.
    pub fn client_options(&self, allow_http: bool) -> Result<ClientOptions, String> {
        let mut options = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout_disabled()
            .with_connect_timeout(DIAL_TIMEOUT + self.tls_handshake_timeout.get())
            .with_allow_invalid_certificates(self.skips_verify());
        options = if self.response_header_timeout.0 > 0 {
            options.with_read_timeout(self.response_header_timeout.get())
        } else {
            options.with_read_timeout_disabled()
        };
        if self.idle_conn_timeout.0 > 0 {
            options = options.with_pool_idle_timeout(self.idle_conn_timeout.get());
        }
        if let Some(idle) = self.max_idle_per_host() {
            options = options.with_pool_max_idle_per_host(idle);
        }
        let ca_file = self.tls_config.ca_file.trimmed();
        if !ca_file.is_empty() {
            let pem = std::fs::read(ca_file)
                .map_err(|e| format!("http_config.tls_config.ca_file {ca_file}: {e}"))?;
            let certificates = Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("http_config.tls_config.ca_file {ca_file}: {e}"))?;
            if certificates.is_empty() {
                return Err(format!(
                    "http_config.tls_config.ca_file {ca_file}: no PEM certificate in the file"
                ));
            }
            for certificate in certificates {
                options = options.with_root_certificate(certificate);
            }
        }
        Ok(options)
    }

    /// Go: `MaxIdleConns` 0 = unlimited, `MaxIdleConnsPerHost` 0 = 2 (Go's default). With one
    /// host, the effective per-host bound is the smaller of the two.
    fn max_idle_per_host(&self) -> Option<usize> {
        let per_host = match self.max_idle_conns_per_host {
            0 => 2,
            n => usize::try_from(n).ok()?,
        };
        match self.max_idle_conns {
            0 => Some(per_host),
            n => Some(per_host.min(usize::try_from(n).ok()?)),
        }
    }
}

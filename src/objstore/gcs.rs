//! `type: GCS` (Thanos `providers/gcs`) on `object_store`'s `GoogleCloudStorage`.
//!
//! Thanos fields (default), and what becomes of them:
//! - `bucket`: required.
//! - `service_account`: the service account key JSON, inline. Unset: Google's default
//!   credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application default credentials
//!   file, then the instance metadata server).
//! - `chunk_size_bytes` (0): [`super::Bucket::part_size_bytes`]; 0 means the Go client's
//!   16 MiB.
//! - `max_retries`: `object_store`'s retry count, when > 0.
//! - `http_config`: see `http.rs`.
//! - `use_grpc: true`: **rejected** (`object_store` speaks the JSON/XML APIs).
//!   `grpc_conn_pool_size` is accepted: it only applies with `use_grpc`, as in Thanos.
//!
//! `PutMode::Update` on GCS needs the object's generation (`version`), not only its e_tag.

use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::RetryConfig;
use serde::Deserialize;

use super::http::HttpConfig;
use super::yaml::{nullable, parse_section, Secret, Text};
use super::{Env, OpenError, Opened, Unwrapped};

/// The Go storage client's default resumable-upload chunk size.
const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;
/// The XML multipart API's smallest part (except the last).
const PART_SIZE_MIN: u64 = 5 << 20;

/// The parsed GCS section.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The bucket name.
    pub bucket: String,
    service_account: Secret,
    part_size_bytes: u64,
    max_retries: Option<usize>,
    http: HttpConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    bucket: Text,
    service_account: Secret,
    #[serde(deserialize_with = "nullable")]
    use_grpc: bool,
    #[serde(deserialize_with = "nullable")]
    grpc_conn_pool_size: i64,
    #[serde(deserialize_with = "nullable")]
    http_config: HttpConfig,
    #[serde(deserialize_with = "nullable")]
    chunk_size_bytes: i64,
    #[serde(deserialize_with = "nullable")]
    max_retries: i64,
}

/// Parses and validates the section.
pub(crate) fn parse(text: &str) -> Result<Config, String> {
    let raw: Raw = parse_section(text)?;
    let bucket = raw.bucket.trimmed().to_string();
    if bucket.is_empty() {
        return Err("missing field \"bucket\"".into());
    }
    if raw.use_grpc {
        return Err("use_grpc: the gRPC API is not supported by compactd (remove use_grpc)".into());
    }
    let part_size_bytes = match u64::try_from(raw.chunk_size_bytes) {
        Ok(0) => DEFAULT_CHUNK_SIZE,
        Ok(n) if n >= PART_SIZE_MIN => n,
        _ => {
            return Err(format!(
                "chunk_size_bytes: {} is below the multipart minimum of {PART_SIZE_MIN} bytes",
                raw.chunk_size_bytes
            ))
        }
    };
    raw.http_config.validate()?;
    Ok(Config {
        bucket,
        service_account: raw.service_account,
        part_size_bytes,
        max_retries: usize::try_from(raw.max_retries).ok().filter(|n| *n > 0),
        http: raw.http_config,
    })
}

/// Builds the client.
pub(super) fn open(cfg: &Config, env: &dyn Env) -> Result<Opened, OpenError> {
    let options = cfg.http.client_options(false).map_err(OpenError::Invalid)?;
    let mut retry = RetryConfig::default();
    if let Some(n) = cfg.max_retries {
        retry.max_retries = n;
    }
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&cfg.bucket)
        .with_client_options(options)
        .with_retry(retry);
    if !cfg.service_account.is_empty() {
        builder = builder.with_service_account_key(cfg.service_account.expose());
    } else if let Some(path) = env.first(&["GOOGLE_APPLICATION_CREDENTIALS"]) {
        builder = builder.with_application_credentials(path);
    }
    let store = builder.build()?;
    Ok(Opened {
        store: Unwrapped::Gcs(store, cfg.http.max_requests()),
        conditional_update: true,
        part_size_bytes: Some(cfg.part_size_bytes),
    })
}

/// One line for the log, without secrets.
pub(crate) fn describe(cfg: &Config) -> String {
    let credentials = if cfg.service_account.is_empty() {
        "application-default"
    } else {
        "service-account"
    };
    format!("GCS bucket={} credentials={credentials}", cfg.bucket)
}

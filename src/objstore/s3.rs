//! `type: S3` (Thanos `providers/s3`, a minio-go client) on `object_store`'s `AmazonS3`.
//!
//! Conditional writes use `S3ConditionalPut::ETagMatch`: `PutMode::Create` sends
//! `If-None-Match: *`, `PutMode::Update` sends `If-Match: <etag>`.
//!
//! Thanos fields (default), and what becomes of them:
//! - `bucket`, `endpoint`: required; `endpoint` is `host[:port]` without a scheme, as Thanos.
//! - `insecure`: `http://` instead of `https://`.
//! - `region`: the signing region. Unset: taken from an `*.amazonaws.com` endpoint, else
//!   `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1` (minio-go asks the server instead;
//!   we make no request while opening).
//! - `bucket_lookup_type` (auto): `auto` is virtual-hosted for `*.amazonaws.com` (path-style
//!   when the bucket name has a dot and TLS is on) and path-style elsewhere, as minio-go;
//!   `virtual-hosted`, `path`.
//! - `access_key`, `secret_key`, `session_token`: static credentials.
//! - no `access_key`, or `aws_sdk_auth: true`: the chain in `aws_auth.rs` (environment,
//!   shared credentials file, IAM); SSO and `credential_process` profiles are not supported.
//!   `sts_endpoint` applies to web identity.
//! - `sse_config`: SSE-S3, SSE-KMS (`kms_key_id`), SSE-C (`encryption_key`, a file holding the
//!   32-byte key). A non-empty `kms_encryption_context` is **rejected**.
//! - `part_size` (64 MiB), `disable_multipart`: [`super::Bucket::part_size_bytes`].
//! - `max_retries`: `object_store`'s retry count, when > 0.
//! - `http_config`: see `http.rs`.
//! - `list_objects_version`: `v2` or empty; `v1` is **rejected** (`object_store` lists with
//!   ListObjectsV2 only).
//! - `send_content_md5` (true): accepted; payloads are SigV4-signed (`x-amz-content-sha256`),
//!   which S3 verifies, so the body is integrity-checked either way.
//! - `disable_dualstack`: accepted; compactd never uses dual-stack endpoints.
//! - `signature_version2: true`, `trace.enable: true`, a non-empty `put_user_metadata`:
//!   **rejected**.

use std::collections::BTreeMap;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::RetryConfig;
use serde::Deserialize;

use super::http::HttpConfig;
use super::yaml::{nullable, parse_section, Secret, Text};
use super::{Env, OpenError, Opened, Unwrapped};

/// Thanos' default `part_size`.
pub(crate) const DEFAULT_PART_SIZE: u64 = 64 << 20;
/// S3's smallest part (except the last).
const PART_SIZE_MIN: u64 = 5 << 20;
/// S3's largest part.
const PART_SIZE_MAX: u64 = 5 << 30;

/// The parsed S3 section.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The bucket name.
    pub bucket: String,
    endpoint: String,
    region: String,
    insecure: bool,
    lookup: Lookup,
    credentials: Credentials,
    sse: Sse,
    sts_endpoint: String,
    max_retries: Option<usize>,
    part_size_bytes: Option<u64>,
    http: HttpConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Auto,
    VirtualHosted,
    Path,
}

#[derive(Debug, Clone)]
enum Credentials {
    Static {
        access_key: String,
        secret_key: Secret,
        session_token: Secret,
    },
    /// `aws_sdk_auth: true`.
    Sdk,
    /// No `access_key`: environment, shared file, IAM.
    Environment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sse {
    None,
    S3,
    Kms { key_id: String },
    Customer { key_file: String },
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    bucket: Text,
    endpoint: Text,
    region: Text,
    #[serde(deserialize_with = "nullable")]
    disable_dualstack: bool,
    #[serde(deserialize_with = "nullable")]
    aws_sdk_auth: bool,
    access_key: Text,
    #[serde(deserialize_with = "nullable")]
    insecure: bool,
    #[serde(deserialize_with = "nullable")]
    signature_version2: bool,
    secret_key: Secret,
    session_token: Secret,
    #[serde(deserialize_with = "nullable")]
    put_user_metadata: BTreeMap<String, Text>,
    #[serde(deserialize_with = "nullable")]
    http_config: HttpConfig,
    #[serde(deserialize_with = "nullable")]
    trace: Trace,
    list_objects_version: Text,
    bucket_lookup_type: Text,
    #[serde(deserialize_with = "nullable")]
    send_content_md5: bool,
    #[serde(deserialize_with = "nullable")]
    disable_multipart: bool,
    #[serde(deserialize_with = "nullable")]
    part_size: u64,
    #[serde(deserialize_with = "nullable")]
    sse_config: RawSse,
    sts_endpoint: Text,
    #[serde(deserialize_with = "nullable")]
    max_retries: i64,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            bucket: Text::default(),
            endpoint: Text::default(),
            region: Text::default(),
            disable_dualstack: false,
            aws_sdk_auth: false,
            access_key: Text::default(),
            insecure: false,
            signature_version2: false,
            secret_key: Secret::default(),
            session_token: Secret::default(),
            put_user_metadata: BTreeMap::new(),
            http_config: HttpConfig::default(),
            trace: Trace::default(),
            list_objects_version: Text::default(),
            bucket_lookup_type: Text::default(),
            send_content_md5: true,
            disable_multipart: false,
            part_size: DEFAULT_PART_SIZE,
            sse_config: RawSse::default(),
            sts_endpoint: Text::default(),
            max_retries: 0,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Trace {
    #[serde(deserialize_with = "nullable")]
    enable: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSse {
    #[serde(rename = "type")]
    kind: Text,
    kms_key_id: Text,
    #[serde(deserialize_with = "nullable")]
    kms_encryption_context: BTreeMap<String, Text>,
    encryption_key: Text,
}

/// Parses and validates the section (Thanos' `validate` plus what we cannot honour).
pub(crate) fn parse(text: &str) -> Result<Config, String> {
    let raw: Raw = parse_section(text)?;
    let bucket = raw.bucket.trimmed().to_string();
    if bucket.is_empty() {
        return Err("missing field \"bucket\"".into());
    }
    let endpoint = parse_endpoint(&raw.endpoint)?;
    let credentials = parse_credentials(&raw)?;
    reject_unsupported(&raw)?;
    let lookup = match raw.bucket_lookup_type.trimmed() {
        "" | "auto" => Lookup::Auto,
        "virtual-hosted" => Lookup::VirtualHosted,
        "path" => Lookup::Path,
        other => {
            return Err(format!(
                "field \"bucket_lookup_type\": unsupported bucket lookup type {other:?} \
                 (auto, virtual-hosted or path)"
            ))
        }
    };
    let part_size_bytes = if raw.disable_multipart {
        None
    } else if (PART_SIZE_MIN..=PART_SIZE_MAX).contains(&raw.part_size) {
        Some(raw.part_size)
    } else {
        return Err(format!(
            "field \"part_size\": {} bytes is outside S3's part size range [{PART_SIZE_MIN}, \
             {PART_SIZE_MAX}]",
            raw.part_size
        ));
    };
    raw.http_config.validate()?;
    Ok(Config {
        bucket,
        endpoint,
        region: raw.region.trimmed().to_string(),
        insecure: raw.insecure,
        lookup,
        credentials,
        sse: parse_sse(&raw.sse_config)?,
        sts_endpoint: raw.sts_endpoint.trimmed().to_string(),
        max_retries: usize::try_from(raw.max_retries).ok().filter(|n| *n > 0),
        part_size_bytes,
        http: raw.http_config,
    })
}

fn parse_endpoint(endpoint: &Text) -> Result<String, String> {
    let endpoint = endpoint.trimmed();
    if endpoint.is_empty() {
        return Err(
            "missing field \"endpoint\" (host[:port], e.g. s3.us-east-1.amazonaws.com)".into(),
        );
    }
    if endpoint.contains("://") {
        return Err(format!(
            "field \"endpoint\": {endpoint:?} has a scheme; Thanos takes host[:port] only \
             (set insecure: true for http)"
        ));
    }
    if endpoint.contains('/') || endpoint.contains(char::is_whitespace) {
        return Err(format!(
            "field \"endpoint\": {endpoint:?} is not host[:port] (no path allowed)"
        ));
    }
    Ok(endpoint.to_string())
}

fn parse_credentials(raw: &Raw) -> Result<Credentials, String> {
    let access_key = raw.access_key.trimmed();
    if raw.aws_sdk_auth && !access_key.is_empty() {
        return Err("aws_sdk_auth and access_key are mutually exclusive".into());
    }
    if access_key.is_empty() && !raw.secret_key.is_empty() {
        return Err(
            "secret_key is set but access_key is not; set both, or neither to use \
                    the environment/IAM"
                .into(),
        );
    }
    if !access_key.is_empty() && raw.secret_key.is_empty() {
        return Err(
            "access_key is set but secret_key is not; set both, or neither to use \
                    the environment/IAM"
                .into(),
        );
    }
    if access_key.is_empty() && !raw.session_token.is_empty() {
        return Err("session_token is set but access_key is not (Thanos would ignore it)".into());
    }
    Ok(if !access_key.is_empty() {
        Credentials::Static {
            access_key: access_key.to_string(),
            secret_key: raw.secret_key.clone(),
            session_token: raw.session_token.clone(),
        }
    } else if raw.aws_sdk_auth {
        Credentials::Sdk
    } else {
        Credentials::Environment
    })
}

fn reject_unsupported(raw: &Raw) -> Result<(), String> {
    if raw.signature_version2 {
        return Err(
            "signature_version2: AWS signature version 2 is not supported by compactd \
                    (object_store signs with version 4)"
                .into(),
        );
    }
    if raw.trace.enable {
        return Err("trace.enable: HTTP request tracing is not supported by compactd".into());
    }
    if !raw.put_user_metadata.is_empty() {
        return Err(
            "put_user_metadata: per-object metadata and storage class are not \
                    supported by compactd; remove the field"
                .into(),
        );
    }
    match raw.list_objects_version.trimmed() {
        "" | "v2" => Ok(()),
        "v1" => Err(
            "list_objects_version: v1 is not supported by compactd (object_store \
                     lists with ListObjectsV2 only)"
                .into(),
        ),
        other => Err(format!(
            "list_objects_version: unsupported version {other:?} (v1 or v2)"
        )),
    }
}

fn parse_sse(raw: &RawSse) -> Result<Sse, String> {
    let kms_key_id = raw.kms_key_id.trimmed();
    let encryption_key = raw.encryption_key.trimmed();
    if !raw.kms_encryption_context.is_empty() {
        return Err(
            "sse_config.kms_encryption_context: a KMS encryption context is not \
                    supported by compactd"
                .into(),
        );
    }
    let sse = match raw.kind.trimmed() {
        "" => Sse::None,
        "SSE-S3" => Sse::S3,
        "SSE-KMS" if kms_key_id.is_empty() => {
            return Err("sse_config.kms_key_id must be set if sse_config.type is SSE-KMS".into())
        }
        "SSE-KMS" => Sse::Kms {
            key_id: kms_key_id.to_string(),
        },
        "SSE-C" if encryption_key.is_empty() => {
            return Err("sse_config.encryption_key must be set if sse_config.type is SSE-C".into())
        }
        "SSE-C" => Sse::Customer {
            key_file: encryption_key.to_string(),
        },
        other => {
            return Err(format!(
                "sse_config.type: unsupported type {other:?} (SSE-S3, SSE-KMS or SSE-C)"
            ))
        }
    };
    if !kms_key_id.is_empty() && !matches!(sse, Sse::Kms { .. }) {
        return Err("sse_config.kms_key_id is set but sse_config.type is not SSE-KMS".into());
    }
    if !encryption_key.is_empty() && !matches!(sse, Sse::Customer { .. }) {
        return Err("sse_config.encryption_key is set but sse_config.type is not SSE-C".into());
    }
    Ok(sse)
}

/// True for Amazon's own endpoints, where minio-go's `auto` lookup uses virtual hosts.
fn is_amazon(host: &str) -> bool {
    let host = host.split(':').next().unwrap_or(host);
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

/// The region in an Amazon endpoint (`s3.eu-west-1.amazonaws.com`, `s3-us-west-2...`,
/// `s3.dualstack.ap-south-1...`, `s3-fips.us-gov-west-1...`).
fn region_from_host(host: &str) -> Option<String> {
    if !is_amazon(host) {
        return None;
    }
    host.split('.')
        .map(|label| label.strip_prefix("s3-").unwrap_or(label))
        .find(|label| {
            let mut parts = label.split('-');
            let first = parts.next().unwrap_or("");
            let last = label.rsplit('-').next().unwrap_or("");
            first.len() == 2
                && first.bytes().all(|b| b.is_ascii_lowercase())
                && label.matches('-').count() >= 2
                && !last.is_empty()
                && last.bytes().all(|b| b.is_ascii_digit())
        })
        .map(str::to_string)
}

/// The signing region: configured, from the endpoint, from the environment, or us-east-1.
fn resolve_region(cfg: &Config, env: &dyn Env) -> String {
    if !cfg.region.is_empty() {
        return cfg.region.clone();
    }
    region_from_host(&cfg.endpoint)
        .or_else(|| env.first(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// The endpoint URL `object_store` gets and whether requests are virtual-hosted (then the
/// URL already names the bucket, as `object_store` expects).
fn endpoint_url(cfg: &Config, region: &str) -> (String, bool) {
    let scheme = if cfg.insecure { "http" } else { "https" };
    // minio-go sends requests for the global endpoint to the bucket's regional one.
    let host = if cfg.endpoint == "s3.amazonaws.com" {
        format!("s3.{region}.amazonaws.com")
    } else {
        cfg.endpoint.clone()
    };
    let virtual_hosted = match cfg.lookup {
        Lookup::VirtualHosted => true,
        Lookup::Path => false,
        // A dotted bucket name breaks the TLS wildcard certificate of a virtual host.
        Lookup::Auto => is_amazon(&host) && (cfg.insecure || !cfg.bucket.contains('.')),
    };
    if virtual_hosted {
        (format!("{scheme}://{}.{host}", cfg.bucket), true)
    } else {
        (format!("{scheme}://{host}"), false)
    }
}

/// Builds the client.
pub(super) fn open(cfg: &Config, env: &dyn Env) -> Result<Opened, OpenError> {
    let region = resolve_region(cfg, env);
    let (url, virtual_hosted) = endpoint_url(cfg, &region);
    let options = cfg
        .http
        .client_options(cfg.insecure)
        .map_err(OpenError::Invalid)?;
    let mut retry = RetryConfig::default();
    if let Some(n) = cfg.max_retries {
        retry.max_retries = n;
    }
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&cfg.bucket)
        .with_region(&region)
        .with_endpoint(url)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_allow_http(cfg.insecure)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_client_options(options)
        .with_retry(retry);
    builder = with_credentials(builder, cfg, env).map_err(OpenError::Invalid)?;
    builder = with_sse(builder, &cfg.sse)?;
    let store = builder.build()?;
    Ok(Opened {
        store: Unwrapped::S3(store, cfg.http.max_requests()),
        conditional_update: true,
        part_size_bytes: cfg.part_size_bytes,
    })
}

fn with_credentials(
    mut builder: AmazonS3Builder,
    cfg: &Config,
    env: &dyn Env,
) -> Result<AmazonS3Builder, String> {
    if let Credentials::Static {
        access_key,
        secret_key,
        session_token,
    } = &cfg.credentials
    {
        builder = builder
            .with_access_key_id(access_key)
            .with_secret_access_key(secret_key.expose());
        if !session_token.is_empty() {
            builder = builder.with_token(session_token.expose());
        }
        return Ok(builder);
    }
    super::aws_auth::default_chain(builder, &cfg.sts_endpoint, env)
}

fn with_sse(builder: AmazonS3Builder, sse: &Sse) -> Result<AmazonS3Builder, OpenError> {
    Ok(match sse {
        Sse::None => builder,
        Sse::S3 => builder.with_config("aws_server_side_encryption".parse()?, "AES256"),
        Sse::Kms { key_id } => builder.with_sse_kms_encryption(key_id),
        Sse::Customer { key_file } => builder.with_ssec_encryption(
            super::aws_auth::ssec_key_base64(key_file).map_err(OpenError::Invalid)?,
        ),
    })
}

/// One line for the log, without secrets.
pub(crate) fn describe(cfg: &Config) -> String {
    let region = if cfg.region.is_empty() {
        region_from_host(&cfg.endpoint).unwrap_or_else(|| "auto".into())
    } else {
        cfg.region.clone()
    };
    let (url, virtual_hosted) = endpoint_url(cfg, &region);
    let credentials = match cfg.credentials {
        Credentials::Static { .. } => "static",
        Credentials::Sdk => "aws-sdk-chain",
        Credentials::Environment => "environment/iam",
    };
    let mut line = format!(
        "S3 bucket={} endpoint={url} style={} region={region} credentials={credentials}",
        cfg.bucket,
        if virtual_hosted {
            "virtual-hosted"
        } else {
            "path"
        },
    );
    match &cfg.sse {
        Sse::None => {}
        Sse::S3 => line.push_str(" sse=SSE-S3"),
        Sse::Kms { .. } => line.push_str(" sse=SSE-KMS"),
        Sse::Customer { .. } => line.push_str(" sse=SSE-C"),
    }
    if cfg.http.skips_verify() {
        line.push_str(" tls-verify=off");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(config: &str) -> Result<Config, String> {
        parse(&format!("type: S3\nconfig:\n{config}"))
    }

    #[test]
    fn insecure_endpoint_is_http_and_path_style() {
        let cfg = s3("  bucket: b\n  endpoint: 127.0.0.1:9000\n  insecure: true\n").expect("valid");
        assert_eq!(
            endpoint_url(&cfg, "us-east-1"),
            ("http://127.0.0.1:9000".to_string(), false)
        );
    }

    #[test]
    fn amazon_endpoints_are_virtual_hosted_and_regional() {
        let cfg =
            s3("  bucket: b\n  endpoint: s3.amazonaws.com\n  region: eu-west-1\n").expect("valid");
        assert_eq!(
            endpoint_url(&cfg, "eu-west-1"),
            ("https://b.s3.eu-west-1.amazonaws.com".to_string(), true)
        );
        let dotted = s3("  bucket: a.b\n  endpoint: s3.eu-west-1.amazonaws.com\n").expect("valid");
        assert_eq!(
            endpoint_url(&dotted, "eu-west-1"),
            ("https://s3.eu-west-1.amazonaws.com".to_string(), false)
        );
        let forced =
            s3("  bucket: b\n  endpoint: minio:9000\n  bucket_lookup_type: virtual-hosted\n")
                .expect("valid");
        assert_eq!(
            endpoint_url(&forced, "us-east-1"),
            ("https://b.minio:9000".to_string(), true)
        );
    }

    #[test]
    fn region_from_amazon_hosts() {
        assert_eq!(
            region_from_host("s3.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_from_host("s3-us-west-2.amazonaws.com").as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            region_from_host("s3.dualstack.ap-south-1.amazonaws.com").as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(
            region_from_host("s3-fips.us-gov-west-1.amazonaws.com").as_deref(),
            Some("us-gov-west-1")
        );
        assert_eq!(region_from_host("s3.amazonaws.com"), None);
        assert_eq!(region_from_host("minio.eu-west-1.example.com"), None);
    }

    #[test]
    fn part_size_bounds_and_disable_multipart() {
        let small = s3("  bucket: b\n  endpoint: h\n  part_size: 1024\n").expect_err("too small");
        assert!(small.contains("part_size"), "{small}");
        let off = s3("  bucket: b\n  endpoint: h\n  disable_multipart: true\n").expect("valid");
        assert_eq!(off.part_size_bytes, None);
        let default = s3("  bucket: b\n  endpoint: h\n").expect("valid");
        assert_eq!(default.part_size_bytes, Some(DEFAULT_PART_SIZE));
    }
}

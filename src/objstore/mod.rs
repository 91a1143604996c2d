//! The object storage adapter: reads a Thanos objstore configuration (`--objstore.config-file`
//! or `--objstore.config`) and opens the bucket it names as an [`object_store::ObjectStore`].
//!
//! The YAML shape is Thanos' own (`thanos-io/objstore`, `client/factory.go`):
//!
//! ```yaml
//! type: S3            # FILESYSTEM | S3 | GCS | AZURE, case-insensitive
//! config: { ... }     # provider settings, Thanos field names and defaults
//! prefix: some/dir    # optional: every object lives under this path inside the bucket
//! ```
//!
//! Why it is strict: compactd deletes and rewrites blocks, so a setting that Thanos honours and
//! we silently dropped (server-side encryption, a storage class, a TLS client certificate) would
//! change what lands in the bucket without anyone noticing. Every documented Thanos field is
//! therefore either honoured (mapped onto `object_store`), honoured trivially (it only tunes
//! something `object_store` never does, e.g. `expect_continue_timeout`), or rejected with an
//! error naming the field. Unknown fields are errors, as in Thanos' `yaml.UnmarshalStrict`.
//! The per-provider modules list each field's fate.
//!
//! Parsing ([`parse_config`]) is pure; [`open`] reads the environment (credential fall-backs,
//! as Thanos' clients do), the files a config names (CA bundle, SSE-C key) and, for
//! FILESYSTEM, creates the directory. Nothing here talks to the network: the first request
//! does. There is no total request timeout (see `http.rs`): the driver bounds every call.

mod aws_auth;
mod azure;
mod filesystem;
mod gcs;
mod http;
mod s3;
mod yaml;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use object_store::limit::LimitStore;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use yaml::Text;

/// Where flag errors point when neither flag names a file.
pub const INLINE_ORIGIN: &str = "--objstore.config";

/// Which storage service a configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKind {
    /// A local directory (`type: FILESYSTEM`); for tests and single-machine setups.
    Filesystem,
    /// Amazon S3 or an S3-compatible server (`type: S3`).
    S3,
    /// Google Cloud Storage (`type: GCS`).
    Gcs,
    /// Azure Blob Storage (`type: AZURE`).
    Azure,
}

impl BucketKind {
    /// The name Thanos' `type:` field uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BucketKind::Filesystem => "FILESYSTEM",
            BucketKind::S3 => "S3",
            BucketKind::Gcs => "GCS",
            BucketKind::Azure => "AZURE",
        }
    }
}

impl fmt::Display for BucketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed and validated bucket configuration. Holds secrets; its `Debug` redacts them.
#[derive(Debug, Clone)]
pub struct BucketConfig {
    /// The storage service.
    pub kind: BucketKind,
    /// The `prefix:` path inside the bucket, without leading or trailing `/`; empty for none.
    pub prefix: String,
    /// Where the configuration came from (a file name or [`INLINE_ORIGIN`]), for messages.
    pub origin: String,
    provider: Provider,
}

#[derive(Debug, Clone)]
enum Provider {
    Filesystem(filesystem::Config),
    S3(s3::Config),
    Gcs(gcs::Config),
    Azure(azure::Config),
}

impl BucketConfig {
    /// The bucket's identity for the default etcd prefix and metric labels: the bucket name
    /// (S3, GCS), the container (AZURE) or the directory (FILESYSTEM), followed by
    /// `/<prefix>` when a prefix is set, since two prefixes are two independent block spaces.
    pub fn name(&self) -> String {
        let base = match &self.provider {
            Provider::Filesystem(c) => c.directory.clone(),
            Provider::S3(c) => c.bucket.clone(),
            Provider::Gcs(c) => c.bucket.clone(),
            Provider::Azure(c) => c.container.clone(),
        };
        if self.prefix.is_empty() {
            base
        } else {
            format!("{}/{}", base.trim_end_matches('/'), self.prefix)
        }
    }

    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            section: self.kind.as_str().into(),
            message: message.into(),
        }
    }
}

/// An opened bucket.
#[derive(Clone)]
pub struct Bucket {
    /// The store; paths are relative to the configured `prefix:`.
    pub store: Arc<dyn ObjectStore>,
    /// See [`BucketConfig::name`].
    pub name: String,
    /// The storage service.
    pub kind: BucketKind,
    /// Whether the store supports `PutMode::Update` (If-Match compare-and-swap): true for S3,
    /// GCS and AZURE, false for FILESYSTEM (`object_store`'s `LocalFileSystem` answers
    /// `NotImplemented`; it does support `PutMode::Create`). On GCS an update needs the object's
    /// `version` (generation) from the last read or write, not only its e_tag.
    pub conditional_update: bool,
    /// Part size for multipart uploads: objects at least this large should be uploaded in
    /// parts of this size (Thanos: S3 `part_size`, GCS `chunk_size_bytes`). `None` when the
    /// configuration disables multipart uploads (S3 `disable_multipart: true`).
    pub part_size_bytes: Option<u64>,
    /// FILESYSTEM: the directory the objects are files in (`directory`, then `prefix:`), so
    /// that block files can be read in place.
    pub local_root: Option<std::path::PathBuf>,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket")
            .field("store", &format_args!("{}", self.store))
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("conditional_update", &self.conditional_update)
            .field("part_size_bytes", &self.part_size_bytes)
            .field("local_root", &self.local_root)
            .finish()
    }
}

/// Why a configuration could not be loaded, parsed or opened. The message names the origin
/// (file or flag), the provider and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The flags themselves are wrong (both or neither given, unreadable file).
    #[error("objstore config: {0}")]
    Flags(String),
    /// The YAML is malformed, a field is unknown, missing, mistyped, or asks for something
    /// compactd cannot honour.
    #[error("objstore config {origin}: {section}: {message}")]
    Invalid {
        /// The file name or [`INLINE_ORIGIN`].
        origin: String,
        /// `bucket config` for the top level, else the provider (`S3`, `GCS`, ...).
        section: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// `object_store` refused to build the client from otherwise valid settings.
    #[error("objstore config {origin}: {section}: {source}")]
    Open {
        /// The file name or [`INLINE_ORIGIN`].
        origin: String,
        /// The provider.
        section: String,
        /// `object_store`'s reason.
        #[source]
        source: object_store::Error,
    },
}

/// Loads the configuration the way Thanos' `--objstore.config-file` / `--objstore.config` pair
/// does: exactly one of them, the file wins over nothing, and `$(NAME)` references are replaced
/// by environment variables (an unset one is an error), as Thanos' `WithEnvSubstitution`.
pub fn load(file: Option<&Path>, inline: Option<&str>) -> Result<BucketConfig, ConfigError> {
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let inline = inline.filter(|s| !s.is_empty());
    let (content, origin) = match (file, inline) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Flags(
                "both --objstore.config-file and --objstore.config are set; use one".into(),
            ))
        }
        (None, None) => {
            return Err(ConfigError::Flags(
                "--objstore.config-file or --objstore.config is required".into(),
            ))
        }
        (Some(path), None) => {
            let content = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Flags(format!(
                    "reading --objstore.config-file {}: {e}",
                    path.display()
                ))
            })?;
            (content, path.display().to_string())
        }
        (None, Some(text)) => (text.to_string(), INLINE_ORIGIN.to_string()),
    };
    let content = expand_env(&content, |name| std::env::var(name).ok()).map_err(|message| {
        ConfigError::Invalid {
            origin: origin.clone(),
            section: "bucket config".into(),
            message,
        }
    })?;
    parse_config(&content, &origin)
}

/// Replaces every `$(NAME)` (NAME of ASCII letters, digits and `_`) by `lookup(NAME)`; an
/// unset variable is an error. Other `$` text is left alone. This is Thanos' (Kubernetes-style)
/// substitution, not the shell's.
pub fn expand_env(
    content: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && after[name_len..].starts_with(')') {
            let name = &after[..name_len];
            let value = lookup(name)
                .ok_or_else(|| format!("found reference to unset environment variable {name:?}"))?;
            out.push_str(&value);
            rest = &after[name_len + 1..];
        } else {
            out.push_str("$(");
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses and validates a Thanos objstore configuration. `origin` names it in errors (the
/// file name, or [`INLINE_ORIGIN`]). Pure: reads no environment and no files.
pub fn parse_config(yaml_text: &str, origin: &str) -> Result<BucketConfig, ConfigError> {
    let top_error = |message: String| ConfigError::Invalid {
        origin: origin.to_string(),
        section: "bucket config".into(),
        message,
    };
    if yaml_text.trim().is_empty() {
        return Err(top_error("the configuration is empty".into()));
    }
    let header: yaml::Document<serde_yaml_ng::Value> =
        serde_yaml_ng::from_str(yaml_text).map_err(|e| top_error(e.to_string()))?;
    let type_name = header.kind.0.trim().to_ascii_uppercase();
    let kind = match type_name.as_str() {
        "FILESYSTEM" => BucketKind::Filesystem,
        "S3" => BucketKind::S3,
        "GCS" => BucketKind::Gcs,
        "AZURE" => BucketKind::Azure,
        "SWIFT" | "COS" | "ALIYUNOSS" | "BOS" | "OCI" | "OBS" => {
            return Err(top_error(format!(
                "bucket type {type_name} is supported by Thanos but not by compactd \
                 (supported: FILESYSTEM, S3, GCS, AZURE)"
            )))
        }
        "" => return Err(top_error("missing field \"type\"".into())),
        _ => {
            return Err(top_error(format!(
                "bucket with type {:?} is not supported (supported: FILESYSTEM, S3, GCS, AZURE)",
                header.kind.0
            )))
        }
    };
    let section_error = |message: String| ConfigError::Invalid {
        origin: origin.to_string(),
        section: kind.as_str().into(),
        message,
    };
    let prefix = normalize_prefix(&header.prefix).map_err(top_error)?;
    let provider = match kind {
        BucketKind::Filesystem => filesystem::parse(yaml_text).map(Provider::Filesystem),
        BucketKind::S3 => s3::parse(yaml_text).map(Provider::S3),
        BucketKind::Gcs => gcs::parse(yaml_text).map(Provider::Gcs),
        BucketKind::Azure => azure::parse(yaml_text).map(Provider::Azure),
    }
    .map_err(section_error)?;
    Ok(BucketConfig {
        kind,
        prefix,
        origin: origin.to_string(),
        provider,
    })
}

/// Thanos trims `/` from both ends of the prefix; `object_store` then needs a valid path (no
/// empty, `.` or `..` segments).
fn normalize_prefix(prefix: &Text) -> Result<String, String> {
    let trimmed = prefix.0.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    ObjectPath::parse(trimmed)
        .map(|p| p.to_string())
        .map_err(|e| format!("field \"prefix\": invalid path {trimmed:?}: {e}"))
}

/// Opens the configured bucket. Reads credentials from the environment where the
/// configuration leaves them out (as Thanos' clients do), reads the files it names (CA
/// bundle, SSE-C key) and creates a missing FILESYSTEM directory. Makes no network request.
pub fn open(cfg: &BucketConfig) -> Result<Bucket, ConfigError> {
    open_with_env(cfg, &ProcessEnv)
}

pub(crate) fn open_with_env(cfg: &BucketConfig, env: &dyn Env) -> Result<Bucket, ConfigError> {
    let prefix = if cfg.prefix.is_empty() {
        None
    } else {
        Some(ObjectPath::from(cfg.prefix.as_str()))
    };
    let opened = match &cfg.provider {
        Provider::Filesystem(c) => filesystem::open(c),
        Provider::S3(c) => s3::open(c, env),
        Provider::Gcs(c) => gcs::open(c, env),
        Provider::Azure(c) => azure::open(c, env),
    }
    .map_err(|e| match e {
        OpenError::Invalid(message) => cfg.error(message),
        OpenError::Store(source) => ConfigError::Open {
            origin: cfg.origin.clone(),
            section: cfg.kind.as_str().into(),
            source,
        },
    })?;
    let local_root = match &cfg.provider {
        Provider::Filesystem(c) => Some(std::path::Path::new(&c.directory).join(&cfg.prefix)),
        _ => None,
    };
    Ok(Bucket {
        local_root,
        store: opened.store.wrap(prefix),
        name: cfg.name(),
        kind: cfg.kind,
        conditional_update: opened.conditional_update,
        part_size_bytes: opened.part_size_bytes,
    })
}

/// One line for the log: provider, bucket, endpoint, prefix and the kind of credentials,
/// never a secret.
pub fn describe(cfg: &BucketConfig) -> String {
    let mut line = match &cfg.provider {
        Provider::Filesystem(c) => filesystem::describe(c),
        Provider::S3(c) => s3::describe(c),
        Provider::Gcs(c) => gcs::describe(c),
        Provider::Azure(c) => azure::describe(c),
    };
    if !cfg.prefix.is_empty() {
        line.push_str(&format!(" prefix={}", cfg.prefix));
    }
    line
}

/// What a provider's `open` returns before the common wrapping.
struct Opened {
    store: Unwrapped,
    conditional_update: bool,
    part_size_bytes: Option<u64>,
}

/// A concrete store plus the request limit (`http_config.max_conns_per_host`) to put on it.
/// `PrefixStore` and `LimitStore` need a sized inner type, hence the enum.
enum Unwrapped {
    Local(object_store::local::LocalFileSystem),
    S3(object_store::aws::AmazonS3, usize),
    Gcs(object_store::gcp::GoogleCloudStorage, usize),
    Azure(object_store::azure::MicrosoftAzure, usize),
}

impl Unwrapped {
    fn wrap(self, prefix: Option<ObjectPath>) -> Arc<dyn ObjectStore> {
        match self {
            Unwrapped::Local(s) => with_prefix(s, prefix),
            Unwrapped::S3(s, limit) => with_limit(s, limit, prefix),
            Unwrapped::Gcs(s, limit) => with_limit(s, limit, prefix),
            Unwrapped::Azure(s, limit) => with_limit(s, limit, prefix),
        }
    }
}

fn with_limit<T: ObjectStore>(
    store: T,
    max_requests: usize,
    prefix: Option<ObjectPath>,
) -> Arc<dyn ObjectStore> {
    if max_requests > 0 {
        with_prefix(LimitStore::new(store, max_requests), prefix)
    } else {
        with_prefix(store, prefix)
    }
}

fn with_prefix<T: ObjectStore>(store: T, prefix: Option<ObjectPath>) -> Arc<dyn ObjectStore> {
    match prefix {
        Some(p) => Arc::new(PrefixStore::new(store, p)),
        None => Arc::new(store),
    }
}

/// Why a provider could not open: a setting problem found late (a file it names), or
/// `object_store`'s builder error.
enum OpenError {
    Invalid(String),
    Store(object_store::Error),
}

impl From<object_store::Error> for OpenError {
    fn from(e: object_store::Error) -> Self {
        OpenError::Store(e)
    }
}

/// The process environment, behind a trait so that tests can supply their own.
pub(crate) trait Env {
    /// The variable's value, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;

    /// The first of `names` that is set and non-empty.
    fn first(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|n| self.var(n).filter(|v| !v.is_empty()))
    }
}

struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

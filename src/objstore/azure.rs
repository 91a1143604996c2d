//! `type: AZURE` (Thanos `providers/azure`) on `object_store`'s `MicrosoftAzure`.
//!
//! Thanos fields (default), and what becomes of them:
//! - `storage_account`, `container`: required.
//! - `endpoint` (blob.core.windows.net): the account URL is `https://<account>.<endpoint>`.
//! - Credentials, in Thanos' order: `storage_connection_string` (`AccountName`, `AccountKey`,
//!   `SharedAccessSignature`, `BlobEndpoint`, `EndpointSuffix`, `DefaultEndpointsProtocol`,
//!   `UseDevelopmentStorage`; other services' endpoints are ignored), `storage_account_key`
//!   (shared key), `az_tenant_id` + `client_id` + `client_secret` (service principal),
//!   `user_assigned_id` (managed identity). None of them: Azure's default chain
//!   (`AZURE_CLIENT_ID`/`AZURE_TENANT_ID`/`AZURE_CLIENT_SECRET`, workload identity through
//!   `AZURE_FEDERATED_TOKEN_FILE`, then managed identity).
//! - `max_retries`, `pipeline_config.max_tries`, `reader_config.max_retry_requests`: one
//!   `object_store` retry budget, the larger of `max_tries - 1` and `max_retry_requests`
//!   (`max_retries` fills in both when they are 0, as in Thanos).
//! - `pipeline_config.retry_delay`, `max_retry_delay`: initial and maximum backoff;
//!   `try_timeout`: per-request timeout.
//! - `http_config`: see `http.rs`.
//! - `storage_create_container` (true): accepted, but compactd never creates the container:
//!   it must exist.
//! - `msi_resource`: accepted and ignored (deprecated; Thanos ignores it too).

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::RetryConfig;
use serde::Deserialize;

use super::http::HttpConfig;
use super::yaml::{nullable, parse_section, DurationMs, Secret, Text};
use super::{Env, OpenError, Opened, Unwrapped};

/// The parsed AZURE section.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The container name.
    pub container: String,
    account: String,
    endpoint: String,
    auth: Auth,
    max_retries: Option<usize>,
    retry_delay: DurationMs,
    max_retry_delay: DurationMs,
    try_timeout: DurationMs,
    http: HttpConfig,
}

#[derive(Debug, Clone)]
enum Auth {
    SharedKey(Secret),
    ConnectionString(Connection),
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    ManagedIdentity {
        client_id: String,
    },
    Default,
}

/// The parts of a connection string compactd uses.
#[derive(Debug, Clone, Default)]
struct Connection {
    account: String,
    account_key: Secret,
    shared_access_signature: Secret,
    blob_endpoint: String,
    endpoint_suffix: String,
    protocol: String,
    development_storage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    az_tenant_id: Text,
    client_id: Text,
    client_secret: Secret,
    storage_account: Text,
    storage_account_key: Secret,
    storage_connection_string: Secret,
    #[serde(deserialize_with = "nullable")]
    storage_create_container: bool,
    container: Text,
    endpoint: Text,
    user_assigned_id: Text,
    #[serde(deserialize_with = "nullable")]
    max_retries: i64,
    #[serde(deserialize_with = "nullable")]
    reader_config: ReaderConfig,
    #[serde(deserialize_with = "nullable")]
    pipeline_config: PipelineConfig,
    #[serde(deserialize_with = "nullable")]
    http_config: HttpConfig,
    msi_resource: Text,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            az_tenant_id: Text::default(),
            client_id: Text::default(),
            client_secret: Secret::default(),
            storage_account: Text::default(),
            storage_account_key: Secret::default(),
            storage_connection_string: Secret::default(),
            storage_create_container: true,
            container: Text::default(),
            endpoint: Text("blob.core.windows.net".into()),
            user_assigned_id: Text::default(),
            max_retries: 0,
            reader_config: ReaderConfig::default(),
            pipeline_config: PipelineConfig::default(),
            http_config: HttpConfig::default(),
            msi_resource: Text::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReaderConfig {
    #[serde(deserialize_with = "nullable")]
    max_retry_requests: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PipelineConfig {
    #[serde(deserialize_with = "nullable")]
    max_tries: i64,
    try_timeout: DurationMs,
    retry_delay: DurationMs,
    max_retry_delay: DurationMs,
}

/// Parses and validates the section (Thanos' `validate`).
pub(crate) fn parse(text: &str) -> Result<Config, String> {
    let raw: Raw = parse_section(text)?;
    let account = raw.storage_account.trimmed().to_string();
    if account.is_empty() {
        return Err("missing field \"storage_account\"".into());
    }
    let container = raw.container.trimmed().to_string();
    if container.is_empty() {
        return Err("missing field \"container\"".into());
    }
    let auth = parse_auth(&raw)?;
    let pipeline = &raw.pipeline_config;
    if pipeline.max_tries < 0 {
        return Err("pipeline_config.max_tries must be >= 0".into());
    }
    if raw.reader_config.max_retry_requests < 0 {
        return Err("reader_config.max_retry_requests must be >= 0".into());
    }
    let fill = |v: i64| if v == 0 { raw.max_retries.max(0) } else { v };
    let retries_from_tries = (fill(pipeline.max_tries) - 1).max(0);
    let retries_from_reader = fill(raw.reader_config.max_retry_requests);
    let max_retries = if fill(pipeline.max_tries) == 0 && retries_from_reader == 0 {
        None
    } else {
        usize::try_from(retries_from_tries.max(retries_from_reader)).ok()
    };
    raw.http_config.validate()?;
    Ok(Config {
        container,
        account,
        endpoint: raw.endpoint.trimmed().to_string(),
        auth,
        max_retries,
        retry_delay: pipeline.retry_delay,
        max_retry_delay: pipeline.max_retry_delay,
        try_timeout: pipeline.try_timeout,
        http: raw.http_config,
    })
}

fn parse_auth(raw: &Raw) -> Result<Auth, String> {
    let tenant_id = raw.az_tenant_id.trimmed();
    let client_id = raw.client_id.trimmed();
    let user_assigned_id = raw.user_assigned_id.trimmed();
    let key = &raw.storage_account_key;
    let connection = &raw.storage_connection_string;
    let mut problems = Vec::new();
    if !user_assigned_id.is_empty() && !key.is_empty() {
        problems.push("user_assigned_id cannot be set when using storage_account_key");
    }
    if !user_assigned_id.is_empty() && !connection.is_empty() {
        problems.push("user_assigned_id cannot be set when using storage_connection_string");
    }
    if !user_assigned_id.is_empty() && !client_id.is_empty() {
        problems.push("user_assigned_id cannot be set when using client_id");
    }
    let principal = [
        !tenant_id.is_empty(),
        !client_id.is_empty(),
        !raw.client_secret.is_empty(),
    ];
    if principal.contains(&true) && principal.contains(&false) {
        problems.push("az_tenant_id, client_id and client_secret must be set together");
    }
    if !key.is_empty() && !connection.is_empty() {
        problems.push("storage_account_key and storage_connection_string cannot both be set");
    }
    if !problems.is_empty() {
        return Err(problems.join(", "));
    }
    Ok(if !connection.is_empty() {
        Auth::ConnectionString(parse_connection_string(connection.expose())?)
    } else if !key.is_empty() {
        Auth::SharedKey(key.clone())
    } else if !client_id.is_empty() {
        Auth::ServicePrincipal {
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            client_secret: raw.client_secret.clone(),
        }
    } else if !user_assigned_id.is_empty() {
        Auth::ManagedIdentity {
            client_id: user_assigned_id.to_string(),
        }
    } else {
        Auth::Default
    })
}

/// `Key=Value;Key=Value`; values may contain `=` (base64). Errors never quote the string.
fn parse_connection_string(text: &str) -> Result<Connection, String> {
    let mut c = Connection::default();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            "storage_connection_string: expected Key=Value pairs separated by ';'".to_string()
        })?;
        let value = value.trim().to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "accountname" => c.account = value,
            "accountkey" => c.account_key = Secret(value),
            "sharedaccesssignature" => c.shared_access_signature = Secret(value),
            "blobendpoint" => c.blob_endpoint = value,
            "endpointsuffix" => c.endpoint_suffix = value,
            "defaultendpointsprotocol" => c.protocol = value,
            "usedevelopmentstorage" => c.development_storage = value.eq_ignore_ascii_case("true"),
            // Other services' endpoints do not concern blob storage.
            "queueendpoint" | "tableendpoint" | "fileendpoint" => {}
            other => {
                return Err(format!(
                    "storage_connection_string: unsupported key {other:?}"
                ))
            }
        }
    }
    if c.development_storage {
        return Ok(c);
    }
    if c.account_key.is_empty() && c.shared_access_signature.is_empty() {
        return Err("storage_connection_string: needs AccountKey or SharedAccessSignature".into());
    }
    if c.account.is_empty() && c.blob_endpoint.is_empty() {
        return Err("storage_connection_string: needs AccountName or BlobEndpoint".into());
    }
    Ok(c)
}

/// Builds the client.
pub(super) fn open(cfg: &Config, env: &dyn Env) -> Result<Opened, OpenError> {
    let (account_url, account) = account_url(cfg);
    let allow_http = account_url.starts_with("http://");
    let mut options = cfg
        .http
        .client_options(allow_http)
        .map_err(OpenError::Invalid)?;
    if cfg.try_timeout.0 > 0 {
        options = options.with_timeout(cfg.try_timeout.get());
    }
    let mut retry = RetryConfig::default();
    if let Some(n) = cfg.max_retries {
        retry.max_retries = n;
    }
    if cfg.retry_delay.0 > 0 {
        retry.backoff.init_backoff = cfg.retry_delay.get();
    }
    if cfg.max_retry_delay.0 > 0 {
        retry.backoff.max_backoff = cfg.max_retry_delay.get();
    }
    let mut builder = MicrosoftAzureBuilder::new()
        .with_container_name(&cfg.container)
        .with_client_options(options)
        .with_retry(retry);
    builder = match &cfg.auth {
        Auth::ConnectionString(c) if c.development_storage => builder.with_use_emulator(true),
        _ => builder.with_account(account).with_endpoint(account_url),
    };
    builder = match &cfg.auth {
        Auth::SharedKey(key) => builder.with_access_key(key.expose()),
        Auth::ConnectionString(c) if c.development_storage => builder,
        Auth::ConnectionString(c) if !c.account_key.is_empty() => {
            builder.with_access_key(c.account_key.expose())
        }
        Auth::ConnectionString(c) => {
            builder.with_config(AzureConfigKey::SasKey, c.shared_access_signature.expose())
        }
        Auth::ServicePrincipal {
            tenant_id,
            client_id,
            client_secret,
        } => builder.with_client_secret_authorization(client_id, client_secret.expose(), tenant_id),
        Auth::ManagedIdentity { client_id } => builder.with_client_id(client_id),
        Auth::Default => with_default_credentials(builder, env),
    };
    let store = builder.build()?;
    Ok(Opened {
        store: Unwrapped::Azure(store, cfg.http.max_requests()),
        conditional_update: true,
        part_size_bytes: Some(super::s3::DEFAULT_PART_SIZE),
    })
}

/// The account URL and account name (a connection string may name both).
fn account_url(cfg: &Config) -> (String, String) {
    if let Auth::ConnectionString(c) = &cfg.auth {
        let account = if c.account.is_empty() {
            cfg.account.clone()
        } else {
            c.account.clone()
        };
        if !c.blob_endpoint.is_empty() {
            return (c.blob_endpoint.trim_end_matches('/').to_string(), account);
        }
        let protocol = if c.protocol.is_empty() {
            "https"
        } else {
            &c.protocol
        };
        let suffix = if c.endpoint_suffix.is_empty() {
            "core.windows.net"
        } else {
            &c.endpoint_suffix
        };
        return (format!("{protocol}://{account}.blob.{suffix}"), account);
    }
    (
        format!("https://{}.{}", cfg.account, cfg.endpoint),
        cfg.account.clone(),
    )
}

/// Azure's `DefaultAzureCredential` inputs from the environment.
fn with_default_credentials(
    mut builder: MicrosoftAzureBuilder,
    env: &dyn Env,
) -> MicrosoftAzureBuilder {
    let keys = [
        ("AZURE_CLIENT_ID", AzureConfigKey::ClientId),
        ("AZURE_TENANT_ID", AzureConfigKey::AuthorityId),
        ("AZURE_CLIENT_SECRET", AzureConfigKey::ClientSecret),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            AzureConfigKey::FederatedTokenFile,
        ),
        ("AZURE_AUTHORITY_HOST", AzureConfigKey::AuthorityHost),
    ];
    for (variable, key) in keys {
        if let Some(value) = env.first(&[variable]) {
            builder = builder.with_config(key, value);
        }
    }
    builder
}

/// One line for the log, without secrets.
pub(crate) fn describe(cfg: &Config) -> String {
    let (url, account) = account_url(cfg);
    let credentials = match &cfg.auth {
        Auth::SharedKey(_) => "shared-key",
        Auth::ConnectionString(c) if c.development_storage => "development-storage",
        Auth::ConnectionString(c) if !c.account_key.is_empty() => "connection-string(shared-key)",
        Auth::ConnectionString(_) => "connection-string(sas)",
        Auth::ServicePrincipal { .. } => "service-principal",
        Auth::ManagedIdentity { .. } => "managed-identity",
        Auth::Default => "default-chain",
    };
    format!(
        "AZURE account={account} container={} endpoint={url} credentials={credentials}",
        cfg.container
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_parts() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.chinacloudapi.cn",
        )
        .expect("valid");
        assert_eq!(c.account, "acct");
        assert_eq!(c.account_key.expose(), "a2V5==");
        assert_eq!(c.endpoint_suffix, "core.chinacloudapi.cn");
        let err = parse_connection_string("AccountName=acct;Bogus=1").expect_err("unknown key");
        assert!(err.contains("bogus"), "{err}");
        assert!(parse_connection_string("AccountName=acct").is_err());
    }

    #[test]
    fn retries_follow_thanos_max_retries_folding() {
        let yaml = "type: AZURE\nconfig:\n  storage_account: a\n  container: c\n  max_retries: 4\n";
        let cfg = parse(yaml).expect("valid");
        // max_tries = 4 -> 3 retries; max_retry_requests = 4 -> 4: the larger wins.
        assert_eq!(cfg.max_retries, Some(4));
        let none =
            parse("type: AZURE\nconfig:\n  storage_account: a\n  container: c\n").expect("valid");
        assert_eq!(none.max_retries, None);
    }
}

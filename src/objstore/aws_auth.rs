//! AWS credentials and keys for `type: S3` that the configuration does not spell out:
//! minio-go's fall-back chain when there is no `access_key` (environment, shared credentials
//! file, IAM), which `aws_sdk_auth: true` also uses, and the SSE-C key file.

use std::collections::BTreeMap;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use super::yaml::Secret;
use super::Env;

/// SSE-C keys are AES-256 keys.
const SSE_C_KEY_BYTES: usize = 32;

/// minio-go's chain: `AWS_ACCESS_KEY_ID`/`AWS_ACCESS_KEY` + `AWS_SECRET_ACCESS_KEY`/
/// `AWS_SECRET_KEY` (+ `AWS_SESSION_TOKEN`), then the shared credentials file, then IAM (web
/// identity, container credentials, EC2 instance metadata), for which `sts_endpoint` applies.
pub(super) fn default_chain(
    mut builder: AmazonS3Builder,
    sts_endpoint: &str,
    env: &dyn Env,
) -> Result<AmazonS3Builder, String> {
    let access_key = env.first(&["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]);
    let secret_key = env.first(&["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"]);
    if let (Some(access_key), Some(secret_key)) = (access_key, secret_key) {
        builder = builder
            .with_access_key_id(access_key)
            .with_secret_access_key(secret_key);
        if let Some(token) = env.first(&["AWS_SESSION_TOKEN"]) {
            builder = builder.with_token(token);
        }
        return Ok(builder);
    }
    if let Some(file) = shared_credentials(env)? {
        builder = builder
            .with_access_key_id(file.access_key)
            .with_secret_access_key(file.secret_key.expose());
        if !file.session_token.is_empty() {
            builder = builder.with_token(file.session_token.expose());
        }
        return Ok(builder);
    }
    // IAM: object_store picks web identity, then container credentials, then EC2 metadata.
    let iam_keys = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "aws_web_identity_token_file"),
        ("AWS_ROLE_ARN", "aws_role_arn"),
        ("AWS_ROLE_SESSION_NAME", "aws_role_session_name"),
        ("AWS_ENDPOINT_URL_STS", "aws_sts_endpoint"),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "aws_container_credentials_relative_uri",
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "aws_container_credentials_full_uri",
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "aws_container_authorization_token_file",
        ),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "aws_metadata_endpoint"),
    ];
    for (variable, key) in iam_keys {
        if let Some(value) = env.first(&[variable]) {
            let key: AmazonS3ConfigKey = key
                .parse()
                .map_err(|e| format!("internal: object_store key {key}: {e}"))?;
            builder = builder.with_config(key, value);
        }
    }
    if !sts_endpoint.is_empty() {
        builder = builder.with_config(AmazonS3ConfigKey::StsEndpoint, sts_endpoint);
    }
    Ok(builder)
}

/// Credentials from the AWS shared credentials file.
struct FileCredentials {
    access_key: String,
    secret_key: Secret,
    session_token: Secret,
}

/// minio-go's `FileAWSCredentials`: `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`,
/// section `AWS_PROFILE` or `default`. A missing file is not an error.
fn shared_credentials(env: &dyn Env) -> Result<Option<FileCredentials>, String> {
    let path = match env.first(&["AWS_SHARED_CREDENTIALS_FILE"]) {
        Some(p) => p,
        None => match env.first(&["HOME"]) {
            Some(home) => format!("{home}/.aws/credentials"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading AWS shared credentials file {path}: {e}")),
    };
    let profile = env
        .first(&["AWS_PROFILE"])
        .unwrap_or_else(|| "default".into());
    Ok(parse_shared_credentials(&text, &profile))
}

/// The `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token` of one INI
/// section; `None` unless both keys are present.
fn parse_shared_credentials(text: &str, profile: &str) -> Option<FileCredentials> {
    let mut in_section = false;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == profile;
            continue;
        }
        if let (true, Some((key, value))) = (in_section, line.split_once('=')) {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let access_key = values
        .remove("aws_access_key_id")
        .filter(|v| !v.is_empty())?;
    let secret_key = values
        .remove("aws_secret_access_key")
        .filter(|v| !v.is_empty())?;
    Some(FileCredentials {
        access_key,
        secret_key: Secret(secret_key),
        session_token: Secret(values.remove("aws_session_token").unwrap_or_default()),
    })
}

/// The SSE-C key file (raw 32 bytes, as minio-go's `encrypt.NewSSEC` wants), base64-encoded
/// for `object_store`.
pub(super) fn ssec_key_base64(key_file: &str) -> Result<String, String> {
    let key = std::fs::read(key_file)
        .map_err(|e| format!("sse_config.encryption_key {key_file}: {e}"))?;
    if key.len() != SSE_C_KEY_BYTES {
        return Err(format!(
            "sse_config.encryption_key {key_file}: the key must be {SSE_C_KEY_BYTES} bytes, \
             the file has {}",
            key.len()
        ));
    }
    Ok(base64(&key))
}

/// Standard base64 with padding (for the SSE-C key header).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn shared_credentials_file_profiles() {
        let text = "[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n\n\
                    [other]\naws_access_key_id=AK2\naws_secret_access_key=SK2\n\
                    aws_session_token=T2\n";
        let d = parse_shared_credentials(text, "default").expect("default");
        assert_eq!((d.access_key.as_str(), d.secret_key.expose()), ("AK", "SK"));
        assert!(d.session_token.is_empty());
        let o = parse_shared_credentials(text, "other").expect("other");
        assert_eq!(o.session_token.expose(), "T2");
        assert!(parse_shared_credentials(text, "missing").is_none());
    }
}

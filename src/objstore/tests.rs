//! Parsing, validation, redaction and opening without a network.

use std::collections::BTreeMap;

use super::*;

fn err(yaml_text: &str) -> String {
    parse_config(yaml_text, "/etc/bucket.yml")
        .expect_err("must be rejected")
        .to_string()
}

fn ok(yaml_text: &str) -> BucketConfig {
    parse_config(yaml_text, "/etc/bucket.yml").expect("must parse")
}

struct MapEnv(BTreeMap<&'static str, &'static str>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.to_string())
    }
}

const S3_FULL: &str = r#"
type: s3
config:
  bucket: thanos
  endpoint: minio.example.com:9000
  region: eu-west-1
  access_key: AKIAEXAMPLE
  secret_key: TOPSECRET-S3
  session_token: TOPSECRET-TOKEN
  insecure: true
  bucket_lookup_type: path
  send_content_md5: false
  part_size: 134217728
  list_objects_version: v2
  max_retries: 3
  sse_config:
    type: SSE-S3
  http_config:
    idle_conn_timeout: 1m30s
    response_header_timeout: 2m
    insecure_skip_verify: false
    tls_handshake_timeout: 10s
    expect_continue_timeout: 1s
    max_idle_conns: 100
    max_idle_conns_per_host: 100
    max_conns_per_host: 16
    disable_compression: false
prefix: /tenant-a/
"#;

#[test]
fn parses_each_type() {
    let fs = ok("type: FILESYSTEM\nconfig:\n  directory: /data/bucket\n");
    assert_eq!(fs.kind, BucketKind::Filesystem);
    assert_eq!(fs.name(), "/data/bucket");

    let s3 = ok(S3_FULL);
    assert_eq!(s3.kind, BucketKind::S3);
    assert_eq!(s3.prefix, "tenant-a");
    assert_eq!(s3.name(), "thanos/tenant-a");

    let gcs = ok("type: gcs\nconfig:\n  bucket: blocks\n  service_account: |-\n    {\"type\": \"service_account\", \"private_key\": \"TOPSECRET-GCS\"}\n");
    assert_eq!(gcs.kind, BucketKind::Gcs);
    assert_eq!(gcs.name(), "blocks");

    let azure = ok("type: Azure\nconfig:\n  storage_account: acct\n  storage_account_key: VE9QU0VDUkVULUFa\n  container: blocks\n");
    assert_eq!(azure.kind, BucketKind::Azure);
    assert_eq!(azure.name(), "blocks");
}

#[test]
fn prefix_is_trimmed_and_validated() {
    let c = ok("type: FILESYSTEM\nconfig: {directory: /d}\nprefix: /a/b/\n");
    assert_eq!(c.prefix, "a/b");
    assert_eq!(c.name(), "/d/a/b");
    let none = ok("type: FILESYSTEM\nconfig: {directory: /d}\nprefix: \"\"\n");
    assert_eq!(none.prefix, "");
    let e = err("type: FILESYSTEM\nconfig: {directory: /d}\nprefix: a/../b\n");
    assert!(e.contains("prefix"), "{e}");
}

#[test]
fn bad_and_unsupported_types() {
    let e = err("type: FTP\nconfig: {}\n");
    assert!(
        e.starts_with("objstore config /etc/bucket.yml: bucket config:"),
        "{e}"
    );
    assert!(e.contains("\"FTP\" is not supported"), "{e}");
    let e = err("type: SWIFT\nconfig: {}\n");
    assert!(e.contains("supported by Thanos but not by compactd"), "{e}");
    let e = err("config: {bucket: b}\n");
    assert!(e.contains("missing field \"type\""), "{e}");
    let e = err("   \n");
    assert!(e.contains("empty"), "{e}");
    let e = err("type: [S3]\n");
    assert!(e.contains("type"), "{e}");
}

#[test]
fn unknown_fields_are_named() {
    let e = err("type: S3\nconfig:\n  bucket: b\n  endpoint: h\n  buckt: x\n");
    assert!(
        e.starts_with("objstore config /etc/bucket.yml: S3: "),
        "{e}"
    );
    assert!(e.contains("unknown field `buckt`"), "{e}");
    let e = err("type: S3\nconfig: {bucket: b, endpoint: h}\nprefx: p\n");
    assert!(e.contains("unknown field `prefx`"), "{e}");
    let e = err(
        "type: S3\nconfig:\n  bucket: b\n  endpoint: h\n  http_config:\n    idle_timeout: 1s\n",
    );
    assert!(e.contains("idle_timeout"), "{e}");
    let e = err("type: FILESYSTEM\nconfig:\n  directory: /d\n  bucket: b\n");
    assert!(e.contains("unknown field `bucket`"), "{e}");
}

#[test]
fn missing_fields_are_named() {
    assert_eq!(
        err("type: S3\nconfig:\n  endpoint: h\n"),
        "objstore config /etc/bucket.yml: S3: missing field \"bucket\""
    );
    assert!(err("type: S3\nconfig:\n  bucket: b\n").contains("missing field \"endpoint\""));
    assert!(err("type: S3\n").contains("missing field \"bucket\""));
    assert!(err("type: FILESYSTEM\nconfig:\n").contains("missing field \"directory\""));
    assert!(err("type: GCS\nconfig: {}\n").contains("missing field \"bucket\""));
    assert!(
        err("type: AZURE\nconfig: {container: c}\n").contains("missing field \"storage_account\"")
    );
    assert!(
        err("type: AZURE\nconfig: {storage_account: a}\n").contains("missing field \"container\"")
    );
}

#[test]
fn wrong_types_name_field_and_line() {
    let e = err("type: S3\nconfig:\n  bucket: b\n  endpoint: h\n  insecure: sometimes\n");
    assert!(e.contains("config.insecure"), "{e}");
    assert!(e.contains("line 5"), "{e}");
    let e = err("type: S3\nconfig:\n  bucket: b\n  endpoint: h\n  http_config:\n    idle_conn_timeout: soon\n");
    assert!(e.contains("config.http_config.idle_conn_timeout"), "{e}");
    let e = err("type: S3\nconfig:\n  bucket: [a, b]\n  endpoint: h\n");
    assert!(e.contains("config.bucket"), "{e}");
}

#[test]
fn go_yaml_leniency() {
    // A number reads into a text field, null sections and flags read as zero values.
    let c = ok("type: S3\nconfig:\n  bucket: 2024\n  endpoint: h\n  http_config:\n  insecure:\n");
    assert_eq!(c.name(), "2024");
}

#[test]
fn fields_we_cannot_honour_are_rejected() {
    let base = "type: S3\nconfig:\n  bucket: b\n  endpoint: h\n";
    for (extra, needle) in [
        ("  signature_version2: true\n", "signature_version2"),
        ("  list_objects_version: v1\n", "list_objects_version"),
        ("  list_objects_version: v3\n", "list_objects_version"),
        ("  trace: {enable: true}\n", "trace.enable"),
        (
            "  put_user_metadata: {X-Amz-Storage-Class: STANDARD_IA}\n",
            "put_user_metadata",
        ),
        ("  sse_config: {type: SSE-KMS}\n", "kms_key_id"),
        (
            "  sse_config: {type: SSE-KMS, kms_key_id: k, kms_encryption_context: {a: b}}\n",
            "kms_encryption_context",
        ),
        ("  sse_config: {type: SSE-X}\n", "sse_config.type"),
        ("  sse_config: {type: SSE-C}\n", "encryption_key"),
        ("  bucket_lookup_type: dns\n", "bucket_lookup_type"),
        (
            "  http_config: {tls_config: {cert_file: c.pem, key_file: k.pem}}\n",
            "cert_file",
        ),
        (
            "  http_config: {tls_config: {server_name: s}}\n",
            "server_name",
        ),
        ("  access_key: a\n", "secret_key"),
        ("  secret_key: s\n", "access_key"),
        (
            "  aws_sdk_auth: true\n  access_key: a\n  secret_key: s\n",
            "mutually exclusive",
        ),
    ] {
        let e = err(&format!("{base}{extra}"));
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    let e = err("type: S3\nconfig: {bucket: b, endpoint: \"http://h:9000\"}\n");
    assert!(e.contains("scheme"), "{e}");
    let e = err("type: GCS\nconfig: {bucket: b, use_grpc: true}\n");
    assert!(e.contains("use_grpc"), "{e}");
    let e = err("type: AZURE\nconfig: {storage_account: a, container: c, client_id: x}\n");
    assert!(e.contains("must be set together"), "{e}");
    let e = err("type: AZURE\nconfig: {storage_account: a, container: c, storage_account_key: k, storage_connection_string: \"AccountKey=k\"}\n");
    assert!(e.contains("cannot both be set"), "{e}");
}

#[test]
fn secrets_never_printed() {
    let secrets = [
        "TOPSECRET-S3",
        "TOPSECRET-TOKEN",
        "TOPSECRET-GCS",
        "VE9QU0VDUkVULUFa",
        "TOPSECRET-CS",
    ];
    let configs = [
        ok(S3_FULL),
        ok("type: GCS\nconfig:\n  bucket: b\n  service_account: '{\"private_key\": \"TOPSECRET-GCS\"}'\n"),
        ok("type: AZURE\nconfig:\n  storage_account: a\n  storage_account_key: VE9QU0VDUkVULUFa\n  container: c\n"),
        ok("type: AZURE\nconfig:\n  storage_account: a\n  container: c\n  storage_connection_string: \"AccountName=a;AccountKey=TOPSECRET-CS\"\n"),
        ok("type: AZURE\nconfig:\n  storage_account: a\n  container: c\n  az_tenant_id: t\n  client_id: i\n  client_secret: TOPSECRET-S3\n"),
    ];
    for cfg in &configs {
        let printed = format!("{}\n{cfg:?}\n{cfg:#?}", describe(cfg));
        for secret in secrets {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
    }
    assert_eq!(
        describe(&configs[0]),
        "S3 bucket=thanos endpoint=http://minio.example.com:9000 style=path region=eu-west-1 \
         credentials=static sse=SSE-S3 prefix=tenant-a"
    );
    assert!(describe(&configs[2]).contains("endpoint=https://a.blob.core.windows.net"));
}

#[test]
fn expand_env_substitutes_kubernetes_style() {
    let lookup = |name: &str| (name == "KEY").then(|| "v@lue".to_string());
    assert_eq!(
        expand_env("secret_key: $(KEY) # $HOME ${KEY} $(", lookup),
        Ok("secret_key: v@lue # $HOME ${KEY} $(".to_string())
    );
    let e = expand_env("a: $(MISSING)", lookup).expect_err("unset");
    assert!(e.contains("MISSING"), "{e}");
}

#[test]
fn load_checks_the_flag_pair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bucket.yml");
    std::fs::write(&file, "type: FILESYSTEM\nconfig: {directory: /d}\n").expect("write");
    let from_file = load(Some(&file), None).expect("file");
    assert_eq!(from_file.origin, file.display().to_string());
    let inline = load(None, Some("type: FILESYSTEM\nconfig: {directory: /d}")).expect("inline");
    assert_eq!(inline.origin, INLINE_ORIGIN);
    assert!(load(Some(&file), Some("x")).is_err());
    assert!(load(None, None).is_err());
    let e = load(Some(&dir.path().join("missing.yml")), None).expect_err("missing file");
    assert!(e.to_string().contains("missing.yml"), "{e}");
    let e = load(None, Some("type: S3\nconfig: {bucket: b}")).expect_err("no endpoint");
    assert!(
        e.to_string()
            .contains("objstore config --objstore.config: S3: "),
        "{e}"
    );
}

#[test]
fn open_filesystem_creates_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("a/b");
    let cfg = ok(&format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        root.display()
    ));
    let bucket = open(&cfg).expect("open");
    assert!(root.is_dir());
    assert!(!bucket.conditional_update);
    assert_eq!(bucket.kind, BucketKind::Filesystem);
}

#[test]
fn open_cloud_providers_without_network() {
    let env = MapEnv(BTreeMap::from([
        ("AWS_ACCESS_KEY_ID", "env-key"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
    ]));
    let s3 = open_with_env(&ok(S3_FULL), &env).expect("s3");
    assert!(s3.conditional_update);
    assert_eq!(s3.part_size_bytes, Some(128 << 20));
    assert_eq!(s3.name, "thanos/tenant-a");
    let from_env = ok("type: S3\nconfig: {bucket: b, endpoint: \"127.0.0.1:1\", insecure: true}\n");
    assert!(open_with_env(&from_env, &env).is_ok());
    let azure = ok("type: AZURE\nconfig:\n  storage_account: acct\n  storage_account_key: a2V5\n  container: c\n");
    assert!(
        open_with_env(&azure, &env)
            .expect("azure")
            .conditional_update
    );
    let debug = format!("{s3:?}");
    assert!(!debug.contains("TOPSECRET"), "{debug}");
}

#[test]
fn late_file_errors_name_the_field() {
    let cfg = ok("type: S3\nconfig:\n  bucket: b\n  endpoint: h\n  sse_config: {type: SSE-C, encryption_key: /nonexistent/key}\n");
    let e = open(&cfg).expect_err("missing key file").to_string();
    assert!(e.contains("sse_config.encryption_key"), "{e}");
    let cfg = ok("type: S3\nconfig:\n  bucket: b\n  endpoint: h\n  http_config: {tls_config: {ca_file: /nonexistent/ca.pem}}\n");
    let e = open(&cfg).expect_err("missing CA").to_string();
    assert!(e.contains("ca_file"), "{e}");
}

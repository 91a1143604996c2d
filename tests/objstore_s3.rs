//! The object storage adapter against a real S3 server (SeaweedFS `weed mini`) and against a
//! local directory: the operations and conditional-write semantics compactd's fence and
//! commit protocol rely on.
//!
//! One SeaweedFS serves all S3 scenarios (they run in sequence, each under its own key
//! prefix): starting and stopping weed takes seconds and hundreds of MB.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion, WriteMultipart,
};

use common::seaweed::Seaweed;
use compactd::objstore::{self, Bucket, BucketKind};

/// Concurrent writers racing for one key.
const RACERS: usize = 8;
/// Rounds of each race.
const RACE_ROUNDS: usize = 3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn open_yaml(yaml: &str) -> Bucket {
    let cfg = objstore::parse_config(yaml, "test").expect("valid objstore config");
    objstore::open(&cfg).expect("open bucket")
}

fn payload(text: &str) -> PutPayload {
    PutPayload::from(Bytes::from(text.to_string()))
}

async fn read(store: &dyn ObjectStore, path: &Path) -> Bytes {
    store
        .get(path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body")
}

#[test]
fn seaweedfs_s3() {
    let Some(server) = Seaweed::start() else {
        return;
    };
    let bucket = open_yaml(&server.objstore_yaml());
    assert_eq!(bucket.kind, BucketKind::S3);
    assert!(bucket.conditional_update);
    assert_eq!(bucket.name, server.bucket);
    let store = bucket.store.as_ref();
    runtime().block_on(async {
        basic_operations(store).await;
        create_is_exclusive(store).await;
        update_is_compare_and_swap(store).await;
        concurrent_creators_one_winner(&bucket.store).await;
        concurrent_updaters_one_winner(&bucket.store).await;
        multipart_upload(store).await;
        delimiter_listing(store).await;
        prefix_is_applied(&server, store).await;
    });
    let wrong = open_yaml(
        &server
            .objstore_yaml()
            .replace(&server.secret_key, "wrong-secret"),
    );
    let denied = runtime().block_on(wrong.store.put(&Path::from("x"), payload("x")));
    assert!(denied.is_err(), "a wrong secret must be refused");
}

async fn basic_operations(store: &dyn ObjectStore) {
    let path = Path::from("basic/01HBLOCK/meta.json");
    let put = store.put(&path, payload("{\"v\":1}")).await.expect("put");
    assert!(put.e_tag.is_some(), "S3 returns an ETag");
    assert_eq!(read(store, &path).await, Bytes::from_static(b"{\"v\":1}"));
    let head = store.head(&path).await.expect("head");
    assert_eq!(head.size, 7);
    assert_eq!(head.e_tag, put.e_tag);
    let listed: Vec<_> = store
        .list(Some(&Path::from("basic")))
        .try_collect()
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].location, path);
    store.delete(&path).await.expect("delete");
    let gone = store.get(&path).await.expect_err("deleted");
    assert!(
        matches!(gone, object_store::Error::NotFound { .. }),
        "{gone}"
    );
}

async fn create_is_exclusive(store: &dyn ObjectStore) {
    let path = Path::from("create/fence.json");
    store
        .put_opts(&path, payload("first"), PutMode::Create.into())
        .await
        .expect("first create");
    let second = store
        .put_opts(&path, payload("second"), PutMode::Create.into())
        .await
        .expect_err("second create must fail");
    assert!(
        matches!(second, object_store::Error::AlreadyExists { .. }),
        "want AlreadyExists, got {second}"
    );
    assert_eq!(read(store, &path).await, Bytes::from_static(b"first"));
}

async fn update_is_compare_and_swap(store: &dyn ObjectStore) {
    let path = Path::from("cas/fence.json");
    let v1 = store
        .put_opts(&path, payload("epoch 1"), PutMode::Create.into())
        .await
        .expect("create");
    let v2 = store
        .put_opts(
            &path,
            payload("epoch 2"),
            PutMode::Update(v1.clone().into()).into(),
        )
        .await
        .expect("update with the current e_tag");
    assert_ne!(v1.e_tag, v2.e_tag);
    let stale = store
        .put_opts(
            &path,
            payload("epoch 1 again"),
            PutMode::Update(v1.into()).into(),
        )
        .await
        .expect_err("stale e_tag must fail");
    assert!(
        matches!(stale, object_store::Error::Precondition { .. }),
        "want Precondition, got {stale}"
    );
    assert_eq!(read(store, &path).await, Bytes::from_static(b"epoch 2"));
    store
        .put_opts(&path, payload("epoch 3"), PutMode::Update(v2.into()).into())
        .await
        .expect("update with the e_tag just written");
    assert_eq!(read(store, &path).await, Bytes::from_static(b"epoch 3"));
}

async fn concurrent_creators_one_winner(store: &Arc<dyn ObjectStore>) {
    for round in 0..RACE_ROUNDS {
        let path = Path::from(format!("race-create/{round}/fence.json"));
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let (store, path) = (Arc::clone(store), path.clone());
                tokio::spawn(async move {
                    let body = payload(&format!("racer {racer}"));
                    (
                        racer,
                        store.put_opts(&path, body, PutMode::Create.into()).await,
                    )
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (racer, result) = task.await.expect("racer task");
            match result {
                Ok(_) => winners.push(racer),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => panic!("racer {racer}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let body = read(store.as_ref(), &path).await;
        assert_eq!(body, Bytes::from(format!("racer {}", winners[0])));
    }
}

async fn concurrent_updaters_one_winner(store: &Arc<dyn ObjectStore>) {
    for round in 0..RACE_ROUNDS {
        let path = Path::from(format!("race-cas/{round}/fence.json"));
        let base = store
            .put_opts(&path, payload("base"), PutMode::Create.into())
            .await
            .expect("create base");
        let version = UpdateVersion::from(base);
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let (store, path, version) = (Arc::clone(store), path.clone(), version.clone());
                tokio::spawn(async move {
                    let body = payload(&format!("racer {racer}"));
                    let mode = PutMode::Update(version);
                    (racer, store.put_opts(&path, body, mode.into()).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (racer, result) = task.await.expect("racer task");
            match result {
                Ok(_) => winners.push(racer),
                Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => panic!("racer {racer}: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let body = read(store.as_ref(), &path).await;
        assert_eq!(body, Bytes::from(format!("racer {}", winners[0])));
    }
}

async fn multipart_upload(store: &dyn ObjectStore) {
    const SIZE: usize = 12 << 20;
    const PART: usize = 5 << 20;
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = Path::from("multipart/01HBLOCK/chunks/000001");
    let upload = store.put_multipart(&path).await.expect("start multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    for piece in data.chunks(1 << 20) {
        writer.write(piece);
    }
    writer.finish().await.expect("complete multipart");
    assert_eq!(store.head(&path).await.expect("head").size, SIZE as u64);
    assert!(read(store, &path).await == data, "multipart body differs");
    let range = store
        .get_range(&path, 6_000_000..6_000_100)
        .await
        .expect("range");
    assert_eq!(range.as_ref(), &data[6_000_000..6_000_100]);
}

async fn delimiter_listing(store: &dyn ObjectStore) {
    let blocks = ["01HAAAAAAAAAAAAAAAAAAAAAAA", "01HBBBBBBBBBBBBBBBBBBBBBBB"];
    for block in blocks {
        for file in ["meta.json", "index", "chunks/000001"] {
            let path = Path::from(format!("listing/{block}/{file}"));
            store
                .put(&path, payload(file))
                .await
                .expect("put block file");
        }
    }
    store
        .put(&Path::from("listing/compactd/fence.json"), payload("{}"))
        .await
        .expect("put fence");
    let top = store
        .list_with_delimiter(Some(&Path::from("listing")))
        .await
        .expect("list top");
    let prefixes: BTreeSet<String> = top.common_prefixes.iter().map(|p| p.to_string()).collect();
    let want: BTreeSet<String> = [
        "listing/01HAAAAAAAAAAAAAAAAAAAAAAA",
        "listing/01HBBBBBBBBBBBBBBBBBBBBBBB",
        "listing/compactd",
    ]
    .map(String::from)
    .into();
    assert_eq!(prefixes, want);
    assert!(top.objects.is_empty(), "{:?}", top.objects);
    let block = store
        .list_with_delimiter(Some(&Path::from(format!("listing/{}", blocks[0]))))
        .await
        .expect("list block");
    let objects: BTreeSet<String> = block
        .objects
        .iter()
        .map(|o| o.location.to_string())
        .collect();
    let want: BTreeSet<String> = [
        format!("listing/{}/index", blocks[0]),
        format!("listing/{}/meta.json", blocks[0]),
    ]
    .into();
    assert_eq!(objects, want);
    assert_eq!(
        block.common_prefixes,
        vec![Path::from(format!("listing/{}/chunks", blocks[0]))]
    );
}

async fn prefix_is_applied(server: &Seaweed, root: &dyn ObjectStore) {
    let prefixed = open_yaml(&server.objstore_yaml_with_prefix("/tenant-a/"));
    assert_eq!(prefixed.name, format!("{}/tenant-a", server.bucket));
    prefixed
        .store
        .put(&Path::from("01HBLOCK/meta.json"), payload("t"))
        .await
        .expect("put through prefix");
    assert_eq!(
        read(root, &Path::from("tenant-a/01HBLOCK/meta.json")).await,
        Bytes::from_static(b"t")
    );
    let listed = prefixed
        .store
        .list_with_delimiter(None)
        .await
        .expect("list");
    assert_eq!(listed.common_prefixes, vec![Path::from("01HBLOCK")]);
}

#[test]
fn filesystem_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bucket");
    let bucket = open_yaml(&format!(
        "type: FILESYSTEM\nconfig:\n  directory: {}\n",
        root.display()
    ));
    assert_eq!(bucket.kind, BucketKind::Filesystem);
    assert!(
        !bucket.conditional_update,
        "LocalFileSystem has no compare-and-swap"
    );
    let store = bucket.store.as_ref();
    runtime().block_on(async {
        basic_operations(store).await;
        create_is_exclusive(store).await;
        let path = Path::from("cas/fence.json");
        let v1 = store
            .put_opts(&path, payload("epoch 1"), PutMode::Create.into())
            .await
            .expect("create");
        let update = store
            .put_opts(&path, payload("epoch 2"), PutMode::Update(v1.into()).into())
            .await
            .expect_err("no Update on a filesystem");
        assert!(
            matches!(update, object_store::Error::NotImplemented { .. }),
            "want NotImplemented, got {update}"
        );
        multipart_upload(store).await;
        delimiter_listing(store).await;
        // Deleting a block's last object leaves no empty directory behind to list.
        for file in ["meta.json", "index", "chunks/000001"] {
            let path = Path::from(format!("listing/01HAAAAAAAAAAAAAAAAAAAAAAA/{file}"));
            store.delete(&path).await.expect("delete block file");
        }
        let top = store
            .list_with_delimiter(Some(&Path::from("listing")))
            .await
            .expect("list");
        let prefixes: Vec<String> = top.common_prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(prefixes.len(), 2, "{prefixes:?}");
        assert!(
            !prefixes.iter().any(|p| p.contains("01HAAAA")),
            "{prefixes:?}"
        );
    });
}

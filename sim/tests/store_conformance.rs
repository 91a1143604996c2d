//! The store model (`compactd_sim::store`) against `object_store`'s `InMemory` and a real S3
//! server (SeaweedFS `weed mini`). The same scenarios run on each backend, on a fresh store
//! per scenario: at the level of objects (conditional puts, delete, list) and at the level of
//! the core's store operations, where the model's `read` and `write` meet the production
//! `StoreExecutor`. A scenario asserts the semantics compactd relies on and writes a
//! transcript of outcomes (never ETag strings or timestamps); a backend conforms when its
//! transcripts equal the model's.
//!
//! Known differences are asserted, not hidden. `InMemory` gives every write a new ETag, while
//! S3 (MD5) and the model derive it from the content, so on them a conditional update
//! carrying the ETag of an earlier identical content succeeds (`same_bytes_keep_the_e_tag`,
//! skipped in InMemory's comparison). SeaweedFS lists in directory-walk order, AWS, InMemory
//! and the model in byte order; they differ only across names like `b-1` and `b/1`, which
//! compactd never writes (`list_by_prefix_sorted` checks each order and compares the sets).
//!
//! Under CI=true a missing SeaweedFS fails the test; `COMPACTD_WEED` names the binary.

#[allow(dead_code)] // This binary uses only part of the harness.
#[path = "../../tests/common/seaweed.rs"]
mod seaweed;

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, UpdateVersion};

use compactd::bucket::layout::{marker_path, meta_path};
use compactd::bucket::markers::{
    encode_marker, DeletionMark, NoCompactMark, DELETION_MARK_FILENAME, NO_COMPACT_MARK_FILENAME,
};
use compactd::core::fence::{fence_path, FenceRecord, FenceVersion, FENCE_PATH};
use compactd::core::stream::StreamId;
use compactd::core::types::{JobId, Millis, ReadOp, StoreResult, WriteOp};
use compactd::driver::store::{CasOutcome, StoreExecutor};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::BlockMeta;
use compactd_sim::store::{Fault, ObjectError, Origin, PutMode, StoreModel};

/// True when running in CI, where nothing may be skipped (the SeaweedFS harness asks).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The sender of the model's requests.
const ORIGIN: Origin<'static> = Origin {
    node: "conformance",
    epoch: 1,
    at_ms: 1_000,
};

/// Where scenarios run.
enum Backend {
    /// `compactd_sim::store::StoreModel`.
    Model,
    /// `object_store::memory::InMemory`.
    InMemory,
    /// A real S3 bucket; each scenario gets its own key prefix.
    S3(Arc<dyn ObjectStore>),
}

impl Backend {
    /// An empty store for `scenario`.
    fn fresh(&self, scenario: &str) -> Store {
        let real = |name, store: Arc<dyn ObjectStore>, content_e_tags, byte_order_lists| Store {
            name,
            content_e_tags,
            byte_order_lists,
            kind: Kind::Real {
                exec: StoreExecutor::new(Arc::clone(&store)),
                store,
                local: tempfile::tempdir().expect("tempdir"),
            },
        };
        match self {
            Backend::Model => Store {
                name: "model",
                content_e_tags: true,
                byte_order_lists: true,
                kind: Kind::Model(RefCell::default()),
            },
            Backend::InMemory => real("InMemory", Arc::new(InMemory::new()), false, true),
            Backend::S3(root) => {
                let prefixed = PrefixStore::new(Arc::clone(root), format!("scenario/{scenario}"));
                real("SeaweedFS", Arc::new(prefixed), true, false)
            }
        }
    }
}

/// One scenario's store.
struct Store {
    /// The backend's name, for messages.
    name: &'static str,
    /// The ETag is a function of the content (S3's MD5), not of the write.
    content_e_tags: bool,
    /// A listing is in byte order; SeaweedFS lists in directory-walk order instead.
    byte_order_lists: bool,
    kind: Kind,
}

/// The store behind a [`Store`].
enum Kind {
    /// The model (requests from [`ORIGIN`], no faults).
    Model(RefCell<StoreModel>),
    /// An `object_store` implementation.
    Real {
        store: Arc<dyn ObjectStore>,
        /// The production executor over `store`, for `read` and `write`.
        exec: StoreExecutor,
        /// Where `UploadFiles` finds the block's files.
        local: tempfile::TempDir,
    },
}

impl Store {
    /// A put; errors other than the two conditional ones fail the test.
    async fn put(&self, path: &str, bytes: &[u8], mode: PutMode) -> Result<String, ObjectError> {
        let store = match &self.kind {
            Kind::Model(m) => {
                return m
                    .borrow_mut()
                    .put(ORIGIN, path, bytes.to_vec(), mode, Fault::Pass)
            }
            Kind::Real { store, .. } => store,
        };
        let mode = match mode {
            PutMode::Overwrite => object_store::PutMode::Overwrite,
            PutMode::Create => object_store::PutMode::Create,
            PutMode::Update { e_tag } => object_store::PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag),
                version: None,
            }),
        };
        let payload = PutPayload::from(bytes.to_vec());
        match store
            .put_opts(&ObjectPath::from(path), payload, mode.into())
            .await
        {
            Ok(put) => Ok(put.e_tag.expect("the store returns an ETag")),
            Err(object_store::Error::AlreadyExists { .. }) => Err(ObjectError::AlreadyExists),
            Err(object_store::Error::Precondition { .. }) => Err(ObjectError::Precondition),
            Err(e) => panic!("{}: put {path}: {e}", self.name),
        }
    }

    /// The content and ETag at `path`.
    async fn get(&self, path: &str) -> Option<(Vec<u8>, String)> {
        let store = match &self.kind {
            Kind::Model(m) => {
                return m
                    .borrow()
                    .get(path)
                    .map(|o| (o.bytes.clone(), o.e_tag.clone()))
            }
            Kind::Real { store, .. } => store,
        };
        match store.get(&ObjectPath::from(path)).await {
            Ok(got) => {
                let e_tag = got.meta.e_tag.clone().expect("the store returns an ETag");
                let bytes = got.bytes().await.expect("body");
                Some((bytes.to_vec(), e_tag))
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("{}: get {path}: {e}", self.name),
        }
    }

    /// A delete, which must succeed.
    async fn delete(&self, path: &str) {
        let result = match &self.kind {
            Kind::Model(m) => m
                .borrow_mut()
                .delete(ORIGIN, path, Fault::Pass)
                .map_err(|e| e.to_string()),
            Kind::Real { store, .. } => store
                .delete(&ObjectPath::from(path))
                .await
                .map_err(|e| e.to_string()),
        };
        result.unwrap_or_else(|e| panic!("{}: delete {path}: {e}", self.name));
    }

    /// The paths under `prefix` (`""`: all), in the order the store lists them.
    async fn list(&self, prefix: &str) -> Vec<String> {
        let store = match &self.kind {
            Kind::Model(m) => {
                return m
                    .borrow()
                    .list(prefix)
                    .iter()
                    .map(|(p, _)| p.to_string())
                    .collect()
            }
            Kind::Real { store, .. } => store,
        };
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let listed: Vec<_> = store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{}: list: {e}", self.name));
        listed.iter().map(|o| o.location.to_string()).collect()
    }

    /// Performs a core read: the model's, or the production executor's method as
    /// `compactd::driver` calls it (without its timeouts).
    async fn read(&self, op: &ReadOp) -> StoreResult {
        let exec = match &self.kind {
            Kind::Model(m) => return m.borrow_mut().read(ORIGIN, op, |_| Fault::Pass),
            Kind::Real { exec, .. } => exec,
        };
        let result = match op {
            ReadOp::Sync => exec.sync().await.map(StoreResult::Synced),
            ReadOp::ReadFence | ReadOp::ReadStreamFence { .. } => {
                let path = op.fence_path().expect("a fence read names its object");
                exec.read_fence(&path).await.map(StoreResult::Fence)
            }
        };
        result.unwrap_or_else(StoreResult::Failed)
    }

    /// Performs a core mutation: the model's, or the production executor's method as
    /// `compactd::driver` calls it (without its timeouts).
    async fn write(&self, op: &WriteOp, files: &[(String, Vec<u8>)]) -> StoreResult {
        let (exec, local) = match &self.kind {
            Kind::Model(m) => return m.borrow_mut().write(ORIGIN, op, files, |_| Fault::Pass),
            Kind::Real { exec, local, .. } => (exec, local),
        };
        let result = match op {
            WriteOp::UploadFiles { block, .. } => {
                let dir = local.path().join(block.to_string());
                for (rel, bytes) in files {
                    let file = dir.join(rel);
                    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&file, bytes).expect("write block file");
                }
                exec.upload_files(*block, &dir)
                    .await
                    .map(|()| StoreResult::Done)
            }
            WriteOp::PutMeta { meta } => exec.put_meta(meta).await.map(|()| StoreResult::Done),
            WriteOp::AdoptMeta { meta } => exec.adopt_meta(meta).await.map(|()| StoreResult::Done),
            WriteOp::MarkDeletion(m) => exec.put_marker(m).await.map(|_| StoreResult::Done),
            WriteOp::MarkNoCompact(m) => exec.put_marker(m).await.map(|_| StoreResult::Done),
            WriteOp::MarkNoDownsample(m) => exec.put_marker(m).await.map(|_| StoreResult::Done),
            WriteOp::RemoveMarker { block, marker } => exec
                .delete_object(&compactd::bucket::layout::marker_path(*block, marker))
                .await
                .map(|()| StoreResult::Done),
            WriteOp::DeleteBlock(id) => exec.delete_block(*id).await.map(|()| StoreResult::Done),
            WriteOp::CasFence {
                stream,
                record,
                expected,
            } => exec
                .cas_fence(&fence_path(*stream), record, expected.as_ref())
                .await
                .map(|o| match o {
                    CasOutcome::Written(v) => StoreResult::FenceWritten(v),
                    CasOutcome::Conflict => StoreResult::FenceConflict,
                }),
        };
        result.unwrap_or_else(StoreResult::Failed)
    }
}

/// A scenario's record of outcomes.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    /// Notes one outcome.
    fn note(&mut self, what: &str, outcome: impl std::fmt::Debug) {
        self.0.push(format!("{what}: {outcome:?}"));
    }

    /// Notes a store operation's result without ETags and modification times.
    fn note_result(&mut self, what: &str, result: &StoreResult) {
        let blank = FenceVersion {
            e_tag: None,
            version: None,
        };
        let normalized = match result.clone() {
            StoreResult::Synced(mut s) => {
                for b in s.blocks.values_mut() {
                    b.newest_modified = Millis(0);
                }
                StoreResult::Synced(s)
            }
            StoreResult::Fence(Some((record, _))) => StoreResult::Fence(Some((record, blank))),
            StoreResult::FenceWritten(_) => StoreResult::FenceWritten(blank),
            other => other,
        };
        self.note(what, normalized);
    }
}

/// A put's outcome without the ETag.
fn outcome(r: &Result<String, ObjectError>) -> Result<(), ObjectError> {
    r.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// `If-Match: e_tag`.
fn update(e_tag: &str) -> PutMode {
    PutMode::Update {
        e_tag: e_tag.into(),
    }
}

/// `Create` twice: the second finds the object; the first content stays.
async fn create_if_absent(s: &Store, t: &mut Transcript) {
    let first = s.put("f", b"first", PutMode::Create).await;
    t.note("create", outcome(&first));
    assert!(first.is_ok(), "{}: {first:?}", s.name);
    let second = s.put("f", b"second", PutMode::Create).await;
    t.note("create again", outcome(&second));
    assert_eq!(second, Err(ObjectError::AlreadyExists), "{}", s.name);
    let (bytes, e_tag) = s.get("f").await.expect("created");
    t.note("content", String::from_utf8_lossy(&bytes));
    assert_eq!(bytes, b"first", "{}", s.name);
    t.note("e_tag is the create's", Ok(e_tag) == first);
}

/// `Update` with the current ETag succeeds, with a stale one is `Precondition`.
async fn update_compares_e_tags(s: &Store, t: &mut Transcript) {
    let v1 = s.put("f", b"v1", PutMode::Create).await.expect("create");
    let v2 = s.put("f", b"v2", update(&v1)).await;
    t.note("update with the current e_tag", outcome(&v2));
    let v2 = v2.unwrap_or_else(|e| panic!("{}: {e}", s.name));
    t.note("e_tag changed", v1 != v2);
    let stale = s.put("f", b"v3", update(&v1)).await;
    t.note("update with a stale e_tag", outcome(&stale));
    assert_eq!(stale, Err(ObjectError::Precondition), "{}", s.name);
    let got = s.get("f").await.expect("exists");
    t.note("content", String::from_utf8_lossy(&got.0));
    t.note("e_tag is the update's", got.1 == v2);
    let v3 = s.put("f", b"v3", update(&v2)).await;
    t.note("update with the e_tag just written", outcome(&v3));
    assert!(v3.is_ok(), "{}: {v3:?}", s.name);
}

/// SeaweedFS answers 412 where AWS answers 404 (which object_store turns into Precondition)
/// and InMemory answers Precondition: the model answers Precondition.
async fn update_of_missing_object(s: &Store, t: &mut Transcript) {
    let other = s.put("other", b"x", PutMode::Create).await.expect("create");
    let never = s.put("never", b"x", update(&other)).await;
    t.note("update of a never created object", outcome(&never));
    assert_eq!(never, Err(ObjectError::Precondition), "{}", s.name);
    t.note("still missing", s.get("never").await.is_none());
    let gone = s.put("gone", b"1", PutMode::Create).await.expect("create");
    s.delete("gone").await;
    let after = s.put("gone", b"2", update(&gone)).await;
    t.note("update of a deleted object", outcome(&after));
    assert_eq!(after, Err(ObjectError::Precondition), "{}", s.name);
    t.note("still deleted", s.get("gone").await.is_none());
}

/// `Overwrite` creates or replaces; new content, new ETag: the old one no longer matches.
async fn overwrite_changes_e_tag(s: &Store, t: &mut Transcript) {
    let a = s.put("f", b"a", PutMode::Overwrite).await;
    t.note("overwrite of a missing object", outcome(&a));
    let a = a.expect("overwrite creates");
    let b = s
        .put("f", b"b", PutMode::Overwrite)
        .await
        .expect("overwrite");
    t.note("e_tag changed", a != b);
    assert_ne!(a, b, "{}", s.name);
    let stale = s.put("f", b"c", update(&a)).await;
    t.note(
        "update with the e_tag before the overwrite",
        outcome(&stale),
    );
    let got = s.get("f").await.expect("exists");
    t.note("content", String::from_utf8_lossy(&got.0));
}

/// S3's ETag is the content's MD5: after A→B→A the first ETag matches again, so a stale
/// update succeeds (ABA). InMemory counts writes instead. The model follows S3.
async fn same_bytes_keep_the_e_tag(s: &Store, t: &mut Transcript) {
    let first = s.put("f", b"same", PutMode::Overwrite).await.expect("put");
    s.put("f", b"other", PutMode::Overwrite).await.expect("put");
    let again = s.put("f", b"same", PutMode::Overwrite).await.expect("put");
    t.note("same content, same e_tag", first == again);
    assert_eq!(first == again, s.content_e_tags, "{}", s.name);
    let aba = s.put("f", b"new", update(&first)).await;
    t.note(
        "update with the e_tag of the earlier identical content",
        outcome(&aba),
    );
    let want = if s.content_e_tags {
        Ok(())
    } else {
        Err(ObjectError::Precondition)
    };
    assert_eq!(outcome(&aba), want, "{}", s.name);
}

/// Deleting a missing object (never created, or deleted already) succeeds.
async fn delete_of_missing_is_ok(s: &Store, t: &mut Transcript) {
    s.delete("never").await;
    t.note("delete of a never created object", "ok");
    s.put("f", b"x", PutMode::Create).await.expect("create");
    s.delete("f").await;
    s.delete("f").await;
    t.note("delete twice", "ok");
    t.note("gone", s.get("f").await.is_none());
    let again = s.put("f", b"y", PutMode::Create).await;
    t.note("create after delete", outcome(&again));
}

/// Listings are sorted; under one prefix the same way everywhere. Across names that extend
/// a directory name with a character below `/` (`b-1` and `b/1`) SeaweedFS walks directories
/// (`b/1` first) while AWS, InMemory and the model go by bytes (`b-1` first); compactd's
/// object names never meet there, and it does not depend on the order of a listing.
async fn list_by_prefix_sorted(s: &Store, t: &mut Transcript) {
    for p in ["b/2", "a/1", "b/10", "bc/x", "b/sub/y", "b", "b-1", "b/1"] {
        s.put(p, p.as_bytes(), PutMode::Overwrite)
            .await
            .expect("put");
    }
    let all = s.list("").await;
    let mut sorted = all.clone();
    sorted.sort();
    t.note("all (sorted here)", &sorted);
    let under_b = s.list("b").await;
    t.note("under b", &under_b);
    assert_eq!(under_b, ["b/1", "b/10", "b/2", "b/sub/y"], "{}", s.name);
    t.note("under b/sub", s.list("b/sub").await);
    t.note("under c", s.list("c").await);
    s.delete("b/10").await;
    t.note("under b after a delete", s.list("b").await);
    let mut in_order = all.clone();
    if s.byte_order_lists {
        in_order.sort();
    } else {
        in_order.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    }
    assert_eq!(all, in_order, "{}: listing out of order", s.name);
}

/// A fence record of `epoch`'s holder.
fn fence(epoch: u64, seq: u64) -> FenceRecord {
    FenceRecord {
        epoch,
        holder: format!("node-{epoch}"),
        seq,
        renewed_unix_ms: 1_700_000_000_000 + seq as i64,
        nonce: String::new(),
    }
}

/// What compactd does with the fence: create it, raise it by CAS, lose a stale CAS, a
/// higher epoch takes over, the old holder's CAS conflicts.
async fn fence_cas_sequence(s: &Store, t: &mut Transcript) {
    let cas = |record, expected| WriteOp::CasFence {
        stream: None,
        record,
        expected,
    };
    let version = |r: &StoreResult| match r {
        StoreResult::FenceWritten(v) | StoreResult::Fence(Some((_, v))) => v.clone(),
        other => panic!("{}: no fence version in {other:?}", s.name),
    };
    let read = s.read(&ReadOp::ReadFence).await;
    t.note_result("read before create", &read);
    assert_eq!(read, StoreResult::Fence(None), "{}", s.name);
    let created = s.write(&cas(fence(1, 1), None), &[]).await;
    t.note_result("create", &created);
    let v1 = version(&created);
    let read = s.read(&ReadOp::ReadFence).await;
    t.note_result("read", &read);
    t.note("read version is the written one", version(&read) == v1);
    let raised = s.write(&cas(fence(1, 2), Some(v1.clone())), &[]).await;
    t.note_result("cas with the current version", &raised);
    let v2 = version(&raised);
    t.note("version changed", v1 != v2);
    let stale = s.write(&cas(fence(2, 1), Some(v1)), &[]).await;
    t.note_result("cas with a stale version", &stale);
    assert_eq!(stale, StoreResult::FenceConflict, "{}", s.name);
    let create_again = s.write(&cas(fence(2, 1), None), &[]).await;
    t.note_result("create when it exists", &create_again);
    assert_eq!(create_again, StoreResult::FenceConflict, "{}", s.name);
    let read = s.read(&ReadOp::ReadFence).await;
    t.note_result("read after the conflicts", &read);
    let takeover = s.write(&cas(fence(2, 1), Some(v2.clone())), &[]).await;
    t.note_result("higher epoch takes over", &takeover);
    let v3 = version(&takeover);
    let old = s.write(&cas(fence(1, 3), Some(v2)), &[]).await;
    t.note_result("old holder's cas", &old);
    assert_eq!(old, StoreResult::FenceConflict, "{}", s.name);
    s.delete(FENCE_PATH).await;
    let missing = s.write(&cas(fence(2, 2), Some(v3)), &[]).await;
    t.note_result("cas of a deleted fence", &missing);
    assert_eq!(missing, StoreResult::FenceConflict, "{}", s.name);
    let recreated = s.write(&cas(fence(2, 2), None), &[]).await;
    t.note_result("create again", &recreated);
    let read = s.read(&ReadOp::ReadFence).await;
    t.note_result("read at the end", &read);
}

/// A stream's fence is an object of its own, beside the bucket fence and other streams':
/// neither's version matches the other, a write of one leaves the others as they were, and a
/// bad record is an error naming the stream's object.
async fn stream_fences_are_independent(s: &Store, t: &mut Transcript) {
    let (one, two) = (StreamId(0x0123_4567_89ab_cdef), StreamId(42));
    let cas = |stream, record, expected| WriteOp::CasFence {
        stream,
        record,
        expected,
    };
    let read_one = ReadOp::ReadStreamFence { stream: one };
    let version = |r: &StoreResult| match r {
        StoreResult::FenceWritten(v) | StoreResult::Fence(Some((_, v))) => v.clone(),
        other => panic!("{}: no fence version in {other:?}", s.name),
    };
    let read = s.read(&read_one).await;
    t.note_result("read a stream's fence before create", &read);
    assert_eq!(read, StoreResult::Fence(None), "{}", s.name);
    // Other records than the bucket's: S3's content ETags would otherwise coincide.
    let created = s.write(&cas(Some(one), fence(3, 1), None), &[]).await;
    t.note_result("create a stream's fence", &created);
    let v1 = version(&created);
    let bucket = s.read(&ReadOp::ReadFence).await;
    t.note_result("the bucket fence is still absent", &bucket);
    assert_eq!(bucket, StoreResult::Fence(None), "{}", s.name);
    let read = s.read(&read_one).await;
    t.note_result("read the stream's fence", &read);
    t.note("read version is the written one", version(&read) == v1);
    let other = s.read(&ReadOp::ReadStreamFence { stream: two }).await;
    t.note_result("another stream's fence is absent", &other);
    let created = s.write(&cas(None, fence(1, 1), None), &[]).await;
    t.note_result("create the bucket fence", &created);
    let bucket_version = version(&created);
    let crossed = s
        .write(&cas(Some(one), fence(3, 2), Some(bucket_version)), &[])
        .await;
    t.note_result("cas a stream's fence with the bucket's version", &crossed);
    assert_eq!(crossed, StoreResult::FenceConflict, "{}", s.name);
    let crossed = s
        .write(&cas(None, fence(1, 2), Some(v1.clone())), &[])
        .await;
    t.note_result("cas the bucket fence with the stream's version", &crossed);
    assert_eq!(crossed, StoreResult::FenceConflict, "{}", s.name);
    let raised = s.write(&cas(Some(one), fence(3, 2), Some(v1)), &[]).await;
    t.note_result("cas the stream's fence with its version", &raised);
    let created = s.write(&cas(Some(two), fence(4, 1), None), &[]).await;
    t.note_result("create another stream's fence", &created);
    let mut objects = s.list("compactd").await;
    // SeaweedFS lists `fence/` before `fence.json`, the others after.
    objects.sort();
    t.note("fence objects (sorted here)", &objects);
    s.delete(FENCE_PATH).await;
    let read = s.read(&read_one).await;
    t.note_result(
        "the stream's fence after the bucket fence is deleted",
        &read,
    );
    assert!(
        matches!(&read, StoreResult::Fence(Some((r, _))) if *r == fence(3, 2)),
        "{}: {read:?}",
        s.name
    );
    s.put(&two.fence_path(), b"[", PutMode::Overwrite)
        .await
        .expect("put");
    let bad = s.read(&ReadOp::ReadStreamFence { stream: two }).await;
    t.note_result("an unreadable stream fence", &bad);
    let want = "compactd/fence/000000000000002a.json: invalid fence record";
    assert!(
        matches!(&bad, StoreResult::Failed(e) if e.message.starts_with(want)),
        "{}: {bad:?}",
        s.name
    );
}

/// A block id with random part `n`.
fn block_id(n: u128) -> BlockId {
    BlockId::from_parts(1_735_689_600_000, n)
}

/// A level-1 meta of a 2h block.
fn meta(id: BlockId) -> BlockMeta {
    BlockMeta::level1(id, 1_735_682_400_000, 1_735_689_600_000)
}

/// A deletion mark of `id`.
fn deletion_mark(id: BlockId, details: &str) -> DeletionMark {
    DeletionMark {
        id,
        version: 1,
        details: details.into(),
        deletion_time: 1_735_689_600,
    }
}

/// Upload, commit, mark and delete a block through the core's operations.
async fn block_lifecycle(s: &Store, t: &mut Transcript) {
    let id = block_id(1);
    let files: Vec<(String, Vec<u8>)> = ["chunks/000002", "index", "chunks/000001"]
        .iter()
        .map(|f| (f.to_string(), format!("{f} of {id}").into_bytes()))
        .collect();
    let mut step = |what: &str, r: StoreResult| t.note_result(what, &r);
    let upload = WriteOp::UploadFiles {
        job: JobId(1),
        block: id,
    };
    step("upload", s.write(&upload, &files).await);
    step("sync partial", s.read(&ReadOp::Sync).await);
    let put_meta = WriteOp::PutMeta {
        meta: Box::new(meta(id)),
    };
    step("put meta", s.write(&put_meta, &[]).await);
    step("put meta again", s.write(&put_meta, &[]).await);
    let mut other = meta(id);
    other.stats.num_samples = 7;
    let put_other = WriteOp::PutMeta {
        meta: Box::new(other),
    };
    step("put other meta", s.write(&put_other, &[]).await);
    let no_compact = NoCompactMark {
        id,
        version: 1,
        details: "test".into(),
        no_compact_time: 1_735_689_600,
        reason: "manual".into(),
    };
    for (what, op) in [
        (
            "mark deletion",
            WriteOp::MarkDeletion(deletion_mark(id, "first")),
        ),
        (
            "mark deletion again",
            WriteOp::MarkDeletion(deletion_mark(id, "second")),
        ),
        ("mark no-compact", WriteOp::MarkNoCompact(no_compact)),
    ] {
        step(what, s.write(&op, &[]).await);
    }
    step("sync marked", s.read(&ReadOp::Sync).await);
    let listed = s.list(&id.to_string()).await;
    t.note("block objects", &listed);
    let mut step = |what: &str, r: StoreResult| t.note_result(what, &r);
    step("delete", s.write(&WriteOp::DeleteBlock(id), &[]).await);
    let synced = s.read(&ReadOp::Sync).await;
    let empty = StoreResult::Synced(Default::default());
    assert_eq!(synced, empty, "{}", s.name);
    step("sync after delete", synced);
    step(
        "delete again",
        s.write(&WriteOp::DeleteBlock(id), &[]).await,
    );
    t.note("left", s.list("").await);
}

/// A sync over unreadable metas and markers and objects that are not blocks.
async fn sync_reports_problems(s: &Store, t: &mut Transcript) {
    let (corrupt, wrong, marked, partial) = (block_id(1), block_id(2), block_id(3), block_id(4));
    let mut v2 = deletion_mark(marked, "v2");
    v2.version = 2;
    let objects = [
        (meta_path(corrupt), b"{\"ulid\":".to_vec()),
        (meta_path(wrong), meta(marked).to_json()),
        (meta_path(marked), meta(marked).to_json()),
        (
            marker_path(marked, DELETION_MARK_FILENAME),
            encode_marker(&v2),
        ),
        (marker_path(marked, NO_COMPACT_MARK_FILENAME), b"[".to_vec()),
        (format!("{partial}/index"), b"index".to_vec()),
        (FENCE_PATH.to_string(), fence(1, 1).to_json()),
        (StreamId(42).fence_path(), fence(2, 1).to_json()),
        ("debug/metas/x.json".to_string(), b"{}".to_vec()),
    ];
    for (path, bytes) in objects {
        s.put(&path, &bytes, PutMode::Overwrite).await.expect("put");
    }
    let synced = s.read(&ReadOp::Sync).await;
    let StoreResult::Synced(result) = &synced else {
        panic!("{}: {synced:?}", s.name);
    };
    let ids: Vec<BlockId> = result.blocks.keys().copied().collect();
    assert_eq!(ids, [corrupt, wrong, marked, partial], "{}", s.name);
    t.note_result("sync", &synced);
}

/// Runs every scenario on `backend`: (scenario, transcript) in order.
async fn run_all(backend: &Backend) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    macro_rules! run {
        ($($scenario:ident),* $(,)?) => {$(
            let store = backend.fresh(stringify!($scenario));
            let mut t = Transcript::default();
            $scenario(&store, &mut t).await;
            out.push((stringify!($scenario), t.0));
        )*};
    }
    run!(
        create_if_absent,
        update_compares_e_tags,
        update_of_missing_object,
        overwrite_changes_e_tag,
        same_bytes_keep_the_e_tag,
        delete_of_missing_is_ok,
        list_by_prefix_sorted,
        fence_cas_sequence,
        stream_fences_are_independent,
        block_lifecycle,
        sync_reports_problems,
    );
    out
}

/// Runs `f` on a fresh single-threaded runtime.
fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Asserts that `backend` writes the model's transcripts, except for `known` differences.
fn assert_conforms(name: &str, backend: &Backend, known: &[&str]) {
    let want = block_on(run_all(&Backend::Model));
    let got = block_on(run_all(backend));
    for ((scenario, want), (_, got)) in want.iter().zip(&got) {
        if known.contains(scenario) {
            continue;
        }
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            assert_eq!(
                g, w,
                "{name} differs from the model in {scenario}, step {i}"
            );
        }
        assert_eq!(got.len(), want.len(), "{name}: {scenario}");
    }
}

#[test]
fn model_meets_the_scenarios() {
    let first = block_on(run_all(&Backend::Model));
    assert_eq!(first, block_on(run_all(&Backend::Model)), "deterministic");
    assert_eq!(first.len(), 11);
}

#[test]
fn in_memory_matches_the_model() {
    assert_conforms(
        "InMemory",
        &Backend::InMemory,
        &["same_bytes_keep_the_e_tag"],
    );
}

#[test]
fn seaweedfs_matches_the_model() {
    let Some(server) = seaweed::Seaweed::start() else {
        return;
    };
    let bucket = compactd::objstore::parse_config(&server.objstore_yaml(), "seaweedfs")
        .and_then(|c| compactd::objstore::open(&c))
        .expect("open the SeaweedFS bucket");
    assert!(bucket.conditional_update);
    assert_conforms("SeaweedFS", &Backend::S3(bucket.store), &[]);
}

//! The self-test against stores that honour conditional writes (object_store's in-memory
//! store), that have none (the local filesystem) and that accept the headers but ignore
//! them (a double over the in-memory store).

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    PutMultipartOptions, PutOptions, PutResult, Result,
};

use super::*;

const SCRATCH: &str = "compactd/election/selftest-r1-1";

/// A store that writes as asked but ignores If-None-Match (`creates`) or If-Match
/// (`updates`): every such write overwrites.
#[derive(Debug)]
struct IgnoresConditions {
    inner: InMemory,
    creates: bool,
    updates: bool,
}

impl fmt::Display for IgnoresConditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IgnoresConditions({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for IgnoresConditions {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        let ignored = match opts.mode {
            PutMode::Create => self.creates,
            PutMode::Update(_) => self.updates,
            PutMode::Overwrite => false,
        };
        if ignored {
            opts.mode = PutMode::Overwrite;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<ObjectPath>>,
    ) -> BoxStream<'static, Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

fn ignoring(creates: bool, updates: bool) -> Arc<dyn ObjectStore> {
    Arc::new(IgnoresConditions {
        inner: InMemory::new(),
        creates,
        updates,
    })
}

/// Whether the scratch object is gone.
async fn scratch_gone(store: &Arc<dyn ObjectStore>) -> bool {
    matches!(
        store.head(&ObjectPath::from(SCRATCH)).await,
        Err(object_store::Error::NotFound { .. })
    )
}

#[tokio::test]
async fn a_store_that_honours_conditions_passes_and_keeps_no_scratch_object() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    check_conditional_writes(&store, SCRATCH, 8).await.unwrap();
    assert!(scratch_gone(&store).await);
}

#[tokio::test]
async fn a_store_whose_concurrent_creates_all_succeed_is_refused() {
    let store = ignoring(true, false);
    let err = check_conditional_writes(&store, SCRATCH, 8)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SelfTestError::Creates {
                winners: 8,
                writers: 8,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(SCRATCH), "{err}");
    assert!(scratch_gone(&store).await);
}

#[tokio::test]
async fn a_store_that_takes_a_stale_update_is_refused() {
    let store = ignoring(false, true);
    let err = check_conditional_writes(&store, SCRATCH, 4)
        .await
        .unwrap_err();
    assert!(matches!(err, SelfTestError::StaleUpdate { .. }), "{err}");
    assert!(scratch_gone(&store).await);
}

#[tokio::test]
async fn the_filesystem_bucket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let err = check_conditional_writes(&store, SCRATCH, 4)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SelfTestError::Store {
                step: "an update with the current version",
                ..
            }
        ),
        "{err}"
    );
}

//! The fence objects (the bucket's and each stream's, `core::fence::fence_path`): read one,
//! and compare-and-swap it (If-Match on its version, or create if absent). On stores without
//! conditional update (the local filesystem) the swap falls back to compare-then-overwrite,
//! which is not atomic: `run` warns about it at start-up.

use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, PutMode, PutPayload, UpdateVersion};

use super::{object_error, StoreExecutor};
use crate::core::fence::{FenceRecord, FenceVersion};
use crate::core::types::StoreError;
use crate::metrics::BucketOp;

/// The outcome of a fence CAS.
pub enum CasOutcome {
    /// Written; the object now has this version.
    Written(FenceVersion),
    /// The object changed (or appeared) since it was read.
    Conflict,
}

impl StoreExecutor {
    /// Reads the fence object at `path`: `None` when absent; an unreadable record is an
    /// error naming the object.
    pub async fn read_fence(
        &self,
        path: &str,
    ) -> Result<Option<(FenceRecord, FenceVersion)>, StoreError> {
        let object = ObjectPath::from(path);
        let started = std::time::Instant::now();
        let result = self.store.get_opts(&object, GetOptions::default()).await;
        self.observe(BucketOp::Get, started, &result);
        let got = match result {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(object_error(format!("read {path}"), &e)),
        };
        let version = FenceVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| object_error(format!("read {path}"), &e))?;
        let record = FenceRecord::parse(path, &bytes).map_err(StoreError::other)?;
        Ok(Some((record, version)))
    }

    /// Writes `record` to the fence object at `path` if it still has version `expected`
    /// (creates it if `None`).
    pub async fn cas_fence(
        &self,
        path: &str,
        record: &FenceRecord,
        expected: Option<&FenceVersion>,
    ) -> Result<CasOutcome, StoreError> {
        let object = ObjectPath::from(path);
        let mode = match expected {
            None => PutMode::Create,
            Some(v) if self.conditional_update => PutMode::Update(UpdateVersion {
                e_tag: v.e_tag.clone(),
                version: v.version.clone(),
            }),
            Some(v) => {
                // No conditional update: compare, then overwrite (not atomic).
                match self.read_fence(path).await? {
                    Some((_, current)) if current == *v => PutMode::Overwrite,
                    _ => return Ok(CasOutcome::Conflict),
                }
            }
        };
        self.mutation_point(path);
        let started = std::time::Instant::now();
        let payload = PutPayload::from(record.to_json());
        let result = self.store.put_opts(&object, payload, mode.into()).await;
        self.observe(BucketOp::Upload, started, &result);
        match result {
            Ok(put) => Ok(CasOutcome::Written(FenceVersion {
                e_tag: put.e_tag,
                version: put.version,
            })),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(CasOutcome::Conflict),
            Err(e) => Err(object_error(format!("write {path}"), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::local::LocalFileSystem;

    use super::*;
    use crate::core::fence::{fence_path, FENCE_PATH};
    use crate::core::stream::StreamId;

    fn record(seq: u64) -> FenceRecord {
        FenceRecord {
            epoch: 0,
            holder: "a".into(),
            seq,
            renewed_unix_ms: 1,
            nonce: String::new(),
        }
    }

    /// The fallback of stores without If-Match still refuses a stale version and a second
    /// create; what it cannot do is make the compare and the write one step.
    #[test]
    fn compare_then_overwrite_fallback_detects_stale_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let exec = StoreExecutor::new(Arc::new(store)).with_conditional_update(false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(exec.read_fence(FENCE_PATH).await.unwrap().is_none());
            let CasOutcome::Written(v1) =
                exec.cas_fence(FENCE_PATH, &record(1), None).await.unwrap()
            else {
                panic!("the first create must succeed")
            };
            assert!(matches!(
                exec.cas_fence(FENCE_PATH, &record(1), None).await.unwrap(),
                CasOutcome::Conflict
            ));
            let CasOutcome::Written(v2) = exec
                .cas_fence(FENCE_PATH, &record(2), Some(&v1))
                .await
                .unwrap()
            else {
                panic!("a CAS on the current version must succeed")
            };
            assert_ne!(v1, v2);
            assert!(matches!(
                exec.cas_fence(FENCE_PATH, &record(3), Some(&v1))
                    .await
                    .unwrap(),
                CasOutcome::Conflict
            ));
            let (read, version) = exec.read_fence(FENCE_PATH).await.unwrap().unwrap();
            assert_eq!((read, version), (record(2), v2));
        });
    }

    /// A stream's fence is an object of its own: neither fence sees the other's writes or
    /// versions.
    #[test]
    fn stream_and_bucket_fences_are_independent_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let exec = StoreExecutor::new(Arc::new(store)).with_conditional_update(false);
        let stream = fence_path(Some(StreamId(42)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let CasOutcome::Written(bucket) =
                exec.cas_fence(FENCE_PATH, &record(1), None).await.unwrap()
            else {
                panic!("creating the bucket fence must succeed")
            };
            assert!(exec.read_fence(&stream).await.unwrap().is_none());
            let CasOutcome::Written(own) = exec.cas_fence(&stream, &record(5), None).await.unwrap()
            else {
                panic!("creating the stream's fence must succeed")
            };
            assert!(matches!(
                exec.cas_fence(&stream, &record(6), Some(&bucket))
                    .await
                    .unwrap(),
                CasOutcome::Conflict
            ));
            let read = exec.read_fence(FENCE_PATH).await.unwrap();
            assert_eq!(read, Some((record(1), bucket)));
            assert_eq!(
                exec.read_fence(&stream).await.unwrap(),
                Some((record(5), own))
            );
        });
    }

    #[test]
    fn an_unreadable_fence_is_an_error_naming_the_object() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("compactd")).unwrap();
        std::fs::write(dir.path().join(FENCE_PATH), b"{\"epoch\": ").unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let exec = StoreExecutor::new(Arc::new(store));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(exec.read_fence(FENCE_PATH)).unwrap_err();
        assert_eq!(err.kind, crate::core::types::StoreErrorKind::Other);
        assert!(
            err.message
                .starts_with("compactd/fence.json: invalid fence record"),
            "{err}"
        );
        let stream = fence_path(Some(StreamId(42)));
        std::fs::create_dir_all(dir.path().join("compactd/fence")).unwrap();
        std::fs::write(dir.path().join(&stream), b"[").unwrap();
        let err = rt.block_on(exec.read_fence(&stream)).unwrap_err();
        let want = "compactd/fence/000000000000002a.json: invalid fence record";
        assert!(err.message.starts_with(want), "{err}");
    }
}

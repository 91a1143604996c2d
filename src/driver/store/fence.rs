//! The fence object: read it, and compare-and-swap it (If-Match on its version, or create
//! if absent). On stores without conditional update (the local filesystem) the swap falls
//! back to compare-then-overwrite, which is not atomic: `run` warns about it at start-up.

use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, PutMode, PutPayload, UpdateVersion};

use super::{StoreError, StoreExecutor};
use crate::core::fence::{FenceRecord, FenceVersion, FENCE_PATH};
use crate::metrics::BucketOp;

/// The outcome of a fence CAS.
pub enum CasOutcome {
    /// Written; the object now has this version.
    Written(FenceVersion),
    /// The object changed (or appeared) since it was read.
    Conflict,
}

impl StoreExecutor {
    /// Reads `compactd/fence.json`: `None` when absent; an unreadable record is an error
    /// naming the object.
    pub async fn read_fence(&self) -> Result<Option<(FenceRecord, FenceVersion)>, StoreError> {
        let path = ObjectPath::from(FENCE_PATH);
        let started = std::time::Instant::now();
        let result = self.store.get_opts(&path, GetOptions::default()).await;
        self.observe(BucketOp::Get, started, &result);
        let got = match result {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(format!("read {FENCE_PATH}: {e}")),
        };
        let version = FenceVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| format!("read {FENCE_PATH}: {e}"))?;
        Ok(Some((FenceRecord::parse(&bytes)?, version)))
    }

    /// Writes `record` if the fence still has version `expected` (creates it if `None`).
    pub async fn cas_fence(
        &self,
        record: &FenceRecord,
        expected: Option<&FenceVersion>,
    ) -> Result<CasOutcome, StoreError> {
        let path = ObjectPath::from(FENCE_PATH);
        let mode = match expected {
            None => PutMode::Create,
            Some(v) if self.conditional_update => PutMode::Update(UpdateVersion {
                e_tag: v.e_tag.clone(),
                version: v.version.clone(),
            }),
            Some(v) => {
                // No conditional update: compare, then overwrite (not atomic).
                match self.read_fence().await? {
                    Some((_, current)) if current == *v => PutMode::Overwrite,
                    _ => return Ok(CasOutcome::Conflict),
                }
            }
        };
        self.mutation_point(FENCE_PATH);
        let started = std::time::Instant::now();
        let payload = PutPayload::from(record.to_json());
        let result = self.store.put_opts(&path, payload, mode.into()).await;
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
            Err(e) => Err(format!("write {FENCE_PATH}: {e}")),
        }
    }
}

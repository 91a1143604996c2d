//! Object copies between buckets (`tools bucket replicate`): one object of another store is
//! streamed into this one under the same name, without a local file. Small objects go in one
//! PUT, larger ones in parts of [`PART_BYTES`]; either way through the executor's mutation
//! point and metrics, as every other write. Also the plain reads the copy needs: a listing
//! and an optional GET of the raw bytes (a meta.json to compare byte for byte).

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{object_error, StoreExecutor, MULTIPART_THRESHOLD_BYTES, PART_BYTES};
use crate::core::types::{StoreError, StoreErrorKind};
use crate::metrics::BucketOp;

impl StoreExecutor {
    /// Every object under `prefix` (the whole bucket for `None`).
    pub async fn list_objects(&self, prefix: Option<&str>) -> Result<Vec<ObjectMeta>, StoreError> {
        let prefix = prefix.map(ObjectPath::from);
        self.list_all(prefix.as_ref()).await
    }

    /// The bytes of `path`, or `None` when it does not exist.
    pub async fn read_optional(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_optional(path).await
    }

    /// Copies `path` of `from` to the same name in this store, streaming, and returns the
    /// number of bytes copied. A copy that ends short of the size the source announced fails
    /// (and a multipart upload is aborted), so a torn copy never lands.
    pub async fn copy_object_from(
        &self,
        from: &dyn ObjectStore,
        path: &str,
    ) -> Result<u64, StoreError> {
        let name = ObjectPath::from(path);
        let read_error = |e: &object_store::Error| object_error(format!("read source {path}"), e);
        let got = from.get(&name).await.map_err(|e| read_error(&e))?;
        let size = got.meta.size;
        self.mutation_point(path);
        if size <= MULTIPART_THRESHOLD_BYTES {
            let data = got.bytes().await.map_err(|e| read_error(&e))?;
            check_length(path, data.len() as u64, size)?;
            let started = std::time::Instant::now();
            let result = self.store.put(&name, PutPayload::from(data)).await;
            self.observe(BucketOp::Upload, started, &result);
            result.map_err(|e| object_error(format!("upload {path}"), &e))?;
            return Ok(size);
        }
        let write_error = |e: &object_store::Error| object_error(format!("upload {path}"), e);
        let upload = self
            .store
            .put_multipart(&name)
            .await
            .map_err(|e| write_error(&e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut stream = got.into_stream();
        let mut copied = 0u64;
        loop {
            let chunk = match stream.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(read_error(&e));
                }
            };
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| write_error(&e))?;
            copied += chunk.len() as u64;
            writer.put(chunk);
        }
        if let Err(e) = check_length(path, copied, size) {
            let _ = writer.abort().await;
            return Err(e);
        }
        let started = std::time::Instant::now();
        let result = writer.finish().await;
        self.observe(BucketOp::Upload, started, &result);
        result.map_err(|e| write_error(&e))?;
        Ok(copied)
    }
}

/// Fails when `got` bytes were read of an object announced as `want` bytes.
fn check_length(path: &str, got: u64, want: u64) -> Result<(), StoreError> {
    if got == want {
        return Ok(());
    }
    Err(StoreError::new(
        StoreErrorKind::Other,
        format!("read source {path}: got {got} bytes of {want}; not copied"),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;

    /// Copies `len` patterned bytes between two in-memory stores and compares them.
    async fn round_trip(len: usize) {
        let source = InMemory::new();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let name = ObjectPath::from("01JGFSEP80SH2Z1WNHDH9PTJZZ/chunks/000001");
        source
            .put(&name, PutPayload::from(data.clone()))
            .await
            .expect("put the source object");
        let target = StoreExecutor::new(Arc::new(InMemory::new()));
        let copied = target
            .copy_object_from(&source, name.as_ref())
            .await
            .expect("copy");
        assert_eq!(copied, len as u64);
        let got = target.read_optional(name.as_ref()).await.expect("read");
        assert!(
            got.is_some_and(|b| b.as_ref() == data.as_slice()),
            "{len} bytes differ"
        );
    }

    #[tokio::test]
    async fn small_and_multipart_copies_are_byte_identical() {
        round_trip(1_000).await;
        // Above the multipart threshold: parts of PART_BYTES and a short last part.
        round_trip(MULTIPART_THRESHOLD_BYTES as usize + PART_BYTES / 3).await;
    }

    #[tokio::test]
    async fn a_missing_source_object_is_an_error_naming_it() {
        let target = StoreExecutor::new(Arc::new(InMemory::new()));
        let err = target
            .copy_object_from(&InMemory::new(), "x/index")
            .await
            .expect_err("nothing to copy");
        assert!(
            err.message.contains("read source x/index"),
            "{}",
            err.message
        );
        assert_eq!(err.kind, StoreErrorKind::NotFound);
    }
}

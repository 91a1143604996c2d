//! The start-up self-test of a store's conditional writes, which election on the bucket
//! (`--election=bucket`) stands on: S3 (If-None-Match since 2024-08, If-Match since 2024-11),
//! GCS generation preconditions and Azure ETag conditions give them, but S3-compatible
//! servers differ, and a store that accepts the headers without honouring them would let two
//! replicas both win a takeover. Before it campaigns, a replica checks on a scratch object of
//! its own:
//!
//! 1. `writers` concurrent creates (`PutMode::Create`, If-None-Match): exactly one wins, every
//!    other is refused as already existing;
//! 2. an update with the winner's version (`PutMode::Update`, If-Match) succeeds;
//! 3. an update with the version before it (stale) is refused as a failed precondition.
//!
//! The scratch object is deleted at the end, whatever the outcome. A store without
//! conditional update (the local filesystem: `NotImplemented`) fails at step 2.

use std::sync::Arc;

use futures::future::join_all;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

/// Why a store cannot hold the election.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// Concurrent creates of one object did not give exactly one winner.
    #[error("{winners} of {writers} concurrent creates of {object} succeeded (If-None-Match is not honoured): the store cannot elect a leader")]
    Creates {
        /// The scratch object.
        object: String,
        /// Creates that succeeded.
        winners: usize,
        /// Creates sent.
        writers: usize,
    },
    /// An update with a stale version was accepted.
    #[error("an update of {object} with a stale version succeeded (If-Match is not honoured): the store cannot elect a leader")]
    StaleUpdate {
        /// The scratch object.
        object: String,
    },
    /// The store has no conditional update, or a conditional write failed otherwise.
    #[error("{step} of {object}: {source}")]
    Store {
        /// The step that failed.
        step: &'static str,
        /// The scratch object.
        object: String,
        /// The store's error.
        source: object_store::Error,
    },
}

/// Runs the self-test on the scratch object `object` (a key of this replica's own, e.g.
/// `compactd/election/selftest-<node>-<nonce>`), with `writers` concurrent creates (at least
/// two), and deletes the object afterwards.
pub async fn check_conditional_writes(
    store: &Arc<dyn ObjectStore>,
    object: &str,
    writers: usize,
) -> Result<(), SelfTestError> {
    let path = ObjectPath::from(object);
    let outcome = run_steps(store, &path, object, writers.max(2)).await;
    // Best effort: a leftover scratch object is harmless, and a refusal is the news.
    let _ = store.delete(&path).await;
    outcome
}

async fn run_steps(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    object: &str,
    writers: usize,
) -> Result<(), SelfTestError> {
    let store_error = |step, source| SelfTestError::Store {
        step,
        object: object.to_string(),
        source,
    };
    let creates = (0..writers).map(|i| {
        let payload = PutPayload::from(format!("{{\"writer\":{i}}}").into_bytes());
        store.put_opts(path, payload, PutMode::Create.into())
    });
    let mut winner = None;
    let mut winners = 0;
    for result in join_all(creates).await {
        match result {
            Ok(put) => {
                winners += 1;
                winner = Some(put);
            }
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(store_error("a concurrent create", e)),
        }
    }
    let Some(first) = winner.filter(|_| winners == 1) else {
        return Err(SelfTestError::Creates {
            object: object.to_string(),
            winners,
            writers,
        });
    };
    let first = UpdateVersion {
        e_tag: first.e_tag,
        version: first.version,
    };
    let update = |version: UpdateVersion, text: &str| {
        let payload = PutPayload::from(text.as_bytes().to_vec());
        store.put_opts(path, payload, PutMode::Update(version).into())
    };
    update(first.clone(), "{\"update\":1}")
        .await
        .map_err(|e| store_error("an update with the current version", e))?;
    match update(first, "{\"update\":2}").await {
        Err(object_store::Error::Precondition { .. }) => Ok(()),
        Ok(_) => Err(SelfTestError::StaleUpdate {
            object: object.to_string(),
        }),
        Err(e) => Err(store_error("an update with a stale version", e)),
    }
}

#[cfg(test)]
mod tests;

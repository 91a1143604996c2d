//! Keeps the global view fresh where the compactor's own syncs do not: an elected replica
//! that neither leads nor holds a stream (a follower, which syncs nothing) syncs the bucket
//! when its view is older than `--block-viewer.global.sync-block-interval`, and `tools bucket
//! web` every `--refresh`, each sync bounded by its timeout. A replica that writes syncs on its
//! own schedule: the page shows its syncs, at no extra cost.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use super::board::{Board, Loaded};
use crate::core::types::{Millis, Now};
use crate::core::view::{build_view, ViewConfig};
use crate::http::HttpState;

/// How often a follower checks whether its view is stale.
const FOLLOWER_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// When to sync, and what of.
#[derive(Clone, Debug)]
pub enum Refresh {
    /// The global view, while replica `node` follows (neither leads nor holds a stream, as
    /// `http` knows) and its view is older than the interval.
    WhileFollowing {
        /// This replica's `--node.name`.
        node: String,
        /// Who leads and which streams are held.
        http: Arc<HttpState>,
    },
    /// Every interval, the global view and the loaded view through these filters (a tool).
    Always(ViewConfig),
}

impl Refresh {
    /// Whether to sync now, the global view last refreshed at `refreshed_ms`.
    fn due(&self, refreshed_ms: Option<i64>, now_ms: i64, interval_ms: i64) -> bool {
        match self {
            Refresh::Always(_) => true,
            Refresh::WhileFollowing { node, http } => {
                let writes =
                    http.leader().leader == *node || http.streams().streams.iter().any(|s| s.held);
                let stale = refreshed_ms.is_none_or(|at| now_ms - at >= interval_ms);
                !writes && stale
            }
        }
    }
}

/// Syncs `store` into `board` every `interval` (bounded by `timeout`) as `what` says, until
/// the task is dropped.
pub async fn refresh_loop(
    board: Arc<Board>,
    store: Arc<dyn ObjectStore>,
    what: Refresh,
    interval: Duration,
    timeout: Duration,
) {
    let interval_ms = interval.as_millis() as i64;
    // A replica looks often whether it follows (it may lose or win a term any time), and
    // first after a pause: a replica about to lead syncs on its own.
    let pause = match what {
        Refresh::Always(_) => Duration::ZERO,
        Refresh::WhileFollowing { .. } => interval.min(FOLLOWER_CHECK_INTERVAL),
    };
    loop {
        tokio::time::sleep(pause).await;
        let now_ms = crate::tools::now_unix_ms();
        if what.due(board.global_refreshed_ms(), now_ms, interval_ms) {
            refresh_once(&board, &store, &what, timeout).await;
        }
        if matches!(what, Refresh::Always(_)) {
            tokio::time::sleep(interval).await;
        }
    }
}

/// One sync of the bucket into `board`.
pub async fn refresh_once(
    board: &Board,
    store: &Arc<dyn ObjectStore>,
    what: &Refresh,
    timeout: Duration,
) {
    // The view is as of the sync's start: a newer view that came in meanwhile stays.
    let at_ms = crate::tools::now_unix_ms();
    let sync = match tokio::time::timeout(timeout, crate::tools::bucket::sync(store)).await {
        Ok(Ok(sync)) => sync,
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "block viewer: syncing the bucket failed");
            board.set_global_error(format!("{e:#}"));
            return;
        }
        Err(_) => {
            let error = format!("syncing the bucket took longer than {timeout:?}");
            tracing::warn!(error = %error, "block viewer: syncing the bucket failed");
            board.set_global_error(error);
            return;
        }
    };
    if let Refresh::Always(cfg) = what {
        let now = Now {
            mono: Millis(0),
            wall: Millis(at_ms),
        };
        let view = build_view(&sync, now, cfg, &std::collections::BTreeMap::new());
        board.set_loaded(Loaded { units: vec![view] }, at_ms);
    }
    board.set_global(sync, at_ms);
}

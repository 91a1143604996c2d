//! Keeps the global view fresh where the compactor's own syncs do not: a follower (which
//! syncs nothing) and `tools bucket web` sync the bucket every
//! `--block-viewer.global.sync-block-interval` (`--refresh` for the tool), each sync bounded
//! by its timeout. A node that synced within the interval is not synced again: the page's
//! views are the compactor's own syncs then, at no extra cost.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use super::board::{Board, Loaded};
use crate::core::types::{Millis, Now};
use crate::core::view::{build_view, ViewConfig};

/// What a refresh makes of its sync besides the global view.
#[derive(Clone, Debug)]
pub enum Refresh {
    /// Only the global view, and only when the node has not synced within the interval.
    GlobalWhenStale,
    /// Every interval, the global view and the loaded view through these filters (a tool).
    Always(ViewConfig),
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
    loop {
        let now_ms = crate::tools::now_unix_ms();
        let fresh = board
            .global_refreshed_ms()
            .is_some_and(|at| now_ms - at < interval_ms);
        if matches!(what, Refresh::Always(_)) || !fresh {
            refresh_once(&board, &store, &what, timeout).await;
        }
        tokio::time::sleep(interval).await;
    }
}

/// One sync of the bucket into `board`.
pub async fn refresh_once(
    board: &Board,
    store: &Arc<dyn ObjectStore>,
    what: &Refresh,
    timeout: Duration,
) {
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
    let at_ms = crate::tools::now_unix_ms();
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

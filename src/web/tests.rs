//! The viewer's routes against a served router: prefixes, Thanos' shapes, marks through the
//! node's desk, CORS, and the board's folding of the node's events.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::board::{Board, Loaded};
use super::*;
use crate::core::admin::AdminOutcome;
use crate::core::plan::compaction_ranges;
use crate::core::testing::{synced, view_config, T0_MS};
use crate::core::types::{Event, Input, LeaderInfo, MetaState, Millis, Now, SyncResult};
use crate::core::view::build_view;
use crate::http::HttpState;
use crate::metrics::Metrics;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;
use crate::units::HOUR_MS;

fn settings() -> WebSettings {
    WebSettings {
        route_prefix: String::new(),
        external_prefix: String::new(),
        prefix_header: None,
        disable_cors: false,
        label: "cluster".into(),
        disable_admin: false,
        per_stream: false,
        flags: BTreeMap::from([("wait".to_string(), "true".to_string())]),
        plan: PlanSettings {
            replica_labels: vec![],
            vertical: false,
            consistency_delay_ms: 0,
            delete_delay_ms: 0,
            max_compaction_level: 4,
            block_max_index_size: 64 << 30,
            selector_relabel: vec![],
        },
        ranges: compaction_ranges(4).unwrap(),
        global_sync_interval: GLOBAL_SYNC_INTERVAL_DEFAULT,
        global_sync_timeout: GLOBAL_SYNC_TIMEOUT_DEFAULT,
        node_url_template: Some("http://{node}.compactd:10902".into()),
    }
}

/// Five 2h level-1 blocks of one stream: the planner merges the first four into one 8h block.
fn bucket() -> SyncResult {
    let mut sync = SyncResult::default();
    for i in 0..5 {
        let id = BlockId::from_parts((T0_MS + i * 2 * HOUR_MS) as u64, i as u128 + 1);
        let mut meta =
            BlockMeta::level1(id, T0_MS + i * 2 * HOUR_MS, T0_MS + (i + 1) * 2 * HOUR_MS);
        meta.stats.num_series = 10;
        meta.thanos.get_or_insert_with(Default::default).labels =
            BTreeMap::from([("cluster".to_string(), "eu1".to_string())]);
        sync.blocks
            .insert(id, synced(MetaState::Ok(Box::new(meta))));
    }
    sync
}

/// A served viewer over `bucket()`, the global and loaded views filled in.
struct Served {
    base: String,
    http: Arc<HttpState>,
    client: reqwest::Client,
}

async fn serve(settings: WebSettings, viewer_on: bool) -> Served {
    let viewer = Arc::new(Viewer {
        settings,
        store: Arc::new(object_store::memory::InMemory::new()),
        marks: MarkRoute::Node,
        node: "r1".into(),
        role: Role::Elected,
    });
    let mut http = HttpState::new(Arc::new(Metrics::new("test")));
    if viewer_on {
        http = http.with_viewer(viewer);
    }
    let http = Arc::new(http);
    let sync = bucket();
    let now = Now {
        mono: Millis(0),
        wall: Millis(T0_MS + 30 * 24 * HOUR_MS),
    };
    let view = build_view(&sync, now, &view_config(), &BTreeMap::new());
    http.board
        .set_loaded(Loaded { units: vec![view] }, now.wall.0);
    http.board.set_global(sync, now.wall.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::clone(&http);
    tokio::spawn(async move {
        axum::serve(listener, crate::http::router(served))
            .await
            .unwrap()
    });
    Served {
        base: format!("http://{addr}"),
        http,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Served {
    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.text().await.unwrap(), headers)
    }

    async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        self.post_with(path, form, &[]).await
    }

    /// `POST path` with the form `form` and the extra `headers`.
    async fn post_with(&self, path: &str, form: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.body(form.to_string()).send().await.unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(&r.text().await.unwrap()).unwrap(),
        )
    }
}

fn first_block() -> BlockId {
    *bucket().blocks.keys().next().unwrap()
}

#[test]
fn prefixes_follow_thanos_defaults() {
    let ok = |r, e| WebSettings::prefixes(r, e).unwrap();
    assert_eq!(ok(None, None), (String::new(), String::new()));
    assert_eq!(
        ok(None, Some("https://example.com/thanos/compact/")),
        ("/thanos/compact".into(), "/thanos/compact".into())
    );
    assert_eq!(
        ok(Some("internal/"), Some("/ext")),
        ("/internal".into(), "/ext".into())
    );
    assert_eq!(ok(Some("/"), None), (String::new(), String::new()));
    let err = WebSettings::prefixes(Some("/a/{id}"), None).unwrap_err();
    assert!(
        err.contains("--web.route-prefix") && err.contains("'{'"),
        "{err}"
    );
    assert!(WebSettings::prefixes(None, Some("http://h/:x")).is_err());
}

#[test]
fn halts_get_the_runbook_fix_for_their_reason() {
    let cases = [
        (
            "pre compaction overlap check: overlaps found while gathering blocks in group 0@1: x",
            "vertical compaction",
        ),
        (
            "overlapping sources detected for plan in group 0@1: blocks A and B share source C",
            "duplicated_compaction",
        ),
        ("series of block X: chunks out of order", "no-compact"),
        (
            "block X: series with unsorted label names",
            "accept-malformed-index",
        ),
        ("corrupt chunk in block X", "verify --id"),
    ];
    for (reason, fix) in cases {
        assert!(board::fix_for(reason).contains(fix), "{reason}");
    }
}

#[tokio::test]
async fn blocks_api_answers_in_thanos_shape_with_marks_and_states() {
    let s = serve(settings(), true).await;
    let (status, body, headers) = s.get("/api/v1/blocks?view=global").await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "*");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    let data = &v["data"];
    assert_eq!(data["label"], "cluster");
    assert!(data["err"].is_null());
    assert!(data["refreshedAt"].as_str().unwrap().ends_with('Z'));
    let blocks = data["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 5);
    // The fields of Thanos' UI type `Block` (pkg/ui/react-app/src/thanos/pages/blocks/block.ts).
    for pointer in [
        "/ulid",
        "/minTime",
        "/maxTime",
        "/version",
        "/stats/numSeries",
        "/compaction/level",
        "/compaction/sources",
        "/thanos/labels",
        "/thanos/downsample/resolution",
        "/thanos/source",
    ] {
        assert!(
            blocks[0].pointer(pointer).is_some(),
            "missing {pointer}: {}",
            blocks[0]
        );
    }
    assert_eq!(blocks[0]["thanos"]["labels"]["cluster"], "eu1");
    assert_eq!(blocks[0]["compactd"]["state"], "visible");
    let (_, loaded, _) = s.get("/api/v1/blocks?view=loaded").await;
    let loaded: Value = serde_json::from_str(&loaded).unwrap();
    assert_eq!(loaded["data"]["blocks"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn compactor_status_shows_the_plan_jobs_halt_and_failovers() {
    let s = serve(settings(), true).await;
    let board: &Board = &s.http.board;
    board.on_event(
        &Event::LeaderKnown(Some(LeaderInfo {
            node: "r2".into(),
            epoch: 7,
            since_unix_ms: T0_MS,
        })),
        T0_MS,
    );
    s.http.set_leader("r2", 7, "2025-01-01T00:00:00.000Z");
    board.on_event(&Event::Halted("overlaps found in group 0@1".into()), T0_MS);
    let (status, body, _) = s.get("/api/v1/compactor").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let data = &v["data"];
    assert_eq!(data["role"], "follower");
    assert_eq!(data["leader_url"], "http://r2.compactd:10902");
    let plan = data["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0]["compact"].as_array().unwrap().len(), 4);
    assert!(data["halt"]["fix"]
        .as_str()
        .unwrap()
        .contains("vertical compaction"));
    assert_eq!(data["failovers"][0]["node"], "r2");
    assert_eq!(data["failovers"][0]["what"], "leader_changed");
    assert!(data["jobs"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn marks_go_through_the_node_and_errors_keep_thanos_shape() {
    let s = serve(settings(), true).await;
    let id = first_block();
    // Before the node runs: unavailable.
    let (status, v) = s
        .post(
            "/api/v1/blocks/mark",
            &format!("id={id}&action=NO_COMPACTION&detail=x"),
        )
        .await;
    assert_eq!(
        (status, v["errorType"].as_str()),
        (503, Some("unavailable"))
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    s.http.admin.connect(tx);
    let desk = Arc::clone(&s.http);
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(Input::Admin(request)) = rx.recv().await {
            n += 1;
            // The first request commits, the second is refused as a follower would.
            let outcome = if n == 1 {
                AdminOutcome {
                    committed: 1,
                    ..AdminOutcome::default()
                }
            } else {
                AdminOutcome::failed("not the leader: r2 leads (epoch 7)".into())
            };
            desk.admin.answer(request.id, outcome);
        }
    });
    let (status, v) = s
        .post(
            "/api/v1/blocks/mark",
            &format!("id={id}&action=NO_COMPACTION&detail=x"),
        )
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("success")),
        "{v}"
    );
    let (_, body, _) = s.get("/api/v1/blocks?view=global").await;
    assert!(body.contains("\"kind\":\"no-compact\""), "{body}");
    // The marker is there now: refused before reaching the node.
    let (status, v) = s
        .post(
            "/api/v1/blocks/mark",
            &format!("id={id}&action=NO_COMPACTION&detail=x"),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = s
        .post("/api/v1/blocks/mark", &format!("id={id}&action=DELETION"))
        .await;
    assert_eq!((status, v["errorType"].as_str()), (409, Some("conflict")));
    assert!(v["error"].as_str().unwrap().contains("r2 leads"));
    for (form, want) in [
        ("action=DELETION".to_string(), "ID cannot be empty"),
        (format!("id={id}"), "Action cannot be empty"),
        ("id=nope&action=DELETION".into(), "is not valid"),
        (
            format!("id={id}&action=SHRED"),
            "not supported marker SHRED",
        ),
        (
            format!("id={}&action=DELETION", BlockId::from_parts(1, 1)),
            "",
        ),
    ] {
        let (status, v) = s.post("/api/v1/blocks/mark", &form).await;
        assert_eq!(
            (status, v["errorType"].as_str()),
            (400, Some("bad_data")),
            "{form}: {v}"
        );
        assert!(v["error"].as_str().unwrap().contains(want), "{form}: {v}");
    }
}

#[tokio::test]
async fn marks_from_another_sites_page_are_refused() {
    let s = serve(settings(), true).await;
    let form = format!("id={}&action=DELETION", first_block());
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
    ] {
        let (status, v) = s
            .post_with("/api/v1/blocks/mark", &form, &[(name, value)])
            .await;
        assert_eq!(status, 403, "{name}: {value}");
        assert_eq!(v["errorType"], "forbidden");
    }
    // The viewer's own page (same origin) gets through to the node (not running: 503).
    let origin = s.base.clone();
    let same = [
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let (status, v) = s.post_with("/api/v1/blocks/mark", &form, &same).await;
    assert_eq!(status, 503, "{v}");
}

#[tokio::test]
async fn admin_operations_disabled_refuses_marks() {
    let s = serve(
        WebSettings {
            disable_admin: true,
            ..settings()
        },
        true,
    )
    .await;
    let (status, v) = s
        .post(
            "/api/v1/blocks/mark",
            &format!("id={}&action=DELETION", first_block()),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "Admin operations are disabled");
    let (_, body, _) = s.get("/api/v1/compactor").await;
    assert!(body.contains("\"admin_operations\":false"));
}

#[tokio::test]
async fn route_prefix_external_prefix_and_prefix_header() {
    let s = serve(
        WebSettings {
            route_prefix: "/cd".into(),
            prefix_header: Some("X-Forwarded-Prefix".into()),
            disable_cors: true,
            ..settings()
        },
        true,
    )
    .await;
    let (status, _, headers) = s.get("/").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/cd/");
    let (status, page, _) = s.get("/cd/").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"window.PATH_PREFIX = "/cd";"#));
    assert!(page.contains("/cd/static/app.js"));
    let r = s
        .client
        .get(format!("{}/cd/loaded", s.base))
        .header("X-Forwarded-Prefix", "/proxy/cd/")
        .send()
        .await
        .unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains(r#"window.PATH_PREFIX = "/proxy/cd";"#));
    let (status, js, _) = s.get("/cd/static/app.js").await;
    assert_eq!(status, 200);
    assert!(!js.is_empty());
    let (status, _, headers) = s.get("/cd/api/v1/status/buildinfo").await;
    assert_eq!(status, 200);
    assert!(headers.get("access-control-allow-origin").is_none());
    let (_, flags, _) = s.get("/cd/api/v1/status/flags").await;
    assert_eq!(flags, r#"{"status":"success","data":{"wait":"true"}}"#);
    // The probes and metrics stay at the root.
    assert_eq!(s.get("/metrics").await.0, 200);
    assert_eq!(s.get("/api/v1/blocks").await.0, 404);
}

#[tokio::test]
async fn web_disable_serves_the_endpoint_list_and_no_viewer() {
    let s = serve(settings(), false).await;
    let (status, body, _) = s.get("/").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("compactd"));
    assert_eq!(s.get("/api/v1/blocks").await.0, 404);
    assert_eq!(s.get("/static/app.js").await.0, 404);
}

#[test]
fn the_board_keeps_halts_per_unit_lease_and_a_bounded_history() {
    let board = Board::default();
    for epoch in 0..60 {
        board.on_event(&Event::Elected { epoch }, T0_MS);
    }
    let failovers = board.failovers();
    assert_eq!(failovers.len(), 50);
    assert_eq!(failovers[0].epoch, 10);
    board.on_event(
        &Event::LeaseRenewed {
            permit_remaining_ms: 10_000,
        },
        T0_MS,
    );
    let left = board.lease_remaining_seconds().unwrap();
    assert!(left > 9.0 && left <= 10.0, "{left}");
    let progress = |n| Event::Progress {
        todo_compactions: n,
        todo_compaction_blocks: 2 * n,
        todo_downsample_blocks: Some(n),
        todo_deletion_blocks: 0,
    };
    board.on_event(&progress(1), T0_MS);
    let stream = Event::Stream {
        stream: crate::core::stream::StreamId(7),
        event: Box::new(progress(3)),
    };
    board.on_event(&stream, T0_MS + 1);
    let backlog = board.backlog().unwrap();
    assert_eq!(
        (backlog.todo_compactions, backlog.todo_compaction_blocks),
        (4, 8)
    );
    assert_eq!(backlog.todo_downsample_blocks, Some(4));
    board.on_event(
        &Event::Halted("chunk out of order in block X".into()),
        T0_MS,
    );
    assert!(board.halt().unwrap().fix.contains("no-compact"));
    board.on_event(
        &Event::SteppedDown {
            epoch: 59,
            reason: "lease lost".into(),
        },
        T0_MS,
    );
    assert!(board.halt().is_none());
    assert!(board.lease_remaining_seconds().is_none());
}

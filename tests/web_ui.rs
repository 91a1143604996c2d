//! The block viewer in a real browser: Debian's chromium, headless, driven over WebDriver by
//! chromedriver (`tests/common/webdriver.rs`), against a running compactd.
//!
//! - On SeaweedFS, behind a proxy that slows the store's answers (so that a compaction lasts
//!   long enough to be watched): the page shows the running compaction with its progress; once
//!   the pass is over, as many block rectangles as the bucket has blocks (global view) and as
//!   it has visible blocks (loaded view); a click shows the block's details; the no-compact
//!   button creates the marker in the bucket, stamped by the compactd that committed it;
//!   restarted with `--disable-admin-operations`, the buttons are disabled and the API refuses
//!   (nothing written); no console error throughout. Screenshots go to `target/web-ui/`.
//! - The scale benchmark's shape of bucket (200 streams of 25 blocks: 5,000 blocks) served by
//!   `tools bucket web`: the page draws them all; the time from its fetch to the drawn page is
//!   printed and must stay under 2 s.
//! - Two replicas elected through etcd: the follower's page has the bucket (its own syncs) and
//!   links to the leader's.
//!
//! Skipped with a printed reason when chromium, chromedriver or SeaweedFS is missing; failing
//! under CI=true.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::etcd::Etcd;
use common::proxy::Proxy;
use common::replicas::{wait_for, Cluster, Replica, SLOW};
use common::seaweed::Seaweed;
use common::webdriver::{wait_until, Chromium, Session};
use common::{
    bucket_objects, fs_config, generate_stream, http_get, try_http_get, upload_dir, CompactdRun,
};
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::{BlockMeta, META_FILENAME};
use serde_json::{json, Value};

/// How long the page may take to show what the test waits for.
const PAGE_WAIT: Duration = Duration::from_secs(90);
/// Series per block of the big stream: its compaction reads 4 x 2h of them.
const BIG_SERIES: usize = 20_000;
/// The store's answers to compactd, per connection, while the test watches a compaction.
const SLOW_ANSWERS_BYTES_PER_SECOND: u64 = 4 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Where the screenshots go, for people to look at.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-ui");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The blocks with a meta.json in the bucket, and which of them have a deletion mark.
fn bucket_blocks(config: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let objects = bucket_objects(config);
    let with = |file: &str| -> BTreeSet<String> {
        objects
            .keys()
            .filter_map(|k| k.strip_suffix(&format!("/{file}")))
            .map(str::to_string)
            .collect()
    };
    (with(META_FILENAME), with("deletion-mark.json"))
}

/// `GET /api/v1/compactor`'s data.
async fn compactor(client: &reqwest::Client, base: &str) -> Result<Value> {
    let body = client
        .get(format!("{base}/api/v1/compactor"))
        .send()
        .await?
        .text()
        .await?;
    let v: Value = serde_json::from_str(&body)?;
    Ok(v["data"].clone())
}

/// Opens `url` and waits until the page drew the blocks of its view; returns
/// `window.__compactd`.
async fn open_view(session: &Session, url: &str, view: &str) -> Result<Value> {
    session.goto(url).await?;
    let script = "return window.__compactd || null;";
    wait_until(PAGE_WAIT, &format!("the {view} view drawn"), || async {
        let drawn = session.execute(script, &[]).await?;
        Ok(drawn["view"] == view)
    })
    .await?;
    session.execute(script, &[]).await
}

/// The `data-block-id`s of the drawn blocks.
async fn drawn_blocks(session: &Session) -> Result<BTreeSet<String>> {
    let ids = session
        .execute(
            "return [...document.querySelectorAll('.block')].map(e => e.getAttribute('data-block-id'));",
            &[],
        )
        .await?;
    Ok(ids
        .as_array()
        .context("ids")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

/// The series written so far in a job's text (`... 1234 / 80000 series ...`), if it is the
/// job whose progress ends in `total`.
fn series_done(text: &str, total: &str) -> Option<u64> {
    let before = text[..text.find(total)?].trim_end();
    let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    before[before.len() - digits..].parse().ok()
}

/// Console errors, failed requests and page errors the browser logged since the last call.
async fn severe_log(session: &Session) -> Result<Vec<String>> {
    Ok(session
        .browser_log()
        .await?
        .into_iter()
        .filter(|e| e.level == "SEVERE")
        .map(|e| e.message)
        .collect())
}

#[test]
fn the_block_viewer_shows_blocks_jobs_and_marks_in_a_real_browser() -> Result<()> {
    let rt = runtime();
    let Some(chromium) = rt.block_on(Chromium::start())? else {
        return Ok(());
    };
    let Some(s3) = Seaweed::start() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("src");
    generate_stream(&src, BIG_SERIES, 10, "cluster=big", 1, &[]);
    generate_stream(&src, 300, 24, "cluster=small", 2, &[]);
    let config = s3.objstore_yaml();
    upload_dir(&config, &src);
    let proxy = Proxy::start(s3.endpoint.parse()?);
    let proxied = config.replace(&s3.endpoint, &proxy.addr().to_string());
    proxy.limit_answers(SLOW_ANSWERS_BYTES_PER_SECOND);
    let flags = [
        "--consistency-delay=0s",
        "--delete-delay=1h",
        "--downsampling.disable",
        "--wait-interval=1h",
    ];
    let run = CompactdRun::new(&proxied)
        .data_dir(&tmp.path().join("data"))
        .node("viewer-test")
        .wait()
        .extra(&flags);
    let mut compactd = Replica::spawn(tmp.path(), "compactd", &run.args());
    let base = format!("http://127.0.0.1:{}", compactd.port);
    let client = reqwest::Client::new();
    let session = rt.block_on(chromium.session())?;
    let shots = shots();

    // A running compaction with its progress: the big stream's 4 blocks of the same
    // BIG_SERIES series.
    let total = format!("/ {BIG_SERIES} series");
    rt.block_on(async {
        open_view(&session, &format!("{base}/"), "global").await?;
        wait_until(PAGE_WAIT, "the big compaction with progress", || async {
            let texts = session
                .execute(
                    "return [...document.querySelectorAll('#jobs [data-job-output]')].map(e => e.textContent);",
                    &[],
                )
                .await?;
            Ok(texts.as_array().into_iter().flatten().any(|t| {
                let t = t.as_str().unwrap_or("");
                series_done(t, &total).is_some_and(|done| done > 0)
            }))
        })
        .await?;
        session.screenshot(&shots.join("running-compaction.png")).await
    })
    .with_context(|| format!("compactd log:\n{}", compactd.log_text()))?;
    println!("the page showed the running compaction ({total})");

    // The pass ends: nothing runs, nothing is planned.
    proxy.limit_answers(0);
    rt.block_on(wait_until(PAGE_WAIT, "the pass to end", || async {
        let c = compactor(&client, &base).await?;
        Ok(c["jobs"].as_array().is_some_and(Vec::is_empty)
            && c["plan"].as_array().is_some_and(Vec::is_empty)
            && c["refreshed_at"].is_string())
    }))
    .with_context(|| format!("compactd log:\n{}", compactd.log_text()))?;
    let (blocks, deletion_marked) = bucket_blocks(&config);
    let visible: BTreeSet<String> = blocks.difference(&deletion_marked).cloned().collect();
    ensure!(!deletion_marked.is_empty(), "the pass compacted something");

    // One rectangle per block (global) and per visible block (loaded); details on click; a
    // no-compact mark committed by the compactd.
    let marked = rt.block_on(async {
        let global = open_view(&session, &format!("{base}/blocks"), "global").await?;
        ensure!(
            drawn_blocks(&session).await? == blocks,
            "global view: {global}"
        );
        ensure!(global["rendered"] == json!(blocks.len()));
        let loaded = open_view(&session, &format!("{base}/loaded"), "loaded").await?;
        ensure!(
            drawn_blocks(&session).await? == visible,
            "loaded view: {loaded}"
        );
        let target = visible.iter().next().context("a visible block")?.clone();
        session
            .find(&format!(".block[data-block-id=\"{target}\"]"))
            .await?
            .click()
            .await?;
        wait_until(PAGE_WAIT, "the block's details", || async {
            Ok(session
                .find("#block-details")
                .await?
                .text()
                .await?
                .contains(&target))
        })
        .await?;
        session.screenshot(&shots.join("block-details.png")).await?;
        session
            .find("#mark-detail")
            .await?
            .send_keys("marked by the browser test")
            .await?;
        session
            .find("[data-mark=\"NO_COMPACTION\"]")
            .await?
            .click()
            .await?;
        wait_until(PAGE_WAIT, "the mark's answer", || async {
            let text = session.find("#mark-result").await?.text().await?;
            ensure!(!text.starts_with("error"), "the mark failed: {text}");
            Ok(text.starts_with("marked"))
        })
        .await?;
        let severe = severe_log(&session).await?;
        ensure!(severe.is_empty(), "console errors: {severe:?}");
        Ok(target)
    })?;
    let objects = bucket_objects(&config);
    let marker = objects
        .get(&format!("{marked}/no-compact-mark.json"))
        .context("the no-compact mark in the bucket")?;
    let marker: Value = serde_json::from_slice(marker)?;
    assert_eq!(marker["details"], "marked by the browser test");
    assert_eq!(marker["reason"], "manual");
    assert_eq!(marker["compactd"]["holder"], "viewer-test", "{marker}");
    // Off the page before its server goes, so that its polling does not log a refused
    // connection.
    rt.block_on(session.goto("about:blank"))?;
    compactd.kill9();

    // With --disable-admin-operations: buttons disabled, the API refuses, nothing written.
    let flags: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--disable-admin-operations"])
        .collect();
    let run = CompactdRun::new(&config)
        .data_dir(&tmp.path().join("data"))
        .node("viewer-test")
        .wait()
        .extra(&flags);
    let compactd = Replica::spawn(tmp.path(), "compactd-no-admin", &run.args());
    let base = format!("http://127.0.0.1:{}", compactd.port);
    let before = bucket_objects(&config);
    rt.block_on(async {
        open_view(&session, &format!("{base}/"), "global").await?;
        session
            .find(&format!(".block[data-block-id=\"{marked}\"]"))
            .await?
            .click()
            .await?;
        wait_until(PAGE_WAIT, "the buttons disabled", || async {
            let disabled = session
                .find("[data-mark=\"DELETION\"]")
                .await?
                .attribute("disabled")
                .await?;
            let said = session.find("#mark-result").await?.text().await?;
            Ok(disabled.is_some() && said.contains("disabled"))
        })
        .await?;
        let severe = severe_log(&session).await?;
        ensure!(severe.is_empty(), "console errors: {severe:?}");
        let answer = session
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(window.PATH_PREFIX + '/api/v1/blocks/mark', {method: 'POST',
                   headers: {'content-type': 'application/x-www-form-urlencoded'},
                   body: 'id=' + arguments[0] + '&action=DELETION&detail=x'})
                 .then(r => r.json().then(b => done({status: r.status, body: b})));",
                &[json!(marked)],
            )
            .await?;
        ensure!(answer["status"] == 400, "{answer}");
        ensure!(answer["body"]["error"] == "Admin operations are disabled");
        session.screenshot(&shots.join("admin-disabled.png")).await
    })?;
    let after = bucket_objects(&config);
    let new: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        new.iter().all(|k| !k.ends_with("deletion-mark.json")),
        "a refused mark wrote {new:?}"
    );
    rt.block_on(session.close())?;
    Ok(())
}

/// Writes the scale benchmark's shape of bucket into `dir`: `streams` external label sets of
/// `per_stream` 2h blocks each. Only meta.json is written: the viewer reads nothing else.
fn write_meta_bucket(dir: &Path, streams: usize, per_stream: usize) -> usize {
    let start = 1_735_689_600_000_i64;
    let two_hours = 2 * 3_600_000_i64;
    for s in 0..streams {
        for b in 0..per_stream {
            let min = start + b as i64 * two_hours;
            let id = BlockId::from_parts(min as u64, ((s as u128) << 32) | b as u128);
            let mut meta = BlockMeta::level1(id, min, min + two_hours);
            meta.stats.num_series = 10;
            meta.stats.num_samples = 4_800;
            meta.stats.num_chunks = 40;
            meta.thanos.get_or_insert_with(Default::default).labels =
                BTreeMap::from([("cluster".to_string(), format!("c{s:04}"))]);
            let block = dir.join(id.to_string());
            std::fs::create_dir_all(&block).expect("block dir");
            std::fs::write(block.join(META_FILENAME), meta.to_json()).expect("meta.json");
        }
    }
    streams * per_stream
}

#[test]
fn five_thousand_blocks_render_in_under_two_seconds() -> Result<()> {
    let rt = runtime();
    let Some(chromium) = rt.block_on(Chromium::start())? else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let bucket = tmp.path().join("bucket");
    let count = write_meta_bucket(&bucket, 200, 25);
    let args: Vec<String> = [
        "tools",
        "bucket",
        "web",
        "--objstore.config",
        &fs_config(&bucket),
        "--http-address",
        "127.0.0.1:0",
        "--label",
        "cluster",
    ]
    .map(str::to_string)
    .to_vec();
    let web = Replica::spawn(tmp.path(), "web", &args);
    let base = format!("http://127.0.0.1:{}", web.port);
    let session = rt.block_on(chromium.session())?;
    let drawn = rt.block_on(async {
        // The first answer may come before the first sync: wait for the full view.
        let mut drawn = open_view(&session, &format!("{base}/"), "global").await?;
        for _ in 0..20 {
            if drawn["rendered"] == json!(count) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            drawn = open_view(&session, &format!("{base}/"), "global").await?;
        }
        // Measured on a page load that found the view ready.
        let drawn = open_view(&session, &format!("{base}/"), "global").await?;
        session
            .screenshot(&shots().join("five-thousand-blocks.png"))
            .await?;
        let severe = severe_log(&session).await?;
        ensure!(severe.is_empty(), "console errors: {severe:?}");
        Ok(drawn)
    })?;
    assert_eq!(drawn["rendered"], json!(count), "{drawn}");
    let ms = drawn["renderMs"].as_f64().expect("renderMs");
    println!("{count} blocks: fetched and drawn in {ms:.0} ms (limit 2000 ms)");
    assert!(ms < 2000.0, "{count} blocks took {ms:.0} ms to render");
    rt.block_on(session.close())?;
    Ok(())
}

/// An elected follower syncs nothing of its own: its page's global view comes from its own
/// sync every `--block-viewer.global.sync-block-interval`, and it links to the leader's page
/// (`--web.node-url-template`).
#[test]
fn a_follower_shows_the_bucket_and_links_to_its_leader() {
    let Some(etcd) = Etcd::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let bucket = tmp.path().join("bucket");
    generate_stream(&bucket, 50, 12, "cluster=a", 1, &[]);
    let config = fs_config(&bucket);
    let cluster = Cluster::new(&etcd, tmp.path(), &config, "viewer-follower")
        .with_flags(&[
            "--web.node-url-template=http://{node}.compactd:10902",
            "--block-viewer.global.sync-block-interval=1s",
        ])
        .with_replicas(2);
    let ((leader, _), _) = cluster.agreed_leader(SLOW);
    let leader_name = cluster.replicas[leader].name.clone();
    let follower = &cluster.replicas[1 - leader];
    let (status, _) = wait_for(SLOW, "the follower's global view", || {
        let (_, body) = try_http_get(follower.port, "/api/v1/blocks?view=global").ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let blocks = v["data"]["blocks"].as_array()?.len();
        (blocks > 0 && v["data"]["refreshedAt"].is_string()).then_some(v)
    });
    assert!(status["data"]["err"].is_null(), "{status}");
    let (_, body) = http_get(follower.port, "/api/v1/compactor");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["data"]["role"], "follower", "{v}");
    assert_eq!(
        v["data"]["leader_url"],
        format!("http://{leader_name}.compactd:10902")
    );
    let (_, body) = http_get(cluster.replicas[leader].port, "/api/v1/compactor");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["data"]["role"], "leader", "{v}");
    assert!(v["data"]["leader_url"].is_null());
}

//! Self-test of the WebDriver client (`tests/common/webdriver.rs`) against a real headless
//! Chromium: a static page served from this test (axum on loopback) with a button that adds
//! list items, a text input and a button that calls `console.error`. The checks include the
//! failures (a missing element, a throwing script, a wait that times out, a console error in
//! the log) so that a client that cannot fail does not pass.
//!
//! Skipped with a printed reason when chromium or chromedriver is missing, failing under
//! CI=true.

mod common;

use std::time::Duration;

use anyhow::Result;
use axum::response::Html;
use axum::routing::get;
use common::webdriver::{wait_until, Chromium};
use serde_json::json;

/// The page under test. The empty icon keeps Chromium from asking for /favicon.ico (a 404
/// would be a SEVERE entry in the browser log).
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>webdriver self-test</title>
<link rel="icon" href="data:,"></head>
<body>
<button id="add" data-count="0">add</button>
<button id="fail">fail</button>
<input id="name">
<ul id="list"></ul>
<script>
const add = document.getElementById('add');
let clicks = 0;
add.addEventListener('click', () => {
  const n = ++clicks;
  // Later than the click, so that waiting for it is needed.
  setTimeout(() => {
    const li = document.createElement('li');
    li.className = 'item';
    li.textContent = 'item ' + n;
    document.getElementById('list').append(li);
    add.dataset.count = n;
  }, 100);
});
document.getElementById('fail').addEventListener('click', () => {
  console.error('boom from the page', 7);
});
</script>
</body></html>
"#;

/// Serves [`PAGE`] at `/` on a loopback port; its URL.
async fn serve_page() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let app = axum::Router::new().route("/", get(|| async { Html(PAGE) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Clicks, texts, attributes, typing, scripts (sync and async, with an element argument) and
/// a screenshot; a missing element, a throwing script and a wait that times out are errors
/// that name their command.
#[tokio::test]
async fn drives_the_page_and_reports_failures() -> Result<()> {
    let Some(chromium) = Chromium::start().await? else {
        return Ok(());
    };
    let url = serve_page().await?;
    let s = chromium.session().await?;
    s.goto(&url).await?;
    assert_eq!(s.current_url().await?, url);
    assert_eq!(
        s.execute("return document.title", &[]).await?,
        "webdriver self-test"
    );

    assert_eq!(s.find_all("#list li").await?.len(), 0);
    let add = s.find("#add").await?;
    assert_eq!(add.attribute("data-count").await?.as_deref(), Some("0"));
    assert_eq!(add.attribute("no-such-attribute").await?, None);
    add.click().await?;
    add.click().await?;
    let two = || async { Ok(s.find_all("#list li.item").await?.len() == 2) };
    wait_until(Duration::from_secs(5), "two list items", two).await?;
    let mut texts = Vec::new();
    for li in s.find_all("#list li").await? {
        texts.push(li.text().await?);
    }
    assert_eq!(texts, ["item 1", "item 2"]);
    assert_eq!(add.attribute("data-count").await?.as_deref(), Some("2"));
    assert_eq!(add.text().await?, "add");

    s.find("#name").await?.send_keys("hello").await?;
    let value = "return document.getElementById('name').value";
    assert_eq!(s.execute(value, &[]).await?, "hello");
    let sum = "return arguments[0] + arguments[1]";
    assert_eq!(s.execute(sum, &[json!(2), json!(3)]).await?, 5);
    let tag = s
        .execute("return arguments[0].tagName", &[add.as_arg()])
        .await?;
    assert_eq!(tag, "BUTTON");
    let later = "const done = arguments[arguments.length - 1]; setTimeout(() => done(42), 10)";
    assert_eq!(s.execute_async(later, &[]).await?, 42);

    let missing = s
        .find("#nothing-here")
        .await
        .err()
        .expect("no #nothing-here");
    let missing = format!("{missing:#}");
    assert!(
        missing.contains("/element") && missing.contains("no such element"),
        "{missing}"
    );
    let thrown = s
        .execute("throw new Error('bad script')", &[])
        .await
        .unwrap_err();
    let thrown = format!("{thrown:#}");
    assert!(
        thrown.contains("/execute/sync") && thrown.contains("bad script"),
        "{thrown}"
    );
    let never = || async { Ok(s.find_all("#list li").await?.len() == 3) };
    let waited = wait_until(Duration::from_millis(300), "three items", never).await;
    let waited = format!("{:#}", waited.unwrap_err());
    assert!(
        waited.contains("timed out") && waited.contains("three items"),
        "{waited}"
    );

    let dir = tempfile::tempdir()?;
    let png = dir.path().join("page.png");
    s.screenshot(&png).await?;
    let bytes = std::fs::read(&png)?;
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 1000, "a {} byte screenshot", bytes.len());
    s.close().await?;
    Ok(())
}

/// The browser log is empty after loading the page and holds the page's `console.error` at
/// SEVERE after the click; each entry is handed out once.
#[tokio::test]
async fn browser_log_reports_console_errors() -> Result<()> {
    let Some(chromium) = Chromium::start().await? else {
        return Ok(());
    };
    let url = serve_page().await?;
    let s = chromium.session().await?;
    s.goto(&url).await?;
    assert_eq!(s.browser_log().await?, []);

    s.find("#fail").await?.click().await?;
    let log = s.browser_log().await?;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].level, "SEVERE", "{log:?}");
    assert_eq!(log[0].source, "console-api", "{log:?}");
    assert!(log[0].message.contains("boom from the page"), "{log:?}");
    assert_eq!(s.browser_log().await?, []);
    s.close().await?;
    Ok(())
}

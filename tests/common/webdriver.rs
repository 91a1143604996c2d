//! A small W3C WebDriver client for real-browser tests of the web UI: Debian's `chromium`
//! driven by its `chromedriver` (package `chromium-driver`, installed by
//! `scripts/deps.sh test`), spoken to over HTTP with `reqwest` and `serde_json`.
//!
//! [`Chromium::start`] runs chromedriver on a free loopback port (SIGKILLed by the kernel if
//! the test thread dies, `PR_SET_PDEATHSIG`; asked to `/shutdown` on drop, which quits every
//! browser it started). [`Chromium::session`] opens a headless browser with a fresh profile;
//! a [`Session`] navigates, runs scripts, finds [`Element`]s by CSS selector, takes
//! screenshots and reads the browser's console log ([`Session::browser_log`]). Every failed
//! command is an error naming the command and carrying chromedriver's error JSON.
//!
//! A missing chromium or chromedriver is a printed skip ([`Chromium::start`] answers
//! `Ok(None)`), or a panic under CI=true, as `require_tool` does for the other tools.
//! `COMPACTD_CHROMEDRIVER` and `COMPACTD_CHROMIUM` name other binaries; a name that is not a
//! file counts as missing.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

/// Start attempts (chromedriver exits when another process took its port first).
const STARTS_MAX: u32 = 3;
/// How long chromedriver may take to answer `/status` with `ready: true`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest one command may take (a new session starts a browser: a few seconds).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long chromedriver may take to exit after `/shutdown` before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The W3C key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver; stopped (with every browser it started) on drop.
pub struct Chromium {
    child: Child,
    chromium: PathBuf,
    driver: Driver,
    /// Holds chromedriver's log (`chromedriver.log`).
    _dir: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver, or returns `Ok(None)` after printing "SKIPPED" when chromium or
    /// chromedriver is not installed (a panic under CI=true). An installed chromedriver that
    /// does not become ready is an error.
    pub async fn start() -> Result<Option<Chromium>> {
        let Some(chromedriver) = find_binary("chromedriver", "COMPACTD_CHROMEDRIVER") else {
            return Ok(None);
        };
        let Some(chromium) = find_binary("chromium", "COMPACTD_CHROMIUM") else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("compactd-chromedriver-")
            .tempdir()?;
        let log = dir.path().join("chromedriver.log");
        for _ in 0..STARTS_MAX {
            let port = free_port()?;
            let driver = Driver::new(port)?;
            let mut child = spawn(&chromedriver, port, &log)?;
            if wait_ready(&mut child, &driver).await? {
                return Ok(Some(Chromium {
                    child,
                    chromium,
                    driver,
                    _dir: dir,
                }));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let path = chromedriver.display();
        bail!("{path} did not become ready in {STARTS_MAX} attempts; its log:\n{log}")
    }

    /// chromedriver's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.driver.base
    }

    /// Opens a new headless browser session with a fresh profile directory and every browser
    /// log entry kept (for [`Session::browser_log`]).
    pub async fn session(&self) -> Result<Session> {
        let profile = tempfile::Builder::new()
            .prefix("compactd-chromium-profile-")
            .tempdir()?;
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            // Without these Chromium's own connections are refused on a closed network.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1600,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
                // Debian's default first tab is the new tab page, which navigates to
                // https://start.duckduckgo.com/: on a closed network chromedriver's first
                // command then waits up to a DNS timeout (5 s) for that navigation to fail.
                "prefs": {
                    "session.restore_on_startup": 4,
                    "session.startup_urls": ["about:blank"],
                },
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let body = json!({ "capabilities": { "alwaysMatch": caps } });
        let value = self
            .driver
            .call(Method::POST, "/session", Some(body))
            .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("new session: no sessionId in {value}"))?;
        Ok(Session {
            driver: self.driver.clone(),
            path: format!("/session/{id}"),
            open: true,
            _profile: profile,
        })
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // chromedriver's /shutdown quits the browsers of sessions still open; a kill would
        // leave them running.
        let _ = blocking_request(self.driver.port, "GET", "/shutdown");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser (a WebDriver session); deleted by [`Session::close`] or on drop.
pub struct Session {
    driver: Driver,
    /// `/session/{id}`.
    path: String,
    open: bool,
    /// The browser's `--user-data-dir`, deleted after the session.
    _profile: tempfile::TempDir,
}

/// One entry of the browser's console log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// `SEVERE` (console.error, failed loads, uncaught exceptions), `WARNING`, `INFO` or
    /// `DEBUG`.
    pub level: String,
    /// Where it came from: `console-api`, `javascript`, `network`, ...
    pub source: String,
    /// The text, as chromedriver gives it (`console-api 12:8 "message"` for console calls).
    pub message: String,
}

impl Session {
    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> Result<String> {
        let v = self.get("/url").await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` as a function body with `args` as `arguments` (an [`Element::as_arg`]
    /// becomes the DOM element); the JSON of what it returns.
    pub async fn execute(&self, script: &str, args: &[Value]) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        self.post("/execute/sync", body).await
    }

    /// Like [`Session::execute`], but the script finishes by calling its last argument (the
    /// callback) with the result, e.g. `arguments[arguments.length - 1](42)`.
    pub async fn execute_async(&self, script: &str, args: &[Value]) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        self.post("/execute/async", body).await
    }

    /// Every element matching the CSS selector, in document order (none is not an error).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let body = json!({ "using": "css selector", "value": css });
        let found = self.post("/elements", body).await?;
        let found = found
            .as_array()
            .ok_or_else(|| anyhow!("find_all({css:?}): not an array: {found}"))?;
        found.iter().map(|v| self.element(v)).collect()
    }

    /// The first element matching the CSS selector; an error ("no such element") if none.
    pub async fn find(&self, css: &str) -> Result<Element<'_>> {
        let body = json!({ "using": "css selector", "value": css });
        let found = self.post("/element", body).await?;
        self.element(&found)
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.get("/screenshot").await?;
        let b64 = v
            .as_str()
            .ok_or_else(|| anyhow!("screenshot: not a string"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("screenshot: base64")?;
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))
    }

    /// The browser log entries since the previous call (chromedriver hands each entry out
    /// once): console calls, uncaught exceptions, failed loads.
    pub async fn browser_log(&self) -> Result<Vec<LogEntry>> {
        let v = self.post("/se/log", json!({ "type": "browser" })).await?;
        let entries = v
            .as_array()
            .ok_or_else(|| anyhow!("browser_log: not an array: {v}"))?;
        let field = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
        Ok(entries
            .iter()
            .map(|e| LogEntry {
                level: field(e, "level"),
                source: field(e, "source"),
                message: field(e, "message"),
            })
            .collect())
    }

    /// Deletes the session (the browser quits). Dropping the session does the same, but
    /// blocks and ignores errors.
    pub async fn close(mut self) -> Result<()> {
        self.open = false;
        self.driver
            .call(Method::DELETE, &self.path, None)
            .await
            .map(drop)
    }

    fn element(&self, v: &Value) -> Result<Element<'_>> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow!("not an element reference: {v}"))?;
        Ok(Element {
            session: self,
            id: id.to_string(),
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let path = format!("{}{path}", self.path);
        self.driver.call(Method::GET, &path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let path = format!("{}{path}", self.path);
        self.driver.call(Method::POST, &path, Some(body)).await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.open {
            let _ = blocking_request(self.driver.port, "DELETE", &self.path);
        }
    }
}

/// An element of the current page, found by [`Session::find`] or [`Session::find_all`].
pub struct Element<'s> {
    session: &'s Session,
    id: String,
}

impl Element<'_> {
    /// Clicks the element's center (scrolled into view; an error if something covers it).
    pub async fn click(&self) -> Result<()> {
        self.post("/click", json!({})).await.map(drop)
    }

    /// The rendered text (`innerText`: hidden elements give "").
    pub async fn text(&self) -> Result<String> {
        let v = self.get("/text").await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The attribute's value, or `None` when the element has no such attribute.
    pub async fn attribute(&self, name: &str) -> Result<Option<String>> {
        let v = self.get(&format!("/attribute/{name}")).await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Types `text` into the element (an input, a textarea), as key presses.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.post("/value", json!({ "text": text })).await.map(drop)
    }

    /// The element as an argument of [`Session::execute`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.session
            .get(&format!("/element/{}{path}", self.id))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.session
            .post(&format!("/element/{}{path}", self.id), body)
            .await
    }
}

/// Polls `predicate` every 50 ms until it answers true; an error naming `what` once `timeout`
/// has passed. An error of the predicate ends the wait at once.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut predicate: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if predicate()
            .await
            .with_context(|| format!("waiting for {what}"))?
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// chromedriver's HTTP endpoint.
#[derive(Clone)]
struct Driver {
    http: reqwest::Client,
    base: String,
    port: u16,
}

impl Driver {
    fn new(port: u16) -> Result<Driver> {
        let http = reqwest::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        Ok(Driver { http, base, port })
    }

    /// One WebDriver command: its `value` on success; on failure an error naming the
    /// command and holding the error JSON (without chromedriver's stack trace).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let command = format!("WebDriver {method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.with_context(|| command.clone())?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| command.clone())?;
        let mut json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{command}: HTTP {status}, not JSON: {text}"))?;
        let value = json["value"].take();
        if status.is_success() && value.get("error").is_none() {
            return Ok(value);
        }
        let mut error = value;
        if let Some(e) = error.as_object_mut() {
            e.remove("stacktrace");
        }
        bail!("{command} failed: HTTP {status}: {error}")
    }
}

/// The binary named by `env` (which must then be a file), else `/usr/bin/NAME`, else NAME on
/// the PATH; `None` with a printed skip when missing (a panic under CI=true).
fn find_binary(name: &str, env: &str) -> Option<PathBuf> {
    let (path, missing) = match std::env::var_os(env) {
        Some(p) => {
            let why = format!("{env}={} is not a file", p.to_string_lossy());
            (Some(PathBuf::from(p)).filter(|p| p.is_file()), why)
        }
        None => {
            let usr = Path::new("/usr/bin").join(name);
            let path = Some(usr).filter(|p| p.is_file());
            let why = format!("no /usr/bin/{name}, none on the PATH");
            (path.or_else(|| super::which(name)), why)
        }
    };
    if path.is_none() {
        let msg =
            format!("chromium/chromedriver not installed ({missing}): run scripts/deps.sh test");
        assert!(!super::in_ci(), "CI=true and {msg}");
        eprintln!("SKIPPED: {msg}");
    }
    path
}

/// Spawns chromedriver on `port`, its output to `log`; SIGKILLed if the test thread dies.
fn spawn(chromedriver: &Path, port: u16, log: &Path) -> Result<Child> {
    let out = std::fs::File::create(log)?;
    let mut cmd = Command::new(chromedriver);
    cmd.arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("spawn {}", chromedriver.display()))
}

/// Polls `/status` until it says ready (true), or until chromedriver exits (it lost the port
/// to another process) or the timeout passes (false).
async fn wait_ready(child: &mut Child, driver: &Driver) -> Result<bool> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(false);
        }
        if let Ok(status) = driver.call(Method::GET, "/status", None).await {
            if status["ready"] == true {
                return Ok(true);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A bodiless HTTP request for the `Drop`s, which cannot await.
fn blocking_request(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(STOP_GRACE))?;
    stream.set_write_timeout(Some(STOP_GRACE))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

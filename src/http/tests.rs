use super::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Bound on every network step of a test, so a hang fails instead of blocking CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed HTTP/1.1 response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one `GET path` with `extra` header lines over a fresh connection.
async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    exchange(addr, &request).await
}

/// Sends `request` over a fresh connection and reads the whole reply.
async fn exchange(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = String::new();
    tokio::time::timeout(TEST_TIMEOUT, stream.read_to_string(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    parse_reply(&raw)
}

fn parse_reply(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .expect("status code")
        .parse()
        .expect("numeric status");
    let headers = lines
        .map(|line| line.split_once(": ").expect("header line"))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Starts a server on an ephemeral port; returns its address, state, shutdown trigger and
/// task.
async fn start() -> (
    SocketAddr,
    Arc<HttpState>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let state = Arc::new(HttpState::new(Arc::new(Metrics::new("test-bucket"))));
    let (stop, stopped) = oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(serve(listener, Arc::clone(&state), None, signal));
    (addr, state, stop, task)
}

#[tokio::test]
async fn endpoints_answer_like_thanos_and_shutdown_stops_the_server() {
    let (addr, state, stop, task) = start().await;

    let healthy = get(addr, "/-/healthy", "").await;
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.body, "OK");
    assert_eq!(healthy.header("content-type"), Some(TEXT_CONTENT_TYPE));

    let not_ready = get(addr, "/-/ready", "").await;
    assert_eq!(not_ready.status, 503);
    assert_eq!(not_ready.body, "NOT OK: starting\n");
    state.set_ready();
    let ready = get(addr, "/-/ready", "").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body, "OK");

    let index = get(addr, "/", "").await;
    assert_eq!(index.status, 200);
    assert!(index.body.contains("/api/v1/leader"));
    assert_eq!(get(addr, "/nope", "").await.status, 404);

    stop.send(()).expect("server still running");
    let served = tokio::time::timeout(TEST_TIMEOUT, task)
        .await
        .expect("shutdown in time")
        .expect("join");
    assert!(served.is_ok());
    assert!(state.readiness().is_err());
    assert!(!state.is_healthy());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn metrics_negotiate_openmetrics_and_track_probes() {
    let (addr, state, stop, task) = start().await;

    let accept =
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n";
    let open = get(addr, "/metrics", accept).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(open.body.ends_with("# EOF\n"));
    assert!(open.body.contains("thanos_compact_iterations_total 0\n"));
    assert!(open
        .body
        .contains("thanos_status{check=\"healthy\",component=\"compact\"} 1\n"));
    assert!(open
        .body
        .contains("thanos_status{check=\"ready\",component=\"compact\"} 0\n"));

    let plain = get(addr, "/metrics", "").await;
    assert_eq!(
        plain.header("content-type"),
        Some(PROMETHEUS_TEXT_CONTENT_TYPE)
    );
    assert!(!plain.body.contains("# EOF"));
    assert!(plain
        .body
        .contains("# TYPE thanos_compact_iterations_total counter\n"));

    state.set_ready();
    let after = get(addr, "/metrics", accept).await;
    assert!(after
        .body
        .contains("thanos_status{check=\"ready\",component=\"compact\"} 1\n"));

    stop.send(()).expect("server still running");
    tokio::time::timeout(TEST_TIMEOUT, task)
        .await
        .expect("shutdown in time")
        .expect("join")
        .expect("serve");
}

#[tokio::test]
async fn leader_endpoint_reports_the_published_leader() {
    let (addr, state, stop, task) = start().await;

    let none = get(addr, "/api/v1/leader", "").await;
    assert_eq!(none.status, 200);
    assert_eq!(none.header("content-type"), Some(JSON_CONTENT_TYPE));
    assert_eq!(none.body, r#"{"leader":"","epoch":0,"since":""}"#);

    state.set_leader("eu-1/compactd-0", 42, "2025-01-02T03:04:05Z");
    let some = get(addr, "/api/v1/leader", "").await;
    assert_eq!(
        some.body,
        r#"{"leader":"eu-1/compactd-0","epoch":42,"since":"2025-01-02T03:04:05Z"}"#
    );

    state.clear_leader();
    assert_eq!(state.leader(), LeaderStatus::default());

    stop.send(()).expect("server still running");
    tokio::time::timeout(TEST_TIMEOUT, task)
        .await
        .expect("shutdown in time")
        .expect("join")
        .expect("serve");
}

#[test]
fn addresses_parse_like_go() {
    assert_eq!(
        parse_address("0.0.0.0:10902").expect("ipv4"),
        ("0.0.0.0".to_owned(), 10902)
    );
    assert_eq!(
        parse_address(":10902").expect("empty host"),
        ("0.0.0.0".to_owned(), 10902)
    );
    assert_eq!(
        parse_address("[::1]:9090").expect("ipv6"),
        ("::1".to_owned(), 9090)
    );
    assert_eq!(
        parse_address("localhost:1").expect("name"),
        ("localhost".to_owned(), 1)
    );
    for bad in [
        "10902",
        "host:",
        "host:http",
        "host:70000",
        "::1:80",
        "[::1:80",
        "[nope]:80",
    ] {
        let error = parse_address(bad).expect_err(bad).to_string();
        assert!(
            error.contains("--http-address") && error.contains(bad),
            "{error}"
        );
    }
}

#[tokio::test]
async fn bind_reports_the_address_in_use() {
    let first = bind("127.0.0.1:0").await.expect("bind");
    let taken = first.local_addr().expect("local addr").to_string();
    let error = bind(&taken).await.expect_err("port in use");
    assert!(matches!(error, HttpError::Bind { .. }));
    assert!(error.to_string().contains(&taken));
}

/// Sends one `POST path` with `body`.
async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, &request).await
}

/// `POST /api/v1/admin/commit`: a malformed body is 400, no node yet 503; with the node
/// connected the request reaches it as `Input::Admin` and its answer is relayed (409 for a
/// stopped request); disabled, 403 before anything reaches the node.
#[tokio::test]
async fn admin_requests_reach_the_node_and_its_answer_comes_back() {
    use crate::core::admin::AdminOutcome;
    let (addr, state, stop, task) = start().await;
    let path = "/api/v1/admin/commit";
    let body = r#"{"stream": null, "ops": [{"DeleteBlock": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}]}"#;
    let reply = post(addr, path, "{not json").await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("malformed request body"),
        "{}",
        reply.body
    );
    assert_eq!(post(addr, path, body).await.status, 503);

    let (node, mut inputs) = tokio::sync::mpsc::unbounded_channel();
    state.admin.connect(node);
    let answering = Arc::clone(&state);
    let answer = tokio::spawn(async move {
        let Some(crate::core::types::Input::Admin(request)) = inputs.recv().await else {
            panic!("no operator request reached the node");
        };
        assert_eq!(request.ops.len(), 1);
        let outcome = AdminOutcome {
            committed: 0,
            existed: 0,
            error: Some("this replica does not lead here".into()),
            epoch: 0,
        };
        answering.admin.answer(request.id, outcome);
        inputs
    });
    let reply = post(addr, path, body).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(reply.body.contains("does not lead here"), "{}", reply.body);
    let mut inputs = answer.await.expect("the node's side");

    state.admin.disable();
    let reply = post(addr, path, body).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        inputs.try_recv().is_err(),
        "a disabled request reached the node"
    );
    stop.send(()).expect("stop");
    task.await.expect("join").expect("serve");
}

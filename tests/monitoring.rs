//! The monitoring kit in `docs/monitoring/` and the metrics it relies on, against a real
//! process: `compactd run --wait` on a generated bucket is scraped once an iteration finished.
//!
//! - the `process_*` metrics of that scrape are plausible (resident memory, open descriptors,
//!   start time, CPU spent) and `thanos_build_info` carries Go's version-collector labels;
//! - `promtool check rules` accepts `alerts.yaml` and `promtool test rules` passes
//!   `alerts_test.yaml`, which holds a firing and a silent case for every alert; every alert has
//!   a `for`, a severity and a runbook that exists in `docs/operations.md`;
//! - every PromQL expression of `dashboard.json` parses (as recording rules for `promtool
//!   check rules`, with Grafana's variables filled in);
//! - every metric name used by the dashboard, the alerts and the alert tests' input series is
//!   one the scraped compactd exports, and so is every label the input series give it.

mod common;
#[path = "monitoring/parse.rs"]
mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use parse::{metric_names, parse_labels, samples, value};

/// Labels Prometheus adds to every scraped series (target labels), not compactd.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// Severities the Thanos mixin uses.
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];
/// How long the scraped compactd may take to finish its first iteration.
const FIRST_ITERATION_TIMEOUT: Duration = Duration::from_secs(120);

fn kit(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/monitoring")
        .join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs promtool and asserts that it succeeds; returns its output.
fn promtool_ok(promtool: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    println!("promtool {}:\n{text}", args.join(" "));
    text
}

/// The `/metrics` of a `compactd run --wait` (Prometheus text format) once its first
/// iteration compacted a small two-stream bucket; scraped once and shared by the tests.
fn scrape() -> &'static str {
    static SCRAPE: OnceLock<String> = OnceLock::new();
    SCRAPE.get_or_init(scrape_running_compactd)
}

fn scrape_running_compactd() -> String {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    generate_streams(&bucket, 10, 24);
    let config = fs_config(&bucket);
    let data = tmp.path().join("data");
    let child = CompactdRun::new(&config)
        .wait()
        .wait_interval("1h")
        .data_dir(&data)
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn compactd");
    let mut child = KillOnDrop(child);
    let port =
        common::stderr::StderrLog::follow(child.0.stderr.take().expect("piped stderr")).port();
    let deadline = Instant::now() + FIRST_ITERATION_TIMEOUT;
    let metrics = loop {
        let (status, body) = http_get(port, "/metrics");
        assert_eq!(status, 200);
        if body.contains("thanos_compact_iterations_total 1") {
            break body;
        }
        assert!(Instant::now() < deadline, "no iteration finished:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let status = child.0.wait().expect("wait for compactd");
    assert_eq!(status.code(), Some(0), "SIGTERM ends a --wait run cleanly");
    metrics
}

#[test]
fn process_metrics_of_a_running_compactd_are_plausible() {
    let exposition = scrape();
    let samples = samples(exposition);
    let gib = 1024.0 * 1024.0 * 1024.0;
    let rss = value(&samples, "process_resident_memory_bytes");
    assert!(rss > 0.0 && rss < gib, "resident memory {rss}");
    assert!(value(&samples, "process_virtual_memory_bytes") >= rss);
    let open_fds = value(&samples, "process_open_fds");
    assert!(open_fds > 0.0, "open fds {open_fds}");
    assert!(value(&samples, "process_max_fds") >= open_fds);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let age = now - value(&samples, "process_start_time_seconds");
    // The boot time in /proc/stat has whole seconds, so the start may read up to 1 s late.
    assert!(
        (-2.0..600.0).contains(&age),
        "started {age} s ago by process_start_time_seconds"
    );
    let cpu = value(&samples, "process_cpu_seconds_total");
    assert!(
        cpu > 0.0,
        "a compaction iteration ran, yet {cpu} CPU seconds"
    );
    for (family, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("thanos_build_info", "gauge"),
    ] {
        let line = format!("# TYPE {family} {kind}");
        assert!(exposition.lines().any(|l| l == line), "missing {line:?}");
    }
    let build = samples
        .iter()
        .find(|s| s.name == "thanos_build_info")
        .expect("thanos_build_info exported");
    let names: Vec<&str> = build.labels.keys().map(String::as_str).collect();
    let expected = [
        "branch",
        "goarch",
        "goos",
        "goversion",
        "revision",
        "tags",
        "version",
    ];
    assert_eq!(names, expected);
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build.value, 1.0);
    report_figure(&format!(
        "compactd after one iteration: {:.1} MiB resident, {open_fds} open fds, {cpu} CPU seconds",
        rss / 1024.0 / 1024.0
    ));
}

/// Every `(alert name, rule)` of a rules file.
fn alert_rules(rules: &serde_yaml_ng::Value) -> Vec<(String, serde_yaml_ng::Value)> {
    let groups = rules["groups"].as_sequence().expect("groups");
    groups
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules").iter())
        .filter_map(|rule| Some((rule["alert"].as_str()?.to_owned(), rule.clone())))
        .collect()
}

/// The `### Name` headings of the "## Alerts and runbooks" section of docs/operations.md.
fn runbook_headings() -> BTreeSet<String> {
    let operations = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"));
    let section = operations
        .split("\n## Alerts and runbooks\n")
        .nth(1)
        .expect("docs/operations.md has \"## Alerts and runbooks\"");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|heading| heading.trim().to_owned())
        .collect()
}

/// The alerts `alerts_test.yaml` expects to fire at some evaluation, and those it expects to
/// stay silent at some evaluation.
fn tested_outcomes() -> (BTreeSet<String>, BTreeSet<String>) {
    let tests = yaml(&kit("alerts_test.yaml"));
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for case in tests["tests"].as_sequence().expect("tests") {
        for check in case["alert_rule_test"].as_sequence().expect("alert tests") {
            let name = check["alertname"].as_str().expect("alertname").to_owned();
            let expected = check["exp_alerts"].as_sequence().map_or(0, Vec::len);
            if expected > 0 {
                fires.insert(name);
            } else {
                silent.insert(name);
            }
        }
    }
    (fires, silent)
}

#[test]
fn alert_rules_are_complete_and_pass_their_promtool_unit_tests() {
    let rules = yaml(&kit("alerts.yaml"));
    let alerts = alert_rules(&rules);
    let names: BTreeSet<&str> = alerts.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "ThanosCompactHalted",
        "ThanosCompactHighCompactionFailures",
        "ThanosCompactBucketHighOperationFailures",
        "ThanosCompactHasNotRun",
        "CompactdNoLeader",
        "CompactdMultipleLeaders",
        "CompactdFenceConflicts",
        "CompactdPermitExpiredWrites",
        "CompactdSlowFailover",
    ] {
        assert!(names.contains(expected), "alerts.yaml lacks {expected}");
    }
    assert!(
        !names.contains("ThanosCompactMultipleRunning"),
        "ThanosCompactMultipleRunning fires for every HA deployment"
    );
    let headings = runbook_headings();
    for (name, rule) in &alerts {
        assert!(rule["for"].as_str().is_some(), "{name} has no `for`");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            SEVERITIES.contains(&severity),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][annotation].as_str().is_some(),
                "{name} has no {annotation}"
            );
        }
        let runbook = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = format!("docs/operations.md#{}", name.to_lowercase());
        assert_eq!(runbook, anchor, "{name}: runbook_url");
        assert!(headings.contains(name), "no runbook heading ### {name}");
    }

    let (fires, silent) = tested_outcomes();
    for name in &names {
        assert!(fires.contains(*name), "no test where {name} fires");
        assert!(silent.contains(*name), "no test where {name} stays silent");
    }

    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let alerts_file = kit("alerts.yaml");
    let check = promtool_ok(
        &promtool,
        &["check", "rules", alerts_file.to_str().unwrap()],
    );
    assert!(check.contains(&format!("SUCCESS: {} rules found", alerts.len())));
    let tests_file = kit("alerts_test.yaml");
    let unit = promtool_ok(&promtool, &["test", "rules", tests_file.to_str().unwrap()]);
    assert!(unit.contains("SUCCESS"), "{unit}");
}

/// Grafana's variables as the dashboard uses them, with values that make the expressions
/// plain PromQL.
const GRAFANA_VARIABLES: [(&str, &str); 5] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
    ("$instance", ".+"),
    ("$job", "compactd"),
];

/// Every value of an `expr` key anywhere in `json`.
fn exprs(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(values) => values.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&kit("dashboard.json"))).expect("dashboard.json is JSON")
}

/// The dashboard's expressions with Grafana's variables substituted.
fn dashboard_exprs() -> Vec<String> {
    let mut found = Vec::new();
    exprs(&dashboard(), &mut found);
    found
        .into_iter()
        .map(|expr| {
            let plain = GRAFANA_VARIABLES
                .iter()
                .fold(expr, |e, (var, value)| e.replace(var, value));
            assert!(!plain.contains('$'), "unknown variable in {plain:?}");
            plain
        })
        .collect()
}

/// The metric of every `label_values(metric{...}, label)` variable query.
fn variable_metrics() -> Vec<String> {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    variables
        .iter()
        .filter_map(|v| v["definition"].as_str())
        .filter_map(|d| d.strip_prefix("label_values("))
        .map(|rest| {
            let end = rest.find(['{', ',', ')']).unwrap_or(rest.len());
            rest[..end].trim().to_owned()
        })
        .collect()
}

#[test]
fn dashboard_is_grafana_json_and_every_expression_parses() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(variables.iter().any(|v| v["type"] == "datasource"
        && v["name"] == "datasource"
        && v["query"] == "prometheus"));
    let panels = dashboard["panels"].as_array().expect("panels");
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        rows,
        ["Compaction", "Bucket operations", "Leadership", "Resources"]
    );
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${datasource}");
        }
    }

    let exprs = dashboard_exprs();
    assert!(exprs.len() > 30, "{} expressions", exprs.len());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        // A JSON string is a YAML double-quoted scalar.
        let quoted = serde_json::to_string(expr).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard_expr_{i}\n        expr: {quoted}\n"
        ));
    }
    let Some(promtool) = require_tool("promtool", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dashboard_rules.yaml");
    std::fs::write(&file, rules).unwrap();
    let out = promtool_ok(&promtool, &["check", "rules", file.to_str().unwrap()]);
    assert!(out.contains(&format!("SUCCESS: {} rules found", exprs.len())));
}

#[test]
fn dashboard_and_alerts_use_only_what_compactd_exports() {
    let exported = samples(scrape());
    let mut labels_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for sample in &exported {
        let labels = labels_of.entry(&sample.name).or_default();
        labels.extend(sample.labels.keys().map(String::as_str));
    }

    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for expr in dashboard_exprs() {
        for name in metric_names(&expr) {
            used.entry(name)
                .or_insert_with(|| format!("dashboard: {expr}"));
        }
    }
    for name in variable_metrics() {
        used.entry(name)
            .or_insert_with(|| "dashboard variable".into());
    }
    for (alert, rule) in alert_rules(&yaml(&kit("alerts.yaml"))) {
        let expr = rule["expr"].as_str().expect("expr");
        for name in metric_names(expr) {
            used.entry(name).or_insert_with(|| format!("alert {alert}"));
        }
    }
    assert!(used.contains_key("process_resident_memory_bytes"));
    assert!(used.contains_key("compactd_failover_duration_seconds_bucket"));
    for (name, user) in &used {
        assert!(
            labels_of.contains_key(name.as_str()),
            "{name} ({user}) is not exported by compactd"
        );
    }

    // The alert tests' input series: real names, and labels compactd puts on them.
    let tests = yaml(&kit("alerts_test.yaml"));
    for case in tests["tests"].as_sequence().expect("tests") {
        for input in case["input_series"].as_sequence().expect("input_series") {
            let series = input["series"].as_str().expect("series");
            let (name, labels) = series.split_once('{').expect("labelled series");
            let labels = parse_labels(labels.trim_end_matches('}'));
            let exported = labels_of
                .get(name)
                .unwrap_or_else(|| panic!("{series}: {name} is not exported"));
            for label in labels.keys() {
                assert!(
                    TARGET_LABELS.contains(&label.as_str()) || exported.contains(label.as_str()),
                    "{series}: compactd exports {name} without label {label}"
                );
            }
        }
    }
}

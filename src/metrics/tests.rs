use std::collections::BTreeMap;

use super::*;

/// The exposition lines a fresh `thanos compact` exports for these series, verbatim.
const THANOS_ZERO_LINES: &[&str] = &[
    "thanos_compact_halted 0",
    "thanos_compact_retries_total 0",
    "thanos_compact_iterations_total 0",
    "thanos_compact_block_cleanup_loops_total 0",
    "thanos_compact_aborted_partial_uploads_deletion_attempts_total 0",
    "thanos_compact_blocks_cleaned_total 0",
    "thanos_compact_block_cleanup_failures_total 0",
    r#"thanos_compact_blocks_marked_total{marker="deletion-mark.json",reason=""} 0"#,
    r#"thanos_compact_blocks_marked_total{marker="no-compact-mark.json",reason="block-index-out-of-order-chunk"} 0"#,
    r#"thanos_compact_blocks_marked_total{marker="no-compact-mark.json",reason="index-size-exceeding"} 0"#,
    "thanos_compact_garbage_collected_blocks_total 0",
    "thanos_compact_garbage_collection_total 0",
    "thanos_compact_garbage_collection_failures_total 0",
    "thanos_compact_garbage_collection_duration_seconds_count 0",
    "thanos_compact_todo_compactions 0",
    "thanos_compact_todo_compaction_blocks 0",
    "thanos_compact_todo_downsample_blocks 0",
    "thanos_compact_todo_deletion_blocks 0",
    "thanos_delete_delay_seconds 0.0",
    "thanos_consistency_delay_seconds 0.0",
    "thanos_blocks_meta_syncs_total 0",
    "thanos_blocks_meta_sync_failures_total 0",
    "thanos_blocks_meta_sync_duration_seconds_count 0",
    r#"thanos_blocks_meta_synced{state="loaded"} 0"#,
    r#"thanos_blocks_meta_synced{state="no-meta-json"} 0"#,
    r#"thanos_blocks_meta_modified{modified="replica-label-removed"} 0"#,
    r#"thanos_objstore_bucket_operations_total{bucket="bkt",operation="get_range"} 0"#,
    r#"thanos_objstore_bucket_operation_failures_total{bucket="bkt",operation="attributes"} 0"#,
    r#"thanos_objstore_bucket_operation_duration_seconds_count{bucket="bkt",operation="iter"} 0"#,
    r#"thanos_objstore_bucket_last_successful_upload_time{bucket="bkt"} 0.0"#,
    "prometheus_tsdb_compactions_total 0",
    "prometheus_tsdb_compaction_duration_seconds_count 0",
    r#"thanos_status{check="ready",component="compact"} 0"#,
    r#"thanos_status{check="healthy",component="compact"} 0"#,
    "compactd_leader 0",
    "compactd_leader_epoch 0",
    "compactd_lease_remaining_seconds 0.0",
    "compactd_leader_transitions_total 0",
    "compactd_fence_conflicts_total 0",
    "compactd_permit_expired_writes_total 0",
    "compactd_failover_duration_seconds_count 0",
];

/// Whether `exposition` has `line` as a whole line.
fn has_line(exposition: &str, line: &str) -> bool {
    exposition.lines().any(|candidate| candidate == line)
}

fn assert_line(exposition: &str, line: &str) {
    assert!(
        has_line(exposition, line),
        "missing line {line:?} in:\n{exposition}"
    );
}

/// The `# TYPE` of every family in `exposition`, by family name.
fn types(exposition: &str) -> BTreeMap<&str, &str> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .collect()
}

#[test]
fn fresh_metrics_export_every_thanos_series_at_zero() {
    let exposition = Metrics::new("bkt").encode();
    for line in THANOS_ZERO_LINES {
        assert_line(&exposition, line);
    }
    for state in SYNCED_STATES {
        assert_line(
            &exposition,
            &format!("thanos_blocks_meta_synced{{state=\"{state}\"}} 0"),
        );
    }
    for op in BucketOp::ALL {
        let op = op.as_str();
        assert_line(
            &exposition,
            &format!(
                "thanos_objstore_bucket_operations_total{{bucket=\"bkt\",operation=\"{op}\"}} 0"
            ),
        );
    }
    assert_line(
        &exposition,
        &format!(
            "compactd_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    );
}

#[test]
fn families_have_thanos_types() {
    let metrics = Metrics::new("bkt");
    // Like Go's vectors, a labelled family without series is not exported at all.
    let downsample = "thanos_compact_downsample_duration_seconds";
    assert!(!types(&metrics.encode()).contains_key(downsample));
    let raw = ResolutionLabels { resolution: 0 };
    metrics.downsample.duration.get_or_create(&raw).observe(1.0);
    let exposition = metrics.encode();
    let types = types(&exposition);
    let expected = [
        ("thanos_compact_halted", "gauge"),
        ("thanos_compact_iterations", "counter"),
        ("thanos_compact_blocks_marked", "counter"),
        (
            "thanos_compact_garbage_collection_duration_seconds",
            "histogram",
        ),
        ("thanos_blocks_meta_synced", "gauge"),
        ("thanos_blocks_meta_sync_duration_seconds", "histogram"),
        (
            "thanos_objstore_bucket_operation_duration_seconds",
            "histogram",
        ),
        (
            "thanos_objstore_bucket_last_successful_upload_time",
            "gauge",
        ),
        ("prometheus_tsdb_compaction_duration_seconds", "histogram"),
        ("thanos_compact_downsample_duration_seconds", "histogram"),
        ("compactd_failover_duration_seconds", "histogram"),
        ("compactd_leader_transitions", "counter"),
    ];
    for (name, kind) in expected {
        assert_eq!(types.get(name), Some(&kind), "type of {name}");
    }
}

#[test]
fn counters_carry_total_exactly_once() {
    let metrics = Metrics::new("bkt");
    let open = metrics.encode();
    assert!(!open.contains("_total_total"));
    for (name, kind) in types(&open) {
        assert!(
            kind != "counter" || !name.ends_with("_total"),
            "{name}: OpenMetrics families are named without _total"
        );
    }
    let text = metrics.encode_prometheus_text();
    assert!(!text.contains("_total_total"));
    assert!(has_line(
        &text,
        "# TYPE thanos_compact_iterations_total counter"
    ));
    assert!(has_line(&text, "thanos_compact_iterations_total 0"));
}

#[test]
fn help_texts_have_one_final_period() {
    let exposition = Metrics::new("bkt").encode();
    assert_line(
        &exposition,
        "# HELP thanos_compact_halted Set to 1 if the compactor halted due to an unexpected error.",
    );
    assert_line(
        &exposition,
        "# HELP thanos_compact_todo_compactions number of compactions to be done.",
    );
    assert!(!exposition.contains(".."), "doubled period");
}

#[test]
fn openmetrics_ends_with_eof_and_prometheus_text_does_not() {
    let metrics = Metrics::new("bkt");
    assert!(metrics.encode().ends_with("# EOF\n"));
    assert!(!metrics.encode_prometheus_text().contains("# EOF"));
    assert!(OPENMETRICS_CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
    assert_eq!(
        PROMETHEUS_TEXT_CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn set_synced_sets_every_known_state_and_replaces_extras() {
    let metrics = Metrics::new("bkt");
    let first = BTreeMap::from([
        (STATE_LOADED, 7),
        (STATE_TOO_FRESH, 2),
        (STATE_MARKED_FOR_NO_DOWNSAMPLE, 1),
    ]);
    metrics.fetcher.set_synced(&first);
    let exposition = metrics.encode();
    assert_line(
        &exposition,
        r#"thanos_blocks_meta_synced{state="loaded"} 7"#,
    );
    assert_line(
        &exposition,
        r#"thanos_blocks_meta_synced{state="too-fresh"} 2"#,
    );
    assert_line(
        &exposition,
        r#"thanos_blocks_meta_synced{state="marked-for-no-downsample"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_blocks_meta_synced{state="duplicate"} 0"#,
    );

    let second = BTreeMap::from([(STATE_LOADED, 5)]);
    metrics.fetcher.set_synced(&second);
    let exposition = metrics.encode();
    assert_line(
        &exposition,
        r#"thanos_blocks_meta_synced{state="loaded"} 5"#,
    );
    assert_line(
        &exposition,
        r#"thanos_blocks_meta_synced{state="too-fresh"} 0"#,
    );
    assert!(
        !exposition.contains("marked-for-no-downsample"),
        "stale extra state kept"
    );
    assert_eq!(metrics.fetcher.synced.get(STATE_TOO_FRESH), Some(0));
    assert_eq!(
        metrics.fetcher.synced.get(STATE_MARKED_FOR_NO_DOWNSAMPLE),
        None
    );

    // compactd's own state is exported only while a sync counts it (one writer per bucket
    // never does), so a fresh compactd exports exactly Thanos' states.
    assert!(!SYNCED_STATES.contains(&STATE_SCOPE_EXCLUDED));
    assert!(!Metrics::new("bkt").encode().contains(STATE_SCOPE_EXCLUDED));
    metrics
        .fetcher
        .set_synced(&BTreeMap::from([(STATE_SCOPE_EXCLUDED, 4)]));
    assert_line(
        &metrics.encode(),
        r#"thanos_blocks_meta_synced{state="scope-excluded"} 4"#,
    );
    metrics
        .fetcher
        .set_modified(&BTreeMap::from([(MODIFIED_REPLICA_LABEL_REMOVED, 3)]));
    assert_line(
        &metrics.encode(),
        r#"thanos_blocks_meta_modified{modified="replica-label-removed"} 3"#,
    );
}

#[test]
fn labels_render_thanos_values() {
    let metrics = Metrics::new("bkt");
    metrics
        .compact
        .block_marked(Marker::NoCompact, REASON_DOWNSAMPLE_VERTICAL_COMPACTION);
    metrics.compact.block_marked(Marker::Deletion, "");
    let raw = metrics.groups.for_resolution(0);
    raw.runs_started.inc();
    metrics.groups.for_resolution(300_000);
    metrics.downsample.init_resolution(3_600_000);
    let exposition = metrics.encode();
    assert_line(
        &exposition,
        r#"thanos_compact_blocks_marked_total{marker="no-compact-mark.json",reason="downsample-vertical-compaction"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_blocks_marked_total{marker="deletion-mark.json",reason=""} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_group_compaction_runs_started_total{resolution="0"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_group_vertical_compactions_total{resolution="300000"} 0"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_downsample_total{resolution="3600000"} 0"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_downsample_failures_total{resolution="3600000"} 0"#,
    );
}

#[test]
fn histograms_use_thanos_buckets() {
    let metrics = Metrics::new("bkt");
    metrics.compact.garbage_collection_duration.observe(0.5);
    metrics.tsdb.compaction_duration.observe(3.0);
    metrics.ha.failover_duration.observe(12.0);
    let exposition = metrics.encode();
    assert_line(
        &exposition,
        r#"thanos_compact_garbage_collection_duration_seconds_bucket{le="0.3"} 0"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_garbage_collection_duration_seconds_bucket{le="0.6"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_garbage_collection_duration_seconds_bucket{le="720.0"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_compact_garbage_collection_duration_seconds_bucket{le="+Inf"} 1"#,
    );
    assert_line(
        &exposition,
        r#"prometheus_tsdb_compaction_duration_seconds_bucket{le="2.0"} 0"#,
    );
    assert_line(
        &exposition,
        r#"prometheus_tsdb_compaction_duration_seconds_bucket{le="4.0"} 1"#,
    );
    assert_line(
        &exposition,
        r#"prometheus_tsdb_compaction_duration_seconds_bucket{le="512.0"} 1"#,
    );
    assert_line(
        &exposition,
        r#"compactd_failover_duration_seconds_bucket{le="10.0"} 0"#,
    );
    assert_line(
        &exposition,
        r#"compactd_failover_duration_seconds_bucket{le="15.0"} 1"#,
    );
    assert_line(
        &exposition,
        r#"compactd_failover_duration_seconds_sum 12.0"#,
    );
    for le in [
        "0.01", "1.0", "10.0", "100.0", "300.0", "600.0", "1000.0", "+Inf",
    ] {
        assert_line(
            &exposition,
            &format!("thanos_blocks_meta_sync_duration_seconds_bucket{{le=\"{le}\"}} 0"),
        );
    }
    let objstore_le = [
        "0.001", "0.01", "0.1", "0.3", "0.6", "1.0", "3.0", "6.0", "9.0", "20.0", "30.0", "60.0",
        "90.0", "120.0", "+Inf",
    ];
    for le in objstore_le {
        // prometheus-client puts `le` between the constant and the family labels.
        let line = format!("thanos_objstore_bucket_operation_duration_seconds_bucket{{bucket=\"bkt\",le=\"{le}\",operation=\"get\"}} 0");
        assert_line(&exposition, &line);
    }
}

#[test]
fn bucket_observe_counts_like_thanos_objstore() {
    let metrics = Metrics::new("bkt");
    metrics
        .bucket
        .observe(BucketOp::Upload, 0.2, OpOutcome::Success);
    metrics
        .bucket
        .observe(BucketOp::Get, 0.1, OpOutcome::ExpectedFailure);
    metrics
        .bucket
        .observe(BucketOp::Delete, 0.1, OpOutcome::Failure);
    metrics.bucket.observe_bytes(BucketOp::Upload, 1 << 20);
    metrics.bucket.upload_succeeded_at(1_700_000_000.0);
    let exposition = metrics.encode();
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operations_total{bucket="bkt",operation="upload"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operations_total{bucket="bkt",operation="get"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operation_failures_total{bucket="bkt",operation="get"} 0"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operation_failures_total{bucket="bkt",operation="delete"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operation_duration_seconds_count{bucket="bkt",operation="upload"} 1"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operation_duration_seconds_count{bucket="bkt",operation="delete"} 0"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_operation_fetched_bytes_total{bucket="bkt",operation="upload"} 1048576"#,
    );
    assert_line(
        &exposition,
        r#"thanos_objstore_bucket_last_successful_upload_time{bucket="bkt"} 1700000000.0"#,
    );
}

#[test]
fn probe_status_and_ha_gauges_are_settable() {
    let metrics = Metrics::new("bkt");
    metrics.status.set(ProbeCheck::Ready, true);
    assert_eq!(metrics.status.get(ProbeCheck::Ready), 1);
    assert_eq!(metrics.status.get(ProbeCheck::Healthy), 0);
    metrics.ha.leader.set(1);
    metrics.ha.leader_epoch.set(42);
    metrics.ha.lease_remaining_seconds.set(7.5);
    metrics.compact.halted.set(1);
    metrics.compact.delete_delay_seconds.set(172_800.0);
    let exposition = metrics.encode();
    assert_line(
        &exposition,
        r#"thanos_status{check="ready",component="compact"} 1"#,
    );
    assert_line(&exposition, "compactd_leader 1");
    assert_line(&exposition, "compactd_leader_epoch 42");
    assert_line(&exposition, "compactd_lease_remaining_seconds 7.5");
    assert_line(&exposition, "thanos_compact_halted 1");
    assert_line(&exposition, "thanos_delete_delay_seconds 172800.0");
}

#[test]
fn thanos_build_info_has_the_go_version_collector_labels() {
    let exposition = Metrics::new("bkt").encode();
    let labels = ThanosBuildLabels::of_this_build();
    assert_eq!(labels.version, env!("CARGO_PKG_VERSION"));
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    assert_eq!((labels.goos, labels.goarch), ("linux", "amd64"));
    let line = exposition
        .lines()
        .find(|line| line.starts_with("thanos_build_info{"))
        .expect("thanos_build_info exported");
    let names: Vec<&str> = line
        .split(['{', ','])
        .skip(1)
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(
        names,
        [
            "branch",
            "goarch",
            "goos",
            "goversion",
            "revision",
            "tags",
            "version"
        ],
        "Go's label names, sorted as Go sorts them"
    );
    assert!(line.ends_with("} 1"), "{line}");
    assert_eq!(types(&exposition).get("thanos_build_info"), Some(&"gauge"));
}

#[cfg(target_os = "linux")]
#[test]
fn process_families_have_client_golang_names_and_types() {
    let metrics = Metrics::new("bkt");
    let open = metrics.encode();
    let types = types(&open);
    for (name, kind) in [
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_virtual_memory_max_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(types.get(name), Some(&kind), "type of {name}");
    }
    assert_line(
        &open,
        "# HELP process_cpu_seconds Total user and system CPU time spent in seconds.",
    );
    assert!(open
        .lines()
        .any(|l| l.starts_with("process_cpu_seconds_total ")));
    let text = metrics.encode_prometheus_text();
    assert!(has_line(&text, "# TYPE process_cpu_seconds_total counter"));
    assert!(!text.contains(".."), "doubled period");
}

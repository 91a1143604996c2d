use super::*;

const PROMETHEUS_META: &str = r#"{
	"ulid": "01M8761NJ3B44ZS6PVDPN23D24",
	"minTime": 1735689600000,
	"maxTime": 1735775985001,
	"stats": {
		"numSamples": 1152000,
		"numSeries": 200,
		"numChunks": 9600
	},
	"compaction": {
		"level": 2,
		"sources": [
			"01M875XF8W0000000000000000",
			"01M875XF8W0000000000000001"
		],
		"parents": [
			{
				"ulid": "01M875XF8W0000000000000000",
				"minTime": 1735689600000,
				"maxTime": 1735696785001
			}
		]
	},
	"version": 1
}"#;

#[test]
fn prometheus_meta_round_trips_byte_for_byte() {
    let m = BlockMeta::parse(PROMETHEUS_META.as_bytes(), Path::new("b/meta.json")).unwrap();
    assert_eq!(m.compaction.level, 2);
    assert_eq!(m.stats.num_samples, 1_152_000);
    assert!(m.thanos.is_none());
    assert_eq!(String::from_utf8(m.to_json()).unwrap(), PROMETHEUS_META);
}

#[test]
fn thanos_section_is_read_and_extensions_carried_through() {
    let json = r#"{"ulid":"01M8761NJ3B44ZS6PVDPN23D24","minTime":0,"maxTime":10,"version":1,
        "compaction":{"level":1},
        "thanos":{"labels":{"cluster":"eu-1"},"downsample":{"resolution":300000},"source":"sidecar",
          "files":[{"rel_path":"chunks/000001","size_bytes":12},{"rel_path":"meta.json"}],
          "index_stats":{"series_max_size":100},
          "extensions":{"zeta":{"nested":[1,2]},"alpha":true},
          "upload_time":"2025-01-01T00:00:00Z"}}"#;
    let m = BlockMeta::parse(json.as_bytes(), Path::new("m")).unwrap();
    let t = m.thanos.as_ref().unwrap();
    assert_eq!(t.labels["cluster"], "eu-1");
    assert_eq!(t.downsample.resolution, 300_000);
    assert_eq!(t.files[1].size_bytes, 0);
    let out = String::from_utf8(m.to_json()).unwrap();
    assert!(out.ends_with("}\n"), "Thanos metas end with a newline");
    // Key order of the extensions is preserved.
    assert!(
        out.find("\"zeta\"").unwrap() < out.find("\"alpha\"").unwrap(),
        "{out}"
    );
    assert!(out.contains("\"upload_time\": \"2025-01-01T00:00:00Z\""));
    let again = BlockMeta::parse(out.as_bytes(), Path::new("m")).unwrap();
    assert_eq!(again, m);
}

#[test]
fn bad_metas_are_rejected_with_the_file_named() {
    let cases = [
        (
            r#"{"ulid":"01M8761NJ3B44ZS6PVDPN23D24","minTime":0,"maxTime":1,"version":2}"#,
            "unsupported version 2",
        ),
        (
            r#"{"ulid":"01M8761NJ3B44ZS6PVDPN23D24","minTime":0,"maxTime":1}"#,
            "missing field `version`",
        ),
        (
            r#"{"ulid":"nope","minTime":0,"maxTime":1,"version":1}"#,
            "invalid ULID",
        ),
        (
            r#"{"ulid":"01M8761NJ3B44ZS6PVDPN23D24","minTime":5,"maxTime":1,"version":1}"#,
            "before minTime",
        ),
        ("garbage", "expected value"),
    ];
    for (json, want) in cases {
        let err = BlockMeta::parse(json.as_bytes(), Path::new("bucket/01X/meta.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bucket/01X/meta.json"), "{err}");
        assert!(err.contains(want), "{err} should contain {want}");
    }
}

fn meta(id: u128, min: i64, max: i64, level: u32) -> BlockMeta {
    let mut m = BlockMeta::level1(BlockId::from_parts(1000, id), min, max);
    m.compaction.level = level;
    m
}

#[test]
fn merge_follows_prometheus() {
    let a = meta(3, 100, 200, 1);
    let mut b = meta(1, 0, 100, 2);
    b.compaction.sources = vec![BlockId::from_parts(1000, 9), BlockId::from_parts(1000, 1)];
    b.compaction.hints = vec!["from-out-of-order".into()];
    let id = BlockId::from_parts(2000, 5);
    let m = merge_metas(id, &[a.clone(), b.clone()]).unwrap();
    assert_eq!((m.min_time, m.max_time, m.compaction.level), (0, 200, 3));
    let want: Vec<BlockId> = [1, 3, 9]
        .iter()
        .map(|r| BlockId::from_parts(1000, *r))
        .collect();
    assert_eq!(m.compaction.sources, want);
    assert_eq!(
        m.compaction.parents,
        vec![a.desc(), b.desc()],
        "parents in input order"
    );
    assert!(
        m.compaction.hints.is_empty(),
        "out-of-order hint needs all parents"
    );
}

/// Regression (hardening audit; the meta_json fuzz target merges what it parses): a parent
/// at level `u32::MAX`, which a meta.json may hold, overflowed the merged level.
#[test]
fn merge_saturates_the_level() {
    let m = merge_metas(
        BlockId::from_parts(2000, 5),
        &[meta(1, 0, 100, u32::MAX), meta(2, 100, 200, 1)],
    )
    .unwrap();
    assert_eq!(m.compaction.level, u32::MAX);
}

#[test]
fn merge_refuses_different_streams_and_keeps_common_extensions() {
    let mut a = meta(1, 0, 10, 1);
    let mut b = meta(2, 10, 20, 1);
    let mut t = ThanosMeta::default();
    t.labels.insert("cluster".into(), "eu-1".into());
    t.extensions = Some(serde_json::json!({"keep": 1, "drop": 2}));
    a.thanos = Some(t.clone());
    t.extensions = Some(serde_json::json!({"keep": 1, "drop": 3}));
    b.thanos = Some(t.clone());
    let m = merge_metas(BlockId::from_parts(5, 5), &[a.clone(), b.clone()]).unwrap();
    let mt = m.thanos.unwrap();
    assert_eq!(mt.extensions, Some(serde_json::json!({"keep": 1})));
    assert_eq!(mt.source, SOURCE_COMPACTOR);
    t.labels.insert("cluster".into(), "us-1".into());
    b.thanos = Some(t);
    let err = merge_metas(BlockId::from_parts(5, 5), &[a, b])
        .unwrap_err()
        .to_string();
    assert!(err.contains("different streams"), "{err}");
}

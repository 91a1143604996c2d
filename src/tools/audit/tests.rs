use serde_json::json;

use super::*;
use crate::tsdb::meta::ThanosMeta;

const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

fn id(n: u128) -> BlockId {
    BlockId::from_parts(T0 as u64, n)
}

/// A readable block committed at `T0 + secs` seconds, with `extensions` (None: no Thanos
/// section at all).
fn block(n: u128, extensions: Option<serde_json::Value>, secs: i64) -> ListedBlock {
    let mut m = BlockMeta::level1(id(n), 0, 7_200_000);
    m.thanos = extensions.map(|e| ThanosMeta {
        extensions: Some(e),
        ..ThanosMeta::default()
    });
    ListedBlock {
        id: id(n),
        meta: Ok((m, T0 + secs * 1000)),
    }
}

fn stamped(n: u128, epoch: u64, holder: &str, secs: i64) -> ListedBlock {
    block(
        n,
        Some(json!({"other": 1, "compactd": {"epoch": epoch, "holder": holder}})),
        secs,
    )
}

/// The audit of `blocks` with the bucket's `fence` only, no replica labels.
fn audit_of(blocks: &[ListedBlock], fence: Fence) -> AuditReport {
    let fences = Fences {
        bucket: fence,
        streams: BTreeMap::new(),
    };
    audit(blocks, fences, &[])
}

fn fence(epoch: u64, holder: &str) -> Fence {
    Fence::Present(FenceRecord {
        epoch,
        holder: holder.into(),
        seq: 3,
        renewed_unix_ms: T0,
        nonce: String::new(),
    })
}

#[test]
fn empty_bucket_is_ok() {
    let r = audit_of(&[], Fence::Absent);
    assert!(r.ok());
    assert!(r.epochs.is_empty() && r.problems.is_empty());
    assert_eq!(r.unstamped, 0);
    let text = r.render_text();
    assert!(text.starts_with("fence: none\n"), "{text}");
    assert!(
        text.contains("0 stamped blocks in 0 epochs; 0 unstamped"),
        "{text}"
    );
    assert!(
        text.ends_with("OK: commits ordered by epoch, one holder per epoch, every stamp valid\n")
    );
    let j: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(j["ok"], json!(true));
    assert_eq!(j["fence"], json!({"state": "absent"}));
}

#[test]
fn unstamped_blocks_are_counted_not_violations() {
    let blocks = [
        block(1, None, 10),
        block(2, Some(json!({"other": true})), 20),
        block(3, Some(json!("not an object")), 30),
    ];
    let r = audit_of(&blocks, Fence::Absent);
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!(r.unstamped, 3);
    assert!(r.epochs.is_empty());
}

#[test]
fn epochs_committing_in_order_are_ok() {
    let blocks = [
        stamped(1, 5, "a", 10),
        stamped(2, 5, "a", 30),
        block(3, None, 35),
        stamped(4, 9, "b", 40),
        stamped(5, 9, "b", 50),
    ];
    let r = audit_of(&blocks, fence(9, "b"));
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!(r.unstamped, 1);
    assert_eq!(
        r.epochs,
        vec![
            EpochSummary {
                epoch: 5,
                holders: vec!["a".into()],
                blocks: 2,
                first_commit_ms: T0 + 10_000,
                last_commit_ms: T0 + 30_000,
            },
            EpochSummary {
                epoch: 9,
                holders: vec!["b".into()],
                blocks: 2,
                first_commit_ms: T0 + 40_000,
                last_commit_ms: T0 + 50_000,
            },
        ]
    );
    assert_eq!(
        r.render_text(),
        "fence: epoch 9, holder b, seq 3, renewed 2025-01-01T00:00:00Z\n\
         EPOCH  HOLDERS  BLOCKS  FIRST COMMIT              LAST COMMIT\n\
         \x20   5  a             2  2025-01-01T00:00:10Z      2025-01-01T00:00:30Z\n\
         \x20   9  b             2  2025-01-01T00:00:40Z      2025-01-01T00:00:50Z\n\
         4 stamped blocks in 2 epochs; 1 unstamped blocks (not written by compactd)\n\
         OK: commits ordered by epoch, one holder per epoch, every stamp valid\n"
    );
}

#[test]
fn lower_epoch_committed_after_a_higher_epoch_began_is_a_violation() {
    let blocks = [
        stamped(1, 5, "a", 10),
        stamped(2, 9, "b", 40),
        // Same millisecond as epoch 7's first commit: not strictly after, allowed.
        stamped(3, 5, "a", 20),
        stamped(4, 5, "a", 60),
        stamped(5, 7, "c", 20),
        stamped(6, 7, "c", 45),
    ];
    let r = audit_of(&blocks, fence(9, "b"));
    assert!(!r.ok());
    assert_eq!(
        r.violations,
        vec![
            Violation::LateCommit {
                unit: Unit::Bucket,
                block: id(6),
                stamp: Stamp {
                    epoch: 7,
                    holder: "c".into()
                },
                committed_ms: T0 + 45_000,
                higher_epoch: 9,
                higher_first_commit_ms: T0 + 40_000,
            },
            // Epoch 7 began before epoch 9: it is the one named.
            Violation::LateCommit {
                unit: Unit::Bucket,
                block: id(4),
                stamp: Stamp {
                    epoch: 5,
                    holder: "a".into()
                },
                committed_ms: T0 + 60_000,
                higher_epoch: 7,
                higher_first_commit_ms: T0 + 20_000,
            },
        ]
    );
    let text = r.render_text();
    let want = format!(
        "VIOLATION: block {}: epoch 5 (holder a) committed at 2025-01-01T00:01:00Z, after \
         epoch 7 first committed at 2025-01-01T00:00:20Z\n",
        id(4)
    );
    assert!(text.contains(&want), "{text}");
    assert!(text.ends_with("2 violations found\n"), "{text}");
    let j: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(j["ok"], json!(false));
    assert_eq!(j["violations"][1]["kind"], json!("late-commit"));
    assert_eq!(j["violations"][1]["block"], json!(id(4).to_string()));
    assert_eq!(j["violations"][1]["higher_epoch"], json!(7));
    assert_eq!(
        j["violations"][1]["higher_first_commit"],
        json!("2025-01-01T00:00:20Z")
    );
}

#[test]
fn two_holders_for_one_epoch_is_a_violation() {
    let blocks = [stamped(1, 5, "a", 10), stamped(2, 5, "b", 20)];
    let r = audit_of(&blocks, fence(5, "a"));
    assert_eq!(
        r.violations,
        vec![Violation::SharedEpoch {
            epoch: 5,
            holders: vec!["a".into(), "b".into()]
        }]
    );
    assert_eq!(r.epochs[0].blocks, 2);
    let text = r.render_text();
    assert!(
        text.contains("VIOLATION: epoch 5 has 2 holders: a, b\n"),
        "{text}"
    );
    assert!(text.contains("a,b"), "{text}");
}

#[test]
fn successive_single_instances_share_epoch_zero_but_must_not_interleave() {
    let blocks = [stamped(1, 0, "pod-a", 10), stamped(2, 0, "pod-b", 20)];
    assert!(audit_of(&blocks, fence(0, "pod-b")).ok());
    let blocks = [
        stamped(1, 0, "pod-a", 10),
        stamped(2, 0, "pod-b", 20),
        stamped(3, 0, "pod-a", 30),
    ];
    assert!(!audit_of(&blocks, fence(0, "pod-b")).ok());
}

#[test]
fn malformed_stamp_is_a_violation_and_unreadable_metas_are_problems() {
    let blocks = [
        block(
            1,
            Some(json!({"compactd": {"epoch": -1, "holder": "a"}})),
            10,
        ),
        block(2, Some(json!({"compactd": {"epoch": 3}})), 20),
        block(3, Some(json!({"compactd": null})), 30),
        ListedBlock {
            id: id(4),
            meta: Err("unreadable meta.json: bad JSON".into()),
        },
    ];
    let r = audit_of(
        &blocks,
        Fence::Unreadable("compactd/fence.json: invalid".into()),
    );
    assert_eq!(r.violations.len(), 3);
    assert!(r
        .violations
        .iter()
        .all(|v| matches!(v, Violation::MalformedStamp { .. })));
    assert_eq!(r.unstamped, 0);
    assert!(r.epochs.is_empty());
    assert_eq!(
        r.problems,
        vec![
            "compactd/fence.json: invalid".to_string(),
            format!("block {}: unreadable meta.json: bad JSON", id(4)),
        ]
    );
    let text = r.render_text();
    assert!(
        text.starts_with("fence: unreadable (see PROBLEM)\n"),
        "{text}"
    );
    let want = format!(
        "VIOLATION: block {}: malformed stamp: thanos.extensions.compactd is {{\"epoch\":3}}",
        id(2)
    );
    assert!(text.contains(&want), "{text}");
    assert!(
        text.contains(&format!("PROBLEM: block {}: unreadable", id(4))),
        "{text}"
    );
    let j: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(j["fence"]["state"], json!("unreadable"));
    assert_eq!(j["violations"][0]["kind"], json!("malformed-stamp"));
}

#[test]
fn problems_alone_do_not_fail_the_audit() {
    let blocks = [ListedBlock {
        id: id(1),
        meta: Err("no meta.json (partial upload or unfinished delete)".into()),
    }];
    let r = audit_of(&blocks, Fence::Absent);
    assert!(r.ok());
    assert_eq!(r.problems.len(), 1);
}

/// A block of the stream `labels`, stamped `{epoch, holder}`, committed at `T0 + secs`.
fn in_stream(n: u128, labels: &[(&str, &str)], epoch: u64, holder: &str, secs: i64) -> ListedBlock {
    let mut b = stamped(n, epoch, holder, secs);
    let (meta, _) = b.meta.as_mut().expect("readable");
    meta.thanos.as_mut().expect("stamped").labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    b
}

fn stream(cluster: &str) -> StreamId {
    let labels = [("cluster".to_string(), cluster.to_string())].into();
    StreamId::of_labels(&labels, &[]).expect("a label")
}

fn stream_fence(epoch: u64, holder: &str) -> Fence {
    Fence::Present(FenceRecord {
        epoch,
        holder: holder.into(),
        seq: 2,
        renewed_unix_ms: T0,
        nonce: String::new(),
    })
}

#[test]
fn two_streams_whose_writers_interleave_epochs_are_clean() {
    let replica = vec!["replica".to_string()];
    let (eu_a, eu_b) = (
        [("cluster", "eu"), ("replica", "a")],
        [("cluster", "eu"), ("replica", "b")],
    );
    let us = [("cluster", "us")];
    let blocks = [
        in_stream(1, &eu_a, 5, "node-a", 10),
        in_stream(2, &us, 9, "node-b", 20),
        in_stream(3, &eu_b, 5, "node-a", 30),
        in_stream(4, &us, 9, "node-b", 40),
        in_stream(5, &eu_a, 20, "node-c", 50),
        stamped(6, 3, "node-z", 60),
        block(7, None, 70),
    ];
    let fences = Fences {
        bucket: fence(3, "node-z"),
        streams: [
            (stream("eu"), stream_fence(20, "node-c")),
            (stream("us"), stream_fence(9, "node-b")),
        ]
        .into(),
    };
    let r = audit(&blocks, fences, &replica);
    assert!(r.ok(), "{:?}", r.violations);
    let units: Vec<Unit> = r.units.iter().map(|u| u.unit).collect();
    let mut want = vec![Unit::Stream(stream("eu")), Unit::Stream(stream("us"))];
    want.sort();
    want.insert(0, Unit::Bucket);
    assert_eq!(units, want, "replicas of eu are one stream");
    assert_eq!(r.epochs.len(), 4, "bucket-wide: 3, 5, 9, 20");
    assert_eq!(r.unstamped, 1);
    let text = r.render_text();
    let eu_section = format!(
        "stream {} {{cluster=\"eu\"}}, fence: epoch 20, holder node-c, seq 2, renewed \
         2025-01-01T00:00:00Z\n\
         \x20 EPOCH  HOLDERS  BLOCKS  FIRST COMMIT              LAST COMMIT\n\
         \x20     5  node-a        2  2025-01-01T00:00:10Z      2025-01-01T00:00:30Z\n\
         \x20    20  node-c        1  2025-01-01T00:00:50Z      2025-01-01T00:00:50Z\n\
         \x20 3 stamped blocks in 2 epochs; 0 unstamped blocks\n",
        stream("eu")
    );
    assert!(text.contains(&eu_section), "{text}");
    assert!(
        text.starts_with("fence: epoch 3, holder node-z, seq 3"),
        "{text}"
    );
    assert!(
        text.contains("bucket (blocks of no stream; its fence is above)\n"),
        "{text}"
    );
    assert!(
        text.contains("6 stamped blocks in 4 epochs; 1 unstamped blocks"),
        "{text}"
    );
    let j: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(j["streams"][0]["stream"], json!(null));
    assert_eq!(j["streams"][0]["unstamped"], json!(1));
    let eu = j["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == json!(stream("eu").to_string()))
        .expect("eu's section");
    assert_eq!(eu["labels"], json!({"cluster": "eu"}));
    assert_eq!(eu["fence"]["epoch"], json!(20));
    assert_eq!(eu["epochs"][0]["blocks"], json!(2));
}

#[test]
fn a_stream_whose_epoch_goes_back_is_flagged_by_name() {
    let us = [("cluster", "us")];
    let blocks = [
        in_stream(1, &us, 9, "node-b", 20),
        in_stream(2, &us, 12, "node-a", 30),
        in_stream(3, &us, 9, "node-b", 40),
        // Another stream's lower epoch after us' epoch 12 began: not a violation.
        in_stream(4, &[("cluster", "eu")], 5, "node-c", 50),
    ];
    let fences = Fences {
        bucket: Fence::Absent,
        streams: [(stream("us"), stream_fence(12, "node-a"))].into(),
    };
    let r = audit(&blocks, fences, &[]);
    assert_eq!(
        r.violations,
        vec![Violation::LateCommit {
            unit: Unit::Stream(stream("us")),
            block: id(3),
            stamp: Stamp {
                epoch: 9,
                holder: "node-b".into()
            },
            committed_ms: T0 + 40_000,
            higher_epoch: 12,
            higher_first_commit_ms: T0 + 30_000,
        }]
    );
    let text = r.render_text();
    let want = format!(
        "VIOLATION: stream {}: block {}: epoch 9 (holder node-b) committed at \
         2025-01-01T00:00:40Z, after epoch 12 first committed at 2025-01-01T00:00:30Z\n",
        stream("us"),
        id(3)
    );
    assert!(text.contains(&want), "{text}");
    let j: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(
        j["violations"][0]["stream"],
        json!(stream("us").to_string())
    );
}

#[test]
fn one_stream_without_a_fence_of_its_own_prints_one_table_and_fences_without_blocks_show() {
    let eu = [("cluster", "eu")];
    let blocks = [in_stream(1, &eu, 5, "a", 10), in_stream(2, &eu, 5, "a", 20)];
    let r = audit_of(&blocks, Fence::Absent);
    let text = r.render_text();
    assert!(text.starts_with("fence: none\nEPOCH  HOLDERS"), "{text}");
    let fences = Fences {
        bucket: Fence::Absent,
        streams: [(
            stream("us"),
            Fence::Unreadable("compactd/fence/x.json: bad".into()),
        )]
        .into(),
    };
    let r = audit(&blocks, fences, &[]);
    assert_eq!(r.units.len(), 2, "us has a fence and no block");
    assert_eq!(r.problems, vec!["compactd/fence/x.json: bad".to_string()]);
    let text = r.render_text();
    let want = format!("stream {}, fence: unreadable (see PROBLEM)\n", stream("us"));
    assert!(text.contains(&want), "{text}");
}

#[test]
fn only_canonical_fence_names_are_streams() {
    let id = StreamId(0x00ab_cdef_0123_4567);
    assert_eq!(stream_of_fence("00abcdef01234567.json"), Some(id));
    assert_eq!(stream_of_fence("00ABCDEF01234567.json"), None);
    assert_eq!(stream_of_fence("abcdef01234567.json"), None);
    assert_eq!(stream_of_fence("00abcdef01234567"), None);
    assert_eq!(stream_of_fence("notes.txt"), None);
}

//! Each invariant the checker watches during a run fails on a write log built to break it,
//! and stays quiet on its legitimate neighbour.

use compactd::core::coord::{CoordOp, CoordResult};
use compactd::core::types::{Epoch, JobId, Millis, Permit, RequestId, StoreRequest, WriteOp};
use compactd::tsdb::meta::{BlockMeta, ThanosMeta};

use super::*;
use crate::etcd::Answer;
use crate::store::{Fault, Origin, PutMode};

fn id(n: u128) -> BlockId {
    BlockId::from_parts(1_735_689_600_000, n)
}

/// A visible block `n` holding `sources`.
fn meta(n: u128, sources: &[u128]) -> Box<BlockMeta> {
    let mut m = BlockMeta::level1(id(n), 0, 7_200_000);
    m.compaction.sources = sources.iter().map(|s| id(*s)).collect();
    Box::new(m)
}

/// Block `n` holding `sources`, covering the hours `[min_h, max_h)`.
fn meta_at(n: u128, sources: &[u128], min_h: i64, max_h: i64) -> Box<BlockMeta> {
    let mut m = meta(n, sources);
    m.min_time = min_h * 3_600_000;
    m.max_time = max_h * 3_600_000;
    m
}

struct Log {
    store: StoreModel,
    checker: Checker,
    etcd: EtcdModel,
    at: i64,
}

impl Log {
    fn new(strict: bool) -> Log {
        Log::keyed(strict, Keying::Bucket)
    }

    fn keyed(strict: bool, keying: Keying) -> Log {
        Log {
            store: StoreModel::default(),
            checker: Checker::new(strict, keying),
            etcd: EtcdModel::new(1),
            at: 0,
        }
    }

    /// `node` performs `op` under `epoch`, with every object request meeting `fault`.
    fn run_with(&mut self, node: &str, epoch: u64, op: WriteOp, fault: Fault) {
        self.at += 1_000;
        let files = [
            ("chunks/000001".to_string(), b"c".to_vec()),
            ("index".to_string(), b"i".to_vec()),
        ];
        let from = Origin {
            node,
            epoch,
            at_ms: WALL0 + self.at,
        };
        let permit = Permit {
            epoch: Epoch(epoch),
            valid_until: Millis::MAX,
        };
        let req = StoreRequest::write(RequestId(1), op, permit);
        self.checker.before(&self.store, &req, self.at);
        self.store.execute(from, &req, &files, |_| fault);
        self.checker.after(&self.store);
    }

    fn run(&mut self, node: &str, epoch: u64, op: WriteOp) {
        self.run_with(node, epoch, op, Fault::Pass);
    }

    /// `node` uploads block `n` (files, then meta.json) under `epoch`.
    fn block(&mut self, node: &str, epoch: u64, n: u128, sources: &[u128]) {
        let upload = WriteOp::UploadFiles {
            job: JobId(1),
            block: id(n),
        };
        self.run(node, epoch, upload);
        let meta = meta(n, sources);
        self.run(node, epoch, WriteOp::PutMeta { meta });
    }

    /// `node` uploads block `n` covering the hours `[min_h, max_h)`.
    fn block_at(&mut self, node: &str, n: u128, sources: &[u128], min_h: i64, max_h: i64) {
        let upload = WriteOp::UploadFiles {
            job: JobId(1),
            block: id(n),
        };
        self.run(node, 5, upload);
        let meta = meta_at(n, sources, min_h, max_h);
        self.run(node, 5, WriteOp::PutMeta { meta });
    }

    fn count(&self, i: Invariant) -> usize {
        self.checker.counts().get(&i).copied().unwrap_or(0)
    }
}

#[test]
fn a_lower_epoch_writing_after_a_higher_one_breaks_both_orders() {
    let mut log = Log::new(true);
    log.block("a", 5, 1, &[1]);
    log.block("b", 7, 2, &[2]);
    assert!(log.checker.violations().is_empty());
    log.block("a", 5, 3, &[3]);
    assert!(log.count(Invariant::SingleWriter) > 0);
    assert!(log.count(Invariant::CommitOrder) > 0);
    let text = &log.checker.violations()[0].text;
    assert!(text.contains("epoch 5 (a) wrote after epoch 7"), "{text}");
}

#[test]
fn an_old_upload_breaks_single_writer_only_and_only_when_strict() {
    for strict in [true, false] {
        let mut log = Log::new(strict);
        log.block("a", 5, 1, &[1]);
        log.block("b", 7, 2, &[2]);
        let late_upload = WriteOp::UploadFiles {
            job: JobId(2),
            block: id(3),
        };
        log.run("a", 5, late_upload);
        assert_eq!(
            log.count(Invariant::SingleWriter) > 0,
            strict,
            "strict {strict}"
        );
        assert_eq!(
            log.count(Invariant::CommitOrder),
            0,
            "an upload is no commit"
        );
    }
}

#[test]
fn writers_of_one_epoch_may_not_interleave() {
    let mut log = Log::new(true);
    log.block("a", 0, 1, &[1]);
    log.block("b", 0, 2, &[2]);
    assert!(
        log.checker.violations().is_empty(),
        "one after the other is fine"
    );
    log.block("a", 0, 3, &[3]);
    assert!(log.count(Invariant::CommitOrder) > 0);
    assert!(log.checker.violations()[0].text.contains("wrote again"));
}

#[test]
fn an_elected_epoch_belongs_to_one_node() {
    let mut log = Log::new(false);
    log.block("a", 5, 1, &[1]);
    log.block("b", 5, 2, &[2]);
    let b_writes = 3; // its chunk segment, index and meta.json
    assert_eq!(log.count(Invariant::SingleWriter), b_writes);
    let text = &log.checker.violations()[0].text;
    assert!(text.contains("epoch 5 written by a and by b"), "{text}");
}

/// Between two of a's blocks, `node` (not a compactor) writes `bytes` to `path` with `mode`:
/// the checker judges no compactor by it.
fn outside_write_is_no_compactor_write(
    node: &'static str,
    path: &str,
    bytes: Vec<u8>,
    mode: PutMode,
) {
    let mut log = Log::new(true);
    log.block("a", 5, 1, &[1]);
    let from = Origin {
        node,
        epoch: 0,
        at_ms: WALL0 + 10_000,
    };
    log.store
        .put(from, path, bytes, mode, Fault::Pass)
        .expect("put");
    log.block("a", 5, 2, &[2]);
    assert!(
        log.checker.violations().is_empty(),
        "{:?}",
        log.checker.violations()
    );
}

#[test]
fn sidecar_uploads_are_not_compactor_writes() {
    let bytes = serde_json::to_vec(&*meta(9, &[9])).expect("json");
    outside_write_is_no_compactor_write(SIDECAR, &meta_path(id(9)), bytes, PutMode::Create);
}

#[test]
fn an_operators_edit_by_hand_is_no_compactor_write() {
    let released = br#"{"epoch":5,"holder":"a","seq":9,"renewed_unix_ms":0}"#.to_vec();
    outside_write_is_no_compactor_write(
        OPERATOR,
        "compactd/fence.json",
        released,
        PutMode::Overwrite,
    );
}

#[test]
fn deleting_the_only_copy_of_samples_is_reported_only_when_it_happens() {
    let mut log = Log::new(true);
    log.block("a", 5, 1, &[1]);
    log.run_with("a", 5, WriteOp::DeleteBlock(id(1)), Fault::Unavailable);
    assert_eq!(
        log.count(Invariant::BucketHealth),
        0,
        "the 503 deleted nothing"
    );
    log.run("a", 5, WriteOp::DeleteBlock(id(1)));
    assert_eq!(log.count(Invariant::BucketHealth), 1);
    assert!(log.checker.violations()[0]
        .text
        .contains("no other visible block"));

    let mut covered = Log::new(true);
    covered.block("a", 5, 1, &[1]);
    covered.block("a", 5, 2, &[1]);
    covered.run("a", 5, WriteOp::DeleteBlock(id(1)));
    assert!(
        covered.checker.violations().is_empty(),
        "block 2 holds its samples"
    );
}

#[test]
fn meta_json_before_the_index_is_reported() {
    let mut log = Log::new(true);
    log.run(
        "a",
        5,
        WriteOp::PutMeta {
            meta: meta(1, &[1]),
        },
    );
    assert_eq!(log.count(Invariant::BucketHealth), 1);
    assert!(log.checker.violations()[0].text.contains("index"));
}

/// The checker shares no logic with what it judges (the rule at the top of checker.rs): of
/// `compactd::core`, only these plain data types may appear in its code or its oracle's.
#[test]
fn the_checker_uses_no_core_logic() {
    let allowed = [
        "use compactd::core::cycle::CycleConfig;",
        "use compactd::core::types::{StoreRequest, WriteOp};",
    ];
    let sources = [
        ("checker.rs", include_str!("../checker.rs")),
        ("checker/oracle.rs", include_str!("oracle.rs")),
        ("checker/units.rs", include_str!("units.rs")),
        ("checker/balance.rs", include_str!("balance.rs")),
    ];
    for (file, source) in sources {
        for line in source.lines().map(str::trim) {
            if line.starts_with("//") || !line.contains("core::") {
                continue;
            }
            assert!(
                allowed.contains(&line),
                "{file}: `{line}` reaches into compactd's core"
            );
        }
    }
}

#[test]
fn a_bucket_is_finished_once_no_window_is_left_and_covered_blocks_are_gone() {
    let cycle = crate::setup::cycle_config(&mut compactd::rng::Rng::new(1));
    let mut log = Log::new(true);
    for (n, min_h) in [(1, 0), (2, 2), (3, 8), (4, 10)] {
        log.block_at("a", n, &[n], min_h, min_h + 2);
    }
    assert!(
        !finished(&log.store, &cycle),
        "[0h, 8h) holds two blocks that end before block 3 starts"
    );
    log.block_at("a", 5, &[1, 2], 0, 4);
    assert!(
        !finished(&log.store, &cycle),
        "block 5 covers blocks 1 and 2"
    );
    log.run("a", 5, WriteOp::DeleteBlock(id(1)));
    log.run("a", 5, WriteOp::DeleteBlock(id(2)));
    assert!(finished(&log.store, &cycle));
    assert!(
        log.checker.violations().is_empty(),
        "{:?}",
        log.checker.violations()
    );
}

// Stream ownership: single writer and commit order per unit, wrong-unit.

/// The etcd prefix of the stream logs' elections.
const PREFIX: &str = "/e";

/// External labels from `name=value` pairs.
fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Block `n` (its own source) with external labels `l`.
fn labeled(n: u128, l: &BTreeMap<String, String>) -> Box<BlockMeta> {
    let mut m = meta(n, &[n]);
    m.thanos = Some(ThanosMeta {
        labels: l.clone(),
        ..ThanosMeta::default()
    });
    m
}

impl Log {
    /// A stream world's log, with `replica` as the replica label.
    fn streams(strict: bool) -> Log {
        Log::keyed(
            strict,
            Keying::Units(UnitRules {
                replica_labels: vec!["replica".into()],
                prefix: PREFIX.into(),
            }),
        )
    }

    /// A new election key `<PREFIX>/<under><lease hex>` on a new lease: its epoch.
    fn elect(&mut self, under: &str) -> u64 {
        self.at += 1;
        let lease = match self
            .etcd
            .execute(self.at, &CoordOp::Grant { ttl_secs: 3600 })
        {
            Answer::Now(CoordResult::Granted { lease, .. }) => lease,
            other => panic!("grant: {other:?}"),
        };
        let campaign = CoordOp::Campaign {
            key: format!("{PREFIX}/{under}{:x}", lease.0),
            value: "node".into(),
            lease,
        };
        match self.etcd.execute(self.at, &campaign) {
            Answer::Now(CoordResult::Campaigned { create_revision }) => create_revision as u64,
            other => panic!("campaign: {other:?}"),
        }
    }

    /// A new owner's epoch for the stream of labels `l`.
    fn stream_epoch(&mut self, l: &BTreeMap<String, String>) -> u64 {
        let Unit::Stream(id) = unit_of_labels(l, &["replica".to_string()]) else {
            panic!("{l:?} is no stream");
        };
        self.elect(&format!("streams/{id:016x}/"))
    }

    /// `node` uploads block `n` of labels `l` (files, then meta.json) under `epoch`.
    fn block_in(&mut self, node: &str, epoch: u64, n: u128, l: &BTreeMap<String, String>) {
        self.files(node, epoch, n);
        let meta = labeled(n, l);
        self.run(node, epoch, WriteOp::PutMeta { meta });
    }

    /// `node` uploads the files of block `n` under `epoch`.
    fn files(&mut self, node: &str, epoch: u64, n: u128) {
        let upload = WriteOp::UploadFiles {
            job: JobId(1),
            block: id(n),
        };
        self.run(node, epoch, upload);
    }

    /// `node` writes object `path` directly under `epoch`.
    fn put(&mut self, node: &str, epoch: u64, path: &str) {
        self.at += 1_000;
        let from = Origin {
            node,
            epoch,
            at_ms: WALL0 + self.at,
        };
        self.store
            .put(from, path, b"{}".to_vec(), PutMode::Overwrite, Fault::Pass)
            .expect("put");
        self.checker.after(&self.store);
    }

    /// The end of the world: the per-unit judgment.
    fn judge(&mut self) {
        self.checker.finish_units(&self.etcd);
    }
}

#[test]
fn two_streams_interleaved_by_their_two_owners_are_clean() {
    let (a, b) = (labels(&[("cluster", "c0")]), labels(&[("cluster", "c1")]));
    let mut log = Log::streams(true);
    let (ea, eb) = (log.stream_epoch(&a), log.stream_epoch(&b));
    log.block_in("x", ea, 1, &a);
    log.block_in("y", eb, 2, &b);
    log.block_in("x", ea, 3, &a);
    log.block_in("y", eb, 4, &b);
    log.judge();
    assert!(
        log.checker.violations().is_empty(),
        "{:?}",
        log.checker.violations()
    );

    // The same log judged over the whole bucket breaks both orders.
    let mut bucket = Log::new(true);
    bucket.block("x", ea, 1, &[1]);
    bucket.block("y", eb, 2, &[2]);
    bucket.block("x", ea, 3, &[3]);
    assert!(bucket.count(Invariant::SingleWriter) > 0);
}

#[test]
fn one_stream_interleaved_by_two_owners_breaks_both_orders() {
    let a = labels(&[("cluster", "c0")]);
    let mut log = Log::streams(true);
    let (old, new) = (log.stream_epoch(&a), log.stream_epoch(&a));
    log.block_in("x", old, 1, &a);
    log.block_in("y", new, 2, &a);
    log.block_in("x", old, 3, &a);
    log.judge();
    assert!(log.count(Invariant::SingleWriter) > 0);
    assert!(log.count(Invariant::CommitOrder) > 0);
    assert_eq!(log.count(Invariant::WrongUnit), 0);
    let text = &log.checker.violations()[0].text;
    let stream = unit_of_labels(&a, &[]).to_string();
    assert!(text.starts_with(&stream), "{text}");
    assert!(
        text.contains(&format!("epoch {old} (x) wrote after epoch {new}")),
        "{text}"
    );
}

#[test]
fn replicas_of_a_stream_are_one_unit() {
    let r0 = labels(&[("cluster", "c0"), ("replica", "r0")]);
    let r1 = labels(&[("cluster", "c0"), ("replica", "r1")]);
    let mut log = Log::streams(false);
    let (old, new) = (log.stream_epoch(&r0), log.stream_epoch(&r1));
    log.block_in("x", old, 1, &r0);
    log.block_in("y", new, 2, &r1);
    log.block_in("x", old, 3, &r0);
    log.judge();
    assert!(
        log.count(Invariant::CommitOrder) > 0,
        "commit order holds when not strict"
    );
    assert_eq!(log.count(Invariant::SingleWriter), 0, "not strict");
}

#[test]
fn an_epoch_of_stream_a_on_a_block_of_stream_b_is_wrong_unit() {
    let (a, b) = (labels(&[("cluster", "c0")]), labels(&[("cluster", "c1")]));
    let mut log = Log::streams(true);
    let ea = log.stream_epoch(&a);
    log.block_in("x", ea, 1, &b);
    log.judge();
    // Its files (known by their meta.json) and the meta.json.
    assert_eq!(log.count(Invariant::WrongUnit), 3);
    let text = &log.checker.violations()[0].text;
    let (ua, ub) = (unit_of_labels(&a, &[]), unit_of_labels(&b, &[]));
    assert!(
        text.contains(&format!("is {ua}, wrote an object of {ub}")),
        "{text}"
    );
}

#[test]
fn the_bucket_leader_owns_label_less_blocks_partial_blocks_and_its_fence() {
    let a = labels(&[("cluster", "c0")]);
    let only_replica = labels(&[("replica", "r0")]);
    let mut log = Log::streams(true);
    let (bucket, ea) = (log.elect("election/"), log.stream_epoch(&a));
    log.block_in("x", bucket, 1, &only_replica);
    log.put("x", bucket, "compactd/fence.json");
    let fence = format!("compactd/fence/{:016x}.json", labels_hash(&a));
    log.put("y", ea, &fence);
    // Stream a's owner leaves files without a meta.json; the bucket leader cleans them up.
    log.files("y", ea, 2);
    log.run("x", bucket, WriteOp::DeleteBlock(id(2)));
    log.judge();
    assert!(
        log.checker.violations().is_empty(),
        "{:?}",
        log.checker.violations()
    );

    let mut wrong = Log::streams(true);
    let (bucket, ea) = (wrong.elect(""), wrong.stream_epoch(&a));
    wrong.put("y", ea, "compactd/fence.json");
    wrong.put("x", bucket, &fence);
    wrong.files("y", ea, 2);
    wrong.run("y", ea, WriteOp::DeleteBlock(id(2)));
    wrong.judge();
    // Its write of the bucket fence, the bucket leader's of the stream fence, and the deletes
    // of the partial block's two files (its own upload keeps its epoch's unit).
    assert_eq!(
        wrong.count(Invariant::WrongUnit),
        4,
        "{:?}",
        wrong.checker.violations()
    );
}

#[test]
fn files_take_the_unit_of_the_meta_json_that_lands_later() {
    let (a, b) = (labels(&[("cluster", "c0")]), labels(&[("cluster", "c1")]));
    let mut log = Log::streams(true);
    let (ea, eb) = (log.stream_epoch(&a), log.stream_epoch(&b));
    log.files("x", ea, 1);
    log.block_in("y", eb, 2, &b);
    log.run(
        "x",
        ea,
        WriteOp::PutMeta {
            meta: labeled(1, &a),
        },
    );
    log.judge();
    assert!(
        log.checker.violations().is_empty(),
        "{:?}",
        log.checker.violations()
    );

    // An older owner of stream a writing between the files and the meta.json of a newer one
    // breaks a's order, though the files were not yet visible.
    let mut log = Log::streams(true);
    let (old, new) = (log.stream_epoch(&a), log.stream_epoch(&a));
    log.files("y", new, 1);
    log.put(
        "x",
        old,
        &format!("compactd/fence/{:016x}.json", labels_hash(&a)),
    );
    log.run(
        "y",
        new,
        WriteOp::PutMeta {
            meta: labeled(1, &a),
        },
    );
    log.judge();
    assert!(log.count(Invariant::SingleWriter) > 0);
}

#[test]
fn a_stream_epoch_belongs_to_one_node() {
    let a = labels(&[("cluster", "c0")]);
    let mut log = Log::streams(false);
    let ea = log.stream_epoch(&a);
    log.block_in("x", ea, 1, &a);
    log.block_in("y", ea, 2, &a);
    assert!(log.count(Invariant::SingleWriter) > 0);
    let text = &log.checker.violations()[0].text;
    assert!(
        text.contains(&format!("epoch {ea} written by x and by y")),
        "{text}"
    );
}

#[test]
fn the_bucket_leader_writing_a_stream_is_a_wrong_unit() {
    let a = labels(&[("cluster", "c0")]);
    let mut log = Log::streams(true);
    let bucket = log.elect("election/");
    log.block_in("x", bucket, 1, &a);
    log.judge();
    assert!(
        log.count(Invariant::WrongUnit) > 0,
        "the bucket's key on a stream"
    );
}

/// The checker's stream ids are the core's (its fence paths and election keys): the one place
/// the two meet, as the oracle meets the planner in `oracle/tests.rs`.
#[test]
fn stream_ids_are_prometheus_label_hashes_as_the_core_computes_them() {
    use compactd::core::stream::StreamId;
    let replica = vec!["replica".to_string()];
    for l in [
        labels(&[("cluster", "c0")]),
        labels(&[("cluster", "eu-1"), ("tenant", "t7"), ("replica", "r1")]),
        labels(&[("a", ""), ("b\u{ff}", "x")]),
    ] {
        let core = StreamId::of_labels(&l, &replica).map(|s| s.0);
        let ours = match unit_of_labels(&l, &replica) {
            Unit::Stream(id) => Some(id),
            Unit::Bucket => None,
        };
        assert_eq!(ours, core, "{l:?}");
    }
    assert_eq!(
        unit_of_labels(&labels(&[("replica", "r0")]), &replica),
        Unit::Bucket
    );
}

#[test]
fn unfinished_names_the_units_with_work_left() {
    let cycle = crate::setup::cycle_config(&mut compactd::rng::Rng::new(1));
    let a = labels(&[("cluster", "c0")]);
    let mut log = Log::new(true);
    log.files("x", 5, 9);
    // As in the test above: [0h, 8h) holds two blocks that end before the third starts.
    for (n, min_h) in [(1, 0), (2, 2), (3, 8), (4, 10)] {
        let mut m = labeled(n, &a);
        m.min_time = min_h * 3_600_000;
        m.max_time = (min_h + 2) * 3_600_000;
        log.files("x", 5, n);
        log.run("x", 5, WriteOp::PutMeta { meta: m });
    }
    let left = unfinished(&log.store, &cycle);
    let units: Vec<Unit> = left.keys().copied().collect();
    assert_eq!(units, [Unit::Bucket, unit_of_labels(&a, &[])], "{left:?}");
    assert!(left[&Unit::Bucket].contains("partial block"));
    assert!(!finished(&log.store, &cycle));
}

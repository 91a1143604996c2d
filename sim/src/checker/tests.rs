//! Each invariant the checker watches during a run fails on a write log built to break it,
//! and stays quiet on its legitimate neighbour.

use compactd::core::types::{Epoch, JobId, Millis, Permit, RequestId, StoreRequest, WriteOp};
use compactd::tsdb::meta::BlockMeta;

use super::*;
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
    at: i64,
}

impl Log {
    fn new(strict: bool) -> Log {
        Log {
            store: StoreModel::default(),
            checker: Checker::new(strict),
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

#[test]
fn sidecar_uploads_are_not_compactor_writes() {
    let mut log = Log::new(true);
    log.block("a", 5, 1, &[1]);
    let from = Origin {
        node: SIDECAR,
        epoch: 0,
        at_ms: WALL0 + 10_000,
    };
    let path = meta_path(id(9));
    let bytes = serde_json::to_vec(&*meta(9, &[9])).expect("json");
    log.store
        .put(from, &path, bytes, PutMode::Create, Fault::Pass)
        .expect("put");
    log.block("a", 5, 2, &[2]);
    assert!(
        log.checker.violations().is_empty(),
        "{:?}",
        log.checker.violations()
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

//! One simulated world per seed: a random bucket of one to three streams of 2h blocks (with
//! gaps), the production core run as a sequence of processes. Each store mutation may fail
//! (the core retries in a new iteration) or crash the process before it lands (a new process
//! starts from the bucket as it is, a crash during a delete leaves the block half deleted).
//! After the faults, two fault-free processes run, then the bucket is checked.

use std::collections::{BTreeSet, VecDeque};

use compactd::core::cycle::CycleConfig;
use compactd::core::leader::LeaderConfig;
use compactd::core::node::Node;
use compactd::core::plan::compaction_ranges;
use compactd::core::types::{CompactedBlock, Input, Millis, Now, Output, StoreOp, StoreResult};
use compactd::core::view::ViewConfig;
use compactd::rng::Rng;
use compactd::tsdb::block_id::BlockId;
use compactd::tsdb::meta::{merge_metas, BlockFile, BlockMeta, BlockStats, ThanosMeta};

use crate::bucket::Bucket;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_735_689_600_000;
/// Steps one process may take before the world gives up on it.
const STEPS_PER_PROCESS_MAX: u64 = 100_000;
/// Processes (crash + restart) one world may go through.
const PROCESSES_MAX: u32 = 200;

/// Fault probabilities.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// A mutation fails with an error.
    pub fail: f64,
    /// The process dies right before a mutation.
    pub crash: f64,
}

/// What one world did and found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Processes that crashed.
    pub crashes: u32,
    /// Mutations that failed.
    pub failures: u32,
    /// Steps of the core.
    pub steps: u64,
    /// Simulated milliseconds.
    pub sim_ms: i64,
    /// Hash of every output of the core, in order (same seed, same hash).
    pub hash: u64,
    /// Broken invariants.
    pub violations: Vec<String>,
}

fn config(rng: &mut Rng) -> CycleConfig {
    CycleConfig {
        view: ViewConfig {
            min_time: i64::MIN,
            max_time: i64::MAX,
            consistency_delay_ms: 0,
            delete_delay_ms: 0,
            replica_labels: vec![],
        },
        wait: false,
        wait_interval_ms: 300_000,
        concurrency: 1 + rng.below(3) as usize,
        ranges: compaction_ranges(4).expect("level 4 exists"),
        vertical: false,
        index_size_limit_bytes: None,
        retention_ms: [0; 3],
        // Partial uploads are cleaned at once, so every crash leftover must be gone at the end.
        partial_upload_threshold_ms: 0,
    }
}

fn source_block(id: BlockId, min: i64, stream: u64) -> BlockMeta {
    BlockMeta {
        stats: BlockStats {
            num_samples: 480,
            num_series: 1,
            num_chunks: 4,
            ..BlockStats::default()
        },
        thanos: Some(ThanosMeta {
            labels: [("cluster".to_string(), format!("c{stream}"))].into(),
            source: "sidecar".into(),
            ..ThanosMeta::default()
        }),
        ..BlockMeta::level1(id, min, min + 2 * HOUR)
    }
}

fn random_bucket(rng: &mut Rng) -> (Bucket, BTreeSet<BlockId>) {
    let mut bucket = Bucket::default();
    let mut sources = BTreeSet::new();
    for stream in 0..1 + rng.below(3) {
        for i in 0..2 + rng.below(40) as i64 {
            if rng.chance(0.1) {
                continue;
            }
            let min = T0 + 2 * HOUR * i;
            let id = BlockId::from_parts((min + 2 * HOUR) as u64, rng.ulid_bits());
            bucket.add(source_block(id, min, stream), Millis(min + 2 * HOUR));
            sources.insert(id);
        }
    }
    (bucket, sources)
}

/// Runs the world of `seed`.
pub fn run_seed(seed: u64, faults: Faults) -> Outcome {
    let mut rng = Rng::new(seed);
    let (mut bucket, sources) = random_bucket(&mut rng);
    let cfg = config(&mut rng);
    let mut out = Outcome {
        seed,
        ..Outcome::default()
    };
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(seed);
    let mut now = Now {
        mono: Millis(0),
        wall: Millis(T0 + 90 * 24 * HOUR),
    };
    let mut clean_runs = 0;
    for _ in 0..PROCESSES_MAX {
        let faulty = if clean_runs == 0 {
            faults
        } else {
            Faults {
                fail: 0.0,
                crash: 0.0,
            }
        };
        let mut node = Node::new(cfg.clone(), leader_config(), rng.next_u64());
        let exit = run_process(
            &mut node,
            &mut bucket,
            &mut rng,
            faulty,
            &mut now,
            &mut out,
            &mut hasher,
        );
        match exit {
            Some(0) if faulty.crash == 0.0 && faulty.fail == 0.0 => {
                clean_runs += 1;
                if clean_runs == 2 {
                    break;
                }
            }
            Some(0) => clean_runs += 1,
            Some(2) => out.violations.push("compaction halted".into()),
            _ => {}
        }
    }
    if clean_runs < 2 {
        out.violations
            .push(format!("did not converge within {PROCESSES_MAX} processes"));
    }
    out.violations.extend(bucket.check_final(&sources));
    out.hash = hasher.digest();
    out.sim_ms = now.mono.0;
    out
}

/// A single instance (no etcd): the same node name in every process.
fn leader_config() -> LeaderConfig {
    LeaderConfig {
        node: "sim-0".into(),
        election: None,
        lease_ttl_ms: 15_000,
        op_timeout_ms: 5_000,
        takeover_delay_ms: 10_000,
        commit_window_ms: 5_000,
    }
}

/// One process: steps the node until it exits (`Some(code)`) or crashes (`None`).
fn run_process(
    node: &mut Node,
    bucket: &mut Bucket,
    rng: &mut Rng,
    faults: Faults,
    now: &mut Now,
    out: &mut Outcome,
    hasher: &mut xxhash_rust::xxh64::Xxh64,
) -> Option<i32> {
    let mut inputs = VecDeque::from([Input::Start]);
    for _ in 0..STEPS_PER_PROCESS_MAX {
        let input = inputs.pop_front()?;
        *now = Now {
            mono: now.mono.plus(1000),
            wall: now.wall.plus(1000),
        };
        out.steps += 1;
        for o in node.step(*now, input) {
            hasher.update(format!("{o:?}").as_bytes());
            match o {
                Output::Store(req) => {
                    if req.op.is_mutation() && rng.chance(faults.crash) {
                        out.crashes += 1;
                        let partial = matches!(req.op, StoreOp::DeleteBlock(_)) && rng.chance(0.5);
                        if partial {
                            bucket.apply(&req.op, now.wall, true);
                        }
                        return None;
                    }
                    let result = if req.op.is_mutation() && rng.chance(faults.fail) {
                        out.failures += 1;
                        StoreResult::Failed("injected 503".into())
                    } else if matches!(req.op, StoreOp::Sync) {
                        StoreResult::Synced(bucket.sync())
                    } else if let StoreOp::CasFence { record, expected } = &req.op {
                        bucket.cas_fence(record, expected.as_ref())
                    } else if matches!(req.op, StoreOp::ReadFence) {
                        bucket.read_fence()
                    } else {
                        bucket.apply(&req.op, now.wall, false);
                        StoreResult::Done
                    };
                    inputs.push_back(Input::Store(req.id, result));
                }
                Output::Compact(job) => {
                    let meta = merge_metas(job.output, &job.inputs).map(|mut m| {
                        m.stats.num_samples = job.inputs.iter().map(|i| i.stats.num_samples).sum();
                        m
                    });
                    let result = meta
                        .map(|meta| {
                            Some(CompactedBlock {
                                meta,
                                files: vec![BlockFile {
                                    rel_path: "index".into(),
                                    size_bytes: 1,
                                    hash: None,
                                }],
                            })
                        })
                        .map_err(|e| compactd::core::types::JobError {
                            retryable: false,
                            message: e.to_string(),
                        });
                    inputs.push_back(Input::Compacted(job.job, Box::new(result)));
                }
                Output::Exit(code) => return Some(code),
                Output::Timer(_) | Output::Event(_) | Output::Coord(_) => {}
            }
        }
    }
    None
}

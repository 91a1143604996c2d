//! What a world is made of before it runs: node names and clusters, the source blocks and
//! their sidecar uploads, the nodes' settings and clocks.

use std::collections::BTreeMap;
use std::path::Path;

use compactd::core::cycle::CycleConfig;
use compactd::core::fence::FENCE_PATH;
use compactd::core::leader::{LeaderConfig, Provider, Safety, StreamsConfig};
use compactd::core::plan::compaction_ranges;
use compactd::core::view::{Scope, ViewConfig};
use compactd::rng::Rng;
use compactd::tsdb::meta::META_FILENAME;
use compactd::units::DAY_MS;

use crate::blocks::{generate_stream, read_samples, Samples, SourceBlock, BLOCK_MS};
use crate::bug::Bug;
use crate::checker::SIDECAR;
use crate::clock::Clock;
use crate::election::Coordinator;
use crate::scenario::{Mode, Ownership};
use crate::shared::WALL0;
use crate::store::{Origin, PutMode, StoreModel};

/// The election's etcd prefix.
/// The etcd prefix of every world (`--etcd.prefix`).
pub const PREFIX: &str = "/compactd/sim";
/// The bucket's election: `<PREFIX>/election`.
pub const ELECTION: &str = "/compactd/sim/election";
/// Cluster names.
const CLUSTERS: [&str; 3] = ["eu-1", "eu-2", "us-1"];

/// Node names and their clusters.
pub fn topology(rng: &mut Rng, mode: Mode, elected: usize) -> (Vec<String>, Vec<String>) {
    match mode {
        Mode::Single { count } => (
            (0..count)
                .map(|i| format!("single-{}", letter(i)))
                .collect(),
            vec![CLUSTERS[0].to_string(); count],
        ),
        Mode::Elected => {
            let clusters = 2 + rng.below(2) as usize;
            (0..elected)
                .map(|i| {
                    let c = CLUSTERS[i % clusters];
                    (format!("{c}-{}", letter(i / clusters)), c.to_string())
                })
                .unzip()
        }
    }
}

fn letter(i: usize) -> char {
    (b'a' + i as u8) as char
}

/// The source blocks: 1–3 streams of 2h blocks with gaps, each with the world time a sidecar
/// uploads it (0: in the bucket from the start; later ones arrive during the fault phase, so
/// there is compaction work while faults strike), and every sample they hold.
pub fn seed_blocks(
    rng: &mut Rng,
    scratch: &Path,
    upload_until_ms: i64,
    busy: bool,
) -> (Vec<(i64, SourceBlock)>, Samples) {
    let mut blocks = Vec::new();
    let streams = if busy { 3 } else { 1 + rng.below(3) };
    for stream in 0..streams {
        let initial = 3 + rng.below(8) as usize;
        let later = if busy { 8 + rng.below(9) } else { rng.below(9) } as usize;
        let name = format!("c{stream}");
        let labels = [("cluster".to_string(), name.clone())].into();
        let source = SourceStream {
            name,
            labels,
            initial,
            later,
        };
        blocks.extend(seed_stream(rng, scratch, upload_until_ms, source));
    }
    with_samples(scratch, blocks)
}

/// The streams of a stream world: at most this many.
const STREAMS_MAX: u64 = 30;
/// The streams of a stream world: at least this many.
const STREAMS_MIN: u64 = 4;

/// The source blocks of a stream world ([`Ownership::Stream`](crate::scenario::Ownership)):
/// 4–30 streams `{cluster=cN, tenant=tM}` in three clusters, some of them as two replicas
/// (`replica=r0`, `replica=r1`: one stream once `replica` is a deduplication replica label),
/// and in 30% of the worlds one stream of blocks without external labels (the bucket
/// leader's). Each stream has 2–4 blocks in the bucket and 0–2 arriving later: few per
/// stream, so that 30 streams cost about what a busy world of three does.
pub fn seed_stream_blocks(
    rng: &mut Rng,
    scratch: &Path,
    upload_until_ms: i64,
) -> (Vec<(i64, SourceBlock)>, Samples) {
    let count = (STREAMS_MIN + rng.below(STREAMS_MAX - STREAMS_MIN + 1)) as usize;
    let mut streams: Vec<BTreeMap<String, String>> = Vec::new();
    if rng.chance(0.3) {
        streams.push(BTreeMap::new());
    }
    for i in 0.. {
        if streams.len() >= count {
            break;
        }
        let labels: BTreeMap<String, String> = [
            ("cluster".to_string(), format!("c{}", i % 3)),
            ("tenant".to_string(), format!("t{}", i / 3)),
        ]
        .into();
        if streams.len() + 2 <= count && rng.chance(0.25) {
            for replica in ["r0", "r1"] {
                let mut labels = labels.clone();
                labels.insert("replica".to_string(), replica.to_string());
                streams.push(labels);
            }
        } else {
            streams.push(labels);
        }
    }
    let mut blocks = Vec::new();
    for (i, labels) in streams.into_iter().enumerate() {
        let source = SourceStream {
            name: format!("s{i}"),
            labels,
            initial: 2 + rng.below(3) as usize,
            later: rng.below(3) as usize,
        };
        blocks.extend(seed_stream(rng, scratch, upload_until_ms, source));
    }
    with_samples(scratch, blocks)
}

/// One stream to generate.
struct SourceStream {
    /// Its scratch directory's name.
    name: String,
    /// Its external labels.
    labels: BTreeMap<String, String>,
    /// Blocks in the bucket from the start.
    initial: usize,
    /// Blocks a sidecar uploads during the fault phase.
    later: usize,
}

/// The blocks of one stream with their upload times (a block after the second one is left
/// out 15% of the time: a gap).
fn seed_stream(
    rng: &mut Rng,
    scratch: &Path,
    upload_until_ms: i64,
    source: SourceStream,
) -> Vec<(i64, SourceBlock)> {
    let start = (WALL0 - 40 * DAY_MS) / BLOCK_MS * BLOCK_MS;
    let SourceStream {
        name,
        labels,
        initial,
        later,
    } = source;
    let generated = generate_stream(
        &scratch.join("sources"),
        &name,
        labels,
        start + BLOCK_MS * rng.below(6) as i64,
        initial + later,
        rng.next_u64(),
    )
    .expect("generate source blocks");
    let mut times: Vec<i64> = (0..later)
        .map(|_| 5_000 + rng.below((upload_until_ms - 10_000).max(1) as u64) as i64)
        .collect();
    times.sort_unstable();
    let at = std::iter::repeat_n(0, initial).chain(times);
    let mut blocks = Vec::new();
    for (i, (b, at)) in generated.into_iter().zip(at).enumerate() {
        if i < 2 || !rng.chance(0.15) {
            blocks.push((at, b));
        }
    }
    blocks
}

/// `blocks` in upload order, and every sample they hold.
fn with_samples(
    scratch: &Path,
    mut blocks: Vec<(i64, SourceBlock)>,
) -> (Vec<(i64, SourceBlock)>, Samples) {
    blocks.sort_by_key(|(at, b)| (*at, b.meta.ulid));
    let files: Vec<_> = blocks
        .iter()
        .map(|(_, b)| (b.meta.ulid, b.files.clone()))
        .collect();
    let expected = read_samples(&scratch.join("expected"), &files).expect("read source samples");
    let _ = std::fs::remove_dir_all(scratch.join("sources"));
    (blocks, expected)
}

/// A sidecar uploads block `b` at world time `now`, in the shipper's order (meta.json last).
pub fn upload_source(store: &mut StoreModel, b: &SourceBlock, now: i64) {
    let from = Origin {
        node: SIDECAR,
        epoch: 0,
        at_ms: WALL0 + now,
    };
    let (meta, rest): (Vec<_>, Vec<_>) = b.files.iter().partition(|(rel, _)| rel == META_FILENAME);
    for (rel, bytes) in rest.into_iter().chain(meta) {
        let path = format!("{}/{rel}", b.meta.ulid);
        store
            .put(
                from,
                &path,
                bytes.clone(),
                PutMode::Overwrite,
                Default::default(),
            )
            .expect("a sidecar upload");
    }
}

pub fn cycle_config(rng: &mut Rng) -> CycleConfig {
    let delete_delay_ms = rng.below(120_000) as i64;
    let wait_interval_ms = 10_000 + rng.below(50_000) as i64;
    CycleConfig {
        view: ViewConfig {
            min_time: i64::MIN,
            max_time: i64::MAX,
            consistency_delay_ms: 0,
            delete_delay_ms,
            replica_labels: vec![],
            selector_relabel: vec![],
            scope: Scope::All,
        },
        wait: true,
        wait_interval_ms,
        concurrency: 1 + rng.below(2) as usize,
        ranges: compaction_ranges(3).expect("level 3 exists"),
        vertical: false,
        index_size_limit_bytes: None,
        retention_ms: [0; 3],
        partial_upload_threshold_ms: 120_000,
        downsampling: false,
        downsample_concurrency: 1,
        // The sim ignores the backlog gauges; computing them runs their code on every bucket
        // state the faults produce.
        progress_interval_ms: 30_000,
        // A background clean-up every 1-4 s, so that clean-ups fall inside passes (a
        // compaction takes 0.5-3.5 s), between jobs' runs of commits, as well as while a node
        // waits. Derived, not drawn, so that every later draw, and the worlds, stay as they
        // were.
        cleanup_interval_ms: 1_000 + wait_interval_ms % 3_000,
        halt_on_error: true,
        // The sim's blocks never have out-of-order chunks; the option only matters then.
        skip_out_of_order_chunks: false,
    }
}

/// A node's clocks: arbitrary monotonic offsets; with skew, rates up to 4% off and wall
/// offsets up to a minute.
pub fn clock(rng: &mut Rng, skew: bool) -> Clock {
    let (rate, wall_jitter) = if skew {
        (
            0.96 + rng.next_f64() * 0.08,
            rng.below(120_000) as i64 - 60_000,
        )
    } else {
        (1.0, rng.below(1_000) as i64 - 500)
    };
    Clock {
        mono_offset_ms: rng.below(1 << 40) as i64,
        wall_offset_ms: WALL0 + wall_jitter,
        rate,
    }
}

/// A node's leadership settings; in a stream world every node holds the streams assigned to
/// it (`--ownership=stream`), with a short rebalance delay so that worlds see rebalances.
/// When the bucket elects, the election is the fence's path and one leader owns the bucket
/// in every world (per-stream ownership needs etcd, as production logs); the nonce is set
/// per process ([`nonce`]).
pub fn leader_config(
    name: &str,
    coordinator: Coordinator,
    bug: Option<Bug>,
    ownership: Ownership,
) -> LeaderConfig {
    let streams =
        (ownership == Ownership::Stream && coordinator != Coordinator::Bucket).then(|| {
            StreamsConfig {
                prefix: PREFIX.to_string(),
                observe_interval_ms: 1_000,
                discover_interval_ms: 10_000,
                rebalance_delay_ms: 5_000,
            }
        });
    let (election, provider) = match coordinator {
        Coordinator::Etcd => (Some(ELECTION.to_string()), Provider::Etcd),
        Coordinator::Bucket => (Some(FENCE_PATH.to_string()), Provider::Bucket),
        Coordinator::None => (None, Provider::Etcd),
    };
    LeaderConfig {
        node: name.to_string(),
        election,
        provider,
        nonce: String::new(),
        lease_ttl_ms: 15_000,
        op_timeout_ms: 5_000,
        takeover_delay_ms: if bug == Some(Bug::NoTakeoverDelay) {
            0
        } else {
            10_000
        },
        commit_window_ms: 5_000,
        safety: Safety {
            lease_deadline: bug != Some(Bug::NoDeadline),
            fence: bug != Some(Bug::NoFence),
            abandon_unheard_lease: bug != Some(Bug::KeepRenewing),
            stream_fence: bug != Some(Bug::NoStreamFence),
            stream_takeover_delay: bug != Some(Bug::NoRebalanceDelay),
            stream_release: bug != Some(Bug::StaleOwnership),
            admin_stream_routing: bug != Some(Bug::AdminWrongUnit),
            observe_wait: bug != Some(Bug::NoObserveWait),
        },
        stream: None,
        streams,
    }
}

/// The incarnation nonce of process number `starts` of node `name` under the bucket
/// provider: unique per process (a restarted node is a new one), derived rather than drawn,
/// so that the world's draws stay as they are.
pub fn nonce(name: &str, starts: u32) -> String {
    format!("{name}.{starts}")
}

//! `compactd run` on a hostile bucket: one filesystem bucket seeded with every kind of damage
//! (truncated chunks, a bad chunk CRC, an index pointing past its segment, a missing index,
//! meta.json with a wrong version, garbage or a missing field, markers with bad JSON,
//! overlapping blocks, stray files, empty blocks, a partial upload), one damage per group next
//! to healthy groups.
//!
//! The operator's loop is replayed: run; when the run halts (or fails and would retry), check
//! that it names the damaged block, its file and the problem, then do what the Thanos runbook
//! says (no-compact-mark a block with damaged data, move overlapping blocks aside) and run
//! again, until a run completes. After every run: every file of every original block is byte
//! for byte what it was unless the block was replaced by a compacted block listing it as a
//! source (or held no sample), every deletion mark sits on such a block, and every group still
//! holds every readable sample. At the end the healthy groups are compacted to Thanos' levels
//! and the damage left is still reported in the logs, `thanos_blocks_meta_synced` and `tools
//! bucket verify`.
//!
//! What Thanos does, case by case (pkg/block/fetcher.go, pkg/compact/compact.go), is written
//! next to each case in [`seed`].

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use compactd::tsdb::block::BlockReader;
use compactd::tsdb::index::IndexWriter;

/// Each group's external label value (`cluster=<name>`); the seed of `tools generate` is its
/// position + 1, so that block ids differ between groups.
const GROUPS: [&str; 12] = [
    "ok-1",
    "ok-2",
    "truncated",
    "crc",
    "past-end",
    "no-index",
    "bad-meta",
    "bad-markers",
    "stray",
    "empty",
    "all-empty",
    "overlap",
];

/// One damaged object and how compactd must report it.
struct Damage {
    /// The group (cluster label) it is in.
    group: &'static str,
    /// The blocks concerned.
    blocks: Vec<String>,
    /// Text the report must contain besides the block ids.
    problem: &'static str,
    /// The file named in the report, relative to the block.
    file: &'static str,
}

/// What [`seed`] did to the bucket.
struct Seeded {
    /// Damage that stops compaction, with the operator's remedy and how the run ends.
    halting: Vec<(Damage, Remedy, Stop)>,
    /// Damage reported at every sync, never halting.
    reported: Vec<Damage>,
    /// Blocks whose data cannot be read (skipped by the sample comparison).
    unreadable: BTreeSet<String>,
    /// A partial upload (no meta.json), to be cleaned up.
    partial: String,
}

/// How a one-shot run stops on a damage: the log line and the exit code.
type Stop = (&'static str, i32);

/// A halt (`thanos_compact_halted 1`; exit 2 in a one-shot run).
const HALT: Stop = ("critical error detected; halting", 2);

/// An iteration that fails and is retried (exit 1 in a one-shot run).
const RETRY: Stop = ("iteration failed; retrying", 1);

/// What the operator does after a halt.
enum Remedy {
    /// Put a `no-compact-mark.json` on the block (Thanos' runbook for a corrupt block).
    NoCompact,
    /// Move the blocks out of the bucket ("remove the overlapping blocks").
    MoveAside,
}

/// The directory names (block ids) of `blocks`.
fn ids(blocks: &[PathBuf]) -> Vec<String> {
    blocks
        .iter()
        .map(|b| b.file_name().unwrap().to_str().unwrap().to_string())
        .collect()
}

/// The block dirs of each group (those whose meta.json is JSON), sorted by id.
fn by_group(bucket: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for b in block_dirs(bucket) {
        let Ok(meta) = serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(b.join("meta.json")).unwrap(),
        ) else {
            continue;
        };
        let group = meta["thanos"]["labels"]["cluster"].as_str().unwrap();
        out.entry(group.to_string()).or_default().push(b);
    }
    out
}

fn edit_meta(block: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = block.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut meta);
    std::fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

/// The offset in `chunks/000001` of the block's last chunk.
fn last_chunk_offset(block: &Path) -> u64 {
    let mut b = BlockReader::open(block).unwrap();
    let mut last = 0;
    for series in b.index.all_series().unwrap() {
        for c in &series.unwrap().chunks {
            assert_eq!(c.chunk_ref >> 32, 0, "generated blocks have one segment");
            last = last.max(c.chunk_ref & 0xffff_ffff);
        }
    }
    last
}

/// Replaces a block's data by an empty index and an empty chunks dir (numSamples 0), as
/// Prometheus writes a block for a head without samples.
fn empty_out(block: &Path) {
    std::fs::remove_dir_all(block.join("chunks")).unwrap();
    std::fs::create_dir(block.join("chunks")).unwrap();
    IndexWriter::create(&block.join("index"))
        .unwrap()
        .finish()
        .unwrap();
    edit_meta(block, |m| m["stats"] = serde_json::json!({}));
}

fn no_compact_mark(block: &Path) {
    let id = block.file_name().unwrap().to_str().unwrap();
    std::fs::write(
        block.join("no-compact-mark.json"),
        format!(
            r#"{{"id":"{id}","version":1,"details":"corrupt, see the halt","no_compact_time":1735689600,"reason":"manual"}}"#
        ),
    )
    .unwrap();
}

/// Generates the groups and damages them.
fn seed(bucket: &Path) -> Seeded {
    let dir = bucket.to_str().unwrap();
    for (i, g) in GROUPS.iter().enumerate() {
        compactd_ok(&[
            "tools",
            "generate",
            "--out",
            dir,
            "--series",
            "5",
            "--hours",
            "10",
            "--external-labels",
            &format!("cluster={g}"),
            "--seed",
            &(i + 1).to_string(),
        ]);
    }
    let groups = by_group(bucket);
    let block = |g: &str, i: usize| groups[g][i].clone();
    let name = |b: &Path| b.file_name().unwrap().to_str().unwrap().to_string();
    let mut halting = Vec::new();
    let mut reported = Vec::new();
    let mut unreadable = BTreeSet::new();

    // Truncated chunks: the segment is cut in the middle of a chunk. Thanos' health check of
    // the index passes, the compaction fails reading the chunk and `compact blocks` halts
    // (`halt(errors.Wrapf(err, "compact blocks %v", ...))`). Remedy: no-compact-mark it.
    let b = block("truncated", 0);
    let seg = b.join("chunks/000001");
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len / 2 + 3)
        .unwrap();
    halting.push((
        Damage {
            group: "truncated",
            blocks: vec![name(&b)],
            problem: "runs past the end",
            file: "chunks/000001",
        },
        Remedy::NoCompact,
        HALT,
    ));
    unreadable.insert(name(&b));

    // A bad CRC: one flipped bit in a chunk's data. Prometheus' chunk reader checks each
    // chunk's CRC32 when it reads it (tsdb/chunks `checkCRC32`), so Thanos' compaction fails
    // and halts, as above.
    let b = block("crc", 1);
    let seg = b.join("chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&seg, bytes).unwrap();
    halting.push((
        Damage {
            group: "crc",
            blocks: vec![name(&b)],
            problem: "CRC mismatch",
            file: "chunks/000001",
        },
        Remedy::NoCompact,
        HALT,
    ));
    unreadable.insert(name(&b));

    // The index points past the segment: the segment ends where its last chunk starts.
    // Thanos: reading that chunk fails in the compaction, which halts.
    let b = block("past-end", 2);
    let seg = b.join("chunks/000001");
    let cut = last_chunk_offset(&b);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut)
        .unwrap();
    halting.push((
        Damage {
            group: "past-end",
            blocks: vec![name(&b)],
            problem: "chunk offset outside the records",
            file: "chunks/000001",
        },
        Remedy::NoCompact,
        HALT,
    ));
    unreadable.insert(name(&b));

    // A block without its index (meta.json present). Thanos' health check of the downloaded
    // block fails ("gather index issues for block"): an error that is neither a halt nor a
    // retry, so `thanos compact` exits with it, and is restarted into the same error.
    // compactd retries the iteration (exits 1 when one-shot), naming the missing file.
    let b = block("no-index", 3);
    std::fs::remove_file(b.join("index")).unwrap();
    halting.push((
        Damage {
            group: "no-index",
            blocks: vec![name(&b)],
            problem: "No such file",
            file: "index",
        },
        Remedy::NoCompact,
        RETRY,
    ));
    unreadable.insert(name(&b));

    // meta.json damage: compactd reports each (block id, file, reason) at every sync, counts
    // it as `corrupted-meta-json`, skips the block and never deletes it.
    // - garbage: Thanos' fetcher gets ErrorSyncMetaCorrupted, counts the block as
    //   corrupted-meta-json and keeps it among the partial blocks (which its clean-up deletes
    //   after 48h; compactd keeps it, a documented difference: its data may be intact);
    // - version 2: Thanos' fetcher fails the whole sync ("incomplete view: unexpected meta
    //   file ... version: 2", state "failed"), a retry error, so Thanos compacts nothing at all
    //   while the block is there; compactd skips this block only;
    // - no maxTime: Go's json.Unmarshal would take 0 and Thanos would plan a block ending in
    //   1970; compactd refuses the meta.json.
    let garbage = block("bad-meta", 0);
    std::fs::write(garbage.join("meta.json"), "{ not json").unwrap();
    let version = block("bad-meta", 1);
    edit_meta(&version, |m| m["version"] = 2.into());
    let no_max = block("bad-meta", 2);
    edit_meta(&no_max, |m| {
        m.as_object_mut().unwrap().remove("maxTime");
    });
    for (b, problem) in [
        (&garbage, "invalid meta.json"),
        (&version, "unsupported version 2"),
        (&no_max, "missing field `maxTime`"),
    ] {
        reported.push(Damage {
            group: "bad-meta",
            blocks: vec![name(b)],
            problem,
            file: "meta.json",
        });
        unreadable.insert(name(b));
    }

    // Markers with bad JSON on healthy blocks. Thanos' filters warn ("found partial
    // deletion-mark.json" / "found partial no-compact-mark.json") and treat the block as
    // unmarked: it is compacted like the others. When the compaction then marks it, Thanos'
    // MarkForDeletion finds the file present and leaves it ("file already exists"), so the
    // block stays, hidden by the deduplication filter, and is never deleted.
    let del = block("bad-markers", 0);
    std::fs::write(del.join("deletion-mark.json"), "{\"id\": ").unwrap();
    let noc = block("bad-markers", 1);
    std::fs::write(noc.join("no-compact-mark.json"), "nope").unwrap();
    for (b, file) in [(&del, "deletion-mark.json"), (&noc, "no-compact-mark.json")] {
        reported.push(Damage {
            group: "bad-markers",
            blocks: vec![name(b)],
            problem: "unreadable marker",
            file,
        });
    }

    // Stray files in block dirs and in the bucket. Thanos downloads the whole block dir,
    // compacts index and chunks (segment names that are not numbers are skipped), deletes
    // the whole dir with its source, and ignores objects outside ULID-named dirs.
    let b = block("stray", 1);
    std::fs::write(b.join("notes.txt"), "operator notes").unwrap();
    std::fs::copy(b.join("chunks/000001"), b.join("chunks/000001.bak")).unwrap();
    std::fs::create_dir_all(bucket.join("debug")).unwrap();
    std::fs::write(bucket.join("debug/notes.txt"), "not a block").unwrap();
    std::fs::write(bucket.join("README"), "not a block either").unwrap();

    // Empty blocks (numSamples 0): one in the middle of a group, compacted with its
    // neighbours as Thanos does with any block; and a group of empty blocks only, of which
    // Thanos writes no block and marks the empty sources for deletion ("no compacted blocks,
    // deleting source blocks").
    empty_out(&block("empty", 1));
    for b in &groups["all-empty"] {
        empty_out(b);
    }

    // Overlapping blocks: two blocks of another seed starting an hour later. Thanos halts
    // ("pre compaction overlap check"), even if they are no-compact-marked, as it checks
    // every block of the group; the runbook: remove them, or enable vertical compaction.
    let before: BTreeSet<PathBuf> = block_dirs(bucket).into_iter().collect();
    compactd_ok(&[
        "tools",
        "generate",
        "--out",
        dir,
        "--series",
        "5",
        "--hours",
        "2",
        "--external-labels",
        "cluster=overlap",
        "--seed",
        "99",
        "--start-ms",
        "1735693200000",
    ]);
    let extra: Vec<PathBuf> = block_dirs(bucket)
        .into_iter()
        .filter(|b| !before.contains(b))
        .collect();
    assert_eq!(extra.len(), 2);
    halting.push((
        Damage {
            group: "overlap",
            blocks: ids(&extra),
            problem: "overlaps found",
            file: "",
        },
        Remedy::MoveAside,
        HALT,
    ));

    // A partial upload: a block dir without meta.json. Thanos and compactd delete it once
    // its newest object is older than the partial-upload threshold (0s here).
    let partial = "01JGFSEP80AAAAAAAAAAAAAAAA".to_string();
    copy_dir(
        &block("ok-1", 0).join("chunks"),
        &bucket.join(&partial).join("chunks"),
    );

    Seeded {
        halting,
        reported,
        unreadable,
        partial,
    }
}

/// Every file under `dir`, relative path to bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = Vec::new();
    collect_files(dir, &mut all);
    all.into_iter()
        .map(|f| {
            (
                f.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&f).unwrap(),
            )
        })
        .collect()
}

/// A block's meta.json, if it parses.
fn meta(block: &Path) -> Option<serde_json::Value> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(block.join("meta.json")).ok()?).ok()?;
    (m["version"] == 1 && m.get("maxTime").is_some()).then_some(m)
}

/// True when the block has a deletion mark that parses (Thanos ignores the others).
fn validly_marked(block: &Path) -> bool {
    std::fs::read(block.join("deletion-mark.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some()
}

/// Per group: the samples of its readable blocks without a valid deletion mark.
fn samples(bucket: &Path, unreadable: &BTreeSet<String>) -> BTreeMap<String, String> {
    by_group(bucket)
        .into_iter()
        .map(|(g, blocks)| {
            let live: Vec<PathBuf> = blocks
                .into_iter()
                .filter(|b| {
                    meta(b).is_some()
                        && !validly_marked(b)
                        && !unreadable.contains(b.file_name().unwrap().to_str().unwrap())
                })
                .collect();
            (g, our_dump(&live))
        })
        .collect()
}

/// The sources (block ids) of every committed block written by a compaction (level > 1).
fn compacted_sources(bucket: &Path) -> BTreeSet<String> {
    block_dirs(bucket)
        .iter()
        .filter_map(|b| meta(b))
        .filter(|m| m["compaction"]["level"].as_u64().unwrap() > 1)
        .flat_map(|m| {
            m["compaction"]["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The invariants that hold after every run.
fn check_bucket(
    bucket: &Path,
    original: &BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>>,
    moved: &BTreeSet<String>,
    partial: &str,
    run: usize,
) {
    let sources = compacted_sources(bucket);
    for (id, files_before) in original {
        if moved.contains(id) || id == partial {
            continue;
        }
        let dir = bucket.join(id);
        let now = if dir.exists() {
            files(&dir)
        } else {
            BTreeMap::new()
        };
        if now.contains_key(Path::new("meta.json")) {
            for (f, bytes) in files_before {
                assert!(
                    now.get(f) == Some(bytes),
                    "run {run}: {id}/{} changed or vanished",
                    f.display()
                );
            }
            for f in now.keys().filter(|f| !files_before.contains_key(*f)) {
                assert!(
                    f == Path::new("no-compact-mark.json") || f == Path::new("deletion-mark.json"),
                    "run {run}: {id}/{} appeared",
                    f.display()
                );
            }
        }
        // Deleted (or being deleted: meta.json goes first) or marked: only a source of a
        // committed compacted block, or a block without samples, may go.
        let stats = &meta_of(files_before)["stats"];
        let empty = stats.is_object() && stats["numSamples"].as_u64().unwrap_or(0) == 0;
        let marked = now
            .get(Path::new("deletion-mark.json"))
            .is_some_and(|m| serde_json::from_slice::<serde_json::Value>(m).is_ok());
        if !now.contains_key(Path::new("meta.json")) || marked {
            assert!(
                sources.contains(id) || empty,
                "run {run}: {id} deleted or marked but no compacted block lists it as a source"
            );
        }
    }
    for name in ["README", "debug/notes.txt"] {
        assert!(
            bucket.join(name).is_file(),
            "run {run}: stray object {name} deleted"
        );
    }
}

/// The meta.json among a block's files, `Null` if it does not parse.
fn meta_of(files: &BTreeMap<PathBuf, Vec<u8>>) -> serde_json::Value {
    files
        .get(Path::new("meta.json"))
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `compactd run` on the bucket, cleaning up partial uploads at once.
fn run(config: &str, data: &Path) -> CompactdRun {
    CompactdRun::new(config)
        .data_dir(data)
        .arg("--downsampling.disable")
        .flag("--delete-delay", "0s")
        .flag("--debug.partial-upload-threshold", "0s")
}

fn run_once(config: &str, data: &Path) -> Output {
    run(config, data).output()
}

/// Runs one iteration in `--wait` mode and returns `/metrics` once it is over, and the log.
fn run_for_metrics(config: &str, data: &Path) -> (String, String) {
    let child = run(config, data)
        .wait()
        .wait_interval("1h")
        .command()
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let log = common::stderr::StderrLog::follow(child.0.stderr.take().unwrap());
    let port = log.port();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let metrics = loop {
        let (_, body) = http_get(port, "/metrics");
        if body.contains("thanos_compact_iterations_total 1") {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no iteration finished:\n{body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    (metrics, log.finish())
}

/// The blocks, the file (as `<block>/<file>`) and the problem of a damage appear together on
/// one log line.
fn assert_reported(log: &str, d: &Damage) {
    let found = log.lines().any(|l| {
        d.blocks.iter().all(|b| l.contains(b))
            && l.contains(d.problem)
            && (d.file.is_empty() || l.contains(&format!("{}/{}", d.blocks[0], d.file)))
    });
    assert!(
        found,
        "group {}: no log line names {:?}, {} and {:?}:\n{log}",
        d.group, d.blocks, d.file, d.problem
    );
}

#[test]
fn hostile_bucket_is_reported_healthy_groups_compacted_and_no_healthy_data_lost() {
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    let aside = tmp.path().join("aside");
    let data = tmp.path().join("data");
    let seeded = seed(&bucket);
    let config = fs_config(&bucket);
    let original: BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>> = std::fs::read_dir(&bucket)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().len() == 26)
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                files(&p),
            )
        })
        .collect();
    let mut expected = samples(&bucket, &seeded.unreadable);
    let mut moved = BTreeSet::new();
    let mut halts_seen = BTreeSet::new();

    let mut run = 1;
    let log = loop {
        let present: Vec<&Damage> = seeded
            .reported
            .iter()
            .filter(|d| bucket.join(&d.blocks[0]).join(d.file).exists())
            .collect();
        let out = run_once(&config, &data);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        check_bucket(&bucket, &original, &moved, &seeded.partial, run);
        for d in present {
            assert_reported(&log, d);
        }
        if out.status.success() {
            break log;
        }
        let halt = log
            .lines()
            .find(|l| l.contains(HALT.0) || l.contains(RETRY.0))
            .unwrap_or_else(|| panic!("run {run}: no halt or retry line:\n{log}"));
        let (i, (damage, remedy, stop)) = seeded
            .halting
            .iter()
            .enumerate()
            .find(|(_, (d, _, _))| d.blocks.iter().all(|b| halt.contains(b)))
            .unwrap_or_else(|| panic!("run {run} stopped on no seeded damage: {halt}"));
        assert!(halt.contains(stop.0), "run {run}: {halt}");
        assert_eq!(out.status.code(), Some(stop.1), "run {run}:\n{log}");
        assert_reported(halt, damage);
        assert!(halts_seen.insert(i), "run {run} halted twice on {halt}");
        eprintln!(
            "run {run}: stopped on {} as expected ({})",
            damage.group, stop.0
        );
        for b in &damage.blocks {
            match remedy {
                Remedy::NoCompact => no_compact_mark(&bucket.join(b)),
                Remedy::MoveAside => {
                    std::fs::create_dir_all(&aside).unwrap();
                    std::fs::rename(bucket.join(b), aside.join(b)).unwrap();
                    moved.insert(b.clone());
                }
            }
        }
        if matches!(remedy, Remedy::MoveAside) {
            expected = samples(&bucket, &seeded.unreadable);
        }
        run += 1;
        assert!(run <= seeded.halting.len() + 1, "too many runs");
    };
    assert_eq!(
        halts_seen.len(),
        seeded.halting.len(),
        "every damage that stops compaction did once"
    );
    assert!(
        !bucket.join(&seeded.partial).exists(),
        "the partial upload is cleaned up"
    );
    // Every readable sample of every group is still there, healthy or not.
    assert_eq!(samples(&bucket, &seeded.unreadable), expected);

    // The healthy groups, and the healthy blocks of the damaged ones, are compacted: per
    // group, what Thanos' planner makes of 10h of 2h blocks without the no-compact-marked
    // ones (the newest block is never planned).
    let mut levels = BTreeMap::new();
    for (g, blocks) in by_group(&bucket) {
        let mut l: Vec<(i64, u64)> = blocks
            .iter()
            .filter(|b| !validly_marked(b))
            .filter_map(|b| meta(b))
            .map(|m| {
                let hours =
                    (m["maxTime"].as_i64().unwrap() - m["minTime"].as_i64().unwrap()) / 3_600_000;
                (hours, m["compaction"]["level"].as_u64().unwrap())
            })
            .collect();
        l.sort();
        levels.insert(g, l);
    }
    let compacted = vec![(2, 1), (8, 2)];
    for g in ["ok-1", "ok-2", "stray", "empty", "overlap"] {
        assert_eq!(levels[g], compacted, "group {g}: {levels:?}");
    }
    // The block with the garbage deletion mark is compacted, its mark left alone (it is not
    // ours to overwrite), so it stays: its sources are covered and the sync hides it.
    assert_eq!(levels["bad-markers"], vec![(2, 1), (2, 1), (8, 2)]);
    // Corrupt first block: the other three of the 8h window are compacted.
    assert_eq!(levels["truncated"], vec![(2, 1), (2, 1), (6, 2)]);
    // Corrupt second or third block: one block on either side is left, a planner window of
    // a single block is not compacted.
    assert_eq!(levels["crc"], vec![(2, 1), (2, 1), (2, 1), (4, 2)]);
    assert_eq!(levels["past-end"], vec![(2, 1), (2, 1), (2, 1), (4, 2)]);
    // No index in the fourth block: the first three are compacted.
    assert_eq!(levels["no-index"], vec![(2, 1), (2, 1), (6, 2)]);
    // Empty sources are deleted without a compacted block; the newest is never planned.
    assert_eq!(levels["all-empty"], vec![(2, 1)]);
    // Three unreadable metas: two blocks left, the newest held back.
    assert_eq!(levels["bad-meta"], vec![(2, 1), (2, 1)]);
    for (id, f) in &original {
        if f.contains_key(Path::new("notes.txt")) {
            assert!(
                !bucket.join(id).exists(),
                "the compacted block {id} is deleted with its stray files"
            );
        }
    }

    // One more iteration in --wait mode: nothing to do, nothing halted, the damage counted.
    let (metrics, wait_log) = run_for_metrics(&config, &data);
    // What is still there is still reported (the block with the garbage no-compact mark was
    // compacted and deleted).
    for d in &seeded.reported {
        if bucket.join(&d.blocks[0]).join(d.file).exists() {
            assert_reported(&wait_log, d);
        }
    }
    // The compactor keeps trying to mark the block under the garbage deletion mark (now an
    // outdated source) and warns each time, as Thanos' MarkForDeletion does.
    let garbage_marked = &seeded
        .reported
        .iter()
        .find(|d| d.file == "deletion-mark.json")
        .unwrap()
        .blocks[0];
    assert!(
        wait_log
            .lines()
            .any(|l| l.contains(garbage_marked) && l.contains("marker already exists")),
        "{wait_log}"
    );
    for want in [
        "thanos_compact_halted 0",
        "thanos_blocks_meta_synced{state=\"corrupted-meta-json\"} 3",
        "thanos_blocks_meta_synced{state=\"no-meta-json\"} 0",
        "thanos_compact_todo_compactions 0",
    ] {
        assert!(metrics.contains(want), "/metrics lacks {want}:\n{metrics}");
    }
    check_bucket(&bucket, &original, &moved, &seeded.partial, run + 1);

    // `tools bucket verify` (like Thanos', which applies no filter) fails and names each
    // damage still there. The only overlap left is the block whose garbage deletion mark
    // could not be replaced, with the compacted block covering it: the operator's to fix.
    let verify = compactd(&["tools", "bucket", "verify", "--objstore.config", &config]);
    let text = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    assert!(!verify.status.success(), "{text}");
    for d in &seeded.reported {
        if bucket.join(&d.blocks[0]).join(d.file).exists() {
            assert!(
                text.lines()
                    .any(|l| l.contains(&d.blocks[0]) && l.contains(d.file)),
                "verify names {:?} {}:\n{text}",
                d.blocks,
                d.file
            );
        }
    }
    for l in text.lines().filter(|l| l.contains("overlap")) {
        assert!(l.contains(garbage_marked), "{text}");
    }
    assert!(!log.contains("halting"), "{log}");
    eprintln!(
        "hostile bucket: {run} runs, {} stopped on damage, {:.1}s",
        halts_seen.len(),
        started.elapsed().as_secs_f64()
    );
}

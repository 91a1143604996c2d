//! What a rewrite changes in one block, worked out from its index before anything is written:
//! the tombstones that delete series and ranges, the new labels of relabelled series, and the
//! change log. Thanos applies the relabel config first, then the deletions, to the relabelled
//! series; so does this. A deletion request matches a series that has every matcher's label
//! with a matching value (a matcher on a label the series lacks does not match, as in
//! Thanos); any matching request without intervals deletes the series whole, otherwise the
//! matching requests' intervals are deleted.
//!
//! With a relabel config Thanos re-encodes every series in chunks of 120 samples before the
//! deletions see them, which changes the ranges a cut logs; they are computed from the
//! samples here so the change log matches.

use crate::relabel::RelabelConfig;
use crate::tsdb::block::BlockReader;
use crate::tsdb::chunks::{ChunkRef, ENCODING_XOR};
use crate::tsdb::compact::{SeriesRelabel, SAMPLES_PER_CHUNK};
use crate::tsdb::index::ChunkMeta;
use crate::tsdb::labels::Labels;
use crate::tsdb::tombstones::{Interval, Tombstones};
use crate::tsdb::xor::XorIter;
use crate::tsdb::TsdbError;

use super::changelog;
use super::config::DeletionRequest;

/// The rewrite of one block.
#[derive(Debug, Default)]
pub struct RewritePlan {
    /// Deleted ranges per series id (whole series: the full range).
    pub tombstones: Tombstones,
    /// New labels per series id, when a relabel config is given (an empty set drops).
    pub relabel: Option<SeriesRelabel>,
    /// The change log, in Thanos' order.
    pub changes: Vec<String>,
    /// Series in the block.
    pub series: u64,
    /// Series deleted whole (by a deletion or by the relabel config).
    pub deleted: u64,
    /// Series with some samples deleted.
    pub cut: u64,
    /// Series whose labels changed.
    pub relabelled: u64,
}

/// What the deletions do to a series.
enum Verdict {
    Keep,
    Whole,
    Cut(Vec<Interval>),
}

/// Plans the rewrite of `block`.
pub fn plan(
    block: &mut BlockReader,
    deletions: &[DeletionRequest],
    relabels: Option<&[RelabelConfig]>,
) -> Result<RewritePlan, TsdbError> {
    let mut plan = RewritePlan::default();
    let Some(rules) = relabels else {
        for s in block.index.all_series()? {
            let s = s?;
            plan.series += 1;
            let ranges: Vec<(i64, i64)> =
                s.chunks.iter().map(|c| (c.min_time, c.max_time)).collect();
            let verdict = verdict(&s.labels, deletions);
            plan.apply(&s.labels, &[s.id], &ranges, verdict);
        }
        return Ok(plan);
    };
    plan_relabelled(block, deletions, rules, &mut plan)?;
    Ok(plan)
}

/// [`plan`] with relabel rules: relabels every series, then applies the deletions to the
/// relabelled series in their new order.
fn plan_relabelled(
    block: &mut BlockReader,
    deletions: &[DeletionRequest],
    rules: &[RelabelConfig],
    plan: &mut RewritePlan,
) -> Result<(), TsdbError> {
    let mut relabel = SeriesRelabel::new();
    let mut kept: Vec<(Labels, u32, Vec<ChunkMeta>)> = Vec::new();
    for s in block.index.all_series()? {
        let s = s?;
        plan.series += 1;
        let map = s
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        match crate::relabel::process(&map, rules).map(Labels::from_pairs) {
            Some(new) if !new.is_empty() => {
                if new != s.labels {
                    plan.changes.push(changelog::relabelled(&s.labels, &new));
                    plan.relabelled += 1;
                    relabel.insert(s.id, new.clone());
                }
                kept.push((new, s.id, s.chunks));
            }
            _ => {
                let span = whole_span(&s.chunks);
                let range: Vec<Interval> = changelog::whole_range(&span);
                plan.changes.push(changelog::deleted(&s.labels, &range));
                plan.deleted += 1;
                relabel.insert(s.id, Labels::default());
            }
        }
    }
    // Stable: series that meet keep their index order.
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    for group in kept.chunk_by(|a, b| a.0 == b.0) {
        let ids: Vec<u32> = group.iter().map(|g| g.1).collect();
        let chunks: Vec<ChunkMeta> = group.iter().flat_map(|g| g.2.iter().copied()).collect();
        let verdict = verdict(&group[0].0, deletions);
        let ranges = match verdict {
            Verdict::Keep => Vec::new(),
            Verdict::Whole => whole_span(&chunks),
            Verdict::Cut(_) => reencoded_ranges(block, &chunks)?,
        };
        plan.apply(&group[0].0, &ids, &ranges, verdict);
    }
    plan.relabel = Some(relabel);
    Ok(())
}

impl RewritePlan {
    /// Applies `verdict` to the series `labels` made of the block series `ids`, whose chunks
    /// span `ranges` (in order, as Thanos' deletion sees them).
    fn apply(&mut self, labels: &Labels, ids: &[u32], ranges: &[(i64, i64)], verdict: Verdict) {
        let intervals = match verdict {
            Verdict::Keep => return,
            Verdict::Whole => {
                self.changes
                    .push(changelog::deleted(labels, &changelog::whole_range(ranges)));
                self.deleted += 1;
                vec![Interval {
                    min_time: i64::MIN,
                    max_time: i64::MAX,
                }]
            }
            Verdict::Cut(intervals) => {
                let logged = changelog::cut_ranges(ranges, &intervals);
                if !logged.is_empty() {
                    self.changes.push(changelog::deleted(labels, &logged));
                    self.cut += 1;
                }
                intervals
            }
        };
        for &id in ids {
            for &iv in &intervals {
                self.tombstones.add(u64::from(id), iv);
            }
        }
    }
}

/// What the deletion requests do to a series with `labels`.
fn verdict(labels: &Labels, deletions: &[DeletionRequest]) -> Verdict {
    let mut intervals = Vec::new();
    for d in deletions {
        let hit = d
            .matchers
            .iter()
            .all(|m| labels.get(&m.name).is_some_and(|v| m.matches(v)));
        if !hit {
            continue;
        }
        if d.intervals.is_empty() {
            return Verdict::Whole;
        }
        intervals.extend(d.intervals.iter().copied());
    }
    if intervals.is_empty() {
        Verdict::Keep
    } else {
        Verdict::Cut(changelog::merged(intervals))
    }
}

/// The one range from the earliest chunk start to the latest chunk end (a merged series).
fn whole_span(chunks: &[ChunkMeta]) -> Vec<(i64, i64)> {
    let min = chunks.iter().map(|c| c.min_time).min();
    let max = chunks.iter().map(|c| c.max_time).max();
    min.zip(max).into_iter().collect()
}

/// The ranges of the chunks Thanos' relabel step re-encodes the series into: its samples
/// (of every block series behind it, one per timestamp) in runs of 120. A series with chunks
/// of another encoding than XOR keeps its stored chunks' ranges.
fn reencoded_ranges(
    block: &mut BlockReader,
    chunks: &[ChunkMeta],
) -> Result<Vec<(i64, i64)>, TsdbError> {
    let mut times = Vec::new();
    for c in chunks {
        let (encoding, data) = block.chunks.chunk(ChunkRef(c.chunk_ref))?;
        if encoding != ENCODING_XOR {
            let mut stored: Vec<(i64, i64)> =
                chunks.iter().map(|c| (c.min_time, c.max_time)).collect();
            stored.sort_unstable();
            return Ok(stored);
        }
        let mut it = XorIter::new(data);
        while let Some((t, _)) = it.next_sample().map_err(|e| {
            let r = ChunkRef(c.chunk_ref);
            TsdbError::corrupt(
                &block
                    .dir
                    .join("chunks")
                    .join(crate::tsdb::chunks::segment_file_name(r.segment())),
                u64::from(r.offset()),
                format!("chunk does not decode: {e}"),
            )
        })? {
            times.push(t);
        }
    }
    times.sort_unstable();
    times.dedup();
    Ok(times
        .chunks(SAMPLES_PER_CHUNK)
        .map(|run| (run[0], run[run.len() - 1]))
        .collect())
}

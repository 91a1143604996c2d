//! The change log of a rewrite, line for line as Thanos' `compactv2.changeLog` writes it:
//! `Deleted <labels> <intervals>` for a series deleted whole or in part and
//! `Relabelled <old labels> <new labels>` for a series whose labels changed. Labels print as
//! Prometheus' `labels.String()` (`{a="1", b="2"}`), intervals as Go's `%v` of
//! `tombstones.Intervals` (`[{mint maxt} {mint maxt}]`, `[]` when none).
//!
//! What a deletion logs follows Thanos too: a series deleted whole logs the range from its
//! first chunk's start to its last chunk's end; a series cut logs, per chunk it touches, the
//! whole chunk's range when an interval covers the chunk, else the parts of the intervals
//! inside the chunk, merged.

use std::fmt::Write as _;

use crate::tsdb::labels::Labels;
use crate::tsdb::tombstones::{Interval, Tombstones};

/// The line for a deleted series.
pub fn deleted(labels: &Labels, intervals: &[Interval]) -> String {
    let mut s = format!("Deleted {labels} [");
    for (i, iv) in intervals.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(s, "{sep}{{{} {}}}", iv.min_time, iv.max_time);
    }
    s.push(']');
    s
}

/// The line for a relabelled series.
pub fn relabelled(old: &Labels, new: &Labels) -> String {
    format!("Relabelled {old} {new}")
}

/// Merges closed intervals as Prometheus' `Intervals.Add` does (overlapping or adjacent
/// ones become one), sorted.
pub fn merged(intervals: impl IntoIterator<Item = Interval>) -> Vec<Interval> {
    let mut t = Tombstones::default();
    for iv in intervals {
        t.add(0, iv);
    }
    t.get(0).to_vec()
}

/// What Thanos logs as deleted of a series whose chunks span `chunks` (in order) when
/// `intervals` (merged) are deleted from it; empty when no chunk is touched.
pub fn cut_ranges(chunks: &[(i64, i64)], intervals: &[Interval]) -> Vec<Interval> {
    let mut deleted = Vec::new();
    for &(min, max) in chunks {
        if intervals.iter().any(|d| d.contains(min) && d.contains(max)) {
            deleted.push(Interval {
                min_time: min,
                max_time: max,
            });
            continue;
        }
        for d in intervals
            .iter()
            .filter(|d| min <= d.max_time && d.min_time <= max)
        {
            deleted.push(Interval {
                min_time: d.min_time.max(min),
                max_time: d.max_time.min(max),
            });
        }
    }
    merged(deleted)
}

/// What Thanos logs as the range of a series deleted whole with chunks `chunks` (in order):
/// the first chunk's start to the last chunk's end.
pub fn whole_range(chunks: &[(i64, i64)]) -> Vec<Interval> {
    match (chunks.first(), chunks.last()) {
        (Some(first), Some(last)) => vec![Interval {
            min_time: first.0,
            max_time: last.1,
        }],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(min_time: i64, max_time: i64) -> Interval {
        Interval { min_time, max_time }
    }

    #[test]
    fn lines_are_formatted_as_thanos_writes_them() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(
            deleted(&l, &[iv(1, 2), iv(5, 9)]),
            r#"Deleted {__name__="up", job="a\"b"} [{1 2} {5 9}]"#
        );
        assert_eq!(
            deleted(&l, &[]),
            r#"Deleted {__name__="up", job="a\"b"} []"#
        );
        let n = Labels::from_pairs([("__name__", "up"), ("service", "x")]);
        assert_eq!(
            relabelled(&l, &n),
            r#"Relabelled {__name__="up", job="a\"b"} {__name__="up", service="x"}"#
        );
    }

    #[test]
    fn logged_ranges_follow_chunks_as_thanos() {
        let chunks = [(0, 99), (100, 199), (200, 299)];
        // Covers chunk 2 whole, cuts chunks 1 and 3: the parts inside chunks, merged.
        assert_eq!(cut_ranges(&chunks, &[iv(50, 250)]), vec![iv(50, 250)]);
        // Two intervals in one chunk stay apart; a chunk inside one logs its own range.
        assert_eq!(
            cut_ranges(&chunks, &[iv(10, 20), iv(30, 40), iv(150, 1000)]),
            vec![iv(10, 20), iv(30, 40), iv(150, 299)]
        );
        assert_eq!(cut_ranges(&chunks, &[iv(400, 500)]), vec![]);
        assert_eq!(whole_range(&chunks), vec![iv(0, 299)]);
        assert_eq!(whole_range(&[]), vec![]);
        assert_eq!(
            merged([iv(5, 6), iv(1, 4), iv(8, 9)]),
            vec![iv(1, 6), iv(8, 9)]
        );
    }
}

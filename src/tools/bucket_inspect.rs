//! `compactd tools bucket inspect`: every block of the bucket in Thanos' inspect table.
//!
//! The columns, cell texts and order are Thanos' (`cmd/thanos/tools_bucket.go`): FROM and
//! UNTIL to the second in RFC3339 (UTC here; Thanos uses the host's zone), RANGE,
//! UNTIL-DOWN and RESOLUTION as Go durations, counts with English thousands separators,
//! labels sorted `k=v` joined by commas. UNTIL-DOWN is how much longer the block's range
//! must grow before it is downsampled: 40h minus its range at raw resolution, 10d minus its
//! range at 5m, `-` at 1h (or any other resolution, where Thanos panics).
//!
//! Rows are sorted by the `--sort-by` columns (default FROM, UNTIL), then by ULID; two cells
//! compare as times, else durations, else integers, else text, as Thanos' `compare`. Output is
//! Thanos' ASCII table (tablewriter with side borders and `|` separators), CSV or TSV (Go's
//! `encoding/csv` quoting). Only blocks with a readable meta.json are shown, as in Thanos.

use std::cmp::Ordering;

use super::gofmt;
use super::label_matcher::{matches_all, LabelMatcher};
use crate::core::types::{MetaState, SyncResult};
use crate::tsdb::meta::BlockMeta;

/// Thanos' inspect columns, in order.
pub const COLUMNS: [&str; 13] = [
    "ULID",
    "FROM",
    "UNTIL",
    "RANGE",
    "UNTIL-DOWN",
    "#SERIES",
    "#SAMPLES",
    "#CHUNKS",
    "COMP-LEVEL",
    "COMP-FAILED",
    "LABELS",
    "RESOLUTION",
    "SOURCE",
];

/// Thanos' `downsample.ResLevel1DownsampleRange`: raw blocks are downsampled from 40h.
const RAW_DOWNSAMPLE_RANGE_MS: i64 = 40 * 3_600_000;
/// Thanos' `downsample.ResLevel2DownsampleRange`: 5m blocks are downsampled from 10d.
const FIVE_MIN_DOWNSAMPLE_RANGE_MS: i64 = 10 * 24 * 3_600_000;
/// The 5m resolution in ms.
const RES_5M: i64 = 300_000;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectOutput {
    /// Thanos' ASCII table.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// Tab-separated values with a header line.
    Tsv,
}

impl InspectOutput {
    /// The format `--output` names: `table`, `csv` or `tsv`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(InspectOutput::Table),
            "csv" => Ok(InspectOutput::Csv),
            "tsv" => Ok(InspectOutput::Tsv),
            _ => Err(format!("--output {s:?}: expected table, csv or tsv")),
        }
    }
}

/// One cell: its text and what it sorts as.
struct Cell {
    text: String,
    key: SortKey,
}

#[derive(Clone, Copy)]
enum SortKey {
    Time(i64),
    Duration(i64),
    Int(u64),
    Text,
}

impl Cell {
    fn new(text: String, key: SortKey) -> Self {
        Cell { text, key }
    }

    fn count(n: u64) -> Self {
        Cell::new(gofmt::thousands(n), SortKey::Int(n))
    }

    fn duration(ms: i64) -> Self {
        Cell::new(gofmt::duration(ms), SortKey::Duration(ms))
    }

    fn time(ms: i64) -> Self {
        Cell::new(gofmt::unix_seconds_rfc3339(ms), SortKey::Time(ms / 1000))
    }

    fn text(text: String) -> Self {
        Cell::new(text, SortKey::Text)
    }

    /// Thanos' `compare`: as times if both are, else durations, else integers, else text.
    fn compare(&self, other: &Cell) -> Ordering {
        match (self.key, other.key) {
            (SortKey::Time(a), SortKey::Time(b)) | (SortKey::Duration(a), SortKey::Duration(b)) => {
                a.cmp(&b)
            }
            (SortKey::Int(a), SortKey::Int(b)) => a.cmp(&b),
            _ => self.text.cmp(&other.text),
        }
    }
}

/// How much longer the block's range must grow before it is downsampled, or `None` when it
/// never is (1h resolution).
pub fn until_next_downsampling(m: &BlockMeta) -> Option<i64> {
    let range = m.max_time - m.min_time;
    match m.thanos.as_ref().map_or(0, |t| t.downsample.resolution) {
        0 => Some(RAW_DOWNSAMPLE_RANGE_MS - range),
        RES_5M => Some(FIVE_MIN_DOWNSAMPLE_RANGE_MS - range),
        _ => None,
    }
}

fn row(m: &BlockMeta) -> Vec<Cell> {
    let (labels, resolution, source) = match &m.thanos {
        Some(t) => {
            let pairs: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (pairs.join(","), t.downsample.resolution, t.source.clone())
        }
        None => (String::new(), 0, String::new()),
    };
    let until_down = match until_next_downsampling(m) {
        Some(ms) => Cell::duration(ms),
        None => Cell::text("-".into()),
    };
    vec![
        Cell::text(m.ulid.to_string()),
        Cell::time(m.min_time),
        Cell::time(m.max_time),
        Cell::duration(m.max_time - m.min_time),
        until_down,
        Cell::count(m.stats.num_series),
        Cell::count(m.stats.num_samples),
        Cell::count(m.stats.num_chunks),
        Cell::count(u64::from(m.compaction.level)),
        Cell::text(m.compaction.failed.to_string()),
        Cell::text(labels),
        Cell::duration(resolution),
        Cell::text(source),
    ]
}

/// Where each `--sort-by` column is; the error names the unknown column.
pub fn sort_indices(sort_by: &[String]) -> Result<Vec<usize>, String> {
    sort_by
        .iter()
        .map(|col| {
            COLUMNS.iter().position(|c| c == col).ok_or_else(|| {
                format!(
                    "--sort-by {col:?}: no such column (columns: {})",
                    COLUMNS.join(", ")
                )
            })
        })
        .collect()
}

/// The inspect output for the blocks of `sync` whose external labels satisfy `matchers`,
/// sorted by the columns at `sort`.
pub fn render(
    sync: &SyncResult,
    matchers: &[LabelMatcher],
    sort: &[usize],
    output: InspectOutput,
) -> String {
    let empty = std::collections::BTreeMap::new();
    let mut rows: Vec<Vec<Cell>> = sync
        .blocks
        .values()
        .filter_map(|b| match &b.meta {
            MetaState::Ok(m) => Some(m),
            MetaState::Missing | MetaState::Corrupt(_) => None,
        })
        .filter(|m| matches_all(matchers, m.thanos.as_ref().map_or(&empty, |t| &t.labels)))
        .map(|m| row(m))
        .collect();
    rows.sort_by(|a, b| {
        sort.iter()
            .filter(|&&i| a[i].text != b[i].text)
            .map(|&i| a[i].compare(&b[i]))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a[0].compare(&b[0]))
    });
    let texts: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.text.as_str()).collect())
        .collect();
    match output {
        InspectOutput::Table => table(&texts),
        InspectOutput::Csv => separated(&texts, ','),
        InspectOutput::Tsv => separated(&texts, '\t'),
    }
}

/// Thanos' table: tablewriter with left and right borders, no top or bottom line, `|` at
/// the crossings, headers centred, cells left-aligned, one space of padding.
fn table(rows: &[Vec<&str>]) -> String {
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            rows.iter()
                .map(|r| width(r[i]))
                .chain([width(COLUMNS[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from("|");
    for (h, w) in COLUMNS.iter().zip(&widths) {
        let gap = w - width(h);
        let left = gap / 2;
        out.push_str(&format!(
            " {}{h}{} |",
            " ".repeat(left),
            " ".repeat(gap - left)
        ));
    }
    out.push_str("\n|");
    for w in &widths {
        out.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    out.push('\n');
    for r in rows {
        for (cell, w) in r.iter().zip(&widths) {
            out.push_str(&format!("| {cell}{} ", " ".repeat(w - width(cell))));
        }
        out.push_str("|\n");
    }
    out
}

/// Go's `encoding/csv` output with `comma` as the separator: a header line, then the rows.
fn separated(rows: &[Vec<&str>], comma: char) -> String {
    let mut out = String::new();
    let header: Vec<&str> = COLUMNS.to_vec();
    for r in std::iter::once(&header).chain(rows) {
        let fields: Vec<String> = r.iter().map(|f| csv_field(f, comma)).collect();
        out.push_str(&fields.join(&comma.to_string()));
        out.push('\n');
    }
    out
}

/// One field as `encoding/csv` writes it: quoted (inner quotes doubled) when it holds the
/// separator, a quote, CR or LF, starts with white space, or is `\.`.
fn csv_field(field: &str, comma: char) -> String {
    let needs_quotes = !field.is_empty()
        && (field == r"\."
            || field.contains([comma, '"', '\r', '\n'])
            || field.starts_with(char::is_whitespace));
    if needs_quotes {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::SyncedBlock;
    use crate::tsdb::block_id::BlockId;
    use crate::tsdb::meta::ThanosMeta;

    const T0: i64 = 1_735_689_600_000;

    fn block(n: u128, min: i64, hours: i64, cluster: &str, res: i64) -> (BlockId, SyncedBlock) {
        let id = BlockId::from_parts(T0 as u64, n);
        let mut m = BlockMeta::level1(id, min, min + hours * 3_600_000);
        m.stats.num_series = 1234;
        m.stats.num_samples = 1_234_567;
        m.stats.num_chunks = 10;
        let t = m.thanos.get_or_insert_with(ThanosMeta::default);
        t.labels.insert("cluster".into(), cluster.into());
        t.labels.insert("env".into(), "prod".into());
        t.downsample.resolution = res;
        t.source = "sidecar".into();
        (id, crate::core::testing::synced(MetaState::Ok(Box::new(m))))
    }

    fn sync() -> SyncResult {
        SyncResult {
            blocks: [
                block(1, T0 + 7_200_000, 2, "eu-1", 0),
                block(2, T0, 48, "us-1", 300_000),
                block(3, T0, 2, "eu-1", 3_600_000),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn ids() -> Vec<String> {
        (1..=3)
            .map(|n| BlockId::from_parts(T0 as u64, n).to_string())
            .collect()
    }

    #[test]
    fn cells_and_default_order() {
        let csv = render(
            &sync(),
            &[],
            &sort_indices(&["FROM".into(), "UNTIL".into()]).unwrap(),
            InspectOutput::Csv,
        );
        let ids = ids();
        let want = format!(
            "ULID,FROM,UNTIL,RANGE,UNTIL-DOWN,#SERIES,#SAMPLES,#CHUNKS,COMP-LEVEL,COMP-FAILED,LABELS,RESOLUTION,SOURCE\n\
             {},2025-01-01T00:00:00Z,2025-01-01T02:00:00Z,2h0m0s,-,\"1,234\",\"1,234,567\",10,1,false,\"cluster=eu-1,env=prod\",1h0m0s,sidecar\n\
             {},2025-01-01T00:00:00Z,2025-01-03T00:00:00Z,48h0m0s,192h0m0s,\"1,234\",\"1,234,567\",10,1,false,\"cluster=us-1,env=prod\",5m0s,sidecar\n\
             {},2025-01-01T02:00:00Z,2025-01-01T04:00:00Z,2h0m0s,38h0m0s,\"1,234\",\"1,234,567\",10,1,false,\"cluster=eu-1,env=prod\",0s,sidecar\n",
            ids[2], ids[1], ids[0]
        );
        assert_eq!(csv, want);
        let tsv = render(&sync(), &[], &[], InspectOutput::Tsv);
        assert!(tsv.starts_with("ULID\tFROM\tUNTIL\tRANGE\t"), "{tsv}");
        assert!(
            tsv.contains("\t1,234\t1,234,567\t10\t1\tfalse\tcluster=eu-1,env=prod\t0s\tsidecar\n"),
            "{tsv}"
        );
    }

    #[test]
    fn sorts_by_typed_columns_and_selects() {
        let ids = ids();
        let sort = sort_indices(&["UNTIL-DOWN".into()]).unwrap();
        let tsv = render(&sync(), &[], &sort, InspectOutput::Tsv);
        let order: Vec<&str> = tsv.lines().skip(1).map(|l| &l[..26]).collect();
        // "-" sorts as text before the durations; 38h < 192h as durations (not as text).
        assert_eq!(order, [&ids[2], &ids[0], &ids[1]]);
        let eu = [LabelMatcher::parse("cluster=\"eu-1\"").unwrap()];
        let tsv = render(&sync(), &eu, &[], InspectOutput::Tsv);
        assert_eq!(tsv.lines().count(), 3);
        assert!(!tsv.contains("us-1"));
        let e = sort_indices(&["BOGUS".into()]).unwrap_err();
        assert!(e.contains("BOGUS") && e.contains("UNTIL-DOWN"), "{e}");
    }

    #[test]
    fn table_as_tablewriter_draws_it() {
        let eu = [LabelMatcher::parse("cluster!~us.*").unwrap()];
        let out = render(&sync(), &eu, &[1, 2], InspectOutput::Table);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("|            ULID            |         FROM         |"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("|----------------------------|----------------------|"),
            "{out}"
        );
        assert!(
            lines[2].starts_with(&format!("| {} | 2025-01-01T00:00:00Z |", ids()[2])),
            "{out}"
        );
        assert!(lines[2].ends_with("| 1h0m0s     | sidecar |"), "{out}");
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{out}");
        let empty = render(&SyncResult::default(), &[], &[], InspectOutput::Table);
        assert_eq!(empty.lines().count(), 2);
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b", ','), "\"a,b\"");
        assert_eq!(csv_field("a,b", '\t'), "a,b");
        assert_eq!(csv_field("say \"hi\"", ','), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(" lead", ','), "\" lead\"");
        assert_eq!(csv_field("", ','), "");
        assert_eq!(csv_field(r"\.", ','), "\"\\.\"");
    }
}

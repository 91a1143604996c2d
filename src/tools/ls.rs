//! `compactd tools bucket ls` with Thanos' flags: which blocks it lists and how it prints them.
//!
//! Filters, as Thanos' meta fetcher filters for `ls`: `--selector.relabel-config` (over the
//! external labels and `__block_id`), `--min-time`/`--max-time` (a block is listed when
//! `maxTime >= min-time` and `minTime <= max-time`, Thanos' `TimePartitionMetaFilter`) and
//! `--exclude-delete` (blocks with a deletion mark hidden).
//!
//! Formats (`-o/--output`): not given, compactd's table ([`super::bucket::render_ls`], which
//! also shows partial and corrupt block directories); `""`, Thanos' default, one ULID per
//! line; `wide`, Thanos' one-line summary; `json`, each meta as Thanos' `json.Encoder` writes
//! it (tab-indented, so one object spans several lines); anything else, a Go template
//! ([`super::gotemplate`]) printed once per block with a newline. Thanos lists blocks in Go's
//! random map order; compactd lists them by ULID. Blocks without a readable meta.json appear
//! only in the table, as Thanos' fetcher leaves them out.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use super::gofmt;
use super::gotemplate::{MetaTemplate, TemplateError};
use crate::core::types::{MetaState, SyncResult};
use crate::core::view::{in_time_range, selected, Scope, ViewConfig};
use crate::relabel::RelabelConfig;
use crate::tsdb::meta::{BlockMeta, ThanosMeta, ZERO_TIME};

/// Thanos' default `--min-time`: every block starts after it.
pub const DEFAULT_MIN_TIME: &str = "0000-01-01T00:00:00Z";
/// Thanos' default `--max-time`: every block ends before it.
pub const DEFAULT_MAX_TIME: &str = "9999-12-31T23:59:59Z";

/// How `ls` prints the blocks.
#[derive(Debug, Clone)]
pub enum LsFormat {
    /// compactd's table (no `-o`).
    Table,
    /// One ULID per line (`-o ""`, Thanos' default).
    Ulid,
    /// `-o wide`.
    Wide,
    /// `-o json`.
    Json,
    /// `-o '<Go template>'`.
    Template(MetaTemplate),
}

impl LsFormat {
    /// The format `-o` names (`None`: the flag was not given).
    pub fn parse(output: Option<&str>) -> Result<Self, TemplateError> {
        Ok(match output {
            None => LsFormat::Table,
            Some("") => LsFormat::Ulid,
            Some("wide") => LsFormat::Wide,
            Some("json") => LsFormat::Json,
            Some(t) => LsFormat::Template(MetaTemplate::parse(t)?),
        })
    }
}

/// Which blocks `ls` lists.
#[derive(Debug, Clone)]
pub struct LsFilter {
    /// `--exclude-delete`.
    pub exclude_delete: bool,
    /// `--min-time`, Unix ms.
    pub min_time: i64,
    /// `--max-time`, Unix ms.
    pub max_time: i64,
    /// `--selector.relabel-config` (empty: every block).
    pub selector_relabel: Vec<RelabelConfig>,
}

/// Reads every block's meta and markers, giving up after `timeout_ms` (`--timeout`).
pub async fn sync_within(
    store: &Arc<dyn ObjectStore>,
    timeout_ms: u64,
) -> anyhow::Result<SyncResult> {
    tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        super::bucket::sync(store),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "reading the bucket's metas took longer than --timeout {}",
            crate::duration::format_duration_ms(timeout_ms)
        )
    })?
}

/// The blocks of `sync` that `filter` keeps. A block without a readable meta.json has no
/// time range or labels to filter on and is kept unless `--exclude-delete` hides it.
pub fn filter(sync: &SyncResult, filter: &LsFilter) -> SyncResult {
    let view = ViewConfig {
        min_time: filter.min_time,
        max_time: filter.max_time,
        consistency_delay_ms: 0,
        delete_delay_ms: 0,
        replica_labels: Vec::new(),
        selector_relabel: filter.selector_relabel.clone(),
        scope: Scope::All,
    };
    let blocks = sync
        .blocks
        .iter()
        .filter(|(_, b)| !(filter.exclude_delete && b.deletion_mark.is_some()))
        .filter(|(_, b)| match &b.meta {
            MetaState::Ok(m) => in_time_range(m, &view) && selected(m, &view),
            MetaState::Missing | MetaState::Corrupt(_) => true,
        })
        .map(|(id, b)| (*id, b.clone()))
        .collect();
    SyncResult { blocks }
}

/// The listing of `sync` in `format`.
pub fn render(sync: &SyncResult, format: &LsFormat) -> Result<String, TemplateError> {
    type Line<'a> = Box<dyn Fn(&BlockMeta) -> Result<String, TemplateError> + 'a>;
    let line: Line<'_> = match format {
        LsFormat::Table => return Ok(super::bucket::render_ls(sync)),
        LsFormat::Ulid => Box::new(|m| Ok(format!("{}\n", m.ulid))),
        LsFormat::Wide => Box::new(|m| Ok(wide_line(m))),
        LsFormat::Json => Box::new(|m| Ok(json(m))),
        LsFormat::Template(t) => Box::new(|m| Ok(format!("{}\n", t.render(m)?))),
    };
    let mut out = String::new();
    for b in sync.blocks.values() {
        if let MetaState::Ok(m) = &b.meta {
            out.push_str(&line(m)?);
        }
    }
    Ok(out)
}

/// Thanos' `-o wide` line: times to the second in RFC3339, their difference as a Go
/// duration, the level, the resolution in ms and the source.
pub fn wide_line(m: &BlockMeta) -> String {
    let (resolution, source) = m
        .thanos
        .as_ref()
        .map_or((0, ""), |t| (t.downsample.resolution, t.source.as_str()));
    format!(
        "{} -- {} - {} Diff: {}, Compaction: {}, Downsample: {}, Source: {}\n",
        m.ulid,
        gofmt::unix_seconds_rfc3339(m.min_time),
        gofmt::unix_seconds_rfc3339(m.max_time),
        gofmt::duration((m.max_time / 1000 - m.min_time / 1000) * 1000),
        m.compaction.level,
        resolution,
        source
    )
}

/// The meta as Thanos' `-o json` prints it: Go's encoding of `metadata.Meta` (whose `thanos`
/// section is always present), tab-indented, HTML characters escaped, a newline at the end.
pub fn json(m: &BlockMeta) -> String {
    let mut meta = m.clone();
    meta.thanos.get_or_insert_with(|| ThanosMeta {
        upload_time: ZERO_TIME.to_string(),
        ..ThanosMeta::default()
    });
    let text = String::from_utf8(meta.to_json()).expect("serde_json writes UTF-8");
    let mut out = gofmt::json_html_escape(&text);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::markers::DeletionMark;
    use crate::core::types::SyncedBlock;
    use crate::tsdb::block_id::BlockId;

    fn block(n: u128, min: i64, max: i64, deleted: bool) -> (BlockId, SyncedBlock) {
        let id = BlockId::from_parts(1_735_689_600_000, n);
        let mut meta = BlockMeta::level1(id, min, max);
        let t = meta.thanos.get_or_insert_with(ThanosMeta::default);
        t.labels.insert("cluster".into(), format!("c{n}"));
        t.source = "sidecar".into();
        let mark = deleted.then(|| DeletionMark {
            id,
            version: 1,
            details: String::new(),
            deletion_time: 1,
        });
        let mut b = crate::core::testing::synced(MetaState::Ok(Box::new(meta)));
        b.deletion_mark = mark;
        (id, b)
    }

    fn sync() -> SyncResult {
        let mut blocks = std::collections::BTreeMap::new();
        blocks.extend([
            block(1, 0, 7_200_000, false),
            block(2, 7_200_000, 14_400_000, true),
        ]);
        blocks.insert(
            BlockId::from_parts(1_735_689_600_000, 3),
            SyncedBlock {
                meta: MetaState::Missing,
                ..block(3, 0, 0, false).1
            },
        );
        SyncResult { blocks }
    }

    fn all() -> LsFilter {
        LsFilter {
            exclude_delete: false,
            min_time: i64::MIN,
            max_time: i64::MAX,
            selector_relabel: Vec::new(),
        }
    }

    #[test]
    fn filters_as_thanos() {
        let s = sync();
        assert_eq!(filter(&s, &all()).blocks.len(), 3);
        let live = LsFilter {
            exclude_delete: true,
            ..all()
        };
        assert_eq!(filter(&s, &live).blocks.len(), 2);
        // Touching the boundary counts: maxTime >= min-time, minTime <= max-time.
        let late = LsFilter {
            min_time: 7_200_000,
            ..all()
        };
        assert_eq!(filter(&s, &late).blocks.len(), 3);
        let later = LsFilter {
            min_time: 7_200_001,
            ..all()
        };
        assert_eq!(filter(&s, &later).blocks.len(), 2);
        let early = LsFilter {
            max_time: 7_199_999,
            ..all()
        };
        assert_eq!(filter(&s, &early).blocks.len(), 2);
    }

    #[test]
    fn formats() {
        let s = sync();
        let ids: Vec<String> = s.blocks.keys().map(ToString::to_string).collect();
        let ulids = render(&s, &LsFormat::parse(Some("")).unwrap()).unwrap();
        assert_eq!(ulids, format!("{}\n{}\n", ids[0], ids[1]));
        let wide = render(&s, &LsFormat::parse(Some("wide")).unwrap()).unwrap();
        assert_eq!(
            wide.lines().next().unwrap(),
            format!(
                "{} -- 1970-01-01T00:00:00Z - 1970-01-01T02:00:00Z Diff: 2h0m0s, \
                 Compaction: 1, Downsample: 0, Source: sidecar",
                ids[0]
            )
        );
        let json = render(&s, &LsFormat::Json).unwrap();
        let metas: Vec<BlockMeta> = serde_json::Deserializer::from_str(&json)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(metas.len(), 2);
        assert!(json.starts_with("{\n\t\"ulid\": "), "{json}");
        let t = LsFormat::parse(Some("{{.ULID}} {{.Thanos.Labels.cluster}}")).unwrap();
        assert_eq!(
            render(&s, &t).unwrap(),
            format!("{} c1\n{} c2\n", ids[0], ids[1])
        );
        assert!(render(&s, &LsFormat::Table).unwrap().contains("partial"));
        assert!(LsFormat::parse(Some("{{.Bogus}}")).is_err());
    }
}

//! `compactd tools bucket verify`: checks a bucket for the issues Thanos' verifier knows, plus
//! compactd's own consistency check, and reports every finding.
//!
//! The issues ([`IssueKind`], chosen with `-i/--issues`): `index_known_issues` (each block's
//! index against Thanos' index rules, [`index`]), `overlapped_blocks` and
//! `duplicated_compaction` ([`overlaps`]), and `bucket_consistency` ([`consistency`]: missing
//! or wrong-size files, unreadable metas and markers, partial uploads). Like Thanos' fetcher,
//! the first three ignore blocks marked for deletion and blocks without a readable meta.json;
//! `bucket_consistency` looks at every block directory. `--id` limits every issue to the
//! blocks named: an overlap or duplicate set is reported when it holds one of them.
//! `--repair` removes duplicated compactions ([`repair`]); the other issues have no repair.

pub mod consistency;
pub mod index;
pub mod overlaps;
pub mod repair;

use std::collections::BTreeSet;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::core::types::{MetaState, SyncResult};
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::BlockMeta;
use overlaps::DuplicateSet;
use repair::Removal;

/// One kind of issue `verify` looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssueKind {
    /// Index rules broken (Thanos' `index_known_issues`).
    IndexKnownIssues,
    /// Blocks of one group with intersecting time ranges (Thanos' `overlapped_blocks`).
    OverlappedBlocks,
    /// One compaction done more than once (Thanos' `duplicated_compaction`).
    DuplicatedCompaction,
    /// Missing or wrong-size files, unreadable metas and markers, partial uploads (compactd).
    BucketConsistency,
}

impl IssueKind {
    /// Every issue, in the order they are checked.
    pub const ALL: [IssueKind; 4] = [
        IssueKind::BucketConsistency,
        IssueKind::OverlappedBlocks,
        IssueKind::DuplicatedCompaction,
        IssueKind::IndexKnownIssues,
    ];

    /// The issue's name on the command line.
    pub fn id(self) -> &'static str {
        match self {
            IssueKind::IndexKnownIssues => "index_known_issues",
            IssueKind::OverlappedBlocks => "overlapped_blocks",
            IssueKind::DuplicatedCompaction => "duplicated_compaction",
            IssueKind::BucketConsistency => "bucket_consistency",
        }
    }

    /// The issue named `s`.
    pub fn parse(s: &str) -> Result<IssueKind, String> {
        IssueKind::ALL
            .into_iter()
            .find(|k| k.id() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = IssueKind::ALL.iter().map(|k| k.id()).collect();
                format!("no such issue {s:?}; possible issues: {}", all.join(", "))
            })
    }
}

/// What one run checks.
#[derive(Clone, Debug, Default)]
pub struct VerifySettings {
    /// The issues to look for.
    pub issues: BTreeSet<IssueKind>,
    /// `--id`: when not empty, only these blocks.
    pub ids: BTreeSet<BlockId>,
}

impl VerifySettings {
    /// Whether block `id` is one of the blocks looked at.
    pub fn selected(&self, id: BlockId) -> bool {
        self.ids.is_empty() || self.ids.contains(&id)
    }

    /// Refuses a repair of an issue that has none yet: `index_known_issues` (Thanos rewrites
    /// the block, compactd does not yet).
    pub fn check_repair(&self) -> Result<(), String> {
        if self.issues.contains(&IssueKind::IndexKnownIssues) {
            return Err(
                "--repair of index_known_issues is not supported yet; verify it \
                        without --repair, or choose -i duplicated_compaction to repair"
                    .into(),
            );
        }
        Ok(())
    }
}

/// One issue found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Its kind.
    pub issue: IssueKind,
    /// What is wrong, naming the block (and series, group, file).
    pub text: String,
}

/// What a run found.
#[derive(Debug)]
pub struct VerifyReport {
    /// Every finding, by issue in the order of [`IssueKind::ALL`].
    pub findings: Vec<Finding>,
    /// The duplicate sets found (with `--id`, those holding a selected block).
    pub duplicates: Vec<DuplicateSet>,
    /// The bucket as synced.
    pub sync: SyncResult,
    /// Blocks with a readable meta.json and no deletion mark that were looked at.
    pub live_blocks: usize,
}

impl VerifyReport {
    /// The duplicates a repair removes: every duplicate, or with `--id` the selected ones.
    pub fn removals(&self, settings: &VerifySettings) -> Vec<Removal> {
        let mut out: Vec<Removal> = Vec::new();
        for set in &self.duplicates {
            for &block in &set.duplicates {
                if settings.selected(block) && !out.iter().any(|r| r.block == block) {
                    out.push(Removal {
                        block,
                        kept: set.keep,
                    });
                }
            }
        }
        out
    }
}

/// Checks `store` for the issues of `settings`.
pub async fn verify(
    store: &Arc<dyn ObjectStore>,
    settings: &VerifySettings,
) -> anyhow::Result<VerifyReport> {
    let sync = crate::tools::bucket::sync(store).await?;
    let live: Vec<&BlockMeta> = sync
        .blocks
        .values()
        .filter(|b| b.deletion_mark.is_none())
        .filter_map(|b| match &b.meta {
            MetaState::Ok(m) => Some(&**m),
            _ => None,
        })
        .collect();
    let mut findings = Vec::new();
    let mut found = |issue: IssueKind, texts: Vec<String>| {
        findings.extend(texts.into_iter().map(|text| Finding { issue, text }));
    };
    let wants = |k: IssueKind| settings.issues.contains(&k);
    if wants(IssueKind::BucketConsistency) {
        let texts = consistency::check(store.as_ref(), &sync, |id| settings.selected(id)).await?;
        found(IssueKind::BucketConsistency, texts);
    }
    if wants(IssueKind::OverlappedBlocks) {
        found(IssueKind::OverlappedBlocks, overlap_texts(&live, settings));
    }
    let mut duplicates = Vec::new();
    if wants(IssueKind::DuplicatedCompaction) {
        duplicates = overlaps::duplicates(live.iter().copied());
        duplicates.retain(|d| {
            settings.selected(d.keep) || d.duplicates.iter().any(|b| settings.selected(*b))
        });
        found(
            IssueKind::DuplicatedCompaction,
            duplicates.iter().map(duplicate_text).collect(),
        );
    }
    if wants(IssueKind::IndexKnownIssues) {
        for m in live.iter().filter(|m| settings.selected(m.ulid)) {
            found(
                IssueKind::IndexKnownIssues,
                index::check_block(Arc::clone(store), m).await,
            );
        }
    }
    let live_blocks = live.iter().filter(|m| settings.selected(m.ulid)).count();
    Ok(VerifyReport {
        findings,
        duplicates,
        live_blocks,
        sync,
    })
}

/// One line per overlap that holds a selected block.
fn overlap_texts(live: &[&BlockMeta], settings: &VerifySettings) -> Vec<String> {
    overlaps::overlaps(live.iter().copied())
        .into_iter()
        .filter(|(_, set)| set.iter().any(|id| settings.selected(*id)))
        .map(|(key, set)| {
            let ids: Vec<String> = set.iter().map(ToString::to_string).collect();
            format!("group {key}: overlapping blocks [{}]", ids.join(", "))
        })
        .collect()
}

fn duplicate_text(d: &DuplicateSet) -> String {
    let ids: Vec<String> = d.duplicates.iter().map(ToString::to_string).collect();
    format!(
        "group {}: blocks [{}] are the same compaction (time range, level, sources, stats) \
         as block {}, which is kept",
        d.group,
        ids.join(", "),
        d.keep
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_names_round_trip_and_unknown_names_list_the_known_ones() {
        for k in IssueKind::ALL {
            assert_eq!(IssueKind::parse(k.id()), Ok(k));
        }
        let e = IssueKind::parse("nope").unwrap_err();
        assert!(
            e.contains("nope") && e.contains("duplicated_compaction"),
            "{e}"
        );
    }

    #[test]
    fn repair_refuses_index_issues_only() {
        let mut s = VerifySettings::default();
        s.issues.insert(IssueKind::DuplicatedCompaction);
        s.issues.insert(IssueKind::OverlappedBlocks);
        assert!(s.check_repair().is_ok());
        s.issues.insert(IssueKind::IndexKnownIssues);
        assert!(s.check_repair().unwrap_err().contains("not supported yet"));
    }

    #[test]
    fn removals_with_ids_take_only_selected_duplicates() {
        let id = |n| BlockId::from_parts(1, n);
        let report = VerifyReport {
            findings: Vec::new(),
            duplicates: vec![DuplicateSet {
                group: "g".into(),
                keep: id(1),
                duplicates: vec![id(2), id(3)],
            }],
            sync: SyncResult::default(),
            live_blocks: 3,
        };
        let mut s = VerifySettings::default();
        assert_eq!(report.removals(&s).len(), 2);
        s.ids.insert(id(3));
        assert_eq!(
            report.removals(&s),
            vec![Removal {
                block: id(3),
                kept: id(1)
            }]
        );
        s.ids = [id(1)].into();
        assert!(report.removals(&s).is_empty());
    }
}

//! The audit report as text and as JSON. A bucket with one unit (one stream, or only blocks
//! of no stream) and no stream fence prints as before per-stream ownership: the bucket's fence
//! and one epoch table; otherwise each unit gets its own section (its stream's labels and
//! fence, its epoch table and counts) under the bucket's fence.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use super::{AuditReport, EpochSummary, Fence, UnitReport, Violation};
use crate::timefmt::format_rfc3339_ms;

impl AuditReport {
    /// True when the report prints as one epoch table: at most one unit, without a fence of
    /// its own.
    fn single_unit(&self) -> bool {
        let fenced =
            |u: &UnitReport| matches!(u.fence, Some(Fence::Present(_) | Fence::Unreadable(_)));
        self.units.len() <= 1 && !self.units.iter().any(fenced)
    }

    /// The text report: the bucket's fence, the epoch table (one per unit when there are
    /// several), the counts, problems, violations, verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "fence: {}", fence_text(&self.fence));
        if self.single_unit() {
            epoch_table(&mut out, &self.epochs, "");
        } else {
            for unit in &self.units {
                unit_text(&mut out, unit);
            }
        }
        let stamped: usize = self.epochs.iter().map(|e| e.blocks).sum();
        let _ = writeln!(
            out,
            "{stamped} stamped blocks in {} epochs; {} unstamped blocks (not written by compactd)",
            self.epochs.len(),
            self.unstamped
        );
        super::marks::marks_text(&mut out, &self.marks);
        for p in &self.problems {
            let _ = writeln!(out, "PROBLEM: {p}");
        }
        for v in &self.violations {
            let _ = writeln!(out, "VIOLATION: {v}");
        }
        if self.ok() {
            out.push_str("OK: commits ordered by epoch, one holder per epoch, every stamp valid\n");
        } else {
            let _ = writeln!(out, "{} violations found", self.violations.len());
        }
        out
    }

    /// The same content as one JSON document (times as RFC3339, with a trailing newline):
    /// `epochs` over the whole bucket, `streams` per unit (`stream` null for the bucket's).
    pub fn render_json(&self) -> String {
        let streams: Vec<_> = self
            .units
            .iter()
            .map(|u| {
                json!({
                    "stream": u.unit.stream().map(|id| id.to_string()),
                    "labels": u.labels,
                    "fence": u.fence.as_ref().map(fence_json),
                    "epochs": epochs_json(&u.epochs),
                    "unstamped": u.unstamped,
                })
            })
            .collect();
        let violations: Vec<_> = self.violations.iter().map(violation_json).collect();
        let doc = json!({
            "ok": self.ok(),
            "fence": fence_json(&self.fence),
            "epochs": epochs_json(&self.epochs),
            "streams": streams,
            "unstamped": self.unstamped,
            "marks": super::marks::marks_json(&self.marks),
            "problems": self.problems,
            "violations": violations,
        });
        let mut s = serde_json::to_string_pretty(&doc).expect("a JSON value always serializes");
        s.push('\n');
        s
    }
}

fn fence_text(fence: &Fence) -> String {
    match fence {
        Fence::Absent => "none".to_string(),
        Fence::Present(r) if r.renewed_unix_ms == 0 => format!(
            "epoch {}, holder {}, seq {}, released",
            r.epoch, r.holder, r.seq
        ),
        Fence::Present(r) => format!(
            "epoch {}, holder {}, seq {}, renewed {}",
            r.epoch,
            r.holder,
            r.seq,
            format_rfc3339_ms(r.renewed_unix_ms)
        ),
        Fence::Unreadable(_) => "unreadable (see PROBLEM)".to_string(),
    }
}

/// A unit's section: its name, labels and fence, then its epoch table indented.
fn unit_text(out: &mut String, unit: &UnitReport) {
    match &unit.fence {
        Some(fence) => {
            // A stream known only by its fence has no labels to show.
            let mut name = unit.unit.to_string();
            if !unit.labels.is_empty() {
                name = format!("{name} {}", labels_text(&unit.labels));
            }
            let _ = writeln!(out, "{name}, fence: {}", fence_text(fence));
        }
        None => {
            let _ = writeln!(
                out,
                "{} (blocks of no stream; its fence is above)",
                unit.unit
            );
        }
    }
    if !unit.epochs.is_empty() {
        epoch_table(out, &unit.epochs, "  ");
    }
    let stamped: usize = unit.epochs.iter().map(|e| e.blocks).sum();
    let _ = writeln!(
        out,
        "  {stamped} stamped blocks in {} epochs; {} unstamped blocks",
        unit.epochs.len(),
        unit.unstamped
    );
}

/// Labels as Prometheus prints a label set: `{a="1", b="2"}`.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// The epoch table: a header and a row per epoch, each line after `indent`.
fn epoch_table(out: &mut String, epochs: &[EpochSummary], indent: &str) {
    let holders: Vec<String> = epochs.iter().map(|e| e.holders.join(",")).collect();
    let hw = holders
        .iter()
        .map(String::len)
        .fold("HOLDERS".len(), usize::max);
    let ew = epochs
        .iter()
        .map(|e| e.epoch.to_string().len())
        .fold("EPOCH".len(), usize::max);
    let _ = writeln!(
        out,
        "{indent}{:>ew$}  {:<hw$}  {:>6}  {:<24}  LAST COMMIT",
        "EPOCH", "HOLDERS", "BLOCKS", "FIRST COMMIT"
    );
    for (e, h) in epochs.iter().zip(&holders) {
        let _ = writeln!(
            out,
            "{indent}{:>ew$}  {h:<hw$}  {:>6}  {:<24}  {}",
            e.epoch,
            e.blocks,
            format_rfc3339_ms(e.first_commit_ms),
            format_rfc3339_ms(e.last_commit_ms)
        );
    }
}

fn fence_json(fence: &Fence) -> serde_json::Value {
    match fence {
        Fence::Absent => json!({"state": "absent"}),
        Fence::Present(r) => json!({
            "state": "present",
            "epoch": r.epoch,
            "holder": r.holder,
            "seq": r.seq,
            "renewed": format_rfc3339_ms(r.renewed_unix_ms),
        }),
        Fence::Unreadable(why) => json!({"state": "unreadable", "error": why}),
    }
}

fn epochs_json(epochs: &[EpochSummary]) -> Vec<serde_json::Value> {
    epochs
        .iter()
        .map(|e| {
            json!({
                "epoch": e.epoch,
                "holders": e.holders,
                "blocks": e.blocks,
                "first_commit": format_rfc3339_ms(e.first_commit_ms),
                "last_commit": format_rfc3339_ms(e.last_commit_ms),
            })
        })
        .collect()
}

fn violation_json(v: &Violation) -> serde_json::Value {
    let mut j = match v {
        Violation::LateCommit {
            unit,
            block,
            stamp,
            committed_ms,
            higher_epoch,
            higher_first_commit_ms,
        } => json!({
            "stream": unit.stream().map(|id| id.to_string()),
            "block": block.to_string(),
            "epoch": stamp.epoch,
            "holder": stamp.holder,
            "committed": format_rfc3339_ms(*committed_ms),
            "higher_epoch": higher_epoch,
            "higher_first_commit": format_rfc3339_ms(*higher_first_commit_ms),
        }),
        Violation::SharedEpoch { epoch, holders } => {
            json!({"epoch": epoch, "holders": holders})
        }
        Violation::MalformedStamp { block, why } => {
            json!({"block": block.to_string(), "error": why})
        }
    };
    j["kind"] = json!(v.kind());
    j["message"] = json!(v.to_string());
    j
}

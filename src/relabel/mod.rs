//! Prometheus relabelling (`model/relabel/relabel.go`): a list of rules, each an action over
//! the values of its `source_labels` joined by `separator`, applied in order to a label set,
//! any of which may drop the set. Thanos selects the blocks a compactor acts on with it
//! (`--selector.relabel-config`, [`selector`]), over each block's external labels.
//!
//! Every action Prometheus has, with its semantics: `replace`, `keep`, `drop`, `keepequal`,
//! `dropequal`, `hashmod` (md5 of the joined value, its low 8 bytes big-endian, modulo
//! `modulus`), `labelmap`, `labeldrop`, `labelkeep`, `lowercase`, `uppercase`. Label names
//! are validated as Prometheus 3 and Thanos do (UTF-8: any non-empty name).
//!
//! [`config`] parses and validates the YAML, [`regex`] holds the anchored RE2 regex and Go's
//! template expansion, `builder` the label set being changed. Pure: no I/O here except in
//! [`selector`], which reads the flags' file.

mod builder;
pub mod config;
pub mod regex;
pub mod selector;

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use builder::LabelBuilder;
pub use config::{parse_relabel_config, RelabelError};
pub use regex::AnchoredRegex;

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Sets `target_label` (expanded) to `replacement` (expanded) when `regex` matches.
    Replace,
    /// Drops the label set unless `regex` matches.
    Keep,
    /// Drops the label set when `regex` matches.
    Drop,
    /// Drops the label set unless `target_label`'s value equals the joined value.
    KeepEqual,
    /// Drops the label set when `target_label`'s value equals the joined value.
    DropEqual,
    /// Sets `target_label` to the hash of the joined value modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches `regex` to the name `replacement` expands to.
    LabelMap,
    /// Deletes every label whose name matches `regex`.
    LabelDrop,
    /// Deletes every label whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the joined value in lower case.
    Lowercase,
    /// Sets `target_label` to the joined value in upper case.
    Uppercase,
}

/// Every action, for parsing and messages.
pub const ACTIONS: [Action; 11] = [
    Action::Replace,
    Action::Keep,
    Action::Drop,
    Action::KeepEqual,
    Action::DropEqual,
    Action::HashMod,
    Action::LabelMap,
    Action::LabelDrop,
    Action::LabelKeep,
    Action::Lowercase,
    Action::Uppercase,
];

impl Action {
    /// The name as configs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name, in any case (Prometheus lower-cases it first).
    pub fn parse(name: &str) -> Option<Action> {
        let lower = go_lowercase(name);
        ACTIONS.into_iter().find(|a| a.as_str() == lower)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated rule (Prometheus' `relabel.Config`), with Prometheus' defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelabelConfig {
    /// Labels whose values are joined (a missing label contributes an empty value).
    pub source_labels: Vec<String>,
    /// Put between the joined values; default `;`.
    pub separator: String,
    /// Matched against the joined value (or label names); default `(.*)`.
    pub regex: AnchoredRegex,
    /// Divisor of `hashmod`.
    pub modulus: u64,
    /// The label written (`replace`, `hashmod`, `lowercase`, `uppercase`) or compared
    /// (`keepequal`, `dropequal`).
    pub target_label: String,
    /// Template of `replace` and `labelmap`; default `$1`.
    pub replacement: String,
    /// What the rule does; default `replace`.
    pub action: Action,
}

/// Applies `rules` in order to `labels`: the resulting labels, or `None` when a rule dropped
/// them (Prometheus' `relabel.Process`).
pub fn process(
    labels: &BTreeMap<String, String>,
    rules: &[RelabelConfig],
) -> Option<BTreeMap<String, String>> {
    let mut builder = LabelBuilder::new(labels);
    for rule in rules {
        if !apply(rule, &mut builder) {
            return None;
        }
    }
    Some(builder.into_labels())
}

/// Prometheus' `hashmod`: the md5 of `value`, its last 8 bytes read big-endian, modulo
/// `modulus` (which must not be 0).
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    debug_assert!(modulus > 0, "validation refuses a zero modulus");
    let digest = Md5::digest(value.as_bytes());
    let low: [u8; 8] = digest[8..16]
        .try_into()
        .expect("an md5 digest has 16 bytes");
    u64::from_be_bytes(low) % modulus
}

/// Applies one rule; false when it drops the label set.
fn apply(rule: &RelabelConfig, labels: &mut LabelBuilder) -> bool {
    let values: Vec<&str> = rule.source_labels.iter().map(|n| labels.get(n)).collect();
    let value = values.join(&rule.separator);
    match rule.action {
        Action::Keep => return rule.regex.is_match(&value),
        Action::Drop => return !rule.regex.is_match(&value),
        Action::KeepEqual => return labels.get(&rule.target_label) == value,
        Action::DropEqual => return labels.get(&rule.target_label) != value,
        Action::Replace => replace(rule, &value, labels),
        Action::Lowercase => labels.set(&rule.target_label, &go_lowercase(&value)),
        Action::Uppercase => labels.set(&rule.target_label, &go_uppercase(&value)),
        Action::HashMod => {
            let hash = hashmod(&value, rule.modulus);
            labels.set(&rule.target_label, &hash.to_string());
        }
        Action::LabelMap => {
            for (name, label_value) in labels.snapshot() {
                if let Some(captures) = rule.regex.captures(&name) {
                    let mapped = rule.regex.expand(&captures, &rule.replacement);
                    labels.set(&mapped, &label_value);
                }
            }
        }
        Action::LabelDrop | Action::LabelKeep => {
            let keep_matching = rule.action == Action::LabelKeep;
            for (name, _) in labels.snapshot() {
                if rule.regex.is_match(&name) != keep_matching {
                    labels.delete(&name);
                }
            }
        }
    }
    true
}

/// `replace`: when the regex matches, the expanded target label gets the expanded
/// replacement (an empty one deletes it); an empty target name is skipped, as Prometheus
/// skips invalid names.
fn replace(rule: &RelabelConfig, value: &str, labels: &mut LabelBuilder) {
    let Some(captures) = rule.regex.captures(value) else {
        return;
    };
    let target = rule.regex.expand(&captures, &rule.target_label);
    if target.is_empty() {
        return;
    }
    let replacement = rule.regex.expand(&captures, &rule.replacement);
    labels.set(&target, &replacement);
}

/// Go's `strings.ToLower`: each character by its simple (one-to-one) mapping.
fn go_lowercase(s: &str) -> String {
    s.chars().map(simple_lowercase).collect()
}

/// Go's `strings.ToUpper`: each character by its simple (one-to-one) mapping.
fn go_uppercase(s: &str) -> String {
    s.chars().map(simple_uppercase).collect()
}

/// Unicode's simple lower-case mapping (Go's `unicode.ToLower`). Rust's mapping is the full
/// one; they differ only where the full mapping has several characters.
fn simple_lowercase(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut mapped = c.to_lowercase();
    match (mapped.next(), mapped.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

/// Unicode's simple upper-case mapping (Go's `unicode.ToUpper`); the Greek letters with a
/// subscript iota are the only ones with both a multi-character full mapping and a simple one.
fn simple_uppercase(c: char) -> char {
    let code = u32::from(c);
    let iota_subscript = matches!(code, 0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7);
    let mapped = match code {
        _ if iota_subscript => char::from_u32(code + 8),
        0x1FB3 => Some('\u{1FBC}'),
        0x1FC3 => Some('\u{1FCC}'),
        0x1FF3 => Some('\u{1FFC}'),
        _ => None,
    };
    if let Some(mapped) = mapped {
        return mapped;
    }
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

#[cfg(test)]
mod tests;

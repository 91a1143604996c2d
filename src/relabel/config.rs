//! Parsing a relabel config list from YAML as Prometheus does (`relabel.Config`'s
//! `UnmarshalYAML` and `Validate`, with Thanos' UTF-8 label names): the defaults (separator
//! `;`, regex `(.*)`, replacement `$1`, action `replace`), a null field read as Go reads it
//! (empty, so `regex: ~` matches only an empty value), a scalar read as a string where a
//! string is wanted (`regex: 0`), unknown keys ignored (Thanos parses non-strictly), and the
//! same refusals, each naming the rule (from 1) and the field.

use serde::{Deserialize, Deserializer};

use super::{Action, AnchoredRegex, RelabelConfig};

/// Prometheus' default separator.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Prometheus' default regex (anchored, so it matches anything).
pub const DEFAULT_REGEX: &str = "(.*)";
/// Prometheus' default replacement.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// Why a relabel config was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    /// The text is not YAML, or not a list of mappings with fields of the right types.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A rule's field is wrong.
    #[error("rule {rule}: {field}: {message}")]
    Field {
        /// The rule's position in the list, from 1.
        rule: usize,
        /// The field's YAML name (`action`, `regex`, ...).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// A rule as written: for each field, absent (`None`), null (`Some(None)`) or a value.
#[derive(Debug, Default, Deserialize)]
struct RawRule {
    #[serde(default, deserialize_with = "present")]
    source_labels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    separator: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    regex: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    modulus: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    target_label: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    replacement: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    action: Option<Option<String>>,
}

/// A field that is present (`Some`), null or not.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Parses and validates a YAML list of relabel configs. An empty document is an empty list.
pub fn parse_relabel_config(yaml: &str) -> Result<Vec<RelabelConfig>, RelabelError> {
    let raw: Option<Vec<RawRule>> =
        serde_yaml_ng::from_str(yaml).map_err(|e| RelabelError::Yaml(yaml_error(&e)))?;
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, rule)| build(i + 1, rule))
        .collect()
}

/// serde_yaml_ng's message with a rule's path `.[0].field` read as `rule 1: field`.
fn yaml_error(error: &serde_yaml_ng::Error) -> String {
    let text = error.to_string();
    let Some(rest) = text.trim_start_matches('.').strip_prefix('[') else {
        return text;
    };
    let Some((index, rest)) = rest.split_once(']') else {
        return text;
    };
    match index.parse::<usize>() {
        Ok(index) => format!("rule {}: {}", index + 1, rest.trim_start_matches('.')),
        Err(_) => text,
    }
}

/// One rule with its defaults, then validated.
fn build(rule: usize, raw: RawRule) -> Result<RelabelConfig, RelabelError> {
    let field = |field: &'static str, message: String| RelabelError::Field {
        rule,
        field,
        message,
    };
    // Go leaves a null field at its zero value: an empty string, 0, no list.
    let action = match raw.action {
        None => Action::Replace,
        Some(None) => return Err(field("action", "must not be empty".into())),
        Some(Some(name)) => Action::parse(&name)
            .ok_or_else(|| field("action", format!("unknown relabel action {name:?}")))?,
    };
    let regex_source = match &raw.regex {
        None => DEFAULT_REGEX.to_string(),
        Some(source) => source.clone().unwrap_or_default(),
    };
    let regex = AnchoredRegex::new(&regex_source).map_err(|e| {
        field(
            "regex",
            format!("invalid regular expression {regex_source:?}: {e}"),
        )
    })?;
    let source_labels_given = matches!(raw.source_labels, Some(Some(_)));
    let source_labels = raw.source_labels.flatten().unwrap_or_default();
    if let Some(name) = source_labels.iter().find(|n| n.is_empty()) {
        return Err(field(
            "source_labels",
            format!("{name:?} is not a valid label name"),
        ));
    }
    let config = RelabelConfig {
        source_labels,
        separator: or_default(raw.separator, DEFAULT_SEPARATOR),
        regex,
        modulus: raw.modulus.flatten().unwrap_or(0),
        target_label: raw.target_label.flatten().unwrap_or_default(),
        replacement: or_default(raw.replacement, DEFAULT_REPLACEMENT),
        action,
    };
    validate(&config, raw.regex.is_some(), source_labels_given).map_err(|(f, m)| field(f, m))?;
    Ok(config)
}

/// An absent field's default, a null field's empty string, or the value.
fn or_default(value: Option<Option<String>>, default: &str) -> String {
    match value {
        None => default.to_string(),
        Some(value) => value.unwrap_or_default(),
    }
}

/// Prometheus' `Config.Validate` under UTF-8 label names (valid when not empty): the
/// offending field and the problem.
fn validate(
    c: &RelabelConfig,
    regex_given: bool,
    source_labels_given: bool,
) -> Result<(), (&'static str, String)> {
    let action = c.action;
    if action == Action::HashMod && c.modulus == 0 {
        return Err(("modulus", "hashmod requires a non-zero modulus".into()));
    }
    let writes_target = matches!(
        action,
        Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
    );
    if writes_target && c.target_label.is_empty() {
        return Err(("target_label", format!("the {action} action requires it")));
    }
    let compares = matches!(
        action,
        Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
    );
    if compares && c.replacement != DEFAULT_REPLACEMENT {
        return Err((
            "replacement",
            format!("can not be set for the {action} action"),
        ));
    }
    if action == Action::LabelMap && c.replacement.is_empty() {
        return Err((
            "replacement",
            "the labelmap action needs a label name".into(),
        ));
    }
    if matches!(action, Action::KeepEqual | Action::DropEqual) {
        let extra = extra_field(c, regex_given);
        if let Some(extra) = extra {
            let message = format!(
                "the {action} action takes only source_labels and target_label, no other fields"
            );
            return Err((extra, message));
        }
    }
    if matches!(action, Action::LabelDrop | Action::LabelKeep) {
        let extra = if source_labels_given {
            Some("source_labels")
        } else if !c.target_label.is_empty() {
            Some("target_label")
        } else {
            extra_field(c, false)
        };
        if let Some(extra) = extra {
            return Err((
                extra,
                format!("the {action} action takes only regex, no other fields"),
            ));
        }
    }
    Ok(())
}

/// The first of regex (when `regex_given`), modulus, separator and replacement that differs
/// from its default.
fn extra_field(c: &RelabelConfig, regex_given: bool) -> Option<&'static str> {
    if regex_given {
        Some("regex")
    } else if c.modulus != 0 {
        Some("modulus")
    } else if c.separator != DEFAULT_SEPARATOR {
        Some("separator")
    } else if c.replacement != DEFAULT_REPLACEMENT {
        Some("replacement")
    } else {
        None
    }
}

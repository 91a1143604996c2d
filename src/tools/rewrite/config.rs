//! The rewrite's configuration as Thanos reads it: `--rewrite.to-delete-config[-file]`, a YAML
//! list of deletion requests (`matchers`: a PromQL selector; `intervals`: closed `{mint, maxt}`
//! ranges in ms, none meaning the whole series; `request_id`), and
//! `--rewrite.to-relabel-config[-file]`, a Prometheus relabel config (every action). Both
//! take `$(NAME)` environment references. Also what the new block's `thanos.rewrites` entry
//! records of them, in Thanos' JSON.

use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use super::matchers::{parse_selector, Matcher};
use crate::relabel::{parse_relabel_config, RelabelConfig};
use crate::tsdb::tombstones::Interval;

/// One deletion request (Thanos' `metadata.DeletionRequest`).
#[derive(Clone, Debug)]
pub struct DeletionRequest {
    /// A series is deleted when it has every matcher's label and the value matches.
    pub matchers: Vec<Matcher>,
    /// The deleted ranges (closed); empty deletes the whole series.
    pub intervals: Vec<Interval>,
    /// Free text carried into the meta.
    pub request_id: String,
}

#[derive(Deserialize)]
struct RawRequest {
    matchers: Option<String>,
    #[serde(default)]
    intervals: Vec<RawInterval>,
    #[serde(default)]
    request_id: String,
}

#[derive(Deserialize)]
struct RawInterval {
    #[serde(default)]
    mint: i64,
    #[serde(default)]
    maxt: i64,
}

/// Reads a `--<flag>-file` / `--<flag>` pair as Thanos' `PathOrContent` with environment
/// substitution: the content (`None` when neither is given or it is empty) and where it came
/// from, for messages.
pub fn load_flag(
    flag: &str,
    file: Option<&Path>,
    inline: Option<&str>,
) -> Result<Option<(String, String)>, String> {
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let (content, origin) = match (file, inline.filter(|s| !s.is_empty())) {
        (Some(_), Some(_)) => {
            return Err(format!("both --{flag}-file and --{flag} are set; use one"))
        }
        (None, None) => return Ok(None),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--{flag}-file {}: cannot read it: {e}", path.display()))?;
            (text, format!("--{flag}-file {}", path.display()))
        }
        (None, Some(text)) => (text.to_string(), format!("--{flag}")),
    };
    let content = crate::objstore::expand_env(&content, |n| std::env::var(n).ok())
        .map_err(|e| format!("{origin}: {e}"))?;
    Ok((!content.trim().is_empty()).then_some((content, origin)))
}

/// Parses the deletion requests; errors name the request (from 1) and the problem. Unlike
/// Thanos, a request without `matchers` (which Thanos reads as "every series") is refused.
pub fn parse_deletions(yaml: &str) -> Result<Vec<DeletionRequest>, String> {
    let raw: Option<Vec<RawRequest>> =
        serde_yaml_ng::from_str(yaml).map_err(|e| format!("invalid YAML: {e}"))?;
    let mut out = Vec::new();
    for (i, r) in raw.unwrap_or_default().into_iter().enumerate() {
        let at = |e: String| format!("request {}: {e}", i + 1);
        let text = r.matchers.ok_or_else(|| {
            at("matchers: missing (a PromQL selector such as '{__name__=\"up\"}')".into())
        })?;
        let matchers = parse_selector(&text).map_err(|e| at(format!("matchers: {e}")))?;
        let mut intervals = Vec::new();
        for iv in r.intervals {
            if iv.maxt < iv.mint {
                return Err(at(format!(
                    "intervals: maxt {} is before mint {}",
                    iv.maxt, iv.mint
                )));
            }
            intervals.push(Interval {
                min_time: iv.mint,
                max_time: iv.maxt,
            });
        }
        out.push(DeletionRequest {
            matchers,
            intervals,
            request_id: r.request_id,
        });
    }
    Ok(out)
}

/// Parses the relabel config (every Prometheus action); errors name the rule and the field.
pub fn parse_relabels(yaml: &str) -> Result<Vec<RelabelConfig>, String> {
    parse_relabel_config(yaml).map_err(|e| e.to_string())
}

/// A deletion request as Thanos' JSON writes it in `thanos.rewrites[].deletions_applied`.
pub fn deletion_json(d: &DeletionRequest) -> Value {
    let mut v = json!({
        "matchers": d.matchers.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    if !d.intervals.is_empty() {
        v["intervals"] = d
            .intervals
            .iter()
            .map(|iv| json!({"Mint": iv.min_time, "Maxt": iv.max_time}))
            .collect();
    }
    if !d.request_id.is_empty() {
        v["request_id"] = json!(d.request_id);
    }
    v
}

/// A relabel rule as Prometheus' JSON writes it in `thanos.rewrites[].relabels_applied`.
pub fn relabel_json(r: &RelabelConfig) -> Value {
    let mut v = serde_json::Map::new();
    if !r.source_labels.is_empty() {
        v.insert("sourceLabels".into(), json!(r.source_labels));
    }
    if !r.separator.is_empty() {
        v.insert("separator".into(), json!(r.separator));
    }
    v.insert("regex".into(), json!(r.regex.as_str()));
    if r.modulus != 0 {
        v.insert("modulus".into(), json!(r.modulus));
    }
    if !r.target_label.is_empty() {
        v.insert("targetLabel".into(), json!(r.target_label));
    }
    if !r.replacement.is_empty() {
        v.insert("replacement".into(), json!(r.replacement));
    }
    v.insert("action".into(), json!(r.action.as_str()));
    Value::Object(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_requests_parse_and_render_as_thanos() {
        let yaml = r#"
- matchers: '{__name__="up", job=~"a.*"}'
- matchers: 'node_load1'
  intervals:
    - mint: 100
      maxt: 200
  request_id: r-1
  unknown: ignored
"#;
        let d = parse_deletions(yaml).unwrap();
        assert_eq!(d.len(), 2);
        assert!(d[0].intervals.is_empty());
        assert_eq!(
            deletion_json(&d[0]).to_string(),
            r#"{"matchers":["__name__=\"up\"","job=~\"a.*\""]}"#
        );
        assert_eq!(
            deletion_json(&d[1]).to_string(),
            r#"{"matchers":["__name__=\"node_load1\""],"intervals":[{"Mint":100,"Maxt":200}],"request_id":"r-1"}"#
        );
        assert!(parse_deletions("").unwrap().is_empty());
    }

    #[test]
    fn bad_deletion_requests_name_the_request() {
        let e = parse_deletions("- matchers: '{a=\"b\"'").unwrap_err();
        assert!(e.starts_with("request 1: matchers:"), "{e}");
        let e = parse_deletions("- intervals: []").unwrap_err();
        assert!(e.contains("request 1: matchers: missing"), "{e}");
        let e = parse_deletions("- matchers: up\n  intervals: [{mint: 5, maxt: 1}]").unwrap_err();
        assert!(e.contains("maxt 1 is before mint 5"), "{e}");
        assert!(parse_deletions("{")
            .unwrap_err()
            .starts_with("invalid YAML"));
    }

    #[test]
    fn relabel_rules_render_as_prometheus_json() {
        let r = parse_relabels("- source_labels: [job]\n  target_label: service\n").unwrap();
        assert_eq!(
            relabel_json(&r[0]).to_string(),
            r#"{"sourceLabels":["job"],"separator":";","regex":"(.*)","targetLabel":"service","replacement":"$1","action":"replace"}"#
        );
    }
}

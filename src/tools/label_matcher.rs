//! `tools bucket inspect -l/--selector`: label matchers over a block's external labels.
//!
//! Thanos takes `name="value"` (the value Go-quoted, `strconv.Unquote`) and keeps a block
//! that has every selector label with that value. compactd takes the same, and also an
//! unquoted value (`name=value`) and PromQL's other operators: `name!=value`,
//! `name=~regex`, `name!~regex` (regexes fully anchored, RE2 syntax, as in relabel configs).
//! For those an absent label reads as the empty string, as in PromQL; `=` wants the label
//! present, as in Thanos.

use std::collections::BTreeMap;
use std::fmt;

use super::gofmt;
use crate::relabel::regex::AnchoredRegex;

/// The flag the matchers come from, for error messages.
const FLAG: &str = "--selector";

/// One matcher.
#[derive(Clone)]
pub struct LabelMatcher {
    /// The label name.
    pub name: String,
    op: MatchOp,
    /// The value or the regex source, unquoted.
    pub value: String,
}

#[derive(Clone)]
enum MatchOp {
    Equal,
    NotEqual,
    Regex(AnchoredRegex),
    NotRegex(AnchoredRegex),
}

impl fmt::Debug for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op_str(), self.value)
    }
}

impl LabelMatcher {
    /// Parses `name<op>value`, `op` one of `=`, `!=`, `=~`, `!~`; the error names the flag
    /// and the matcher.
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = |why: &str| format!("{FLAG} {s:?}: {why}");
        let at = s
            .find(['=', '!'])
            .ok_or_else(|| err("expected name=\"value\" (or !=, =~, !~)"))?;
        let name = s[..at].trim();
        if name.is_empty() {
            return Err(err("the label name is empty"));
        }
        let rest = &s[at..];
        let (op_len, op) = if rest.starts_with("=~") {
            (2, "=~")
        } else if rest.starts_with("!=") {
            (2, "!=")
        } else if rest.starts_with("!~") {
            (2, "!~")
        } else if rest.starts_with('=') {
            (1, "=")
        } else {
            return Err(err("expected =, !=, =~ or !~ after the label name"));
        };
        let raw = rest[op_len..].trim();
        let value = if raw.starts_with('"') || raw.starts_with('`') {
            gofmt::unquote(raw).map_err(|e| err(&format!("unquote label value {e}")))?
        } else {
            raw.to_string()
        };
        let regex = || AnchoredRegex::new(&value).map_err(|e| err(&format!("invalid regex: {e}")));
        let op = match op {
            "=" => MatchOp::Equal,
            "!=" => MatchOp::NotEqual,
            "=~" => MatchOp::Regex(regex()?),
            _ => MatchOp::NotRegex(regex()?),
        };
        Ok(LabelMatcher {
            name: name.to_string(),
            op,
            value,
        })
    }

    fn op_str(&self) -> &'static str {
        match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex(_) => "=~",
            MatchOp::NotRegex(_) => "!~",
        }
    }

    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let got = labels.get(&self.name);
        let text = got.map_or("", String::as_str);
        match &self.op {
            MatchOp::Equal => got.is_some_and(|v| *v == self.value),
            MatchOp::NotEqual => text != self.value,
            MatchOp::Regex(re) => re.is_match(text),
            MatchOp::NotRegex(re) => !re.is_match(text),
        }
    }
}

/// Whether `labels` satisfy every matcher (no matchers: every block).
pub fn matches_all(matchers: &[LabelMatcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(s: &str) -> LabelMatcher {
        LabelMatcher::parse(s).unwrap()
    }

    #[test]
    fn parses_thanos_and_promql_forms() {
        let eu = labels(&[("cluster", "eu-1"), ("env", "prod")]);
        let us = labels(&[("cluster", "us-1")]);
        assert!(m(r#"cluster="eu-1""#).matches(&eu) && !m(r#"cluster="eu-1""#).matches(&us));
        assert!(m("cluster=eu-1").matches(&eu));
        assert!(m("cluster!=eu-1").matches(&us) && !m("cluster!=eu-1").matches(&eu));
        assert!(m("cluster=~eu-.*").matches(&eu) && !m("cluster=~eu").matches(&eu));
        assert!(m(r#"cluster!~"eu-.*""#).matches(&us));
        // An absent label: `=` wants it (Thanos); the others read it as "".
        assert!(!m(r#"env="""#).matches(&us));
        assert!(m("env!=prod").matches(&us) && m("env=~").matches(&us));
        assert!(m(r#"path="a=b""#).matches(&labels(&[("path", "a=b")])));
        assert!(matches_all(&[m("cluster=eu-1"), m("env=prod")], &eu));
        assert!(!matches_all(&[m("cluster=eu-1"), m("env=dev")], &eu));
        assert!(matches_all(&[], &us));
        assert_eq!(format!("{:?}", m(r#"a=~"x|y""#)), r#"a=~"x|y""#);
    }

    #[test]
    fn errors_name_the_flag_and_matcher() {
        for (bad, why) in [
            ("cluster", "expected name"),
            ("=x", "name is empty"),
            ("a!x", "expected =, !="),
            (r#"a="unterminated"#, "unquote"),
            ("a=~(", "invalid regex"),
        ] {
            let e = LabelMatcher::parse(bad).unwrap_err();
            assert!(
                e.starts_with("--selector ") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }
}

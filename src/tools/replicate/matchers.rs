//! `--matcher` of `replicate`: label matchers over a block's external labels, in the syntax
//! Thanos parses with Alertmanager's `ParseMatchers`: a comma-separated list of
//! `name op value`, optionally inside `{...}`, where `op` is `=`, `!=`, `=~` or `!~` and the
//! value is either double-quoted (with `\"`, `\\`, `\n`, `\t` escapes) or bare (up to the next
//! comma, trimmed). Regular expressions are anchored, as Prometheus' (`^(?s:re)$`). A label a
//! block does not have has the empty value. An empty string selects every block.

use std::collections::BTreeMap;

use crate::relabel::AnchoredRegex;

/// One matcher.
#[derive(Clone)]
pub struct LabelMatcher {
    /// The label name.
    pub name: String,
    /// How the value is compared.
    pub op: MatchOp,
    /// The value as written (the regex source for `=~` and `!~`).
    pub value: String,
    /// The compiled regex of `=~` and `!~`.
    regex: Option<AnchoredRegex>,
}

/// A matcher's comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl LabelMatcher {
    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// Whether `labels` satisfy every matcher.
pub fn matches_all(matchers: &[LabelMatcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Parses a `--matcher` value; the error names the position and the problem.
pub fn parse_matchers(input: &str) -> Result<Vec<LabelMatcher>, String> {
    let trimmed = input.trim();
    let body = match trimmed.strip_prefix('{') {
        Some(rest) => rest
            .strip_suffix('}')
            .ok_or_else(|| format!("{input:?}: '{{' without a closing '}}'"))?,
        None => trimmed,
    };
    let mut parser = Parser {
        input,
        rest: body.trim_start(),
    };
    let mut out = Vec::new();
    while !parser.rest.is_empty() {
        out.push(parser.matcher()?);
        parser.skip_spaces();
        match parser.rest.strip_prefix(',') {
            Some(after) => parser.rest = after.trim_start(),
            None if parser.rest.is_empty() => {}
            None => return Err(parser.error("expected ',' between matchers")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    input: &'a str,
    rest: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let at = self.input.len() - self.rest.len();
        format!("{:?}: {what} at offset {at}", self.input)
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn matcher(&mut self) -> Result<LabelMatcher, String> {
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let name = &self.rest[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.error("expected a label name"));
        }
        self.rest = &self.rest[end..];
        self.skip_spaces();
        let op = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find(|(s, _)| self.rest.starts_with(s));
        let Some((op_text, op)) = op else {
            return Err(self.error("expected one of =, !=, =~, !~"));
        };
        self.rest = self.rest[op_text.len()..].trim_start();
        let value = self.value()?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                AnchoredRegex::new(&value)
                    .map_err(|e| format!("{:?}: matcher on {name}: {e}", self.input))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(LabelMatcher {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    fn value(&mut self) -> Result<String, String> {
        let Some(quoted) = self.rest.strip_prefix('"') else {
            let end = self.rest.find(',').unwrap_or(self.rest.len());
            let value = self.rest[..end].trim_end().to_string();
            self.rest = &self.rest[end..];
            return Ok(value);
        };
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &quoted[i + 1..];
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, e @ ('"' | '\\'))) => value.push(e),
                    _ => return Err(self.error("invalid escape in a quoted value")),
                },
                other => value.push(other),
            }
        }
        Err(self.error("unterminated quoted value"))
    }
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

    #[test]
    fn parses_braced_bare_and_quoted_matchers() {
        let ms =
            parse_matchers(r#"{cluster="eu-1", env!=dev,region=~"eu-.*" , x!~"a\"b"}"#).unwrap();
        let shown: Vec<String> = ms.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"cluster="eu-1""#,
                r#"env!="dev""#,
                r#"region=~"eu-.*""#,
                r#"x!~"a\"b""#
            ]
        );
        assert!(parse_matchers("").unwrap().is_empty());
        assert!(parse_matchers("{}").unwrap().is_empty());
        assert_eq!(parse_matchers("a=\"1,2\"").unwrap()[0].value, "1,2");
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (bad, why) in [
            ("cluster", "expected one of"),
            ("=x", "expected a label name"),
            ("1a=x", "expected a label name"),
            ("a=\"x", "unterminated"),
            ("{a=x", "closing"),
            ("a=\"x\" b=y", "expected ','"),
            ("a=~\"(\"", "matcher on a"),
        ] {
            let err = parse_matchers(bad).err().unwrap_or_default();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn matching_is_anchored_and_absent_labels_are_empty() {
        let l = labels(&[("cluster", "eu-1"), ("env", "prod")]);
        let yes = |s: &str| matches_all(&parse_matchers(s).unwrap(), &l);
        assert!(yes("cluster=eu-1"));
        assert!(yes(r#"cluster=~"eu-.*",env!="dev""#));
        assert!(!yes("cluster=~eu")); // anchored: a prefix is no match
        assert!(yes("missing=\"\""));
        assert!(!yes("missing!=\"\""));
        assert!(yes("cluster!~\"us-.*\""));
        assert!(!yes("cluster=eu-1,env=dev"));
    }
}

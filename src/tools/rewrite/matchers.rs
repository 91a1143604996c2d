//! Series matchers as PromQL writes them (`parser.ParseMetricSelector`, what Thanos reads a
//! deletion request's `matchers` with): an optional metric name, then `{label op "value", …}`
//! with `=`, `!=`, `=~`, `!~`; values in double or single quotes (Go escapes) or backquotes
//! (raw); label names bare or quoted (Prometheus 3); a trailing comma allowed. As in PromQL,
//! a selector needs at least one matcher that does not match the empty value, and the metric
//! name may be given once. Regexes are anchored as Prometheus anchors them.

use std::fmt;

use crate::relabel::AnchoredRegex;

/// How a matcher compares a label's value.
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

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher (Prometheus' `labels.Matcher`).
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regex source.
    pub value: String,
    regex: Option<AnchoredRegex>,
}

impl Matcher {
    /// A matcher; a regex one compiles its value (the error says why it does not).
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                AnchoredRegex::new(value)
                    .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether `value` satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        let re = || self.regex.as_ref().is_some_and(|r| r.is_match(value));
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => re(),
            MatchOp::NotRegex => !re(),
        }
    }
}

impl fmt::Display for Matcher {
    /// Prometheus' `Matcher.String()`: `name="value"` with the value Go-quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.op.as_str())?;
        crate::tsdb::labels::write_go_quoted(f, &self.value)
    }
}

/// Parses a PromQL series selector (`up`, `{job="a"}`, `up{job=~"a.*", instance!=""}`); the
/// error names the position (from 1) and the problem.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, String> {
    let mut p = Parser {
        chars: text.char_indices().collect(),
        at: 0,
    };
    let matchers = p.selector().map_err(|e| format!("{text:?}: {e}"))?;
    if matchers.iter().all(|m| m.matches("")) {
        return Err(format!(
            "{text:?}: a selector must contain at least one matcher that does not match the empty value"
        ));
    }
    Ok(matchers)
}

struct Parser {
    chars: Vec<(usize, char)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|&(_, c)| c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        let found = self
            .peek()
            .map_or_else(|| "the end".to_string(), |c| format!("{c:?}"));
        format!("position {}: {what}, found {found}", self.at + 1)
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        let hit = self.peek() == Some(c);
        self.at += usize::from(hit);
        hit
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, String> {
        self.skip_space();
        let mut matchers = Vec::new();
        let name = self.identifier(true);
        if let Some(n) = &name {
            matchers.push(Matcher::new("__name__", MatchOp::Equal, n)?);
        }
        if self.eat('{') {
            self.matchers(&mut matchers)?;
        } else if name.is_none() {
            return Err(self.error("expected a metric name or '{'"));
        }
        self.skip_space();
        if self.peek().is_some() {
            return Err(self.error("unexpected text after the selector"));
        }
        let names = matchers.iter().filter(|m| m.name == "__name__").count();
        if name.is_some() && names > 1 {
            return Err("the metric name is set twice".into());
        }
        Ok(matchers)
    }

    /// The matchers inside `{…}` (the `{` is read), up to and with the `}`.
    fn matchers(&mut self, out: &mut Vec<Matcher>) -> Result<(), String> {
        loop {
            if self.eat('}') {
                return Ok(());
            }
            self.skip_space();
            let name = match self.peek() {
                Some('"') | Some('\'') | Some('`') => self.string()?,
                _ => self
                    .identifier(false)
                    .ok_or_else(|| self.error("expected a label name"))?,
            };
            self.skip_space();
            match self.operator() {
                Some(op) => {
                    self.skip_space();
                    let value = self.string()?;
                    out.push(Matcher::new(&name, op, &value)?);
                }
                // `{"metric name"}`: a quoted name alone is the metric name.
                None if matches!(self.peek(), Some(',') | Some('}')) => {
                    out.push(Matcher::new("__name__", MatchOp::Equal, &name)?);
                }
                None => return Err(self.error("expected one of =, !=, =~, !~")),
            }
            if !self.eat(',') {
                if self.eat('}') {
                    return Ok(());
                }
                return Err(self.error("expected ',' or '}'"));
            }
        }
    }

    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name (no `:`), if one is here.
    fn identifier(&mut self, metric: bool) -> Option<String> {
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
        let ok = |c: char| ok_first(c) || c.is_ascii_digit();
        if !self.peek().is_some_and(ok_first) {
            return None;
        }
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| ok(c)) {
            s.push(c);
            self.at += 1;
        }
        Some(s)
    }

    fn operator(&mut self) -> Option<MatchOp> {
        let two: String = self.chars[self.at..]
            .iter()
            .take(2)
            .map(|&(_, c)| c)
            .collect();
        let (op, len) = match two.as_str() {
            "=~" => (MatchOp::Regex, 2),
            "!=" => (MatchOp::NotEqual, 2),
            "!~" => (MatchOp::NotRegex, 2),
            _ if two.starts_with('=') => (MatchOp::Equal, 1),
            _ => return None,
        };
        self.at += len;
        Some(op)
    }

    /// A string literal: `"…"` or `'…'` with Go's escapes, or `` `…` `` raw.
    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let start = self.at;
        self.at += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.at = start;
                return Err(self.error("unterminated string"));
            };
            self.at += 1;
            match c {
                c if c == quote => return Ok(s),
                '\\' if quote != '`' => s.push(self.escape(quote)?),
                '\n' if quote != '`' => return Err(self.error("newline in a string")),
                c => s.push(c),
            }
        }
    }

    /// The character of the escape after a `\` (Go's `strconv.Unquote` rules).
    fn escape(&mut self, quote: char) -> Result<char, String> {
        let c = self
            .peek()
            .ok_or_else(|| self.error("unterminated escape"))?;
        self.at += 1;
        let hex = |p: &mut Parser, n: usize| -> Result<char, String> {
            let digits: String = p.chars[p.at..].iter().take(n).map(|&(_, c)| c).collect();
            let v = (digits.len() == n)
                .then(|| u32::from_str_radix(&digits, 16).ok())
                .flatten()
                .and_then(char::from_u32)
                .ok_or_else(|| p.error("invalid escape"))?;
            p.at += n;
            Ok(v)
        };
        Ok(match c {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            '0'..='7' => {
                let digits: String = self.chars[self.at - 1..]
                    .iter()
                    .take(3)
                    .map(|&(_, c)| c)
                    .collect();
                let v = u32::from_str_radix(&digits, 8)
                    .ok()
                    .filter(|v| digits.len() == 3 && *v < 256)
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.error("invalid octal escape"))?;
                self.at += 2;
                v
            }
            c if c == quote => c,
            _ => return Err(self.error("unknown escape")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Vec<String> {
        parse_selector(s)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn selectors_parse_as_promql() {
        assert_eq!(parsed("up"), ["__name__=\"up\""]);
        assert_eq!(
            parsed(r#"  http_requests_total{code=~"5..", method!="GET",}  "#),
            [
                "__name__=\"http_requests_total\"",
                "code=~\"5..\"",
                "method!=\"GET\""
            ]
        );
        assert_eq!(
            parsed(r#"{__name__="a", job!~'x\'y', le=`\d+`}"#),
            ["__name__=\"a\"", "job!~\"x'y\"", "le=\"\\\\d+\""]
        );
        assert_eq!(
            parsed(r#"{"my.metric", "a b"="\x41\u00e9\101"}"#),
            ["__name__=\"my.metric\"", "a b=\"AéA\""]
        );
        assert_eq!(parsed("ns:rule:rate5m"), ["__name__=\"ns:rule:rate5m\""]);
    }

    #[test]
    fn matchers_match_as_prometheus() {
        let m = parse_selector(r#"{a=~"x|y.*", b!~"z", c!=""}"#).unwrap();
        assert!(m[0].matches("x") && m[0].matches("yy") && !m[0].matches("ax"));
        assert!(m[1].matches("") && !m[1].matches("z"));
        assert!(!m[2].matches("") && m[2].matches("v"));
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_position() {
        let err = |s: &str| parse_selector(s).unwrap_err();
        assert!(err("").contains("expected a metric name"), "{}", err(""));
        assert!(err("{}").contains("at least one matcher"), "{}", err("{}"));
        assert!(err(r#"{a=""}"#).contains("at least one matcher"));
        assert!(err(r#"{a="b""#).contains("expected ',' or '}'"));
        assert!(err(r#"{a="b}"#).contains("position 4: unterminated string"));
        assert!(err(r#"{a=="b"}"#).contains("expected a quoted string"));
        assert!(err(r#"{a~"b"}"#).contains("expected one of"));
        assert!(err(r#"{a=~"("}"#).contains("invalid regular expression"));
        assert!(err(r#"up{__name__="x"}"#).contains("set twice"));
        assert!(err(r#"up}"#).contains("unexpected text"));
        assert!(err(r#"{a="\q"}"#).contains("unknown escape"));
    }
}

//! Relabel regular expressions as Prometheus compiles them: RE2 syntax (Go's `regexp`), fully
//! anchored (`^(?s:REGEX)$`, so `.` also matches a newline), with Go's `Regexp.Expand` for the
//! `$1`, `${1}`, `$name`, `${name}` references of `target_label` and `replacement`.
//!
//! The `regex` crate is RE2-compatible: the same syntax, linear-time matching, leftmost-first
//! matches and the same capture positions. Go's dialect differs from it in a few places only,
//! which `translate` rewrites before compiling:
//! - `\d`, `\w`, `\s`, `\b` and their negations are ASCII in Go, Unicode in Rust;
//! - `\Q…\E` quotes literal text in Go only;
//! - inside a class, `[` (other than a POSIX `[:alpha:]`), `&` and `~` are literal in Go but
//!   start nested classes and set operations in Rust.
//!
//! Rust also accepts a little that Go refuses (`(?x)`, `\<`, nested classes); such configs
//! work here and fail in Thanos, never the other way round.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A group reference in a template: Go's `extract` takes letters, digits and `_` (Unicode
/// categories L and Nd).
static GROUP_NAME: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{Nd}_]+").expect("a valid pattern"));

/// Go's `expand` reads group numbers up to this; a longer number is taken as a name.
const GROUP_NUMBER_MAX: usize = 100_000_000;

/// A relabel regex: its source as the config wrote it, compiled once, anchored.
#[derive(Clone)]
pub struct AnchoredRegex {
    source: String,
    compiled: regex::Regex,
}

impl AnchoredRegex {
    /// Compiles `source` as Prometheus does (`^(?s:source)$`); the error says what is wrong.
    pub fn new(source: &str) -> Result<Self, String> {
        let anchored = format!("^(?s:{})$", translate(source));
        let compiled = regex::RegexBuilder::new(&anchored)
            .octal(true)
            .build()
            .map_err(|e| describe(&e))?;
        Ok(AnchoredRegex {
            source: source.to_string(),
            compiled,
        })
    }

    /// The source as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
    }

    /// The capture groups of the match of the whole of `text`, if it matches.
    pub fn captures<'t>(&self, text: &'t str) -> Option<regex::Captures<'t>> {
        self.compiled.captures(text)
    }

    /// `template` with every group reference replaced by what the group captured, as Go's
    /// `Regexp.Expand`: `$$` is a `$`; `$name` takes the longest name of letters, digits and
    /// `_` (`$1x` is group `1x`), `${name}` delimits it; an all-digit name without a leading
    /// zero is a group number; an unknown or unmatched group is empty; a `$` that starts no
    /// reference stays as it is.
    pub fn expand(&self, captures: &regex::Captures<'_>, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = group_reference(rest) else {
                out.push('$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(number) => captures.get(number),
                None => captures.name(name),
            };
            if let Some(m) = group {
                out.push_str(m.as_str());
            }
        }
        out.push_str(rest);
        out
    }
}

/// The name of a reference at the start of `s` (after its `$`) and the text after it.
fn group_reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len = GROUP_NAME.find(body)?.end();
    let (name, after) = body.split_at(len);
    if !braced {
        return Some((name, after));
    }
    after.strip_prefix('}').map(|after| (name, after))
}

/// A name that is a group number to Go: ASCII digits, no leading zero, below 10^8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    let mut number = 0usize;
    for digit in name.bytes() {
        if number >= GROUP_NUMBER_MAX {
            return None;
        }
        number = number * 10 + usize::from(digit - b'0');
    }
    Some(number)
}

/// The reason of a compile error, without the pattern diagram the `regex` crate draws (the
/// pattern it shows is the translated one).
fn describe(error: &regex::Error) -> String {
    let text = error.to_string();
    match text.rfind("error: ") {
        Some(at) => text[at + "error: ".len()..].trim().to_string(),
        None => text.trim().to_string(),
    }
}

/// Rewrites Go's RE2 dialect where the `regex` crate reads it differently (see the module
/// doc); everything else is copied as it is.
fn translate(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i = translate_escape(&chars, i, in_class, &mut out);
        } else if in_class {
            i = translate_class_char(&chars, i, &mut out, &mut in_class);
        } else {
            out.push(c);
            i += 1;
            if c == '[' {
                in_class = true;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is literal in both dialects; escaped to be plain.
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
        }
    }
    out
}

/// Translates the escape at `chars[i]` (a backslash); returns the index after it.
fn translate_escape(chars: &[char], i: usize, in_class: bool, out: &mut String) -> usize {
    let Some(&next) = chars.get(i + 1) else {
        out.push('\\');
        return i + 1;
    };
    // Go's ASCII classes; nested classes are valid inside a class too.
    let ascii = match next {
        'd' => Some("[0-9]"),
        'D' => Some("[^0-9]"),
        'w' => Some("[0-9A-Za-z_]"),
        'W' => Some("[^0-9A-Za-z_]"),
        's' => Some("[\\t\\n\\x0C\\r ]"),
        'S' => Some("[^\\t\\n\\x0C\\r ]"),
        'b' if !in_class => Some("(?-u:\\b)"),
        'B' if !in_class => Some("(?-u:\\B)"),
        _ => None,
    };
    if let Some(class) = ascii {
        out.push_str(class);
        return i + 2;
    }
    if next == 'Q' && !in_class {
        let body = &chars[i + 2..];
        let end = body
            .windows(2)
            .position(|w| w == ['\\', 'E'])
            .unwrap_or(body.len());
        let literal: String = body[..end].iter().collect();
        out.push_str(&regex::escape(&literal));
        return (i + 2 + end + 2).min(chars.len());
    }
    out.push('\\');
    out.push(next);
    i + 2
}

/// Translates `chars[i]` inside a class; returns the index after what it consumed.
fn translate_class_char(chars: &[char], i: usize, out: &mut String, in_class: &mut bool) -> usize {
    match chars[i] {
        ']' => {
            *in_class = false;
            out.push(']');
        }
        '[' if chars.get(i + 1) == Some(&':') => {
            let body = &chars[i + 2..];
            if let Some(end) = body.windows(2).position(|w| w == [':', ']']) {
                out.extend(&chars[i..i + 2 + end + 2]);
                return i + 2 + end + 2;
            }
            out.push_str("\\[");
        }
        c @ ('[' | '&' | '~') => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
    i + 1
}

impl PartialEq for AnchoredRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for AnchoredRegex {}

impl fmt::Debug for AnchoredRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl Serialize for AnchoredRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for AnchoredRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        AnchoredRegex::new(&source)
            .map_err(|e| serde::de::Error::custom(format!("regex {source:?}: {e}")))
    }
}

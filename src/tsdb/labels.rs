//! Label sets: sorted `name="value"` pairs that identify a series, ordered exactly as
//! Prometheus' `labels.Compare` (pairwise by name then value, a prefix sorts first).

use std::fmt;

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value.
    pub value: String,
}

/// A label set, sorted by name with unique names. The derived ordering equals Prometheus'
/// `labels.Compare`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs, sorting them by name. Empty values are dropped, as
    /// Prometheus treats an empty value as an absent label.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort();
        v.dedup_by(|a, b| a.name == b.name);
        Labels(v)
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the set has no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }
}

impl fmt::Display for Labels {
    /// Prometheus' `labels.String()`: `{a="1", b="2"}` with Go-quoted values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=", l.name)?;
            write_go_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

/// Writes `s` quoted as Go's `strconv.Quote` does for printable text.
pub fn write_go_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_matches_prometheus_compare() {
        let a = Labels::from_pairs([("__name__", "a"), ("x", "1")]);
        let b = Labels::from_pairs([("__name__", "a"), ("x", "1"), ("y", "0")]);
        let c = Labels::from_pairs([("__name__", "a"), ("y", "0")]);
        assert!(a < b, "a prefix sorts first");
        assert!(b < c, "names compare before values");
        assert_eq!(a.to_string(), r#"{__name__="a", x="1"}"#);
        assert_eq!(a.get("x"), Some("1"));
    }
}

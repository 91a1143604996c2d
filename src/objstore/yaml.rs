//! YAML reading with Go `yaml.v2` leniency where Thanos configs rely on it, and serde's
//! strictness elsewhere.
//!
//! - A scalar of any kind reads into a text field (`bucket: 2024` is the string "2024"), as Go
//!   decodes it into a `string`; an explicit `null` (`bucket:`) reads as empty.
//! - `null` for a number, bool or nested section reads as its zero value, as in Go.
//! - Durations use Prometheus' `model.Duration` syntax (`90s`, `2m`, `1h30m`).
//! - Unknown fields are errors (`yaml.UnmarshalStrict`).
//!
//! Each provider section is parsed from the original text inside a [`Document`], so serde's
//! error carries the field path and the line in the user's file
//! (`config.insecure: invalid type: ... at line 4 column 13`).

use std::fmt;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};

/// The whole configuration file; `C` is the provider section (or a raw `Value` when only the
/// type is wanted).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "C: Deserialize<'de> + Default")
)]
pub(crate) struct Document<C> {
    /// `type:`.
    #[serde(rename = "type", default)]
    pub kind: Text,
    /// `config:`.
    #[serde(default, deserialize_with = "nullable")]
    pub config: C,
    /// `prefix:`.
    #[serde(default)]
    pub prefix: Text,
}

/// Parses the provider section of `text` as `C`; the error names the field and line.
pub(crate) fn parse_section<C: DeserializeOwned + Default>(text: &str) -> Result<C, String> {
    serde_yaml_ng::from_str::<Document<C>>(text)
        .map(|d| d.config)
        .map_err(|e| e.to_string())
}

/// Reads `null` as `T::default()`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A text field: any scalar, as Go reads it into a `string`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl Text {
    /// The text with surrounding whitespace removed.
    pub fn trimmed(&self) -> &str {
        self.0.trim()
    }

    /// True when empty (Thanos treats an empty string as "not set").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(|s: String| Ok(Text(s))))
    }
}

/// Reads any scalar as text and converts it with `.0`. Conversion errors are raised while
/// the scalar is being read, so serde_yaml_ng reports them with the field's own path.
struct ScalarVisitor<F>(F);

impl<'de, T, F: FnOnce(String) -> Result<T, String>> Visitor<'de> for ScalarVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v.to_string()).map_err(E::custom)
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
        self.visit_string(v.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_string(v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_string(v.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
        self.visit_string(v.to_string())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        self.visit_string(String::new())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<T, E> {
        self.visit_string(String::new())
    }
}

/// A credential: read like [`Text`], never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Secret(pub String);

impl Secret {
    /// True when empty (not set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret itself, for handing to the client builder only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<redacted>")
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Secret(t.0))
    }
}

/// A Prometheus `model.Duration` (`90s`, `1m30s`, `0`), in milliseconds.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DurationMs(pub u64);

impl fmt::Debug for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::duration::format_duration_ms(self.0))
    }
}

impl DurationMs {
    /// As a `std::time::Duration`.
    pub fn get(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(|s: String| {
            let s = s.trim();
            if s.is_empty() {
                return Ok(DurationMs(0));
            }
            crate::duration::parse_duration_ms(s).map(DurationMs)
        }))
    }
}

//! The Go `text/template` subset of `tools bucket ls -o '<template>'`: Thanos executes the
//! template against each block's `metadata.Meta`, so the fields are the Go struct's field
//! names (`{{.ULID}}`, `{{.MinTime}}`, `{{.Stats.NumSamples}}`, `{{.Compaction.Level}}`,
//! `{{.Thanos.Labels}}`, `{{.Thanos.Labels.cluster}}`, `{{.Thanos.Downsample.Resolution}}`)
//! and each value prints as Go's `fmt` prints it (`map[k:v]`, `[a b]`, `{1 2}`).
//!
//! Supported: literal text, field references, string literals (`{{"\t"}}`), comments
//! (`{{/* ... */}}`) and the `{{-` / `-}}` trim markers. Anything else (pipelines, functions,
//! `if`, `range`, variables) is refused when the template is parsed, as is an unknown field:
//! the error names the template and the action or field. A field is checked when the
//! template is parsed, so a bad one fails even on an empty bucket.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::gofmt;
use crate::tsdb::block_id::BlockId;
use crate::tsdb::meta::{BlockMeta, ThanosMeta, ZERO_TIME};

/// What Go prints for a missing map key.
const NO_VALUE: &str = "<no value>";

/// Why a template was refused or failed on a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template as given.
    pub template: String,
    /// What is wrong, naming the action or field.
    pub problem: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid template {:?}: {}", self.template, self.problem)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct MetaTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    /// Text printed as is (literal text or a string literal action).
    Text(String),
    /// A field path: `.Thanos.Labels` is `["Thanos", "Labels"]`.
    Field(Vec<String>),
}

impl MetaTemplate {
    /// Parses `source` and checks every field it names.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let err = |problem: String| TemplateError {
            template: source.to_string(),
            problem,
        };
        let parts = split_actions(source).map_err(err)?;
        let template = MetaTemplate {
            source: source.to_string(),
            parts,
        };
        template.render(&sample_meta())?;
        Ok(template)
    }

    /// The template executed against `meta` (without Thanos' trailing newline).
    pub fn render(&self, meta: &BlockMeta) -> Result<String, TemplateError> {
        let mut out = String::new();
        let root = meta_value(meta);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(path) => {
                    let text =
                        lookup(&root, path)
                            .and_then(|v| v.print())
                            .map_err(|p| TemplateError {
                                template: self.source.clone(),
                                problem: format!("at <.{}>: {p}", path.join(".")),
                            })?;
                    out.push_str(&text);
                }
            }
        }
        Ok(out)
    }
}

/// A meta with every section present, to check a template's fields against.
fn sample_meta() -> BlockMeta {
    let mut meta = BlockMeta::level1(BlockId::from_parts(0, 0), 0, 0);
    meta.thanos.get_or_insert_with(ThanosMeta::default);
    meta
}

/// Splits the template into text and actions.
fn split_actions(source: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut inner = &rest[open + 2..];
        if let Some(after) = inner.strip_prefix('-').filter(|a| starts_with_space(a)) {
            text = text.trim_end_matches(is_space);
            inner = after;
        }
        push_text(&mut parts, text);
        let close =
            action_end(inner).ok_or_else(|| format!("unclosed action {:?}", &rest[open..]))?;
        let mut action = &inner[..close];
        rest = &inner[close + 2..];
        if let Some(before) = action.strip_suffix('-').filter(|b| ends_with_space(b)) {
            action = before;
            rest = rest.trim_start_matches(is_space);
        }
        if let Some(part) = parse_action(action.trim_matches(is_space))? {
            parts.push(part);
        }
    }
    push_text(&mut parts, rest);
    Ok(parts)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn starts_with_space(s: &str) -> bool {
    s.starts_with(is_space)
}

fn ends_with_space(s: &str) -> bool {
    s.ends_with(is_space)
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.to_string()));
    }
}

/// The offset of the `}}` that closes an action, skipping string literals.
fn action_end(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'"' | b'`')) => quote = Some(c),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// One action: a field reference, a string literal, or a comment (`None`).
fn parse_action(action: &str) -> Result<Option<Part>, String> {
    if action.starts_with("/*") && action.ends_with("*/") && action.len() >= 4 {
        return Ok(None);
    }
    if action.starts_with('"') || action.starts_with('`') {
        let text = gofmt::unquote(action).map_err(|e| format!("string literal {e}"))?;
        return Ok(Some(Part::Text(text)));
    }
    let unsupported = || {
        format!(
            "action {{{{{action}}}}} is not supported: compactd's templates take field \
             references ({{{{.ULID}}}}, {{{{.Thanos.Labels.cluster}}}}) and string literals"
        )
    };
    let path = action.strip_prefix('.').ok_or_else(unsupported)?;
    if path.is_empty() {
        return Err(
            "{{.}} prints the whole metadata.Meta, which compactd does not: \
                    name one of its fields (ULID, MinTime, MaxTime, Stats, Compaction, \
                    Version, Thanos)"
                .into(),
        );
    }
    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
    let identifier =
        |s: &String| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !segments.iter().all(identifier) {
        return Err(unsupported());
    }
    Ok(Some(Part::Field(segments)))
}

/// A value of the meta as Go's template engine sees it.
#[derive(Clone)]
enum GoValue {
    /// A value printed as `text`, of Go type `ty`.
    Scalar { ty: &'static str, text: String },
    /// `map[string]string`, which also takes `.key`.
    Map(BTreeMap<String, String>),
    /// A slice, printed `[a b]`.
    List(Vec<GoValue>),
    /// A struct with its fields in declaration order, printed `{a b}`.
    Struct {
        ty: &'static str,
        fields: Vec<(&'static str, GoValue)>,
    },
    /// A value compactd does not print (pointers, `any`, time-less rewrites).
    Opaque { ty: &'static str },
}

impl GoValue {
    fn type_name(&self) -> &'static str {
        match self {
            GoValue::Scalar { ty, .. } | GoValue::Struct { ty, .. } | GoValue::Opaque { ty } => ty,
            GoValue::Map(_) => "map[string]string",
            GoValue::List(_) => "slice",
        }
    }

    /// Go's `%v` of the value.
    fn print(&self) -> Result<String, String> {
        Ok(match self {
            GoValue::Scalar { text, .. } => text.clone(),
            GoValue::Map(m) => {
                let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", pairs.join(" "))
            }
            GoValue::List(items) => {
                let items: Result<Vec<String>, String> = items.iter().map(Self::print).collect();
                format!("[{}]", items?.join(" "))
            }
            GoValue::Struct { fields, .. } => {
                let items: Result<Vec<String>, String> =
                    fields.iter().map(|(_, v)| v.print()).collect();
                format!("{{{}}}", items?.join(" "))
            }
            GoValue::Opaque { ty } => {
                return Err(format!(
                    "a value of type {ty}, which compactd's templates do not print"
                ))
            }
        })
    }
}

/// The value at `path` under `root`, Go's errors for a field that is not there.
fn lookup<'v>(root: &'v GoValue, path: &[String]) -> Result<Cow<'v, GoValue>, String> {
    let mut at = Cow::Borrowed(root);
    for name in path {
        let next = match at.as_ref() {
            GoValue::Struct { ty, fields } => fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
                    format!(
                        "can't evaluate field {name} in type {ty} (its fields: {})",
                        names.join(", ")
                    )
                })?,
            GoValue::Map(m) => GoValue::Scalar {
                ty: "string",
                text: m.get(name).cloned().unwrap_or_else(|| NO_VALUE.to_string()),
            },
            other => {
                return Err(format!(
                    "can't evaluate field {name} in type {}",
                    other.type_name()
                ))
            }
        };
        at = Cow::Owned(next);
    }
    Ok(at)
}

fn scalar(ty: &'static str, v: impl ToString) -> GoValue {
    GoValue::Scalar {
        ty,
        text: v.to_string(),
    }
}

/// The meta as Go's `metadata.Meta` (with `tsdb.BlockMeta` embedded).
fn meta_value(m: &BlockMeta) -> GoValue {
    let s = &m.stats;
    let stats = GoValue::Struct {
        ty: "tsdb.BlockStats",
        fields: vec![
            ("NumSamples", scalar("uint64", s.num_samples)),
            ("NumFloatSamples", scalar("uint64", s.num_float_samples)),
            (
                "NumHistogramSamples",
                scalar("uint64", s.num_histogram_samples),
            ),
            ("NumSeries", scalar("uint64", s.num_series)),
            ("NumChunks", scalar("uint64", s.num_chunks)),
            ("NumTombstones", scalar("uint64", s.num_tombstones)),
        ],
    };
    let c = &m.compaction;
    let ulids =
        |ids: &[BlockId]| GoValue::List(ids.iter().map(|i| scalar("ulid.ULID", i)).collect());
    let parents = c.parents.iter().map(|p| GoValue::Struct {
        ty: "tsdb.BlockDesc",
        fields: vec![
            ("ULID", scalar("ulid.ULID", p.ulid)),
            ("MinTime", scalar("int64", p.min_time)),
            ("MaxTime", scalar("int64", p.max_time)),
        ],
    });
    let compaction = GoValue::Struct {
        ty: "tsdb.BlockMetaCompaction",
        fields: vec![
            ("Level", scalar("int", c.level)),
            ("Sources", ulids(&c.sources)),
            ("Deletable", scalar("bool", c.deletable)),
            ("Parents", GoValue::List(parents.collect())),
            ("Failed", scalar("bool", c.failed)),
            (
                "Hints",
                GoValue::List(c.hints.iter().map(|h| scalar("string", h)).collect()),
            ),
        ],
    };
    GoValue::Struct {
        ty: "metadata.Meta",
        fields: vec![
            ("ULID", scalar("ulid.ULID", m.ulid)),
            ("MinTime", scalar("int64", m.min_time)),
            ("MaxTime", scalar("int64", m.max_time)),
            ("Stats", stats),
            ("Compaction", compaction),
            ("Version", scalar("int", m.version)),
            ("Thanos", thanos_value(m.thanos.as_ref())),
        ],
    }
}

/// `metadata.Thanos`; a meta without the section reads as Go's zero value.
fn thanos_value(t: Option<&ThanosMeta>) -> GoValue {
    let zero = ThanosMeta {
        upload_time: ZERO_TIME.to_string(),
        ..ThanosMeta::default()
    };
    let t = t.unwrap_or(&zero);
    GoValue::Struct {
        ty: "metadata.Thanos",
        fields: vec![
            ("Version", scalar("int", t.version)),
            ("Labels", GoValue::Map(t.labels.clone())),
            (
                "Downsample",
                GoValue::Struct {
                    ty: "metadata.ThanosDownsample",
                    fields: vec![("Resolution", scalar("int64", t.downsample.resolution))],
                },
            ),
            ("Source", scalar("metadata.SourceType", &t.source)),
            (
                "SegmentFiles",
                GoValue::List(
                    t.segment_files
                        .iter()
                        .map(|f| scalar("string", f))
                        .collect(),
                ),
            ),
            (
                "Files",
                GoValue::Opaque {
                    ty: "[]metadata.File",
                },
            ),
            (
                "Rewrites",
                GoValue::Opaque {
                    ty: "[]metadata.Rewrite",
                },
            ),
            (
                "IndexStats",
                GoValue::Struct {
                    ty: "metadata.IndexStats",
                    fields: vec![
                        (
                            "SeriesMaxSize",
                            scalar("int64", t.index_stats.series_max_size),
                        ),
                        (
                            "ChunkMaxSize",
                            scalar("int64", t.index_stats.chunk_max_size),
                        ),
                    ],
                },
            ),
            ("Extensions", GoValue::Opaque { ty: "interface {}" }),
            (
                "UploadTime",
                scalar("time.Time", gofmt::time_string(&t.upload_time)),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        let mut m = BlockMeta::level1(BlockId::from_parts(1_735_689_600_000, 7), 1000, 7_201_000);
        m.stats.num_samples = 480;
        m.stats.num_series = 2;
        m.compaction.level = 2;
        let t = m.thanos.get_or_insert_with(ThanosMeta::default);
        t.labels.insert("cluster".into(), "eu-1".into());
        t.labels.insert("replica".into(), "a".into());
        t.downsample.resolution = 300_000;
        t.source = "compactor".into();
        t.upload_time = "2025-01-01T00:00:00Z".into();
        m
    }

    fn render(src: &str) -> Result<String, TemplateError> {
        MetaTemplate::parse(src)?.render(&meta())
    }

    #[test]
    fn fields_print_as_go_prints_them() {
        let id = meta().ulid.to_string();
        assert_eq!(
            render("{{.ULID}} {{.MinTime}}").unwrap(),
            format!("{id} 1000")
        );
        assert_eq!(
            render("{{ .Thanos.Labels }}|{{.Thanos.Labels.cluster}}|{{.Thanos.Labels.nope}}")
                .unwrap(),
            "map[cluster:eu-1 replica:a]|eu-1|<no value>"
        );
        assert_eq!(
            render("{{.Thanos.Downsample.Resolution}} {{.Compaction.Level}} {{.Stats.NumSamples}} {{.Thanos.Source}}")
                .unwrap(),
            "300000 2 480 compactor"
        );
        assert_eq!(render("{{.Stats}}").unwrap(), "{480 0 0 2 0 0}");
        assert_eq!(
            render("{{.Compaction.Sources}}").unwrap(),
            format!("[{id}]")
        );
        assert_eq!(render("{{.Compaction.Parents}}").unwrap(), "[]");
        assert_eq!(
            render("{{.Thanos.UploadTime}}").unwrap(),
            "2025-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(render("plain").unwrap(), "plain");
    }

    #[test]
    fn literals_comments_and_trim_markers() {
        assert_eq!(render(r#"{{.Version}}{{"\t"}}x"#).unwrap(), "1\tx");
        assert_eq!(render("a {{/* note */}}b").unwrap(), "a b");
        assert_eq!(render("a   {{- .Version -}}   b").unwrap(), "a1b");
        assert_eq!(render(r#"{{"}}"}}"#).unwrap(), "}}");
        let mut bare = meta();
        bare.thanos = None;
        let t = MetaTemplate::parse("{{.Thanos.Labels}} {{.Thanos.Source}}.").unwrap();
        assert_eq!(t.render(&bare).unwrap(), "map[] .");
    }

    #[test]
    fn unknown_fields_and_actions_name_the_problem() {
        let e = MetaTemplate::parse("{{.ULID}} {{.Nope}}").unwrap_err();
        assert_eq!(e.template, "{{.ULID}} {{.Nope}}");
        assert!(
            e.problem
                .contains("can't evaluate field Nope in type metadata.Meta"),
            "{e}"
        );
        let e = MetaTemplate::parse("{{.Thanos.Downsample.Res}}").unwrap_err();
        assert!(
            e.to_string()
                .contains("field Res in type metadata.ThanosDownsample"),
            "{e}"
        );
        let e = MetaTemplate::parse("{{.MinTime.Foo}}").unwrap_err();
        assert!(e.problem.contains("field Foo in type int64"), "{e}");
        let e = MetaTemplate::parse("{{.Thanos.Files}}").unwrap_err();
        assert!(e.problem.contains("[]metadata.File"), "{e}");
        let e = MetaTemplate::parse("{{.Thanos}}").unwrap_err();
        assert!(e.problem.contains("at <.Thanos>"), "{e}");
        for bad in [
            "{{printf \"%d\" .MinTime}}",
            "{{.ULID | len}}",
            "{{if .ULID}}x{{end}}",
            "{{$x}}",
        ] {
            let e = MetaTemplate::parse(bad).unwrap_err();
            assert!(e.problem.contains("is not supported"), "{bad}: {e}");
        }
        assert!(MetaTemplate::parse("{{.}}")
            .unwrap_err()
            .problem
            .contains("whole"));
        assert!(MetaTemplate::parse("{{.ULID")
            .unwrap_err()
            .problem
            .contains("unclosed"));
    }
}

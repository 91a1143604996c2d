//! Log output in Thanos' formats (`--log.format`): `logfmt` (Thanos' default) and `json`,
//! with Thanos' keys `ts`, `level`, `caller` and `msg` first and the event's fields after
//! them, so log pipelines written for `thanos compact` parse compactd's lines unchanged.
//!
//! ```text
//! ts=2026-12-06T18:51:08.681Z level=info caller=report.rs:163 msg="leading: ..." epoch=7
//! {"ts":"2026-12-06T18:51:08.681Z","level":"info","caller":"report.rs:163","msg":"leading: ...","epoch":7}
//! ```

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A `--log.format` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, values quoted when they need it (Thanos' default).
    Logfmt,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses a `--log.format` value (Thanos accepts `logfmt` and `json`).
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s {
            "logfmt" => Ok(LogFormat::Logfmt),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?}: must be logfmt or json")),
        }
    }
}

/// Installs the global subscriber: `level` as `--log.level` (`error`, `warn`, `info`,
/// `debug`, or an env-filter directive), lines in `format` on standard error.
pub fn init(level: &str, format: LogFormat) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| format!("--log.level {level:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(ThanosFormat(format))
        .try_init()
        .map_err(|e| format!("logging: {e}"))
}

/// The event formatter of [`init`].
pub struct ThanosFormat(pub LogFormat);

impl<S, N> FormatEvent<S, N> for ThanosFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let file = meta.file().unwrap_or("?");
        let base = file.rsplit('/').next().unwrap_or(file);
        let caller = format!("{base}:{}", meta.line().unwrap_or(0));
        let head = [
            ("ts", Value::Text(now_rfc3339_ms())),
            ("level", Value::Text(level_name(meta.level()).to_string())),
            ("caller", Value::Text(caller)),
            (
                "msg",
                Value::Text(fields.message.take().unwrap_or_default()),
            ),
        ];
        let pairs = head
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(fields.pairs.iter().map(|(k, v)| (*k, v)));
        let line = match self.0 {
            LogFormat::Logfmt => logfmt_line(pairs),
            LogFormat::Json => json_line(pairs),
        };
        writeln!(writer, "{line}")
    }
}

/// Thanos' level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        _ => "debug",
    }
}

/// The wall clock as Thanos' `ts`: RFC 3339, UTC, milliseconds.
fn now_rfc3339_ms() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let ts = crate::timefmt::format_rfc3339_ms(ms);
    // Always three digits of milliseconds, so lines sort and align.
    match ts.strip_suffix('Z') {
        Some(base) if !base.contains('.') => format!("{base}.000Z"),
        _ => ts,
    }
}

/// A field's value: numbers and booleans stay typed in JSON.
#[derive(Debug)]
enum Value {
    Text(String),
    Number(String),
}

/// The fields of one event, in the order they were recorded.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            let (Value::Text(t) | Value::Number(t)) = value;
            self.message = Some(t);
            return;
        }
        self.pairs.push((field.name(), value));
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::Text(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Text(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Number(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Number(value.to_string()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        let text = if value.is_finite() {
            value.to_string()
        } else {
            // JSON has no NaN or infinity: a string then.
            return self.push(field, Value::Text(value.to_string()));
        };
        self.push(field, Value::Number(text));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Number(value.to_string()));
    }
}

/// `k=v k="v w"`: a value is quoted (Go-escaped) when it is empty or holds a space, `=`, `"`
/// or a control character, as go-kit's logfmt encoder does.
fn logfmt_line<'a>(pairs: impl Iterator<Item = (&'a str, &'a Value)>) -> String {
    let mut line = String::new();
    for (key, value) in pairs {
        if !line.is_empty() {
            line.push(' ');
        }
        let text = match value {
            Value::Text(t) | Value::Number(t) => t,
        };
        let quote = text.is_empty()
            || text
                .chars()
                .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
        let _ = if quote {
            write!(line, "{key}={}", quoted(text))
        } else {
            write!(line, "{key}={text}")
        };
    }
    line
}

/// One JSON object; keys in order, numbers and booleans unquoted.
fn json_line<'a>(pairs: impl Iterator<Item = (&'a str, &'a Value)>) -> String {
    let mut line = String::from("{");
    for (i, (key, value)) in pairs.enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&quoted(key));
        line.push(':');
        match value {
            Value::Text(t) => line.push_str(&quoted(t)),
            Value::Number(n) => line.push_str(n),
        }
    }
    line.push('}');
    line
}

/// `s` as a double-quoted string with JSON escapes (also valid logfmt quoting).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn logfmt_quotes_only_values_that_need_it() {
        let pairs = [
            ("level", text("info")),
            ("msg", text("stopped leading; no more writes")),
            ("epoch", Value::Number("7".into())),
            ("reason", text("a=b")),
            ("empty", text("")),
            ("quote", text("say \"hi\"")),
        ];
        let line = logfmt_line(pairs.iter().map(|(k, v)| (*k, v)));
        assert_eq!(
            line,
            r#"level=info msg="stopped leading; no more writes" epoch=7 reason="a=b" empty="" quote="say \"hi\"""#
        );
    }

    #[test]
    fn json_keeps_numbers_typed_and_escapes_strings() {
        let pairs = [
            ("msg", text("line\nbreak")),
            ("epoch", Value::Number("7".into())),
            ("ok", Value::Number("true".into())),
        ];
        let line = json_line(pairs.iter().map(|(k, v)| (*k, v)));
        assert_eq!(line, r#"{"msg":"line\nbreak","epoch":7,"ok":true}"#);
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["epoch"], 7);
    }

    #[test]
    fn log_format_names_are_thanos_ones() {
        assert_eq!(LogFormat::parse("logfmt"), Ok(LogFormat::Logfmt));
        assert_eq!(LogFormat::parse("json"), Ok(LogFormat::Json));
        assert!(LogFormat::parse("text").is_err());
    }
}

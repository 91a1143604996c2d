//! Go's text forms of values, as Thanos' bucket tools print them: `time.Duration.String()`
//! (`2h0m0s`), `time.Unix(s, 0).Format(time.RFC3339)` (whole seconds), `time.Time.String()`,
//! English thousands separators (`golang.org/x/text/message`, `1,234`), `strconv.Unquote`
//! of a label value, and `encoding/json`'s HTML escaping. Owned here so that `ls -o wide`,
//! `ls -o '{{...}}'` and `inspect` print exactly what Thanos prints.

use crate::timefmt::{format_rfc3339_ms, parse_rfc3339_ms};

/// Go's `time.Duration(ms * time.Millisecond).String()`: `0s`, `500ms`, `1.5s`, `5m0s`,
/// `2h0m0s`, `-8h0m0s`.
pub fn duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let u = ms.unsigned_abs();
    if u < 1000 {
        return format!("{sign}{u}ms");
    }
    let (h, m, s, frac) = (u / 3_600_000, u / 60_000 % 60, u / 1000 % 60, u % 1000);
    let secs = if frac == 0 {
        s.to_string()
    } else {
        let digits = format!("{frac:03}");
        format!("{s}.{}", digits.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

/// `time.Unix(ms/1000, 0).Format(time.RFC3339)` in UTC: the milliseconds are dropped (Go's
/// integer division truncates towards zero).
pub fn unix_seconds_rfc3339(ms: i64) -> String {
    format_rfc3339_ms(ms / 1000 * 1000)
}

/// Go's `time.Time.String()` of an RFC3339 time, in UTC: `2025-01-01 00:00:00 +0000 UTC`,
/// with the fraction's trailing zeros dropped (`.5`). Unparseable input is returned as is.
pub fn time_string(rfc3339: &str) -> String {
    let Ok(ms) = parse_rfc3339_ms(rfc3339) else {
        return rfc3339.to_string();
    };
    let formatted = format_rfc3339_ms(ms);
    let body = formatted.trim_end_matches('Z').replacen('T', " ", 1);
    let body = match body.split_once('.') {
        Some((whole, frac)) => format!("{whole}.{}", frac.trim_end_matches('0')),
        None => body,
    };
    format!("{body} +0000 UTC")
}

/// `n` with English thousands separators (`1,234,567`), as `message.NewPrinter(language.English)`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Go's `strconv.Unquote` for the forms a flag value takes: `"..."` with Go's escapes
/// (`\"`, `\\`, `\n`, `\t`, `\r`, `\a`, `\b`, `\f`, `\v`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`) or
/// a raw `` `...` ``. The error says what is wrong.
pub fn unquote(s: &str) -> Result<String, String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        if raw.contains('`') {
            return Err(format!("{s}: a backquote inside a raw string"));
        }
        return Ok(raw.to_string());
    }
    let Some(body) = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
    else {
        return Err(format!("{s}: not a quoted string (\"...\" or `...`)"));
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Err(format!("{s}: an unescaped \" inside the string")),
            '\\' => out.push(unescape(&mut chars).map_err(|e| format!("{s}: {e}"))?),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// The character of one escape sequence after its backslash.
fn unescape(chars: &mut std::str::Chars<'_>) -> Result<char, String> {
    let c = chars.next().ok_or("a trailing backslash")?;
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Result<char, String> {
        let digits: String = chars.take(n).collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.len() == n)
            .and_then(char::from_u32)
            .ok_or_else(|| format!("invalid escape \\{c}{digits}"))
    };
    Ok(match c {
        '"' | '\\' | '\'' => c,
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        'x' => hex(chars, 2)?,
        'u' => hex(chars, 4)?,
        'U' => hex(chars, 8)?,
        _ => return Err(format!("unknown escape \\{c}")),
    })
}

/// JSON text as Go's `json.Encoder` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// `\u003c`, ... (they only ever occur inside strings, so replacing them everywhere is exact).
pub fn json_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_them() {
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (500, "500ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (1250, "1.25s"),
            (300_000, "5m0s"),
            (3_600_000, "1h0m0s"),
            (7_200_000, "2h0m0s"),
            (144_000_000, "40h0m0s"),
            (3_723_004, "1h2m3.004s"),
            (-28_800_000, "-8h0m0s"),
            (-500, "-500ms"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(ms), want, "{ms}");
        }
    }

    #[test]
    fn times_and_numbers() {
        assert_eq!(
            unix_seconds_rfc3339(1_735_689_600_999),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            time_string("2025-01-01T00:00:00.500Z"),
            "2025-01-01 00:00:00.5 +0000 UTC"
        );
        assert_eq!(
            time_string("0001-01-01T00:00:00Z"),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(time_string("garbage"), "garbage");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(123_456), "123,456");
    }

    #[test]
    fn unquotes_like_strconv() {
        assert_eq!(unquote(r#""prod""#).unwrap(), "prod");
        assert_eq!(unquote(r#""a\"b\\c\n\x41\u00e9""#).unwrap(), "a\"b\\c\nAé");
        assert_eq!(unquote("`raw\\n`").unwrap(), "raw\\n");
        assert_eq!(unquote(r#""""#).unwrap(), "");
        for bad in ["prod", "\"", r#""a"b""#, r#""\q""#, r#""\x4""#, r#""abc\""#] {
            assert!(unquote(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_html_in_json() {
        assert_eq!(
            json_html_escape(r#"{"a":"<b>&"}"#),
            r#"{"a":"\u003cb\u003e\u0026"}"#
        );
    }
}

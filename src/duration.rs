//! Durations as Prometheus and Thanos flags write them: `1y2w3d4h5m6s7ms`, units in
//! decreasing order, each at most once (`model.ParseDuration`). `0` alone means zero.

use crate::units::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, WEEK_MS, YEAR_MS};

/// Milliseconds per unit, in the order the units must appear.
const UNITS: &[(&str, u64)] = &[
    ("y", YEAR_MS as u64),
    ("w", WEEK_MS as u64),
    ("d", DAY_MS as u64),
    ("h", HOUR_MS as u64),
    ("m", MINUTE_MS as u64),
    ("s", SECOND_MS as u64),
    ("ms", 1),
];

/// Parses a duration into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    if s == "0" {
        return Ok(0);
    }
    let err = || format!("invalid duration {s:?} (expected e.g. 30s, 5m, 2h, 1d, 1h30m)");
    let mut rest = s;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let pos = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(err)?;
        let (_, ms) = UNITS[next_unit + pos];
        next_unit += pos + 1;
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(total)
}

/// Formats milliseconds the way Prometheus prints durations (`2h`, `1h30m`, `0s`).
pub fn format_duration_ms(mut ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if ms >= *size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration_ms("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("15s").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert_eq!(parse_duration_ms("0").unwrap(), 0);
        assert_eq!(parse_duration_ms("0d").unwrap(), 0);
        assert_eq!(parse_duration_ms("2d").unwrap(), 172_800_000);
        for bad in ["", "h", "2", "2x", "30m1h", "1h1h", "-1s", "1.5h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration_ms(5_400_000), "1h30m");
        assert_eq!(format_duration_ms(172_800_000), "2d");
    }
}

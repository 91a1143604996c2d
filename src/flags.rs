//! Parsers for flag values in the forms Thanos accepts: byte sizes (`64GB`, base 2, as
//! Thanos' `units.Base2Bytes`) and times that are either RFC3339 or a duration relative to
//! now (`-2w`, `3d`), as Thanos' `model.TimeOrDurationValue`.

use crate::duration::parse_duration_ms;
use crate::timefmt::parse_rfc3339_ms;

/// Parses a base-2 byte size: `1024`, `512KB`, `64GB`, `1TiB`, ...
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("invalid size {s:?} (expected e.g. 512MB, 64GB)");
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().map_err(|_| err())?;
    let shift = match s[digits..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        "P" | "PB" | "PIB" => 50,
        _ => return Err(err()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(err)
}

/// Parses an RFC3339 time or a signed duration relative to `now_ms` into Unix ms.
pub fn parse_time_or_duration(s: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = parse_rfc3339_ms(s) {
        return Ok(t);
    }
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let ms = parse_duration_ms(rest).map_err(|_| format!("invalid time {s:?}: expected RFC3339 (2025-01-01T00:00:00Z) or a duration relative to now (-2w)"))?;
    Ok(now_ms.saturating_add(sign * ms as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_bytes("64GB").unwrap(), 64 << 30);
        assert_eq!(parse_bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("10").unwrap(), 10);
        assert!(parse_bytes("GB").is_err() && parse_bytes("5XB").is_err());
        assert_eq!(
            parse_time_or_duration("2025-01-01T00:00:00Z", 0).unwrap(),
            1_735_689_600_000
        );
        assert_eq!(
            parse_time_or_duration("-1h", 10_000_000).unwrap(),
            6_400_000
        );
        assert_eq!(
            parse_time_or_duration("9999-12-31T23:59:59Z", 0).unwrap(),
            253_402_300_799_000
        );
        assert!(parse_time_or_duration("0000-01-01T00:00:00Z", 0).unwrap() < 0);
        assert!(parse_time_or_duration("yesterday", 0).is_err());
    }
}

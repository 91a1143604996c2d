//! RFC3339 timestamps as Thanos writes them (`thanos.upload_time`, API responses), converted
//! to and from Unix milliseconds without a calendar library: the proleptic Gregorian
//! civil-from-days arithmetic is a dozen lines.

/// Formats Unix milliseconds as RFC3339 in UTC (`2025-01-01T00:00:00Z`, with `.mmm` when the
/// milliseconds are not zero).
pub fn format_rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    if ms == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{ms:03}Z")
    }
}

/// Parses an RFC3339 timestamp (`Z` or `±hh:mm` offset, optional fraction) into Unix ms.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let err = || format!("invalid RFC3339 time {s:?}");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(err);
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = padded.parse::<i64>().map_err(|_| err())?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let oh: i64 = rest[1..3].parse().map_err(|_| err())?;
            let om: i64 = rest[4..6].parse().map_err(|_| err())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(y, mo, d);
    Ok((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + ms)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_values() {
        assert_eq!(format_rfc3339_ms(1_735_689_600_000), "2025-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_ms(1_735_689_600_123),
            "2025-01-01T00:00:00.123Z"
        );
        assert_eq!(
            parse_rfc3339_ms("2025-01-01T00:00:00Z").unwrap(),
            1_735_689_600_000
        );
        assert_eq!(
            parse_rfc3339_ms("2025-01-01T01:00:00.5+01:00").unwrap(),
            1_735_689_600_500
        );
        assert_eq!(
            parse_rfc3339_ms("0001-01-01T00:00:00Z").unwrap(),
            -62_135_596_800_000
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.789123Z").unwrap(),
            1_709_210_096_789
        );
        for t in [0, 951_782_400_000, 4_102_444_800_000, -1, 1_709_210_096_789] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(t)).unwrap(), t);
        }
        for bad in [
            "",
            "2025-01-01",
            "2025-13-01T00:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00+0100",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }
}

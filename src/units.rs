//! Time units and Thanos' resolution levels, in milliseconds: the one home of "an hour", "a
//! day" and "the 5m level", which the core (planning, downsampling, retention, the backlog
//! gauges), the block engine, the tools and the simulation share.
//!
//! Plain constants and one pure function: the core may use them (`tests/tidy/policy.rs`
//! allows `crate::units`), and `tsdb` may too without depending on the core.

/// A second.
pub const SECOND_MS: i64 = 1_000;
/// A minute.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// An hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// A day.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// A week.
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// A year as Prometheus' durations count it: 365 days.
pub const YEAR_MS: i64 = 365 * DAY_MS;

/// Raw data (`thanos.downsample.resolution` 0).
pub const RESOLUTION_RAW_MS: i64 = 0;
/// Thanos' first downsampling level (`ResLevel1`, 5m).
pub const RESOLUTION_5M_MS: i64 = 5 * MINUTE_MS;
/// Thanos' second downsampling level (`ResLevel2`, 1h).
pub const RESOLUTION_1H_MS: i64 = HOUR_MS;
/// A raw block is downsampled once it spans this long (Thanos' `ResLevel1DownsampleRange`).
pub const DOWNSAMPLE_RANGE_5M_MS: i64 = 40 * HOUR_MS;
/// A 5m block is downsampled once it spans this long (`ResLevel2DownsampleRange`).
pub const DOWNSAMPLE_RANGE_1H_MS: i64 = 10 * DAY_MS;

/// The resolution a block of `resolution_ms` is downsampled to, and the span it needs first;
/// `None` for the last level (and for resolutions Thanos does not know).
pub fn next_level(resolution_ms: i64) -> Option<(i64, i64)> {
    match resolution_ms {
        RESOLUTION_RAW_MS => Some((RESOLUTION_5M_MS, DOWNSAMPLE_RANGE_5M_MS)),
        RESOLUTION_5M_MS => Some((RESOLUTION_1H_MS, DOWNSAMPLE_RANGE_1H_MS)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_are_the_usual_ones() {
        assert_eq!(HOUR_MS, 3_600_000);
        assert_eq!(DAY_MS, 86_400_000);
        assert_eq!(RESOLUTION_5M_MS, 300_000);
        assert_eq!(RESOLUTION_1H_MS, 3_600_000);
        assert_eq!(DOWNSAMPLE_RANGE_1H_MS, 864_000_000);
    }

    #[test]
    fn raw_goes_to_5m_goes_to_1h_and_stops() {
        assert_eq!(
            next_level(RESOLUTION_RAW_MS),
            Some((RESOLUTION_5M_MS, DOWNSAMPLE_RANGE_5M_MS))
        );
        assert_eq!(
            next_level(RESOLUTION_5M_MS),
            Some((RESOLUTION_1H_MS, DOWNSAMPLE_RANGE_1H_MS))
        );
        assert_eq!(next_level(RESOLUTION_1H_MS), None);
    }
}

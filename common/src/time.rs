//! UTC calendar time without a date crate: [`civil`] splits a `SystemTime` into
//! year, month, day, hour, minute and second (Howard Hinnant's `civil_from_days`),
//! and [`rfc3339`] and [`stamp`] format it for log lines and folder names. Times
//! before 1970 count as 1970-01-01T00:00:00Z; sub-second parts are the caller's.

use std::time::{SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// `(year, month, day, hour, minute, second)` in UTC; months and days count from 1.
pub fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let rem = secs.rem_euclid(SECS_PER_DAY);
    // `rem` is in 0..86_400, so each field fits a u32.
    let (hour, minute, second) = (
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    );
    (year, month, day, hour, minute, second)
}

/// RFC 3339 UTC to the second, e.g. `2026-11-25T13:40:22Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A timestamp for folder and file names (sorts by time), e.g. `20261125-134022`.
pub fn stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small by construction: day in 1..=31, month in 1..=12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn civil_fields_in_utc() {
        assert_eq!(civil(UNIX_EPOCH), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(at(1_795_614_022)), (2026, 11, 25, 13, 40, 22));
        // The last second of a leap day, and the one after it.
        assert_eq!(civil(at(951_868_799)), (2000, 2, 29, 23, 59, 59));
        assert_eq!(civil(at(951_868_800)), (2000, 3, 1, 0, 0, 0));
        // 2100 is not a leap year.
        assert_eq!(civil(at(4_107_542_400)), (2100, 3, 1, 0, 0, 0));
    }

    #[test]
    fn sub_seconds_are_dropped() {
        let t = at(1_795_614_022) + Duration::from_millis(999);
        assert_eq!(civil(t), (2026, 11, 25, 13, 40, 22));
    }

    #[test]
    fn before_the_epoch_counts_as_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(3600);
        assert_eq!(civil(t), (1970, 1, 1, 0, 0, 0));
    }

    #[test]
    fn rfc3339_and_stamp() {
        assert_eq!(rfc3339(at(1_795_614_022)), "2026-11-25T13:40:22Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(stamp(at(1_795_614_022)), "20261125-134022");
        assert_eq!(stamp(UNIX_EPOCH), "19700101-000000");
    }
}

//! The UTC windows a key's daily, weekly (from Monday) and monthly usage
//! count from.

use time::OffsetDateTime;

use crate::store::Windows;

const DAY: i64 = 86_400;

pub fn at(now_unix_secs: i64) -> Windows {
    let day = now_unix_secs.div_euclid(DAY) * DAY;
    // 1970-01-01 was a Thursday: Monday is 3 days before it.
    let days = now_unix_secs.div_euclid(DAY);
    let week = (days - (days + 3).rem_euclid(7)) * DAY;
    let month = OffsetDateTime::from_unix_timestamp(now_unix_secs)
        .ok()
        .and_then(|t| t.replace_day(1).ok())
        .map_or(day, |t| t.unix_timestamp().div_euclid(DAY) * DAY);
    Windows { day, week, month }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_a_wednesday_afternoon() {
        // 2025-12-03T15:00:00Z, a Wednesday.
        let w = at(1_764_774_000);
        assert_eq!(w.day, 1_764_720_000); // 2025-12-03T00:00Z
        assert_eq!(w.week, 1_764_547_200); // Monday 2025-12-01T00:00Z
        assert_eq!(w.month, 1_764_547_200); // 2025-12-01T00:00Z
                                            // 2025-11-30T23:59:59Z, a Sunday: its week began 2025-11-24.
        let w = at(1_764_547_199);
        assert_eq!(w.week, 1_763_942_400);
        assert_eq!(w.month, 1_761_955_200); // 2025-11-01
    }
}

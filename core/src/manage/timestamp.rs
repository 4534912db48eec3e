//! RFC 3339 timestamps on the wire, Unix seconds inside. Time is still a
//! value: these only convert.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2026-12-01T03:24:57Z` for a Unix second; `None` out of range.
pub fn format_rfc3339(unix_secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// Unix seconds (fraction dropped) of an RFC 3339 timestamp with any offset.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        assert_eq!(
            format_rfc3339(1_764_559_497).as_deref(),
            Some("2025-12-01T03:24:57Z")
        );
        assert_eq!(parse_rfc3339("2025-12-01T03:24:57Z"), Some(1_764_559_497));
        assert_eq!(
            parse_rfc3339("2025-12-01T05:24:57.250+02:00"),
            Some(1_764_559_497)
        );
        assert_eq!(parse_rfc3339("2025-12-01"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}

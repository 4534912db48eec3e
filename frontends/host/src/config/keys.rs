//! Settings for keys: the default rate limit each key gets unless it has
//! its own.

use arouter_core::manage::parse_interval;

use super::ConfigError;
use crate::store::RateLimit;

/// `"60/60s"`: requests, then the interval in the keys API's notation.
pub(super) fn parse_rate_limit(text: &str) -> Result<RateLimit, ConfigError> {
    let bad = || ConfigError::RateLimit {
        value: text.to_string(),
    };
    let (requests, interval) = text.trim().split_once('/').ok_or_else(bad)?;
    let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
    let period_secs = parse_interval(interval.trim()).ok_or_else(bad)?;
    if requests == 0 {
        return Err(bad());
    }
    Ok(RateLimit {
        requests,
        period_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_interval() {
        let r = parse_rate_limit("3/2s").unwrap();
        assert_eq!((r.requests, r.period_secs), (3, 2));
        let r = parse_rate_limit(" 1000 / 1h ").unwrap();
        assert_eq!((r.requests, r.period_secs), (1000, 3600));
        for bad in [
            "", "60", "0/60s", "-1/60s", "60/0s", "60/60", "60/s", "x/1m", "60/1w",
        ] {
            let err = parse_rate_limit(bad).unwrap_err().to_string();
            assert!(err.contains("REQUESTS/INTERVAL"), "{bad}: {err}");
        }
    }
}

//! Cost math: integer only, in micro-USD, from list prices and usage.

use crate::usage::Usage;

/// List prices in micro-USD per million tokens ($0.15 / Mtok = 150_000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    /// Cache reads; `None` bills them as ordinary input.
    pub cached_input: Option<u64>,
}

impl Price {
    /// From USD per million tokens as catalogs write them (`0.15`).
    /// Rounded to the nearest micro-USD per million; negative or NaN is 0.
    pub fn from_usd_per_mtok(input: f64, output: f64, cached_input: Option<f64>) -> Price {
        let micro = |usd: f64| {
            if usd.is_finite() && usd > 0.0 {
                (usd * 1_000_000.0).round() as u64
            } else {
                0
            }
        };
        Price {
            input: micro(input),
            output: micro(output),
            cached_input: cached_input.map(micro),
        }
    }
}

/// The cost of `usage` at `price`, in micro-USD, rounded up so a call is
/// never billed as free when it consumed tokens of a priced model.
pub fn cost_micro_usd(price: &Price, usage: &Usage) -> u64 {
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let uncached = usage.prompt_tokens - cached;
    let cached_price = price.cached_input.unwrap_or(price.input);
    let per_mtok = u128::from(uncached) * u128::from(price.input)
        + u128::from(cached) * u128::from(cached_price)
        + u128::from(usage.completion_tokens) * u128::from(price.output);
    u64::try_from(per_mtok.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_prices() {
        let mini = Price::from_usd_per_mtok(0.15, 0.6, Some(0.075));
        assert_eq!(
            mini,
            Price {
                input: 150_000,
                output: 600_000,
                cached_input: Some(75_000)
            }
        );
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(cost_micro_usd(&mini, &usage), 750_000);
        let cached = Usage {
            prompt_tokens: 1_000_000,
            cached_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(cost_micro_usd(&mini, &cached), 75_000);
        let tiny = Usage {
            prompt_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(cost_micro_usd(&mini, &tiny), 1, "rounded up, never free");
        assert_eq!(cost_micro_usd(&Price::default(), &usage), 0);
    }

    proptest! {
        #[test]
        fn cost_is_monotonic_and_additive_within_rounding(
            input in 0u64..100_000_000, output in 0u64..100_000_000,
            p in 0u64..10_000_000, c in 0u64..10_000_000, extra in 0u64..10_000_000,
        ) {
            let price = Price { input, output, cached_input: None };
            let a = Usage { prompt_tokens: p, completion_tokens: c, ..Usage::default() };
            let b = Usage { prompt_tokens: p + extra, completion_tokens: c, ..Usage::default() };
            prop_assert!(cost_micro_usd(&price, &a) <= cost_micro_usd(&price, &b));
            let exact = (u128::from(p) * u128::from(input) + u128::from(c) * u128::from(output)) as f64 / 1e6;
            let got = cost_micro_usd(&price, &a) as f64;
            prop_assert!(got >= exact && got < exact + 1.0);
        }
    }
}

//! Cost math: integers only.
//!
//! Prices are kept in micro-USD per million tokens, which is the same as
//! pico-USD (1e-12 USD) per token: every list price written with up to six
//! decimals of a dollar per million tokens is exact. A call's cost is
//! `Σ tokens × price` in pico-USD, computed exactly (128-bit, saturating),
//! then rounded **up, once per call**, to micro-USD (1e-6 USD), the unit
//! every stored cost and balance uses. Rounding once per call means the
//! cost a transaction records is the amount its balance drops by: nothing
//! is rounded again when costs are summed or debited, so the sum of
//! transaction costs equals the drop in balance exactly. Rounding up means
//! a priced call that consumed tokens is never free; it overcharges by
//! less than one micro-USD per call.

use crate::name_map::NameMap;

use crate::usage::Usage;

/// One millionth of a US dollar: the unit of every cost and balance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroUsd(pub u64);

impl MicroUsd {
    /// In dollars, for JSON answers. Reads back as the same micro-dollars
    /// below a billion dollars (the `f64` spacing there is under 1e-7), far
    /// beyond any one call's cost.
    pub fn as_usd(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Appends the amount in dollars as a JSON number (`0.000123`, `12`),
    /// written from the integer, so it is exact at any size.
    pub fn write_usd(self, out: &mut Vec<u8>) {
        let whole = self.0 / 1_000_000;
        let mut frac = self.0 % 1_000_000;
        let mut digits = itoa_u64(whole);
        out.extend_from_slice(digits.as_bytes());
        if frac == 0 {
            return;
        }
        let mut width = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        out.push(b'.');
        digits = itoa_u64(frac);
        for _ in digits.len()..width {
            out.push(b'0');
        }
        out.extend_from_slice(digits.as_bytes());
    }
}

/// Decimal digits of `n` on the stack (at most 20).
fn itoa_u64(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, at }
}

struct Digits {
    buf: [u8; 20],
    at: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    fn len(&self) -> usize {
        self.buf.len() - self.at
    }
}

/// A model's list prices, in micro-USD per million tokens ($0.15 / Mtok =
/// 150_000). Every kind of token has its own price; a vendor that does not
/// price a kind separately gets the price it bills it at (cache writes as
/// input, reasoning as output), so there is no "unset" price to misread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    /// Prompt tokens neither read from nor written to a cache.
    pub input: u64,
    /// Completion tokens that are not reasoning.
    pub output: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
    /// Completion tokens spent reasoning.
    pub reasoning: u64,
}

/// List prices as price tables write them: USD per million tokens. The
/// optional ones default to what the vendor bills those tokens as.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsdPerMtok {
    pub input: f64,
    pub output: f64,
    /// Defaults to `input`.
    pub cached_input: Option<f64>,
    /// Defaults to `input`.
    pub cache_write: Option<f64>,
    /// Defaults to `output`.
    pub reasoning: Option<f64>,
}

/// A price that cannot be a price.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PriceError {
    /// Negative, NaN or infinite.
    NotANonNegativeNumber { field: &'static str, value: f64 },
    /// More than a million dollars per token: certainly a typo.
    TooLarge { field: &'static str, value: f64 },
}

impl std::fmt::Display for PriceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriceError::NotANonNegativeNumber { field, value } => {
                write!(
                    f,
                    "`{field}` = {value} is not a price (USD per million tokens, 0 or more)"
                )
            }
            PriceError::TooLarge { field, value } => write!(
                f,
                "`{field}` = {value} USD per million tokens is beyond any real price"
            ),
        }
    }
}

impl std::error::Error for PriceError {}

/// The largest accepted price, in USD per million tokens: $1 per token.
const MAX_USD_PER_MTOK: f64 = 1e6;

impl Price {
    /// From USD per million tokens. Exact for prices with up to six
    /// decimals (`0.075` is 75_000); finer ones round to the nearest.
    pub fn from_usd_per_mtok(usd: UsdPerMtok) -> Result<Price, PriceError> {
        let micro = |field: &'static str, value: f64| {
            if !value.is_finite() || value < 0.0 {
                Err(PriceError::NotANonNegativeNumber { field, value })
            } else if value > MAX_USD_PER_MTOK {
                Err(PriceError::TooLarge { field, value })
            } else {
                Ok((value * 1_000_000.0).round() as u64)
            }
        };
        let input = micro("input", usd.input)?;
        let output = micro("output", usd.output)?;
        let or =
            |field, value: Option<f64>, default| value.map_or(Ok(default), |v| micro(field, v));
        Ok(Price {
            input,
            output,
            cached_input: or("cached_input", usd.cached_input, input)?,
            cache_write: or("cache_write", usd.cache_write, input)?,
            reasoning: or("reasoning", usd.reasoning, output)?,
        })
    }

    /// The exact cost of `usage`, in pico-USD (1e-12 USD). `prompt_tokens`
    /// includes cached and cache-write tokens and `completion_tokens`
    /// includes reasoning (OpenAI's convention, see [`Usage`]); a report
    /// whose parts exceed their total is clamped so no token is billed
    /// twice. Saturates instead of overflowing.
    pub fn pico_usd(&self, usage: &Usage) -> u128 {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
        let plain_in = usage.prompt_tokens - cached - written;
        let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
        let plain_out = usage.completion_tokens - reasoning;
        // Each product of two u64 fits a u128; only the sum can overflow.
        [
            (plain_in, self.input),
            (cached, self.cached_input),
            (written, self.cache_write),
            (plain_out, self.output),
            (reasoning, self.reasoning),
        ]
        .iter()
        .fold(0u128, |sum, &(tokens, price)| {
            sum.saturating_add(u128::from(tokens) * u128::from(price))
        })
    }

    /// The cost of one call: [`Price::pico_usd`] rounded up, once, to
    /// micro-USD (see the module comment).
    pub fn cost(&self, usage: &Usage) -> MicroUsd {
        MicroUsd(u64::try_from(self.pico_usd(usage).div_ceil(1_000_000)).unwrap_or(u64::MAX))
    }
}

/// The output cap a reservation assumes for a request that sets none and
/// a model whose price row gives none (`max_output` in the price table).
pub const DEFAULT_OUTPUT_CAP: u64 = 16_384;

impl Price {
    /// The most a call of `prompt_tokens` in and at most
    /// `completion_tokens` out can cost, whatever the provider reports
    /// cached, written or spent reasoning: each side at its dearest rate,
    /// through [`Price::cost`] (the same rounding as settlement), so a
    /// reservation of this much covers the settled cost of any usage
    /// within those counts.
    pub fn max_cost(&self, prompt_tokens: u64, completion_tokens: u64) -> MicroUsd {
        let dearest_in = self.input.max(self.cached_input).max(self.cache_write);
        let dearest_out = self.output.max(self.reasoning);
        let worst = Price {
            input: dearest_in,
            output: dearest_out,
            cached_input: dearest_in,
            cache_write: dearest_in,
            reasoning: dearest_out,
        };
        worst.cost(&Usage {
            prompt_tokens,
            completion_tokens,
            ..Usage::default()
        })
    }
}

/// Prices by configured provider name, then model, so a lookup borrows
/// both names and allocates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceTable {
    by_provider: NameMap<String, NameMap<String, Price>>,
    /// Output caps by provider, then model (reservations assume them for
    /// requests that set none).
    output_caps: NameMap<String, NameMap<String, u64>>,
}

impl PriceTable {
    /// Sets the price of `provider/model`, replacing any earlier one.
    pub fn insert(&mut self, provider: &str, model: &str, price: Price) {
        self.by_provider
            .entry(provider.to_owned())
            .or_default()
            .insert(model.to_owned(), price);
    }

    pub fn get(&self, provider: &str, model: &str) -> Option<Price> {
        self.by_provider.get(provider)?.get(model).copied()
    }

    /// Sets the most tokens `provider/model` writes in one answer.
    pub fn insert_output_cap(&mut self, provider: &str, model: &str, cap: u64) {
        self.output_caps
            .entry(provider.to_owned())
            .or_default()
            .insert(model.to_owned(), cap);
    }

    /// The most tokens `provider/model` writes in one answer, if known.
    pub fn output_cap(&self, provider: &str, model: &str) -> Option<u64> {
        self.output_caps.get(provider)?.get(model).copied()
    }

    pub fn len(&self) -> usize {
        self.by_provider.values().map(NameMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn usd(input: f64, output: f64) -> UsdPerMtok {
        UsdPerMtok {
            input,
            output,
            ..UsdPerMtok::default()
        }
    }

    fn mini() -> Price {
        Price::from_usd_per_mtok(UsdPerMtok {
            cached_input: Some(0.075),
            ..usd(0.15, 0.6)
        })
        .expect("a price")
    }

    #[test]
    fn the_maximum_cost_covers_any_usage_within_its_counts() {
        let price = Price {
            input: 3_000_000,
            output: 15_000_000,
            cached_input: 300_000,
            cache_write: 3_750_000,
            reasoning: 20_000_000,
        };
        // 1000 in at the cache-write rate, 100 out at the reasoning rate.
        assert_eq!(price.max_cost(1000, 100), MicroUsd(3_750 + 2_000));
        let worst = price.max_cost(1000, 100);
        for usage in [
            Usage {
                prompt_tokens: 1000,
                completion_tokens: 100,
                ..Usage::default()
            },
            Usage {
                prompt_tokens: 1000,
                cache_write_tokens: 1000,
                completion_tokens: 100,
                reasoning_tokens: 100,
                ..Usage::default()
            },
        ] {
            assert!(price.cost(&usage) <= worst);
        }
        assert_eq!(Price::default().max_cost(1_000_000, 1_000_000), MicroUsd(0));
    }

    #[test]
    fn usd_prices_become_exact_integers_and_defaults_follow_the_vendor() {
        assert_eq!(
            mini(),
            Price {
                input: 150_000,
                output: 600_000,
                cached_input: 75_000,
                cache_write: 150_000,
                reasoning: 600_000,
            }
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Price::from_usd_per_mtok(usd(bad, 1.0)),
                Err(PriceError::NotANonNegativeNumber { field: "input", .. })
            ));
        }
        assert!(matches!(
            Price::from_usd_per_mtok(usd(1.0, 2e6)),
            Err(PriceError::TooLarge {
                field: "output",
                ..
            })
        ));
    }

    #[test]
    fn each_kind_of_token_is_billed_at_its_own_price() {
        let price = Price {
            input: 3_000_000,
            output: 15_000_000,
            cached_input: 300_000,
            cache_write: 3_750_000,
            reasoning: 20_000_000,
        };
        let usage = Usage {
            // 1M plain + 1M cached + 1M written.
            prompt_tokens: 3_000_000,
            cached_tokens: 1_000_000,
            cache_write_tokens: 1_000_000,
            // 1M plain output + 1M reasoning.
            completion_tokens: 2_000_000,
            reasoning_tokens: 1_000_000,
        };
        assert_eq!(
            price.cost(&usage),
            MicroUsd(3_000_000 + 300_000 + 3_750_000 + 15_000_000 + 20_000_000)
        );
        let tiny = Usage {
            prompt_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(mini().cost(&tiny), MicroUsd(1), "rounded up, never free");
        assert_eq!(Price::default().cost(&usage), MicroUsd(0));
        // Parts larger than their totals are clamped, not billed twice.
        let inconsistent = Usage {
            prompt_tokens: 10,
            cached_tokens: 8,
            cache_write_tokens: 8,
            completion_tokens: 1,
            reasoning_tokens: 5,
        };
        assert_eq!(
            price.pico_usd(&inconsistent),
            8 * 300_000 + 2 * 3_750_000 + 20_000_000
        );
    }

    #[test]
    fn usd_is_written_exactly() {
        let write = |n| {
            let mut out = Vec::new();
            MicroUsd(n).write_usd(&mut out);
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(write(0), "0");
        assert_eq!(write(1), "0.000001");
        assert_eq!(write(123), "0.000123");
        assert_eq!(write(1_500_000), "1.5");
        assert_eq!(write(12_000_000), "12");
        assert_eq!(write(u64::MAX), "18446744073709.551615");
    }

    fn any_usage() -> impl Strategy<Value = Usage> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(p, c, cached, written, reasoning)| Usage {
                prompt_tokens: p,
                completion_tokens: c,
                cached_tokens: cached,
                cache_write_tokens: written,
                reasoning_tokens: reasoning,
            })
    }

    /// A consistent report of realistic size: parts within their totals.
    fn real_usage() -> impl Strategy<Value = Usage> {
        (0u64..10_000_000, 0u64..10_000_000)
            .prop_flat_map(|(p, c)| (Just(p), Just(c), 0..=p, 0..=c))
            .prop_flat_map(|(p, c, cached, reasoning)| {
                (
                    Just(p),
                    Just(c),
                    Just(cached),
                    0..=p - cached,
                    Just(reasoning),
                )
            })
            .prop_map(|(p, c, cached, written, reasoning)| Usage {
                prompt_tokens: p,
                completion_tokens: c,
                cached_tokens: cached,
                cache_write_tokens: written,
                reasoning_tokens: reasoning,
            })
    }

    fn real_price() -> impl Strategy<Value = Price> {
        (
            0u64..100_000_000,
            0u64..100_000_000,
            0u64..100_000_000,
            0u64..100_000_000,
            0u64..100_000_000,
        )
            .prop_map(
                |(input, output, cached_input, cache_write, reasoning)| Price {
                    input,
                    output,
                    cached_input,
                    cache_write,
                    reasoning,
                },
            )
    }

    fn add(a: &Usage, b: &Usage) -> Usage {
        Usage {
            prompt_tokens: a.prompt_tokens + b.prompt_tokens,
            completion_tokens: a.completion_tokens + b.completion_tokens,
            cached_tokens: a.cached_tokens + b.cached_tokens,
            cache_write_tokens: a.cache_write_tokens + b.cache_write_tokens,
            reasoning_tokens: a.reasoning_tokens + b.reasoning_tokens,
        }
    }

    proptest! {
        /// Any counts and prices, however absurd: no panic, no wrap-around.
        #[test]
        fn never_overflows(usage in any_usage(), p in any::<[u64; 5]>()) {
            let price = Price { input: p[0], output: p[1], cached_input: p[2], cache_write: p[3], reasoning: p[4] };
            let cost = price.cost(&usage);
            let max = Price { input: u64::MAX, output: u64::MAX, cached_input: u64::MAX, cache_write: u64::MAX, reasoning: u64::MAX };
            prop_assert!(cost <= max.cost(&usage));
        }

        /// The cost is the exact pico-USD amount rounded up once: never
        /// below it, and less than one micro-USD above it.
        #[test]
        fn rounded_up_once(usage in real_usage(), price in real_price()) {
            let exact = price.pico_usd(&usage);
            let cost = u128::from(price.cost(&usage).0);
            prop_assert!(cost * 1_000_000 >= exact);
            prop_assert!(cost * 1_000_000 < exact + 1_000_000);
        }

        /// More tokens of any kind, the rest unchanged, never cost less.
        #[test]
        fn monotone_in_tokens(usage in real_usage(), price in real_price(), extra in 0u64..1_000_000) {
            let base = price.cost(&usage);
            let more_prompt = Usage { prompt_tokens: usage.prompt_tokens + extra, ..usage };
            let more_completion = Usage { completion_tokens: usage.completion_tokens + extra, ..usage };
            prop_assert!(price.cost(&more_prompt) >= base);
            prop_assert!(price.cost(&more_completion) >= base);
            // Extra cached, written or reasoning tokens on top of the totals.
            let more_cached = Usage { prompt_tokens: usage.prompt_tokens + extra, cached_tokens: usage.cached_tokens + extra, ..usage };
            let more_written = Usage { prompt_tokens: usage.prompt_tokens + extra, cache_write_tokens: usage.cache_write_tokens + extra, ..usage };
            let more_reasoning = Usage { completion_tokens: usage.completion_tokens + extra, reasoning_tokens: usage.reasoning_tokens + extra, ..usage };
            prop_assert!(price.cost(&more_cached) >= base);
            prop_assert!(price.cost(&more_written) >= base);
            prop_assert!(price.cost(&more_reasoning) >= base);
        }

        /// A higher price for any kind never lowers the cost.
        #[test]
        fn monotone_in_price(usage in real_usage(), price in real_price(), bump in 0u64..1_000_000, which in 0usize..5) {
            let mut dearer = price;
            let field = match which {
                0 => &mut dearer.input,
                1 => &mut dearer.output,
                2 => &mut dearer.cached_input,
                3 => &mut dearer.cache_write,
                _ => &mut dearer.reasoning,
            };
            *field += bump;
            prop_assert!(price.cost(&usage) <= dearer.cost(&usage));
        }

        /// Splitting a call's usage in two: the exact amounts add up, and
        /// the rounded costs differ from the whole's by at most the one
        /// extra rounding (`cost(a+b) <= cost(a)+cost(b) <= cost(a+b)+1`).
        #[test]
        fn split_and_merge(a in real_usage(), b in real_usage(), price in real_price()) {
            let whole = add(&a, &b);
            prop_assert_eq!(price.pico_usd(&whole), price.pico_usd(&a) + price.pico_usd(&b));
            let (ca, cb, cw) = (price.cost(&a).0, price.cost(&b).0, price.cost(&whole).0);
            prop_assert!(cw <= ca + cb);
            prop_assert!(ca + cb <= cw + 1);
        }

        /// A list price written with up to six decimals converts exactly.
        #[test]
        fn six_decimal_prices_are_exact(micro in 0u64..1_000_000_000_000) {
            let usd = micro as f64 / 1e6;
            let price = Price::from_usd_per_mtok(UsdPerMtok { input: usd, output: usd, ..UsdPerMtok::default() });
            prop_assert_eq!(price.map(|p| p.input), Ok(micro));
        }

        /// Dollars in answers: the written decimal and the `f64` both read
        /// back as the same micro-USD.
        #[test]
        fn usd_round_trips(n in 0u64..1_000_000_000_000_000) {
            let mut out = Vec::new();
            MicroUsd(n).write_usd(&mut out);
            let text = String::from_utf8(out).unwrap_or_default();
            let parsed: f64 = text.parse().unwrap_or(-1.0);
            prop_assert_eq!((parsed * 1e6).round() as u64, n);
            prop_assert_eq!(parsed, MicroUsd(n).as_usd());
        }
    }
}

//! `usage`, read for billing while it is copied, with `cost` set to this
//! gateway's price: what `Usage::from_openai` and `priced_usage` do on the
//! tree, without building one.

use super::scan::{Copied, Scan};
use super::{added_key, place_last_at, GiveUp};
use crate::billing::Price;
use crate::usage::Usage;

fn count(copied: Copied) -> u64 {
    match copied {
        Copied::Count(n) => n,
        _ => 0,
    }
}

/// As the tree writes `Value::from(f64)`.
fn write_cost(out: &mut Vec<u8>, usd: f64) {
    if usd.is_finite() {
        // Cannot fail: writing to a Vec.
        let _ = serde_json::to_writer(out, &usd);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// The `usage` value at `scan.pos`: an object is read and priced (its
/// `cost` replaced in place, or added last); anything else is copied and
/// bills nothing.
pub(super) fn priced(
    scan: &mut Scan<'_>,
    depth: usize,
    price: &Price,
) -> Result<Option<Usage>, GiveUp> {
    if scan.peek() != Some(b'{') {
        scan.value(depth)?;
        return Ok(None);
    }
    let mut usage = Usage::default();
    // Where the provider's `cost` value was: this price goes there.
    let mut cost_at = None;
    let had_keys = scan.object(depth, |scan, key, depth| {
        match key {
            b"prompt_tokens" => usage.prompt_tokens = count(scan.value(depth)?),
            b"completion_tokens" => usage.completion_tokens = count(scan.value(depth)?),
            b"prompt_tokens_details" => {
                [usage.cached_tokens, usage.cache_write_tokens] =
                    details(scan, depth, [b"cached_tokens", b"cache_write_tokens"])?;
            }
            b"completion_tokens_details" => {
                [usage.reasoning_tokens, _] =
                    details(scan, depth, [b"reasoning_tokens", b"reasoning_tokens"])?;
            }
            b"cost" => {
                // Read as the tree reads it (a number out of range is an
                // error there too), then dropped.
                scan.drop_value(depth)?;
                cost_at = Some(scan.out.len());
            }
            _ => {
                scan.value(depth)?;
            }
        }
        Ok(())
    })?;
    scan.flush();
    let usd = price.cost(&usage).as_usd();
    let out = &mut scan.out;
    match cost_at {
        Some(at) => {
            let end = out.len();
            write_cost(out, usd);
            place_last_at(out, at, end);
        }
        None => {
            added_key(out, had_keys, "cost");
            write_cost(out, usd);
        }
    }
    scan.expect(b'}')?;
    Ok(Some(usage))
}

/// A `*_tokens_details` value, copied; the counts under `keys` when it is
/// an object (0 for a count that is missing or not a whole number).
fn details(scan: &mut Scan<'_>, depth: usize, keys: [&[u8]; 2]) -> Result<[u64; 2], GiveUp> {
    if scan.peek() != Some(b'{') {
        scan.value(depth)?;
        return Ok([0; 2]);
    }
    let mut counts = [0; 2];
    scan.object(depth, |scan, key, depth| {
        let n = count(scan.value(depth)?);
        for (slot, wanted) in counts.iter_mut().zip(keys) {
            if key == wanted {
                *slot = n;
            }
        }
        Ok(())
    })?;
    scan.expect(b'}')?;
    Ok(counts)
}

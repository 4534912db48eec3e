//! `usage`, read for billing while it is copied, with `cost` set to this
//! gateway's price: what `Usage::from_openai` and `priced_usage` do on the
//! tree, without building one.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Copied, Echo, Key, State};
use crate::billing::Price;
use crate::usage::Usage;

/// The `usage` value: an object is read and priced (its `cost` replaced in
/// place, or added last); anything else is copied and bills nothing.
pub(super) struct Priced<'a, 'de> {
    pub state: &'a mut State<'de>,
    pub price: &'a Price,
}

impl<'de> DeserializeSeed<'de> for Priced<'_, 'de> {
    type Value = Option<Usage>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Usage>, D::Error> {
        d.deserialize_any(self)
    }
}

fn count(copied: Copied<'_>) -> u64 {
    match copied {
        Copied::Count(n) => n,
        _ => 0,
    }
}

/// As the tree writes `Value::from(f64)`.
fn write_cost(out: &mut Vec<u8>, usd: f64) {
    if usd.is_finite() {
        let _ = serde_json::to_writer(out, &usd);
    } else {
        out.extend_from_slice(b"null");
    }
}

impl<'de> Visitor<'de> for Priced<'_, 'de> {
    type Value = Option<Usage>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("usage")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Usage>, A::Error> {
        let state = self.state;
        let base = state.keys.len();
        let mut usage = Usage::default();
        // Where the provider's `cost` value was: this price goes there.
        let mut cost_at = None;
        state.out.push(b'{');
        while let Some(Key(key)) = map.next_key()? {
            state.key(base, key)?;
            match key {
                "prompt_tokens" => {
                    usage.prompt_tokens = count(map.next_value_seed(Echo::plain(&mut *state))?);
                }
                "completion_tokens" => {
                    usage.completion_tokens = count(map.next_value_seed(Echo::plain(&mut *state))?);
                }
                "prompt_tokens_details" => {
                    let [cached, written] = map.next_value_seed(Details {
                        state: &mut *state,
                        keys: ["cached_tokens", "cache_write_tokens"],
                    })?;
                    usage.cached_tokens = cached;
                    usage.cache_write_tokens = written;
                }
                "completion_tokens_details" => {
                    let [reasoning, _] = map.next_value_seed(Details {
                        state: &mut *state,
                        keys: ["reasoning_tokens", "reasoning_tokens"],
                    })?;
                    usage.reasoning_tokens = reasoning;
                }
                "cost" => {
                    // Read as the tree reads it (a number out of range is
                    // an error there too), then dropped.
                    let at = state.out.len();
                    map.next_value_seed(Echo::plain(&mut *state))?;
                    state.out.truncate(at);
                    cost_at = Some(at);
                }
                _ => {
                    map.next_value_seed(Echo::plain(&mut *state))?;
                }
            }
        }
        let had_keys = state.keys.len() > base;
        state.keys.truncate(base);
        let usd = self.price.cost(&usage).as_usd();
        match cost_at {
            Some(at) => {
                // Written last, then moved into its place: no buffer.
                let end = state.out.len();
                write_cost(&mut state.out, usd);
                let len = state.out.len() - end;
                state.out[at..].rotate_right(len);
            }
            None => {
                state.added_key(had_keys, "cost");
                write_cost(&mut state.out, usd);
            }
        }
        state.out.push(b'}');
        Ok(Some(usage))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Usage>, E> {
        Echo::plain(self.state).visit_bool(v).map(|_| None)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Usage>, E> {
        Echo::plain(self.state).visit_i64(v).map(|_| None)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Usage>, E> {
        Echo::plain(self.state).visit_u64(v).map(|_| None)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Usage>, E> {
        Echo::plain(self.state).visit_f64(v).map(|_| None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Usage>, E> {
        Echo::plain(self.state).visit_unit().map(|_| None)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Usage>, E> {
        Echo::plain(self.state).visit_str(v).map(|_| None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Usage>, A::Error> {
        Echo::plain(self.state).visit_seq(seq).map(|_| None)
    }
}

/// A `*_tokens_details` value, copied; the counts under `keys` when it is
/// an object (0 for a count that is missing or not a whole number).
struct Details<'a, 'de> {
    state: &'a mut State<'de>,
    keys: [&'static str; 2],
}

impl<'de> DeserializeSeed<'de> for Details<'_, 'de> {
    type Value = [u64; 2];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<[u64; 2], D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Details<'_, 'de> {
    type Value = [u64; 2];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("token details")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<[u64; 2], A::Error> {
        let state = self.state;
        let base = state.keys.len();
        let mut counts = [0; 2];
        state.out.push(b'{');
        while let Some(Key(key)) = map.next_key()? {
            state.key(base, key)?;
            let n = count(map.next_value_seed(Echo::plain(&mut *state))?);
            for (slot, wanted) in counts.iter_mut().zip(self.keys) {
                if key == wanted {
                    *slot = n;
                }
            }
        }
        state.keys.truncate(base);
        state.out.push(b'}');
        Ok(counts)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<[u64; 2], E> {
        Echo::plain(self.state).visit_bool(v).map(|_| [0; 2])
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<[u64; 2], E> {
        Echo::plain(self.state).visit_i64(v).map(|_| [0; 2])
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<[u64; 2], E> {
        Echo::plain(self.state).visit_u64(v).map(|_| [0; 2])
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<[u64; 2], E> {
        Echo::plain(self.state).visit_f64(v).map(|_| [0; 2])
    }
    fn visit_unit<E: de::Error>(self) -> Result<[u64; 2], E> {
        Echo::plain(self.state).visit_unit().map(|_| [0; 2])
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<[u64; 2], E> {
        Echo::plain(self.state).visit_str(v).map(|_| [0; 2])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<[u64; 2], A::Error> {
        Echo::plain(self.state).visit_seq(seq).map(|_| [0; 2])
    }
}

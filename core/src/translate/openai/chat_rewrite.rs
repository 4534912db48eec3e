//! A non-stream chat answer rewritten as it is read: one pass from the
//! provider's bytes to the client's, with no `Value` tree in between.
//!
//! The output is byte for byte what parsing into a `serde_json::Value`,
//! editing it and serializing it again gives (`response::normalize_chat`
//! keeps that path as the reference and as the fallback): compact, strings
//! re-escaped, numbers as serde_json writes them, keys in their order, an
//! added key last. Where the tree would behave in a way one pass cannot
//! follow (a key that appears twice in an object: the tree keeps the last
//! value at the first position; a key written with escapes; a
//! `finish_reason` that is not a string, replaced by a word that depends on
//! keys after it), the rewrite gives up and the caller takes the tree path.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::response::NormalizedChat;
use crate::billing::Price;
use crate::translate::finish::FinishReason;
use crate::usage::Usage;

/// The scalar arms of a visitor that copies anything but the shape it
/// looks for as it is (through `Echo`), answering `$done` for it.
macro_rules! echo_scalars {
    ($out:ty, $done:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<$out, E> {
            Echo::plain(self.state).visit_bool(v).map($done)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<$out, E> {
            Echo::plain(self.state).visit_i64(v).map($done)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<$out, E> {
            Echo::plain(self.state).visit_u64(v).map($done)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<$out, E> {
            Echo::plain(self.state).visit_f64(v).map($done)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
            Echo::plain(self.state).visit_unit().map($done)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<$out, E> {
            Echo::plain(self.state).visit_str(v).map($done)
        }
    };
}

/// Keys of one object beyond this are not checked for repeats one by one:
/// the rewrite gives up instead (such objects do not occur in answers).
const MAX_KEYS: usize = 64;

/// Why the one pass stopped: the JSON is invalid, or it needs the tree.
#[derive(Debug)]
pub struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the answer needs the tree path")
    }
}

impl std::error::Error for GiveUp {}

/// Rewrites the answer as `normalize_chat` does; `Err` when the caller must
/// take the tree path (which also decides whether the body is JSON at all).
pub fn rewrite_chat(
    body: &[u8],
    provider: &str,
    requested: &str,
    price: &Price,
) -> Result<NormalizedChat, GiveUp> {
    let mut state = State {
        out: Vec::with_capacity(body.len() + provider.len() + 96),
        keys: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = Top {
        state: &mut state,
        provider,
        requested,
        price,
    };
    let (usage, id) = de.deserialize_any(top).map_err(|_| GiveUp)?;
    de.end().map_err(|_| GiveUp)?;
    Ok(NormalizedChat {
        bytes: state.out,
        usage,
        id: id.filter(|id| !id.is_empty()),
    })
}

struct State<'de> {
    out: Vec<u8>,
    /// The keys of every object being copied, innermost last (checked for
    /// repeats).
    keys: Vec<&'de str>,
}

impl<'de> State<'de> {
    fn str(&mut self, s: &str) {
        // Cannot fail: writing to a Vec.
        let _ = serde_json::to_writer(&mut self.out, s);
    }

    /// Starts an object's next key: the comma, the key, the colon. `base`
    /// is where this object's keys start in `keys`.
    fn key<E: de::Error>(&mut self, base: usize, key: &'de str) -> Result<(), E> {
        let seen = &self.keys[base..];
        if seen.len() >= MAX_KEYS || seen.contains(&key) {
            return Err(E::custom(GiveUp));
        }
        if !seen.is_empty() {
            self.out.push(b',');
        }
        self.keys.push(key);
        self.str(key);
        self.out.push(b':');
        Ok(())
    }

    /// A key this rewrite adds at the end of an object (after a comma when
    /// the object `had_keys`).
    fn added_key(&mut self, had_keys: bool, key: &str) {
        if had_keys {
            self.out.push(b',');
        }
        self.str(key);
        self.out.push(b':');
    }
}

/// An object key as read: only keys without escapes borrow from the body.
struct Key<'de>(&'de str);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Key<'de>, E> {
                Err(E::custom(GiveUp))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// What a copied value was, as far as the rewrite needs to know.
enum Copied<'de> {
    Str(Cow<'de, str>),
    /// What `Value::as_u64` reads: a whole number from 0 up.
    Count(u64),
    Array {
        len: usize,
    },
    Other,
}

/// Copies one value to the output, compact, as the tree would write it.
/// `keep_str`: a string is also returned (an escaped one costs a copy).
struct Echo<'a, 'de> {
    state: &'a mut State<'de>,
    keep_str: bool,
}

impl<'de> DeserializeSeed<'de> for Echo<'_, 'de> {
    type Value = Copied<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Copied<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Echo<'_, 'de> {
    type Value = Copied<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Copied<'de>, E> {
        self.state
            .out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(Copied::Other)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Copied<'de>, E> {
        let _ = serde_json::to_writer(&mut self.state.out, &v);
        Ok(u64::try_from(v).map_or(Copied::Other, Copied::Count))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Copied<'de>, E> {
        let _ = serde_json::to_writer(&mut self.state.out, &v);
        Ok(Copied::Count(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Copied<'de>, E> {
        // A number the tree cannot hold becomes null there too.
        if v.is_finite() {
            let _ = serde_json::to_writer(&mut self.state.out, &v);
        } else {
            self.state.out.extend_from_slice(b"null");
        }
        Ok(Copied::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Copied<'de>, E> {
        self.state.out.extend_from_slice(b"null");
        Ok(Copied::Other)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Copied<'de>, E> {
        self.state.str(v);
        Ok(Copied::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Copied<'de>, E> {
        self.state.str(v);
        Ok(match self.keep_str {
            true => Copied::Str(Cow::Owned(v.to_owned())),
            false => Copied::Other,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Copied<'de>, A::Error> {
        let state = self.state;
        state.out.push(b'[');
        let mut len = 0;
        loop {
            if len > 0 {
                // Undone below when the array ends here.
                state.out.push(b',');
            }
            let seed = Echo {
                state: &mut *state,
                keep_str: false,
            };
            if seq.next_element_seed(seed)?.is_none() {
                if len > 0 {
                    state.out.pop();
                }
                break;
            }
            len += 1;
        }
        state.out.push(b']');
        Ok(Copied::Array { len })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Copied<'de>, A::Error> {
        let state = self.state;
        let base = state.keys.len();
        state.out.push(b'{');
        while let Some(Key(key)) = map.next_key()? {
            state.key(base, key)?;
            map.next_value_seed(Echo {
                state: &mut *state,
                keep_str: false,
            })?;
        }
        state.keys.truncate(base);
        state.out.push(b'}');
        Ok(Copied::Other)
    }
}

/// The answer object: `model` prefixed with the provider, each choice's
/// finish reason normalized, `usage` priced; returns the usage and `id`.
struct Top<'a, 'de> {
    state: &'a mut State<'de>,
    provider: &'a str,
    requested: &'a str,
    price: &'a Price,
}

impl<'de> Visitor<'de> for Top<'_, 'de> {
    type Value = (Option<Usage>, Option<String>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chat completion object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let state = self.state;
        let (mut usage, mut id, mut saw_model) = (None, None, false);
        state.out.push(b'{');
        while let Some(Key(key)) = map.next_key()? {
            state.key(0, key)?;
            match key {
                "model" => {
                    saw_model = true;
                    let served: Value = map.next_value()?;
                    let served = served.as_str().unwrap_or(self.requested);
                    state.str(&format!("{}/{served}", self.provider));
                }
                "choices" => map.next_value_seed(Choices { state: &mut *state })?,
                "usage" => {
                    usage = map.next_value_seed(usage::Priced {
                        state: &mut *state,
                        price: self.price,
                    })?;
                }
                "id" => {
                    let seed = Echo {
                        state: &mut *state,
                        keep_str: true,
                    };
                    id = match map.next_value_seed(seed)? {
                        Copied::Str(s) => Some(s.into_owned()),
                        _ => None,
                    };
                }
                _ => {
                    map.next_value_seed(Echo {
                        state: &mut *state,
                        keep_str: false,
                    })?;
                }
            }
        }
        if !saw_model {
            let had_keys = !state.keys.is_empty();
            state.added_key(had_keys, "model");
            state.str(&format!("{}/{}", self.provider, self.requested));
        }
        state.keys.clear();
        state.out.push(b'}');
        Ok((usage, id))
    }
}

/// `choices`: each object in it is a choice; anything else is copied.
struct Choices<'a, 'de> {
    state: &'a mut State<'de>,
}

impl<'de> DeserializeSeed<'de> for Choices<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Choices<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("choices")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.state;
        state.out.push(b'[');
        let mut first = true;
        loop {
            if !first {
                state.out.push(b',');
            }
            if seq
                .next_element_seed(Choice { state: &mut *state })?
                .is_none()
            {
                if !first {
                    state.out.pop();
                }
                break;
            }
            first = false;
        }
        state.out.push(b']');
        Ok(())
    }

    // Not an array: copied as it is (the tree path leaves it alone).
    echo_scalars!((), drop);
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Echo::plain(self.state).visit_map(map).map(drop)
    }
}

impl<'a, 'de> Echo<'a, 'de> {
    fn plain(state: &'a mut State<'de>) -> Echo<'a, 'de> {
        Echo {
            state,
            keep_str: false,
        }
    }
}

/// One element of `choices`: an object gets its finish reason normalized
/// (the provider's word kept as `native_finish_reason`), as the tree path's
/// `normalize_finish` does for a final choice.
struct Choice<'a, 'de> {
    state: &'a mut State<'de>,
}

impl<'de> DeserializeSeed<'de> for Choice<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Choice<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a choice")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.state;
        let base = state.keys.len();
        let (mut native, mut saw_reason, mut saw_native, mut saw_tools) =
            (None::<Cow<'de, str>>, false, false, false);
        state.out.push(b'{');
        while let Some(Key(key)) = map.next_key()? {
            state.key(base, key)?;
            match key {
                "finish_reason" => {
                    saw_reason = true;
                    let word: Value = map.next_value()?;
                    let Value::String(word) = word else {
                        // Replaced in place by a word that depends on
                        // `message`, which may come later.
                        return Err(de::Error::custom(GiveUp));
                    };
                    state.str(FinishReason::normalize(&word).as_str());
                    native = Some(Cow::Owned(word));
                }
                "native_finish_reason" => {
                    saw_native = true;
                    map.next_value_seed(Echo::plain(&mut *state))?;
                }
                "message" => {
                    saw_tools = map.next_value_seed(Message { state: &mut *state })?;
                }
                _ => {
                    map.next_value_seed(Echo::plain(&mut *state))?;
                }
            }
        }
        let had_keys = state.keys.len() > base;
        state.keys.truncate(base);
        if !saw_reason {
            let word = match saw_tools {
                true => FinishReason::ToolCalls,
                false => FinishReason::Stop,
            };
            state.added_key(had_keys, "finish_reason");
            state.str(word.as_str());
        }
        if !saw_native {
            state.added_key(had_keys || !saw_reason, "native_finish_reason");
            match native {
                Some(word) => state.str(&word),
                None => state.out.extend_from_slice(b"null"),
            }
        }
        state.out.push(b'}');
        Ok(())
    }

    echo_scalars!((), drop);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Echo::plain(self.state).visit_seq(seq).map(drop)
    }
}

/// A choice's `message`, copied; true when it is an object whose
/// `tool_calls` is a non-empty array (a choice without a finish reason then
/// ended for tool calls).
struct Message<'a, 'de> {
    state: &'a mut State<'de>,
}

impl<'de> DeserializeSeed<'de> for Message<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Message<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let state = self.state;
        let base = state.keys.len();
        let mut tools = false;
        state.out.push(b'{');
        while let Some(Key(key)) = map.next_key()? {
            state.key(base, key)?;
            let copied = map.next_value_seed(Echo::plain(&mut *state))?;
            if key == "tool_calls" {
                tools = matches!(copied, Copied::Array { len } if len > 0);
            }
        }
        state.keys.truncate(base);
        state.out.push(b'}');
        Ok(tools)
    }

    echo_scalars!(bool, |_| false);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        Echo::plain(self.state).visit_seq(seq).map(|_| false)
    }
}

#[cfg(test)]
mod tests;
mod usage;

//! A non-stream chat answer rewritten as it is read: one pass from the
//! provider's bytes to the client's, with no `Value` tree in between.
//!
//! The output is byte for byte what parsing into a `serde_json::Value`,
//! editing it and serializing it again gives (`response::normalize_chat`
//! keeps that path as the reference and as the fallback): compact, strings
//! escaped as serde_json escapes them, numbers as it writes them, keys in
//! their order, an added key last. The scanner (`scan`) copies the spans
//! of the answer that serde_json would write back unchanged as they are,
//! which on a compact answer is nearly all of it. Where the tree would
//! behave in a way one pass cannot follow (a key that appears twice in an
//! object: the tree keeps the last value at the first position; a key
//! written with escapes), or the bytes are not JSON serde_json reads, the
//! rewrite gives up and the caller takes the tree path.

use std::borrow::Cow;
use std::fmt;

use super::response::NormalizedChat;
use crate::billing::Price;
use crate::translate::finish::FinishReason;
use crate::usage::Usage;
use scan::{push_escaped, Copied, Scan};

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
    // serde_json refuses invalid UTF-8 in a string, and any byte beyond
    // ASCII outside one: checked once here, the scanner reads `str`s.
    let text = std::str::from_utf8(body).map_err(|_| GiveUp)?;
    let mut scan = Scan::new(text, provider.len() + 96);
    scan.ws();
    let top = Top {
        provider,
        requested,
        price,
        usage: None,
        id: None,
        saw_model: false,
    };
    let (usage, id) = top.read(&mut scan)?;
    Ok(NormalizedChat {
        bytes: scan.finish()?,
        usage,
        id: id.filter(|id| !id.is_empty()),
    })
}

/// Writes `"key":` after a comma when the object `had_keys`.
fn added_key(out: &mut Vec<u8>, had_keys: bool, key: &str) {
    if had_keys {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

/// Moves what was written from `at` on to the end of `out` to `at`: a value
/// known only after the keys that follow it, put in its place.
fn place_last_at(out: &mut [u8], at: usize, written_from: usize) {
    let len = out.len() - written_from;
    out[at..].rotate_right(len);
}

/// The answer object: `model` prefixed with the provider, each choice's
/// finish reason normalized, `usage` priced; returns the usage and `id`.
struct Top<'p> {
    provider: &'p str,
    requested: &'p str,
    price: &'p Price,
    usage: Option<Usage>,
    id: Option<String>,
    saw_model: bool,
}

impl Top<'_> {
    fn read(mut self, scan: &mut Scan<'_>) -> Result<(Option<Usage>, Option<String>), GiveUp> {
        let had_keys = scan.object(0, |scan, key, depth| self.field(scan, key, depth))?;
        if !self.saw_model {
            scan.flush();
            added_key(&mut scan.out, had_keys, "model");
            self.write_model(&mut scan.out, self.requested);
        }
        scan.expect(b'}')?;
        Ok((self.usage, self.id))
    }

    fn field(&mut self, scan: &mut Scan<'_>, key: &[u8], depth: usize) -> Result<(), GiveUp> {
        match key {
            b"model" => {
                self.saw_model = true;
                let served = match scan.drop_value(depth)? {
                    Copied::Str(s) => scan.text_of(s)?,
                    _ => Cow::Borrowed(self.requested),
                };
                self.write_model(&mut scan.out, &served);
            }
            b"choices" => {
                if scan.peek() == Some(b'[') {
                    scan.array(depth, |scan, depth| match scan.peek() {
                        Some(b'{') => choice(scan, depth),
                        _ => scan.value(depth).map(drop),
                    })?;
                } else {
                    // Not an array: the tree path leaves it alone.
                    scan.value(depth)?;
                }
            }
            b"usage" => self.usage = usage::priced(scan, depth, self.price)?,
            b"id" => {
                if let Copied::Str(s) = scan.value(depth)? {
                    self.id = Some(scan.text_of(s)?.into_owned());
                }
            }
            _ => {
                scan.value(depth)?;
            }
        }
        Ok(())
    }

    fn write_model(&self, out: &mut Vec<u8>, served: &str) {
        out.push(b'"');
        push_escaped(out, self.provider);
        out.push(b'/');
        push_escaped(out, served);
        out.push(b'"');
    }
}

/// One object in `choices`: its finish reason normalized (the provider's
/// word kept as `native_finish_reason`), as the tree path's
/// `normalize_finish` does for a final choice.
fn choice(scan: &mut Scan<'_>, depth: usize) -> Result<(), GiveUp> {
    let mut native: Option<Cow<'_, str>> = None;
    // Where a finish reason that is not a string was: its replacement
    // depends on `message`, which may come after it.
    let mut reason_at = None;
    let (mut saw_reason, mut saw_native, mut saw_tools) = (false, false, false);
    let had_keys = scan.object(depth, |scan, key, depth| {
        match key {
            b"finish_reason" => {
                saw_reason = true;
                match scan.drop_value(depth)? {
                    Copied::Str(s) => {
                        let word = scan.text_of(s)?;
                        push_str(&mut scan.out, FinishReason::normalize(&word).as_str());
                        native = Some(word);
                    }
                    _ => reason_at = Some(scan.out.len()),
                }
            }
            b"native_finish_reason" => {
                saw_native = true;
                scan.value(depth)?;
            }
            b"message" if scan.peek() == Some(b'{') => {
                scan.object(depth, |scan, key, depth| {
                    let copied = scan.value(depth)?;
                    if key == b"tool_calls" {
                        saw_tools = matches!(copied, Copied::Array { len } if len > 0);
                    }
                    Ok(())
                })?;
                scan.expect(b'}')?;
            }
            _ => {
                scan.value(depth)?;
            }
        }
        Ok(())
    })?;
    scan.flush();
    let out = &mut scan.out;
    let ended = match saw_tools {
        true => FinishReason::ToolCalls,
        false => FinishReason::Stop,
    };
    if let Some(at) = reason_at {
        let end = out.len();
        push_str(out, ended.as_str());
        place_last_at(out, at, end);
    }
    if !saw_reason {
        added_key(out, had_keys, "finish_reason");
        push_str(out, ended.as_str());
    }
    if !saw_native {
        added_key(out, had_keys || !saw_reason, "native_finish_reason");
        match native {
            Some(word) => push_str(out, &word),
            None => out.extend_from_slice(b"null"),
        }
    }
    scan.expect(b'}')
}

mod scan;
#[cfg(test)]
mod tests;
mod usage;

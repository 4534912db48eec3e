//! A JSON scanner that copies as it reads: bytes serde_json would write
//! back the same (compact structure, strings whose escapes it would
//! reproduce, integers it keeps as integers) stay in the input and go to the
//! output in spans; whitespace is dropped and anything else is re-encoded
//! through serde_json itself, so the output is what a `Value` round trip
//! writes. Every byte is checked: the scanner accepts only what serde_json
//! accepts (it may refuse more, which sends the answer to the tree path).

use std::borrow::Cow;

use serde_json::Value;

use super::GiveUp;

/// Deeper nesting is left to the tree (serde_json itself refuses past 128).
const MAX_DEPTH: usize = 100;

/// Keys open at once (all the objects being read, outermost first) beyond
/// this are not checked for repeats: the rewrite gives up instead.
const MAX_KEYS: usize = 128;

/// A string as read: the bytes between its quotes.
#[derive(Clone, Copy)]
pub(super) struct Str {
    start: usize,
    end: usize,
    /// It has backslash escapes (its text must be decoded to be read).
    escaped: bool,
}

/// What a copied value was, as far as the rewrite needs to know.
pub(super) enum Copied {
    Str(Str),
    /// What `Value::as_u64` reads: a whole number from 0 up.
    Count(u64),
    Array {
        len: usize,
    },
    Other,
}

pub(super) struct Scan<'a> {
    text: &'a str,
    src: &'a [u8],
    pub pos: usize,
    pub out: Vec<u8>,
    /// The input before this has been written out (or dropped); from here
    /// to `pos` it still is to be copied as it is.
    copied: usize,
    keys: [&'a [u8]; MAX_KEYS],
    nkeys: usize,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Eight bytes at once (the first in the low byte): where the first quote,
/// backslash or control character is (the bytes that end a plain run in a
/// string), or 8. Each mask may mark bytes after its first true hit, never
/// before, so the lowest mark is exact.
pub(super) fn first_special(chunk: u64) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
    let marks =
        below_space | zeros(chunk ^ (ONES * b'"' as u64)) | zeros(chunk ^ (ONES * b'\\' as u64));
    marks.trailing_zeros() as usize / 8
}

/// Does serde_json write this escape (the bytes after the backslash) back
/// as it is? It writes `\"`, `\\`, the five short control escapes, and
/// `\u00xx` in lower case for the other control characters.
fn canonical_escape(rest: &[u8]) -> Option<usize> {
    match rest.first()? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(1),
        b'u' => match rest.get(1..5)? {
            [b'0', b'0', hi @ (b'0' | b'1'), lo @ (b'0'..=b'9' | b'a'..=b'f')] => {
                let short = *hi == b'0' && matches!(lo, b'8' | b'9' | b'a' | b'c' | b'd');
                (!short).then_some(5)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Writes `s` as serde_json escapes a string's contents (no quotes).
pub(super) fn push_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        out.extend_from_slice(&[b'\\', short]);
        if short == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

impl<'a> Scan<'a> {
    pub fn new(text: &'a str, extra: usize) -> Scan<'a> {
        Scan {
            text,
            src: text.as_bytes(),
            pos: 0,
            out: Vec::with_capacity(text.len() + extra),
            copied: 0,
            keys: [&[]; MAX_KEYS],
            nkeys: 0,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Writes out the input not yet written, up to `pos`.
    pub fn flush(&mut self) {
        self.out.extend_from_slice(&self.src[self.copied..self.pos]);
        self.copied = self.pos;
    }

    /// Skips whitespace, which the output drops.
    #[inline]
    pub fn ws(&mut self) {
        if self.peek().is_some_and(is_ws) {
            self.drop_ws();
        }
    }

    // Out of line: compact answers have none.
    #[inline(never)]
    fn drop_ws(&mut self) {
        self.flush();
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.copied = self.pos;
    }

    pub fn expect(&mut self, b: u8) -> Result<(), GiveUp> {
        match self.peek() == Some(b) {
            true => {
                self.pos += 1;
                Ok(())
            }
            false => Err(GiveUp),
        }
    }

    /// The whole input was one value, with whitespace at most after it.
    pub fn finish(mut self) -> Result<Vec<u8>, GiveUp> {
        self.ws();
        self.flush();
        match self.pos == self.src.len() {
            true => Ok(self.out),
            false => Err(GiveUp),
        }
    }

    /// The text of a string read earlier.
    pub fn text_of(&self, s: Str) -> Result<Cow<'a, str>, GiveUp> {
        let inner = self.text.get(s.start..s.end).ok_or(GiveUp)?;
        if !s.escaped {
            return Ok(Cow::Borrowed(inner));
        }
        let quoted = self.text.get(s.start - 1..s.end + 1).ok_or(GiveUp)?;
        serde_json::from_str::<String>(quoted)
            .map(Cow::Owned)
            .map_err(|_| GiveUp)
    }

    /// Reads the value at `pos` (output as the tree writes it) and drops
    /// what it wrote: for a value the rewrite replaces.
    pub fn drop_value(&mut self, depth: usize) -> Result<Copied, GiveUp> {
        self.flush();
        let at = self.out.len();
        let value = self.value(depth)?;
        self.flush();
        self.out.truncate(at);
        Ok(value)
    }

    /// Copies the value at `pos`.
    pub fn value(&mut self, depth: usize) -> Result<Copied, GiveUp> {
        match self.peek().ok_or(GiveUp)? {
            b'"' => self.string().map(Copied::Str),
            b'{' => {
                self.object(depth, |scan, _, depth| scan.value(depth).map(drop))?;
                self.expect(b'}')?;
                Ok(Copied::Other)
            }
            b'[' => {
                let len = self.array(depth, |scan, depth| scan.value(depth).map(drop))?;
                Ok(Copied::Array { len })
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(GiveUp),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<Copied, GiveUp> {
        match self.src[self.pos..].starts_with(word) {
            true => {
                self.pos += word.len();
                Ok(Copied::Other)
            }
            false => Err(GiveUp),
        }
    }

    /// Reads an object's keys and values, `each` reading every value (at
    /// `pos`, with the key and the depth inside). Leaves `pos` at the `}`,
    /// so that the caller can add keys before it, and returns whether the
    /// object had keys. Gives up on a repeated key or a key with escapes.
    pub fn object<F>(&mut self, depth: usize, mut each: F) -> Result<bool, GiveUp>
    where
        F: FnMut(&mut Self, &'a [u8], usize) -> Result<(), GiveUp>,
    {
        if depth >= MAX_DEPTH {
            return Err(GiveUp);
        }
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            return Ok(false);
        }
        let base = self.nkeys;
        loop {
            let key = self.key(base)?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            each(self, key, depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => break,
                _ => return Err(GiveUp),
            }
        }
        self.nkeys = base;
        Ok(true)
    }

    fn key(&mut self, base: usize) -> Result<&'a [u8], GiveUp> {
        if self.peek() != Some(b'"') {
            return Err(GiveUp);
        }
        let s = self.string()?;
        let key = &self.src[s.start..s.end];
        if s.escaped || self.nkeys == MAX_KEYS || self.keys[base..self.nkeys].contains(&key) {
            return Err(GiveUp);
        }
        self.keys[self.nkeys] = key;
        self.nkeys += 1;
        Ok(key)
    }

    /// Reads an array, `each` reading every element; returns its length.
    pub fn array<F>(&mut self, depth: usize, mut each: F) -> Result<usize, GiveUp>
    where
        F: FnMut(&mut Self, usize) -> Result<(), GiveUp>,
    {
        if depth >= MAX_DEPTH {
            return Err(GiveUp);
        }
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(0);
        }
        let mut len = 0;
        loop {
            each(self, depth + 1)?;
            len += 1;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(len);
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// Reads the string at `pos`; one with an escape serde_json would write
    /// differently is decoded and written again.
    fn string(&mut self) -> Result<Str, GiveUp> {
        let open = self.pos;
        let src = self.src;
        let mut i = open + 1;
        let mut escaped = false;
        loop {
            // Eight bytes a step while there are eight left; then one.
            while let Some(chunk) = src.get(i..i + 8) {
                let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
                    break;
                };
                let at = first_special(u64::from_le_bytes(chunk));
                i += at;
                if at < 8 {
                    break;
                }
            }
            match *src.get(i).ok_or(GiveUp)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match canonical_escape(&src[i + 1..]) {
                        Some(len) => i += 1 + len,
                        None => return self.reencode_string(open),
                    }
                }
                0..=0x1f => return Err(GiveUp),
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(Str {
            start: open + 1,
            end: i,
            escaped,
        })
    }

    /// A string serde_json would write back differently: decoded by
    /// serde_json (which also checks it) and written as it writes it.
    fn reencode_string(&mut self, open: usize) -> Result<Str, GiveUp> {
        let src = self.src;
        let mut i = open + 1;
        loop {
            match *src.get(i).ok_or(GiveUp)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        let quoted = self.text.get(open..i + 1).ok_or(GiveUp)?;
        let decoded: String = serde_json::from_str(quoted).map_err(|_| GiveUp)?;
        self.pos = open;
        self.flush();
        self.out.push(b'"');
        push_escaped(&mut self.out, &decoded);
        self.out.push(b'"');
        self.pos = i + 1;
        self.copied = self.pos;
        Ok(Str {
            start: open + 1,
            end: i,
            escaped: true,
        })
    }

    /// Reads the number at `pos`: an integer serde_json keeps as one is
    /// copied, any other number is written as serde_json writes it.
    fn number(&mut self) -> Result<Copied, GiveUp> {
        let (src, start) = (self.src, self.pos);
        let negative = src[start] == b'-';
        let digits = start + usize::from(negative);
        let mut i = digits;
        let mut n: Option<u64> = Some(0);
        while let Some(d @ b'0'..=b'9') = src.get(i).copied() {
            n = n
                .and_then(|n| n.checked_mul(10))
                .and_then(|n| n.checked_add(u64::from(d - b'0')));
            i += 1;
        }
        let fraction = matches!(src.get(i), Some(b'.' | b'e' | b'E' | b'+' | b'-'));
        let leading_zero = src.get(digits) == Some(&b'0') && i - digits > 1;
        if let (Some(n), false, false, true) = (n, fraction, leading_zero, i > digits) {
            // serde_json reads `-0` and integers below i64's range as f64.
            if !negative {
                self.pos = i;
                return Ok(Copied::Count(n));
            }
            if n != 0 && n <= 1 << 63 {
                self.pos = i;
                return Ok(Copied::Other);
            }
        }
        while matches!(
            src.get(i),
            Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        ) {
            i += 1;
        }
        let Ok(Value::Number(number)) = serde_json::from_slice(&src[start..i]) else {
            return Err(GiveUp);
        };
        self.flush();
        // Cannot fail: writing to a Vec.
        let _ = serde_json::to_writer(&mut self.out, &number);
        self.pos = i;
        self.copied = i;
        Ok(number.as_u64().map_or(Copied::Other, Copied::Count))
    }
}

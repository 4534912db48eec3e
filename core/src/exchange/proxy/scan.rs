//! Reads a JSON request body's [`BodyFacts`] as its bytes stream past,
//! without holding the body: a lexer that tracks only nesting, strings and
//! the keys of the first two object levels, and copies out (bounded) just
//! the scalar values the proxy needs. Fed in pieces split anywhere, it
//! finds what parsing the whole body finds, for any valid JSON object
//! (the last of duplicate keys wins, as in `serde_json`). An invalid body
//! gives whatever was seen; the provider refuses such a body anyway.

use serde_json::Value;

use super::facts::{BodyFacts, OUTPUT_CAPS};

/// Longest key compared; longer keys are none of the wanted ones.
const KEY_BYTES: usize = 24;
/// Longest value copied (a model name with its quotes, a number).
const VALUE_BYTES: usize = 512;

/// A value the scanner looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Model,
    Stream,
    /// Index into `OUTPUT_CAPS`.
    Cap(usize),
    IncludeUsage,
    GeminiCap,
}

/// An object key seen at one level, kept only if short and unescaped.
#[derive(Clone, Copy, Debug, Default)]
struct Key {
    bytes: [u8; KEY_BYTES],
    len: usize,
    /// Too long, or had an escape: matches nothing.
    spoiled: bool,
}

impl Key {
    fn push(&mut self, b: u8) {
        match self.bytes.get_mut(self.len) {
            Some(slot) if !self.spoiled => {
                *slot = b;
                self.len += 1;
            }
            _ => self.spoiled = true,
        }
    }

    fn is(&self, name: &str) -> bool {
        !self.spoiled && self.bytes.get(..self.len) == Some(name.as_bytes())
    }
}

#[derive(Clone, Copy, Debug)]
enum Lex {
    /// Between tokens.
    Between,
    String {
        key: bool,
        escaped: bool,
    },
    /// A number, `true`, `false` or `null`.
    Scalar,
}

#[derive(Debug, Default)]
struct Capture {
    field: Option<Field>,
    raw: Vec<u8>,
    overflow: bool,
}

/// The streaming reader of a body's facts.
#[derive(Debug)]
pub(crate) struct FieldScanner {
    depth: usize,
    /// Whether the containers at depths 1 and 2 are objects.
    objects: [bool; 2],
    /// The current key at depths 1 and 2.
    keys: [Key; 2],
    /// In an object, the next string is a key.
    expect_key: bool,
    lex: Lex,
    capture: Capture,
    /// The last value seen of each field (`None`: absent, or not a scalar).
    model: Option<Value>,
    stream: Option<Value>,
    caps: [Option<Value>; 3],
    include_usage: Option<Value>,
    gemini_cap: Option<Value>,
}

impl Default for FieldScanner {
    fn default() -> Self {
        FieldScanner {
            depth: 0,
            objects: [false; 2],
            keys: [Key::default(); 2],
            expect_key: false,
            lex: Lex::Between,
            capture: Capture::default(),
            model: None,
            stream: None,
            caps: [None, None, None],
            include_usage: None,
            gemini_cap: None,
        }
    }
}

impl FieldScanner {
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// The facts of the body fed so far (call at its end).
    pub(crate) fn finish(mut self) -> BodyFacts {
        if matches!(self.lex, Lex::Scalar) {
            self.end_value();
        }
        let u64_of = |v: &Option<Value>| v.as_ref().and_then(Value::as_u64);
        BodyFacts {
            model: self
                .model
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_owned),
            stream: self.stream.as_ref().and_then(Value::as_bool) == Some(true),
            max_output: self
                .caps
                .iter()
                .find_map(u64_of)
                .or(u64_of(&self.gemini_cap)),
            asks_usage: self.include_usage.as_ref().and_then(Value::as_bool) == Some(true),
        }
    }

    fn byte(&mut self, b: u8) {
        match self.lex {
            Lex::String { key, escaped } => self.in_string(b, key, escaped),
            Lex::Scalar => {
                if matches!(b, b',' | b'}' | b']' | b':') || b.is_ascii_whitespace() {
                    self.end_value();
                    self.lex = Lex::Between;
                    self.between(b);
                } else {
                    self.copy(b);
                }
            }
            Lex::Between => self.between(b),
        }
    }

    fn in_string(&mut self, b: u8, key: bool, escaped: bool) {
        let slot = self.depth.checked_sub(1).and_then(|i| self.keys.get_mut(i));
        if escaped {
            self.lex = Lex::String {
                key,
                escaped: false,
            };
        } else if b == b'\\' {
            self.lex = Lex::String { key, escaped: true };
            if key {
                if let Some(slot) = slot {
                    slot.spoiled = true;
                }
                return;
            }
        } else if b == b'"' {
            self.lex = Lex::Between;
            if key {
                self.expect_key = false;
            } else {
                self.copy(b);
                self.end_value();
            }
            return;
        }
        match (key, slot) {
            (true, Some(slot)) => slot.push(b),
            (true, None) => {}
            (false, _) => self.copy(b),
        }
    }

    fn between(&mut self, b: u8) {
        match b {
            b'"' => {
                let key = self.expect_key && self.in_object();
                if key {
                    if let Some(slot) = self.depth.checked_sub(1).and_then(|i| self.keys.get_mut(i))
                    {
                        *slot = Key::default();
                    }
                } else {
                    self.begin_value(true);
                    self.copy(b);
                }
                self.lex = Lex::String {
                    key,
                    escaped: false,
                };
            }
            b'{' | b'[' => {
                // A container where a wanted scalar was: not a scalar.
                self.begin_value(false);
                self.depth += 1;
                if let Some(kind) = self
                    .depth
                    .checked_sub(1)
                    .and_then(|i| self.objects.get_mut(i))
                {
                    *kind = b == b'{';
                }
                self.expect_key = b == b'{';
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                self.expect_key = false;
            }
            b':' => self.expect_key = false,
            b',' => self.expect_key = self.in_object(),
            _ if b.is_ascii_whitespace() => {}
            _ => {
                self.begin_value(true);
                self.copy(b);
                self.lex = Lex::Scalar;
            }
        }
    }

    fn in_object(&self) -> bool {
        self.depth
            .checked_sub(1)
            .and_then(|i| self.objects.get(i))
            .copied()
            .unwrap_or(false)
    }

    /// The field a value at the current position would be.
    fn field_here(&self) -> Option<Field> {
        let [outer, inner] = &self.keys;
        match self.depth {
            1 if self.objects[0] => {
                if outer.is("model") {
                    Some(Field::Model)
                } else if outer.is("stream") {
                    Some(Field::Stream)
                } else {
                    OUTPUT_CAPS
                        .iter()
                        .position(|name| outer.is(name))
                        .map(Field::Cap)
                }
            }
            2 if self.objects == [true, true] => {
                if outer.is("stream_options") && inner.is("include_usage") {
                    Some(Field::IncludeUsage)
                } else if outer.is("generationConfig") && inner.is("maxOutputTokens") {
                    Some(Field::GeminiCap)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// A value starts here; `scalar` when it is one (copied until it ends).
    fn begin_value(&mut self, scalar: bool) {
        if self.depth == 1 && self.objects[0] {
            // A new value of a top-level key replaces all of the old one,
            // nested fields included.
            let [outer, _] = &self.keys;
            if outer.is("stream_options") {
                self.include_usage = None;
            } else if outer.is("generationConfig") {
                self.gemini_cap = None;
            }
        }
        let field = self.field_here();
        if let Some(field) = field {
            *self.slot(field) = None;
        }
        self.capture = Capture {
            field: field.filter(|_| scalar),
            raw: Vec::new(),
            overflow: false,
        };
    }

    fn copy(&mut self, b: u8) {
        if self.capture.field.is_none() {
            return;
        }
        if self.capture.raw.len() < VALUE_BYTES {
            self.capture.raw.push(b);
        } else {
            self.capture.overflow = true;
        }
    }

    fn end_value(&mut self) {
        let capture = std::mem::take(&mut self.capture);
        let Some(field) = capture.field else {
            return;
        };
        if capture.overflow {
            return;
        }
        *self.slot(field) = serde_json::from_slice::<Value>(&capture.raw).ok();
    }

    fn slot(&mut self, field: Field) -> &mut Option<Value> {
        match field {
            Field::Model => &mut self.model,
            Field::Stream => &mut self.stream,
            Field::Cap(i) => match self.caps.get_mut(i) {
                Some(slot) => slot,
                None => &mut self.gemini_cap,
            },
            Field::IncludeUsage => &mut self.include_usage,
            Field::GeminiCap => &mut self.gemini_cap,
        }
    }
}

/// See `fuzz_entry::proxy_body_scan`.
pub(crate) fn fuzz(data: &[u8]) {
    let scan = |pieces: &[&[u8]]| {
        let mut scanner = FieldScanner::default();
        for piece in pieces {
            scanner.feed(piece);
        }
        scanner.finish()
    };
    let whole = scan(&[data]);
    let cut = data.first().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    let (a, b) = data.split_at(cut);
    assert_eq!(scan(&[a, b]), whole, "a split changed what was read");
    if let Ok(Value::Object(_)) = serde_json::from_slice::<Value>(data) {
        let mut parsed = BodyFacts::from_json(data);
        // The one documented difference: a model whose JSON text is longer
        // than `VALUE_BYTES` is not copied out.
        if whole.model.is_none() && data.len() > VALUE_BYTES {
            parsed.model = None;
        }
        assert_eq!(whole, parsed, "not what a parse reads");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::FieldScanner;
    use crate::exchange::proxy::facts::BodyFacts;

    fn scan(pieces: &[&[u8]]) -> BodyFacts {
        let mut scanner = FieldScanner::default();
        for piece in pieces {
            scanner.feed(piece);
        }
        scanner.finish()
    }

    #[test]
    fn reads_the_fields_wherever_they_are() {
        let body = br#"{"messages":[{"role":"user","content":"model \"x\" {"}],
            "model" : "gpt-4o-mini", "stream":true, "max_tokens": 77,
            "stream_options":{"include_usage":true}, "metadata":{"model":"no"}}"#;
        let facts = scan(&[body]);
        assert_eq!(facts, BodyFacts::from_json(body));
        assert_eq!(facts.model.as_deref(), Some("gpt-4o-mini"));
        assert!(facts.stream && facts.asks_usage);
        assert_eq!(facts.max_output, Some(77));
    }

    #[test]
    fn gemini_cap_and_escaped_model() {
        let body = br#"{"generationConfig":{"maxOutputTokens":12},"model":"a\/b\u0041"}"#;
        let facts = scan(&[body]);
        assert_eq!(facts.model.as_deref(), Some("a/bA"));
        assert_eq!(facts.max_output, Some(12));
    }

    #[test]
    fn the_last_duplicate_wins_and_containers_are_not_scalars() {
        let body = br#"{"model":"a","model":{"x":1},"stream_options":{"include_usage":true},"stream_options":{}}"#;
        assert_eq!(scan(&[body]), BodyFacts::from_json(body));
        assert_eq!(scan(&[body]), BodyFacts::default());
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u32>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\"\\\\/{}:, ]{0,12}".prop_map(Value::String),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("model".to_string()),
            Just("stream".to_string()),
            Just("max_tokens".to_string()),
            Just("max_completion_tokens".to_string()),
            Just("max_output_tokens".to_string()),
            Just("stream_options".to_string()),
            Just("include_usage".to_string()),
            Just("generationConfig".to_string()),
            Just("maxOutputTokens".to_string()),
            "[a-z_\"]{1,8}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// A body as a client may write it: the object's members in any
    /// order, duplicates allowed, with whitespace between tokens.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        (prop::collection::vec((key(), value()), 0..8), any::<bool>()).prop_map(
            |(members, spaced)| {
                let sep = if spaced { " \n " } else { "" };
                let parts: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}{sep}:{sep}{v}", json!(k)))
                    .collect();
                format!("{{{sep}{}{sep}}}", parts.join(&format!("{sep},{sep}"))).into_bytes()
            },
        )
    }

    proptest! {
        #[test]
        fn any_bytes_read_the_same_however_split(data in prop::collection::vec(prop_oneof![
            Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
            Just(b':'), Just(b','), Just(b' '), any::<u8>(),
        ], 0..200)) {
            super::fuzz(&data);
        }

        #[test]
        fn split_anywhere_finds_what_a_parse_finds(body in body(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts {
                pieces.push(&body[at..cut]);
                at = cut;
            }
            pieces.push(&body[at..]);
            prop_assert_eq!(scan(&pieces), BodyFacts::from_json(&body));
        }
    }
}

//! The top-level fields of an OpenAI stream chunk read without building a
//! `serde_json::Value`, and the `id`/`created`/`model` remembered from the
//! last chunk for the chunks the gateway writes itself. A full parse builds
//! an ordered map with a hashed key per field; the first chunk (the role)
//! and the usage chunk of every stream need only these few fields, so they
//! are borrowed from the upstream's text instead.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// Borrowed views of one chunk's top-level fields. A key present with
/// `null` is `Some("null")`, as a full parse would keep it. A chunk with a
/// repeated key fails to parse here (a full parse keeps the last), so the
/// caller takes the full path for it.
#[derive(Deserialize)]
pub(super) struct ChunkHead<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub created: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub model: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub usage: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub choices: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> ChunkHead<'a> {
    pub fn parse(data: &'a str) -> Option<ChunkHead<'a>> {
        serde_json::from_str(data).ok()
    }

    /// `model` as the upstream named it, when it is a string.
    pub fn served_model(&self) -> Option<std::borrow::Cow<'a, str>> {
        json_str(self.model?)
    }

    /// `choices` is absent or an empty array.
    pub fn no_choices(&self) -> bool {
        self.choices.is_none_or(|c| {
            c.get()
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .is_some_and(|inner| inner.trim().is_empty())
        })
    }
}

/// `id`, `created` and the prefixed `model` of the last chunk taken apart,
/// kept as text in buffers that are reused, so recording them allocates
/// nothing after the first chunk.
#[derive(Debug, Default)]
pub(super) struct LastMeta {
    /// JSON text of `id`, `created`.
    id: Option<String>,
    created: Option<String>,
    /// `provider/served-model`, plain text.
    model: Option<String>,
}

fn set(slot: &mut Option<String>, parts: &[&str]) {
    let s = slot.get_or_insert_with(String::new);
    s.clear();
    parts.iter().for_each(|p| s.push_str(p));
}

impl LastMeta {
    /// The last chunk's `id`, when it was a string.
    pub fn id(&self) -> Option<String> {
        let text = self.id.as_deref()?;
        serde_json::from_str::<String>(text)
            .ok()
            .filter(|id| !id.is_empty())
    }

    /// From a fully parsed chunk whose `model` was already prefixed.
    pub fn note_value(&mut self, obj: &Map<String, Value>) {
        if let Some(v) = obj.get("id") {
            set(&mut self.id, &[&v.to_string()]);
        }
        if let Some(v) = obj.get("created") {
            set(&mut self.created, &[&v.to_string()]);
        }
        if let Some(Value::String(m)) = obj.get("model") {
            set(&mut self.model, &[m]);
        }
    }

    /// From a chunk read on the light path: `model` gets the same
    /// `provider/` prefix a full parse would give it.
    pub fn note_head(&mut self, head: &ChunkHead<'_>, provider: &str, requested: &str) {
        if let Some(v) = head.id {
            set(&mut self.id, &[v.get()]);
        }
        if let Some(v) = head.created {
            set(&mut self.created, &[v.get()]);
        }
        let served = head.served_model();
        set(
            &mut self.model,
            &[provider, "/", served.as_deref().unwrap_or(requested)],
        );
    }

    /// The start of a chunk the gateway writes: `id`, `object`, `created`,
    /// `model`, as the last upstream chunk had them.
    pub fn chunk_base(&self, provider: &str, requested: &str) -> Map<String, Value> {
        let parsed = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
        };
        let mut chunk = Map::new();
        chunk.insert(
            "id".into(),
            parsed(&self.id).unwrap_or_else(|| Value::String("chatcmpl-arouter".into())),
        );
        chunk.insert(
            "object".into(),
            Value::String("chat.completion.chunk".into()),
        );
        chunk.insert("created".into(), parsed(&self.created).unwrap_or(json!(0)));
        chunk.insert(
            "model".into(),
            Value::String(match &self.model {
                Some(m) => m.clone(),
                None => format!("{provider}/{requested}"),
            }),
        );
        chunk
    }
}

/// Borrowed views of the fields of one choice the finish path reads.
#[derive(Deserialize)]
pub(super) struct ChoiceHead<'a> {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub finish_reason: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub native_finish_reason: Option<&'a RawValue>,
}

/// A JSON string's text, unescaped only when it has escapes.
pub(super) fn json_str(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let text = raw.get();
    match text.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(plain) if !plain.contains('\\') => Some(plain.into()),
        Some(_) => serde_json::from_str::<String>(text).ok().map(Into::into),
        None => None,
    }
}

/// Where `part` (a slice of `whole`) starts in `whole`.
pub(super) fn offset_in(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

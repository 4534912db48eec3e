//! Small facts about Gemini's JSON shared by the request, response and
//! stream code: field lookup under both spellings, finish words, usage,
//! image MIME types.

use serde_json::{json, Map, Value};

use crate::translate::canonical::{Finish, Image};
use crate::translate::finish::FinishReason;
use crate::usage::Usage;

/// A field under its proto JSON name (`inlineData`) or its proto field name
/// (`inline_data`): Google's JSON parser accepts both and real clients send
/// both (llm-gemini writes `function_call`, the google-genai SDK
/// `parameters_json_schema`). `null` counts as absent.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    match obj.get(camel) {
        Some(Value::Null) | None => {}
        Some(v) => return Some(v),
    }
    let snake = snake_case(camel);
    match obj.get(snake.as_str()) {
        Some(Value::Null) | None => None,
        Some(v) => Some(v),
    }
}

/// `inlineData` -> `inline_data`.
pub(crate) fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `inline_data` -> `inlineData`.
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn str_field<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a str> {
    field(obj, camel).and_then(Value::as_str)
}

/// Whether a part is marked as the model's thought.
pub(crate) fn is_thought(part: &Map<String, Value>) -> bool {
    field(part, "thought").and_then(Value::as_bool) == Some(true)
}

/// Gemini finish words that are a content filter but that the shared
/// normalizer does not know (image models add their own).
const EXTRA_FILTER_WORDS: [&str; 2] = ["IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"];

/// A candidate's `finishReason` as a canonical finish. Gemini says `STOP`
/// after function calls too; the caller knows whether there were any.
pub(crate) fn finish_from_native(native: &str, saw_tool_call: bool) -> Finish {
    let reason = if EXTRA_FILTER_WORDS.contains(&native) {
        FinishReason::ContentFilter
    } else {
        match FinishReason::normalize(native) {
            FinishReason::Stop if saw_tool_call && native == "STOP" => FinishReason::ToolCalls,
            other => other,
        }
    };
    Finish {
        reason,
        native: native.to_string(),
    }
}

/// A prompt refused before generation (`promptFeedback.blockReason`): a
/// content filter whatever the word, since nothing was generated.
pub(crate) fn finish_from_block(reason: &str) -> Finish {
    Finish {
        reason: FinishReason::ContentFilter,
        native: reason.to_string(),
    }
}

/// Every Gemini `finishReason` word, so a canonical finish that came from
/// Gemini goes back out with its own word.
const GEMINI_FINISH_WORDS: [&str; 14] = [
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "UNEXPECTED_TOOL_CALL",
];

/// The `finishReason` to show a Gemini client. The native word is kept when
/// it is a Gemini word of the same class; otherwise each class has a default.
pub(crate) fn finish_to_native(finish: &Finish) -> &str {
    let native = finish.native.as_str();
    if GEMINI_FINISH_WORDS.contains(&native) {
        let class = finish_from_native(native, true).reason;
        let same = class == finish.reason
            || (finish.reason == FinishReason::Stop && class == FinishReason::ToolCalls);
        if same {
            return native;
        }
    }
    match finish.reason {
        FinishReason::Stop | FinishReason::ToolCalls => "STOP",
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ContentFilter => "SAFETY",
        FinishReason::Error => "OTHER",
    }
}

fn count(obj: &Map<String, Value>, camel: &str) -> u64 {
    field(obj, camel).and_then(Value::as_u64).unwrap_or(0)
}

/// `usageMetadata` -> canonical usage. `promptTokenCount` already includes
/// cached tokens; tool-use prompt tokens (search results fed back to the
/// model) are billed as input but reported apart, so they are added.
/// Thoughts are billed as output but not counted in `candidatesTokenCount`,
/// so completion is candidates + thoughts.
pub(crate) fn usage_from(meta: &Value) -> Option<Usage> {
    let obj = meta.as_object()?;
    let thoughts = count(obj, "thoughtsTokenCount");
    Some(Usage {
        // Saturating: the counts are the provider's, and an absurd one
        // must not overflow (a panic, or a wrapped bill).
        prompt_tokens: count(obj, "promptTokenCount")
            .saturating_add(count(obj, "toolUsePromptTokenCount")),
        completion_tokens: count(obj, "candidatesTokenCount").saturating_add(thoughts),
        cached_tokens: count(obj, "cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    })
}

/// Canonical usage -> `usageMetadata`; the inverse of [`usage_from`].
pub(crate) fn usage_to(usage: &Usage) -> Value {
    let mut obj = Map::new();
    obj.insert("promptTokenCount".into(), json!(usage.prompt_tokens));
    obj.insert(
        "candidatesTokenCount".into(),
        json!(usage
            .completion_tokens
            .saturating_sub(usage.reasoning_tokens)),
    );
    obj.insert("totalTokenCount".into(), json!(usage.total()));
    if usage.reasoning_tokens > 0 {
        obj.insert("thoughtsTokenCount".into(), json!(usage.reasoning_tokens));
    }
    if usage.cached_tokens > 0 {
        obj.insert("cachedContentTokenCount".into(), json!(usage.cached_tokens));
    }
    Value::Object(obj)
}

/// A canonical image as a Gemini part: `inlineData` for bytes (and `data:`
/// URLs), `fileData` for anything else addressed by URI.
pub(crate) fn image_part(image: &Image) -> Value {
    match image {
        Image::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        Image::Url(url) => match parse_data_url(url) {
            Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
            // Gemini reads YouTube links itself and their "extension" means
            // nothing; `mimeType` is optional, so none is claimed.
            None if is_youtube(url) => json!({"fileData": {"fileUri": url}}),
            None => json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}),
        },
    }
}

/// `data:<mime>;base64,<data>`; other `data:` encodings are not base64 and
/// go out as a URI the provider will refuse, which is the honest outcome.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((if mime.is_empty() { "image/jpeg" } else { mime }, data))
}

fn is_youtube(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    matches!(host, "youtube.com" | "youtu.be" | "m.youtube.com")
}

/// Gemini wants `fileData.mimeType` for files; a URL only hints at it through its
/// extension. JPEG is the most common image type, so it is the fallback.
pub(crate) fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "txt" => "text/plain",
        _ => "image/jpeg",
    }
}

/// Tool-call arguments (JSON text) as Gemini's `args`, which must be an
/// object. Empty text is no arguments; anything that is not an object is
/// kept, as text, under `arguments` rather than dropped.
pub(crate) fn args_object(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "arguments": arguments }),
    }
}

/// The id given to a function call Gemini sent without one: its position
/// among the calls of the response (or request), so the same input always
/// yields the same ids.
pub(crate) fn synthetic_call_id(n: usize) -> String {
    format!("call_{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_accepts_both_spellings_and_skips_null() {
        let obj = json!({"inline_data": 1, "mimeType": null, "mime_type": 2});
        let obj = obj.as_object().cloned().unwrap_or_default();
        assert_eq!(field(&obj, "inlineData"), Some(&json!(1)));
        assert_eq!(field(&obj, "mimeType"), Some(&json!(2)));
        assert_eq!(field(&obj, "fileData"), None);
        assert_eq!(camel_case("response_mime_type"), "responseMimeType");
        assert_eq!(camel_case("_private"), "_private");
        assert_eq!(snake_case("responseMimeType"), "response_mime_type");
    }

    #[test]
    fn finish_words_map_both_ways() {
        use FinishReason::*;
        for (native, tools, want) in [
            ("STOP", false, Stop),
            ("STOP", true, ToolCalls),
            ("MAX_TOKENS", true, Length),
            ("SAFETY", false, ContentFilter),
            ("RECITATION", false, ContentFilter),
            ("BLOCKLIST", false, ContentFilter),
            ("PROHIBITED_CONTENT", false, ContentFilter),
            ("SPII", false, ContentFilter),
            ("IMAGE_SAFETY", false, ContentFilter),
            ("IMAGE_PROHIBITED_CONTENT", false, ContentFilter),
            ("MALFORMED_FUNCTION_CALL", true, Error),
            ("LANGUAGE", false, Stop),
            ("OTHER", false, Stop),
            ("FINISH_REASON_UNSPECIFIED", false, Stop),
        ] {
            let finish = finish_from_native(native, tools);
            assert_eq!(finish.reason, want, "{native}");
            assert_eq!(finish.native, native);
            let back = if native == "FINISH_REASON_UNSPECIFIED" {
                "STOP"
            } else {
                native
            };
            assert_eq!(finish_to_native(&finish), back, "{native} back");
        }
        let foreign = |reason, native: &str| Finish {
            reason,
            native: native.into(),
        };
        assert_eq!(finish_to_native(&foreign(Stop, "end_turn")), "STOP");
        assert_eq!(finish_to_native(&foreign(ToolCalls, "tool_use")), "STOP");
        assert_eq!(finish_to_native(&foreign(Length, "length")), "MAX_TOKENS");
        assert_eq!(
            finish_to_native(&foreign(ContentFilter, "refusal")),
            "SAFETY"
        );
        assert_eq!(finish_to_native(&foreign(Error, "error")), "OTHER");
        // A Gemini word of another class does not leak through.
        assert_eq!(finish_to_native(&foreign(Length, "STOP")), "MAX_TOKENS");
    }

    #[test]
    fn usage_round_trips_with_thoughts_as_output() {
        let meta = json!({"promptTokenCount": 57, "candidatesTokenCount": 15,
            "thoughtsTokenCount": 124, "cachedContentTokenCount": 7,
            "toolUsePromptTokenCount": 3, "totalTokenCount": 199});
        let usage = usage_from(&meta).unwrap_or_default();
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 60,
                completion_tokens: 139,
                cached_tokens: 7,
                cache_write_tokens: 0,
                reasoning_tokens: 124,
            }
        );
        assert_eq!(
            usage_to(&usage),
            json!({"promptTokenCount": 60, "candidatesTokenCount": 15,
                "totalTokenCount": 199, "thoughtsTokenCount": 124,
                "cachedContentTokenCount": 7})
        );
        assert_eq!(usage_from(&json!([])), None);
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let meta = json!({"promptTokenCount": u64::MAX, "toolUsePromptTokenCount": 5,
            "candidatesTokenCount": u64::MAX, "thoughtsTokenCount": 5});
        let usage = usage_from(&meta).unwrap_or_default();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (u64::MAX, u64::MAX)
        );
        assert_eq!(usage.total(), u64::MAX);
        assert_eq!(usage_to(&usage)["totalTokenCount"], json!(u64::MAX));
    }

    #[test]
    fn images_and_mime_guesses() {
        assert_eq!(
            image_part(&Image::Url("https://x/a.PNG?s=1".into())),
            json!({"fileData": {"mimeType": "image/png", "fileUri": "https://x/a.PNG?s=1"}})
        );
        assert_eq!(guess_mime("https://x/photo"), "image/jpeg");
        assert_eq!(guess_mime("https://example.png/photo"), "image/jpeg");
        assert_eq!(guess_mime("gs://b/doc.pdf"), "application/pdf");
        assert_eq!(guess_mime("https://x/a.webp#f"), "image/webp");
        assert_eq!(guess_mime("gs://b/clip.MP4"), "video/mp4");
        assert_eq!(
            image_part(&Image::Url("https://www.youtube.com/watch?v=abc".into())),
            json!({"fileData": {"fileUri": "https://www.youtube.com/watch?v=abc"}})
        );
        assert_eq!(
            image_part(&Image::Url("https://youtu.be/abc.def".into())),
            json!({"fileData": {"fileUri": "https://youtu.be/abc.def"}})
        );
        assert_eq!(
            image_part(&Image::Url("data:image/gif;base64,R0lG".into())),
            json!({"inlineData": {"mimeType": "image/gif", "data": "R0lG"}})
        );
        assert_eq!(
            image_part(&Image::Base64 {
                media_type: "image/png".into(),
                data: "iVBO".into()
            }),
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBO"}})
        );
    }

    #[test]
    fn args_are_always_an_object() {
        assert_eq!(args_object(""), json!({}));
        assert_eq!(args_object(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(args_object("[1]"), json!({"arguments": "[1]"}));
        assert_eq!(args_object("{oops"), json!({"arguments": "{oops"}));
    }
}

//! `GenerateContentResponse` <-> canonical response, and the part and chunk
//! shapes the stream code shares.

use serde_json::{json, Map, Value};

use super::request_encode::reasoning_part;
use super::wire::{
    args_object, field, finish_from_block, finish_from_native, finish_to_native, image_part,
    is_thought, str_field, synthetic_call_id, usage_from, usage_to,
};
use crate::translate::canonical::{ChatResponse, Finish, Image, Part};
use crate::translate::DecodeError;
use crate::usage::Usage;

/// Gemini response parts -> canonical parts, appended to `out`. `calls`
/// counts function calls so far in this response, for `call_<n>` ids.
///
/// A thought is reasoning; a signature on a plain text part becomes an
/// empty reasoning part right after the text (the canonical text has no
/// signature). Code-execution parts, which only Gemini's built-in tool
/// produces, have no canonical form and are dropped.
pub(crate) fn decode_parts(parts: &[Value], calls: &mut usize, out: &mut Vec<Part>) {
    for part in parts.iter().filter_map(Value::as_object) {
        let signature = str_field(part, "thoughtSignature").map(str::to_string);
        if let Some(text) = str_field(part, "text") {
            if is_thought(part) {
                out.push(Part::Reasoning {
                    text: text.to_string(),
                    signature,
                    redacted: None,
                });
                continue;
            }
            if !text.is_empty() {
                out.push(Part::Text(text.to_string()));
            }
            if signature.is_some() {
                out.push(Part::Reasoning {
                    text: String::new(),
                    signature,
                    redacted: None,
                });
            }
        } else if let Some(call) = field(part, "functionCall").and_then(Value::as_object) {
            let id = match str_field(call, "id") {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => synthetic_call_id(*calls),
            };
            *calls += 1;
            let arguments = field(call, "args").map_or_else(|| "{}".to_string(), Value::to_string);
            out.push(Part::ToolCall {
                id,
                name: str_field(call, "name").unwrap_or_default().to_string(),
                arguments,
                signature,
            });
        } else if let Some(data) = field(part, "inlineData").and_then(Value::as_object) {
            out.push(Part::Image(Image::Base64 {
                media_type: str_field(data, "mimeType").unwrap_or_default().to_string(),
                data: str_field(data, "data").unwrap_or_default().to_string(),
            }));
        } else if let Some(file) = field(part, "fileData").and_then(Value::as_object) {
            if let Some(uri) = str_field(file, "fileUri") {
                out.push(Part::Image(Image::Url(uri.to_string())));
            }
        }
    }
}

/// The first candidate of a response or chunk; Gemini only returns more
/// when asked (`candidateCount`), which the canonical form cannot carry.
pub(crate) fn first_candidate(root: &Map<String, Value>) -> Option<&Map<String, Value>> {
    field(root, "candidates")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

pub(crate) fn candidate_parts(candidate: &Map<String, Value>) -> &[Value] {
    field(candidate, "content")
        .and_then(Value::as_object)
        .and_then(|c| field(c, "parts"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `promptFeedback.blockReason`: the prompt itself was refused.
pub(crate) fn block_reason(root: &Map<String, Value>) -> Option<&str> {
    field(root, "promptFeedback")
        .and_then(Value::as_object)
        .and_then(|f| str_field(f, "blockReason"))
}

/// The human message of a Google error object (`{"code","message","status"}`).
pub(crate) fn error_message(err: &Value) -> String {
    err.get("message")
        .and_then(Value::as_str)
        .or_else(|| err.get("status").and_then(Value::as_str))
        .map_or_else(|| err.to_string(), str::to_string)
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, DecodeError> {
    let root: Value = serde_json::from_slice(body)?;
    let root = root
        .as_object()
        .ok_or(DecodeError::Shape("is not a JSON object"))?;
    if let Some(err) = root.get("error") {
        return Err(DecodeError::Upstream(error_message(err)));
    }
    let mut resp = ChatResponse {
        id: str_field(root, "responseId")
            .unwrap_or_default()
            .to_string(),
        model: str_field(root, "modelVersion")
            .unwrap_or_default()
            .to_string(),
        usage: field(root, "usageMetadata").and_then(usage_from),
        ..ChatResponse::default()
    };
    match first_candidate(root) {
        Some(candidate) => {
            decode_parts(candidate_parts(candidate), &mut 0, &mut resp.content);
            let calls = resp
                .content
                .iter()
                .any(|p| matches!(p, Part::ToolCall { .. }));
            resp.finish = str_field(candidate, "finishReason")
                .map(|native| finish_from_native(native, calls));
        }
        None => match block_reason(root) {
            Some(reason) => resp.finish = Some(finish_from_block(reason)),
            None => return Err(DecodeError::Shape("has no candidates")),
        },
    }
    Ok(resp)
}

/// One canonical part as a Gemini response part; `None` when it has no
/// Gemini form (a tool result in a response, redacted reasoning).
pub(crate) fn encode_part(part: &Part) -> Option<Value> {
    match part {
        Part::Text(text) => Some(json!({ "text": text })),
        Part::Image(image) => Some(image_part(image)),
        Part::ToolCall {
            id,
            name,
            arguments,
            signature,
        } => Some(function_call_part(
            id,
            name,
            arguments,
            signature.as_deref(),
        )),
        Part::Reasoning {
            text, signature, ..
        } => reasoning_part(text, signature.as_deref()),
        Part::ToolResult { .. } => None,
    }
}

pub(crate) fn function_call_part(
    id: &str,
    name: &str,
    arguments: &str,
    signature: Option<&str>,
) -> Value {
    let mut call = Map::new();
    if !id.is_empty() {
        call.insert("id".into(), json!(id));
    }
    call.insert("name".into(), json!(name));
    call.insert("args".into(), args_object(arguments));
    let mut p = Map::new();
    p.insert("functionCall".into(), Value::Object(call));
    if let Some(sig) = signature {
        p.insert("thoughtSignature".into(), json!(sig));
    }
    Value::Object(p)
}

/// A `GenerateContentResponse` (whole, or one stream chunk). A chunk with
/// neither parts nor a finish carries no candidate, only usage.
pub(crate) fn response_value(
    parts: Vec<Value>,
    finish: Option<&Finish>,
    usage: Option<&Usage>,
    model: &str,
    id: &str,
) -> Value {
    let mut root = Map::new();
    if !parts.is_empty() || finish.is_some() {
        let mut candidate = Map::new();
        if !parts.is_empty() {
            candidate.insert("content".into(), json!({ "parts": parts, "role": "model" }));
        }
        if let Some(f) = finish {
            candidate.insert("finishReason".into(), json!(finish_to_native(f)));
        }
        candidate.insert("index".into(), json!(0));
        root.insert("candidates".into(), json!([candidate]));
    }
    if let Some(u) = usage {
        root.insert("usageMetadata".into(), usage_to(u));
    }
    root.insert("modelVersion".into(), json!(model));
    if !id.is_empty() {
        root.insert("responseId".into(), json!(id));
    }
    Value::Object(root)
}

pub fn encode_response(resp: &ChatResponse, model: &str) -> Vec<u8> {
    let parts: Vec<Value> = resp.content.iter().filter_map(encode_part).collect();
    let mut value = response_value(
        parts,
        resp.finish.as_ref(),
        resp.usage.as_ref(),
        model,
        &resp.id,
    );
    // A complete answer always shows its candidate, even an empty one.
    if value.get("candidates").is_none() {
        if let Some(root) = value.as_object_mut() {
            root.insert(
                "candidates".into(),
                json!([{ "content": { "parts": [], "role": "model" }, "index": 0 }]),
            );
        }
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::finish::FinishReason;

    fn decode(v: Value) -> Result<ChatResponse, DecodeError> {
        decode_response(v.to_string().as_bytes())
    }

    #[test]
    fn parts_finish_and_usage() {
        let resp = decode(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "plan", "thought": true, "thoughtSignature": "T"},
                {"text": "Hello", "thoughtSignature": "S"},
                {"functionCall": {"name": "f", "args": {"a": [1, 2]}}, "thoughtSignature": "F"},
                {"functionCall": {"name": "g", "id": "given"}},
                {"functionCall": {"name": "h"}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                {"executableCode": {"language": "PYTHON", "code": "1"}},
                {"text": ""}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                "thoughtsTokenCount": 3, "cachedContentTokenCount": 4},
            "modelVersion": "gemini-2.5-pro", "responseId": "r1"
        }))
        .unwrap_or_default();
        assert_eq!(resp.id, "r1");
        assert_eq!(resp.model, "gemini-2.5-pro");
        assert_eq!(
            resp.content,
            [
                Part::Reasoning {
                    text: "plan".into(),
                    signature: Some("T".into()),
                    redacted: None
                },
                Part::Text("Hello".into()),
                Part::Reasoning {
                    text: String::new(),
                    signature: Some("S".into()),
                    redacted: None
                },
                Part::ToolCall {
                    id: "call_0".into(),
                    name: "f".into(),
                    arguments: r#"{"a":[1,2]}"#.into(),
                    signature: Some("F".into())
                },
                Part::ToolCall {
                    id: "given".into(),
                    name: "g".into(),
                    arguments: "{}".into(),
                    signature: None
                },
                Part::ToolCall {
                    id: "call_2".into(),
                    name: "h".into(),
                    arguments: "{}".into(),
                    signature: None
                },
                Part::Image(Image::Base64 {
                    media_type: "image/png".into(),
                    data: "iVBO".into()
                }),
            ]
        );
        assert_eq!(
            resp.finish,
            Some(Finish {
                reason: FinishReason::ToolCalls,
                native: "STOP".into()
            })
        );
        assert_eq!(
            resp.usage,
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 8,
                cached_tokens: 4,
                cache_write_tokens: 0,
                reasoning_tokens: 3
            })
        );
        let back: Value =
            serde_json::from_slice(&encode_response(&resp, "label")).unwrap_or_default();
        assert_eq!(
            back,
            json!({
                "candidates": [{"content": {"parts": [
                    {"text": "plan", "thought": true, "thoughtSignature": "T"},
                    {"text": "Hello"},
                    {"text": "", "thoughtSignature": "S"},
                    {"functionCall": {"id": "call_0", "name": "f", "args": {"a": [1, 2]}},
                        "thoughtSignature": "F"},
                    {"functionCall": {"id": "given", "name": "g", "args": {}}},
                    {"functionCall": {"id": "call_2", "name": "h", "args": {}}},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}
                ], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                    "totalTokenCount": 18, "thoughtsTokenCount": 3, "cachedContentTokenCount": 4},
                "modelVersion": "label",
                "responseId": "r1"
            })
        );
    }

    #[test]
    fn finish_reasons() {
        for (native, want) in [
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("MALFORMED_FUNCTION_CALL", FinishReason::Error),
            ("OTHER", FinishReason::Stop),
        ] {
            let resp =
                decode(json!({"candidates": [{"finishReason": native}]})).unwrap_or_default();
            assert_eq!(resp.finish.map(|f| f.reason), Some(want), "{native}");
            assert!(resp.content.is_empty());
        }
    }

    #[test]
    fn blocked_prompt_and_errors() {
        let resp = decode(
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 7}}),
        )
        .unwrap_or_default();
        assert_eq!(
            resp.finish,
            Some(Finish {
                reason: FinishReason::ContentFilter,
                native: "PROHIBITED_CONTENT".into()
            })
        );
        assert_eq!(resp.usage.map(|u| u.prompt_tokens), Some(7));
        assert!(matches!(
            decode(
                json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
            ),
            Err(DecodeError::Upstream(m)) if m == "slow down"
        ));
        assert!(decode(json!({"embeddings": []})).is_err());
        assert!(decode(json!([1])).is_err());
        assert!(decode_response(b"{").is_err());
        assert!(decode_response(b"").is_err());
        // Parts of the wrong shape are skipped, not fatal.
        let odd = decode(json!({"candidates": [{"content": {"parts": [1, {"functionCall": 2}, {"text": "ok"}]}}]}))
            .unwrap_or_default();
        assert_eq!(odd.content, [Part::Text("ok".into())]);
        assert_eq!(odd.finish, None);
    }

    #[test]
    fn empty_response_still_has_a_candidate() {
        let body: Value = serde_json::from_slice(&encode_response(&ChatResponse::default(), "m"))
            .unwrap_or_default();
        assert_eq!(
            body,
            json!({"modelVersion": "m", "candidates": [{"content": {"parts": [], "role": "model"}, "index": 0}]})
        );
    }
}

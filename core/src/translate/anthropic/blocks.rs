//! Content blocks shared by requests and responses: canonical parts <->
//! Anthropic blocks.

use serde_json::{json, Map, Value};

use crate::translate::canonical::{Image, Part};

/// Tool-call arguments (JSON text) -> Anthropic's `input`, which must be a
/// JSON object. Empty arguments (a no-argument call) become `{}`; so do
/// arguments that are not a JSON object: Anthropic would reject them, and
/// wrapping the text under an invented key would show the model a call it
/// never made. The raw text is dropped.
pub(crate) fn arguments_to_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    }
}

/// An image part -> an Anthropic `image` block. A `data:` URL (how OpenAI
/// clients inline images) becomes a base64 source, which Anthropic accepts
/// where it would refuse the URL.
pub(crate) fn image_block(image: &Image) -> Value {
    let source = match image {
        Image::Base64 { media_type, data } => base64_source(media_type, data),
        Image::Url(url) => match parse_data_url(url) {
            Some((media_type, data)) => base64_source(media_type, data),
            None => json!({"type": "url", "url": url}),
        },
    };
    json!({"type": "image", "source": source})
}

fn base64_source(media_type: &str, data: &str) -> Value {
    json!({"type": "base64", "media_type": media_type, "data": data})
}

/// `data:<media type>;base64,<data>` -> (media type, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// A model-output part (text, tool call, reasoning) -> an Anthropic block;
/// `None` for parts that have no place in the model's own turn, and for
/// empty text, which Anthropic rejects.
pub(crate) fn output_block(part: &Part) -> Option<Value> {
    match part {
        Part::Text(text) if text.is_empty() => None,
        Part::Text(text) => Some(json!({"type": "text", "text": text})),
        Part::ToolCall {
            id,
            name,
            arguments,
            ..
        } => Some(json!({
            "type": "tool_use",
            "id": id,
            "name": name,
            "input": arguments_to_input(arguments),
        })),
        Part::Reasoning {
            redacted: Some(data),
            ..
        } => Some(json!({"type": "redacted_thinking", "data": data})),
        Part::Reasoning {
            text, signature, ..
        } => Some(json!({
            "type": "thinking",
            "thinking": text,
            "signature": signature.as_deref().unwrap_or(""),
        })),
        Part::Image(_) | Part::ToolResult { .. } => None,
    }
}

/// `output_block` for a response to an Anthropic client: a tool call
/// signed by its provider (Gemini) carries the signature in its id, which
/// the client echoes back on the next turn.
pub(crate) fn client_output_block(part: &Part) -> Option<Value> {
    let mut block = output_block(part)?;
    if let Part::ToolCall {
        id,
        signature: Some(sig),
        ..
    } = part
    {
        block["id"] = Value::String(crate::translate::canonical::id_with_signature(
            id,
            Some(sig),
        ));
    }
    Some(block)
}

/// An Anthropic block the model produced -> a canonical part. Server-tool
/// blocks (`server_tool_use`, `web_search_tool_result`, ...) ran inside
/// Anthropic; the client can neither run nor answer them and the canonical
/// model has no slot for them, so they are skipped (`None`), as are blocks
/// of unknown type. Text citations are dropped with them.
pub(crate) fn decode_output_block(block: &Value) -> Option<Part> {
    let text_of = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
    match block.get("type").and_then(Value::as_str)? {
        "text" => Some(Part::Text(text_of("text").to_owned())),
        "tool_use" => Some(Part::ToolCall {
            id: text_of("id").to_owned(),
            name: text_of("name").to_owned(),
            arguments: input_to_arguments(block.get("input")),
            signature: None,
        }),
        "thinking" => Some(Part::Reasoning {
            text: text_of("thinking").to_owned(),
            signature: block
                .get("signature")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            redacted: None,
        }),
        "redacted_thinking" => Some(Part::Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some(text_of("data").to_owned()),
        }),
        _ => None,
    }
}

/// Anthropic's `input` object -> compact JSON arguments text.
pub(crate) fn input_to_arguments(input: Option<&Value>) -> String {
    match input {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v) => serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_an_object() {
        assert_eq!(arguments_to_input(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(arguments_to_input(""), json!({}));
        assert_eq!(arguments_to_input("{not json"), json!({}));
        assert_eq!(arguments_to_input("[1,2]"), json!({}));
    }

    #[test]
    fn data_url_becomes_base64() {
        let b = image_block(&Image::Url("data:image/png;base64,AAAA".into()));
        assert_eq!(
            b,
            json!({"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}})
        );
        let b = image_block(&Image::Url("https://x/y.png".into()));
        assert_eq!(
            b,
            json!({"type":"image","source":{"type":"url","url":"https://x/y.png"}})
        );
        // Not base64-encoded: left as a URL for the provider to judge.
        let b = image_block(&Image::Url("data:text/plain,hi".into()));
        assert_eq!(b["source"]["type"], "url");
    }

    #[test]
    fn output_blocks_round_trip() {
        for part in [
            Part::Text("hi".into()),
            Part::ToolCall {
                id: "t1".into(),
                name: "f".into(),
                arguments: r#"{"x":[1,2]}"#.into(),
                signature: None,
            },
            Part::Reasoning {
                text: "hmm".into(),
                signature: Some("sig".into()),
                redacted: None,
            },
            Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("opaque".into()),
            },
        ] {
            let block = output_block(&part).unwrap_or_default();
            assert_eq!(decode_output_block(&block), Some(part));
        }
        assert_eq!(output_block(&Part::Text(String::new())), None);
        assert_eq!(
            decode_output_block(
                &json!({"type":"server_tool_use","id":"s","name":"web_search","input":{}})
            ),
            None
        );
        assert_eq!(decode_output_block(&json!({"no":"type"})), None);
    }
}

//! Anthropic `/v1/messages` request (from a client) -> canonical.
//!
//! Errors are Anthropic `invalid_request_error`s naming the offending field
//! path the way Anthropic does (`messages.0.role: ...`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::blocks::input_to_arguments;
use crate::api::{ApiError, Dialect};
use crate::translate::canonical::{
    ChatRequest, Image, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolChoice,
};
use crate::translate::integer;

fn invalid(message: String) -> ApiError {
    ApiError::invalid_request(Dialect::Anthropic, message)
}

/// The tool fields the canonical `Tool` holds; any other field makes the
/// client's tool list travel in `extra["tools"]` too.
const CANONICAL_TOOL_KEYS: [&str; 4] = ["name", "description", "input_schema", "type"];

pub fn decode_request(model: Option<&str>, body: &[u8]) -> Result<ChatRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(invalid("request body must be a JSON object".into()));
    };
    let mut req = ChatRequest::default();

    let body_model = obj.remove("model");
    req.model = match (model, body_model) {
        (Some(m), _) => m.to_owned(),
        (None, Some(Value::String(m))) => m,
        (None, Some(_)) => return Err(invalid("model: Input should be a valid string".into())),
        (None, None) => return Err(invalid("model: Field required".into())),
    };

    let max_tokens = obj
        .remove("max_tokens")
        .ok_or_else(|| invalid("max_tokens: Field required".into()))?;
    req.max_tokens = Some(
        integer::as_u32(&max_tokens)
            .ok_or_else(|| invalid("max_tokens: Input should be a valid integer".into()))?,
    );

    let messages = match obj.remove("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(invalid("messages: at least one message is required".into()))
        }
        Some(_) => return Err(invalid("messages: Input should be a valid list".into())),
        None => return Err(invalid("messages: Field required".into())),
    };
    req.messages = decode_messages(&messages)?;

    if let Some(system) = obj.remove("system") {
        req.system = decode_system(&system)?;
    }
    if let Some(tools) = obj.remove("tools") {
        let (tools, keep_raw) = decode_tools(&tools)?;
        req.tools = tools;
        if let Some(raw) = keep_raw {
            req.extra.insert("tools".into(), raw);
        }
    }
    if let Some(choice) = obj.remove("tool_choice") {
        let (choice, parallel) = decode_tool_choice(&choice)?;
        req.tool_choice = Some(choice);
        req.parallel_tool_calls = parallel;
    }
    req.temperature = take_number(&mut obj, "temperature")?;
    req.top_p = take_number(&mut obj, "top_p")?;
    if let Some(k) = obj.remove("top_k") {
        req.top_k = Some(
            integer::as_u32(&k)
                .ok_or_else(|| invalid("top_k: Input should be a valid integer".into()))?,
        );
    }
    if let Some(stops) = obj.remove("stop_sequences") {
        req.stop = string_list(&stops)
            .ok_or_else(|| invalid("stop_sequences: Input should be a list of strings".into()))?;
    }
    match obj.remove("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => req.stream = b,
        Some(_) => return Err(invalid("stream: Input should be a valid boolean".into())),
    }
    // Anthropic streams always carry usage.
    req.include_usage = req.stream;

    if let Some(Value::Object(mut metadata)) = obj.remove("metadata") {
        match metadata.remove("user_id") {
            Some(Value::String(user)) => req.user = Some(user),
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(invalid(
                    "metadata.user_id: Input should be a valid string".into(),
                ))
            }
        }
        if !metadata.is_empty() {
            req.extra.insert("metadata".into(), Value::Object(metadata));
        }
    }
    if let Some(thinking) = obj.remove("thinking") {
        match decode_thinking(&thinking)? {
            Some(reasoning) => req.reasoning = Some(reasoning),
            // `adaptive` and future forms: only an Anthropic upstream knows them.
            None if is_type(&thinking, "disabled") => {}
            None => {
                req.extra.insert("thinking".into(), thinking);
            }
        }
    }
    if let Some(Value::Object(mut config)) = obj.remove("output_config") {
        if let Some(format) = config.remove("format") {
            match decode_format(&format) {
                Some(rf) => req.response_format = Some(rf),
                None => {
                    config.insert("format".into(), format);
                }
            }
        }
        if !config.is_empty() {
            req.extra
                .insert("output_config".into(), Value::Object(config));
        }
    }
    // The structured-outputs beta spelled it as a top-level field.
    if let Some(format) = obj.remove("output_format") {
        match decode_format(&format) {
            Some(rf) if req.response_format.is_none() => req.response_format = Some(rf),
            _ => {
                req.extra.insert("output_format".into(), format);
            }
        }
    }

    req.extra.extend(obj);
    Ok(req)
}

fn is_type(v: &Value, ty: &str) -> bool {
    v.get("type").and_then(Value::as_str) == Some(ty)
}

fn take_number(obj: &mut Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key}: Input should be a valid number"))),
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn decode_system(system: &Value) -> Result<Vec<String>, ApiError> {
    match system {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| match (is_type(b, "text"), b.get("text")) {
                (true, Some(Value::String(t))) => Ok(t.clone()),
                _ => Err(invalid(format!("system.{i}: Input should be a text block"))),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(invalid(
            "system: Input should be a string or a list of text blocks".into(),
        )),
    }
}

fn decode_messages(messages: &[Value]) -> Result<Vec<Message>, ApiError> {
    // Tool results name only the call's id; canonical also wants the name.
    let mut call_names: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let role = match message.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(invalid(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                )))
            }
        };
        let blocks: Vec<Value> = match message.get("content") {
            Some(Value::String(s)) => vec![serde_json::json!({"type": "text", "text": s})],
            Some(Value::Array(blocks)) => blocks.clone(),
            _ => {
                return Err(invalid(format!(
                    "messages.{i}.content: Input should be a string or a list of content blocks"
                )))
            }
        };
        if role == Role::Assistant {
            let content = decode_assistant_blocks(i, &blocks, &mut call_names)?;
            if !content.is_empty() {
                out.push(Message { role, content });
            }
        } else {
            decode_user_blocks(i, &blocks, &call_names, &mut out)?;
        }
    }
    Ok(out)
}

fn str_field<'a>(block: &'a Value, key: &str, path: &str) -> Result<&'a str, ApiError> {
    block
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{path}.{key}: Field required (a string)")))
}

fn decode_assistant_blocks(
    i: usize,
    blocks: &[Value],
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Part>, ApiError> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("messages.{i}.content.{j}");
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = str_field(block, "text", &path)?;
                if !text.is_empty() {
                    parts.push(Part::Text(text.to_owned()));
                }
            }
            Some("tool_use") => {
                let (id, signature) =
                    crate::translate::canonical::split_signature(str_field(block, "id", &path)?);
                let name = str_field(block, "name", &path)?.to_owned();
                call_names.insert(id.clone(), name.clone());
                parts.push(Part::ToolCall {
                    id,
                    name,
                    arguments: input_to_arguments(block.get("input")),
                    signature,
                });
            }
            Some("thinking") => parts.push(Part::Reasoning {
                text: str_field(block, "thinking", &path)?.to_owned(),
                signature: block
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                redacted: None,
            }),
            Some("redacted_thinking") => parts.push(Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some(str_field(block, "data", &path)?.to_owned()),
            }),
            Some(_) => {
                // Server-tool history (`server_tool_use`, `*_tool_result`)
                // and other model-side blocks: Anthropic ran them itself and
                // no other provider can take them; dropped.
            }
            None => return Err(invalid(format!("{path}.type: Field required"))),
        }
    }
    Ok(parts)
}

/// A user turn -> canonical messages: each `tool_result` becomes its own
/// Tool message, the other blocks user messages, in the original order.
fn decode_user_blocks(
    i: usize,
    blocks: &[Value],
    call_names: &HashMap<String, String>,
    out: &mut Vec<Message>,
) -> Result<(), ApiError> {
    let mut pending: Vec<Part> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("messages.{i}.content.{j}");
        match block.get("type").and_then(Value::as_str) {
            Some("text") => pending.push(Part::Text(str_field(block, "text", &path)?.to_owned())),
            Some("image") => pending.push(Part::Image(decode_image(block, &path)?)),
            Some("tool_result") => {
                if !pending.is_empty() {
                    out.push(Message {
                        role: Role::User,
                        content: std::mem::take(&mut pending),
                    });
                }
                let id = crate::translate::canonical::split_signature(str_field(
                    block,
                    "tool_use_id",
                    &path,
                )?)
                .0;
                let content = tool_result_text(block.get("content"), &path)?;
                let is_error = block
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                out.push(Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult {
                        name: call_names.get(&id).cloned(),
                        id,
                        content,
                        is_error,
                    }],
                });
            }
            Some(other) => return Err(untranslatable(&path, other)),
            None => return Err(invalid(format!("{path}.type: Field required"))),
        }
    }
    if !pending.is_empty() {
        out.push(Message {
            role: Role::User,
            content: pending,
        });
    }
    Ok(())
}

/// Content the canonical model cannot carry (documents, search results,
/// file references) is refused rather than silently dropped: an answer
/// given without the client's document would look like a real one.
fn untranslatable(path: &str, what: &str) -> ApiError {
    invalid(format!(
        "{path}: content of type `{what}` cannot be translated by this gateway"
    ))
}

fn decode_image(block: &Value, path: &str) -> Result<Image, ApiError> {
    let source = block
        .get("source")
        .ok_or_else(|| invalid(format!("{path}.source: Field required")))?;
    let source_path = format!("{path}.source");
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(Image::Base64 {
            media_type: str_field(source, "media_type", &source_path)?.to_owned(),
            data: str_field(source, "data", &source_path)?.to_owned(),
        }),
        Some("url") => Ok(Image::Url(
            str_field(source, "url", &source_path)?.to_owned(),
        )),
        Some(other) => Err(untranslatable(&source_path, other)),
        None => Err(invalid(format!("{source_path}.type: Field required"))),
    }
}

/// A tool result's content: a string, or text blocks joined by newlines.
fn tool_result_text(content: Option<&Value>, path: &str) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (k, b) in blocks.iter().enumerate() {
                let block_path = format!("{path}.content.{k}");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(str_field(b, "text", &block_path)?),
                    Some(other) => return Err(untranslatable(&block_path, other)),
                    None => return Err(invalid(format!("{block_path}.type: Field required"))),
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(invalid(format!(
            "{path}.content: Input should be a string or a list of content blocks"
        ))),
    }
}

/// Returns the canonical tools and, when some tool carries what canonical
/// cannot (a server tool, `cache_control`, `strict`, `defer_loading`...),
/// the client's whole list for an Anthropic upstream.
fn decode_tools(tools: &Value) -> Result<(Vec<Tool>, Option<Value>), ApiError> {
    let list = tools
        .as_array()
        .ok_or_else(|| invalid("tools: Input should be a valid list".into()))?;
    let mut out = Vec::with_capacity(list.len());
    let mut keep_raw = false;
    for (i, tool) in list.iter().enumerate() {
        let path = format!("tools.{i}");
        let obj = tool
            .as_object()
            .ok_or_else(|| invalid(format!("{path}: Input should be an object")))?;
        let custom = match obj.get("type") {
            None | Some(Value::Null) => true,
            Some(t) => t.as_str() == Some("custom"),
        };
        if !custom {
            keep_raw = true;
            continue;
        }
        if obj
            .keys()
            .any(|k| !CANONICAL_TOOL_KEYS.contains(&k.as_str()))
        {
            keep_raw = true;
        }
        out.push(Tool {
            name: str_field(tool, "name", &path)?.to_owned(),
            description: obj
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            parameters: obj
                .get("input_schema")
                .cloned()
                .ok_or_else(|| invalid(format!("{path}.input_schema: Field required")))?,
            strict: obj.get("strict").and_then(Value::as_bool),
        });
    }
    Ok((out, keep_raw.then(|| tools.clone())))
}

fn decode_tool_choice(choice: &Value) -> Result<(ToolChoice, Option<bool>), ApiError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disable| !disable);
    let tool_choice = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => ToolChoice::Auto,
        Some("any") => ToolChoice::Required,
        Some("none") => ToolChoice::None,
        Some("tool") => ToolChoice::Named(str_field(choice, "name", "tool_choice")?.to_owned()),
        _ => {
            return Err(invalid(
                "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'".into(),
            ))
        }
    };
    Ok((tool_choice, parallel))
}

/// `{"type":"enabled","budget_tokens":N}` -> a budget; other forms -> `None`.
fn decode_thinking(thinking: &Value) -> Result<Option<Reasoning>, ApiError> {
    if !is_type(thinking, "enabled") {
        return Ok(None);
    }
    let budget = thinking
        .get("budget_tokens")
        .and_then(integer::as_u32)
        .ok_or_else(|| invalid("thinking.budget_tokens: Field required (an integer)".into()))?;
    Ok(Some(Reasoning {
        effort: None,
        budget_tokens: Some(budget),
    }))
}

/// `{"type":"json_schema","schema":{...}}` -> a canonical schema format.
/// Anthropic names no schema; the schema's `title` (or "response") stands
/// in, since other dialects require a name.
fn decode_format(format: &Value) -> Option<ResponseFormat> {
    if !is_type(format, "json_schema") {
        return None;
    }
    let schema = format.get("schema")?.clone();
    let name = schema
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("response")
        .to_owned();
    Some(ResponseFormat::JsonSchema {
        name,
        schema,
        strict: None,
    })
}

//! A client's `POST /v1/responses` body -> the canonical request.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::reasoning_carrier;
use crate::api::{ApiError, Dialect};
use crate::translate::canonical::{
    ChatRequest, Image, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolChoice,
};
use crate::translate::integer;
use crate::translate::openai::params::GATEWAY_ONLY;

fn bad(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::Responses, message)
}

/// A validated Responses request: the client's body as it came (echoed
/// back in the answer), the gateway's routing fields, and the canonical
/// form every provider is reached through.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponsesRequest {
    pub body: Map<String, Value>,
    pub model: Option<String>,
    /// Fallback candidates from `models`, in order.
    pub models: Vec<String>,
    pub canonical: ChatRequest,
}

/// Fields of the Responses API read elsewhere, or with no effect on what a
/// provider is asked: echoed in the answer, never sent upstream.
const ECHO_ONLY: &[&str] = &[
    "metadata",
    "store",
    "truncation",
    "include",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "background",
    "top_logprobs",
    "stream_options",
];

pub fn decode_request(bytes: &[u8]) -> Result<ResponsesRequest, ApiError> {
    let body = parse_body(bytes)?;
    let (model, models, _) = routing(&body)?;
    let canonical = decode_body(&body)?;
    Ok(ResponsesRequest {
        body,
        model,
        models,
        canonical,
    })
}

/// The request body as a JSON object.
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("request body must be a JSON object")),
        Err(e) => Err(bad(format!("request body is not valid JSON: {e}"))),
    }
}

/// What routing needs: `model`, the fallback `models`, and `stream`.
pub fn routing(body: &Map<String, Value>) -> Result<(Option<String>, Vec<String>, bool), ApiError> {
    let (model, models) = model_fields(body)?;
    let stream = boolean(body.get("stream").unwrap_or(&Value::Null), "stream")?;
    Ok((model, models, stream.unwrap_or(false)))
}

/// The body for a provider that takes the Responses API itself: the
/// client's, the model renamed, the gateway's own fields left out, and
/// `previous_response_id` too when `drop_previous` (its turns are in
/// `input`).
pub fn native_body(body: &Map<String, Value>, model: &str, drop_previous: bool) -> Vec<u8> {
    let mut out = Map::with_capacity(body.len());
    for (k, v) in body {
        if drop_previous && k == "previous_response_id" {
            continue;
        }
        if k == "model" {
            out.insert(k.clone(), Value::String(model.to_owned()));
        } else if !GATEWAY_ONLY.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    if !out.contains_key("model") {
        out.insert("model".into(), Value::String(model.to_owned()));
    }
    // Serializing a parsed `Value` tree cannot fail.
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

/// The canonical request a translated call is made from; an error for what
/// only the Responses API itself can serve.
pub fn decode_body(body: &Map<String, Value>) -> Result<ChatRequest, ApiError> {
    let (model, _) = model_fields(body)?;
    let mut req = ChatRequest {
        model: model.unwrap_or_default(),
        // Every stream is billed from its usage; the client always gets it
        // in `response.completed`.
        include_usage: true,
        ..ChatRequest::default()
    };
    let mut input = Value::Null;
    for (key, value) in body {
        match key.as_str() {
            "model" => {}
            "input" => input = value.clone(),
            "instructions" => {
                if let Some(text) = string(value, key)?.filter(|t| !t.is_empty()) {
                    req.system.push(text);
                }
            }
            "tools" => req.tools = tools(value)?,
            "tool_choice" => req.tool_choice = tool_choice(value)?,
            "parallel_tool_calls" => req.parallel_tool_calls = boolean(value, key)?,
            "max_output_tokens" => req.max_tokens = count(value, key)?,
            "temperature" => req.temperature = number(value, key)?,
            "top_p" => req.top_p = number(value, key)?,
            "text" => req.response_format = text_format(value)?,
            "reasoning" => req.reasoning = reasoning(value)?,
            "user" => req.user = string(value, key)?,
            "stream" => req.stream = boolean(value, key)?.unwrap_or(false),
            // With stored responses, the reference was filled in before
            // decoding (`expand`); it reaches here when nothing is kept.
            "previous_response_id" if !value.is_null() && value.as_str() != Some("") => {
                return Err(bad(
                    "`previous_response_id` needs stored responses, and this gateway keeps none (its response retention is 0 days); send the whole conversation in `input`",
                )
                .with_code("stored_responses_disabled"))
            }
            "previous_response_id" => {}
            k if GATEWAY_ONLY.contains(&k) || ECHO_ONLY.contains(&k) => {}
            "max_tool_calls" | "prompt" | "conversation" if value.is_null() => {}
            other => {
                return Err(bad(format!(
                    "`{other}` is not supported on /v1/responses by this gateway"
                ))
                .with_code("unsupported_parameter"))
            }
        }
    }
    let mut d = Decoder::default();
    match input {
        Value::String(text) => d.messages.push(Message {
            role: Role::User,
            content: vec![Part::Text(text)],
        }),
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                d.item(i, item)?;
            }
        }
        Value::Null => return Err(bad("`input` is required")),
        _ => return Err(bad("`input` must be a string or an array of items")),
    }
    req.system.extend(d.system);
    // Input of system messages only is the provider's to refuse.
    req.messages = d.messages;
    Ok(req)
}

fn model_fields(body: &Map<String, Value>) -> Result<(Option<String>, Vec<String>), ApiError> {
    let model = string(body.get("model").unwrap_or(&Value::Null), "model")?;
    let models = match body.get("models") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`models` must be an array of strings"))?,
        Some(_) => return Err(bad("`models` must be an array of strings")),
    };
    match body.get("route") {
        None | Some(Value::Null) => {}
        Some(Value::String(r)) if r == "fallback" => {}
        Some(_) => return Err(bad("`route` must be \"fallback\"")),
    }
    Ok((model, models))
}

fn boolean(v: &Value, name: &str) -> Result<Option<bool>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(bad(format!("`{name}` must be a boolean"))),
    }
}

fn number(v: &Value, name: &str) -> Result<Option<f64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(format!("`{name}` must be a number"))),
        _ => Err(bad(format!("`{name}` must be a number"))),
    }
}

fn count(v: &Value, name: &str) -> Result<Option<u32>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    integer::as_u32(v)
        .map(Some)
        .ok_or_else(|| bad(format!("`{name}` must be a non-negative integer")))
}

fn string(v: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad(format!("`{name}` must be a string"))),
    }
}

/// Function tools (flat: `{type, name, description, parameters, strict}`).
/// Built-in tools run at OpenAI only; elsewhere they are a 400 naming them.
fn tools(v: &Value) -> Result<Vec<Tool>, ApiError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad("`tools` must be an array")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(item) = item else {
                return Err(bad(format!("tools[{i}] must be an object")));
            };
            match item.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(other) => {
                    return Err(bad(format!(
                        "tools[{i}]: the built-in tool `{other}` is not available on this model's provider; only `function` tools are"
                    ))
                    .with_code("unsupported_tool"))
                }
                None => return Err(bad(format!("tools[{i}].type is required"))),
            }
            let name = match item.get("name") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(bad(format!("tools[{i}].name must be a string"))),
            };
            let description = string(
                item.get("description").unwrap_or(&Value::Null),
                "description",
            )?;
            let parameters = match item.get("parameters") {
                None | Some(Value::Null) => {
                    serde_json::json!({"type": "object", "properties": {}})
                }
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => return Err(bad(format!("tools[{i}].parameters must be an object"))),
            };
            let strict = boolean(item.get("strict").unwrap_or(&Value::Null), "strict")?;
            Ok(Tool {
                name,
                description,
                parameters,
                strict,
            })
        })
        .collect()
}

fn tool_choice(v: &Value) -> Result<Option<ToolChoice>, ApiError> {
    let choice = match v {
        Value::Null => return Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(bad("`tool_choice` must be auto, none, required or a function")),
        },
        Value::Object(o) => match (o.get("type").and_then(Value::as_str), o.get("name")) {
            (Some("function"), Some(Value::String(name))) => ToolChoice::Named(name.clone()),
            _ => {
                return Err(bad(
                    "`tool_choice` must be auto, none, required or {\"type\": \"function\", \"name\": …}",
                ))
            }
        },
        _ => return Err(bad("`tool_choice` must be a string or an object")),
    };
    Ok(Some(choice))
}

/// `text.format`: `text`, `json_object`, or `json_schema` with its fields
/// flat (`{type, name, schema, strict}`). `text.verbosity` is dropped.
fn text_format(v: &Value) -> Result<Option<ResponseFormat>, ApiError> {
    let format = match v.get("format") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(f)) => f,
        Some(_) => return Err(bad("`text.format` must be an object")),
    };
    let format = match format.get("type").and_then(Value::as_str) {
        Some("text") => ResponseFormat::Text,
        Some("json_object") => ResponseFormat::JsonObject,
        Some("json_schema") => ResponseFormat::JsonSchema {
            name: string(
                format.get("name").unwrap_or(&Value::Null),
                "text.format.name",
            )?
            .unwrap_or_else(|| "response".to_owned()),
            schema: match format.get("schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                _ => return Err(bad("`text.format.schema` must be an object")),
            },
            strict: boolean(
                format.get("strict").unwrap_or(&Value::Null),
                "text.format.strict",
            )?,
        },
        _ => {
            return Err(bad(
                "`text.format.type` must be text, json_object or json_schema",
            ))
        }
    };
    Ok(Some(format))
}

/// `reasoning.effort`; `summary` has no canonical control (providers that
/// think return what they give).
fn reasoning(v: &Value) -> Result<Option<Reasoning>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(r) => {
            let effort = string(r.get("effort").unwrap_or(&Value::Null), "reasoning.effort")?;
            Ok(effort.map(|effort| Reasoning {
                effort: Some(effort),
                budget_tokens: None,
            }))
        }
        _ => Err(bad("`reasoning` must be an object")),
    }
}

#[derive(Default)]
struct Decoder {
    system: Vec<String>,
    messages: Vec<Message>,
    /// Call id -> function name: outputs carry only the id, Gemini needs
    /// the name.
    call_names: HashMap<String, String>,
}

impl Decoder {
    fn item(&mut self, i: usize, item: Value) -> Result<(), ApiError> {
        let Value::Object(mut item) = item else {
            return Err(bad(format!("input[{i}] must be an object")));
        };
        let kind = match item.get("type") {
            None | Some(Value::Null) => "message".to_owned(),
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(bad(format!("input[{i}].type must be a string"))),
        };
        match kind.as_str() {
            "message" => self.message(i, item),
            "function_call" => {
                let call_id = text_field(&mut item, "call_id", i)?;
                let name = text_field(&mut item, "name", i)?;
                let arguments = match item.remove("arguments") {
                    Some(Value::String(a)) => a,
                    None | Some(Value::Null) => "{}".to_owned(),
                    Some(other) => other.to_string(),
                };
                let (id, signature) = crate::translate::canonical::split_signature(&call_id);
                self.call_names.insert(id.clone(), name.clone());
                self.push(
                    Role::Assistant,
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                        signature,
                    },
                );
                Ok(())
            }
            "function_call_output" => {
                let call_id = text_field(&mut item, "call_id", i)?;
                let id = crate::translate::canonical::split_signature(&call_id).0;
                let content = match item.remove("output") {
                    Some(Value::String(s)) => s,
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect(),
                    _ => return Err(bad(format!("input[{i}].output must be a string"))),
                };
                let name = self.call_names.get(&id).cloned();
                self.push(
                    Role::Tool,
                    Part::ToolResult {
                        id,
                        name,
                        content,
                        is_error: false,
                    },
                );
                Ok(())
            }
            "reasoning" => {
                if let Some(part) = reasoning_item(&item) {
                    self.push(Role::Assistant, part);
                }
                Ok(())
            }
            // The AI SDK sends these for earlier answers unless told
            // `store: false`; resolved before decoding when responses are
            // kept (`expand`).
            "item_reference" => Err(bad(format!(
                "input[{i}]: `item_reference` needs stored responses, and this gateway keeps none (its response retention is 0 days); send the items themselves (with the AI SDK: providerOptions.openai.store = false)"
            ))
            .with_code("stored_responses_disabled")),
            other => Err(bad(format!(
                "input[{i}]: item type `{other}` is not supported by this model's provider"
            ))),
        }
    }

    fn message(&mut self, i: usize, mut m: Map<String, Value>) -> Result<(), ApiError> {
        let role = match m.remove("role") {
            Some(Value::String(r)) => r,
            _ => return Err(bad(format!("input[{i}].role must be a string"))),
        };
        let content = m.remove("content").unwrap_or_default();
        let at = format!("input[{i}].content");
        match role.as_str() {
            "system" | "developer" => {
                let text = text_parts(content, &at)?
                    .into_iter()
                    .filter_map(|p| match p {
                        Part::Text(t) => Some(t),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                if !text.is_empty() {
                    self.system.push(text);
                }
            }
            "user" => {
                for part in text_parts(content, &at)? {
                    self.push(Role::User, part);
                }
            }
            "assistant" => {
                for part in text_parts(content, &at)? {
                    if matches!(&part, Part::Text(t) if !t.is_empty()) {
                        self.push(Role::Assistant, part);
                    }
                }
            }
            _ => {
                return Err(bad(format!(
                    "input[{i}].role must be one of user, assistant, system, developer"
                )))
            }
        }
        Ok(())
    }

    /// Consecutive items of one role make one turn: a model's text and its
    /// calls, or the outputs of one round of calls, belong together.
    fn push(&mut self, role: Role, part: Part) {
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.content.push(part),
            _ => self.messages.push(Message {
                role,
                content: vec![part],
            }),
        }
    }
}

fn text_field(item: &mut Map<String, Value>, key: &str, i: usize) -> Result<String, ApiError> {
    match item.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(bad(format!("input[{i}].{key} must be a string"))),
    }
}

/// A message's content: a string, or parts (`input_text`, `output_text`,
/// `refusal`, `input_image`).
fn text_parts(content: Value, at: &str) -> Result<Vec<Part>, ApiError> {
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![Part::Text(s)]),
        Value::Array(parts) => parts,
        _ => return Err(bad(format!("{at} must be a string or an array of parts"))),
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(j, part)| {
            let at = format!("{at}[{j}]");
            let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
            match kind {
                "input_text" | "output_text" | "text" => match part.get("text") {
                    Some(Value::String(t)) => Ok(Part::Text(t.clone())),
                    _ => Err(bad(format!("{at}.text must be a string"))),
                },
                "refusal" => Ok(Part::Text(
                    part.get("refusal")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                )),
                "input_image" => match part.get("image_url") {
                    Some(Value::String(url)) => Ok(Part::Image(image(url, &at)?)),
                    _ => Err(bad(format!(
                        "{at}: an image must have an `image_url` (file ids are OpenAI's own)"
                    ))),
                },
                other => Err(bad(format!(
                    "{at}: content part type `{other}` is not supported by this model's provider"
                ))),
            }
        })
        .collect()
}

/// An http(s) URL stays a URL; a `data:` URL is split into its media type
/// and base64 payload, which is what the other dialects carry.
fn image(url: &str, at: &str) -> Result<Image, ApiError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(Image::Url(url.to_owned()));
    };
    match rest
        .split_once(',')
        .and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)))
    {
        Some((media_type, data)) if !media_type.is_empty() => Ok(Image::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        }),
        _ => Err(bad(format!(
            "{at}.image_url must be an http(s) URL or a data:<media type>;base64,<data> URL"
        ))),
    }
}

/// A reasoning item handed back: its summary text, and the signature or
/// redacted data the gateway carried in `encrypted_content` when it made
/// the item. Reasoning made by OpenAI itself (its own encrypted content)
/// means nothing to another provider and is dropped.
fn reasoning_item(item: &Map<String, Value>) -> Option<Part> {
    let text: String = item
        .get("summary")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let carried = item
        .get("encrypted_content")
        .and_then(Value::as_str)
        .and_then(reasoning_carrier::decode);
    let (signature, redacted) = carried?;
    Some(Part::Reasoning {
        text,
        signature,
        redacted,
    })
}

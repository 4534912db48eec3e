//! A client's `/v1/chat/completions` body -> the canonical request, for a
//! call served by a provider of another dialect.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::api::{ApiError, Dialect};
use crate::translate::canonical::{
    ChatRequest, Image, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolChoice,
};
use crate::translate::integer;
use crate::translate::openai::params::GATEWAY_ONLY;
use crate::translate::openai::request::parse_chat;

fn bad(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::OpenAi, message)
}

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let parsed = parse_chat(body)?;
    let mut req = ChatRequest {
        model: parsed.model.unwrap_or_default(),
        stream: parsed.stream,
        include_usage: parsed.include_usage,
        ..ChatRequest::default()
    };
    let mut messages = Value::Null;
    let mut max_completion_tokens = None;
    let mut max_tokens = None;
    let mut reasoning_effort = None;
    let mut reasoning = Value::Null;
    let mut functions = Value::Null;
    let mut function_call = Value::Null;
    for (key, value) in parsed.body {
        match key.as_str() {
            // Read by `parse_chat` already.
            "model" | "stream" | "stream_options" => {}
            "messages" => messages = value,
            "tools" => req.tools = tools(value)?,
            "functions" => functions = value,
            "tool_choice" => req.tool_choice = tool_choice(value, "tool_choice")?,
            "function_call" => function_call = value,
            "parallel_tool_calls" => req.parallel_tool_calls = boolean(&value, &key)?,
            "max_completion_tokens" => max_completion_tokens = count(&value, &key)?,
            "max_tokens" => max_tokens = count(&value, &key)?,
            "temperature" => req.temperature = number(&value, &key)?,
            "top_p" => req.top_p = number(&value, &key)?,
            "top_k" => req.top_k = count(&value, &key)?,
            "stop" => req.stop = stop(value)?,
            "response_format" => req.response_format = response_format(value)?,
            "reasoning_effort" => reasoning_effort = string(value, &key)?,
            "reasoning" => reasoning = value,
            "user" => req.user = string(value, &key)?,
            k if GATEWAY_ONLY.contains(&k) => {}
            _ => {
                req.extra.insert(key, value);
            }
        }
    }
    req.max_tokens = max_completion_tokens.or(max_tokens);
    req.reasoning = reasoning_controls(reasoning_effort, reasoning)?;
    if req.tools.is_empty() {
        req.tools = legacy_functions(functions)?;
    }
    if req.tool_choice.is_none() {
        req.tool_choice = tool_choice(function_call, "function_call")?;
    }
    let (system, messages) = decode_messages(messages)?;
    req.system = system;
    req.messages = messages;
    Ok(req)
}

fn is_null(v: &Value) -> bool {
    v.is_null()
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
    if is_null(v) {
        return Ok(None);
    }
    integer::as_u32(v)
        .map(Some)
        .ok_or_else(|| bad(format!("`{name}` must be a non-negative integer")))
}

fn string(v: Value, name: &str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(bad(format!("`{name}` must be a string"))),
    }
}

fn stop(v: Value) -> Result<Vec<String>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(bad("`stop` must be a string or an array of strings")),
            })
            .collect(),
        _ => Err(bad("`stop` must be a string or an array of strings")),
    }
}

fn tools(v: Value) -> Result<Vec<Tool>, ApiError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad("`tools` must be an array")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(mut item) = item else {
                return Err(bad(format!("tools[{i}] must be an object")));
            };
            match item.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(other) => {
                    return Err(bad(format!(
                        "tools[{i}].type `{other}` is not supported by this model's provider; only `function` tools are"
                    )))
                }
                None => return Err(bad(format!("tools[{i}].type is required"))),
            }
            match item.remove("function") {
                Some(Value::Object(f)) => function(f, &format!("tools[{i}].function")),
                _ => Err(bad(format!("tools[{i}].function must be an object"))),
            }
        })
        .collect()
}

/// The legacy `functions` list, used when `tools` is absent.
fn legacy_functions(v: Value) -> Result<Vec<Tool>, ApiError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad("`functions` must be an array")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(f) => function(f, &format!("functions[{i}]")),
            _ => Err(bad(format!("functions[{i}] must be an object"))),
        })
        .collect()
}

fn function(mut f: Map<String, Value>, at: &str) -> Result<Tool, ApiError> {
    let name = match f.remove("name") {
        Some(Value::String(s)) => s,
        _ => return Err(bad(format!("{at}.name must be a string"))),
    };
    let description = string(f.remove("description").unwrap_or_default(), "description")?;
    // OpenAI treats a missing schema as "no arguments"; other dialects
    // require one, so the canonical form always has it.
    let parameters = match f.remove("parameters") {
        None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(bad(format!("{at}.parameters must be an object"))),
    };
    let strict = boolean(f.get("strict").unwrap_or(&Value::Null), "strict")?;
    Ok(Tool {
        name,
        description,
        parameters,
        strict,
    })
}

fn tool_choice(v: Value, name: &str) -> Result<Option<ToolChoice>, ApiError> {
    match &v {
        Value::Null => Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(bad(format!(
                "`{name}` must be \"auto\", \"none\", \"required\" or a named function"
            ))),
        },
        Value::Object(o) => {
            // `{type: function, function: {name}}`, or legacy `{name}`.
            let named = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str);
            match named {
                Some(n) => Ok(Some(ToolChoice::Named(n.to_owned()))),
                None => Err(bad(format!(
                    "`{name}` must name a function: {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"
                ))),
            }
        }
        _ => Err(bad(format!("`{name}` must be a string or an object"))),
    }
}

fn response_format(v: Value) -> Result<Option<ResponseFormat>, ApiError> {
    let mut o = match v {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        _ => return Err(bad("`response_format` must be an object")),
    };
    match o.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Some(ResponseFormat::Text)),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let Some(Value::Object(mut s)) = o.remove("json_schema") else {
                return Err(bad("`response_format.json_schema` must be an object"));
            };
            let name = match s.remove("name") {
                Some(Value::String(n)) => n,
                None | Some(Value::Null) => "response".to_owned(),
                Some(_) => return Err(bad("`response_format.json_schema.name` must be a string")),
            };
            let schema = match s.remove("schema") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(schema @ Value::Object(_)) => schema,
                Some(_) => {
                    return Err(bad(
                        "`response_format.json_schema.schema` must be an object",
                    ))
                }
            };
            let strict = boolean(s.get("strict").unwrap_or(&Value::Null), "strict")?;
            Ok(Some(ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            }))
        }
        _ => Err(bad(
            "`response_format.type` must be one of text, json_object, json_schema",
        )),
    }
}

/// `reasoning_effort` (OpenAI) and `reasoning: {effort, max_tokens,
/// enabled}` (OpenRouter); the object wins where both say something.
fn reasoning_controls(
    effort: Option<String>,
    reasoning: Value,
) -> Result<Option<Reasoning>, ApiError> {
    let mut out = Reasoning {
        effort,
        budget_tokens: None,
    };
    match reasoning {
        Value::Null => {}
        Value::Object(mut o) => {
            if let Some(e) = string(o.remove("effort").unwrap_or_default(), "reasoning.effort")? {
                out.effort = Some(e);
            }
            out.budget_tokens = count(
                o.get("max_tokens").unwrap_or(&Value::Null),
                "reasoning.max_tokens",
            )?;
            let enabled = boolean(
                o.get("enabled").unwrap_or(&Value::Null),
                "reasoning.enabled",
            )?;
            if enabled == Some(true) && out.effort.is_none() && out.budget_tokens.is_none() {
                // OpenRouter's default when reasoning is merely switched on.
                out.effort = Some("medium".to_owned());
            }
        }
        _ => return Err(bad("`reasoning` must be an object")),
    }
    Ok((out.effort.is_some() || out.budget_tokens.is_some()).then_some(out))
}

/// Splits the message list into system text and conversation turns.
fn decode_messages(v: Value) -> Result<(Vec<String>, Vec<Message>), ApiError> {
    // `parse_chat` checked it is a non-empty array of known roles.
    let Value::Array(items) = v else {
        return Err(bad("`messages` must be an array"));
    };
    let mut d = Decoder::default();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(bad(format!("messages[{i}] must be an object")));
        };
        d.message(i, m)?;
    }
    Ok((d.system, d.messages))
}

#[derive(Default)]
struct Decoder {
    system: Vec<String>,
    messages: Vec<Message>,
    /// Tool-call id -> function name, from assistant turns seen so far:
    /// OpenAI tool messages carry only the id, Gemini needs the name.
    call_names: HashMap<String, String>,
}

impl Decoder {
    fn message(&mut self, i: usize, mut m: Map<String, Value>) -> Result<(), ApiError> {
        let role = match m.remove("role") {
            Some(Value::String(r)) => r,
            _ => String::new(),
        };
        let content = m.remove("content").unwrap_or_default();
        match role.as_str() {
            "system" | "developer" => {
                let text = text_of(content, &format!("messages[{i}].content"), "\n")?;
                if !text.is_empty() {
                    self.system.push(text);
                }
            }
            "user" => {
                let parts = user_parts(content, i)?;
                self.messages.push(Message {
                    role: Role::User,
                    content: parts,
                });
            }
            "assistant" => self.assistant(i, m, content)?,
            "tool" => {
                let id = match m.remove("tool_call_id") {
                    Some(Value::String(id)) => super::split_tool_call_id(&id).0,
                    _ => return Err(bad(format!("messages[{i}].tool_call_id must be a string"))),
                };
                let name = self.call_names.get(&id).cloned();
                let content = text_of(content, &format!("messages[{i}].content"), "")?;
                self.tool_result(id, name, content);
            }
            // Legacy function results name the function instead of a call id.
            "function" => {
                let name = match m.remove("name") {
                    Some(Value::String(n)) => n,
                    _ => return Err(bad(format!("messages[{i}].name must be a string"))),
                };
                let id = self
                    .latest_call_named(&name)
                    .unwrap_or_else(|| name.clone());
                let content = text_of(content, &format!("messages[{i}].content"), "")?;
                self.tool_result(id, Some(name), content);
            }
            _ => {
                return Err(bad(format!(
                    "messages[{i}].role must be one of system, developer, user, assistant, tool"
                )))
            }
        }
        Ok(())
    }

    fn assistant(
        &mut self,
        i: usize,
        mut m: Map<String, Value>,
        content: Value,
    ) -> Result<(), ApiError> {
        let mut parts = Vec::new();
        if let Some(r) = reasoning_part(&mut m, i)? {
            parts.push(r);
        }
        let text = text_of(content, &format!("messages[{i}].content"), "")?;
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        match m.remove("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) => {
                for (j, call) in calls.into_iter().enumerate() {
                    let at = format!("messages[{i}].tool_calls[{j}]");
                    let Value::Object(mut call) = call else {
                        return Err(bad(format!("{at} must be an object")));
                    };
                    let id = match call.remove("id") {
                        Some(Value::String(id)) => id,
                        _ => return Err(bad(format!("{at}.id must be a string"))),
                    };
                    let Some(Value::Object(f)) = call.remove("function") else {
                        return Err(bad(format!("{at}.function must be an object")));
                    };
                    parts.push(self.tool_call(id, f, &at)?);
                }
            }
            Some(_) => return Err(bad(format!("messages[{i}].tool_calls must be an array"))),
        }
        match m.remove("function_call") {
            None | Some(Value::Null) => {}
            Some(Value::Object(f)) => {
                // Legacy calls have no id; the matching `function` message
                // finds this one by name.
                let at = format!("messages[{i}].function_call");
                parts.push(self.tool_call(format!("call_{i}"), f, &at)?);
            }
            Some(_) => {
                return Err(bad(format!(
                    "messages[{i}].function_call must be an object"
                )))
            }
        }
        // An empty assistant turn says nothing, and other dialects reject
        // empty content.
        if !parts.is_empty() {
            self.messages.push(Message {
                role: Role::Assistant,
                content: parts,
            });
        }
        Ok(())
    }

    fn tool_call(
        &mut self,
        id: String,
        mut f: Map<String, Value>,
        at: &str,
    ) -> Result<Part, ApiError> {
        let name = match f.remove("name") {
            Some(Value::String(n)) => n,
            _ => return Err(bad(format!("{at}.name must be a string"))),
        };
        let arguments = match f.remove("arguments") {
            Some(Value::String(a)) => a,
            None | Some(Value::Null) => "{}".to_owned(),
            // Some clients send the arguments as an object, not JSON text.
            Some(other) => other.to_string(),
        };
        let (id, signature) = super::split_tool_call_id(&id);
        self.call_names.insert(id.clone(), name.clone());
        Ok(Part::ToolCall {
            id,
            name,
            arguments,
            signature,
        })
    }

    fn latest_call_named(&self, name: &str) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .flat_map(|m| m.content.iter().rev())
            .find_map(|p| match p {
                Part::ToolCall { id, name: n, .. } if n == name => Some(id.clone()),
                _ => None,
            })
    }

    /// Consecutive tool messages answer one assistant turn: they become
    /// one canonical tool message, as other dialects need them together.
    fn tool_result(&mut self, id: String, name: Option<String>, content: String) {
        let part = Part::ToolResult {
            id,
            name,
            content,
            is_error: false,
        };
        match self.messages.last_mut() {
            Some(last) if last.role == Role::Tool => last.content.push(part),
            _ => self.messages.push(Message {
                role: Role::Tool,
                content: vec![part],
            }),
        }
    }
}

/// An assistant turn's reasoning: the `reasoning` / `reasoning_content`
/// text, with the signature (or redacted data) from OpenRouter's
/// `reasoning_details`, which lets providers verify it on the next turn.
fn reasoning_part(m: &mut Map<String, Value>, i: usize) -> Result<Option<Part>, ApiError> {
    let mut text = None;
    for key in ["reasoning_content", "reasoning"] {
        match m.remove(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if text.is_none() && !s.is_empty() {
                    text = Some(s);
                }
            }
            Some(_) => return Err(bad(format!("messages[{i}].{key} must be a string"))),
        }
    }
    let mut signature = None;
    let mut redacted = None;
    let mut detail_text = String::new();
    if let Some(Value::Array(details)) = m.remove("reasoning_details") {
        for d in &details {
            match d.get("type").and_then(Value::as_str) {
                Some("reasoning.text") => {
                    if let Some(t) = d.get("text").and_then(Value::as_str) {
                        detail_text.push_str(t);
                    }
                    if let Some(s) = d.get("signature").and_then(Value::as_str) {
                        signature = Some(s.to_owned());
                    }
                }
                Some("reasoning.encrypted") => {
                    if let Some(data) = d.get("data").and_then(Value::as_str) {
                        redacted = Some(data.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    let text = match text {
        Some(t) => t,
        None => detail_text,
    };
    if text.is_empty() && signature.is_none() && redacted.is_none() {
        return Ok(None);
    }
    Ok(Some(Part::Reasoning {
        text,
        signature,
        redacted,
    }))
}

/// A content that must be text: a string, or an array of text parts
/// joined with `sep`. `null` is empty.
fn text_of(v: Value, at: &str, sep: &str) -> Result<String, ApiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s),
        Value::Array(parts) => {
            let mut out = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str);
                let key = match kind {
                    Some("text") => "text",
                    // An assistant's refusal, sent back as history.
                    Some("refusal") => "refusal",
                    _ => return Err(bad(format!("{at}[{j}] must be a text part"))),
                };
                let Some(text) = part.get(key).and_then(Value::as_str) else {
                    return Err(bad(format!("{at}[{j}].{key} must be a string")));
                };
                if !out.is_empty() {
                    out.push_str(sep);
                }
                out.push_str(text);
            }
            Ok(out)
        }
        _ => Err(bad(format!("{at} must be a string or an array of parts"))),
    }
}

fn user_parts(v: Value, i: usize) -> Result<Vec<Part>, ApiError> {
    match v {
        Value::String(s) => Ok(vec![Part::Text(s)]),
        Value::Array(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| user_part(part, &format!("messages[{i}].content[{j}]")))
            .collect(),
        Value::Null => Err(bad(format!("messages[{i}].content is required"))),
        _ => Err(bad(format!(
            "messages[{i}].content must be a string or an array of parts"
        ))),
    }
}

fn user_part(part: Value, at: &str) -> Result<Part, ApiError> {
    let Value::Object(mut part) = part else {
        return Err(bad(format!("{at} must be an object")));
    };
    let kind = part
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match kind.as_str() {
        "text" => match part.remove("text") {
            Some(Value::String(t)) => Ok(Part::Text(t)),
            _ => Err(bad(format!("{at}.text must be a string"))),
        },
        "image_url" => {
            let url = match part.remove("image_url") {
                Some(Value::Object(mut o)) => o.remove("url"),
                // A bare string, as some clients send it.
                Some(s @ Value::String(_)) => Some(s),
                _ => None,
            };
            match url {
                Some(Value::String(url)) => image(url, at).map(Part::Image),
                _ => Err(bad(format!("{at}.image_url.url must be a string"))),
            }
        }
        "" => Err(bad(format!("{at}.type is required"))),
        other => Err(bad(format!(
            "{at}: content part type `{other}` is not supported by this model's provider"
        ))),
    }
}

/// An http(s) URL stays a URL; a `data:` URL is split into its media type
/// and base64 payload, which is what the other dialects carry.
fn image(url: String, at: &str) -> Result<Image, ApiError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(Image::Url(url));
    };
    let parsed = rest
        .split_once(',')
        .and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)));
    match parsed {
        Some((media_type, data)) if !media_type.is_empty() => Ok(Image::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        }),
        _ => Err(bad(format!(
            "{at}.image_url.url must be an http(s) URL or a data:<media type>;base64,<data> URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: Value) -> Result<ChatRequest, ApiError> {
        decode_request(body.to_string().as_bytes())
    }

    #[test]
    fn data_urls_split_and_others_stay_urls() {
        assert_eq!(
            image("data:image/png;base64,AAAA".into(), "x").ok(),
            Some(Image::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            })
        );
        assert_eq!(
            image("https://x/y.png".into(), "x").ok(),
            Some(Image::Url("https://x/y.png".into()))
        );
        assert!(image("data:image/png,AAAA".into(), "x").is_err());
        assert!(image("data:;base64,AAAA".into(), "x").is_err());
    }

    #[test]
    fn gateway_fields_are_dropped_and_unknown_ones_kept() {
        let req = decode(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "models": ["a", "b"], "route": "fallback", "provider": {"order": ["x"]},
            "seed": 7, "logprobs": true,
        }))
        .unwrap_or_default();
        let keys: Vec<&str> = req.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, ["seed", "logprobs"]);
    }
}

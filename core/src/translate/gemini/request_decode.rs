//! A Gemini client's `generateContent` body -> canonical request.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::schema::openapi_to_json_schema;
use super::wire::{camel_case, field, is_thought, str_field, synthetic_call_id};
use crate::api::{ApiError, Dialect};
use crate::translate::canonical::{
    ChatRequest, Image, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolChoice,
};
use crate::translate::integer;

/// Top-level fields translated here; any other goes to `extra`.
const KNOWN: [&str; 6] = [
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "model",
];

fn bad(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::Google, message)
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| bad(format!("{what} must be an object")))
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, ApiError> {
    v.as_array()
        .ok_or_else(|| bad(format!("{what} must be an array")))
}

fn string<'a>(v: &'a Value, what: &str) -> Result<&'a str, ApiError> {
    v.as_str()
        .ok_or_else(|| bad(format!("{what} must be a string")))
}

fn opt_f64(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    field(obj, key)
        .map(|v| {
            v.as_f64()
                .ok_or_else(|| bad(format!("generationConfig.{key} must be a number")))
        })
        .transpose()
}

/// Integer fields arrive as JSON numbers, sometimes written `40.0`.
fn opt_u32(obj: &Map<String, Value>, key: &str) -> Result<Option<u32>, ApiError> {
    field(obj, key)
        .map(|v| {
            integer::as_u32(v).ok_or_else(|| bad(format!("{key} must be a non-negative integer")))
        })
        .transpose()
}

/// `model` comes from the URL path (`/v1beta/models/{model}:generateContent`).
/// `stream` is the route's business (`streamGenerateContent`), so it is left
/// false here.
pub fn decode_request(model: Option<&str>, body: &[u8]) -> Result<ChatRequest, ApiError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let root = object(&root, "request body")?;

    let model = match model {
        Some(m) => m,
        None => str_field(root, "model").ok_or_else(|| bad("model is required"))?,
    };
    let mut req = ChatRequest {
        model: model.strip_prefix("models/").unwrap_or(model).to_string(),
        ..ChatRequest::default()
    };

    let contents = field(root, "contents").ok_or_else(|| bad("contents is required"))?;
    let contents = array(contents, "contents")?;
    if contents.is_empty() {
        return Err(bad("contents must not be empty"));
    }
    req.messages = Messages::default().decode(contents)?;

    if let Some(si) = field(root, "systemInstruction") {
        req.system = system(si)?;
    }
    if let Some(tools) = field(root, "tools") {
        let (decls, builtin) = function_declarations(tools)?;
        req.tools = decls;
        if !builtin.is_empty() {
            req.extra.insert("tools".into(), Value::Array(builtin));
        }
    }
    if let Some(tc) = field(root, "toolConfig") {
        let (choice, rest) = tool_choice(tc)?;
        req.tool_choice = choice;
        if !rest.is_empty() {
            req.extra.insert("toolConfig".into(), Value::Object(rest));
        }
    }
    if let Some(gc) = field(root, "generationConfig") {
        let rest = generation_config(gc, &mut req)?;
        if !rest.is_empty() {
            req.extra
                .insert("generationConfig".into(), Value::Object(rest));
        }
    }
    for (key, value) in root {
        let name = camel_case(key);
        if !KNOWN.contains(&name.as_str()) && !value.is_null() {
            req.extra.insert(name, value.clone());
        }
    }
    Ok(req)
}

fn system(si: &Value) -> Result<Vec<String>, ApiError> {
    // The SDKs also accept a bare string and send it as a text part; take
    // either shape.
    if let Some(text) = si.as_str() {
        return Ok(vec![text.to_string()]);
    }
    let si = object(si, "systemInstruction")?;
    let Some(parts) = field(si, "parts") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in array(parts, "systemInstruction.parts")? {
        let part = object(part, "systemInstruction part")?;
        let text =
            field(part, "text").ok_or_else(|| bad("systemInstruction parts must be text"))?;
        out.push(string(text, "systemInstruction text")?.to_string());
    }
    Ok(out)
}

/// Walks `contents`, giving function calls ids and results their calls' ids.
#[derive(Default)]
struct Messages {
    out: Vec<Message>,
    /// Calls without a result yet, oldest first: a result with no id answers
    /// the oldest pending call of its name (Gemini answers in call order).
    pending: Vec<(String, String)>,
    /// Function calls seen so far, for `call_<n>` ids.
    calls: usize,
}

impl Messages {
    fn decode(mut self, contents: &[Value]) -> Result<Vec<Message>, ApiError> {
        for (i, content) in contents.iter().enumerate() {
            let content = object(content, "each contents entry")?;
            let role = match str_field(content, "role") {
                None | Some("user") => Role::User,
                Some("model") => Role::Assistant,
                // The v1beta "function" role of early SDKs carried results.
                Some("function") => Role::User,
                Some(other) => {
                    return Err(bad(format!(
                        "contents[{i}].role must be \"user\" or \"model\", not {other:?}"
                    )))
                }
            };
            let parts = field(content, "parts")
                .ok_or_else(|| bad(format!("contents[{i}].parts is required")))?;
            for part in array(parts, "parts")? {
                self.part(role, object(part, "each part")?)?;
            }
        }
        Ok(self.out)
    }

    /// Appends to the last message when it has this role, else starts one.
    /// Results go to their own Tool-role messages, so a user turn mixing
    /// results and text splits in order.
    fn push(&mut self, role: Role, part: Part) {
        match self.out.last_mut() {
            Some(last) if last.role == role => last.content.push(part),
            _ => self.out.push(Message {
                role,
                content: vec![part],
            }),
        }
    }

    fn part(&mut self, role: Role, part: &Map<String, Value>) -> Result<(), ApiError> {
        let signature = str_field(part, "thoughtSignature").map(str::to_string);
        if let Some(text) = field(part, "text") {
            let text = string(text, "text")?.to_string();
            if is_thought(part) {
                self.push(
                    role,
                    Part::Reasoning {
                        text,
                        signature,
                        redacted: None,
                    },
                );
            } else {
                if !text.is_empty() {
                    self.push(role, Part::Text(text));
                }
                // A signature on a plain text part rides along as an empty
                // reasoning part right after it.
                if signature.is_some() {
                    self.push(
                        role,
                        Part::Reasoning {
                            text: String::new(),
                            signature,
                            redacted: None,
                        },
                    );
                }
            }
        } else if let Some(data) = field(part, "inlineData") {
            let data = object(data, "inlineData")?;
            let media_type = str_field(data, "mimeType")
                .ok_or_else(|| bad("inlineData.mimeType is required"))?;
            let bytes =
                str_field(data, "data").ok_or_else(|| bad("inlineData.data is required"))?;
            self.push(
                role,
                Part::Image(Image::Base64 {
                    media_type: media_type.to_string(),
                    data: bytes.to_string(),
                }),
            );
        } else if let Some(file) = field(part, "fileData") {
            let file = object(file, "fileData")?;
            let uri =
                str_field(file, "fileUri").ok_or_else(|| bad("fileData.fileUri is required"))?;
            self.push(role, Part::Image(Image::Url(uri.to_string())));
        } else if let Some(call) = field(part, "functionCall") {
            let call = object(call, "functionCall")?;
            let name = str_field(call, "name")
                .ok_or_else(|| bad("functionCall.name is required"))?
                .to_string();
            let id = match str_field(call, "id") {
                Some(id) => id.to_string(),
                None => synthetic_call_id(self.calls),
            };
            self.calls += 1;
            let args = field(call, "args")
                .cloned()
                .unwrap_or_else(|| Map::new().into());
            self.pending.push((name.clone(), id.clone()));
            self.push(
                role,
                Part::ToolCall {
                    id,
                    name,
                    arguments: args.to_string(),
                    signature,
                },
            );
        } else if let Some(resp) = field(part, "functionResponse") {
            let resp = object(resp, "functionResponse")?;
            let name = str_field(resp, "name")
                .ok_or_else(|| bad("functionResponse.name is required"))?
                .to_string();
            let pending = match str_field(resp, "id") {
                Some(id) => self.pending.iter().position(|(_, p)| p == id),
                None => self.pending.iter().position(|(n, _)| *n == name),
            };
            let matched = pending.map(|i| self.pending.remove(i).1);
            let id = str_field(resp, "id")
                .map(str::to_string)
                .or(matched)
                .unwrap_or_else(|| name.clone());
            let content = field(resp, "response")
                .cloned()
                .unwrap_or_else(|| Map::new().into());
            let (content, is_error) = unwrap_result(content);
            self.push(
                Role::Tool,
                Part::ToolResult {
                    id,
                    name: Some(name),
                    content,
                    is_error,
                },
            );
        } else {
            let kind = part.keys().next().map_or("empty", String::as_str);
            return Err(bad(format!("unsupported part kind: {kind}")));
        }
        Ok(())
    }
}

/// Gemini wraps a tool's answer as `{"output": …}`, or `{"error": …}` for
/// a failure (the google-genai SDK's documented convention; `result` is
/// accepted too). Such a wrapper is unwrapped: other dialects carry the
/// answer itself, with the failure as a flag. Any other object is the
/// answer itself, as JSON text.
fn unwrap_result(response: Value) -> (String, bool) {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Value::Object(map) = &response {
        if map.len() == 1 {
            if let Some(v) = map.get("output").or_else(|| map.get("result")) {
                return (text(v), false);
            }
            if let Some(v) = map.get("error") {
                return (text(v), true);
            }
        }
    }
    (response.to_string(), false)
}

/// `tools` -> function declarations, and Gemini's built-in tools
/// (googleSearch, codeExecution, urlContext...) kept aside for `extra`.
fn function_declarations(tools: &Value) -> Result<(Vec<Tool>, Vec<Value>), ApiError> {
    let mut decls = Vec::new();
    let mut builtin = Vec::new();
    for tool in array(tools, "tools")? {
        let obj = object(tool, "each tool")?;
        let Some(fds) = field(obj, "functionDeclarations") else {
            builtin.push(tool.clone());
            continue;
        };
        for fd in array(fds, "functionDeclarations")? {
            let fd = object(fd, "each function declaration")?;
            let name = str_field(fd, "name")
                .ok_or_else(|| bad("functionDeclarations[].name is required"))?;
            let parameters = if let Some(js) = field(fd, "parametersJsonSchema") {
                js.clone()
            } else if let Some(oa) = field(fd, "parameters") {
                openapi_to_json_schema(oa)
            } else {
                // A function without parameters; other dialects want a schema.
                serde_json::json!({"type": "object", "properties": {}})
            };
            decls.push(Tool {
                name: name.to_string(),
                description: str_field(fd, "description").map(str::to_string),
                parameters,
                strict: None,
            });
        }
    }
    Ok((decls, builtin))
}

/// `toolConfig.functionCallingConfig` -> tool choice; the rest of
/// `toolConfig` (retrievalConfig...) is returned for `extra`. `ANY` with
/// several allowed names cannot be said canonically and becomes Required.
fn tool_choice(tc: &Value) -> Result<(Option<ToolChoice>, Map<String, Value>), ApiError> {
    let tc = object(tc, "toolConfig")?;
    let mut rest = Map::new();
    let mut choice = None;
    for (key, value) in tc {
        if camel_case(key) != "functionCallingConfig" {
            rest.insert(camel_case(key), value.clone());
            continue;
        }
        let fc = object(value, "toolConfig.functionCallingConfig")?;
        let allowed: Vec<&str> = match field(fc, "allowedFunctionNames") {
            Some(v) => array(v, "allowedFunctionNames")?
                .iter()
                .filter_map(Value::as_str)
                .collect(),
            None => Vec::new(),
        };
        choice = match str_field(fc, "mode") {
            Some("AUTO") | Some("VALIDATED") => Some(ToolChoice::Auto),
            Some("NONE") => Some(ToolChoice::None),
            Some("ANY") => Some(match allowed.as_slice() {
                [one] => ToolChoice::Named(one.to_string()),
                _ => ToolChoice::Required,
            }),
            None | Some("MODE_UNSPECIFIED") => None,
            Some(other) => {
                return Err(bad(format!(
                    "functionCallingConfig.mode {other:?} is not AUTO, ANY, NONE or VALIDATED"
                )))
            }
        };
    }
    Ok((choice, rest))
}

/// Reads the canonical generation settings; returns the others (camelCase)
/// for `extra`.
fn generation_config(gc: &Value, req: &mut ChatRequest) -> Result<Map<String, Value>, ApiError> {
    let gc = object(gc, "generationConfig")?;
    req.temperature = opt_f64(gc, "temperature")?;
    req.top_p = opt_f64(gc, "topP")?;
    req.top_k = opt_u32(gc, "topK")?;
    req.max_tokens = opt_u32(gc, "maxOutputTokens")?;
    if let Some(stop) = field(gc, "stopSequences") {
        req.stop = array(stop, "stopSequences")?
            .iter()
            .map(|s| string(s, "stopSequences[]").map(str::to_string))
            .collect::<Result<_, _>>()?;
    }
    let schema = if let Some(js) = field(gc, "responseJsonSchema") {
        Some(js.clone())
    } else {
        field(gc, "responseSchema").map(openapi_to_json_schema)
    };
    let mime = str_field(gc, "responseMimeType");
    req.response_format = match (mime, schema) {
        (_, Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: schema
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_string(),
            schema,
            strict: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        _ => None,
    };

    let mut rest = Map::new();
    if let Some(tc) = field(gc, "thinkingConfig") {
        let tc = object(tc, "thinkingConfig")?;
        let mut reasoning = Reasoning::default();
        let mut leftover = Map::new();
        for (key, value) in tc {
            match camel_case(key).as_str() {
                "thinkingBudget" => {
                    let budget = integer::as_i64(value)
                        .ok_or_else(|| bad("thinkingBudget must be an integer"))?;
                    // -1 is Gemini's "dynamic": no fixed budget.
                    reasoning.budget_tokens = u32::try_from(budget).ok();
                }
                "thinkingLevel" => {
                    reasoning.effort = Some(string(value, "thinkingLevel")?.to_ascii_lowercase());
                }
                "includeThoughts" => {}
                other => {
                    leftover.insert(other.to_string(), value.clone());
                }
            }
        }
        req.reasoning = Some(reasoning);
        if !leftover.is_empty() {
            rest.insert("thinkingConfig".into(), Value::Object(leftover));
        }
    }
    const READ: [&str; 10] = [
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "thinkingConfig",
        // Several candidates cannot be carried by the canonical form.
        "candidateCount",
    ];
    for (key, value) in gc {
        let name = camel_case(key);
        if !READ.contains(&name.as_str()) && !value.is_null() {
            rest.insert(name, value.clone());
        }
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorKind;
    use serde_json::json;

    fn decode(body: Value) -> Result<ChatRequest, ApiError> {
        decode_request(Some("gemini-2.5-flash"), body.to_string().as_bytes())
    }

    #[test]
    fn malformed_bodies_are_google_400s() {
        for body in [
            json!([]),
            json!({}),
            json!({"contents": []}),
            json!({"contents": {}}),
            json!({"contents": [1]}),
            json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}),
            json!({"contents": [{"role": "user"}]}),
            json!({"contents": [{"parts": [{"text": 1}]}]}),
            json!({"contents": [{"parts": [{"executableCode": {"code": "x"}}]}]}),
            json!({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}),
            json!({"contents": [{"parts": [{"inlineData": {"data": "x"}}]}]}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"topK": -1}}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "tools": {}}),
            json!({"contents": [{"parts": [{"text": "x"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}),
        ] {
            let err = decode(body.clone()).err();
            let err = err.unwrap_or_else(|| panic!("accepted {body}"));
            assert_eq!(err.kind, ErrorKind::InvalidRequest, "{body}");
            let rendered: Value = serde_json::from_slice(&err.body()).unwrap_or(Value::Null);
            assert_eq!(rendered["error"]["code"], 400);
            assert_eq!(rendered["error"]["status"], "INVALID_ARGUMENT");
        }
        assert!(decode_request(Some("m"), b"{not json").is_err());
        let no_model = decode_request(None, br#"{"contents":[{"parts":[{"text":"x"}]}]}"#);
        assert!(no_model.is_err());
    }

    #[test]
    fn ids_are_synthesized_and_matched_by_name() {
        let req = decode(json!({"contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "s1"},
                {"functionCall": {"name": "b"}},
                {"functionCall": {"name": "a", "args": {"x": 2}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "a", "response": {"r": 1}}},
                {"functionResponse": {"name": "a", "response": {"r": 2}}},
                {"functionResponse": {"name": "b", "response": {"r": 3}}},
                {"functionResponse": {"name": "c", "response": {}}},
                {"text": "thanks"}
            ]}
        ]}))
        .unwrap_or_default();
        let ids: Vec<(&str, &str)> = req
            .messages
            .iter()
            .flat_map(|m| m.content.iter())
            .filter_map(|p| match p {
                Part::ToolCall { id, name, .. } => Some((id.as_str(), name.as_str())),
                Part::ToolResult { id, .. } => Some((id.as_str(), "result")),
                _ => None,
            })
            .collect();
        assert_eq!(
            ids,
            [
                ("call_0", "a"),
                ("call_1", "b"),
                ("call_2", "a"),
                ("call_0", "result"),
                ("call_2", "result"),
                ("call_1", "result"),
                ("c", "result"),
            ]
        );
        let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::User]);
        assert_eq!(
            req.messages[1].content[0],
            Part::ToolCall {
                id: "call_0".into(),
                name: "a".into(),
                arguments: r#"{"x":1}"#.into(),
                signature: Some("s1".into()),
            }
        );
        assert_eq!(
            req.messages[1].content[1],
            Part::ToolCall {
                id: "call_1".into(),
                name: "b".into(),
                arguments: "{}".into(),
                signature: None,
            }
        );
    }

    #[test]
    fn settings_snake_case_and_extras() {
        let req = decode(json!({
            "contents": [{"parts": [
                {"text": "hi"},
                {"inline_data": {"mime_type": "image/png", "data": "iVBO"}},
                {"file_data": {"file_uri": "gs://b/x.jpg", "mime_type": "image/jpeg"}},
                {"text": "sig", "thoughtSignature": "S"},
                {"text": "hm", "thought": true}
            ]}],
            "system_instruction": {"parts": [{"text": "sys"}]},
            "safety_settings": [{"category": "C", "threshold": "BLOCK_NONE"}],
            "cachedContent": "cachedContents/1",
            "tools": [
                {"googleSearch": {}},
                {"function_declarations": [
                    {"name": "f", "description": "d", "parameters": {"type": "OBJECT",
                        "properties": {"a": {"type": "STRING"}}}},
                    {"name": "g", "parameters_json_schema": {"type": "object",
                        "additionalProperties": false}},
                    {"name": "h", "description": null}
                ]}
            ],
            "tool_config": {"function_calling_config": {"mode": "ANY",
                "allowed_function_names": ["f", "g"]}, "retrievalConfig": {"x": 1}},
            "generation_config": {
                "temperature": 0.2, "top_p": 0.8, "top_k": 40.0, "max_output_tokens": 99,
                "stop_sequences": ["x"], "candidate_count": 2, "seed": 5,
                "response_mime_type": "application/json",
                "response_schema": {"type": "OBJECT", "title": "T",
                    "properties": {"n": {"type": "INTEGER"}}},
                "thinking_config": {"thinking_budget": -1, "include_thoughts": true,
                    "thinkingLevel": "HIGH", "futureKnob": 1}
            }
        }))
        .unwrap_or_default();
        assert_eq!(req.model, "gemini-2.5-flash");
        assert_eq!(req.system, ["sys"]);
        assert_eq!(
            req.messages,
            [Message {
                role: Role::User,
                content: vec![
                    Part::Text("hi".into()),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBO".into()
                    }),
                    Part::Image(Image::Url("gs://b/x.jpg".into())),
                    Part::Text("sig".into()),
                    Part::Reasoning {
                        text: String::new(),
                        signature: Some("S".into()),
                        redacted: None
                    },
                    Part::Reasoning {
                        text: "hm".into(),
                        signature: None,
                        redacted: None
                    },
                ]
            }]
        );
        assert_eq!(req.tools.len(), 3);
        assert_eq!(
            req.tools[0].parameters,
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
        assert_eq!(
            req.tools[1].parameters,
            json!({"type": "object", "additionalProperties": false})
        );
        assert_eq!(req.tools[2].description, None);
        assert_eq!(req.tool_choice, Some(ToolChoice::Required));
        assert_eq!(req.temperature, Some(0.2));
        assert_eq!(req.top_p, Some(0.8));
        assert_eq!(req.top_k, Some(40));
        assert_eq!(req.max_tokens, Some(99));
        assert_eq!(req.stop, ["x"]);
        assert_eq!(
            req.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "T".into(),
                schema: json!({"type": "object", "title": "T",
                    "properties": {"n": {"type": "integer"}}}),
                strict: None
            })
        );
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                effort: Some("high".into()),
                budget_tokens: None
            })
        );
        assert_eq!(
            Value::Object(req.extra),
            json!({
                "tools": [{"googleSearch": {}}],
                "toolConfig": {"retrievalConfig": {"x": 1}},
                "generationConfig": {"thinkingConfig": {"futureKnob": 1}, "seed": 5},
                "safetySettings": [{"category": "C", "threshold": "BLOCK_NONE"}],
                "cachedContent": "cachedContents/1"
            })
        );
    }

    #[test]
    fn modes_and_formats() {
        let base = |gc: Value, tc: Value| {
            decode(json!({"contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": gc, "toolConfig": tc}))
            .unwrap_or_default()
        };
        let r = base(
            json!({"responseMimeType": "application/json"}),
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}),
        );
        assert_eq!(r.response_format, Some(ResponseFormat::JsonObject));
        assert_eq!(r.tool_choice, Some(ToolChoice::Named("f".into())));
        let r = base(
            json!({"responseMimeType": "text/plain", "thinkingConfig": {"thinkingBudget": 0}}),
            json!({"functionCallingConfig": {"mode": "NONE"}}),
        );
        assert_eq!(r.response_format, Some(ResponseFormat::Text));
        assert_eq!(r.tool_choice, Some(ToolChoice::None));
        assert_eq!(
            r.reasoning,
            Some(Reasoning {
                effort: None,
                budget_tokens: Some(0)
            })
        );
        let r = base(
            json!({}),
            json!({"functionCallingConfig": {"mode": "AUTO"}}),
        );
        assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
        assert_eq!(r.reasoning, None);
        assert!(r.extra.is_empty());
    }
}

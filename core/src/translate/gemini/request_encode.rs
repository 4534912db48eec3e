//! Canonical request -> `generateContent` body, and the upstream path.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::response::function_call_part;
use super::wire::image_part;
use crate::translate::canonical::{ChatRequest, Message, Part, ResponseFormat, Role, ToolChoice};

/// Thinking budgets for OpenAI-style effort words, inside every 2.5/3
/// model's range: `low`/`medium`/`high` are 1K/8K/24K tokens (24K is Flash's
/// ceiling), `minimal` the smallest budget Pro accepts, `none` off. Any
/// other word asks for the model's dynamic budget (-1).
fn budget_for_effort(effort: &str) -> i64 {
    match effort.to_ascii_lowercase().as_str() {
        "none" => 0,
        "minimal" => 512,
        "low" => 1024,
        "medium" => 8192,
        "high" => 24576,
        _ => -1,
    }
}

/// Top-level `GenerateContentRequest` fields a Gemini client may have sent
/// that have no canonical meaning; they reach the upstream through `extra`.
/// Only Gemini's own names pass, so another dialect's leftovers never do.
const PASS_THROUGH: [&str; 3] = ["safetySettings", "cachedContent", "labels"];

/// Upstream path for a model, under the host root (the google-genai SDK's
/// base URL convention). A `models/` prefix is tolerated, not doubled.
pub fn upstream_target(model: &str, stream: bool) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if stream {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/v1beta/models/{model}:generateContent")
    }
}

pub fn encode_request(req: &ChatRequest) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents(&req.messages)));
    if !req.system.is_empty() {
        let parts: Vec<Value> = req.system.iter().map(|s| json!({ "text": s })).collect();
        body.insert("systemInstruction".into(), json!({ "parts": parts }));
    }
    let tools = tools(req);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(config) = tool_config(req) {
        body.insert("toolConfig".into(), config);
    }
    let config = generation_config(req);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    for key in PASS_THROUGH {
        if let Some(v) = req.extra.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Assistant => "model",
        // Gemini takes function results in a user turn.
        Role::User | Role::Tool => "user",
    }
}

/// Messages -> `contents`, consecutive turns of one role merged: Gemini
/// wants a tool result turn and the user's next words in one `user` turn,
/// and parallel results together.
fn contents(messages: &[Message]) -> Vec<Value> {
    // Gemini needs each result's function name; a decoder that could not
    // fill it leaves the call's id, which names it through the history.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for msg in messages {
        for part in &msg.content {
            if let Part::ToolCall { id, name, .. } = part {
                call_names.insert(id.as_str(), name.as_str());
            }
        }
    }
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for msg in messages {
        let role = role_name(msg.role);
        let parts: Vec<Value> = msg
            .content
            .iter()
            .filter_map(|p| part(p, &call_names))
            .collect();
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    out.into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect()
}

fn part(part: &Part, call_names: &HashMap<&str, &str>) -> Option<Value> {
    Some(match part {
        Part::Text(text) => json!({ "text": text }),
        Part::Image(image) => image_part(image),
        Part::ToolCall {
            id,
            name,
            arguments,
            signature,
        } => function_call_part(id, name, arguments, signature.as_deref()),
        Part::ToolResult {
            id,
            name,
            content,
            is_error,
        } => {
            let name = name
                .as_deref()
                .or_else(|| call_names.get(id.as_str()).copied())
                .unwrap_or(id);
            let mut resp = Map::new();
            if !id.is_empty() {
                resp.insert("id".into(), json!(id));
            }
            resp.insert("name".into(), json!(name));
            resp.insert("response".into(), result_object(content, *is_error));
            json!({ "functionResponse": resp })
        }
        Part::Reasoning {
            text, signature, ..
        } => reasoning_part(text, signature.as_deref())?,
    })
}

/// A reasoning part: a thought, or, with no text, the bare signature Gemini
/// attached to a text part (it streams it in an empty trailing part).
/// Anthropic's redacted thinking has no Gemini form and is dropped.
pub(crate) fn reasoning_part(text: &str, signature: Option<&str>) -> Option<Value> {
    let mut p = Map::new();
    p.insert("text".into(), json!(text));
    if !text.is_empty() {
        p.insert("thought".into(), json!(true));
    } else if signature.is_none() {
        return None;
    }
    if let Some(sig) = signature {
        p.insert("thoughtSignature".into(), json!(sig));
    }
    Some(Value::Object(p))
}

/// `functionResponse.response` must be an object: a JSON object result is
/// sent as is, anything else wrapped under `output` (or `error` when the
/// tool failed), the keys Gemini's documentation gives for them.
fn result_object(content: &str, is_error: bool) -> Value {
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(content) {
        return v;
    }
    let key = if is_error { "error" } else { "output" };
    json!({ key: content })
}

fn tools(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::new();
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), json!(t.name));
                if let Some(desc) = &t.description {
                    d.insert("description".into(), json!(desc));
                }
                if !t.parameters.is_null() {
                    d.insert("parametersJsonSchema".into(), t.parameters.clone());
                }
                Value::Object(d)
            })
            .collect();
        out.push(json!({ "functionDeclarations": decls }));
    }
    // Built-in tools (googleSearch, codeExecution, ...) a Gemini client sent.
    if let Some(Value::Array(extra)) = req.extra.get("tools") {
        out.extend(extra.iter().cloned());
    }
    out
}

fn tool_config(req: &ChatRequest) -> Option<Value> {
    let mut config = match req.extra.get("toolConfig") {
        Some(Value::Object(extra)) => extra.clone(),
        _ => Map::new(),
    };
    if let Some(choice) = &req.tool_choice {
        let fc = match choice {
            ToolChoice::Auto => json!({ "mode": "AUTO" }),
            ToolChoice::None => json!({ "mode": "NONE" }),
            ToolChoice::Required => json!({ "mode": "ANY" }),
            ToolChoice::Named(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
        };
        config.insert("functionCallingConfig".into(), fc);
    }
    (!config.is_empty()).then_some(Value::Object(config))
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut c = Map::new();
    if let Some(t) = req.temperature {
        c.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        c.insert("topP".into(), json!(p));
    }
    if let Some(k) = req.top_k {
        c.insert("topK".into(), json!(k));
    }
    if let Some(m) = req.max_tokens {
        c.insert("maxOutputTokens".into(), json!(m));
    }
    if !req.stop.is_empty() {
        c.insert("stopSequences".into(), json!(req.stop));
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            c.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            c.insert("responseMimeType".into(), json!("application/json"));
            c.insert("responseJsonSchema".into(), schema.clone());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if let Some(r) = &req.reasoning {
        let budget = r
            .budget_tokens
            .map(i64::from)
            .or_else(|| r.effort.as_deref().map(budget_for_effort));
        let mut thinking = Map::new();
        if let Some(b) = budget {
            thinking.insert("thinkingBudget".into(), json!(b));
        }
        if budget != Some(0) {
            thinking.insert("includeThoughts".into(), json!(true));
        }
        c.insert("thinkingConfig".into(), Value::Object(thinking));
    }
    // Gemini generation settings with no canonical field (seed, penalties,
    // responseModalities, thinkingLevel...), from a Gemini client.
    if let Some(Value::Object(extra)) = req.extra.get("generationConfig") {
        for (k, v) in extra {
            if k == "thinkingConfig" {
                if let (Some(Value::Object(ours)), Value::Object(theirs)) =
                    (c.get_mut("thinkingConfig"), v)
                {
                    for (tk, tv) in theirs {
                        ours.entry(tk.clone()).or_insert_with(|| tv.clone());
                    }
                    continue;
                }
            }
            c.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::canonical::{Image, Reasoning, Tool};

    fn encode(req: &ChatRequest) -> Value {
        serde_json::from_slice(&encode_request(req)).unwrap_or(Value::Null)
    }

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Part::Text(text.into())],
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            upstream_target("gemini-2.5-flash", false),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            upstream_target("models/gemini-2.5-pro", true),
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn full_request() {
        let req = ChatRequest {
            model: "gemini-2.5-pro".into(),
            system: vec!["Be brief.".into(), "Be kind.".into()],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![
                        Part::Text("What is here?".into()),
                        Part::Image(Image::Url("https://x/cat.png".into())),
                        Part::Image(Image::Base64 {
                            media_type: "image/webp".into(),
                            data: "UklG".into(),
                        }),
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Part::Reasoning {
                            text: "thinking".into(),
                            signature: Some("sigR".into()),
                            redacted: None,
                        },
                        Part::Reasoning {
                            text: String::new(),
                            signature: None,
                            redacted: Some("opaque".into()),
                        },
                        Part::Text("Let me look.".into()),
                        Part::ToolCall {
                            id: "call_a".into(),
                            name: "lookup".into(),
                            arguments: r#"{"q":"cat"}"#.into(),
                            signature: Some("sigT".into()),
                        },
                        Part::ToolCall {
                            id: "call_b".into(),
                            name: "count".into(),
                            arguments: String::new(),
                            signature: None,
                        },
                    ],
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult {
                        id: "call_a".into(),
                        name: Some("lookup".into()),
                        content: r#"{"animal":"cat"}"#.into(),
                        is_error: false,
                    }],
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::ToolResult {
                        id: "call_b".into(),
                        name: None,
                        content: "boom".into(),
                        is_error: true,
                    }],
                },
                user("And now?"),
            ],
            tools: vec![Tool {
                name: "lookup".into(),
                description: Some("Look up".into()),
                parameters: json!({"type": "object", "properties": {"q": {"type": "string"}},
                    "additionalProperties": false}),
                strict: Some(true),
            }],
            tool_choice: Some(ToolChoice::Named("lookup".into())),
            parallel_tool_calls: Some(false),
            max_tokens: Some(100),
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(40),
            stop: vec!["END".into()],
            response_format: Some(ResponseFormat::JsonSchema {
                name: "out".into(),
                schema: json!({"type": "object"}),
                strict: Some(true),
            }),
            reasoning: Some(Reasoning {
                effort: Some("medium".into()),
                budget_tokens: None,
            }),
            stream: true,
            include_usage: true,
            user: Some("u1".into()),
            extra: Map::new(),
        };
        assert_eq!(
            encode(&req),
            json!({
                "contents": [
                    {"role": "user", "parts": [
                        {"text": "What is here?"},
                        {"fileData": {"mimeType": "image/png", "fileUri": "https://x/cat.png"}},
                        {"inlineData": {"mimeType": "image/webp", "data": "UklG"}}
                    ]},
                    {"role": "model", "parts": [
                        {"text": "thinking", "thought": true, "thoughtSignature": "sigR"},
                        {"text": "Let me look."},
                        {"functionCall": {"id": "call_a", "name": "lookup", "args": {"q": "cat"}},
                         "thoughtSignature": "sigT"},
                        {"functionCall": {"id": "call_b", "name": "count", "args": {}}}
                    ]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"id": "call_a", "name": "lookup",
                            "response": {"animal": "cat"}}},
                        {"functionResponse": {"id": "call_b", "name": "count",
                            "response": {"error": "boom"}}},
                        {"text": "And now?"}
                    ]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
                "tools": [{"functionDeclarations": [{"name": "lookup", "description": "Look up",
                    "parametersJsonSchema": {"type": "object",
                        "properties": {"q": {"type": "string"}}, "additionalProperties": false}}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                    "allowedFunctionNames": ["lookup"]}},
                "generationConfig": {
                    "temperature": 0.5, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
                    "stopSequences": ["END"], "responseMimeType": "application/json",
                    "responseJsonSchema": {"type": "object"},
                    "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": true}
                }
            })
        );
    }

    #[test]
    fn tool_choice_modes_and_plain_results() {
        let mut req = ChatRequest {
            messages: vec![Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    id: "x".into(),
                    name: Some("f".into()),
                    content: "42".into(),
                    is_error: false,
                }],
            }],
            ..ChatRequest::default()
        };
        for (choice, mode) in [
            (ToolChoice::Auto, "AUTO"),
            (ToolChoice::None, "NONE"),
            (ToolChoice::Required, "ANY"),
        ] {
            req.tool_choice = Some(choice);
            let body = encode(&req);
            assert_eq!(
                body["toolConfig"]["functionCallingConfig"],
                json!({"mode": mode})
            );
            assert_eq!(
                body["contents"][0]["parts"][0]["functionResponse"]["response"],
                json!({"output": "42"})
            );
            assert!(body.get("generationConfig").is_none());
        }
    }

    #[test]
    fn reasoning_budgets() {
        for (effort, budget, want) in [
            (
                Some("low"),
                None,
                json!({"thinkingBudget": 1024, "includeThoughts": true}),
            ),
            (
                Some("high"),
                None,
                json!({"thinkingBudget": 24576, "includeThoughts": true}),
            ),
            (Some("none"), None, json!({"thinkingBudget": 0})),
            (
                Some("minimal"),
                None,
                json!({"thinkingBudget": 512, "includeThoughts": true}),
            ),
            (
                Some("max"),
                None,
                json!({"thinkingBudget": -1, "includeThoughts": true}),
            ),
            (
                Some("low"),
                Some(3000),
                json!({"thinkingBudget": 3000, "includeThoughts": true}),
            ),
            (None, None, json!({"includeThoughts": true})),
        ] {
            let req = ChatRequest {
                reasoning: Some(Reasoning {
                    effort: effort.map(str::to_string),
                    budget_tokens: budget,
                }),
                ..ChatRequest::default()
            };
            assert_eq!(encode(&req)["generationConfig"]["thinkingConfig"], want);
        }
    }

    #[test]
    fn extra_passes_only_gemini_fields() {
        let mut extra = Map::new();
        extra.insert("safetySettings".into(), json!([{"category": "X"}]));
        extra.insert("seed".into(), json!(1));
        extra.insert("tools".into(), json!([{"googleSearch": {}}]));
        extra.insert(
            "generationConfig".into(),
            json!({"seed": 7, "temperature": 2.0, "thinkingConfig": {"thinkingLevel": "high"}}),
        );
        let req = ChatRequest {
            temperature: Some(0.1),
            reasoning: Some(Reasoning::default()),
            response_format: Some(ResponseFormat::JsonObject),
            extra,
            ..ChatRequest::default()
        };
        let body = encode(&req);
        assert_eq!(body["safetySettings"], json!([{"category": "X"}]));
        assert!(body.get("seed").is_none());
        assert_eq!(body["tools"], json!([{"googleSearch": {}}]));
        assert_eq!(
            body["generationConfig"],
            json!({"temperature": 0.1, "responseMimeType": "application/json",
                "thinkingConfig": {"includeThoughts": true, "thinkingLevel": "high"}, "seed": 7})
        );
        assert_eq!(body["contents"], json!([]));
    }
}

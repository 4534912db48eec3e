//! Canonical request -> Anthropic `/v1/messages` body.

use serde_json::{json, Map, Value};

use super::blocks::{image_block, output_block};
use crate::translate::canonical::{
    ChatRequest, Message, Part, Reasoning, ResponseFormat, Role, Tool, ToolChoice,
};

/// `max_tokens` when the client gave none: Anthropic requires the field.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Anthropic's smallest accepted thinking budget.
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// Added to the system prompt for `response_format: json_object`:
/// Anthropic's structured output needs a schema, and a JSON object mode
/// without one does not exist there.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else.";

/// Request fields of the OpenAI dialect with no Anthropic meaning; never
/// forwarded from `extra` even if a decoder left one there.
const OPENAI_ONLY_KEYS: [&str; 20] = [
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "n",
    "seed",
    "logit_bias",
    "stream_options",
    "response_format",
    "parallel_tool_calls",
    "reasoning_effort",
    "max_completion_tokens",
    "modalities",
    "audio",
    "prediction",
    "store",
    "functions",
    "function_call",
    "web_search_options",
    "verbosity",
];

/// Also OpenAI names, of fields the typed model already carries.
const OPENAI_RENAMED_KEYS: [&str; 2] = ["stop", "user"];

pub fn encode_request(req: &ChatRequest) -> Vec<u8> {
    let budget = thinking_budget(req.reasoning.as_ref());
    let mut body = Map::new();
    body.insert("model".into(), req.model.as_str().into());
    body.insert(
        "max_tokens".into(),
        effective_max_tokens(req.max_tokens, budget).into(),
    );
    if let Some(system) = encode_system(req) {
        body.insert("system".into(), system);
    }
    body.insert(
        "messages".into(),
        Value::Array(encode_messages(&req.messages)),
    );

    let tools = encode_tools(&req.tools, req.extra.get("tools"));
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = encode_tool_choice(req.tool_choice.as_ref(), req.parallel_tool_calls)
        {
            body.insert("tool_choice".into(), choice);
        }
    }

    insert_sampling(&mut body, req, budget.is_some());
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.stop));
    }
    if let Some(budget) = budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &req.response_format {
        body.insert(
            "output_config".into(),
            json!({"format": {"type": "json_schema", "schema": schema}}),
        );
    }
    if let Some(user) = &req.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    body.insert("stream".into(), req.stream.into());

    for (key, value) in &req.extra {
        let key = key.as_str();
        if key == "tools" || OPENAI_ONLY_KEYS.contains(&key) || OPENAI_RENAMED_KEYS.contains(&key) {
            continue;
        }
        merge_missing(&mut body, key, value);
    }
    // Serializing a `Value` tree cannot fail.
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// Adds `extra`'s `key` unless a typed field already wrote it; objects
/// (`output_config`, `metadata`) are merged key by key, typed keys winning.
fn merge_missing(body: &mut Map<String, Value>, key: &str, value: &Value) {
    match body.get_mut(key) {
        None => {
            body.insert(key.to_owned(), value.clone());
        }
        Some(Value::Object(have)) => {
            if let Value::Object(more) = value {
                for (k, v) in more {
                    merge_missing(have, k, v);
                }
            }
        }
        Some(_) => {}
    }
}

/// The thinking budget the request asks for, if any. An explicit budget
/// wins over an effort level; effort maps low 1024 / medium 4096 /
/// high 16384 (minimal like low, xhigh and max 32768, unknown words like
/// medium, "none" disables). Budgets under Anthropic's minimum are raised
/// to it; a zero budget disables thinking (Gemini's "off").
pub fn thinking_budget(reasoning: Option<&Reasoning>) -> Option<u32> {
    let reasoning = reasoning?;
    if let Some(budget) = reasoning.budget_tokens {
        return (budget > 0).then(|| budget.max(MIN_THINKING_BUDGET));
    }
    let effort = reasoning.effort.as_deref()?.to_ascii_lowercase();
    match effort.as_str() {
        "none" => None,
        "minimal" | "low" => Some(1024),
        "high" => Some(16384),
        "xhigh" | "max" => Some(32768),
        _ => Some(4096),
    }
}

/// Anthropic requires `max_tokens`, and with thinking it must exceed the
/// budget. A client cap that cannot hold the budget is taken as the room
/// for the answer after thinking: `budget + cap`.
pub fn effective_max_tokens(max_tokens: Option<u32>, budget: Option<u32>) -> u32 {
    match (max_tokens, budget) {
        (None, None) => DEFAULT_MAX_TOKENS,
        (Some(cap), None) => cap,
        (None, Some(budget)) => budget.saturating_add(DEFAULT_MAX_TOKENS),
        (Some(cap), Some(budget)) if cap > budget => cap,
        (Some(cap), Some(budget)) => budget.saturating_add(cap.max(1)),
    }
}

/// One system entry -> a string; several -> text blocks, keeping them apart.
fn encode_system(req: &ChatRequest) -> Option<Value> {
    let mut texts: Vec<&str> = req
        .system
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if req.response_format == Some(ResponseFormat::JsonObject) {
        texts.push(JSON_OBJECT_INSTRUCTION);
    }
    match texts.as_slice() {
        [] => None,
        [one] => Some((*one).into()),
        many => Some(Value::Array(
            many.iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect(),
        )),
    }
}

/// Canonical messages -> Anthropic turns. Tool results ride in user turns,
/// and adjacent turns of one role are merged because Anthropic requires
/// alternation. Messages left with no content are dropped (Anthropic
/// rejects empty turns); a final assistant turn stays last as a prefill.
pub fn encode_messages(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let role = match message.role {
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        let blocks: Vec<Value> = message
            .content
            .iter()
            .filter_map(|part| encode_part(part, message.role))
            .collect();
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, have)) if *last == role => have.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // Anthropic wants a user turn's tool results before its text;
            // the sort is stable, so each group keeps its order.
            blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
            json!({"role": role, "content": blocks})
        })
        .collect()
}

/// One part -> a block fit for the turn's role; `None` drops what
/// Anthropic would refuse there: images and tool results in assistant
/// turns, tool calls and reasoning in user turns, empty text, and
/// reasoning without a signature (another provider's thoughts, which
/// Anthropic cannot verify).
fn encode_part(part: &Part, role: Role) -> Option<Value> {
    let assistant = role == Role::Assistant;
    match part {
        Part::Image(image) if !assistant => Some(image_block(image)),
        Part::ToolResult {
            id,
            content,
            is_error,
            ..
        } if !assistant => {
            let mut block = Map::new();
            block.insert("type".into(), "tool_result".into());
            block.insert("tool_use_id".into(), id.as_str().into());
            if !content.is_empty() {
                block.insert("content".into(), content.as_str().into());
            }
            if *is_error {
                block.insert("is_error".into(), true.into());
            }
            Some(Value::Object(block))
        }
        Part::Text(_) => output_block(part),
        Part::ToolCall { .. } if assistant => output_block(part),
        Part::Reasoning {
            signature,
            redacted,
            ..
        } if assistant => {
            let signed = signature.as_deref().is_some_and(|s| !s.is_empty());
            if signed || redacted.is_some() {
                output_block(part)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Canonical tools, plus what an Anthropic client sent that the canonical
/// tool cannot hold (`extra["tools"]`, the client's own tool list, present
/// only when the client spoke Anthropic): a custom tool of the same name
/// keeps its other fields (`cache_control`, `defer_loading`, `strict`,
/// ...), and server tools (`web_search_*`, `tool_search_*`) are appended.
/// Canonical `strict` alone is not forwarded: strict tool use is model-gated
/// on Anthropic, and OpenAI SDK helpers set it by default.
pub fn encode_tools(tools: &[Tool], raw: Option<&Value>) -> Vec<Value> {
    let raw: &[Value] = raw.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let is_custom = |t: &Value| {
        t.get("type")
            .and_then(Value::as_str)
            .is_none_or(|ty| ty == "custom")
    };
    let mut out: Vec<Value> = tools
        .iter()
        .map(|tool| {
            let mut obj = raw
                .iter()
                .filter(|t| is_custom(t))
                .find(|t| t.get("name").and_then(Value::as_str) == Some(tool.name.as_str()))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            obj.insert("name".into(), tool.name.as_str().into());
            match &tool.description {
                Some(d) => obj.insert("description".into(), d.as_str().into()),
                None => obj.remove("description"),
            };
            let schema = match &tool.parameters {
                Value::Null => json!({"type": "object", "properties": {}}),
                other => other.clone(),
            };
            obj.insert("input_schema".into(), schema);
            Value::Object(obj)
        })
        .collect();
    out.extend(raw.iter().filter(|t| !is_custom(t)).cloned());
    out
}

fn encode_tool_choice(choice: Option<&ToolChoice>, parallel: Option<bool>) -> Option<Value> {
    let disable_parallel = parallel == Some(false);
    let mut obj = match choice {
        Some(ToolChoice::None) => return Some(json!({"type": "none"})),
        None if !disable_parallel => return None,
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Named(name)) => json!({"type": "tool", "name": name}),
    };
    if disable_parallel {
        if let Value::Object(map) = &mut obj {
            map.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    Some(obj)
}

/// Sampling parameters. With thinking on Anthropic rejects a temperature
/// other than 1, any `top_k`, and `top_p` under 0.95; those are dropped
/// rather than failing a request that merely asked to reason.
fn insert_sampling(body: &mut Map<String, Value>, req: &ChatRequest, thinking: bool) {
    if let Some(t) = req.temperature.filter(|t| !thinking || *t == 1.0) {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.top_p.filter(|p| !thinking || *p >= 0.95) {
        body.insert("top_p".into(), p.into());
    }
    if let Some(k) = req.top_k.filter(|_| !thinking) {
        body.insert("top_k".into(), k.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_caps() {
        let r = |effort: Option<&str>, budget: Option<u32>| Reasoning {
            effort: effort.map(str::to_owned),
            budget_tokens: budget,
        };
        assert_eq!(thinking_budget(None), None);
        assert_eq!(thinking_budget(Some(&r(Some("low"), None))), Some(1024));
        assert_eq!(thinking_budget(Some(&r(Some("medium"), None))), Some(4096));
        assert_eq!(thinking_budget(Some(&r(Some("HIGH"), None))), Some(16384));
        assert_eq!(thinking_budget(Some(&r(Some("none"), None))), None);
        assert_eq!(
            thinking_budget(Some(&r(Some("high"), Some(2000)))),
            Some(2000)
        );
        assert_eq!(thinking_budget(Some(&r(None, Some(10)))), Some(1024));
        assert_eq!(thinking_budget(Some(&r(None, Some(0)))), None);
        assert_eq!(thinking_budget(Some(&r(None, None))), None);

        assert_eq!(effective_max_tokens(None, None), 4096);
        assert_eq!(effective_max_tokens(Some(100), None), 100);
        assert_eq!(effective_max_tokens(None, Some(16384)), 16384 + 4096);
        assert_eq!(effective_max_tokens(Some(8000), Some(1024)), 8000);
        assert_eq!(effective_max_tokens(Some(500), Some(1024)), 1524);
        assert_eq!(effective_max_tokens(Some(0), Some(1024)), 1025);
    }

    #[test]
    fn tool_choice_forms() {
        assert_eq!(encode_tool_choice(None, None), None);
        assert_eq!(
            encode_tool_choice(None, Some(false)),
            Some(json!({"type":"auto","disable_parallel_tool_use":true}))
        );
        assert_eq!(
            encode_tool_choice(Some(&ToolChoice::Required), Some(true)),
            Some(json!({"type":"any"}))
        );
        assert_eq!(
            encode_tool_choice(Some(&ToolChoice::Named("f".into())), Some(false)),
            Some(json!({"type":"tool","name":"f","disable_parallel_tool_use":true}))
        );
        assert_eq!(
            encode_tool_choice(Some(&ToolChoice::None), Some(false)),
            Some(json!({"type":"none"}))
        );
    }
}

//! The Anthropic Messages dialect <-> canonical.
//!
//! Requests (canonical -> `/v1/messages`, `encode_request`):
//! | canonical | Anthropic |
//! |---|---|
//! | `system` | `system`: one entry a string, several text blocks; empty entries dropped |
//! | User / Tool messages | `user` turns; `Text` -> `text`, `Image` -> `image` (url, base64; `data:` URLs become base64), `ToolResult` -> `tool_result` (`is_error` only when true) |
//! | Assistant messages | `assistant` turns; `ToolCall` -> `tool_use` (`input` = arguments parsed; empty or non-object arguments -> `{}`, raw text dropped), signed `Reasoning` -> `thinking`, redacted -> `redacted_thinking` |
//! | adjacent same-role turns | merged (Anthropic requires alternation); tool results first in a user turn |
//! | dropped | empty text, unsigned reasoning (other providers' thoughts), parts a role cannot hold (images/results in assistant turns, calls/reasoning in user turns), turns left empty |
//! | a final assistant message | stays last: a prefill Anthropic continues |
//! | `tools` | `tools: [{name, description, input_schema}]`; `strict` dropped (model-gated on Anthropic); an Anthropic client's own tool fields and server tools come back from `extra["tools"]` |
//! | `tool_choice` | Auto `auto`, Required `any`, Named `tool`, None `none`; `parallel_tool_calls: false` -> `disable_parallel_tool_use: true` (not on `none`); sent only with tools |
//! | `max_tokens` | `max_tokens`, default 4096; with thinking it must exceed the budget (absent: budget + 4096; too small: budget + cap) |
//! | `temperature`, `top_p`, `top_k` | same; with thinking, temperature other than 1, top_p < 0.95 and top_k are dropped (Anthropic refuses them) |
//! | `stop` | `stop_sequences` |
//! | `response_format` | JsonSchema -> `output_config.format {type: json_schema, schema}` (name and strict dropped); JsonObject -> an instruction appended to `system` |
//! | `reasoning` | `thinking {type: enabled, budget_tokens}`; budget wins; effort low/medium/high = 1024/4096/16384 (minimal 1024, xhigh/max 32768, none off) |
//! | `user` | `metadata.user_id` |
//! | `stream` | `stream` (always written); `include_usage` has no Anthropic form (usage always streams) |
//! | `extra` | top-level fields not written by a typed field (objects merged key by key); OpenAI-only keys are never forwarded |
//!
//! Responses: text/tool_use/thinking/redacted_thinking blocks map to parts;
//! server-tool blocks (`server_tool_use`, `web_search_tool_result`, ...)
//! and citations are skipped: Anthropic ran those tools itself, and the
//! client can neither run nor answer them. Usage: `prompt_tokens` =
//! `input_tokens` + cache read + cache creation.

mod blocks;
mod error;
mod request_decode;
mod request_encode;
mod response;
mod stop_reason;
mod stream_decode;
mod stream_encode;
mod usage;

pub use error::decode_error;
pub use request_decode::decode_request;
pub use request_encode::{
    effective_max_tokens, encode_request, thinking_budget, DEFAULT_MAX_TOKENS,
    JSON_OBJECT_INSTRUCTION, MIN_THINKING_BUDGET,
};
pub(crate) use response::message_id;
pub use response::{decode_response, encode_response};
pub use stream_decode::StreamDecoder;
pub use stream_encode::StreamEncoder;
pub(crate) use usage::RawUsage;

/// Upstream path and query for a request; the provider's base URL is the
/// host root, per the Anthropic SDK convention, and streaming is a body
/// field, not a path.
pub fn upstream_target(_model: &str, _stream: bool) -> String {
    "/v1/messages".to_owned()
}

//! The OpenAI chat dialect <-> the canonical model: the bridge used when
//! the other side of a call is not OpenAI. OpenAI clients reach Anthropic
//! and Gemini providers through `decode_request`, `encode_response` and
//! [`StreamEncoder`]; Anthropic and Gemini clients reach OpenAI-compatible
//! providers through `encode_request`, `decode_response` and
//! [`StreamDecoder`]. (OpenAI to OpenAI takes the byte-level fast path in
//! `translate::openai::{request, response}` and `stream::openai`.)
//!
//! ## Client request -> canonical (`decode_request`)
//! | OpenAI | canonical |
//! |---|---|
//! | `system` / `developer` messages (string or text parts, wherever they occur) | `system`, one entry per message |
//! | `user` content: string, `text` parts, `image_url` (http(s) URL or `data:<mime>;base64,`) | `Role::User` `Text` / `Image::Url` / `Image::Base64`; other part types (audio, file) are a 400 |
//! | `assistant`: `reasoning_content` or `reasoning` (+ OpenRouter `reasoning_details` signature / encrypted data), content, `tool_calls`, legacy `function_call` | `Role::Assistant` `Reasoning` (first), `Text`, `ToolCall`; an assistant turn with none of these is dropped; a trailing one stays (prefill) |
//! | consecutive `tool` messages (`tool_call_id`, text content); legacy `function` messages | one `Role::Tool` message of `ToolResult`s, `name` from the matching call |
//! | `tools` (`type: function`), legacy `functions` | `tools`; other tool types are a 400 |
//! | `tool_choice` / legacy `function_call` | `tool_choice` |
//! | `max_completion_tokens`, else `max_tokens` | `max_tokens` |
//! | `temperature`, `top_p`, `top_k`, `stop`, `parallel_tool_calls`, `user` | same fields |
//! | `response_format` `text` / `json_object` / `json_schema {name, schema, strict}` | `response_format` (a schema's `description` is dropped) |
//! | `reasoning_effort`, OpenRouter `reasoning {effort, max_tokens, enabled}` | `reasoning {effort, budget_tokens}` (`enabled` alone = `medium`; `exclude` is dropped) |
//! | `stream`, `stream_options.include_usage` | `stream`, `include_usage` |
//! | `models`, `route`, `provider`, `transforms`, `plugins`, `usage` | dropped (the gateway's own) |
//! | anything else (`seed`, `n`, `logprobs`, penalties, `metadata`, ...) | `extra` |
//! Lost on the way: a user or assistant `name`, image `detail`, where a
//! system message stood in the conversation.
//!
//! ## Canonical -> upstream request (`encode_request`)
//! `system` becomes one leading `system` message (entries joined by a
//! blank line); tool results one `tool` message each (`is_error` has no
//! OpenAI field); images `image_url` parts (base64 as a `data:` URL);
//! reasoning in assistant history is dropped (OpenAI does not take it
//! back); `max_tokens` is sent as `max_completion_tokens` (OpenAI's
//! reasoning models reject `max_tokens`); a reasoning budget maps to the
//! nearest `reasoning_effort`; streams always ask for
//! `stream_options.include_usage`; `top_k` is dropped (the official API
//! rejects it); `stop` is capped at four. Of `extra` only a short list of
//! OpenAI-only parameters is forwarded (see `request_encode`).
//!
//! ## Responses
//! `decode_response` reads choice 0 only. Finish reasons are normalized,
//! the provider's word kept as `native_finish_reason`; a choice that
//! called tools finishes with `tool_calls` even when a compatible server
//! says `stop`. A `refusal` becomes text. Reasoning goes out as
//! OpenRouter's `reasoning` (and `reasoning_details` when signed).

mod json;
mod request_decode;
mod request_encode;
mod response;
mod stream_decode;
mod stream_encode;

pub use request_decode::decode_request;
pub use request_encode::encode_request;
pub(crate) use response::completion_id;
pub use response::{decode_error, decode_response, encode_response, encode_response_with_cost};
pub use stream_decode::StreamDecoder;
pub use stream_encode::StreamEncoder;

pub(crate) use crate::translate::canonical::{
    id_with_signature as tool_call_id, split_signature as split_tool_call_id,
};

#[cfg(test)]
mod signature_tests {
    use super::*;

    #[test]
    fn signatures_ride_in_tool_call_ids_and_come_back() {
        let id = tool_call_id("call_1", Some("Cp+Y/z=="));
        // URL-safe and unpadded: Anthropic allows only [A-Za-z0-9_-] in ids.
        assert_eq!(id, "call_1__sig__Cp-Y_z");
        assert_eq!(
            split_tool_call_id(&id),
            ("call_1".to_string(), Some("Cp-Y_z==".to_string()))
        );
        assert_eq!(tool_call_id("call_1", None), "call_1");
        assert_eq!(split_tool_call_id("call_1"), ("call_1".to_string(), None));
        assert_eq!(
            split_tool_call_id("toolu_x__sig__"),
            ("toolu_x__sig__".to_string(), None)
        );
    }
}

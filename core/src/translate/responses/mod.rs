//! OpenAI's Responses API (`POST /v1/responses`) as a client dialect,
//! served by every provider: passed through to one that takes it natively
//! (`Provider::responses`; `native_body`, and `upstream` reads the relayed
//! answer's usage), through the canonical model to any other.
//!
//! ## Client request -> canonical (`decode_request`)
//! | Responses | canonical |
//! |---|---|
//! | `input` string | one `Role::User` text message |
//! | `input` items: `message` (type optional) `user` with `input_text` / `input_image` (`image_url`: http(s) or `data:` URL) | `Role::User` `Text` / `Image`; `input_file` and file ids are a 400 |
//! | `message` `assistant` (`output_text`, `refusal`) | `Role::Assistant` `Text` |
//! | `message` `system` / `developer`, `instructions` | `system` (`instructions` first) |
//! | `function_call {call_id, name, arguments}` | `Role::Assistant` `ToolCall` (joined with adjacent assistant items into one turn) |
//! | `function_call_output {call_id, output}` | `Role::Tool` `ToolResult`, `name` from the matching call |
//! | `reasoning` the gateway made (its `encrypted_content` carrier) | `Role::Assistant` `Reasoning` with the provider's signature / redacted data; other reasoning items (OpenAI's own) are dropped |
//! | `tools` (`type: function`, flat `{name, description, parameters, strict}`) | `tools`; built-in tools (`web_search`, `file_search`, `computer_use_preview`, …) are a 400 naming the tool |
//! | `tool_choice` `auto` / `none` / `required` / `{type: function, name}` | `tool_choice` |
//! | `parallel_tool_calls`, `temperature`, `top_p`, `user` | same fields |
//! | `max_output_tokens` | `max_tokens` |
//! | `text.format` `text` / `json_object` / `json_schema {name, schema, strict}` | `response_format` (`verbosity` dropped) |
//! | `reasoning.effort` | `reasoning.effort` (`summary` is echoed only) |
//! | `stream` | `stream`; usage is always asked for and always in `response.completed` |
//! | `metadata`, `store`, `truncation`, `include`, `service_tier`, … | echoed in the answer, not sent upstream |
//! | `previous_response_id`, `item_reference` | the stored items they name, in place (`expand`); a 404 for what the key has not stored, a 400 when nothing is kept |
//! | `models`, `route` | the gateway's fallback routing |
//!
//! ## Canonical answer -> `response` object (`encode_response`)
//! Text joins into one `message` item with one `output_text` part; each
//! tool call is a `function_call` item (`call_id` carries a Gemini
//! signature as on chat); reasoning is a `reasoning` item, its text as a
//! `summary_text`, a signature in `encrypted_content`. `status` is
//! `completed`, or `incomplete` with `incomplete_details.reason`
//! `max_output_tokens` / `content_filter`, or `failed`. `usage` has
//! `input_tokens_details.cached_tokens` and
//! `output_tokens_details.reasoning_tokens`, and `cost` (USD) as on chat.
//!
//! ## Canonical stream -> typed events ([`StreamEncoder`])
//! See `stream_encode`: the same items as the whole answer, bracketed by
//! `response.created`/`response.in_progress` and `response.completed`.

mod expand;
mod reasoning_carrier;
mod request_decode;
mod response;
mod stream_encode;
pub mod upstream;

pub use expand::{expand, input_items, references, with_ids, Expanded};
pub use request_decode::{
    decode_body, decode_request, native_body, parse_body, routing, ResponsesRequest,
};
pub use response::encode_response;
pub(crate) use response::response_id;
pub use stream_encode::StreamEncoder;

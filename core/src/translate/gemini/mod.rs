//! The Google Gemini `generateContent` dialect <-> canonical.
//!
//! Requests (canonical -> Gemini, and the inverse for Gemini clients):
//!
//! | canonical | Gemini |
//! |---|---|
//! | `system` | `systemInstruction.parts[].text` |
//! | User / Assistant / Tool messages | `contents[]` roles `user` / `model` / `user`; consecutive same-role turns merged |
//! | `Text` | `{text}` |
//! | `Image::Base64`, `data:` URL | `{inlineData:{mimeType,data}}` |
//! | `Image::Url` | `{fileData:{mimeType (from the extension, default image/jpeg; none for YouTube), fileUri}}` |
//! | `ToolCall` | `{functionCall:{id,name,args}, thoughtSignature}` |
//! | `ToolResult` | `{functionResponse:{id,name,response}}`; a non-object result wrapped as `{"result":..}` (`{"error":..}` when `is_error`) |
//! | `Reasoning` | `{text, thought:true, thoughtSignature}`; empty text = a bare signature `{text:"", thoughtSignature}` |
//! | `tools` | `tools[{functionDeclarations[{name,description,parametersJsonSchema}]}]` |
//! | `tool_choice` Auto/None/Required/Named | `toolConfig.functionCallingConfig.mode` AUTO/NONE/ANY/ANY+`allowedFunctionNames` |
//! | `temperature`, `top_p`, `top_k`, `max_tokens`, `stop` | `generationConfig.temperature/topP/topK/maxOutputTokens/stopSequences` |
//! | `response_format` JsonObject / JsonSchema | `responseMimeType: application/json` (+ `responseJsonSchema`) |
//! | `reasoning` | `thinkingConfig{thinkingBudget, includeThoughts}`; effort none/minimal/low/medium/high = 0/512/1024/8192/24576, other words -1 (dynamic) |
//! | `extra` | `safetySettings`, `cachedContent`, `labels`, built-in `tools`, other `toolConfig` and `generationConfig` keys, when a Gemini client sent them |
//!
//! Dropped going to Gemini: `parallel_tool_calls`, `user`, `Tool::strict`,
//! the JSON schema's `name`/`strict`, redacted reasoning, `include_usage`
//! (Gemini always reports usage). Dropped coming from Gemini clients:
//! `candidateCount` (one candidate only), `fileData.mimeType`, the
//! `response` schema of function declarations, code-execution parts.
//!
//! Responses: thoughts -> `Reasoning`; a `thoughtSignature` on a plain text
//! part -> an empty `Reasoning` after the text; function calls without an
//! `id` get `call_<n>` (n = position among the response's calls); usage:
//! prompt = promptTokenCount + toolUsePromptTokenCount, completion =
//! candidatesTokenCount + thoughtsTokenCount (Gemini bills thoughts as
//! output), reasoning = thoughtsTokenCount, cached = cachedContentTokenCount.

mod error;
mod request_decode;
mod request_encode;
mod response;
mod schema;
mod stream_decode;
mod stream_encode;
mod wire;

pub use error::decode_error;
pub use request_decode::decode_request;
pub use request_encode::{encode_request, upstream_target};
pub use response::{decode_response, encode_response};
pub use stream_decode::StreamDecoder;
pub use stream_encode::StreamEncoder;
pub(crate) use wire::usage_from as usage_from_metadata;

//! The wire dialects ARouter speaks to clients.

/// The API family of an inbound route; it decides the error body shape and,
/// later, the translation used for the request and the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI-compatible routes, management API and anything unrecognized.
    OpenAi,
    /// Anthropic Messages routes.
    Anthropic,
    /// Google Gemini (generativelanguage) routes.
    Google,
    /// OpenAI's Responses API (`/v1/responses`): its own request and
    /// answer shapes, errors in OpenAI's shape.
    Responses,
}

//! The parameter table: what reaches an OpenAI-compatible upstream.
//!
//! | parameter | official OpenAI API | other OpenAI-compatible servers |
//! |---|---|---|
//! | `models`, `route`, `provider`, `transforms`, `plugins`, `usage` | never forwarded: ARouter's own routing and accounting fields (`usage.include`, OpenRouter's, asks for the final usage chunk of a stream, as `stream_options.include_usage` does) | never forwarded |
//! | `top_k`, `min_p`, `top_a`, `repetition_penalty` | dropped silently (OpenAI rejects them) | forwarded (vLLM, Ollama and llama.cpp accept them) |
//! | `stream_options.include_usage` | always set when streaming, so usage can be billed | same |
//! | everything else | forwarded unchanged | forwarded unchanged |
//!
//! Forwarding unknown fields to compatible servers is deliberate: they grow
//! parameters faster than any table, and a server that does not know one
//! ignores it.

/// Fields that steer ARouter itself and must not reach any provider.
pub const GATEWAY_ONLY: &[&str] = &[
    "models",
    "route",
    "provider",
    "transforms",
    "plugins",
    "usage",
];

/// Sampling parameters the official OpenAI API does not accept.
pub const NOT_ON_OFFICIAL_OPENAI: &[&str] = &["top_k", "min_p", "top_a", "repetition_penalty"];

/// Whether a top-level request field goes upstream.
pub fn forwarded(name: &str, official: bool) -> bool {
    let gateway_only = GATEWAY_ONLY.contains(&name);
    let unsupported = official && NOT_ON_OFFICIAL_OPENAI.contains(&name);
    !(gateway_only || unsupported)
}

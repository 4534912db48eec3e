//! The OpenAI dialect: requests in from clients, out to OpenAI-compatible
//! providers, and their responses normalized on the way back.

pub mod canonical;
pub(crate) mod chat_rewrite;
pub mod params;
pub mod request;
pub mod response;

pub use request::{parse_chat, parse_embeddings, ChatRequest, EmbeddingsRequest};
pub use response::{normalize_chat, normalize_embeddings};

//! Translation between client dialects and provider dialects. Each dialect
//! has its own module; facts shared by all of them live here.

pub mod anthropic;
pub mod canonical;
mod decode_error;
pub mod dispatch;
pub mod embed;
pub mod finish;
pub mod gemini;
pub mod integer;
pub mod openai;
pub mod responses;

pub use decode_error::DecodeError;

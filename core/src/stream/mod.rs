//! Streaming transducers: upstream SSE events in, client SSE bytes out.

pub mod openai;

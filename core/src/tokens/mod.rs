//! Local token counting for OpenAI-family models, with OpenAI's own
//! tokenizer tables (tiktoken): `count_tokens` for a provider that has no
//! counting endpoint is computed, not guessed.
//!
//! Chat overhead follows OpenAI's published accounting for its chat
//! format: 3 tokens per message, 1 more when a name is present, 3 to prime
//! the reply. Tool definitions are counted as the JSON the API receives;
//! OpenAI does not publish its exact tool encoding, so that part is the
//! tokenizer's count of the definitions rather than the server's.

mod bpe;
mod table_hash;

use std::sync::OnceLock;

pub use bpe::Encoding;

use crate::translate::canonical::{ChatRequest, Part};

const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

// The rank tables are static data laid out at compile time (see `bpe`), so
// nothing of them is built here; what is built on first use is each
// encoding's pre-tokenizing regex, a compile of a few milliseconds that a
// gateway that never counts locally should not pay at start-up.
static O200K: OnceLock<Encoding> = OnceLock::new();
static CL100K: OnceLock<Encoding> = OnceLock::new();

fn o200k() -> &'static Encoding {
    O200K.get_or_init(Encoding::o200k)
}

fn cl100k() -> &'static Encoding {
    CL100K.get_or_init(Encoding::cl100k)
}

fn bpe_for(model: &str) -> &'static Encoding {
    // gpt-4o, gpt-4.1, gpt-5, o-series and their successors use o200k;
    // the gpt-3.5/gpt-4 generation used cl100k.
    let legacy = model.starts_with("gpt-3.5")
        || (model.starts_with("gpt-4")
            && !model.starts_with("gpt-4o")
            && !model.starts_with("gpt-4.1"));
    if legacy {
        cl100k()
    } else {
        o200k()
    }
}

/// Text is tokenized in pieces of at most this many bytes, cut at
/// whitespace: byte-pair merging is superlinear in the length of one
/// pre-tokenized piece, so a megabyte without a break (`"____…"`) would
/// stall the event loop. For ordinary text the pieces end at word breaks
/// and the count is exact; a cut inside an unbroken run can change the
/// count by a token or so per piece.
const PIECE: usize = 8 * 1024;

fn count(bpe: &Encoding, text: &str) -> u64 {
    let mut total = 0;
    let mut rest = text;
    while rest.len() > PIECE {
        let mut cut = PIECE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        // Prefer the last whitespace in the piece, so words stay whole.
        if let Some(space) = rest[..cut].rfind(char::is_whitespace) {
            if space > 0 {
                cut = space;
            }
        }
        total += bpe.count(&rest[..cut]);
        rest = &rest[cut..];
    }
    total + bpe.count(rest)
}

/// Input tokens of a chat request for an OpenAI-family `model`.
pub fn count_chat_input(model: &str, req: &ChatRequest) -> u64 {
    let bpe = bpe_for(model);
    let mut total = REPLY_PRIMING;
    for system in &req.system {
        total += PER_MESSAGE + count(bpe, "system") + count(bpe, system);
    }
    for message in &req.messages {
        total += PER_MESSAGE;
        for part in &message.content {
            total += match part {
                Part::Text(text) => count(bpe, text),
                Part::ToolCall {
                    name, arguments, ..
                } => count(bpe, name) + count(bpe, arguments),
                Part::ToolResult { content, .. } => count(bpe, content),
                Part::Reasoning { text, .. } => count(bpe, text),
                // Image cost depends on resolution the gateway does not
                // fetch; OpenAI's low-detail flat rate is the floor.
                Part::Image(_) => 85,
            };
        }
    }
    for tool in &req.tools {
        let parameters = serde_json::to_string(&tool.parameters).unwrap_or_default();
        total += count(bpe, &tool.name)
            + tool.description.as_deref().map_or(0, |d| count(bpe, d))
            + count(bpe, &parameters);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::canonical::{Message, Role};

    #[test]
    fn counts_with_the_chat_format_overhead() {
        let req = ChatRequest {
            system: vec!["You are a helpful assistant.".into()],
            messages: vec![Message {
                role: Role::User,
                content: vec![Part::Text("Hello, world!".into())],
            }],
            ..ChatRequest::default()
        };
        let bpe = o200k();
        let want = REPLY_PRIMING
            + PER_MESSAGE
            + count(bpe, "system")
            + count(bpe, "You are a helpful assistant.")
            + PER_MESSAGE
            + count(bpe, "Hello, world!");
        assert_eq!(count_chat_input("gpt-4o-mini", &req), want);
        assert_eq!(count(bpe, "Hello, world!"), 4);
        // Longer input, more tokens.
        let mut longer = req.clone();
        longer.messages[0]
            .content
            .push(Part::Text(" And more words here.".into()));
        assert!(count_chat_input("gpt-4o-mini", &longer) > count_chat_input("gpt-4o-mini", &req));
    }

    #[test]
    fn long_text_is_counted_in_pieces_that_keep_words_whole() {
        let bpe = o200k();
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(2000);
        assert!(prose.len() > 4 * PIECE);
        assert_eq!(count(bpe, &prose), bpe.count(&prose));
        // An unbroken run is counted piece by piece rather than all at once.
        let run = "_".repeat(3 * PIECE + 17);
        assert!(count(bpe, &run) > 0);
    }
}

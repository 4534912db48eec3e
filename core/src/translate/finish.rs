//! Finish reasons: every provider's vocabulary mapped onto OpenAI's five
//! values, with the provider's own word kept as `native_finish_reason`.

/// The normalized reason a choice ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Error,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
        }
    }

    /// Maps any provider's finish word. Unknown words end normally: a
    /// finished choice with an unfamiliar label is still a finished choice.
    pub fn normalize(native: &str) -> FinishReason {
        // Lower-cased on the stack: this runs for every answer, and no
        // known word is longer than the buffer.
        let mut buf = [0u8; 24];
        let Some(lower) = buf.get_mut(..native.len()) else {
            return FinishReason::Stop;
        };
        lower.copy_from_slice(native.as_bytes());
        lower.make_ascii_lowercase();
        match &*lower {
            b"length" | b"max_tokens" | b"model_length" | b"max_output_tokens" => {
                FinishReason::Length
            }
            b"tool_calls" | b"function_call" | b"tool_use" | b"tool_call" => {
                FinishReason::ToolCalls
            }
            b"content_filter"
            | b"safety"
            | b"recitation"
            | b"blocklist"
            | b"prohibited_content"
            | b"spii"
            | b"refusal"
            | b"image_safety" => FinishReason::ContentFilter,
            b"error" | b"malformed_function_call" => FinishReason::Error,
            _ => FinishReason::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_known_vocabulary() {
        for (native, want) in [
            ("stop", FinishReason::Stop),
            ("eos", FinishReason::Stop),
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("STOP", FinishReason::Stop),
            ("length", FinishReason::Length),
            ("MAX_TOKENS", FinishReason::Length),
            ("tool_calls", FinishReason::ToolCalls),
            ("function_call", FinishReason::ToolCalls),
            ("tool_use", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("SAFETY", FinishReason::ContentFilter),
            ("refusal", FinishReason::ContentFilter),
            ("error", FinishReason::Error),
            ("MALFORMED_FUNCTION_CALL", FinishReason::Error),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("a_word_longer_than_any_known_one", FinishReason::Stop),
            ("", FinishReason::Stop),
            ("something_new", FinishReason::Stop),
        ] {
            assert_eq!(FinishReason::normalize(native), want, "{native}");
        }
    }
}

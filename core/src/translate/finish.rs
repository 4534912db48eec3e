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
        match native.to_ascii_lowercase().as_str() {
            "length" | "max_tokens" | "model_length" | "max_output_tokens" => FinishReason::Length,
            "tool_calls" | "function_call" | "tool_use" | "tool_call" => FinishReason::ToolCalls,
            "content_filter" | "safety" | "recitation" | "blocklist" | "prohibited_content"
            | "spii" | "refusal" | "image_safety" => FinishReason::ContentFilter,
            "error" | "malformed_function_call" => FinishReason::Error,
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
            ("something_new", FinishReason::Stop),
        ] {
            assert_eq!(FinishReason::normalize(native), want, "{native}");
        }
    }
}

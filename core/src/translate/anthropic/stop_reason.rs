//! Anthropic `stop_reason` <-> canonical finish.

use crate::translate::canonical::Finish;
use crate::translate::finish::FinishReason;

/// Every `stop_reason` Anthropic documents.
const ANTHROPIC_STOP_REASONS: [&str; 7] = [
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

/// An Anthropic `stop_reason` -> canonical finish (native word kept).
pub(crate) fn finish_from_stop_reason(native: &str) -> Finish {
    let reason = match native {
        // The generic table would call this an ordinary stop; it is a cap.
        "model_context_window_exceeded" => FinishReason::Length,
        // A server-tool loop paused; the turn ended without error.
        "pause_turn" => FinishReason::Stop,
        other => FinishReason::normalize(other),
    };
    Finish {
        reason,
        native: native.to_owned(),
    }
}

/// Canonical finish -> Anthropic `stop_reason`. An Anthropic native word is
/// kept when it agrees with the reason (so `stop_sequence`, `pause_turn`
/// survive a round trip). `has_tool_calls` fixes upstreams that end a
/// tool-calling turn with a plain "stop": Anthropic clients run tools only
/// on `tool_use`.
pub(crate) fn stop_reason(finish: Option<&Finish>, has_tool_calls: bool) -> Option<&'static str> {
    let finish = finish?;
    if let Some(native) = ANTHROPIC_STOP_REASONS
        .iter()
        .find(|n| **n == finish.native)
        .filter(|n| finish_from_stop_reason(n).reason == finish.reason)
    {
        return Some(native);
    }
    Some(match finish.reason {
        FinishReason::Stop if has_tool_calls => "tool_use",
        // Anthropic has no error stop reason; the turn did end.
        FinishReason::Stop | FinishReason::Error => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(reason: FinishReason, native: &str) -> Finish {
        Finish {
            reason,
            native: native.into(),
        }
    }

    #[test]
    fn decodes_every_documented_reason() {
        for (native, want) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Stop),
            ("model_context_window_exceeded", FinishReason::Length),
            ("brand_new", FinishReason::Stop),
        ] {
            assert_eq!(finish_from_stop_reason(native).reason, want, "{native}");
            assert_eq!(finish_from_stop_reason(native).native, native);
        }
    }

    #[test]
    fn encodes_back() {
        for (f, tools, want) in [
            (finish(FinishReason::Stop, "end_turn"), false, "end_turn"),
            (
                finish(FinishReason::Stop, "stop_sequence"),
                false,
                "stop_sequence",
            ),
            (
                finish(FinishReason::Stop, "pause_turn"),
                false,
                "pause_turn",
            ),
            (finish(FinishReason::Stop, "stop"), false, "end_turn"),
            (finish(FinishReason::Stop, "STOP"), true, "tool_use"),
            (finish(FinishReason::Length, "length"), false, "max_tokens"),
            (
                finish(FinishReason::Length, "model_context_window_exceeded"),
                false,
                "model_context_window_exceeded",
            ),
            (
                finish(FinishReason::ToolCalls, "tool_calls"),
                true,
                "tool_use",
            ),
            (
                finish(FinishReason::ContentFilter, "SAFETY"),
                false,
                "refusal",
            ),
            (finish(FinishReason::Error, "error"), false, "end_turn"),
            // A native word that disagrees with the reason is not trusted.
            (
                finish(FinishReason::Length, "end_turn"),
                false,
                "max_tokens",
            ),
        ] {
            assert_eq!(stop_reason(Some(&f), tools), Some(want), "{f:?}");
        }
        assert_eq!(stop_reason(None, true), None);
    }
}

//! A Responses answer the gateway keeps (`store`): the conversation it was
//! made from, set when the call starts, and the `response` object the
//! client got, noted as it goes out.

use serde_json::Value;

use super::Call;

/// What the exchange turns into an `Output::Keep` when the call ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToKeep {
    pub response: Value,
    pub input: Vec<Value>,
    /// Answered by a provider that takes the Responses API itself.
    pub native: bool,
}

/// The call's side of keeping: `None` in `context` when nothing is kept.
#[derive(Debug, Default)]
pub(super) struct Keeping {
    context: Option<Vec<Value>>,
    drop_previous: bool,
    response: Option<Value>,
    native: bool,
}

impl Call {
    /// What the call does with stored state (see `StoredPlan`).
    pub(crate) fn set_stored(&mut self, plan: crate::exchange::plan::StoredPlan) {
        self.keeping.context = plan.context;
        self.keeping.drop_previous = plan.drop_previous;
    }

    /// A native provider gets the earlier turns rather than the client's
    /// `previous_response_id`.
    pub(super) fn drop_previous(&self) -> bool {
        self.keeping.drop_previous
    }

    /// Notes the `response` object the client got, when it is kept;
    /// `response` is only asked then.
    pub(super) fn note_response(&mut self, response: impl FnOnce() -> Option<Value>, native: bool) {
        if self.keeping.context.is_some() {
            self.keeping.response = response();
            self.keeping.native = native;
        }
    }

    /// The stream's final `response` object, when it is kept.
    pub(super) fn note_stream_response(&mut self) {
        if self.keeping.context.is_none() {
            return;
        }
        let native = matches!(
            self.stream,
            Some(crate::stream::ClientStream::PassThrough(_))
        );
        let response = self
            .stream
            .as_mut()
            .and_then(crate::stream::ClientStream::take_response);
        self.note_response(|| response, native);
    }

    /// What to keep of a call that answered `status`, reaching the client
    /// whole or not: only a successful answer it got whole, with a
    /// `response` object that says `completed` or `incomplete`.
    pub(super) fn take_kept(&mut self, status: u16, complete: bool) -> Option<Box<ToKeep>> {
        let keeping = std::mem::take(&mut self.keeping);
        let response = keeping.response?;
        let ended = matches!(
            response.get("status").and_then(Value::as_str),
            Some("completed" | "incomplete")
        );
        if !(complete && (200..300).contains(&status) && ended) {
            return None;
        }
        Some(Box::new(ToKeep {
            response,
            input: keeping.context?,
            native: keeping.native,
        }))
    }
}

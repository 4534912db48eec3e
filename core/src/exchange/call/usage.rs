//! What a call is billed for: the usage its providers reported, the
//! gateway's estimate for an attempt cut short, and what earlier, failed
//! attempts consumed.

use super::{AttemptFailure, Call, CallKind, CallRequest, EarlierUsage, Finished, Phase};
use crate::stream::ClientStream;
use crate::usage::Usage;

impl Call {
    /// The usage the current attempt's provider reported so far.
    pub(super) fn reported_usage(&self) -> Option<Usage> {
        self.usage
            .or_else(|| self.stream.as_ref().and_then(ClientStream::usage))
    }

    /// Notes that this attempt, cut short, has no final usage from its
    /// provider (none at all, or only what Anthropic and Gemini send as a
    /// stream starts) and will need the gateway's estimate. A prompt the
    /// provider did not report is counted later (`count_prompt`), once the
    /// upstream has been let go: a tokenizer must never stand between a
    /// client leaving and the provider being told.
    pub(super) fn mark_for_estimate(&mut self) {
        let final_usage =
            self.usage.is_some() || self.stream.as_ref().is_some_and(ClientStream::usage_final);
        if !final_usage && self.reached && matches!(self.kind, CallKind::Chat { .. }) {
            self.estimated = true;
        }
    }

    /// A successful whole answer broke off mid-body (cut or stalled): the
    /// provider did the work and bills for it, so the attempt is billed
    /// too, as an estimate, even though the client gets an error.
    pub(super) fn mark_if_answer_lost(&mut self) {
        if matches!(self.phase, Phase::Buffering { .. }) && (200..300).contains(&self.status) {
            self.mark_for_estimate();
        }
    }

    /// The gateway's estimate for an attempt cut short before its provider
    /// reported its final usage (OpenAI reports it only at the end of a
    /// stream): what the provider did report, with the output at least the
    /// content chunks relayed, as providers stream about one token per
    /// chunk. A whole answer cut off never reached the client, so its
    /// output is unknown and counted as none. A prompt left at 0 is
    /// counted by `count_prompt`.
    pub(super) fn estimate(&self) -> Usage {
        let mut usage = self.reported_usage().unwrap_or_default();
        let relayed = self.stream.as_ref().map_or(0, ClientStream::relayed);
        usage.completion_tokens = usage.completion_tokens.max(relayed);
        usage
    }

    /// The prompt, counted with `model`'s tokenizer: the input half of an
    /// estimate. Run when the usage event is polled, after the upstream
    /// has been let go.
    pub(crate) fn count_prompt(&mut self, model: &str) -> u64 {
        if self.canonical().is_err() {
            return 0;
        }
        match &self.request {
            CallRequest::Foreign { canonical, .. }
            | CallRequest::OpenAi {
                canonical: Some(canonical),
                ..
            } => crate::tokens::count_chat_input(model, canonical),
            // A streamed body is gone: about four bytes a token.
            CallRequest::Proxy(request) => match request.estimate_from.as_deref() {
                Some(canonical) => crate::tokens::count_chat_input(model, canonical),
                None => request
                    .upload
                    .as_ref()
                    .map_or(0, |upload| upload.bytes() / 4),
            },
            CallRequest::OpenAi { .. } | CallRequest::Embed { .. } => 0,
        }
    }

    /// Keeps the usage the current attempt's provider reported (or the
    /// estimate of an attempt marked for one) before the call moves on to
    /// another candidate.
    pub(super) fn bank_reported_usage(&mut self) {
        let estimated = self.estimated;
        let usage = if estimated {
            Some(self.estimate())
        } else {
            self.reported_usage()
        };
        self.usage = None;
        if let (Some(usage), Some(candidate), true) = (usage, self.candidate(), self.reached) {
            let record = EarlierUsage {
                provider: candidate.provider,
                model: candidate.model.clone(),
                usage,
                estimated,
                status: (self.status != 0).then_some(self.status),
            };
            self.earlier.push(record);
        }
        // Banked once: the stream that carried it is not consulted again,
        // and the next attempt starts with no estimate of its own.
        self.stream = None;
        self.reached = false;
        self.estimated = false;
    }

    pub(super) fn finished(&mut self, status: u16, complete: bool) -> Finished {
        // The attempt that answered (or that the client abandoned) ends
        // with the call: a provider's error status or a broken answer is
        // its failure.
        let failure = self.broke.take().or_else(|| {
            (self.status != 0 && !(200..300).contains(&self.status))
                .then_some(AttemptFailure::Status(self.status))
        });
        self.end_attempt(failure);
        // Taken, not cloned: the call is over.
        let dialect = self.dialect;
        let response_id = self
            .response_id
            .take()
            .or_else(|| self.stream.as_ref().and_then(|s| s.response_id(dialect)));
        // Counting consumes nothing billable, nor does an attempt that
        // never reached its provider.
        let keep = self.take_kept(status, complete);
        let candidate = self
            .candidate()
            .filter(|_| self.kind != CallKind::CountTokens && self.reached);
        Finished {
            keep,
            status,
            provider: candidate.map(|c| c.provider),
            model: candidate.map(|c| c.model.clone()),
            usage: if self.estimated {
                Some(self.estimate())
            } else {
                self.reported_usage()
            },
            complete,
            estimated: self.estimated,
            earlier: self.earlier.clone(),
            upstream_status: (self.status != 0).then_some(self.status),
            response_id,
            stream: self.kind.stream(),
            unrecognized: matches!(self.kind, CallKind::Proxy { .. })
                && (200..300).contains(&self.status)
                && self.reported_usage().is_none(),
            abort: false,
            attempts: self.attempts,
            dialect: self.dialect,
        }
    }
}

//! Credit for a metered call: before each attempt goes upstream, the most
//! it can cost is reserved through the host (`Output::Reserve`), and a
//! refusal is answered 402 in the client's dialect before any connect.
//!
//! Fallback: every attempt that goes upstream is covered by its own
//! reservation. The host releases what it holds for the connection when
//! the next `Output::Reserve` comes, so a failed attempt's reservation is
//! back on the line before the next one is taken; what a failed attempt's
//! provider did bill (its usage record, sent when the call ends) is
//! charged against the reservation held then, and beyond it, from what
//! is left (never below zero).

use super::{Call, CallKind, CallRequest, Finished, Io, Phase};
use crate::api::{ApiError, ErrorKind, Response};
use crate::billing::MicroUsd;
use crate::exchange::{CallIntent, Output, Refusal, ReserveRequest};
use crate::gateway::Gateway;
use crate::Tick;

impl Call {
    /// Makes this call reserve credit before each attempt, billed to
    /// `key_id` (`None`: the master key).
    pub(crate) fn set_metered(&mut self, key_id: Option<i64>) {
        self.metered = true;
        self.key_id = key_id;
    }

    /// Makes this unmetered call reserve before each attempt all the
    /// same, for the host's call journal (`Exchange::with_call_journal`):
    /// nothing it reserves is enforced, so it is not refused for naming
    /// no model to price by.
    pub(crate) fn set_journaled(&mut self, key_id: Option<i64>) {
        self.set_metered(key_id);
        self.journal_only = true;
    }

    /// An `Output::Reserve` is out and unanswered.
    pub(crate) fn reserving(&self) -> bool {
        matches!(self.phase, Phase::Reserving)
    }

    /// Asks the host to set the current attempt's maximum cost aside.
    pub(super) fn reserve(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        if let Some(err) = self.unmetered_proxy() {
            return Some(self.respond(io, Response::from(&err), false));
        }
        let max = self.max_cost(gateway);
        self.phase = Phase::Reserving;
        io.outputs.push_back(Output::Reserve(ReserveRequest {
            key_id: self.key_id,
            max,
        }));
        None
    }

    /// The host's answer: connect, or answer 402 with nothing sent. A
    /// streamed body's call is connected already: its end goes now, or
    /// its connection is cut.
    pub(crate) fn on_reserved(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        result: Result<(), Refusal>,
    ) -> Option<Finished> {
        if !self.reserving() {
            return None;
        }
        let streamed = self.upload().is_some();
        match result {
            Ok(()) if streamed => {
                self.release_upload(now, io);
                None
            }
            Err(refusal) if streamed => {
                let max = self.max_cost(gateway);
                let err = refusal_error(self.dialect, refusal, max);
                Some(self.refuse_upload(io, err))
            }
            Ok(()) => {
                let provider = self.candidate()?.provider;
                self.phase = Phase::Connecting;
                self.begin_attempt(io, provider);
                None
            }
            Err(refusal) => {
                let max = self.max_cost(gateway);
                let err = refusal_error(self.dialect, refusal, max);
                Some(self.respond(io, Response::from(&err), false))
            }
        }
    }

    /// The most the current attempt can cost: its prompt as the model's
    /// tokenizer counts it plus the request's output cap (`max_tokens` or
    /// its dialect's name for it, else the model's cap), at the
    /// candidate's price, every token at the dearest rate of its side
    /// (`Price::max_cost`). An unpriced model costs nothing.
    pub(super) fn max_cost(&mut self, gateway: &Gateway) -> MicroUsd {
        // An unpriced attempt's prompt costs nothing, and counts nothing
        // for the journal either (no earlier attempt's count stays).
        self.reserved_prompt = 0;
        let Some(candidate) = self.candidate() else {
            return MicroUsd(0);
        };
        let model = candidate.model.clone();
        let Some(provider) = gateway.providers().get(candidate.provider) else {
            return MicroUsd(0);
        };
        let Some(price) = gateway.price(&provider.name, &model) else {
            return MicroUsd(0);
        };
        let provider = provider.name.clone();
        let (prompt, output) = match self.kind {
            CallKind::Embeddings => (self.embed_input_bound(), 0),
            CallKind::CountTokens => return MicroUsd(0),
            // The body's bytes bound its input tokens (no tokenizer makes
            // a token of less than a byte), whatever API it is for.
            CallKind::Proxy { .. } => match &self.request {
                CallRequest::Proxy(request) => (
                    request.body_bytes(),
                    request
                        .max_output
                        .unwrap_or_else(|| gateway.output_cap(&provider, &model)),
                ),
                _ => (0, 0),
            },
            CallKind::Chat { .. } => {
                let prompt = self.count_prompt(&model);
                let output = self
                    .requested_output()
                    .unwrap_or_else(|| gateway.output_cap(&provider, &model));
                (prompt, output)
            }
        };
        // Kept for the host's call journal (`Exchange::call_intent`): the
        // prompt of an attempt whose end never comes is billed by it.
        // A body's bytes only bound its tokens: about four a token.
        self.reserved_prompt = match self.kind {
            CallKind::Chat { .. } => prompt,
            _ => prompt / 4,
        };
        price.max_cost(prompt, output)
    }

    /// The attempt an `Output::Reserve` is out for: what the host needs
    /// to bill it if it never hears of its end (see [`CallIntent`]).
    pub(crate) fn call_intent(&self, gateway: &Gateway) -> Option<CallIntent> {
        if !self.reserving() {
            return None;
        }
        let candidate = self.candidate()?;
        let provider = gateway.providers().get(candidate.provider)?;
        let usage = crate::usage::Usage {
            prompt_tokens: self.reserved_prompt,
            ..Default::default()
        };
        Some(CallIntent {
            request_id: self.request_id,
            provider: candidate.provider,
            model: candidate.model.clone(),
            prompt_tokens: self.reserved_prompt,
            prompt_cost: gateway
                .cost(&provider.name, &candidate.model, &usage)
                .unwrap_or(MicroUsd(0)),
            stream: self.kind.stream(),
        })
    }

    /// The output cap the client asked for (`max_tokens`,
    /// `max_completion_tokens`, `generationConfig.maxOutputTokens`), read
    /// from the canonical request `count_prompt` derived.
    fn requested_output(&self) -> Option<u64> {
        match &self.request {
            CallRequest::Foreign { canonical, .. }
            | CallRequest::OpenAi {
                canonical: Some(canonical),
                ..
            } => canonical.max_tokens.map(u64::from),
            CallRequest::OpenAi { .. } | CallRequest::Embed { .. } | CallRequest::Proxy(_) => None,
        }
    }

    /// A metered key's proxied call that names no model yet may generate
    /// tokens: nothing can be priced, so nothing reserved; refused (403)
    /// before anything goes upstream.
    fn unmetered_proxy(&self) -> Option<ApiError> {
        if self.journal_only {
            return None;
        }
        let (CallRequest::Proxy(request), Some(candidate)) = (&self.request, self.candidate())
        else {
            return None;
        };
        request.unmetered(&candidate.model).then(|| {
            ApiError::new(
                self.dialect,
                ErrorKind::PermissionDenied,
                "this key has a spending limit, and this request names no `model` to price it by; \
                 only requests naming a model (or reads: GET, DELETE) may go through the provider proxy",
            )
            .with_code("unpriced_proxy_call")
        })
    }

    /// An upper bound of an embeddings request's input tokens: the bytes
    /// of its texts (no tokenizer makes a token of less than a byte), or
    /// of the whole body when it has no canonical form (token arrays).
    fn embed_input_bound(&self) -> u64 {
        match &self.request {
            CallRequest::Embed {
                canonical: Ok(req), ..
            } => req.inputs.iter().map(|t| t.len() as u64).sum(),
            CallRequest::Embed { body, .. } => serde_json::to_vec(body)
                .map(|b| b.len() as u64)
                .unwrap_or(0),
            _ => 0,
        }
    }
}

/// A refused reservation, as the route's dialect writes a 402 (a 503
/// when the credit could not be asked for).
fn refusal_error(dialect: crate::api::Dialect, refusal: Refusal, max: MicroUsd) -> ApiError {
    let mut usd = Vec::new();
    max.write_usd(&mut usd);
    let usd = String::from_utf8_lossy(&usd);
    let what = match refusal {
        Refusal::KeyLimit => "this key's credit limit",
        Refusal::Balance => "the account balance",
        Refusal::StoreUnavailable => {
            return ApiError::new(
                dialect,
                ErrorKind::Unavailable,
                "the shared store that leases this gateway credit is unreachable; retry shortly",
            )
            .with_code("credit_store_unavailable");
        }
    };
    ApiError::new(
        dialect,
        ErrorKind::PaymentRequired,
        format!(
            "insufficient credits: {what} cannot cover this request (it may cost up to ${usd}); \
             lower max_tokens or add credits"
        ),
    )
    .with_code("insufficient_credits")
}

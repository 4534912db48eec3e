//! The provider proxy, `/{provider}/{path}`: a pass-through call. The
//! request head is rebuilt (path checked and kept under the provider's
//! root, client credentials and hop-by-hop headers dropped, the
//! provider's own key added), the body goes as it came, and the answer's
//! bytes are relayed unchanged while its usage is read on the side.
//!
//! Billing reads the model from the request body's `model` or a Gemini
//! path's `models/{model}:…`; a metered key reserves the most the call can
//! cost at that model's price (see `Call::max_cost`), and may not make a
//! body-carrying call that names no model (see [`ProxyRequest::unmetered`]).
//!
//! A body longer than `Limits::proxy_buffer_bytes` is not held: it streams
//! upstream as it arrives and is read on the side ([`upload`]).

mod facts;
mod headers;
mod scan;
mod sniff;
mod target;
mod upload;

pub(crate) use facts::BodyFacts;
pub(crate) use headers::forwarded_response;
pub(crate) use scan::fuzz as scan_fuzz;
pub(crate) use sniff::Sniffer;
pub(crate) use upload::{Upload, UploadFraming};

use std::sync::Arc;

use http::Method;

use super::call::{CallKind, CallRequest};
use super::plan::Plan;
use super::plan::StoredPlan;
use crate::api::{ApiError, Dialect};
use crate::gateway::{Gateway, ProviderKind};
use crate::http1::{BodyKind, RequestHead};
use crate::manage::ModelAllowlist;
use crate::route::Candidate;

/// A request to pass through, as it goes upstream.
#[derive(Debug)]
pub(crate) struct ProxyRequest {
    pub method: Method,
    /// Path and query under the provider's root.
    pub target: String,
    /// The client's headers that go along (see `headers`).
    pub headers: Vec<(String, String)>,
    /// Moved in from the read request once planned (`take_body`): the
    /// whole body, or the first bytes of one that streams (`upload`).
    pub body: Vec<u8>,
    /// The body's output cap (`max_tokens` and its kin), for a reservation.
    pub max_output: Option<u64>,
    /// An OpenAI chat stream that asked for no usage report, as the
    /// canonical request: if its answer reports none, its prompt is
    /// counted from this (the bytes are gone upstream by then).
    pub estimate_from: Option<Box<crate::translate::canonical::ChatRequest>>,
    /// The rest of a body too long to hold, streaming upstream.
    pub upload: Option<Box<Upload>>,
    /// What the path says, for the facts of a body read later.
    path_model: Option<String>,
    path_stream: bool,
    /// An OpenAI chat completion: a stream of it without a usage report
    /// is estimated.
    openai_chat: bool,
}

impl ProxyRequest {
    /// A call that may generate tokens (a body-carrying method) but names
    /// no model to price them by: a metered key may not make it, since
    /// nothing could be reserved for it.
    pub(crate) fn unmetered(&self, model: &str) -> bool {
        model.is_empty() && matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
    }

    /// The body's bytes: an upper bound of its input tokens.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.upload
            .as_ref()
            .map_or(self.body.len() as u64, |upload| upload.bytes())
    }

    /// Takes in what the body said (whole, or read on the side as it
    /// streamed): its output cap; the model to bill and hold to the
    /// allowlist (the path's when the body names none); whether a stream
    /// was asked for. `body` is the whole body, when held.
    pub(crate) fn settle(&mut self, facts: BodyFacts, body: Option<&[u8]>) -> (String, bool) {
        let stream = facts.stream || self.path_stream;
        self.max_output = facts.max_output;
        self.estimate_from = (stream && !facts.asks_usage && self.openai_chat)
            .then(|| body.and_then(|b| crate::translate::openai::canonical::decode_request(b).ok()))
            .flatten()
            .map(Box::new);
        let model = facts
            .model
            .or_else(|| self.path_model.clone())
            .unwrap_or_default();
        (model, stream)
    }
}

/// Plans `/{provider}/{rest}`. `body` is only read here (model, stream,
/// output cap); the bytes are moved into the plan by the caller. When
/// `complete` is false, `body` is the first part of one that streams: the
/// plan then holds only what the path says, and the call reads the rest
/// on the side (see [`upload`]).
pub(crate) fn plan(
    gateway: &Gateway,
    head: &RequestHead,
    provider: &str,
    rest: &str,
    dialect: Dialect,
    body: &[u8],
    complete: bool,
) -> Result<Plan, ApiError> {
    let Some(index) = gateway.provider_index(provider) else {
        return Err(ApiError::not_found(dialect));
    };
    let Some(upstream) = gateway.providers().get(index) else {
        return Err(ApiError::not_found(dialect));
    };
    target::check_path(rest).map_err(|err| {
        ApiError::invalid_request(dialect, err.message()).with_code("invalid_proxy_path")
    })?;
    let query = target::forwarded_query(head.query());
    let root = target::provider_root(&upstream.addr.base_path);
    let upload = match (complete, head.body) {
        (true, _) => None,
        (false, BodyKind::Length(n)) => Some(Box::new(Upload::new(UploadFraming::Length(n)))),
        (false, _) => Some(Box::new(Upload::new(UploadFraming::Chunked))),
    };
    let mut request = ProxyRequest {
        method: head.method.clone(),
        target: target::upstream_target(root, rest, query.as_deref()),
        headers: headers::forwarded_request(&head.headers),
        body: Vec::new(),
        max_output: None,
        estimate_from: None,
        upload,
        path_model: gemini_path_model(rest).map(str::to_owned),
        path_stream: rest.contains(":streamGenerateContent"),
        openai_chat: upstream.kind == ProviderKind::OpenAi && rest.ends_with("chat/completions"),
    };
    let (model, stream) = if complete {
        request.settle(BodyFacts::from_json(body), Some(body))
    } else {
        // Settled again when the body has ended.
        request.settle(BodyFacts::default(), None)
    };
    Ok(Plan {
        kind: CallKind::Proxy { stream },
        dialect,
        request: CallRequest::Proxy(Box::new(request)),
        candidates: vec![Candidate {
            provider: index,
            model,
        }],
        stored: StoredPlan::default(),
    })
}

/// `gemini-2.5-flash` from `v1beta/models/gemini-2.5-flash:generateContent`.
fn gemini_path_model(rest: &str) -> Option<&str> {
    let (_, tail) = rest.rsplit_once("models/")?;
    let (model, _) = tail.split_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some(model)
}

impl Plan {
    /// Gives a streamed proxy call the key's allowlist to apply when its
    /// body has named the model; any other plan hands it back.
    pub(crate) fn defer_allowlist(
        &mut self,
        models: Option<Arc<ModelAllowlist>>,
    ) -> Result<(), Option<Arc<ModelAllowlist>>> {
        match &mut self.request {
            CallRequest::Proxy(request) => match request.upload.as_mut() {
                Some(upload) => {
                    upload.models = models;
                    Ok(())
                }
                None => Err(models),
            },
            _ => Err(models),
        }
    }

    /// Hands the read request body to a proxy plan, so it is not copied.
    pub(crate) fn take_body(&mut self, body: &mut Vec<u8>) {
        if let CallRequest::Proxy(request) = &mut self.request {
            request.body = std::mem::take(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gemini_path_model;

    #[test]
    fn the_model_of_a_gemini_path() {
        assert_eq!(
            gemini_path_model("v1beta/models/gemini-2.5-flash:streamGenerateContent"),
            Some("gemini-2.5-flash")
        );
        assert_eq!(gemini_path_model("v1beta/models"), None);
        assert_eq!(gemini_path_model("v1/chat/completions"), None);
    }
}

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

mod headers;
mod sniff;
mod target;

pub(crate) use headers::forwarded_response;
pub(crate) use sniff::Sniffer;

use http::Method;
use serde_json::Value;

use super::call::{CallKind, CallRequest};
use super::plan::Plan;
use super::plan::StoredPlan;
use crate::api::{ApiError, Dialect};
use crate::gateway::{Gateway, ProviderKind};
use crate::http1::RequestHead;
use crate::route::Candidate;

/// A request to pass through, as it goes upstream.
#[derive(Debug)]
pub(crate) struct ProxyRequest {
    pub method: Method,
    /// Path and query under the provider's root.
    pub target: String,
    /// The client's headers that go along (see `headers`).
    pub headers: Vec<(String, String)>,
    /// Moved in from the read request once planned (`take_body`).
    pub body: Vec<u8>,
    /// The body's output cap (`max_tokens` and its kin), for a reservation.
    pub max_output: Option<u64>,
    /// An OpenAI chat stream that asked for no usage report, as the
    /// canonical request: if its answer reports none, its prompt is
    /// counted from this (the bytes are gone upstream by then).
    pub estimate_from: Option<Box<crate::translate::canonical::ChatRequest>>,
}

impl ProxyRequest {
    /// A call that may generate tokens (a body-carrying method) but names
    /// no model to price them by: a metered key may not make it, since
    /// nothing could be reserved for it.
    pub(crate) fn unmetered(&self, model: &str) -> bool {
        model.is_empty() && matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
    }
}

/// Plans `/{provider}/{rest}`. `body` is only read here (model, stream,
/// output cap); the bytes are moved into the plan by the caller.
pub(crate) fn plan(
    gateway: &Gateway,
    head: &RequestHead,
    provider: &str,
    rest: &str,
    dialect: Dialect,
    body: &[u8],
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
    let json = serde_json::from_slice::<Value>(body).ok();
    let field = |name: &str| json.as_ref().and_then(|v| v.get(name));
    let gemini_model = gemini_path_model(rest);
    let model = field("model")
        .and_then(Value::as_str)
        .or(gemini_model)
        .unwrap_or_default()
        .to_string();
    let stream = field("stream").and_then(Value::as_bool).unwrap_or(false)
        || rest.contains(":streamGenerateContent");
    let max_output = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .into_iter()
        .find_map(|name| field(name).and_then(Value::as_u64))
        .or_else(|| {
            field("generationConfig")
                .and_then(|c| c.get("maxOutputTokens"))
                .and_then(Value::as_u64)
        });
    let asks_usage = field("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    let estimate_from = (stream
        && !asks_usage
        && upstream.kind == ProviderKind::OpenAi
        && rest.ends_with("chat/completions"))
    .then(|| crate::translate::openai::canonical::decode_request(body).ok())
    .flatten()
    .map(Box::new);
    Ok(Plan {
        kind: CallKind::Proxy { stream },
        dialect,
        request: CallRequest::Proxy(Box::new(ProxyRequest {
            method: head.method.clone(),
            target: target::upstream_target(root, rest, query.as_deref()),
            headers: headers::forwarded_request(&head.headers),
            body: Vec::new(),
            max_output,
            estimate_from,
        })),
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

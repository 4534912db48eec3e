//! From a validated request to the upstream call that serves it: which
//! dialect the client speaks, what it asked for, and where it may go.

use serde_json::{Map, Value};

use super::call::{CallKind, CallRequest};
use crate::api::{ApiError, Dialect, ErrorKind, GeminiMethod};
use crate::gateway::{Gateway, ProviderKind};
use crate::http1::RequestHead;
use crate::route::{self, Candidate};
use crate::stored::{Recall, Recalled};
use crate::translate::canonical::ChatRequest;
use crate::translate::embed::{self, GeminiShape};
use crate::translate::{anthropic, gemini, openai, responses};

/// An upstream call to make: what, in which client dialect, to whom.
pub(crate) struct Plan {
    pub kind: CallKind,
    pub dialect: Dialect,
    pub request: CallRequest,
    pub candidates: Vec<Candidate>,
    /// A Responses request's stored state.
    pub stored: StoredPlan,
}

/// What a Responses call does with stored state.
#[derive(Debug, Default)]
pub(crate) struct StoredPlan {
    /// The answer is kept, made from this conversation (as items).
    pub context: Option<Vec<Value>>,
    /// A provider that takes the Responses API itself gets the earlier
    /// turns in `input` (they are the gateway's own), not the client's
    /// `previous_response_id`, which the answer still echoes.
    pub drop_previous: bool,
}

/// A Responses request planned, or what it refers to in the store,
/// looked up first.
pub(crate) enum Responses {
    Ready(Plan),
    Recall(Recall),
}

impl Plan {
    /// With `refuse_unpriced_models` set, a model without a price is not
    /// served: such candidates are dropped, and a request left with none
    /// is refused before any upstream call. 404, as OpenRouter answers
    /// when no endpoint meets a request's routing limits (`max_price`):
    /// the model is not available here, which is what an SDK's
    /// `NotFoundError` means, and not a malformed request (400), a
    /// missing permission of this key (403) or a lack of credit (402).
    /// Counting tokens costs nothing and is never refused.
    pub(crate) fn priced_only(mut self, gateway: &Gateway) -> Result<Plan, ApiError> {
        if !gateway.refuses_unpriced() || self.kind == CallKind::CountTokens {
            return Ok(self);
        }
        let priced = |c: &Candidate| {
            gateway
                .providers()
                .get(c.provider)
                .is_some_and(|p| gateway.price(&p.name, &c.model).is_some())
        };
        let Some(first) = self.candidates.first().cloned() else {
            return Ok(self);
        };
        // A proxied call naming no model has nothing to price (see
        // `ProxyRequest::unmetered` for what a metered key may do).
        if matches!(self.kind, CallKind::Proxy { .. }) && first.model.is_empty() {
            return Ok(self);
        }
        self.candidates.retain(priced);
        if !self.candidates.is_empty() {
            return Ok(self);
        }
        let provider = gateway
            .providers()
            .get(first.provider)
            .map_or("", |p| p.name.as_str());
        Err(ApiError::new(
            self.dialect,
            ErrorKind::NotFound,
            format!(
                "model `{provider}/{}` has no price on this gateway, and it refuses unpriced models",
                first.model
            ),
        )
        .with_code("model_unpriced"))
    }
}

pub(crate) fn openai_chat(gateway: &Gateway, body: &[u8]) -> Result<Plan, ApiError> {
    let req = openai::parse_chat(body)?;
    let models: Vec<&str> = req.models.iter().map(String::as_str).collect();
    let candidates = route::candidates(gateway, Dialect::OpenAi, req.model.as_deref(), &models)?;
    Ok(Plan {
        kind: CallKind::Chat {
            stream: req.stream,
            include_usage: req.include_usage || (req.stream && gateway.always_includes_usage()),
            json_array: false,
        },
        dialect: Dialect::OpenAi,
        request: CallRequest::OpenAi {
            body: req.body,
            canonical: None,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

pub(crate) fn openai_embeddings(gateway: &Gateway, body: &[u8]) -> Result<Plan, ApiError> {
    let req = openai::parse_embeddings(body)?;
    let models: Vec<&str> = req.models.iter().map(String::as_str).collect();
    let candidates = route::candidates(gateway, Dialect::OpenAi, req.model.as_deref(), &models)?;
    // Token-array input has no canonical form; an OpenAI-compatible
    // provider still takes it as it is.
    let canonical = embed::decode_openai(&req.body).map(Box::new);
    Ok(Plan {
        kind: CallKind::Embeddings,
        dialect: Dialect::OpenAi,
        request: CallRequest::Embed {
            body: req.body,
            shape: None,
            canonical,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

/// `POST /v1/responses`: OpenAI's Responses API, served by any provider:
/// passed through to one that takes it natively, translated for the
/// rest. A request that refers to stored state (`previous_response_id`,
/// `item_reference`) is planned once the host has `recalled` it.
pub(crate) fn openai_responses(
    gateway: &Gateway,
    body: &[u8],
    recalled: Option<Recalled>,
    caller: super::Caller,
) -> Result<Responses, ApiError> {
    let mut body = responses::parse_body(body)?;
    if !gateway.stores_responses() {
        // Nothing is kept here, and a native provider is asked to keep
        // nothing either; the answer says `store: false`.
        body.insert("store".into(), Value::Bool(false));
    }
    let (model, models, stream) = responses::routing(&body)?;
    let names: Vec<&str> = models.iter().map(String::as_str).collect();
    let candidates = route::candidates(gateway, Dialect::Responses, model.as_deref(), &names)?;
    let mut drop_previous = false;
    let (native, expanded) = match recalled {
        Some(recalled) => {
            let expanded = responses::expand(body, &recalled)?;
            drop_previous = expanded.drop_previous;
            (expanded.native, Some(expanded.translated))
        }
        None => {
            let (previous, items) = responses::references(&body);
            if gateway.stores_responses() && (previous.is_some() || !items.is_empty()) {
                return Ok(Responses::Recall(Recall {
                    owner: caller.key_id(),
                    previous,
                    items,
                }));
            }
            (body, None)
        }
    };
    let decoded = match &expanded {
        None => responses::decode_body(&native),
        Some(Ok(whole)) => responses::decode_body(whole),
        Some(Err(err)) => Err(err.clone()),
    };
    let keep =
        gateway.stores_responses() && native.get("store").and_then(Value::as_bool) != Some(false);
    let context = keep.then(|| {
        let whole = match &expanded {
            Some(Ok(whole)) => whole,
            _ => &native,
        };
        responses::input_items(whole.get("input"))
    });
    let (canonical, refused) = match decoded {
        Ok(req) => (req, None),
        // What has no canonical form (built-in tools, a field only OpenAI
        // knows, what this key has not stored) can still go to a provider
        // that takes the Responses API itself; another candidate is
        // refused with this.
        Err(err) if candidates.iter().any(|c| speaks_responses(gateway, c)) => {
            let placeholder = ChatRequest {
                model: model.clone().unwrap_or_default(),
                stream,
                max_tokens: native
                    .get("max_output_tokens")
                    .and_then(crate::translate::integer::as_u32),
                ..ChatRequest::default()
            };
            (placeholder, Some(Box::new(err)))
        }
        Err(err) => return Err(err),
    };
    Ok(Responses::Ready(Plan {
        kind: CallKind::Chat {
            stream,
            include_usage: true,
            json_array: false,
        },
        dialect: Dialect::Responses,
        request: CallRequest::Foreign {
            body: native,
            canonical: Box::new(canonical),
            forward: Vec::new(),
            refused,
        },
        candidates,
        stored: StoredPlan {
            context,
            drop_previous,
        },
    }))
}

fn speaks_responses(gateway: &Gateway, candidate: &Candidate) -> bool {
    gateway
        .providers()
        .get(candidate.provider)
        .is_some_and(|p| p.responses)
}

/// `POST …/models/{model}:embedContent` and `:batchEmbedContents`: to a
/// Gemini provider as they are, translated for an OpenAI-compatible one.
pub(crate) fn gemini_embed(
    gateway: &Gateway,
    model: &str,
    method: GeminiMethod,
    body: &[u8],
) -> Result<Plan, ApiError> {
    let native = object(body, Dialect::Google)?;
    let shape = match method {
        GeminiMethod::EmbedContent => GeminiShape::Single,
        _ => GeminiShape::Batch,
    };
    let canonical = match embed::decode_gemini(&native, shape) {
        Ok(req) => Ok(Box::new(req)),
        // Parts only Gemini reads (images) may still go to Gemini.
        Err(err) if err.code == Some("untranslatable_input") => Err(err),
        Err(err) => return Err(err),
    };
    let candidates = native_candidates(gateway, Dialect::Google, model)?;
    Ok(Plan {
        kind: CallKind::Embeddings,
        dialect: Dialect::Google,
        request: CallRequest::Embed {
            body: native,
            shape: Some(shape),
            canonical,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

/// `POST /v1/messages`. A bare `claude-…` model goes to the Anthropic
/// provider; `provider/model` to any.
pub(crate) fn anthropic_messages(
    gateway: &Gateway,
    head: &RequestHead,
    body: &[u8],
) -> Result<Plan, ApiError> {
    let canonical = anthropic::decode_request(None, body)?;
    let candidates = native_candidates(gateway, Dialect::Anthropic, &canonical.model)?;
    let forward = anthropic_headers(head);
    Ok(Plan {
        kind: CallKind::Chat {
            stream: canonical.stream,
            // Anthropic streams always carry usage.
            include_usage: true,
            json_array: false,
        },
        dialect: Dialect::Anthropic,
        request: CallRequest::Foreign {
            body: object(body, Dialect::Anthropic)?,
            canonical: Box::new(canonical),
            forward,
            refused: None,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

/// The most one batch request (`params`: a `/v1/messages` body) can cost,
/// micro-USD: its bytes bound its prompt's tokens, its `max_tokens` (else
/// the model's cap) its output, at the dearest rate of the dearest
/// candidate it may fall back to. A 400 when `params` is not a valid
/// Messages request; a model no provider serves costs nothing here (its
/// request ends errored when it runs).
pub(super) fn batch_request_max_cost(gateway: &Gateway, params: &[u8]) -> Result<u64, ApiError> {
    let canonical = anthropic::decode_request(None, params)?;
    let Ok(candidates) = native_candidates(gateway, Dialect::Anthropic, &canonical.model) else {
        return Ok(0);
    };
    let prompt = params.len() as u64;
    let most = candidates
        .iter()
        .filter_map(|c| {
            let provider = &gateway.providers().get(c.provider)?.name;
            let price = gateway.price(provider, &c.model)?;
            let output = canonical
                .max_tokens
                .map_or_else(|| gateway.output_cap(provider, &c.model), u64::from);
            Some(price.max_cost(prompt, output).0)
        })
        .max();
    Ok(most.unwrap_or(0))
}

/// `POST /v1beta/models/{model}:generateContent` and
/// `:streamGenerateContent` (also under `/v1/`). A bare `gemini-…` model
/// goes to the Gemini provider.
pub(crate) fn gemini_generate(
    gateway: &Gateway,
    head: &RequestHead,
    model: &str,
    method: GeminiMethod,
    body: &[u8],
) -> Result<Plan, ApiError> {
    let stream = method == GeminiMethod::StreamGenerateContent;
    let mut canonical = gemini::decode_request(Some(model), body)?;
    canonical.stream = stream;
    canonical.include_usage = true;
    let candidates = native_candidates(gateway, Dialect::Google, model)?;
    let sse = head
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
    Ok(Plan {
        kind: CallKind::Chat {
            stream,
            include_usage: true,
            json_array: stream && !sse,
        },
        dialect: Dialect::Google,
        request: CallRequest::Foreign {
            body: object(body, Dialect::Google)?,
            canonical: Box::new(canonical),
            forward: Vec::new(),
            refused: None,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

/// Where a native-dialect request's model may go: a bare name to the
/// dialect's own provider, `provider/model` to any.
fn native_candidates(
    gateway: &Gateway,
    dialect: Dialect,
    model: &str,
) -> Result<Vec<Candidate>, ApiError> {
    let native = match dialect {
        Dialect::Anthropic => ProviderKind::Anthropic,
        Dialect::Google => ProviderKind::Gemini,
        Dialect::OpenAi | Dialect::Responses => ProviderKind::OpenAi,
    };
    route::candidates_native(gateway, dialect, Some(native), Some(model), &[])
}

/// The client's Anthropic API version and beta flags, forwarded to an
/// Anthropic provider.
fn anthropic_headers(head: &RequestHead) -> Vec<(&'static str, String)> {
    ["anthropic-version", "anthropic-beta"]
        .into_iter()
        .filter_map(|name| head.header(name).map(|value| (name, value.to_string())))
        .collect()
}

fn object(body: &[u8], dialect: Dialect) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid_request(
            dialect,
            "request body must be a JSON object",
        )),
    }
}

/// `POST /v1/messages/count_tokens`. The body is a messages request
/// without `max_tokens`.
pub(crate) fn anthropic_count_tokens(
    gateway: &Gateway,
    head: &RequestHead,
    body: &[u8],
) -> Result<Plan, ApiError> {
    let native = object(body, Dialect::Anthropic)?;
    let mut for_decoding = native.clone();
    // Only the decoder needs it; it is not sent.
    for_decoding.entry("max_tokens").or_insert(Value::from(1));
    let bytes = serde_json::to_vec(&for_decoding).unwrap_or_default();
    let canonical = anthropic::decode_request(None, &bytes)?;
    let candidates = native_candidates(gateway, Dialect::Anthropic, &canonical.model)?;
    let forward = anthropic_headers(head);
    Ok(Plan {
        kind: CallKind::CountTokens,
        dialect: Dialect::Anthropic,
        request: CallRequest::Foreign {
            body: native,
            canonical: Box::new(canonical),
            forward,
            refused: None,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

/// `POST …/models/{model}:countTokens`: `{"contents": …}` or a whole
/// `{"generateContentRequest": …}`.
pub(crate) fn gemini_count_tokens(
    gateway: &Gateway,
    model: &str,
    body: &[u8],
) -> Result<Plan, ApiError> {
    let native = object(body, Dialect::Google)?;
    let canonical = match native.get("generateContentRequest") {
        Some(inner) => {
            let bytes = serde_json::to_vec(inner).unwrap_or_default();
            gemini::decode_request(Some(model), &bytes)?
        }
        None => gemini::decode_request(Some(model), body)?,
    };
    let candidates = native_candidates(gateway, Dialect::Google, model)?;
    Ok(Plan {
        kind: CallKind::CountTokens,
        dialect: Dialect::Google,
        request: CallRequest::Foreign {
            body: native,
            canonical: Box::new(canonical),
            forward: Vec::new(),
            refused: None,
        },
        candidates,
        stored: StoredPlan::default(),
    })
}

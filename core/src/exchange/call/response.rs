//! Whole answers: the normalized or translated body of a non-stream call,
//! a provider's error in the client's dialect, a whole answer streamed to
//! a client that asked to stream, and locally counted tokens.

use super::*;
use crate::api::upstream_error;
use crate::translate::canonical::ChatResponse;
use crate::translate::responses;

impl Call {
    /// The final answer from a whole upstream body.
    pub(super) fn buffered_response(&mut self, gateway: &Gateway) -> Response {
        let body = std::mem::take(&mut self.buffered);
        let upstream = self.upstream_kind(gateway);
        let (provider, model) = self.served(gateway);
        if (200..300).contains(&self.status) && self.kind == CallKind::Embeddings {
            let price = self.price(gateway);
            return self.embed_response(upstream, body, &provider, &model, &price);
        } else if (200..300).contains(&self.status) && self.kind == CallKind::CountTokens {
            if let Some(tokens) = count::read(upstream, &body) {
                return Response::json(200, count::render(self.dialect, tokens));
            }
        } else if (200..300).contains(&self.status) && self.kind.stream() {
            // Asked to stream, answered in one piece (some compatible
            // servers ignore `stream`): the client still gets the stream
            // it asked for, in its dialect.
            let price = self.price(gateway);
            if let Some(response) =
                self.stream_from_whole(upstream, &body, &provider, &model, price)
            {
                return response;
            }
        } else if (200..300).contains(&self.status) {
            let native = self.native_now(gateway);
            if native && self.dialect != Dialect::OpenAi {
                // Same dialect: the body goes back as sent; it is read only
                // for the usage to bill.
                let read = match self.dialect {
                    Dialect::Responses => responses::upstream::decode_response(&body),
                    _ => dispatch::decode_response(upstream, &body),
                };
                if let Ok(resp) = read {
                    self.usage = resp.usage;
                    // Relayed as sent: the client sees the provider's id.
                    self.response_id = Some(resp.id).filter(|id| !id.is_empty());
                    if self.dialect == Dialect::Responses {
                        self.note_response(|| serde_json::from_slice(&body).ok(), true);
                    }
                    let content_type = self
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/json".into());
                    return Response {
                        status: self.status,
                        headers: vec![("Content-Type", content_type)],
                        body,
                    };
                }
            } else if native {
                let price = self.price(gateway);
                if let Some(answer) = normalize_chat(&body, &provider, &model, &price) {
                    self.usage = answer.usage;
                    self.response_id = answer.id;
                    return Response::json(self.status, answer.bytes);
                }
            } else if let Ok(mut resp) = dispatch::decode_response(upstream, &body) {
                self.usage = resp.usage;
                if resp.created.is_none() {
                    resp.created = self.created;
                }
                self.response_id = self.translated_id(&mut resp);
                let served = if resp.model.is_empty() {
                    &model
                } else {
                    &resp.model
                };
                let label = format!("{provider}/{served}");
                let cost = resp.usage.map(|u| self.price(gateway).cost(&u));
                let body = match self.echoed_request() {
                    // A `response` object echoes the request's settings.
                    Some(request) => responses::encode_response(&resp, &label, request, cost),
                    None => dispatch::encode_response(self.dialect, &resp, &label, cost),
                };
                if self.dialect == Dialect::Responses {
                    self.note_response(|| serde_json::from_slice(&body).ok(), false);
                }
                return Response::json(200, body);
            }
            let err = ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                "the provider's response is not valid JSON",
            );
            return Response::from(&err);
        }
        if matches!(self.status, 401 | 403 | 407) {
            // The provider refused the gateway's own key. Relayed as is, the
            // client's SDK would blame the client's key, and OpenAI's text
            // even quotes part of ours.
            let err = ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                format!(
                    "provider `{provider}` rejected the gateway's credentials ({})",
                    self.status
                ),
            )
            .with_code("upstream_auth_failed");
            return Response::from(&err);
        }
        // The Responses API's errors have OpenAI's shape.
        let same_shape = dispatch::dialect_of(upstream) == self.dialect
            || (self.dialect == Dialect::Responses && upstream == ProviderKind::OpenAi);
        let mut response = if same_shape {
            // A provider error in the client's own dialect keeps its status,
            // so SDKs raise the same exception they would against the
            // provider; its body is relayed as sent when it has the
            // dialect's error shape, and re-shaped around its message when not.
            match upstream_error::normalize(self.dialect, self.status, &body) {
                None => {
                    let content_type = self
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/json".into());
                    Response {
                        status: self.status,
                        headers: vec![("Content-Type", content_type)],
                        body,
                    }
                }
                Some(normalized) => Response::json(self.status, normalized),
            }
        } else {
            // Another dialect's error: same status class, the provider's
            // message, in the shape the client's SDK parses.
            let message = dispatch::decode_error(upstream, &body)
                .unwrap_or_else(|| format!("the provider answered {}", self.status));
            let kind = ErrorKind::from_upstream_status(self.status);
            Response::from(&ApiError::new(self.dialect, kind, message).with_code("upstream_error"))
        };
        if let Some(retry_after) = self.retry_after.take() {
            response = response.header("Retry-After", retry_after);
        }
        response
    }

    /// A whole upstream answer as a complete stream in the client's dialect.
    pub(super) fn stream_from_whole(
        &mut self,
        upstream: ProviderKind,
        body: &[u8],
        provider: &str,
        model: &str,
        price: Price,
    ) -> Option<Response> {
        let mut resp = dispatch::decode_response(upstream, body).ok()?;
        self.usage = resp.usage;
        if resp.created.is_none() {
            resp.created = self.created;
        }
        self.response_id = self.translated_id(&mut resp);
        let (include_usage, json_array) = match self.kind {
            CallKind::Chat {
                include_usage,
                json_array,
                ..
            } => (include_usage, json_array),
            _ => (false, false),
        };
        let served = if resp.model.is_empty() {
            model
        } else {
            resp.model.as_str()
        };
        let label = format!("{provider}/{served}");
        let mut encoder =
            dispatch::StreamEncoder::new(self.dialect, &label, include_usage, json_array)
                .with_created(resp.created)
                .with_price(Some(price))
                .with_request(self.echoed_request());
        let mut out = Vec::new();
        for event in resp.to_events() {
            encoder.on_event(&event, &mut out);
        }
        encoder.finish(&mut out);
        let response = encoder.take_response();
        self.note_response(|| response, false);
        let content_type = if json_array {
            "application/json"
        } else {
            "text/event-stream"
        };
        Some(Response {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.to_string()),
                ("Cache-Control", "no-cache".to_string()),
            ],
            body: out,
        })
    }

    /// The id a translated answer shows the client: the provider's in the
    /// client dialect's form, or, when the provider gave none, the
    /// gateway's own (`gen-<request id>`, written into the answer too).
    fn translated_id(&self, resp: &mut ChatResponse) -> Option<String> {
        if resp.id.is_empty() {
            resp.id = format!("gen-{}", self.request_id.as_str());
        }
        dispatch::client_response_id(self.dialect, &resp.id)
    }

    /// Counting for an OpenAI-compatible provider, which has no counting
    /// endpoint: the model's own tokenizer, here.
    pub(super) fn count_locally(&mut self, io: &mut Io<'_>) -> Finished {
        let model = self
            .candidate()
            .map(|c| c.model.clone())
            .unwrap_or_default();
        let tokens = match &self.request {
            CallRequest::Foreign { canonical, .. } => {
                crate::tokens::count_chat_input(&model, canonical)
            }
            CallRequest::OpenAi {
                canonical: Some(canonical),
                ..
            } => crate::tokens::count_chat_input(&model, canonical),
            CallRequest::OpenAi { .. } | CallRequest::Embed { .. } | CallRequest::Proxy(_) => 0,
        };
        let response = Response::json(200, count::render(self.dialect, tokens));
        self.respond(io, response, true)
    }
}

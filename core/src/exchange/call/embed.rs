//! Embeddings calls: which providers can serve them, the upstream request
//! for each, and the answer in the client's dialect. OpenAI's and Gemini's
//! APIs embed; Anthropic's does not.

use super::*;
use crate::gateway::Provider;
use crate::translate::embed;

impl Call {
    /// Why the candidate's provider cannot serve this embeddings call, in
    /// the client's dialect; `None` when it can (or this is no embeddings
    /// call).
    pub(super) fn embed_refusal(&self, gateway: &Gateway, provider: usize) -> Option<ApiError> {
        let CallRequest::Embed { canonical, .. } = &self.request else {
            return None;
        };
        let provider = gateway.providers().get(provider)?;
        if provider.kind == ProviderKind::Anthropic {
            // 404, as OpenAI answers a chat model on its embeddings route:
            // the request is well formed, the embedding model is not here.
            let err = ApiError::new(
                self.dialect,
                ErrorKind::NotFound,
                format!(
                    "provider `{}` speaks Anthropic's API, which has no embeddings; \
                     use an OpenAI-compatible or Gemini provider",
                    provider.name
                ),
            )
            .with_code("unsupported_provider");
            return Some(err);
        }
        match canonical {
            Err(err) if !self.native(provider) => Some(err.clone().in_dialect(self.dialect)),
            _ => None,
        }
    }

    /// The target and body for the current candidate; `None` if it cannot
    /// serve the call (`embed_refusal` said so before connecting).
    pub(super) fn embed_upstream(
        &self,
        provider: &Provider,
        model: &str,
    ) -> Option<(String, Vec<u8>)> {
        let CallRequest::Embed {
            body,
            shape,
            canonical,
        } = &self.request
        else {
            return None;
        };
        let base = &provider.addr.base_path;
        let (path, bytes) = match (provider.kind, shape) {
            (ProviderKind::OpenAi, None) => (
                "/embeddings".to_owned(),
                upstream_body(body, model, provider.official, false),
            ),
            (ProviderKind::Gemini, Some(shape)) => embed::native_gemini(body, *shape, model),
            (ProviderKind::OpenAi, Some(_)) => (
                "/embeddings".to_owned(),
                embed::encode_openai(canonical.as_ref().ok()?, model),
            ),
            (ProviderKind::Gemini, None) => embed::encode_gemini(canonical.as_ref().ok()?, model),
            (ProviderKind::Anthropic, _) => return None,
        };
        Some((format!("{base}{path}"), bytes))
    }

    /// A provider's successful embeddings answer, for the client: passed
    /// through (model label normalized on OpenAI's route) or translated;
    /// its usage kept for billing.
    pub(super) fn embed_response(
        &mut self,
        upstream: ProviderKind,
        body: Vec<u8>,
        provider: &str,
        model: &str,
        price: &Price,
    ) -> Response {
        let (shape, encoding) = match &self.request {
            CallRequest::Embed { body, shape, .. } => (*shape, embed::openai_encoding(body)),
            _ => (None, embed::Encoding::Float),
        };
        let label = format!("{provider}/{model}");
        let answer = match (upstream, shape) {
            (ProviderKind::OpenAi, None) => normalize_embeddings(&body, provider, model, price)
                .map(|(bytes, usage)| (bytes, usage, self.status)),
            (ProviderKind::Gemini, Some(_)) => {
                embed::decode_gemini_response(&body).map(|e| (body, e.usage, self.status))
            }
            (ProviderKind::OpenAi, Some(shape)) => embed::decode_openai_response(&body)
                .map(|e| (embed::encode_gemini_response(&e, shape), e.usage, 200)),
            (ProviderKind::Gemini, None) => embed::decode_gemini_response(&body).map(|e| {
                let cost = e.usage.map(|u| price.cost(&u));
                (
                    embed::encode_openai_response(&e, &label, encoding, cost),
                    e.usage,
                    200,
                )
            }),
            (ProviderKind::Anthropic, _) => None,
        };
        match answer {
            Some((bytes, usage, status)) => {
                self.usage = usage;
                Response::json(status, bytes)
            }
            None => Response::from(&ApiError::new(
                self.dialect,
                ErrorKind::BadGateway,
                "the provider's embeddings answer could not be read",
            )),
        }
    }
}

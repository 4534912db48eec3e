//! The endpoint table: method + path → endpoint, dialect and scope.

use std::borrow::Cow;

use http::header::HeaderName;
use http::Method;

use super::{ApiError, Dialect};

/// What a credential must be allowed to do for a request to proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// No credential needed (`/healthz`).
    Public,
    /// Any valid API key.
    Inference,
    /// A management key (or the master key).
    Management,
    /// Any valid key, a management key included: a key's own record.
    Key,
}

/// Gemini `models/{model}:{method}` verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeminiMethod {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

/// Operations under `/v1/messages/batches`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp<'a> {
    Create,
    List,
    Get(&'a str),
    Cancel(&'a str),
    Results(&'a str),
    Delete(&'a str),
}

/// `/v1/responses/{id}…`: a stored response (the id as sent, encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredRoute<'a> {
    Get(&'a str),
    Delete(&'a str),
    InputItems(&'a str),
}

/// A recognized route. Borrowed parts point into the request target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Health,
    /// `GET /readyz`: whether the store answers (asked of the host), no
    /// credential needed.
    Ready,
    /// `GET /openapi.yaml`: the API description this build serves.
    OpenApi,
    /// `GET /dashboard/…`: one of the dashboard's embedded files, or
    /// `None` for a name it has no file for (a public 404, as the whole
    /// namespace is public: no key is asked for first).
    Dashboard(Option<&'static super::dashboard::Asset>),
    ChatCompletions,
    /// `POST /v1/responses`: OpenAI's Responses API.
    Responses,
    /// `GET`/`DELETE /v1/responses/{id}`, `GET …/{id}/input_items`.
    StoredResponse(StoredRoute<'a>),
    Embeddings,
    /// `GET /v1/models` (and `/v1beta/models`), answered in the shape of
    /// the dialect the client speaks.
    ListModels(Dialect),
    /// `GET /v1/models/{model}` (and `/v1beta/models/{model}`); the model
    /// percent-decoded, possibly `provider/model`.
    GetModel {
        dialect: Dialect,
        model: Cow<'a, str>,
    },
    Messages,
    CountTokens,
    MessageBatches(BatchOp<'a>),
    /// `GET /api/v1/models`: the catalog in OpenRouter's `Model` shape
    /// (pricing, architecture, supported parameters), paged.
    OpenRouterModels,
    /// `GET /api/v1/models/count`.
    OpenRouterModelCount,
    Gemini {
        /// `v1beta` or `v1`, as the client called it.
        version: &'a str,
        /// The model, percent-decoded; may be `provider/model`.
        model: Cow<'a, str>,
        method: GeminiMethod,
    },
    ListKeys,
    CreateKey,
    GetKey(&'a str),
    UpdateKey(&'a str),
    DeleteKey(&'a str),
    /// `GET /api/v1/key`: the calling key's own record.
    CurrentKey,
    /// `GET /api/v1/balance`.
    Balance,
    /// `POST /api/v1/balance`: add credits.
    AddCredits,
    /// `GET /api/v1/credits`.
    Credits,
    Transactions,
    /// `GET /api/v1/generation?id=`: one call's record.
    Generation,
    /// `GET /metrics`: the Prometheus exposition (a management key).
    Metrics,
    /// `/{provider}/{rest}`: raw pass-through to a configured provider;
    /// the gateway's own errors on it are in the provider's dialect.
    ProviderProxy {
        provider: &'a str,
        rest: &'a str,
        dialect: Dialect,
    },
}

impl Endpoint<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Endpoint::Messages | Endpoint::CountTokens | Endpoint::MessageBatches(_) => {
                Dialect::Anthropic
            }
            Endpoint::Gemini { .. } => Dialect::Google,
            Endpoint::Responses | Endpoint::StoredResponse(_) => Dialect::Responses,
            Endpoint::ListModels(dialect)
            | Endpoint::GetModel { dialect, .. }
            | Endpoint::ProviderProxy { dialect, .. } => *dialect,
            _ => Dialect::OpenAi,
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Endpoint::Health | Endpoint::Ready | Endpoint::OpenApi | Endpoint::Dashboard(_) => {
                Scope::Public
            }
            // OpenRouter lists models to any key; so does this gateway.
            Endpoint::CurrentKey
            | Endpoint::Generation
            | Endpoint::Transactions
            | Endpoint::OpenRouterModels
            | Endpoint::OpenRouterModelCount => Scope::Key,
            Endpoint::ListKeys
            | Endpoint::CreateKey
            | Endpoint::GetKey(_)
            | Endpoint::UpdateKey(_)
            | Endpoint::DeleteKey(_)
            | Endpoint::Balance
            | Endpoint::AddCredits
            | Endpoint::Credits
            | Endpoint::Metrics => Scope::Management,
            _ => Scope::Inference,
        }
    }

    /// A stable, low-cardinality name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::Health => "healthz",
            Endpoint::Ready => "readyz",
            Endpoint::OpenApi => "openapi",
            Endpoint::Dashboard(_) => "dashboard",
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Responses => "responses",
            Endpoint::StoredResponse(StoredRoute::InputItems(_)) => "response_input_items",
            Endpoint::StoredResponse(_) => "response",
            Endpoint::Embeddings => "embeddings",
            Endpoint::ListModels(_) => "models",
            Endpoint::GetModel { .. } => "model",
            Endpoint::OpenRouterModels => "openrouter_models",
            Endpoint::OpenRouterModelCount => "openrouter_model_count",
            Endpoint::Messages => "messages",
            Endpoint::CountTokens => "count_tokens",
            Endpoint::MessageBatches(_) => "message_batches",
            Endpoint::Gemini { method, .. } => match method {
                GeminiMethod::GenerateContent => "gemini_generate",
                GeminiMethod::StreamGenerateContent => "gemini_stream_generate",
                GeminiMethod::CountTokens => "gemini_count_tokens",
                GeminiMethod::EmbedContent => "gemini_embed",
                GeminiMethod::BatchEmbedContents => "gemini_batch_embed",
            },
            Endpoint::ListKeys | Endpoint::CreateKey => "keys",
            Endpoint::GetKey(_) | Endpoint::UpdateKey(_) | Endpoint::DeleteKey(_) => "key",
            Endpoint::CurrentKey => "current_key",
            Endpoint::Balance | Endpoint::AddCredits => "balance",
            Endpoint::Credits => "credits",
            Endpoint::Transactions => "transactions",
            Endpoint::Generation => "generation",
            Endpoint::Metrics => "metrics",
            Endpoint::ProviderProxy { .. } => "provider_proxy",
        }
    }
}

/// The dialect an unrecognized path most likely expects its errors in, so a
/// typo on an Anthropic or Gemini route still gets an error its SDK parses.
pub fn dialect_of_path(path: &str) -> Dialect {
    if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        Dialect::Anthropic
    } else if path.starts_with("/v1beta/")
        || path == "/v1beta"
        || (path.starts_with("/v1/models/") && path.contains(':'))
    {
        Dialect::Google
    } else {
        Dialect::OpenAi
    }
}

/// The dialect a request's headers say its client speaks, where a path
/// is shared: `GET /v1/models` is OpenAI's, Anthropic's and Gemini's `v1`
/// listing alike. Anthropic's SDKs always send `anthropic-version`;
/// Google's name themselves in `x-goog-api-client`. A key sent Google's
/// way (`x-goog-api-key`, `?key=`) says nothing: any client may use it.
/// The names are `HeaderName`s, not `&str`s: a header map looks a `&str`
/// up by parsing it into a name first, on every request.
pub fn spoken_dialect<'h>(header: &dyn Fn(&HeaderName) -> Option<&'h str>) -> Dialect {
    static ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
    static GOOG_API_CLIENT: HeaderName = HeaderName::from_static("x-goog-api-client");
    if header(&ANTHROPIC_VERSION).is_some() {
        Dialect::Anthropic
    } else if header(&GOOG_API_CLIENT).is_some() {
        Dialect::Google
    } else {
        Dialect::OpenAi
    }
}

/// Maps a request to its endpoint. `path` is the request target without the
/// query; `speaks` is the client's dialect by its headers
/// ([`spoken_dialect`]), which picks the answer's shape on shared paths.
/// `provider_dialect` says whether a first path segment names a configured
/// provider (for the `/{provider}/{path}` proxy), and which dialect it speaks.
pub fn classify<'a>(
    method: &Method,
    path: &'a str,
    speaks: Dialect,
    provider_dialect: &dyn Fn(&str) -> Option<Dialect>,
) -> Result<Endpoint<'a>, ApiError> {
    let not_allowed = |allow| Err(ApiError::method_not_allowed(dialect_of_path(path), allow));
    let is = |m: &Method| method == m;
    match path {
        "/healthz" => {
            return if is(&Method::GET) || is(&Method::HEAD) {
                Ok(Endpoint::Health)
            } else {
                not_allowed("GET, HEAD")
            }
        }
        "/readyz" => {
            return if is(&Method::GET) || is(&Method::HEAD) {
                Ok(Endpoint::Ready)
            } else {
                not_allowed("GET, HEAD")
            }
        }
        "/openapi.yaml" => return get(method, Endpoint::OpenApi, path),
        // OpenRouter's paths are aliases, so its clients need only a new
        // base URL; they speak OpenAI's dialect whatever their headers.
        "/v1/chat/completions" | "/api/v1/chat/completions" => {
            return post(method, Endpoint::ChatCompletions, path)
        }
        "/v1/embeddings" | "/api/v1/embeddings" => return post(method, Endpoint::Embeddings, path),
        "/v1/responses" | "/api/v1/responses" => return post(method, Endpoint::Responses, path),
        "/v1/models" => return get(method, Endpoint::ListModels(speaks), path),
        "/api/v1/models" => return get(method, Endpoint::OpenRouterModels, path),
        "/api/v1/models/count" => return get(method, Endpoint::OpenRouterModelCount, path),
        "/v1beta/models" => return get(method, Endpoint::ListModels(Dialect::Google), path),
        "/v1/messages" => return post(method, Endpoint::Messages, path),
        "/v1/messages/count_tokens" => return post(method, Endpoint::CountTokens, path),
        "/v1/messages/batches" => {
            return match *method {
                Method::POST => Ok(Endpoint::MessageBatches(BatchOp::Create)),
                Method::GET => Ok(Endpoint::MessageBatches(BatchOp::List)),
                _ => not_allowed("GET, POST"),
            }
        }
        "/api/v1/keys" => {
            return match *method {
                Method::GET => Ok(Endpoint::ListKeys),
                Method::POST => Ok(Endpoint::CreateKey),
                _ => not_allowed("GET, POST"),
            }
        }
        "/api/v1/key" => return get(method, Endpoint::CurrentKey, path),
        "/api/v1/balance" => {
            return match *method {
                Method::GET | Method::HEAD => Ok(Endpoint::Balance),
                Method::POST => Ok(Endpoint::AddCredits),
                _ => not_allowed("GET, HEAD, POST"),
            }
        }
        "/api/v1/credits" => return get(method, Endpoint::Credits, path),
        "/api/v1/transactions" => return get(method, Endpoint::Transactions, path),
        "/api/v1/generation" => return get(method, Endpoint::Generation, path),
        "/metrics" => return get(method, Endpoint::Metrics, path),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/dashboard") {
        if rest.is_empty() || rest.starts_with('/') {
            return get(
                method,
                Endpoint::Dashboard(super::dashboard::find(rest)),
                path,
            );
        }
    }
    for prefix in ["/v1/responses/", "/api/v1/responses/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return classify_stored(method, rest, path);
        }
    }
    if let Some(rest) = path.strip_prefix("/v1/messages/batches/") {
        return classify_batch(method, rest, path);
    }
    if let Some(id) = path.strip_prefix("/api/v1/keys/") {
        if id.is_empty() || id.contains('/') {
            return Err(ApiError::not_found(Dialect::OpenAi));
        }
        return match *method {
            Method::GET => Ok(Endpoint::GetKey(id)),
            Method::PATCH => Ok(Endpoint::UpdateKey(id)),
            Method::DELETE => Ok(Endpoint::DeleteKey(id)),
            _ => not_allowed("GET, PATCH, DELETE"),
        };
    }
    for (prefix, version) in [("/v1beta/models/", "v1beta"), ("/v1/models/", "v1")] {
        if let Some(rest) = path.strip_prefix(prefix) {
            // Gemini's calls carry a `:method` suffix; a model's own
            // resource (`GET /v1/models/{id}`, every dialect) has none.
            if let Some(endpoint) = classify_gemini(method, version, rest)? {
                return Ok(endpoint);
            }
            let dialect = if version == "v1beta" {
                Dialect::Google
            } else {
                speaks
            };
            return classify_model(method, dialect, rest);
        }
    }
    if let Some(endpoint) = classify_provider_gemini(method, path, provider_dialect)? {
        return Ok(endpoint);
    }
    if let Some(rest) = path.strip_prefix('/') {
        let (provider, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(dialect) = provider_dialect(provider).filter(|_| !provider.is_empty()) {
            return match *method {
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
                    Ok(Endpoint::ProviderProxy {
                        provider,
                        rest: tail,
                        dialect,
                    })
                }
                // TRACE would echo the request, credentials included;
                // CONNECT and OPTIONS mean nothing to a provider API.
                _ => Err(ApiError::method_not_allowed(
                    dialect,
                    "GET, POST, PUT, PATCH, DELETE",
                )),
            };
        }
    }
    Err(ApiError::not_found(dialect_of_path(path)))
}

fn post<'a>(method: &Method, endpoint: Endpoint<'a>, path: &str) -> Result<Endpoint<'a>, ApiError> {
    if *method == Method::POST {
        Ok(endpoint)
    } else {
        Err(ApiError::method_not_allowed(dialect_of_path(path), "POST"))
    }
}

fn get<'a>(method: &Method, endpoint: Endpoint<'a>, path: &str) -> Result<Endpoint<'a>, ApiError> {
    if *method == Method::GET || *method == Method::HEAD {
        Ok(endpoint)
    } else {
        Err(ApiError::method_not_allowed(
            dialect_of_path(path),
            "GET, HEAD",
        ))
    }
}

fn classify_batch<'a>(
    method: &Method,
    rest: &'a str,
    path: &str,
) -> Result<Endpoint<'a>, ApiError> {
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return Err(ApiError::not_found(Dialect::Anthropic));
    }
    let op = match (method.clone(), action) {
        (Method::GET, "") => BatchOp::Get(id),
        (Method::DELETE, "") => BatchOp::Delete(id),
        (Method::POST, "cancel") => BatchOp::Cancel(id),
        (Method::GET, "results") => BatchOp::Results(id),
        (_, "") => {
            return Err(ApiError::method_not_allowed(
                dialect_of_path(path),
                "GET, DELETE",
            ))
        }
        (_, "cancel") => return Err(ApiError::method_not_allowed(dialect_of_path(path), "POST")),
        (_, "results") => return Err(ApiError::method_not_allowed(dialect_of_path(path), "GET")),
        _ => return Err(ApiError::not_found(Dialect::Anthropic)),
    };
    Ok(Endpoint::MessageBatches(op))
}

/// `rest` is what follows `/v1/responses/`: `{id}` or `{id}/input_items`.
fn classify_stored<'a>(
    method: &Method,
    rest: &'a str,
    path: &str,
) -> Result<Endpoint<'a>, ApiError> {
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return Err(ApiError::not_found(Dialect::OpenAi));
    }
    let route = match (method.clone(), action) {
        (Method::GET | Method::HEAD, "") => StoredRoute::Get(id),
        (Method::DELETE, "") => StoredRoute::Delete(id),
        (Method::GET | Method::HEAD, "input_items") => StoredRoute::InputItems(id),
        (_, "") => {
            return Err(ApiError::method_not_allowed(
                dialect_of_path(path),
                "GET, HEAD, DELETE",
            ))
        }
        (_, "input_items") => {
            return Err(ApiError::method_not_allowed(
                dialect_of_path(path),
                "GET, HEAD",
            ))
        }
        _ => return Err(ApiError::not_found(Dialect::OpenAi)),
    };
    Ok(Endpoint::StoredResponse(route))
}

/// `rest` is what follows `models/`: `{model}:{method}`, where the model may
/// hold `/` (`openai/gpt-4o`) or its encoded form `%2F`. `Ok(None)` when the
/// path has no `:method` suffix (not a Gemini route).
fn classify_gemini<'a>(
    method: &Method,
    version: &'a str,
    rest: &'a str,
) -> Result<Option<Endpoint<'a>>, ApiError> {
    let Some((model, verb)) = rest.rsplit_once(':') else {
        return Ok(None);
    };
    let verb = match verb {
        "generateContent" => GeminiMethod::GenerateContent,
        "streamGenerateContent" => GeminiMethod::StreamGenerateContent,
        "countTokens" => GeminiMethod::CountTokens,
        "embedContent" => GeminiMethod::EmbedContent,
        "batchEmbedContents" => GeminiMethod::BatchEmbedContents,
        // An id with a colon (OpenAI's `ft:gpt-4o:org:id`) read as a model.
        _ if *method == Method::GET || *method == Method::HEAD => return Ok(None),
        _ => return Err(ApiError::not_found(Dialect::Google)),
    };
    if *method != Method::POST {
        return Err(ApiError::method_not_allowed(Dialect::Google, "POST"));
    }
    let model = percent_decode(model).ok_or_else(|| {
        ApiError::invalid_request(
            Dialect::Google,
            "model name is not valid percent-encoded UTF-8",
        )
    })?;
    if model.is_empty() {
        return Err(ApiError::invalid_request(
            Dialect::Google,
            "model name is empty",
        ));
    }
    Ok(Some(Endpoint::Gemini {
        version,
        model,
        method: verb,
    }))
}

/// `/v1beta/{provider}/{model}:{method}` (and under `/v1/`): the Vercel AI
/// SDK's Google provider takes any model id holding a `/` for a resource
/// path, so `google('openai/gpt-4o')` calls
/// `/v1beta/openai/gpt-4o:generateContent`. Read as the model
/// `openai/gpt-4o` when `{provider}` names a configured provider (or the
/// `google` alias) and the path ends in a Gemini method; `Ok(None)`
/// otherwise (the path goes on to the provider proxy, or a 404).
fn classify_provider_gemini<'a>(
    method: &Method,
    path: &'a str,
    provider_dialect: &dyn Fn(&str) -> Option<Dialect>,
) -> Result<Option<Endpoint<'a>>, ApiError> {
    let Some((version, rest)) = [("v1beta", "/v1beta/"), ("v1", "/v1/")]
        .into_iter()
        .find_map(|(version, prefix)| Some((version, path.strip_prefix(prefix)?)))
    else {
        return Ok(None);
    };
    let Some((provider, model)) = rest.split_once('/') else {
        return Ok(None);
    };
    if provider.is_empty() || !model.contains(':') || provider_dialect(provider).is_none() {
        return Ok(None);
    }
    classify_gemini(method, version, rest)
}

/// `GET …/models/{model}`: `rest` is the model, raw (`openai/gpt-4o`) or
/// encoded (`openai%2Fgpt-4o`, as the OpenAI and Anthropic SDKs send it).
fn classify_model<'a>(
    method: &Method,
    dialect: Dialect,
    rest: &'a str,
) -> Result<Endpoint<'a>, ApiError> {
    if *method != Method::GET && *method != Method::HEAD {
        return Err(ApiError::method_not_allowed(dialect, "GET, HEAD"));
    }
    let model = percent_decode(rest).ok_or_else(|| {
        ApiError::invalid_request(dialect, "model name is not valid percent-encoded UTF-8")
    })?;
    if model.is_empty() {
        return Err(ApiError::not_found(dialect));
    }
    Ok(Endpoint::GetModel { dialect, model })
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
/// `+` is left alone: it only means space in form bodies, not in paths.
pub fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

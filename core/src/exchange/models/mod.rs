//! The model catalog as each dialect's SDK reads it: OpenAI's list and
//! model object, Anthropic's paged `ModelInfo`s (`after_id`/`before_id`),
//! Gemini's `models[]` with page tokens. Answered by the core itself.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::api::endpoint::percent_decode;
use crate::api::{ApiError, Dialect, ErrorKind, Response};
use crate::gateway::{Gateway, ModelEntry};

pub(super) mod openrouter;

/// Anthropic's page size when the client names none, and its maximum.
const ANTHROPIC_DEFAULT_LIMIT: usize = 20;
const ANTHROPIC_MAX_LIMIT: usize = 1000;
/// Gemini's page size when the client names none, and its maximum.
const GEMINI_DEFAULT_PAGE: usize = 50;
const GEMINI_MAX_PAGE: usize = 1000;

/// `GET /v1/models` (or `/v1beta/models`) in the client's dialect.
pub(super) fn list(
    gateway: &Gateway,
    dialect: Dialect,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    match dialect {
        Dialect::OpenAi | Dialect::Responses => {
            Ok(Response::json(200, gateway.models_body().to_vec()))
        }
        Dialect::Anthropic => anthropic_list(gateway.models(), query),
        Dialect::Google => gemini_list(gateway.models(), query),
    }
}

/// `GET /v1/models/{model}` (or `/v1beta/models/{model}`): one model in the
/// client's dialect, or that dialect's 404.
pub(super) fn get(gateway: &Gateway, dialect: Dialect, model: &str) -> Result<Response, ApiError> {
    // Gemini clients may name the resource in full (`models/gemini-2.5-flash`).
    let name = match dialect {
        Dialect::Google => model.strip_prefix("models/").unwrap_or(model),
        _ => model,
    };
    let Some(entry) = gateway.model(name) else {
        return Err(ApiError::new(
            dialect,
            ErrorKind::NotFound,
            format!("model `{name}` is not in this gateway's catalog (GET /v1/models lists it)"),
        )
        .with_code("model_not_found"));
    };
    let body = match dialect {
        Dialect::OpenAi | Dialect::Responses => serde_json::to_value(entry).unwrap_or(Value::Null),
        Dialect::Anthropic => anthropic_model(entry),
        Dialect::Google => gemini_model(entry),
    };
    Ok(json_response(&body))
}

fn json_response(body: &Value) -> Response {
    Response::json(200, serde_json::to_vec(body).unwrap_or_default())
}

/// One query parameter, percent-decoded (`None` when absent or malformed).
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value)).flatten()
    })
}

/// A page size parameter: `default` when absent, an error outside `1..=max`.
fn page_size(
    query: Option<&str>,
    name: &str,
    default: usize,
    max: usize,
    dialect: Dialect,
) -> Result<usize, ApiError> {
    match param(query, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request(
                    dialect,
                    format!("`{name}` must be an integer from 1 to {max}"),
                )
            }),
    }
}

// --------------------------------------------------------------- Anthropic

/// Anthropic's list page: `limit` models after `after_id`, or the `limit`
/// models just before `before_id` (the SDK pages backwards with it).
fn anthropic_list(models: &[ModelEntry], query: Option<&str>) -> Result<Response, ApiError> {
    let dialect = Dialect::Anthropic;
    let limit = page_size(
        query,
        "limit",
        ANTHROPIC_DEFAULT_LIMIT,
        ANTHROPIC_MAX_LIMIT,
        dialect,
    )?;
    let position = |param_name: &str| -> Result<Option<usize>, ApiError> {
        let Some(id) = param(query, param_name) else {
            return Ok(None);
        };
        models
            .iter()
            .position(|m| m.id == id)
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_request(dialect, format!("`{param_name}` names no listed model"))
            })
    };
    let (page, has_more) = match (position("before_id")?, position("after_id")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                dialect,
                "`before_id` and `after_id` cannot be used together",
            ))
        }
        (Some(before), None) => {
            let start = before.saturating_sub(limit);
            (&models[start..before], start > 0)
        }
        (None, after) => {
            let start = after.map_or(0, |i| i + 1);
            let end = start.saturating_add(limit).min(models.len());
            (&models[start..end], end < models.len())
        }
    };
    let body = json!({
        "data": page.iter().map(anthropic_model).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|m| m.id.as_str()),
        "last_id": page.last().map(|m| m.id.as_str()),
    });
    Ok(json_response(&body))
}

/// Anthropic's `ModelInfo`. What the catalog does not know is `null`,
/// which the SDKs allow for every field but the four required ones.
fn anthropic_model(m: &ModelEntry) -> Value {
    json!({
        "type": "model",
        "id": m.id,
        "display_name": display_name(m),
        "created_at": rfc3339(m.created),
        "capabilities": null,
        "deprecated_at": null,
        "lifecycle": "active",
        "line": null,
        "max_input_tokens": m.input_token_limit,
        "max_tokens": m.output_token_limit,
        "retires_at": null,
    })
}

// ------------------------------------------------------------------ Gemini

/// Gemini's list page: `pageSize` models from `pageToken` (an opaque
/// offset this gateway issued as `nextPageToken`).
fn gemini_list(models: &[ModelEntry], query: Option<&str>) -> Result<Response, ApiError> {
    let dialect = Dialect::Google;
    let size = page_size(
        query,
        "pageSize",
        GEMINI_DEFAULT_PAGE,
        GEMINI_MAX_PAGE,
        dialect,
    )?;
    let start = match param(query, "pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        // Past the end is an empty last page, as an offset into a list
        // that shrank since the token was issued would be.
        Some(token) => token
            .parse::<usize>()
            .ok()
            .map(|i| i.min(models.len()))
            .ok_or_else(|| ApiError::invalid_request(dialect, "`pageToken` is not valid"))?,
    };
    let end = start.saturating_add(size).min(models.len());
    let mut body = Map::new();
    body.insert(
        "models".into(),
        models[start..end].iter().map(gemini_model).collect(),
    );
    if end < models.len() {
        body.insert("nextPageToken".into(), Value::from(end.to_string()));
    }
    Ok(json_response(&Value::Object(body)))
}

/// Gemini's `Model`: `name` is `models/{provider}/{model}`, which every
/// Gemini route of this gateway accepts; the methods are the ones this
/// gateway serves for it.
fn gemini_model(m: &ModelEntry) -> Value {
    let methods: &[&str] = if m.embedding {
        &["embedContent", "batchEmbedContents"]
    } else {
        &["generateContent", "streamGenerateContent", "countTokens"]
    };
    let mut model = Map::new();
    model.insert("name".into(), Value::from(format!("models/{}", m.id)));
    model.insert("baseModelId".into(), Value::from(m.id.as_str()));
    model.insert("version".into(), Value::from(""));
    model.insert("displayName".into(), Value::from(display_name(m)));
    if let Some(limit) = m.input_token_limit {
        model.insert("inputTokenLimit".into(), Value::from(limit));
    }
    if let Some(limit) = m.output_token_limit {
        model.insert("outputTokenLimit".into(), Value::from(limit));
    }
    model.insert("supportedGenerationMethods".into(), Value::from(methods));
    Value::Object(model)
}

fn display_name(m: &ModelEntry) -> &str {
    m.display_name
        .as_deref()
        .unwrap_or_else(|| m.id.split_once('/').map_or(m.id.as_str(), |(_, bare)| bare))
}

/// Unix seconds as an RFC 3339 UTC timestamp (Anthropic's `created_at`),
/// by the civil-from-days algorithm; the core has no clock or date crate.
fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_759_104_000), "2025-09-29T00:00:00Z");
        assert_eq!(rfc3339(1_715_367_049), "2024-05-10T18:50:49Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    fn gateway(n: usize) -> Gateway {
        let models = (0..n)
            .map(|i| ModelEntry::new("p", &format!("m{i}"), 0, "p"))
            .collect();
        Gateway::new(crate::Limits::default(), Vec::new(), models, None)
    }

    fn body(r: Result<Response, ApiError>) -> Value {
        let r = r.expect("200");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).expect("json")
    }

    fn ids(v: &Value, list: &str, key: &str) -> Vec<String> {
        v[list]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| m[key].as_str().expect("id").to_owned())
            .collect()
    }

    #[test]
    fn anthropic_pages_forwards_and_backwards() {
        let g = gateway(5);
        let page = body(list(&g, Dialect::Anthropic, Some("limit=2")));
        assert_eq!(ids(&page, "data", "id"), ["p/m0", "p/m1"]);
        assert_eq!(
            (&page["has_more"], &page["first_id"], &page["last_id"]),
            (&json!(true), &json!("p/m0"), &json!("p/m1"))
        );
        assert_eq!(page["data"][0]["type"], "model");
        assert_eq!(page["data"][0]["created_at"], "1970-01-01T00:00:00Z");
        let next = body(list(
            &g,
            Dialect::Anthropic,
            Some("limit=2&after_id=p%2Fm3"),
        ));
        assert_eq!(ids(&next, "data", "id"), ["p/m4"]);
        assert_eq!(next["has_more"], false);
        let back = body(list(&g, Dialect::Anthropic, Some("limit=2&before_id=p/m3")));
        assert_eq!(ids(&back, "data", "id"), ["p/m1", "p/m2"]);
        assert_eq!(back["has_more"], true);
        let empty = body(list(&gateway(0), Dialect::Anthropic, None));
        assert_eq!(
            empty,
            json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "after_id=nope",
            "after_id=p/m1&before_id=p/m2",
        ] {
            let err = list(&g, Dialect::Anthropic, Some(bad)).unwrap_err();
            assert_eq!(
                (err.status(), err.dialect),
                (400, Dialect::Anthropic),
                "{bad}"
            );
        }
    }

    #[test]
    fn gemini_pages_with_its_own_tokens() {
        let g = gateway(3);
        let first = body(list(&g, Dialect::Google, Some("pageSize=2")));
        assert_eq!(
            ids(&first, "models", "name"),
            ["models/p/m0", "models/p/m1"]
        );
        let token = first["nextPageToken"].as_str().expect("token");
        let rest = body(list(
            &g,
            Dialect::Google,
            Some(&format!("pageSize=2&pageToken={token}")),
        ));
        assert_eq!(ids(&rest, "models", "name"), ["models/p/m2"]);
        assert!(rest.get("nextPageToken").is_none());
        // Past the end: an empty last page; not an offset at all: 400.
        let past = body(list(&g, Dialect::Google, Some("pageToken=99")));
        assert_eq!(past["models"], json!([]));
        assert!(past.get("nextPageToken").is_none());
        let err = list(&g, Dialect::Google, Some("pageToken=x")).unwrap_err();
        assert_eq!((err.status(), err.dialect), (400, Dialect::Google));
    }

    #[test]
    fn one_model_by_full_or_bare_name() {
        let g = gateway(2);
        let openai = body(get(&g, Dialect::OpenAi, "p/m1"));
        assert_eq!(
            openai,
            json!({"id": "p/m1", "object": "model", "created": 0, "owned_by": "p"})
        );
        let gemini = body(get(&g, Dialect::Google, "models/m0"));
        assert_eq!(gemini["name"], "models/p/m0");
        assert_eq!(gemini["supportedGenerationMethods"][0], "generateContent");
        let anthropic = body(get(&g, Dialect::Anthropic, "m1"));
        assert_eq!(
            (&anthropic["id"], &anthropic["display_name"]),
            (&json!("p/m1"), &json!("m1"))
        );
        for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Google] {
            let err = get(&g, dialect, "p/unknown").unwrap_err();
            assert_eq!((err.status(), err.dialect), (404, dialect));
        }
    }

    #[test]
    fn google_names_the_gemini_providers_models_as_routing_does() {
        let gemini = crate::gateway::Provider {
            name: "gemini".into(),
            kind: crate::gateway::ProviderKind::Gemini,
            addr: crate::upstream::UpstreamAddr::parse("http://127.0.0.1:1").expect("url"),
            api_key: None,
            official: false,
            responses: false,
        };
        let models = vec![ModelEntry::new("gemini", "gemini-2.5-flash", 0, "google")];
        let g = Gateway::new(crate::Limits::default(), vec![gemini], models, None);
        // `google/gemini-2.5-flash` is served by chat, so it can be retrieved.
        for dialect in [Dialect::OpenAi, Dialect::Anthropic] {
            let found = body(get(&g, dialect, "google/gemini-2.5-flash"));
            assert_eq!(found["id"], "gemini/gemini-2.5-flash", "{dialect:?}");
        }
        let found = body(get(&g, Dialect::Google, "models/google/gemini-2.5-flash"));
        assert_eq!(found["name"], "models/gemini/gemini-2.5-flash");
        let err = get(&g, Dialect::OpenAi, "google/gemini-9").unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[test]
    fn query_parameters_are_decoded() {
        let q = Some("limit=2&after_id=openai%2Fgpt-4o&x");
        assert_eq!(param(q, "after_id").as_deref(), Some("openai/gpt-4o"));
        assert_eq!(param(q, "limit").as_deref(), Some("2"));
        assert_eq!(param(q, "x").as_deref(), Some(""));
        assert_eq!(param(q, "before_id"), None);
    }
}

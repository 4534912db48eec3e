//! From a management request (endpoint, query, JSON body) to a validated
//! [`ManageRequest`], or the 400 that says what is wrong.

use serde_json::{Map, Value};

use super::{
    parse_rfc3339, AllowlistError, CreditsShape, KeyPatch, KeySpec, LimitReset, ManageRequest,
    ModelAllowlist, RateLimitSpec,
};
use crate::api::{ApiError, Dialect, Endpoint};
use crate::exchange::Caller;

/// Key names are labels for people; a bound keeps records small.
const MAX_NAME_CHARS: usize = 256;
/// Limits are USD amounts; above this they are surely a mistake (and
/// their micro-USD would not fit the store's integers).
const MAX_LIMIT_USD: f64 = 1e9;

/// `Ok(None)` when the endpoint is not a management one.
pub fn parse(
    endpoint: &Endpoint<'_>,
    query: Option<&str>,
    body: &[u8],
    caller: Caller,
) -> Result<Option<ManageRequest>, ApiError> {
    let request = match endpoint {
        Endpoint::CreateKey => {
            let spec = key_spec(&object(body)?)?;
            grant_allowed(spec.management, caller)?;
            ManageRequest::CreateKey(spec)
        }
        Endpoint::ListKeys => list_query(query.unwrap_or(""))?,
        Endpoint::GetKey(hash) => ManageRequest::GetKey {
            hash: key_hash(hash)?,
        },
        Endpoint::UpdateKey(hash) => {
            let patch = key_patch(&object(body)?)?;
            grant_allowed(patch.management == Some(true), caller)?;
            ManageRequest::UpdateKey {
                hash: key_hash(hash)?,
                patch,
            }
        }
        Endpoint::DeleteKey(hash) => ManageRequest::DeleteKey {
            hash: key_hash(hash)?,
        },
        Endpoint::CurrentKey => ManageRequest::CurrentKey { caller },
        Endpoint::Transactions => ManageRequest::ListTransactions {
            query: super::transactions::parse_list(query)?,
            caller,
        },
        Endpoint::Generation => ManageRequest::GetGeneration {
            id: super::transactions::parse_generation(query)?,
            caller,
        },
        Endpoint::Credits => ManageRequest::Credits {
            shape: CreditsShape::Credits,
        },
        Endpoint::Balance => ManageRequest::Credits {
            shape: CreditsShape::Balance,
        },
        Endpoint::AddCredits => super::credits::add(body)?,
        Endpoint::Metrics => ManageRequest::Metrics,
        Endpoint::Ready => ManageRequest::Ready,
        _ => return Ok(None),
    };
    Ok(Some(request))
}

/// Only the master key hands out the management scope: a management key
/// that could mint or promote management keys could make itself
/// irrevocable by copying its power into keys its owner never saw (as at
/// OpenRouter, where provisioning keys come only from the account owner).
fn grant_allowed(grants_management: bool, caller: Caller) -> Result<(), ApiError> {
    if grants_management && caller != Caller::Master {
        return Err(ApiError::new(
            Dialect::OpenAi,
            crate::api::ErrorKind::PermissionDenied,
            "only the master key may create or promote management keys",
        )
        .with_code("forbidden"));
    }
    Ok(())
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::OpenAi, message).with_code("invalid_request")
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("the request body must be a JSON object")),
        Err(e) => Err(invalid(format!("the request body is not valid JSON: {e}"))),
    }
}

/// A key's public id is the hex SHA-256 of its secret: 64 hex digits.
/// Anything else cannot name a key, so it is a 404 like an unknown one.
fn key_hash(hash: &str) -> Result<String, ApiError> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash.to_ascii_lowercase())
    } else {
        Err(ApiError::new(
            Dialect::OpenAi,
            crate::api::ErrorKind::NotFound,
            "no key with this hash",
        )
        .with_code("not_found"))
    }
}

fn list_query(query: &str) -> Result<ManageRequest, ApiError> {
    let mut offset = 0;
    let mut include_disabled = false;
    let mut include_expired = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "offset" => {
                offset = value
                    .parse()
                    .map_err(|_| invalid("`offset` must be a non-negative integer"))?
            }
            "include_disabled" => include_disabled = boolean(name, value)?,
            "include_expired" => include_expired = boolean(name, value)?,
            // Filters ARouter has no notion of (`workspace_id`) select
            // everything there is.
            _ => {}
        }
    }
    Ok(ManageRequest::ListKeys {
        offset,
        include_disabled,
        include_expired,
    })
}

fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(format!("`{name}` must be true or false"))),
    }
}

fn key_spec(body: &Map<String, Value>) -> Result<KeySpec, ApiError> {
    let name = match body.get("name") {
        Some(Value::String(name)) => checked_name(name)?,
        _ => return Err(invalid("`name` is required and must be a string")),
    };
    Ok(KeySpec {
        name,
        limit_micros: nullable(body, "limit", limit)?.flatten(),
        limit_reset: nullable(body, "limit_reset", limit_reset)?.flatten(),
        include_byok_in_limit: field(body, "include_byok_in_limit", bool_value)?.unwrap_or(false),
        expires_at: nullable(body, "expires_at", expires_at)?.flatten(),
        rate_limit: nullable(body, "rate_limit", rate_limit)?.flatten(),
        management: field(body, "management", bool_value)?.unwrap_or(false),
        allowed_models: nullable(body, "allowed_models", allowed_models)?.flatten(),
    })
}

fn key_patch(body: &Map<String, Value>) -> Result<KeyPatch, ApiError> {
    Ok(KeyPatch {
        name: field(body, "name", |v| match v {
            Value::String(s) => checked_name(s),
            _ => Err(invalid("`name` must be a string")),
        })?,
        disabled: field(body, "disabled", bool_value)?,
        limit_micros: nullable(body, "limit", limit)?,
        limit_reset: nullable(body, "limit_reset", limit_reset)?,
        include_byok_in_limit: field(body, "include_byok_in_limit", bool_value)?,
        expires_at: nullable(body, "expires_at", expires_at)?,
        rate_limit: nullable(body, "rate_limit", rate_limit)?,
        management: field(body, "management", bool_value)?,
        allowed_models: nullable(body, "allowed_models", allowed_models)?,
    })
}

/// A field that may be absent (`None`) but not null.
fn field<T>(
    body: &Map<String, Value>,
    name: &str,
    read: impl Fn(&Value) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => Err(invalid(format!("`{name}` may not be null"))),
        Some(v) => read(v).map(Some),
    }
}

/// A field that may be absent (`None`), null (`Some(None)`) or set.
fn nullable<T>(
    body: &Map<String, Value>,
    _name: &str,
    read: impl Fn(&Value) -> Result<T, ApiError>,
) -> Result<Option<Option<T>>, ApiError> {
    match body.get(_name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => read(v).map(|v| Some(Some(v))),
    }
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    let fits = (1..=MAX_NAME_CHARS).contains(&name.chars().count());
    if !fits || name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(invalid(
            "`name` must be 1 to 256 characters, not all spaces, without control characters",
        ));
    }
    Ok(name.to_string())
}

fn bool_value(v: &Value) -> Result<bool, ApiError> {
    v.as_bool()
        .ok_or_else(|| invalid("a boolean field holds something else"))
}

/// USD to micro-USD, rounded to the nearest.
fn limit(v: &Value) -> Result<u64, ApiError> {
    match v.as_f64() {
        Some(usd) if usd.is_finite() && (0.0..=MAX_LIMIT_USD).contains(&usd) => {
            Ok((usd * 1_000_000.0).round() as u64)
        }
        _ => Err(invalid(
            "`limit` must be a number of USD between 0 and 1e9, or null",
        )),
    }
}

fn limit_reset(v: &Value) -> Result<LimitReset, ApiError> {
    v.as_str()
        .and_then(LimitReset::parse)
        .ok_or_else(|| invalid("`limit_reset` must be daily, weekly, monthly or null"))
}

fn expires_at(v: &Value) -> Result<i64, ApiError> {
    v.as_str()
        .and_then(parse_rfc3339)
        .ok_or_else(|| invalid("`expires_at` must be an RFC 3339 date-time or null"))
}

fn rate_limit(v: &Value) -> Result<RateLimitSpec, ApiError> {
    let bad = || {
        invalid("`rate_limit` must be {\"requests\": n >= 1, \"interval\": \"60s\"} (s, m, h or d) or null")
    };
    let Value::Object(map) = v else {
        return Err(bad());
    };
    let requests = map
        .get("requests")
        .and_then(whole)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n >= 1)
        .ok_or_else(bad)?;
    let interval_secs = map
        .get("interval")
        .and_then(Value::as_str)
        .and_then(interval)
        .ok_or_else(bad)?;
    Ok(RateLimitSpec {
        requests,
        interval_secs,
    })
}

/// A JSON integer, also when written with a zero fraction (`60.0`): JSON
/// Schema's `integer` counts those as integers too.
fn whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        (f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f)).then_some(f as u64)
    })
}

/// `"60s"`, `"5m"`, `"1h"`, `"1d"` to seconds: 1 to 4 digits without a
/// leading zero, then the unit (so at most 9999 days, which fits a u32).
/// The keys API, the CLI and the config's default limit all read it.
pub fn interval(text: &str) -> Option<u32> {
    let unit = match text.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let digits = text.get(..text.len() - 1)?;
    let well_formed = (1..=4).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !well_formed {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    n.checked_mul(unit)
}

fn allowed_models(v: &Value) -> Result<ModelAllowlist, ApiError> {
    let Value::Array(items) = v else {
        return Err(invalid(
            "`allowed_models` must be an array of strings or null",
        ));
    };
    let patterns = items
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| invalid("`allowed_models` must be an array of strings or null"))?;
    ModelAllowlist::new(patterns).map_err(|e| match e {
        AllowlistError::TooMany => invalid("`allowed_models` holds more than 64 patterns"),
        AllowlistError::BadPattern => {
            invalid("each `allowed_models` pattern is 1 to 256 printable characters without spaces")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<KeySpec, ApiError> {
        match parse(&Endpoint::CreateKey, None, body.as_bytes(), Caller::Master)? {
            Some(ManageRequest::CreateKey(spec)) => Ok(spec),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_master_key_grants_management() {
        let grant = br#"{"name":"x","management":true}"#;
        for caller in [Caller::Key(7), Caller::Anonymous] {
            let err = parse(&Endpoint::CreateKey, None, grant, caller).unwrap_err();
            assert_eq!(err.kind.status(), 403);
            let hash = "ab".repeat(32);
            let err = parse(
                &Endpoint::UpdateKey(&hash),
                None,
                br#"{"management":true}"#,
                caller,
            )
            .unwrap_err();
            assert_eq!(err.code, Some("forbidden"));
            // Other fields, and dropping the scope, stay open to management keys.
            let patch = br#"{"name":"y","management":false}"#;
            assert!(parse(&Endpoint::UpdateKey(&hash), None, patch, caller).is_ok());
        }
        assert!(parse(&Endpoint::CreateKey, None, grant, Caller::Master).is_ok());
    }

    #[test]
    fn create_reads_every_field() {
        let spec = create(
            r#"{"name":"ci","limit":1.5,"limit_reset":"weekly","include_byok_in_limit":true,
                "expires_at":"2030-01-01T00:00:00Z","rate_limit":{"requests":10,"interval":"1m"},
                "management":true,"allowed_models":["openai/*"],"workspace_id":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(spec.name, "ci");
        assert_eq!(spec.limit_micros, Some(1_500_000));
        assert_eq!(spec.limit_reset, Some(LimitReset::Weekly));
        assert!(spec.include_byok_in_limit && spec.management);
        assert_eq!(spec.expires_at, Some(1_893_456_000));
        assert_eq!(
            spec.rate_limit,
            Some(RateLimitSpec {
                requests: 10,
                interval_secs: 60
            })
        );
        assert!(spec.allowed_models.unwrap().allows("openai", "gpt-4o"));
        let float = create(r#"{"name":"x","rate_limit":{"requests":60.0,"interval":"1h"}}"#);
        assert_eq!(float.unwrap().rate_limit.unwrap().requests, 60);
        let bare = create(r#"{"name":"x","limit":null}"#).unwrap();
        assert_eq!(bare.limit_micros, None);
        assert_eq!(bare.allowed_models, None);
    }

    #[test]
    fn bad_bodies_are_400s() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"name":""}"#,
            r#"{"name":"   "}"#,
            r#"{"name":"a\u0007b"}"#,
            r#"{"name":5}"#,
            r#"{"name":"x","limit":-1}"#,
            r#"{"name":"x","limit":"5"}"#,
            r#"{"name":"x","limit_reset":"hourly"}"#,
            r#"{"name":"x","expires_at":"tomorrow"}"#,
            r#"{"name":"x","rate_limit":{"requests":0,"interval":"60s"}}"#,
            r#"{"name":"x","rate_limit":{"requests":5,"interval":"60"}}"#,
            r#"{"name":"x","rate_limit":{"requests":5,"interval":"0s"}}"#,
            r#"{"name":"x","rate_limit":{"requests":5,"interval":"10000s"}}"#,
            r#"{"name":"x","rate_limit":{"requests":5,"interval":"+5s"}}"#,
            r#"{"name":"x","management":null}"#,
            r#"{"name":"x","allowed_models":"openai/*"}"#,
            r#"{"name":"x","allowed_models":[1]}"#,
        ] {
            let err = create(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
        }
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let hash = "a".repeat(64);
        let got = parse(
            &Endpoint::UpdateKey(&hash),
            None,
            br#"{"limit":null,"disabled":true,"allowed_models":null}"#,
            Caller::Master,
        )
        .unwrap();
        let Some(ManageRequest::UpdateKey { patch, .. }) = got else {
            panic!("{got:?}");
        };
        assert_eq!(patch.limit_micros, Some(None));
        assert_eq!(patch.disabled, Some(true));
        assert_eq!(patch.allowed_models, Some(None));
        assert_eq!(patch.name, None);
        assert_eq!(patch.rate_limit, None);
    }

    #[test]
    fn hashes_and_list_queries() {
        assert_eq!(
            parse(&Endpoint::GetKey("nope"), None, b"", Caller::Master)
                .unwrap_err()
                .status(),
            404
        );
        let got = parse(
            &Endpoint::ListKeys,
            Some("offset=5&include_disabled=true&workspace_id=w"),
            b"",
            Caller::Master,
        )
        .unwrap();
        assert_eq!(
            got,
            Some(ManageRequest::ListKeys {
                offset: 5,
                include_disabled: true,
                include_expired: false
            })
        );
        assert!(parse(&Endpoint::ListKeys, Some("offset=-1"), b"", Caller::Master).is_err());
    }
}

//! The query strings of `GET /api/v1/transactions` and
//! `GET /api/v1/generation`, to validated requests or a 400 that says
//! which parameter is wrong and why.

use std::borrow::Cow;

use super::{Cursor, TransactionQuery, TransactionStatus, DEFAULT_LIMIT, MAX_LIMIT};
use crate::api::endpoint::percent_decode;
use crate::api::{ApiError, Dialect};
use crate::manage::parse_rfc3339;

/// Filter values and ids are names, not documents: a bound keeps a query
/// from asking the store to compare megabytes.
const MAX_VALUE_CHARS: usize = 512;

fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::OpenAi, message).with_code("invalid_request")
}

/// The query's `name=value` pairs, percent-decoded (`+` is a space, as
/// forms encode it).
fn pairs(query: &str) -> Result<Vec<(Cow<'_, str>, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| -> Result<String, ApiError> {
                let spaced = s.replace('+', " ");
                percent_decode(&spaced)
                    .map(Cow::into_owned)
                    .ok_or_else(|| invalid("the query is not valid percent-encoded UTF-8"))
            };
            Ok((Cow::Owned(decode(name)?), decode(value)?))
        })
        .collect()
}

fn text(name: &str, value: String) -> Result<String, ApiError> {
    let count = value.chars().count();
    if count == 0 || count > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "`{name}` must be 1 to {MAX_VALUE_CHARS} characters without control characters"
        )));
    }
    Ok(value)
}

/// A point in time: Unix seconds (digits only) or an RFC 3339 date-time.
fn instant(name: &str, value: &str) -> Result<i64, ApiError> {
    let bad = || {
        invalid(format!(
            "`{name}` must be Unix seconds or an RFC 3339 date-time such as 2026-12-01T00:00:00Z"
        ))
    };
    if !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().map_err(|_| bad());
    }
    parse_rfc3339(value).ok_or_else(bad)
}

/// `GET /api/v1/transactions?...`.
pub fn parse_list(query: Option<&str>) -> Result<TransactionQuery, ApiError> {
    let mut q = TransactionQuery {
        limit: DEFAULT_LIMIT,
        ..TransactionQuery::default()
    };
    for (name, value) in pairs(query.unwrap_or(""))? {
        match name.as_ref() {
            "key_id" => {
                let hash = value.to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "`key_id` must be a key's hash (64 hex digits), as the keys API shows it",
                    ));
                }
                q.key_hash = Some(hash);
            }
            "model" => q.model = Some(text("model", value)?),
            "app" => q.app = Some(text("app", value)?),
            "status" => {
                q.status = Some(TransactionStatus::parse(&value).ok_or_else(|| {
                    invalid(
                        "`status` must be complete, estimated, failed, cancelled or unrecognized",
                    )
                })?)
            }
            "since" => q.since = Some(instant("since", &value)?),
            "until" => q.until = Some(instant("until", &value)?),
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        invalid(format!("`limit` must be an integer from 1 to {MAX_LIMIT}"))
                    })?
            }
            "cursor" => {
                q.cursor =
                    Some(Cursor::decode(&value).ok_or_else(|| {
                        invalid("`cursor` must be a `next_cursor` this API returned")
                    })?)
            }
            // Parameters ARouter has no notion of select everything.
            _ => {}
        }
    }
    // `since` after `until` is an empty range, not an error.
    Ok(q)
}

/// `GET /api/v1/generation?id=...`: the id.
pub fn parse_generation(query: Option<&str>) -> Result<String, ApiError> {
    let mut id = None;
    for (name, value) in pairs(query.unwrap_or(""))? {
        if name == "id" {
            id = Some(text("id", value)?);
        }
    }
    id.ok_or_else(|| invalid("`id` is required: the id a completion returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_filter() {
        let hash = "AB".repeat(32);
        let q = parse_list(Some(&format!(
            "key_id={hash}&model=openai%2Fgpt-4o&app=My+App&status=cancelled\
             &since=1764559497&until=2025-12-02T00:00:00%2B01:00&limit=5&cursor=10_3&x=y"
        )))
        .unwrap();
        assert_eq!(q.key_hash, Some("ab".repeat(32)));
        assert_eq!(q.model.as_deref(), Some("openai/gpt-4o"));
        assert_eq!(q.app.as_deref(), Some("My App"));
        assert_eq!(q.status, Some(TransactionStatus::Cancelled));
        assert_eq!(q.since, Some(1_764_559_497));
        assert_eq!(q.until, Some(1_764_630_000));
        assert_eq!(q.limit, 5);
        assert_eq!(
            q.cursor,
            Some(Cursor {
                created_at: 10,
                row: 3
            })
        );
        assert_eq!(parse_list(None).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn bad_values_are_400s_that_name_the_parameter() {
        for (query, names) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("since=yesterday", "since"),
            ("until=2025-12-01", "until"),
            ("status=done", "status"),
            ("key_id=abc", "key_id"),
            ("cursor=zzz", "cursor"),
            ("model=", "model"),
            ("app=%07", "app"),
            ("model=%FF", "percent"),
        ] {
            let err = parse_list(Some(query)).unwrap_err();
            assert_eq!(err.status(), 400, "{query}");
            assert!(err.message.contains(names), "{query}: {}", err.message);
        }
    }

    #[test]
    fn generation_needs_an_id() {
        assert_eq!(
            parse_generation(Some("id=chatcmpl-1")).unwrap(),
            "chatcmpl-1"
        );
        assert_eq!(parse_generation(None).unwrap_err().status(), 400);
        assert_eq!(parse_generation(Some("id=")).unwrap_err().status(), 400);
    }
}

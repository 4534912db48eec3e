//! A batch operation from the request: the create body checked request by
//! request (a 400 names the one at fault, as Anthropic's do), the list's
//! query, and the id in the path.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use super::{BatchCall, BatchRequest, ListCursor, ListQuery, NewBatch, NewItem, ID_PREFIX};
use crate::api::endpoint::percent_decode;
use crate::api::{ApiError, BatchOp, Dialect, ErrorKind};
use crate::exchange::Caller;
use crate::http1::RequestHead;

/// The most batches one list page holds (Anthropic's bound).
pub const MAX_LIST_LIMIT: u32 = 1000;
const DEFAULT_LIST_LIMIT: u32 = 20;
/// Anthropic's bound on a `custom_id`.
const MAX_CUSTOM_ID: usize = 64;
/// A `Host` longer than a DNS name and a port is not one.
const MAX_HOST: usize = 300;

fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::Anthropic, message)
}

/// The batch operation `op` asks for. `max_cost` bounds what one request's
/// `params` may cost (a 400 when they are not a valid Messages request).
pub fn parse(
    op: &BatchOp<'_>,
    head: &RequestHead,
    body: &[u8],
    caller: Caller,
    max_cost: impl Fn(&[u8]) -> Result<u64, ApiError>,
) -> Result<BatchCall, ApiError> {
    let id = |raw: &str| batch_id(raw).ok_or_else(|| ApiError::not_found(Dialect::Anthropic));
    let request = match op {
        BatchOp::Create => BatchRequest::Create(new_batch(body, max_cost)?),
        BatchOp::List => BatchRequest::List(list_query(head.query().unwrap_or(""))?),
        BatchOp::Get(raw) => BatchRequest::Get(id(raw)?),
        BatchOp::Cancel(raw) => BatchRequest::Cancel(id(raw)?),
        BatchOp::Delete(raw) => BatchRequest::Delete(id(raw)?),
        BatchOp::Results(raw) => BatchRequest::Results(id(raw)?),
    };
    Ok(BatchCall {
        owner: caller.key_id(),
        origin: origin(head),
        request,
    })
}

/// `scheme://host` as the client reached the gateway: `results_url` must
/// be a URL the client's SDK can fetch. `X-Forwarded-Proto: https` from a
/// TLS-terminating proxy makes it `https`.
fn origin(head: &RequestHead) -> String {
    let host = head
        .header("host")
        .filter(|h| {
            !h.is_empty()
                && h.len() <= MAX_HOST
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    let https = head
        .header("x-forwarded-proto")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// A path id: `msgbatch_` and letters or digits. Anything else names no
/// batch (404), without reaching the store.
pub(super) fn batch_id(raw: &str) -> Option<String> {
    let rest = raw.strip_prefix(ID_PREFIX)?;
    let ok =
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| raw.to_string())
}

fn new_batch(
    body: &[u8],
    max_cost: impl Fn(&[u8]) -> Result<u64, ApiError>,
) -> Result<NewBatch, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(invalid("request body must be a JSON object"));
    };
    let Some(Value::Array(requests)) = object.remove("requests") else {
        return Err(invalid(
            "requests: field required (an array of {custom_id, params})",
        ));
    };
    if requests.is_empty() {
        return Err(invalid("requests: must hold at least one request"));
    }
    let mut seen = HashSet::with_capacity(requests.len());
    let mut items = Vec::with_capacity(requests.len());
    for (i, request) in requests.into_iter().enumerate() {
        let item = new_item(i, request, &max_cost)?;
        if !seen.insert(item.custom_id.clone()) {
            return Err(invalid(format!(
                "requests.{i}.custom_id: `{}` is used by an earlier request; each custom_id must be unique within the batch",
                item.custom_id
            )));
        }
        items.push(item);
    }
    Ok(NewBatch {
        items,
        bytes: body.len() as u64,
    })
}

fn new_item(
    i: usize,
    request: Value,
    max_cost: &impl Fn(&[u8]) -> Result<u64, ApiError>,
) -> Result<NewItem, ApiError> {
    let Value::Object(mut request) = request else {
        return Err(invalid(format!("requests.{i}: must be an object")));
    };
    let custom_id = match request.remove("custom_id") {
        Some(Value::String(id)) if valid_custom_id(&id) => id,
        Some(_) => {
            return Err(invalid(format!(
                "requests.{i}.custom_id: must be 1 to {MAX_CUSTOM_ID} letters, digits, `_` or `-`"
            )))
        }
        None => return Err(invalid(format!("requests.{i}.custom_id: field required"))),
    };
    if let Some(extra) = request.keys().find(|k| *k != "params") {
        return Err(invalid(format!(
            "requests.{i}.{extra}: unknown field (a request has custom_id and params)"
        )));
    }
    let params = match request.remove("params") {
        Some(params @ Value::Object(_)) => params,
        Some(_) => return Err(invalid(format!("requests.{i}.params: must be an object"))),
        None => return Err(invalid(format!("requests.{i}.params: field required"))),
    };
    if params.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(invalid(format!(
            "requests.{i}.params.stream: streaming is not supported in message batches"
        )));
    }
    // A `Value` of parsed JSON always serializes.
    let params = serde_json::to_string(&params).unwrap_or_default();
    let max_cost_micros = max_cost(params.as_bytes()).map_err(|err| {
        ApiError::new(
            Dialect::Anthropic,
            ErrorKind::InvalidRequest,
            format!("requests.{i}.params: {}", err.message),
        )
    })?;
    Ok(NewItem {
        custom_id,
        params,
        max_cost_micros,
    })
}

fn valid_custom_id(id: &str) -> bool {
    (1..=MAX_CUSTOM_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn list_query(query: &str) -> Result<ListQuery, ApiError> {
    let mut limit = DEFAULT_LIST_LIMIT;
    let mut cursor = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)
            .ok_or_else(|| invalid("the query is not valid percent-encoded UTF-8"))?;
        match name {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "limit: must be an integer from 1 to {MAX_LIST_LIMIT}"
                        ))
                    })?;
            }
            "after_id" | "before_id" => {
                let id = batch_id(&value)
                    .ok_or_else(|| invalid(format!("{name}: not a message batch id")))?;
                // With both, `after_id` wins (the SDK's auto-paging sends
                // only it).
                if name == "after_id" {
                    cursor = Some(ListCursor::After(id));
                } else if cursor.is_none() {
                    cursor = Some(ListCursor::Before(id));
                }
            }
            // Unknown parameters are ignored, as elsewhere.
            _ => {}
        }
    }
    Ok(ListQuery { limit, cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(_: &[u8]) -> Result<u64, ApiError> {
        Ok(7)
    }

    fn create(body: &str) -> Result<NewBatch, ApiError> {
        new_batch(body.as_bytes(), cost)
    }

    #[test]
    fn a_create_body_becomes_its_requests_in_order() {
        let batch = create(
            r#"{"requests":[{"custom_id":"a-1","params":{"model":"m","max_tokens":5,"messages":[]}},
                {"custom_id":"b_2","params":{"model":"n","max_tokens":1,"messages":[]}}]}"#,
        )
        .unwrap();
        let ids: Vec<_> = batch.items.iter().map(|i| i.custom_id.as_str()).collect();
        assert_eq!(ids, ["a-1", "b_2"]);
        assert_eq!(batch.items[0].max_cost_micros, 7);
        let params: Value = serde_json::from_str(&batch.items[1].params).unwrap();
        assert_eq!(params["model"], "n");
    }

    #[test]
    fn each_bad_request_is_named_by_its_index() {
        let cases = [
            (r#"{"requests":[]}"#, "at least one"),
            (r#"{"nope":1}"#, "requests: field required"),
            (
                r#"{"requests":[{"params":{}}]}"#,
                "requests.0.custom_id: field required",
            ),
            (
                r#"{"requests":[{"custom_id":"a b","params":{}}]}"#,
                "requests.0.custom_id",
            ),
            (
                r#"{"requests":[{"custom_id":"a","params":{}},{"custom_id":"a","params":{}}]}"#,
                "requests.1.custom_id",
            ),
            (
                r#"{"requests":[{"custom_id":"a","params":[]}]}"#,
                "requests.0.params: must be an object",
            ),
            (
                r#"{"requests":[{"custom_id":"a","params":{"stream":true}}]}"#,
                "streaming",
            ),
            (
                r#"{"requests":[{"custom_id":"a","params":{},"extra":1}]}"#,
                "requests.0.extra: unknown field",
            ),
        ];
        for (body, expected) in cases {
            let err = create(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert!(err.message.contains(expected), "{body}: {}", err.message);
        }
        let long = "x".repeat(65);
        let err = create(&format!(
            r#"{{"requests":[{{"custom_id":"{long}","params":{{}}}}]}}"#
        ))
        .unwrap_err();
        assert!(err.message.contains("custom_id"));
    }

    #[test]
    fn a_params_error_from_the_estimate_names_the_request() {
        let refuse = |_: &[u8]| Err(invalid("max_tokens: field required"));
        let err =
            new_batch(br#"{"requests":[{"custom_id":"a","params":{}}]}"#, refuse).unwrap_err();
        assert_eq!(err.message, "requests.0.params: max_tokens: field required");
    }

    #[test]
    fn list_queries_take_a_bounded_limit_and_one_cursor() {
        assert_eq!(
            list_query("").unwrap(),
            ListQuery {
                limit: 20,
                cursor: None
            }
        );
        let q = list_query("limit=3&after_id=msgbatch_abc").unwrap();
        assert_eq!(q.limit, 3);
        assert_eq!(q.cursor, Some(ListCursor::After("msgbatch_abc".into())));
        let both = list_query("before_id=msgbatch_b&after_id=msgbatch_a").unwrap();
        assert_eq!(both.cursor, Some(ListCursor::After("msgbatch_a".into())));
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "after_id=x",
            "before_id=msgbatch_",
        ] {
            assert_eq!(list_query(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn only_well_formed_ids_reach_the_store() {
        assert_eq!(
            batch_id("msgbatch_01AbC").as_deref(),
            Some("msgbatch_01AbC")
        );
        for bad in ["msgbatch_", "batch_1", "msgbatch_a/b", "msgbatch_a'--"] {
            assert_eq!(batch_id(bad), None, "{bad}");
        }
    }
}

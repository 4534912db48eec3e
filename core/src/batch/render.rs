//! The host's batch answers in Anthropic's wire shapes (`MessageBatch`,
//! its list page, `DeletedMessageBatch`, the results JSONL) and its
//! refusals as Anthropic errors.

use serde_json::{json, Value};

use super::{BatchAnswer, BatchError, BatchView, Status};
use crate::api::{ApiError, Dialect, ErrorKind, Response};
use crate::manage::format_rfc3339;

/// The answer; `origin` (`scheme://host`) makes `results_url` absolute.
pub fn render(answer: BatchAnswer, origin: &str) -> Response {
    match answer {
        BatchAnswer::View(view) => json_response(&batch_json(&view, origin)),
        BatchAnswer::Page { batches, has_more } => {
            let data: Vec<Value> = batches.iter().map(|b| batch_json(b, origin)).collect();
            json_response(&json!({
                "data": data,
                "has_more": has_more,
                "first_id": batches.first().map(|b| b.id.as_str()),
                "last_id": batches.last().map(|b| b.id.as_str()),
            }))
        }
        BatchAnswer::Deleted(id) => {
            json_response(&json!({"id": id, "type": "message_batch_deleted"}))
        }
        BatchAnswer::Results(jsonl) => Response {
            status: 200,
            headers: vec![("Content-Type", "application/x-jsonl".to_string())],
            body: jsonl,
        },
    }
}

pub fn render_error(err: BatchError) -> ApiError {
    let (kind, message) = match err {
        BatchError::NotFound => (
            ErrorKind::NotFound,
            "no message batch with this id".to_string(),
        ),
        BatchError::NotEnded { action } => (
            ErrorKind::InvalidRequest,
            format!("the message batch has not ended yet; {action}"),
        ),
        BatchError::TooManyRequests { max } => (
            ErrorKind::InvalidRequest,
            format!("requests: a batch holds at most {max} requests"),
        ),
        BatchError::TooLarge { max } => (
            ErrorKind::PayloadTooLarge,
            format!("a batch's body is at most {max} bytes"),
        ),
        BatchError::InsufficientCredit {
            needed_micros,
            what,
        } => (
            ErrorKind::PaymentRequired,
            format!(
                "insufficient credits: {what} cannot cover this batch (it may cost up to ${}); \
                 lower max_tokens, send fewer requests or add credits",
                usd(needed_micros)
            ),
        ),
        BatchError::Unavailable => (
            ErrorKind::Unavailable,
            "the batch store is unavailable; try again".to_string(),
        ),
    };
    ApiError::new(Dialect::Anthropic, kind, message)
}

fn usd(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn batch_json(view: &BatchView, origin: &str) -> Value {
    let time = |secs: Option<i64>| {
        secs.and_then(format_rfc3339)
            .map_or(Value::Null, Value::String)
    };
    let c = &view.counts;
    let results_url = (view.status == Status::Ended)
        .then(|| format!("{origin}/v1/messages/batches/{}/results", view.id));
    json!({
        "id": view.id,
        "type": "message_batch",
        "processing_status": view.status.as_str(),
        "request_counts": {
            "processing": c.processing,
            "succeeded": c.succeeded,
            "errored": c.errored,
            "canceled": c.canceled,
            "expired": c.expired,
        },
        "created_at": time(Some(view.created_at)),
        "expires_at": time(Some(view.expires_at)),
        "ended_at": time(view.ended_at),
        "cancel_initiated_at": time(view.cancel_initiated_at),
        "archived_at": Value::Null,
        "results_url": results_url,
    })
}

fn json_response(value: &Value) -> Response {
    // A `Value` of strings and numbers always serializes.
    Response::json(200, serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Counts;

    fn view(status: Status) -> BatchView {
        BatchView {
            id: "msgbatch_1".into(),
            status,
            counts: Counts {
                processing: 1,
                ..Counts::default()
            },
            created_at: 1_700_000_000,
            expires_at: 1_700_086_400,
            ended_at: (status == Status::Ended).then_some(1_700_000_100),
            cancel_initiated_at: None,
        }
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn only_an_ended_batch_has_a_results_url() {
        let running = body(&render(
            BatchAnswer::View(view(Status::InProgress)),
            "http://h:1",
        ));
        assert_eq!(running["results_url"], Value::Null);
        assert_eq!(running["processing_status"], "in_progress");
        assert_eq!(running["created_at"], "2023-11-14T22:13:20Z");
        let ended = body(&render(
            BatchAnswer::View(view(Status::Ended)),
            "http://h:1",
        ));
        assert_eq!(
            ended["results_url"],
            "http://h:1/v1/messages/batches/msgbatch_1/results"
        );
    }

    #[test]
    fn a_page_names_its_ends() {
        let page = BatchAnswer::Page {
            batches: vec![view(Status::Ended)],
            has_more: true,
        };
        let v = body(&render(page, "http://h"));
        assert_eq!(v["first_id"], "msgbatch_1");
        assert_eq!(v["last_id"], "msgbatch_1");
        assert_eq!(v["has_more"], true);
        let empty = body(&render(
            BatchAnswer::Page {
                batches: vec![],
                has_more: false,
            },
            "http://h",
        ));
        assert_eq!(empty["first_id"], Value::Null);
    }

    #[test]
    fn refusals_are_anthropic_errors() {
        let err = render_error(BatchError::TooLarge { max: 10 });
        assert_eq!(err.status(), 413);
        let v: Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "request_too_large");
        let err = render_error(BatchError::InsufficientCredit {
            needed_micros: 1_500_000,
            what: "the account balance",
        });
        assert_eq!(err.status(), 402);
        assert!(err.message.contains("$1.500000"));
    }
}

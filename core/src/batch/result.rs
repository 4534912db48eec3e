//! A batch request's end: what the gateway's answer to its `/v1/messages`
//! call means for the batch (done, or try again later), and its line in
//! the results file, in Anthropic's `MessageBatchIndividualResponse` shape.

use serde_json::{json, Value};

use super::Answer;

/// How a batch request ended; stored as [`ItemEnd::kind`] and
/// [`ItemEnd::body`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemEnd {
    /// The Message object, as JSON.
    Succeeded(Vec<u8>),
    /// An Anthropic error response (`{"type":"error","error":{…}}`).
    Errored(Vec<u8>),
    Canceled,
    Expired,
}

impl ItemEnd {
    pub fn kind(&self) -> &'static str {
        match self {
            ItemEnd::Succeeded(_) => "succeeded",
            ItemEnd::Errored(_) => "errored",
            ItemEnd::Canceled => "canceled",
            ItemEnd::Expired => "expired",
        }
    }

    pub fn body(&self) -> Option<&[u8]> {
        match self {
            ItemEnd::Succeeded(body) | ItemEnd::Errored(body) => Some(body),
            ItemEnd::Canceled | ItemEnd::Expired => None,
        }
    }

    /// The end as stored; `None` for a kind this build does not know.
    pub fn from_stored(kind: &str, body: Option<Vec<u8>>) -> Option<ItemEnd> {
        Some(match kind {
            "succeeded" => ItemEnd::Succeeded(body?),
            "errored" => ItemEnd::Errored(body?),
            "canceled" => ItemEnd::Canceled,
            "expired" => ItemEnd::Expired,
            _ => return None,
        })
    }
}

/// What the batch worker does with a request after an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run it again later: the provider or the key's rate limit said
    /// 429, or the provider was overloaded (529, 503). Nothing was billed
    /// for an answer the provider did not give.
    Retry,
    End(ItemEnd),
}

/// The verdict on one answer. `last_try`: no retry is left, so a
/// retryable answer ends the request as errored.
pub fn verdict(answer: &Answer, last_try: bool) -> Verdict {
    match answer.status {
        200 => Verdict::End(ItemEnd::Succeeded(answer.body.clone())),
        429 | 503 | 529 if !last_try => Verdict::Retry,
        status => Verdict::End(ItemEnd::Errored(error_body(status, &answer.body))),
    }
}

/// The gateway answers `/v1/messages` errors in Anthropic's shape already;
/// anything else (it cannot happen, but a result line must be valid) is
/// wrapped in one.
fn error_body(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if parsed
        .as_ref()
        .is_some_and(|v| v["type"] == "error" && v["error"]["type"].is_string())
    {
        return body.to_vec();
    }
    let error = json!({
        "type": "error",
        "error": {"type": "api_error", "message": format!("the request failed with HTTP status {status}")},
    });
    serde_json::to_vec(&error).unwrap_or_default()
}

/// One line of the results file, newline included. A stored body that is
/// not JSON (it cannot be: it was checked when stored) is written as an
/// error rather than break the file.
pub fn result_line(custom_id: &str, end: &ItemEnd, out: &mut Vec<u8>) {
    let result = match end {
        ItemEnd::Succeeded(body) => match serde_json::from_slice::<Value>(body) {
            Ok(message) => json!({"type": "succeeded", "message": message}),
            Err(_) => {
                json!({"type": "errored", "error": serde_json::from_slice::<Value>(&error_body(500, b"")).unwrap_or_default()})
            }
        },
        ItemEnd::Errored(body) => {
            let error = serde_json::from_slice::<Value>(&error_body(500, body)).unwrap_or_default();
            json!({"type": "errored", "error": error})
        }
        ItemEnd::Canceled => json!({"type": "canceled"}),
        ItemEnd::Expired => json!({"type": "expired"}),
    };
    let line = json!({"custom_id": custom_id, "result": result});
    // A `Value` always serializes.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn overload_and_rate_limits_are_retried_until_the_last_try() {
        for status in [429, 503, 529] {
            assert_eq!(verdict(&answer(status, "{}"), false), Verdict::Retry);
            let Verdict::End(ItemEnd::Errored(body)) = verdict(&answer(status, "{}"), true) else {
                panic!("{status}");
            };
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["type"], "api_error");
        }
    }

    #[test]
    fn other_answers_end_the_request() {
        let ok = r#"{"type":"message","id":"msg_1"}"#;
        assert_eq!(
            verdict(&answer(200, ok), false),
            Verdict::End(ItemEnd::Succeeded(ok.as_bytes().to_vec()))
        );
        let bad = r#"{"type":"error","error":{"type":"invalid_request_error","message":"no"}}"#;
        assert_eq!(
            verdict(&answer(400, bad), false),
            Verdict::End(ItemEnd::Errored(bad.as_bytes().to_vec()))
        );
    }

    #[test]
    fn result_lines_are_anthropics_shapes() {
        let mut out = Vec::new();
        result_line(
            "a",
            &ItemEnd::Succeeded(br#"{"id":"msg_1"}"#.to_vec()),
            &mut out,
        );
        result_line("b", &ItemEnd::Errored(b"oops".to_vec()), &mut out);
        result_line("c", &ItemEnd::Canceled, &mut out);
        result_line("d", &ItemEnd::Expired, &mut out);
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines[0]["result"]["message"]["id"], "msg_1");
        assert_eq!(lines[1]["result"]["type"], "errored");
        assert_eq!(lines[1]["result"]["error"]["type"], "error");
        assert_eq!(
            lines[2],
            json!({"custom_id": "c", "result": {"type": "canceled"}})
        );
        assert_eq!(lines[3]["result"]["type"], "expired");
    }

    #[test]
    fn stored_ends_round_trip() {
        for end in [
            ItemEnd::Succeeded(b"{}".to_vec()),
            ItemEnd::Errored(b"{}".to_vec()),
            ItemEnd::Canceled,
            ItemEnd::Expired,
        ] {
            let back = ItemEnd::from_stored(end.kind(), end.body().map(<[u8]>::to_vec));
            assert_eq!(back, Some(end));
        }
        assert_eq!(ItemEnd::from_stored("odd", None), None);
    }
}

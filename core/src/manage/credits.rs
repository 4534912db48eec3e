//! The account's credits: `GET /api/v1/credits` (OpenRouter's shape),
//! `GET /api/v1/balance` and `POST /api/v1/balance {"amount", "note"}`
//! (adds credits; the management key's or master key's only).

use serde_json::{json, Value};

use super::{CreditTotals, CreditsShape, ManageRequest};
use crate::api::{ApiError, Dialect};
use crate::billing::MicroUsd;

/// One credit above this many USD is surely a mistake (and its micro-USD
/// would not fit the store's integers after a few).
const MAX_CREDIT_USD: f64 = 1e9;
/// A note is a label for people; a bound keeps rows small.
const MAX_NOTE_CHARS: usize = 1_000;

fn invalid(message: &'static str) -> ApiError {
    ApiError::invalid_request(Dialect::OpenAi, message).with_code("invalid_request")
}

/// `POST /api/v1/balance`: a positive amount of USD and an optional note.
pub(super) fn add(body: &[u8]) -> Result<ManageRequest, ApiError> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("the request body must be a JSON object"));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "amount" | "note"))
    {
        return Err(ApiError::invalid_request(
            Dialect::OpenAi,
            format!("unknown field `{unknown}`: a credit has `amount` (USD) and `note`"),
        )
        .with_code("invalid_request"));
    }
    let amount_micros = match map.get("amount").and_then(Value::as_f64) {
        Some(usd) if usd.is_finite() && usd > 0.0 && usd <= MAX_CREDIT_USD => {
            (usd * 1_000_000.0).round() as u64
        }
        _ => 0,
    };
    if amount_micros == 0 {
        return Err(invalid(
            "`amount` must be a number of USD above 0 (at least 0.000001) and at most 1e9",
        ));
    }
    let note = match map.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(note)) if note.chars().count() <= MAX_NOTE_CHARS => Some(note.clone()),
        Some(_) => {
            return Err(invalid(
                "`note` must be a string of at most 1000 characters",
            ))
        }
    };
    Ok(ManageRequest::AddCredits {
        amount_micros,
        note,
    })
}

/// The answer's body: OpenRouter's `{"data": {total_credits,
/// total_usage}}`, or the balance with both.
pub(super) fn render(shape: CreditsShape, totals: CreditTotals) -> Value {
    let credits = MicroUsd(totals.credits).as_usd();
    let usage = MicroUsd(totals.usage).as_usd();
    match shape {
        CreditsShape::Credits => json!({"data": {"total_credits": credits, "total_usage": usage}}),
        CreditsShape::Balance => {
            // May be negative: calls served before credits were required.
            let balance = (i128::from(totals.credits) - i128::from(totals.usage)) as f64 / 1e6;
            json!({"data": {"balance": balance, "currency": "USD",
                "total_credits": credits, "total_usage": usage}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_notes() {
        assert_eq!(
            add(br#"{"amount": 12.5, "note": "invoice 7"}"#).unwrap(),
            ManageRequest::AddCredits {
                amount_micros: 12_500_000,
                note: Some("invoice 7".into())
            }
        );
        assert_eq!(
            add(br#"{"amount": 1}"#).unwrap(),
            ManageRequest::AddCredits {
                amount_micros: 1_000_000,
                note: None
            }
        );
        for bad in [
            &br#"{"amount": 0}"#[..],
            br#"{"amount": -3}"#,
            br#"{"amount": "5"}"#,
            br#"{"amount": 1e12}"#,
            br#"{"amount": 0.0000001}"#,
            br#"{"note": "x"}"#,
            br#"{"amount": 1, "note": 5}"#,
            br#"{"amount": 1, "currency": "EUR"}"#,
            b"[]",
            b"nope",
        ] {
            assert!(add(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn shapes() {
        let totals = CreditTotals {
            credits: 10_000_000,
            usage: 12_500_000,
        };
        assert_eq!(
            render(CreditsShape::Credits, totals),
            json!({"data": {"total_credits": 10.0, "total_usage": 12.5}})
        );
        assert_eq!(
            render(CreditsShape::Balance, totals)["data"]["balance"],
            json!(-2.5)
        );
    }
}

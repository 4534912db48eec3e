//! Stored state a Responses request refers to, filled in: the earlier
//! turns of its `previous_response_id` and the items its
//! `item_reference`s name, as the host recalled them for the caller's key.
//!
//! A translated call is made from the whole conversation as items. A
//! provider that takes the Responses API itself gets the client's body,
//! except where the state is the gateway's own (made by a translated
//! call): then the items are sent instead of the reference.

use serde_json::{json, Map, Value};

use crate::api::{ApiError, Dialect, ErrorKind};
use crate::stored::Recalled;

/// The `previous_response_id` (a non-empty string) and the ids of the
/// `item_reference` items a body refers to.
pub fn references(body: &Map<String, Value>) -> (Option<String>, Vec<String>) {
    let previous = body
        .get("previous_response_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let items = body
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("item_reference"))
        .filter_map(|item| item.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    (previous, items)
}

/// A request with what it refers to filled in.
#[derive(Debug)]
pub struct Expanded {
    /// For a provider that takes the Responses API itself (the client's
    /// `previous_response_id` stays, for the answer to echo).
    pub native: Map<String, Value>,
    /// `native`'s `input` holds the earlier turns: its
    /// `previous_response_id` is not sent.
    pub drop_previous: bool,
    /// The whole conversation in `input`, with neither
    /// `previous_response_id` nor references: what a translated call is
    /// made from, or why there is none (a 404 for what this key has not
    /// stored: a provider of its own may still have it).
    pub translated: Result<Map<String, Value>, ApiError>,
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(
        Dialect::Responses,
        ErrorKind::NotFound,
        format!("{what} with id '{id}' not found."),
    )
}

/// Fills `body` in from `recalled`. An error when the previous response
/// belongs to another key: it is not forwarded anywhere.
pub fn expand(body: Map<String, Value>, recalled: &Recalled) -> Result<Expanded, ApiError> {
    let (previous, _) = references(&body);
    if recalled.previous_elsewhere {
        let id = previous.as_deref().unwrap_or_default();
        return Err(not_found("Response", id));
    }
    let own = input_items(body.get("input"));
    // What a native provider gets for the references: the items of the
    // gateway's own making, the rest by reference.
    let mut native_input = Vec::with_capacity(own.len());
    let mut whole = Vec::with_capacity(own.len());
    let mut missing = None;
    // The client's `input` goes to a native provider as it came unless
    // something in it is replaced.
    let mut native_changed = false;
    for item in own {
        if item.get("type").and_then(Value::as_str) != Some("item_reference") {
            native_input.push(item.clone());
            whole.push(item);
            continue;
        }
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        match recalled.items.get(id) {
            Some((found, native)) => {
                native_changed |= !*native;
                native_input.push(if *native { item.clone() } else { found.clone() });
                whole.push(found.clone());
            }
            None => {
                missing.get_or_insert_with(|| not_found("Item", id));
                native_input.push(item);
            }
        }
    }
    let mut native = body.clone();
    let mut translated = body;
    translated.remove("previous_response_id");
    let mut context = Vec::new();
    let mut drop_previous = false;
    match (&previous, &recalled.previous) {
        (Some(_), Some(conversation)) => {
            context.extend(conversation.items.iter().cloned());
            if !conversation.native {
                // The gateway's own: the provider has never seen it.
                drop_previous = true;
                native_input.splice(0..0, conversation.items.iter().cloned());
                native_changed = true;
            }
        }
        (Some(id), None) => {
            missing.get_or_insert_with(|| not_found("Response", id));
        }
        (None, _) => {}
    }
    context.extend(whole);
    if native_changed {
        native.insert("input".into(), Value::Array(native_input));
    }
    translated.insert("input".into(), Value::Array(context));
    Ok(Expanded {
        native,
        drop_previous,
        translated: match missing {
            Some(err) => Err(err),
            None => Ok(translated),
        },
    })
}

/// `input` as items: a string is one user message.
pub fn input_items(input: Option<&Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => vec![json!({
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        })],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Gives each item without an `id` one made from the response's id and
/// its place (`msg_{stem}_in{n}`), as OpenAI lists input items with ids.
pub fn with_ids(mut items: Vec<Value>, response_id: &str) -> Vec<Value> {
    let stem = response_id.strip_prefix("resp_").unwrap_or(response_id);
    for (n, item) in items.iter_mut().enumerate() {
        let Value::Object(obj) = item else { continue };
        if obj.get("id").and_then(Value::as_str).is_some() {
            continue;
        }
        let prefix = match obj.get("type").and_then(Value::as_str) {
            None | Some("message") => "msg",
            Some("function_call") => "fc",
            Some("function_call_output") => "fco",
            Some("reasoning") => "rs",
            Some(_) => "item",
        };
        obj.insert("id".into(), json!(format!("{prefix}_{stem}_in{n}")));
        if !obj.contains_key("type") {
            obj.insert("type".into(), json!("message"));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::Conversation;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn earlier(native: bool) -> Recalled {
        Recalled {
            previous: Some(Conversation {
                provider: "p".into(),
                native,
                items: vec![
                    json!({"type": "message", "id": "msg_in", "role": "user", "content": "hi"}),
                    json!({"type": "message", "id": "msg_out", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}),
                ],
            }),
            ..Recalled::default()
        }
    }

    fn ids(items: Option<&Value>) -> Vec<&str> {
        items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|i| i.get("id").and_then(Value::as_str).unwrap_or("-"))
            .collect()
    }

    #[test]
    fn references_are_the_previous_id_and_the_item_ids() {
        let b = body(json!({"previous_response_id": "resp_1", "input": [
            {"type": "item_reference", "id": "fc_1"}, {"role": "user", "content": "x"}]}));
        assert_eq!(references(&b), (Some("resp_1".into()), vec!["fc_1".into()]));
        let none = body(json!({"previous_response_id": null, "input": "x"}));
        assert_eq!(references(&none), (None, Vec::new()));
    }

    #[test]
    fn the_gateways_own_turns_go_before_the_input_everywhere() {
        let b = body(json!({"previous_response_id": "resp_1", "input": "next"}));
        let e = expand(b, &earlier(false)).unwrap_or_else(|e| panic!("{e:?}"));
        let whole = e.translated.unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!whole.contains_key("previous_response_id"));
        assert_eq!(ids(whole.get("input")), ["msg_in", "msg_out", "-"]);
        // A native provider never saw them: the turns, not the id.
        assert!(e.drop_previous);
        assert_eq!(ids(e.native.get("input")), ["msg_in", "msg_out", "-"]);
        assert_eq!(e.native["previous_response_id"], "resp_1", "echoed");
    }

    #[test]
    fn a_native_providers_own_turns_stay_a_reference_for_it() {
        let b = body(json!({"previous_response_id": "resp_1", "input": "next"}));
        let e = expand(b, &earlier(true)).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!e.drop_previous);
        assert_eq!(e.native["input"], "next", "the client's input as sent");
        let whole = e.translated.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ids(whole.get("input")), ["msg_in", "msg_out", "-"]);
    }

    #[test]
    fn what_the_key_has_not_stored_is_a_404_but_may_go_native() {
        let b = body(json!({"previous_response_id": "resp_x", "input": "next"}));
        let e = expand(b.clone(), &Recalled::default()).unwrap_or_else(|e| panic!("{e:?}"));
        let err = e.translated.err().map(|e| e.status());
        assert_eq!(err, Some(404));
        assert_eq!(e.native, b, "forwarded unchanged");
        let elsewhere = Recalled {
            previous_elsewhere: true,
            ..Recalled::default()
        };
        assert_eq!(expand(b, &elsewhere).err().map(|e| e.status()), Some(404));
    }

    #[test]
    fn item_references_resolve_per_origin() {
        let b = body(json!({"input": [
            {"type": "item_reference", "id": "fc_own"},
            {"type": "item_reference", "id": "rs_openai"},
            {"type": "function_call_output", "call_id": "c", "output": "ok"}]}));
        let mut recalled = Recalled::default();
        let call = json!({"type": "function_call", "id": "fc_own", "call_id": "c", "name": "f", "arguments": "{}"});
        recalled.items.insert("fc_own".into(), (call, false));
        let reasoning = json!({"type": "reasoning", "id": "rs_openai", "summary": []});
        recalled.items.insert("rs_openai".into(), (reasoning, true));
        let e = expand(b, &recalled).unwrap_or_else(|e| panic!("{e:?}"));
        let whole = e.translated.unwrap_or_else(|e| panic!("{e:?}"));
        let types: Vec<&str> = whole["input"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["type"].as_str())
            .collect();
        assert_eq!(
            types,
            ["function_call", "reasoning", "function_call_output"]
        );
        assert_eq!(e.native["input"][0]["type"], "function_call");
        assert_eq!(e.native["input"][1]["type"], "item_reference");
    }

    #[test]
    fn ids_are_given_to_items_without_one() {
        let items = with_ids(
            vec![
                json!({"role": "user", "content": "x"}),
                json!({"type": "function_call_output", "id": "keep"}),
            ],
            "resp_abc",
        );
        assert_eq!(items[0]["id"], "msg_abc_in0");
        assert_eq!(items[0]["type"], "message");
        assert_eq!(items[1]["id"], "keep");
    }
}

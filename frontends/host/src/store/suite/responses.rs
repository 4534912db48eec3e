//! The stored Responses API answers, on every store.

use arouter_core::stored::{Kept, Recall};
use serde_json::json;

use super::Fixture;

fn kept(id: &str, owner: Option<i64>, created_at: i64) -> Kept {
    Kept {
        id: id.into(),
        owner,
        created_at,
        provider: "anthropic".into(),
        native: false,
        response: json!({
            "id": id,
            "object": "response",
            "output": [
                {"id": format!("msg_{id}"), "type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "4"}]},
                {"id": format!("fc_{id}_0"), "type": "function_call", "name": "f", "arguments": "{}"},
            ],
        }),
        input: vec![json!({"role": "user", "content": "2+2?"})],
    }
}

pub(crate) fn responses_are_kept_for_their_owner_until_they_expire(fixture: &dyn Fixture) {
    let store = fixture.open();
    store
        .keep_response(&kept("resp_a", Some(1), 10), 100)
        .unwrap();
    let got = store
        .stored_response("resp_a", Some(1), 50)
        .unwrap()
        .unwrap();
    assert_eq!(got["output"][0]["content"][0]["text"], "4");
    assert_eq!(
        store.stored_input("resp_a", Some(1), 50).unwrap(),
        Some(vec![json!({"role": "user", "content": "2+2?"})])
    );
    // Another key, or the master key, sees nothing; nor does anyone after expiry.
    assert_eq!(store.stored_response("resp_a", Some(2), 50).unwrap(), None);
    assert_eq!(store.stored_response("resp_a", None, 50).unwrap(), None);
    assert_eq!(store.stored_response("resp_a", Some(1), 100).unwrap(), None);

    let recall = Recall {
        owner: Some(1),
        previous: Some("resp_a".into()),
        items: vec!["fc_resp_a_0".into(), "fc_unknown".into()],
    };
    let recalled = store.recall_responses(&recall, 50).unwrap();
    let previous = recalled.previous.unwrap();
    assert_eq!(
        (previous.provider.as_str(), previous.native),
        ("anthropic", false)
    );
    assert_eq!(previous.items.len(), 3, "the input, then both output items");
    assert_eq!(previous.items[0]["content"], "2+2?");
    assert_eq!(recalled.items.len(), 1);
    assert_eq!(recalled.items["fc_resp_a_0"].0["name"], "f");
    let elsewhere = Recall {
        owner: Some(2),
        ..recall
    };
    let other = store.recall_responses(&elsewhere, 50).unwrap();
    assert!(other.previous.is_none() && other.previous_elsewhere && other.items.is_empty());

    // Kept again under the same id: the new one replaces it.
    let mut again = kept("resp_a", Some(1), 20);
    again.response["output"][0]["content"][0]["text"] = json!("four");
    store.keep_response(&again, 100).unwrap();
    let got = store
        .stored_response("resp_a", Some(1), 50)
        .unwrap()
        .unwrap();
    assert_eq!(got["output"][0]["content"][0]["text"], "four");

    assert!(!store.delete_response("resp_a", Some(2), 50).unwrap());
    assert!(store.delete_response("resp_a", Some(1), 50).unwrap());
    assert!(!store.delete_response("resp_a", Some(1), 50).unwrap());
    let gone = store.recall_responses(&elsewhere, 50).unwrap();
    assert!(!gone.previous_elsewhere);

    store.keep_response(&kept("resp_b", None, 30), 60).unwrap();
    store.keep_response(&kept("resp_c", None, 30), 90).unwrap();
    assert_eq!(store.purge_responses(60).unwrap(), 1);
    assert_eq!(store.stored_response("resp_b", None, 59).unwrap(), None);
    assert!(store.stored_response("resp_c", None, 59).unwrap().is_some());
}

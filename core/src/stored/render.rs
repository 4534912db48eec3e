//! The host's stored-response answers in OpenAI's shapes: the `response`
//! object, `{"id", "object": "response", "deleted": true}`, and a page of
//! input items (`{"object": "list", "data", "first_id", "last_id",
//! "has_more"}`); refusals as OpenAI errors.

use serde_json::{json, Value};

use super::{ItemsPage, StoredAnswer, StoredError};
use crate::api::{ApiError, Dialect, ErrorKind, Response};

pub fn render(answer: StoredAnswer) -> Response {
    let body = match answer {
        StoredAnswer::Response(response) => response,
        StoredAnswer::Deleted(id) => json!({"id": id, "object": "response", "deleted": true}),
        StoredAnswer::Items { items, page } => items_page(items, &page),
    };
    Response::json(200, serde_json::to_vec(&body).unwrap_or_default())
}

pub fn render_error(err: StoredError) -> ApiError {
    match err {
        StoredError::NotFound(id) => not_found(&id),
        StoredError::Unavailable => ApiError::new(
            Dialect::Responses,
            ErrorKind::Unavailable,
            "the response store is unavailable; try again",
        )
        .with_code("store_unavailable"),
    }
}

/// OpenAI's answer for a response id it does not have (for this key).
pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Dialect::Responses,
        ErrorKind::NotFound,
        format!("Response with id '{id}' not found."),
    )
}

/// One page of `items` (in conversation order): `order` first, then the
/// items strictly after `after` / before `before` in that order, at most
/// `limit` of them; `has_more` when more follow in the paging direction.
pub(crate) fn items_page(mut items: Vec<Value>, page: &ItemsPage) -> Value {
    if !page.ascending {
        items.reverse();
    }
    let position = |id: &str| {
        items
            .iter()
            .position(|i| i.get("id").and_then(Value::as_str) == Some(id))
    };
    let mut start = 0;
    let mut end = items.len();
    if let Some(after) = &page.after {
        // An unknown cursor names nothing to page from: an empty page.
        start = position(after).map_or(items.len(), |i| i + 1);
    }
    if let Some(before) = &page.before {
        end = position(before).unwrap_or(0);
    }
    let end = end.max(start);
    let (from, to, has_more) = if page.before.is_some() && page.after.is_none() {
        // Paging backwards: the `limit` items just before the cursor.
        let from = end.saturating_sub(page.limit).max(start);
        (from, end, from > start)
    } else {
        let to = (start + page.limit).min(end);
        (start, to, to < end)
    };
    let data: Vec<Value> = items.drain(from..to).collect();
    let id_of = |v: Option<&Value>| v.and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
    json!({
        "object": "list",
        "first_id": id_of(data.first()),
        "last_id": id_of(data.last()),
        "has_more": has_more,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"id": format!("i{i}")})).collect()
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["id"].as_str())
            .collect()
    }

    fn query(
        limit: usize,
        ascending: bool,
        after: Option<&str>,
        before: Option<&str>,
    ) -> ItemsPage {
        ItemsPage {
            limit,
            ascending,
            after: after.map(str::to_owned),
            before: before.map(str::to_owned),
        }
    }

    #[test]
    fn newest_first_by_default_with_cursors() {
        let page = items_page(items(5), &query(2, false, None, None));
        assert_eq!(ids(&page), ["i4", "i3"]);
        assert_eq!(
            (page["first_id"].as_str(), page["last_id"].as_str()),
            (Some("i4"), Some("i3"))
        );
        assert_eq!(page["has_more"], true);
        let next = items_page(items(5), &query(2, false, Some("i3"), None));
        assert_eq!(ids(&next), ["i2", "i1"]);
        let last = items_page(items(5), &query(2, false, Some("i1"), None));
        assert_eq!((ids(&last), &last["has_more"]), (vec!["i0"], &json!(false)));
    }

    #[test]
    fn ascending_and_before() {
        let page = items_page(items(5), &query(10, true, None, None));
        assert_eq!(ids(&page), ["i0", "i1", "i2", "i3", "i4"]);
        assert_eq!(page["has_more"], false);
        let back = items_page(items(5), &query(2, true, None, Some("i4")));
        assert_eq!(
            (ids(&back), &back["has_more"]),
            (vec!["i2", "i3"], &json!(true))
        );
        let empty = items_page(Vec::new(), &query(2, true, None, None));
        assert_eq!((ids(&empty).len(), &empty["first_id"]), (0, &Value::Null));
    }
}

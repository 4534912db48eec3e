//! A stored-response request from its route and query.

use std::borrow::Cow;

use super::{ItemsPage, StoredCall, StoredOp};
use crate::api::endpoint::percent_decode;
use crate::api::{ApiError, Dialect, StoredRoute};
use crate::exchange::Caller;

/// OpenAI's bounds on an input-items page.
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;
/// Ids are short; a longer one names nothing stored.
const MAX_ID: usize = 256;

fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::invalid_request(Dialect::OpenAi, message)
}

pub fn parse(
    route: &StoredRoute<'_>,
    query: Option<&str>,
    caller: Caller,
) -> Result<StoredCall, ApiError> {
    let op = match route {
        StoredRoute::Get(raw) => StoredOp::Get(id(raw)?),
        StoredRoute::Delete(raw) => StoredOp::Delete(id(raw)?),
        StoredRoute::InputItems(raw) => StoredOp::InputItems {
            id: id(raw)?,
            page: page(query.unwrap_or(""))?,
        },
    };
    Ok(StoredCall {
        owner: caller.key_id(),
        op,
    })
}

/// The id in the path, decoded; one that cannot be stored is a 404 like
/// an unknown one.
fn id(raw: &str) -> Result<String, ApiError> {
    match percent_decode(raw) {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID => Ok(id.into_owned()),
        _ => Err(super::render::not_found(raw)),
    }
}

fn page(query: &str) -> Result<ItemsPage, ApiError> {
    let mut page = ItemsPage {
        limit: DEFAULT_LIMIT,
        ascending: false,
        after: None,
        before: None,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)
            .ok_or_else(|| invalid(format!("`{name}` is not valid percent-encoded UTF-8")))?;
        match name {
            "limit" => {
                page.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| invalid("`limit` must be an integer from 1 to 100"))?;
            }
            "order" => {
                page.ascending = match value.as_ref() {
                    "asc" => true,
                    "desc" => false,
                    _ => return Err(invalid("`order` must be `asc` or `desc`")),
                };
            }
            "after" if !value.is_empty() => page.after = Some(value.into_owned()),
            "before" if !value.is_empty() => page.before = Some(value.into_owned()),
            // `include[]` asks for fields of OpenAI's built-in tools, which
            // stored items here do not have; SDKs may send other extras.
            _ => {}
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_defaults_to_twenty_newest_first() {
        let p = page("").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (p.limit, p.ascending, p.after, p.before),
            (20, false, None, None)
        );
    }

    #[test]
    fn page_reads_cursors_and_refuses_bad_values() {
        let p = page("limit=5&order=asc&after=msg_1&include%5B%5D=x")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((p.limit, p.ascending), (5, true));
        assert_eq!(p.after.as_deref(), Some("msg_1"));
        assert!(page("limit=0").is_err());
        assert!(page("limit=101").is_err());
        assert!(page("order=up").is_err());
    }
}

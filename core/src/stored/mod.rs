//! Stored responses of the Responses API (`store`, `previous_response_id`,
//! `item_reference`, `GET`/`DELETE /v1/responses/{id}`, `…/input_items`)
//! as data. The core says what to keep when a call ends ([`Kept`], handed
//! out as `Output::Keep`), asks the host for what a request refers to
//! before planning it ([`Recall`] out as `Output::Recall`, [`Recalled`]
//! back as `Input::Recalled`), and parses and answers the three
//! endpoints through the management hand-off ([`StoredCall`]). The host
//! owns the store, the retention and the purge.

mod parse;
mod render;

pub use parse::parse;
pub use render::{render, render_error};

use std::collections::HashMap;

use serde_json::Value;

/// A response to keep: the `response` object the client got, and the
/// items it was made from (its whole conversation: earlier turns
/// included), each with an `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub id: String,
    /// The key that made it; `None`: the master key.
    pub owner: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// The configured provider that served it.
    pub provider: String,
    /// Answered by a provider that takes the Responses API itself (which
    /// keeps its own copy under the same id).
    pub native: bool,
    pub response: Value,
    pub input: Vec<Value>,
}

/// What a request refers to, for one key: its `previous_response_id` and
/// the ids of its `item_reference` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recall {
    pub owner: Option<i64>,
    pub previous: Option<String>,
    pub items: Vec<String>,
}

/// The earlier turns of a stored response: its input then its output.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub provider: String,
    pub native: bool,
    pub items: Vec<Value>,
}

/// What the host found for a [`Recall`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recalled {
    /// The previous response, when one was asked for and this key has it.
    pub previous: Option<Conversation>,
    /// The previous response id is stored, but for another key: it is
    /// not this key's to continue, nor to forward.
    pub previous_elsewhere: bool,
    /// Referenced items this key has, by id, and whether each came from a
    /// provider's own Responses API.
    pub items: HashMap<String, (Value, bool)>,
}

/// The store could not be read (logged by the host): a 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

/// One of the stored-response endpoints, for the key that asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCall {
    pub owner: Option<i64>,
    pub op: StoredOp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredOp {
    Get(String),
    Delete(String),
    InputItems { id: String, page: ItemsPage },
}

/// `GET …/input_items`: `limit` (1–100, 20), `order` (`desc` by default,
/// as OpenAI's), and the item-id cursors `after` / `before`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemsPage {
    pub limit: usize,
    pub ascending: bool,
    pub after: Option<String>,
    pub before: Option<String>,
}

/// The host's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum StoredAnswer {
    Response(Value),
    Deleted(String),
    /// Every input item of the response, in order, and the page asked
    /// for; the core pages them.
    Items {
        items: Vec<Value>,
        page: ItemsPage,
    },
}

/// Why the host could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredError {
    /// No response with this id for this key.
    NotFound(String),
    Unavailable,
}

//! [`ResponseStore`] on PostgreSQL: the SQLite store's semantics
//! (`sqlite/responses.rs`) on the tables of migration 2. A response's
//! items go with it (`ON DELETE CASCADE`).

use arouter_core::stored::{Conversation, Kept, Recall, Recalled};
use postgres::GenericClient;
use serde_json::Value;

use super::{backend, PostgresStore};
use crate::store::responses::{json_text, output_of, parse, ResponseStore};
use crate::store::StoreError;

/// Deletes `owner`'s response `id` (one row, unless a client reused an
/// id) with its items; how many responses.
fn delete_rows(
    client: &mut impl GenericClient,
    id: &str,
    owner: Option<i64>,
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM responses WHERE id = $1 AND owner IS NOT DISTINCT FROM $2",
            &[&id, &owner],
        )
        .map_err(backend)
}

/// One column of `owner`'s live response `id` (the newest row).
fn live_column(
    client: &mut impl GenericClient,
    column: &str,
    id: &str,
    owner: Option<i64>,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {column} FROM responses
                 WHERE id = $1 AND owner IS NOT DISTINCT FROM $2 AND expires_at > $3
                 ORDER BY seq DESC LIMIT 1"
            ),
            &[&id, &owner, &now],
        )
        .map_err(backend)?;
    row.map(|r| r.try_get(0).map_err(backend)).transpose()
}

impl ResponseStore for PostgresStore {
    fn keep_response(&self, kept: &Kept, expires_at: i64) -> Result<(), StoreError> {
        let response = json_text(&kept.response)?;
        let input = json_text(&kept.input)?;
        let items: Vec<(String, String)> = output_of(&kept.response)
            .iter()
            .filter_map(|item| {
                let id = item.get("id").and_then(Value::as_str)?.to_owned();
                Some((id, serde_json::to_string(item).ok()?))
            })
            .collect();
        self.in_transaction(|tx| {
            delete_rows(tx, &kept.id, kept.owner)?;
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO responses
                         (id, owner, created_at, expires_at, provider, native, response, input)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
                    &[
                        &kept.id,
                        &kept.owner,
                        &kept.created_at,
                        &expires_at,
                        &kept.provider,
                        &kept.native,
                        &response,
                        &input,
                    ],
                )
                .and_then(|r| r.try_get(0))
                .map_err(backend)?;
            for (id, item) in &items {
                tx.execute(
                    "INSERT INTO response_items (response_seq, item_id, owner, item)
                     VALUES ($1, $2, $3, $4)",
                    &[&seq, id, &kept.owner, item],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
    }

    fn recall_responses(&self, recall: &Recall, now: i64) -> Result<Recalled, StoreError> {
        self.with(|client| {
            let mut recalled = Recalled::default();
            if let Some(id) = &recall.previous {
                recalled.previous = conversation(client, id, recall.owner, now)?;
                if recalled.previous.is_none() {
                    recalled.previous_elsewhere = client
                        .query_opt(
                            "SELECT 1 FROM responses WHERE id = $1 AND expires_at > $2 LIMIT 1",
                            &[id, &now],
                        )
                        .map_err(backend)?
                        .is_some();
                }
            }
            let find = client
                .prepare(
                    "SELECT i.item, r.native FROM response_items i
                     JOIN responses r ON r.seq = i.response_seq
                     WHERE i.item_id = $1 AND i.owner IS NOT DISTINCT FROM $2
                       AND r.expires_at > $3
                     ORDER BY i.response_seq DESC LIMIT 1",
                )
                .map_err(backend)?;
            for id in &recall.items {
                let found = client
                    .query_opt(&find, &[id, &recall.owner, &now])
                    .map_err(backend)?;
                if let Some(row) = found {
                    let item: String = row.try_get(0).map_err(backend)?;
                    let native: bool = row.try_get(1).map_err(backend)?;
                    recalled.items.insert(id.clone(), (parse(&item)?, native));
                }
            }
            Ok(recalled)
        })
    }

    fn stored_response(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<Value>, StoreError> {
        let text = self.with(|client| live_column(client, "response", id, owner, now))?;
        text.as_deref().map(parse).transpose()
    }

    fn stored_input(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        let text = self.with(|client| live_column(client, "input", id, owner, now))?;
        match text {
            None => Ok(None),
            Some(text) => match parse(&text)? {
                Value::Array(items) => Ok(Some(items)),
                _ => Ok(Some(Vec::new())),
            },
        }
    }

    fn delete_response(&self, id: &str, owner: Option<i64>, now: i64) -> Result<bool, StoreError> {
        self.in_transaction(|tx| {
            let live = live_column(tx, "id", id, owner, now)?.is_some();
            delete_rows(tx, id, owner)?;
            Ok(live)
        })
    }

    fn purge_responses(&self, now: i64) -> Result<u64, StoreError> {
        self.with(|client| {
            client
                .execute("DELETE FROM responses WHERE expires_at <= $1", &[&now])
                .map_err(backend)
        })
    }
}

/// `owner`'s response `id` as the turns it ends: its input, then its
/// output.
fn conversation(
    client: &mut impl GenericClient,
    id: &str,
    owner: Option<i64>,
    now: i64,
) -> Result<Option<Conversation>, StoreError> {
    let row = client
        .query_opt(
            "SELECT provider, native, input, response FROM responses
             WHERE id = $1 AND owner IS NOT DISTINCT FROM $2 AND expires_at > $3
             ORDER BY seq DESC LIMIT 1",
            &[&id, &owner, &now],
        )
        .map_err(backend)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let provider: String = row.try_get(0).map_err(backend)?;
    let native: bool = row.try_get(1).map_err(backend)?;
    let input: String = row.try_get(2).map_err(backend)?;
    let response: String = row.try_get(3).map_err(backend)?;
    let mut items = match parse(&input)? {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    items.extend(output_of(&parse(&response)?));
    Ok(Some(Conversation {
        provider,
        native,
        items,
    }))
}

//! [`ResponseStore`] on the SQLite file (tables of migration 10).

use arouter_core::stored::{Conversation, Kept, Recall, Recalled};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{backend, SqliteStore};
use crate::store::responses::{json_text, output_of, parse, ResponseStore};
use crate::store::StoreError;

/// The rows of `owner`'s response `id` (one, unless a client reused an id).
/// `column` (a name of ours, never the client's) of the newest live
/// response `id` of `owner`, as Postgres's store reads it too.
fn live_column(
    conn: &Connection,
    column: &'static str,
    id: &str,
    owner: Option<i64>,
    now: i64,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        &format!(
            "SELECT {column} FROM responses
             WHERE id = ?1 AND owner IS ?2 AND expires_at > ?3
             ORDER BY seq DESC LIMIT 1"
        ),
        params![id, owner, now],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .map_err(backend)
}

fn delete_rows(conn: &Connection, id: &str, owner: Option<i64>) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM response_items WHERE response_seq IN
             (SELECT seq FROM responses WHERE id = ?1 AND owner IS ?2)",
        params![id, owner],
    )?;
    conn.execute(
        "DELETE FROM responses WHERE id = ?1 AND owner IS ?2",
        params![id, owner],
    )
}

impl ResponseStore for SqliteStore {
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
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            delete_rows(&tx, &kept.id, kept.owner).map_err(backend)?;
            tx.execute(
                "INSERT INTO responses
                     (id, owner, created_at, expires_at, provider, native, response, input)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    kept.id,
                    kept.owner,
                    kept.created_at,
                    expires_at,
                    kept.provider,
                    kept.native,
                    response,
                    input
                ],
            )
            .map_err(backend)?;
            let seq = tx.last_insert_rowid();
            for (id, item) in &items {
                tx.execute(
                    "INSERT INTO response_items (response_seq, item_id, owner, item)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![seq, id, kept.owner, item],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
    }

    fn recall_responses(&self, recall: &Recall, now: i64) -> Result<Recalled, StoreError> {
        self.with(|conn| {
            let mut recalled = Recalled::default();
            if let Some(id) = &recall.previous {
                recalled.previous = conversation(conn, id, recall.owner, now)?;
                if recalled.previous.is_none() {
                    recalled.previous_elsewhere = conn
                        .query_row(
                            "SELECT 1 FROM responses WHERE id = ?1 AND expires_at > ?2 LIMIT 1",
                            params![id, now],
                            |_| Ok(()),
                        )
                        .optional()
                        .map_err(backend)?
                        .is_some();
                }
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.item, r.native FROM response_items i
                     JOIN responses r ON r.seq = i.response_seq
                     WHERE i.item_id = ?1 AND i.owner IS ?2 AND r.expires_at > ?3
                     ORDER BY i.response_seq DESC LIMIT 1",
                )
                .map_err(backend)?;
            for id in &recall.items {
                let found = stmt
                    .query_row(params![id, recall.owner, now], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
                    })
                    .optional()
                    .map_err(backend)?;
                if let Some((item, native)) = found {
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
        let text = self.with(|conn| live_column(conn, "response", id, owner, now))?;
        text.as_deref().map(parse).transpose()
    }

    fn stored_input(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        let text = self.with(|conn| live_column(conn, "input", id, owner, now))?;
        match text {
            None => Ok(None),
            Some(text) => match parse(&text)? {
                Value::Array(items) => Ok(Some(items)),
                _ => Ok(Some(Vec::new())),
            },
        }
    }

    fn delete_response(&self, id: &str, owner: Option<i64>, now: i64) -> Result<bool, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let live = live_column(&tx, "id", id, owner, now)?.is_some();
            delete_rows(&tx, id, owner).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(live)
        })
    }

    fn purge_responses(&self, now: i64) -> Result<u64, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            tx.execute(
                "DELETE FROM response_items WHERE response_seq IN
                     (SELECT seq FROM responses WHERE expires_at <= ?1)",
                [now],
            )
            .map_err(backend)?;
            let n = tx
                .execute("DELETE FROM responses WHERE expires_at <= ?1", [now])
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(n as u64)
        })
    }
}

/// `owner`'s response `id` as the turns it ends: its input, then its
/// output.
fn conversation(
    conn: &Connection,
    id: &str,
    owner: Option<i64>,
    now: i64,
) -> Result<Option<Conversation>, StoreError> {
    let row = conn
        .query_row(
            "SELECT provider, native, input, response FROM responses
             WHERE id = ?1 AND owner IS ?2 AND expires_at > ?3
             ORDER BY seq DESC LIMIT 1",
            params![id, owner, now],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?;
    let Some((provider, native, input, response)) = row else {
        return Ok(None);
    };
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

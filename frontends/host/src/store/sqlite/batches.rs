//! [`BatchStore`] on the SQLite file (tables of migration 8).

use arouter_core::batch::{
    result_line, BatchView, Counts, ItemEnd, ListCursor, ListQuery, NewBatch, Status,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::{backend, insert_transactions, SqliteStore};
use crate::store::batches::{BatchItem, BatchStore, Deleted, Results, UnrunItem, Wanted};
use crate::store::{StoreError, Transaction};

/// A batch row: its sequence number (the list's order) and its view.
struct Row {
    seq: i64,
    view: BatchView,
}

const BATCH_COLUMNS: &str = "seq, id, created_at, expires_at, ended_at, cancel_initiated_at";

fn row(conn: &Connection, r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let seq: i64 = r.get(0)?;
    let ended_at: Option<i64> = r.get(4)?;
    let cancel_initiated_at: Option<i64> = r.get(5)?;
    let status = match (ended_at, cancel_initiated_at) {
        (Some(_), _) => Status::Ended,
        (None, Some(_)) => Status::Canceling,
        (None, None) => Status::InProgress,
    };
    Ok(Row {
        seq,
        view: BatchView {
            id: r.get(1)?,
            status,
            counts: counts(conn, seq)?,
            created_at: r.get(2)?,
            expires_at: r.get(3)?,
            ended_at,
            cancel_initiated_at,
        },
    })
}

fn counts(conn: &Connection, seq: i64) -> rusqlite::Result<Counts> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, result, COUNT(*) FROM batch_requests WHERE batch_seq = ?1
         GROUP BY state, result",
    )?;
    let mut counts = Counts::default();
    let rows = stmt.query_map([seq], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (state, result, n) = row?;
        let n = n.max(0) as u64;
        match (state.as_str(), result.as_deref()) {
            ("done", Some("succeeded")) => counts.succeeded += n,
            ("done", Some("errored")) => counts.errored += n,
            ("done", Some("canceled")) => counts.canceled += n,
            ("done", Some("expired")) => counts.expired += n,
            _ => counts.processing += n,
        }
    }
    Ok(counts)
}

fn find(conn: &Connection, id: &str, owner: Option<i64>) -> Result<Option<Row>, StoreError> {
    conn.query_row(
        &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1 AND owner IS ?2"),
        params![id, owner],
        |r| row(conn, r),
    )
    .optional()
    .map_err(backend)
}

/// Ends batch `seq` at `now` when none of its requests is left to run.
fn end_if_done(conn: &Connection, seq: i64, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE batches SET ended_at = ?2 WHERE seq = ?1 AND ended_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM batch_requests
                         WHERE batch_seq = ?1 AND state IN ('pending', 'running'))",
        params![seq, now],
    )
    .map_err(backend)?;
    Ok(())
}

/// Ends `seq`'s pending requests as `result` (canceled or expired).
fn end_pending(conn: &Connection, seq: i64, result: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE batch_requests SET state = 'done', result = ?2
         WHERE batch_seq = ?1 AND state = 'pending'",
        params![seq, result],
    )
    .map_err(backend)?;
    Ok(())
}

impl BatchStore for SqliteStore {
    fn create_batch(
        &self,
        id: &str,
        owner: Option<i64>,
        batch: &NewBatch,
        now: i64,
        expires_at: i64,
    ) -> Result<BatchView, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO batches (id, owner, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, owner, now, expires_at],
            )
            .map_err(backend)?;
            let seq = tx.last_insert_rowid();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO batch_requests (batch_seq, idx, custom_id, params, max_cost_micros)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(backend)?;
                for (idx, item) in batch.items.iter().enumerate() {
                    let max = i64::try_from(item.max_cost_micros).unwrap_or(i64::MAX);
                    stmt.execute(params![seq, idx as i64, item.custom_id, item.params, max])
                        .map_err(backend)?;
                }
            }
            let created = find(&tx, id, owner)?
                .ok_or_else(|| StoreError::Backend("a batch just inserted is missing".into()))?;
            tx.commit().map_err(backend)?;
            Ok(created.view)
        })
    }

    fn batch(&self, id: &str, owner: Option<i64>) -> Result<Option<BatchView>, StoreError> {
        self.with(|conn| Ok(find(conn, id, owner)?.map(|r| r.view)))
    }

    fn list_batches(
        &self,
        owner: Option<i64>,
        query: &ListQuery,
    ) -> Result<(Vec<BatchView>, bool), StoreError> {
        self.with(|conn| {
            let take = i64::from(query.limit) + 1;
            let (sql, anchor) = match &query.cursor {
                None => ("seq < ?2 ORDER BY seq DESC", i64::MAX),
                Some(ListCursor::After(id)) => match find(conn, id, owner)? {
                    Some(r) => ("seq < ?2 ORDER BY seq DESC", r.seq),
                    None => return Ok((Vec::new(), false)),
                },
                Some(ListCursor::Before(id)) => match find(conn, id, owner)? {
                    Some(r) => ("seq > ?2 ORDER BY seq ASC", r.seq),
                    None => return Ok((Vec::new(), false)),
                },
            };
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {BATCH_COLUMNS} FROM batches WHERE owner IS ?1 AND {sql} LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![owner, anchor, take], |r| row(conn, r))
                .map_err(backend)?;
            let mut views = rows
                .map(|r| r.map(|r| r.view))
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let has_more = views.len() as i64 == take;
            views.truncate(query.limit as usize);
            if matches!(query.cursor, Some(ListCursor::Before(_))) {
                // Fetched oldest first to find the page next to the
                // cursor; shown newest first like every page.
                views.reverse();
            }
            Ok((views, has_more))
        })
    }

    fn cancel_batch(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<BatchView>, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let Some(found) = find(&tx, id, owner)? else {
                return Ok(None);
            };
            if found.view.status == Status::InProgress {
                tx.execute(
                    "UPDATE batches SET cancel_initiated_at = ?2 WHERE seq = ?1",
                    params![found.seq, now],
                )
                .map_err(backend)?;
                end_pending(&tx, found.seq, "canceled")?;
                end_if_done(&tx, found.seq, now)?;
            }
            let after = find(&tx, id, owner)?.map(|r| r.view);
            tx.commit().map_err(backend)?;
            Ok(after)
        })
    }

    fn delete_batch(&self, id: &str, owner: Option<i64>) -> Result<Deleted, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let Some(found) = find(&tx, id, owner)? else {
                return Ok(Deleted::NotFound);
            };
            if found.view.status != Status::Ended {
                return Ok(Deleted::NotEnded);
            }
            delete_seq(&tx, found.seq)?;
            tx.commit().map_err(backend)?;
            Ok(Deleted::Deleted)
        })
    }

    fn batch_results(&self, id: &str, owner: Option<i64>) -> Result<Results, StoreError> {
        self.with(|conn| {
            let Some(found) = find(conn, id, owner)? else {
                return Ok(Results::NotFound);
            };
            if found.view.status != Status::Ended {
                return Ok(Results::NotEnded);
            }
            let mut stmt = conn
                .prepare(
                    "SELECT custom_id, result, body FROM batch_requests
                     WHERE batch_seq = ?1 ORDER BY idx",
                )
                .map_err(backend)?;
            let mut rows = stmt.query([found.seq]).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(backend)? {
                let custom_id: String = r.get(0).map_err(backend)?;
                let kind: Option<String> = r.get(1).map_err(backend)?;
                let body: Option<Vec<u8>> = r.get(2).map_err(backend)?;
                let end = kind
                    .and_then(|k| ItemEnd::from_stored(&k, body))
                    .unwrap_or_else(|| ItemEnd::Errored(Vec::new()));
                result_line(&custom_id, &end, &mut out);
            }
            Ok(Results::Lines(out))
        })
    }

    fn claim_batch_requests(&self, limit: usize) -> Result<Vec<BatchItem>, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let items = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT r.batch_seq, b.id, r.idx, r.custom_id, r.params, b.owner
                         FROM batch_requests r JOIN batches b ON b.seq = r.batch_seq
                         WHERE r.state = 'pending' AND b.ended_at IS NULL
                           AND b.cancel_initiated_at IS NULL
                         ORDER BY r.batch_seq, r.idx LIMIT ?1",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([limit as i64], |r| {
                        Ok(BatchItem {
                            batch_seq: r.get(0)?,
                            batch_id: r.get(1)?,
                            idx: r.get::<_, i64>(2)?.clamp(0, i64::from(u32::MAX)) as u32,
                            custom_id: r.get(3)?,
                            params: r.get(4)?,
                            owner: r.get(5)?,
                        })
                    })
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            {
                let mut mark = tx
                    .prepare_cached(
                        "UPDATE batch_requests SET state = 'running' WHERE batch_seq = ?1 AND idx = ?2",
                    )
                    .map_err(backend)?;
                for item in &items {
                    mark.execute(params![item.batch_seq, item.idx])
                        .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
            Ok(items)
        })
    }

    fn batch_request_wanted(&self, item: &BatchItem, now: i64) -> Result<Wanted, StoreError> {
        self.with(|conn| {
            let state: Option<(Option<i64>, Option<i64>, i64)> = conn
                .query_row(
                    "SELECT ended_at, cancel_initiated_at, expires_at FROM batches WHERE seq = ?1",
                    [item.batch_seq],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            Ok(match state {
                None | Some((_, Some(_), _)) | Some((Some(_), None, _)) => Wanted::Cancel,
                Some((None, None, expires_at)) if expires_at <= now => Wanted::Expire,
                Some(_) => Wanted::Run,
            })
        })
    }

    fn finish_batch_request(
        &self,
        item: &BatchItem,
        end: &ItemEnd,
        transactions: &[Transaction],
        now: i64,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let changed = tx
                .execute(
                    "UPDATE batch_requests SET state = 'done', result = ?3, body = ?4
                     WHERE batch_seq = ?1 AND idx = ?2 AND state != 'done'",
                    params![item.batch_seq, item.idx, end.kind(), end.body()],
                )
                .map_err(backend)?;
            if changed == 1 {
                insert_transactions(&tx, transactions, &|| {})?;
                end_if_done(&tx, item.batch_seq, now)?;
            }
            tx.commit().map_err(backend)
        })
    }

    fn reopen_batch_requests(&self) -> Result<u64, StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE batch_requests SET state = 'pending' WHERE state = 'running'",
                [],
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
    }

    fn unrun_batch_requests(&self) -> Result<Vec<UnrunItem>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT b.id, r.idx, b.owner, r.max_cost_micros
                     FROM batch_requests r JOIN batches b ON b.seq = r.batch_seq
                     WHERE r.state = 'pending' AND b.ended_at IS NULL
                       AND b.cancel_initiated_at IS NULL AND r.max_cost_micros > 0
                     ORDER BY r.batch_seq, r.idx",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(UnrunItem {
                        batch_id: r.get(0)?,
                        idx: r.get::<_, i64>(1)?.clamp(0, i64::from(u32::MAX)) as u32,
                        owner: r.get(2)?,
                        max_cost_micros: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    fn expire_batches(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let expired: Vec<(i64, String)> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT seq, id FROM batches WHERE ended_at IS NULL
                         AND cancel_initiated_at IS NULL AND expires_at <= ?1",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            for (seq, _) in &expired {
                end_pending(&tx, *seq, "expired")?;
                end_if_done(&tx, *seq, now)?;
            }
            tx.commit().map_err(backend)?;
            Ok(expired.into_iter().map(|(_, id)| id).collect())
        })
    }

    fn purge_batches(&self, ended_before: i64) -> Result<u64, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction().map_err(backend)?;
            let seqs: Vec<i64> = {
                let mut stmt = tx
                    .prepare("SELECT seq FROM batches WHERE ended_at < ?1")
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([ended_before], |r| r.get(0))
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            for &seq in &seqs {
                delete_seq(&tx, seq)?;
            }
            tx.commit().map_err(backend)?;
            Ok(seqs.len() as u64)
        })
    }
}

fn delete_seq(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM batch_requests WHERE batch_seq = ?1", [seq])
        .map_err(backend)?;
    conn.execute("DELETE FROM batches WHERE seq = ?1", [seq])
        .map_err(backend)?;
    Ok(())
}

//! [`BatchStore`] on PostgreSQL: the SQLite store's semantics
//! (`sqlite/batches.rs`), with row locks where two instances could race:
//! a request is claimed by one worker only (`FOR UPDATE SKIP LOCKED`), and
//! finishing it and storing its bill is one transaction.

use arouter_core::batch::{
    result_line, BatchView, Counts, ItemEnd, ListCursor, ListQuery, NewBatch, Status,
};
use postgres::{GenericClient, Row};

use super::{backend, insert_transactions, unsigned, PostgresStore};
use crate::store::batches::{BatchItem, BatchStore, Deleted, Results, UnrunItem, Wanted};
use crate::store::{StoreError, Transaction};

/// A batch row: its sequence number (the list's order) and its view.
struct Found {
    seq: i64,
    view: BatchView,
}

const BATCH_COLUMNS: &str = "seq, id, created_at, expires_at, ended_at, cancel_initiated_at";

fn found(client: &mut impl GenericClient, r: &Row) -> Result<Found, StoreError> {
    let seq: i64 = r.try_get(0).map_err(backend)?;
    let ended_at: Option<i64> = r.try_get(4).map_err(backend)?;
    let cancel_initiated_at: Option<i64> = r.try_get(5).map_err(backend)?;
    let status = match (ended_at, cancel_initiated_at) {
        (Some(_), _) => Status::Ended,
        (None, Some(_)) => Status::Canceling,
        (None, None) => Status::InProgress,
    };
    Ok(Found {
        seq,
        view: BatchView {
            id: r.try_get(1).map_err(backend)?,
            status,
            counts: counts(client, seq)?,
            created_at: r.try_get(2).map_err(backend)?,
            expires_at: r.try_get(3).map_err(backend)?,
            ended_at,
            cancel_initiated_at,
        },
    })
}

fn counts(client: &mut impl GenericClient, seq: i64) -> Result<Counts, StoreError> {
    let rows = client
        .query(
            "SELECT state, result, COUNT(*) FROM batch_requests WHERE batch_seq = $1
             GROUP BY state, result",
            &[&seq],
        )
        .map_err(backend)?;
    let mut counts = Counts::default();
    for r in rows {
        let state: String = r.try_get(0).map_err(backend)?;
        let result: Option<String> = r.try_get(1).map_err(backend)?;
        let n = unsigned(r.try_get(2).map_err(backend)?);
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

fn find(
    client: &mut impl GenericClient,
    id: &str,
    owner: Option<i64>,
) -> Result<Option<Found>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {BATCH_COLUMNS} FROM batches WHERE id = $1 AND owner IS NOT DISTINCT FROM $2"
            ),
            &[&id, &owner],
        )
        .map_err(backend)?;
    row.map(|r| found(client, &r)).transpose()
}

/// Ends batch `seq` at `now` when none of its requests is left to run.
fn end_if_done(client: &mut impl GenericClient, seq: i64, now: i64) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE batches SET ended_at = $2 WHERE seq = $1 AND ended_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM batch_requests
                             WHERE batch_seq = $1 AND state IN ('pending', 'running'))",
            &[&seq, &now],
        )
        .map_err(backend)?;
    Ok(())
}

/// Ends `seq`'s pending requests as `result` (canceled or expired).
fn end_pending(client: &mut impl GenericClient, seq: i64, result: &str) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE batch_requests SET state = 'done', result = $2
             WHERE batch_seq = $1 AND state = 'pending'",
            &[&seq, &result],
        )
        .map_err(backend)?;
    Ok(())
}

fn delete_seq(client: &mut impl GenericClient, seq: i64) -> Result<(), StoreError> {
    client
        .execute("DELETE FROM batch_requests WHERE batch_seq = $1", &[&seq])
        .map_err(backend)?;
    client
        .execute("DELETE FROM batches WHERE seq = $1", &[&seq])
        .map_err(backend)?;
    Ok(())
}

fn index(value: i64) -> u32 {
    value.clamp(0, i64::from(u32::MAX)) as u32
}

impl BatchStore for PostgresStore {
    fn create_batch(
        &self,
        id: &str,
        owner: Option<i64>,
        batch: &NewBatch,
        now: i64,
        expires_at: i64,
    ) -> Result<BatchView, StoreError> {
        self.in_transaction(|tx| {
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO batches (id, owner, created_at, expires_at)
                     VALUES ($1, $2, $3, $4) RETURNING seq",
                    &[&id, &owner, &now, &expires_at],
                )
                .and_then(|r| r.try_get(0))
                .map_err(backend)?;
            let insert = tx
                .prepare(
                    "INSERT INTO batch_requests (batch_seq, idx, custom_id, params, max_cost_micros)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .map_err(backend)?;
            for (idx, item) in batch.items.iter().enumerate() {
                let max = i64::try_from(item.max_cost_micros).unwrap_or(i64::MAX);
                let idx = idx as i64;
                tx.execute(&insert, &[&seq, &idx, &item.custom_id, &item.params, &max])
                    .map_err(backend)?;
            }
            let created = find(tx, id, owner)?
                .ok_or_else(|| StoreError::Backend("a batch just inserted is missing".into()))?;
            Ok(created.view)
        })
    }

    fn batch(&self, id: &str, owner: Option<i64>) -> Result<Option<BatchView>, StoreError> {
        self.with(|client| Ok(find(client, id, owner)?.map(|r| r.view)))
    }

    fn list_batches(
        &self,
        owner: Option<i64>,
        query: &ListQuery,
    ) -> Result<(Vec<BatchView>, bool), StoreError> {
        self.with(|client| {
            let take = i64::from(query.limit) + 1;
            let (sql, anchor) = match &query.cursor {
                None => ("seq < $2 ORDER BY seq DESC", i64::MAX),
                Some(ListCursor::After(id)) => match find(client, id, owner)? {
                    Some(r) => ("seq < $2 ORDER BY seq DESC", r.seq),
                    None => return Ok((Vec::new(), false)),
                },
                Some(ListCursor::Before(id)) => match find(client, id, owner)? {
                    Some(r) => ("seq > $2 ORDER BY seq ASC", r.seq),
                    None => return Ok((Vec::new(), false)),
                },
            };
            let rows = client
                .query(
                    &format!(
                        "SELECT {BATCH_COLUMNS} FROM batches
                         WHERE owner IS NOT DISTINCT FROM $1 AND {sql} LIMIT $3"
                    ),
                    &[&owner, &anchor, &take],
                )
                .map_err(backend)?;
            let mut views = rows
                .iter()
                .map(|r| found(client, r).map(|f| f.view))
                .collect::<Result<Vec<_>, _>>()?;
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
        self.in_transaction(|tx| {
            let Some(batch) = find(tx, id, owner)? else {
                return Ok(None);
            };
            if batch.view.status == Status::InProgress {
                tx.execute(
                    "UPDATE batches SET cancel_initiated_at = $2
                     WHERE seq = $1 AND cancel_initiated_at IS NULL",
                    &[&batch.seq, &now],
                )
                .map_err(backend)?;
                end_pending(tx, batch.seq, "canceled")?;
                end_if_done(tx, batch.seq, now)?;
            }
            Ok(find(tx, id, owner)?.map(|r| r.view))
        })
    }

    fn delete_batch(&self, id: &str, owner: Option<i64>) -> Result<Deleted, StoreError> {
        self.in_transaction(|tx| {
            let Some(batch) = find(tx, id, owner)? else {
                return Ok(Deleted::NotFound);
            };
            if batch.view.status != Status::Ended {
                return Ok(Deleted::NotEnded);
            }
            delete_seq(tx, batch.seq)?;
            Ok(Deleted::Deleted)
        })
    }

    fn batch_results(&self, id: &str, owner: Option<i64>) -> Result<Results, StoreError> {
        self.with(|client| {
            let Some(batch) = find(client, id, owner)? else {
                return Ok(Results::NotFound);
            };
            if batch.view.status != Status::Ended {
                return Ok(Results::NotEnded);
            }
            let rows = client
                .query(
                    "SELECT custom_id, result, body FROM batch_requests
                     WHERE batch_seq = $1 ORDER BY idx",
                    &[&batch.seq],
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for r in rows {
                let custom_id: String = r.try_get(0).map_err(backend)?;
                let kind: Option<String> = r.try_get(1).map_err(backend)?;
                let body: Option<Vec<u8>> = r.try_get(2).map_err(backend)?;
                let end = kind
                    .and_then(|k| ItemEnd::from_stored(&k, body))
                    .unwrap_or_else(|| ItemEnd::Errored(Vec::new()));
                result_line(&custom_id, &end, &mut out);
            }
            Ok(Results::Lines(out))
        })
    }

    fn claim_batch_requests(&self, limit: usize) -> Result<Vec<BatchItem>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.in_transaction(|tx| {
            // Rows another instance is claiming right now are skipped, not
            // waited for: each request goes to one worker.
            let rows = tx
                .query(
                    "SELECT r.batch_seq, b.id, r.idx, r.custom_id, r.params, b.owner
                     FROM batch_requests r JOIN batches b ON b.seq = r.batch_seq
                     WHERE r.state = 'pending' AND b.ended_at IS NULL
                       AND b.cancel_initiated_at IS NULL
                     ORDER BY r.batch_seq, r.idx LIMIT $1
                     FOR UPDATE OF r SKIP LOCKED",
                    &[&limit],
                )
                .map_err(backend)?;
            let mark = tx
                .prepare(
                    "UPDATE batch_requests SET state = 'running', claimed_by = $3
                     WHERE batch_seq = $1 AND idx = $2",
                )
                .map_err(backend)?;
            let mut items = Vec::with_capacity(rows.len());
            for r in rows {
                let item = BatchItem {
                    batch_seq: r.try_get(0).map_err(backend)?,
                    batch_id: r.try_get(1).map_err(backend)?,
                    idx: index(r.try_get(2).map_err(backend)?),
                    custom_id: r.try_get(3).map_err(backend)?,
                    params: r.try_get(4).map_err(backend)?,
                    owner: r.try_get(5).map_err(backend)?,
                };
                tx.execute(
                    &mark,
                    &[&item.batch_seq, &i64::from(item.idx), &self.claim_key],
                )
                .map_err(backend)?;
                items.push(item);
            }
            Ok(items)
        })
    }

    fn batch_request_wanted(&self, item: &BatchItem, now: i64) -> Result<Wanted, StoreError> {
        self.with(|client| {
            let row = client
                .query_opt(
                    "SELECT ended_at, cancel_initiated_at, expires_at FROM batches WHERE seq = $1",
                    &[&item.batch_seq],
                )
                .map_err(backend)?;
            let state: Option<(Option<i64>, Option<i64>, i64)> = match row {
                Some(r) => Some((
                    r.try_get(0).map_err(backend)?,
                    r.try_get(1).map_err(backend)?,
                    r.try_get(2).map_err(backend)?,
                )),
                None => None,
            };
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
        self.in_transaction(|tx| {
            let changed = tx
                .execute(
                    "UPDATE batch_requests SET state = 'done', result = $3, body = $4
                     WHERE batch_seq = $1 AND idx = $2 AND state != 'done'",
                    &[
                        &item.batch_seq,
                        &i64::from(item.idx),
                        &end.kind(),
                        &end.body(),
                    ],
                )
                .map_err(backend)?;
            if changed == 1 {
                insert_transactions(tx, self.claim_key, transactions)?;
                end_if_done(tx, item.batch_seq, now)?;
            }
            Ok(())
        })
    }

    /// Only the requests of gateways that are gone: their store's session
    /// lock is free (its connection ended). A gateway starting beside
    /// others that run leaves their requests running.
    fn reopen_batch_requests(&self) -> Result<u64, StoreError> {
        self.with(|client| {
            client
                .execute(
                    "UPDATE batch_requests SET state = 'pending', claimed_by = NULL
                     WHERE state = 'running' AND (claimed_by IS NULL OR NOT EXISTS (
                         SELECT 1 FROM pg_locks l
                         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                           AND l.database = (SELECT oid FROM pg_database
                                             WHERE datname = current_database())
                           AND l.classid = ((claimed_by >> 32) & 4294967295)::oid
                           AND l.objid = (claimed_by & 4294967295)::oid))",
                    &[],
                )
                .map_err(backend)
        })
    }

    fn unrun_batch_requests(&self) -> Result<Vec<UnrunItem>, StoreError> {
        self.with(|client| {
            let rows = client
                .query(
                    "SELECT b.id, r.idx, b.owner, r.max_cost_micros
                     FROM batch_requests r JOIN batches b ON b.seq = r.batch_seq
                     WHERE r.state = 'pending' AND b.ended_at IS NULL
                       AND b.cancel_initiated_at IS NULL AND r.max_cost_micros > 0
                     ORDER BY r.batch_seq, r.idx",
                    &[],
                )
                .map_err(backend)?;
            rows.iter()
                .map(|r| {
                    Ok(UnrunItem {
                        batch_id: r.try_get(0)?,
                        idx: index(r.try_get(1)?),
                        owner: r.try_get(2)?,
                        max_cost_micros: unsigned(r.try_get(3)?),
                    })
                })
                .collect::<Result<_, postgres::Error>>()
                .map_err(backend)
        })
    }

    fn expire_batches(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.in_transaction(|tx| {
            let rows = tx
                .query(
                    "SELECT seq, id FROM batches WHERE ended_at IS NULL
                     AND cancel_initiated_at IS NULL AND expires_at <= $1 FOR UPDATE",
                    &[&now],
                )
                .map_err(backend)?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in rows {
                let seq: i64 = r.try_get(0).map_err(backend)?;
                end_pending(tx, seq, "expired")?;
                end_if_done(tx, seq, now)?;
                ids.push(r.try_get(1).map_err(backend)?);
            }
            Ok(ids)
        })
    }

    fn purge_batches(&self, ended_before: i64) -> Result<u64, StoreError> {
        self.with(|client| {
            // The requests go with their batch (ON DELETE CASCADE).
            client
                .execute("DELETE FROM batches WHERE ended_at < $1", &[&ended_before])
                .map_err(backend)
        })
    }
}

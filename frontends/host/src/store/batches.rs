//! Message batches in the store: each batch, and each of its requests as
//! its own row (pending, claimed by the worker, or done with its result),
//! so a restart resumes where the worker was. Finishing a request and
//! storing its transactions is one atomic step: a request is never both
//! unfinished and billed, nor billed twice.

use arouter_core::batch::{BatchView, ItemEnd, ListQuery, NewBatch};

use super::{StoreError, Transaction};

/// A request the worker claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchItem {
    pub batch_seq: i64,
    pub batch_id: String,
    pub idx: u32,
    pub custom_id: String,
    /// The `/v1/messages` body.
    pub params: String,
    /// The key the batch belongs to (and bills); `None`: the master key.
    pub owner: Option<i64>,
}

/// A request not run yet, and what it may cost: its credit is held again
/// at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnrunItem {
    pub batch_id: String,
    pub idx: u32,
    pub owner: Option<i64>,
    pub max_cost_micros: u64,
}

/// What the worker should do with a request it claimed, now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    Run,
    /// The batch was canceled: the request ends canceled, unrun.
    Cancel,
    /// The batch expired: the request ends expired, unrun.
    Expire,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
    /// A batch is deleted only once it ended (Anthropic's rule).
    NotEnded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Results {
    NotFound,
    NotEnded,
    /// The JSONL, one line per request in the batch's order.
    Lines(Vec<u8>),
}

pub trait BatchStore: Send + Sync {
    /// Stores a new batch with every request pending.
    fn create_batch(
        &self,
        id: &str,
        owner: Option<i64>,
        batch: &NewBatch,
        now: i64,
        expires_at: i64,
    ) -> Result<BatchView, StoreError>;
    /// The batch, if `owner` has one with this id.
    fn batch(&self, id: &str, owner: Option<i64>) -> Result<Option<BatchView>, StoreError>;
    /// One page of `owner`'s batches, newest first, and whether more follow.
    fn list_batches(
        &self,
        owner: Option<i64>,
        query: &ListQuery,
    ) -> Result<(Vec<BatchView>, bool), StoreError>;
    /// Cancels what has not run yet: pending requests end canceled; those
    /// running finish, then the batch ends. `None` when there is no such
    /// batch; a batch already ended or canceling is left as it is.
    fn cancel_batch(
        &self,
        id: &str,
        owner: Option<i64>,
        now: i64,
    ) -> Result<Option<BatchView>, StoreError>;
    fn delete_batch(&self, id: &str, owner: Option<i64>) -> Result<Deleted, StoreError>;
    fn batch_results(&self, id: &str, owner: Option<i64>) -> Result<Results, StoreError>;
    /// Marks up to `limit` pending requests of batches in progress as
    /// running and returns them, oldest batch first.
    fn claim_batch_requests(&self, limit: usize) -> Result<Vec<BatchItem>, StoreError>;
    /// Whether a claimed request should still run at `now`.
    fn batch_request_wanted(&self, item: &BatchItem, now: i64) -> Result<Wanted, StoreError>;
    /// Ends a claimed request with `end`, stores `transactions` (its
    /// billed calls) and ends its batch when it was the last, in one
    /// transaction. A request already finished is left as it is, and its
    /// transactions are not stored again.
    fn finish_batch_request(
        &self,
        item: &BatchItem,
        end: &ItemEnd,
        transactions: &[Transaction],
        now: i64,
    ) -> Result<(), StoreError>;
    /// Puts every running request back to pending: at start, for the
    /// requests a stopped process had claimed (none of them finished, so
    /// none was billed).
    fn reopen_batch_requests(&self) -> Result<u64, StoreError>;
    /// The pending requests of batches in progress, oldest first (after
    /// `reopen_batch_requests`, every request not run yet).
    fn unrun_batch_requests(&self) -> Result<Vec<UnrunItem>, StoreError>;
    /// Ends the pending requests of batches past their expiry as expired
    /// (and the batches with nothing left running); returns their ids.
    fn expire_batches(&self, now: i64) -> Result<Vec<String>, StoreError>;
    /// Deletes batches that ended before `ended_before`, with their
    /// requests and results (their transactions stay).
    fn purge_batches(&self, ended_before: i64) -> Result<u64, StoreError>;
}

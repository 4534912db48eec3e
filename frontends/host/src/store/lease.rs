//! Credit leases: how gateways sharing one store divide a balance without
//! asking the store on every call.
//!
//! A lease is credit one gateway has taken out of a shared line (the
//! account's balance, or what a limited key may still spend in its
//! window) for its own calls. The store keeps, per gateway and line, what
//! the gateway holds; a grant takes from what no gateway holds yet, so two
//! gateways can never spend the same micro-dollar, and the request path
//! spends from the gateway's own share in memory ([`crate::lease`]).
//!
//! Settling a call moves its cost from the gateway's lease to the line's
//! spending in one store transaction (the transaction row and the lease's
//! decrease commit together), so what is free in a line — its total less
//! what was spent less what every gateway holds — changes only by grants,
//! returns, credit added and limits changed.

use arouter_core::manage::LimitReset;

use super::StoreError;

/// The line a lease is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseLine {
    /// The account's balance: credits less costs.
    Account,
    /// A key's spending limit in its current window.
    Key(KeyLine),
}

/// A limited key's line as the caller's key table has it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyLine {
    pub id: i64,
    pub limit_micros: u64,
    pub reset: Option<LimitReset>,
    /// Unix second its current window began (0 for an all-time limit).
    pub window_start: i64,
    /// The window's id ([`crate::ledger::window`]): a lease taken in an
    /// earlier window no longer counts.
    pub window: u32,
}

/// What a store that several gateways share keeps of their leases.
pub trait LeaseStore: Send + Sync {
    /// Takes up to `want` micro-USD of what is free in `line` for this
    /// gateway; returns what it got (0 when nothing is free). Leases of
    /// gateways that are gone are given back first.
    fn grant(&self, line: LeaseLine, want: u64) -> Result<u64, StoreError>;
    /// Gives `amount` of this gateway's lease on `line` back.
    fn give_back(&self, line: LeaseLine, amount: u64) -> Result<(), StoreError>;
    /// Drops whatever this gateway holds of key `id`'s line.
    fn forget(&self, id: i64) -> Result<(), StoreError>;
    /// Counts the store's sessions: it moves when the connection was
    /// opened again, and with it the gateway's identity to the others, so
    /// whatever it held before may have been given back by them. The
    /// caller then drops what it holds in memory and starts again.
    fn session(&self) -> u64;
}

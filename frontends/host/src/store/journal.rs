//! The call journal's rows: a provider call written down before it goes
//! upstream (an intent), closed in the same store transaction as the
//! call's usage, and billed from the row if its gateway ends first.
//!
//! A gateway killed (`kill -9`, a crash, the machine lost) between a
//! call reaching its provider and the call's usage being committed would
//! otherwise lose the bill: the provider charged for it, the account was
//! never debited. With the journal every such call is left as an open
//! intent, and [`super::Store::recover_intents`] turns each one into a
//! transaction exactly once: by the gateway itself when it starts again,
//! or (on PostgreSQL) by any other gateway that sees its owner gone.
//!
//! What a recovered call is billed: the cost of its prompt as the
//! reservation estimated it (the model's tokenizer for a chat call),
//! which the provider bills once it has the request; the output is
//! unknown and not billed. Its status is `interrupted`, its tokens are an
//! estimate, and its record id is `intent-` and the intent's id.

/// One provider call in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Unique across gateways and restarts (instance, worker, counter).
    pub id: String,
    pub created_at: i64,
    pub key_id: Option<i64>,
    pub request_id: String,
    pub provider: String,
    pub model: String,
    /// What the call reserved (its most), for operators reading the row.
    pub reserved_micros: u64,
    /// The prompt's estimated tokens and their cost: what a recovered
    /// call is billed.
    pub prompt_tokens: u64,
    pub prompt_micros: u64,
    pub stream: bool,
}

/// What one recovery billed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Open intents of gone gateways turned into transactions.
    pub calls: u64,
    /// The sum of their costs.
    pub micros: u64,
}

/// The record id of the transaction a recovered intent becomes.
pub const RECORD_PREFIX: &str = "intent-";

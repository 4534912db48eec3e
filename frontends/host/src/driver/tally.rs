//! What the access record of one request needs beyond the core's
//! `AccessLog`: the tokens, cost and app of its usage records, and when
//! its answer's first bytes were written (time to first token: a streamed
//! answer's head waits for its first token).

use std::time::Instant;

use arouter_core::exchange::UsageRecord;

/// One request's tally, kept per connection and reset by its access record.
#[derive(Debug, Default)]
pub struct Tally {
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Micro-dollars, summed over the request's attempts.
    pub cost: u64,
    pub referer: Option<String>,
    pub title: Option<String>,
    /// When the first bytes of the answer went to the client.
    pub first_write: Option<Instant>,
}

impl Tally {
    /// Bytes of the answer are being written now.
    pub fn wrote(&mut self) {
        self.first_write.get_or_insert_with(Instant::now);
    }

    pub fn add(&mut self, usage: &UsageRecord) {
        if let Some(u) = usage.usage {
            self.tokens_in += u.prompt_tokens;
            self.tokens_out += u.completion_tokens;
        }
        self.cost += usage.cost.map_or(0, |c| c.0);
        if usage.referer.is_some() {
            self.referer.clone_from(&usage.referer);
        }
        if usage.title.is_some() {
            self.title.clone_from(&usage.title);
        }
    }
}

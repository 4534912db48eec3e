//! What the access record of one request needs beyond the core's
//! `AccessLog`: the tokens, cost and app of its usage records, and when
//! its answer's first bytes were written (time to first token: a streamed
//! answer's head waits for its first token).

use std::time::Instant;

use arouter_core::exchange::UsageRecord;

use crate::metrics::Timings;

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
    /// The request's first upstream connect (pooled or new).
    pub upstream_from: Option<Instant>,
    /// Its last upstream release.
    pub upstream_until: Option<Instant>,
}

impl Tally {
    /// Bytes of the answer are being written now.
    pub fn wrote(&mut self) {
        self.first_write.get_or_insert_with(Instant::now);
    }

    /// An upstream connection is asked for.
    pub fn upstream_connect(&mut self) {
        self.upstream_from.get_or_insert_with(Instant::now);
    }

    /// The upstream connection is let go (reused or closed).
    pub fn upstream_release(&mut self) {
        if self.upstream_from.is_some() {
            self.upstream_until = Some(Instant::now());
        }
    }

    /// The request's timings, `started` being its first byte in, `now` its
    /// last byte out.
    pub fn timings(&self, started: Instant, now: Instant) -> Timings {
        let us = |from: Instant, to: Instant| {
            u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
        };
        Timings {
            total_us: us(started, now),
            upstream_us: self
                .upstream_from
                .map(|from| us(from, self.upstream_until.unwrap_or(now))),
            ttft_us: self.first_write.map(|at| us(started, at)),
        }
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

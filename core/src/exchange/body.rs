//! Request bodies against the gateway's body budget: reserved before they
//! are buffered, refused with a 503 in the route's dialect when they do not
//! fit, and buffered with no regrowth beyond what was reserved.

use super::{Exchange, State};
use crate::api::{ApiError, Dialect, ErrorKind, Response};
use crate::budget::BodyReservation;
use crate::http1::BodyKind;
use crate::Tick;

/// Seconds a client is told to wait before retrying a refused body.
const RETRY_AFTER_SECS: &str = "1";

/// A body larger than the whole budget: it could never fit, so it is
/// refused as too large rather than as busy (clients retry a 503).
fn over_budget(dialect: Dialect) -> Response {
    let err = ApiError::new(
        dialect,
        ErrorKind::PayloadTooLarge,
        "request body is larger than the gateway holds for all requests at once",
    )
    .with_code("body_budget_exceeded");
    Response::from(&err)
}

fn busy(dialect: Dialect) -> Response {
    let err = ApiError::new(
        dialect,
        ErrorKind::Unavailable,
        "the gateway is holding too many request bodies; retry shortly",
    )
    .with_code("body_budget_exhausted");
    Response::from(&err).header("Retry-After", RETRY_AFTER_SECS.to_string())
}

impl Exchange {
    /// Reserves an announced body's bytes at the head: all of a
    /// `Content-Length` at once, nothing yet for a chunked body (it
    /// reserves as it grows). A proxied body is held only up to
    /// `proxy_buffer_bytes` (the rest streams), so only that is reserved.
    pub(super) fn reserve_body(
        &self,
        body: BodyKind,
        dialect: Dialect,
        proxy: bool,
    ) -> Result<BodyReservation, Response> {
        let bytes = match body {
            BodyKind::Length(n) if proxy => {
                n.min(u64::try_from(self.gateway.limits().proxy_buffer_bytes).unwrap_or(u64::MAX))
            }
            BodyKind::Length(n) => n,
            BodyKind::Chunked | BodyKind::Empty | BodyKind::UntilClose => 0,
        };
        let budget = self.gateway.body_budget();
        if bytes > budget.limit() {
            return Err(over_budget(dialect));
        }
        BodyReservation::try_new(budget, bytes).ok_or_else(|| busy(dialect))
    }

    /// A piece of the body. The codec bounds the total to `max_body_bytes`;
    /// the buffer only grows once the budget has granted the room.
    pub(super) fn on_body(&mut self, now: Tick, chunk: &[u8]) {
        let dialect = self.dialect();
        let max = self.gateway.limits().max_body_bytes;
        let State::Request { current, .. } = &mut self.state else {
            return;
        };
        let needed = current.body.len().saturating_add(chunk.len());
        if needed > current.body.capacity() {
            // Doubling, as `Vec` would, but capped and paid for first.
            let target = needed
                .max(current.body.capacity().saturating_mul(2))
                .min(max.max(needed));
            let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let limit = self.gateway.body_budget().limit();
            // The doubled size when it fits, else just what is needed.
            let granted = match &mut current.reservation {
                Some(reservation) => [target, needed]
                    .into_iter()
                    .find(|&size| reservation.try_grow_to(as_u64(size))),
                None => None,
            };
            let Some(granted) = granted else {
                let refusal = if as_u64(needed) > limit {
                    over_budget(dialect)
                } else {
                    busy(dialect)
                };
                let caller = current.admit.caller();
                self.respond_with(now, refusal, caller, true);
                return;
            };
            current
                .body
                .reserve_exact(granted.saturating_sub(current.body.len()));
        }
        current.body.extend_from_slice(chunk);
    }
}

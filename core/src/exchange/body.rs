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
    /// reserves as it grows).
    pub(super) fn reserve_body(
        &self,
        body: BodyKind,
        dialect: Dialect,
    ) -> Result<BodyReservation, Response> {
        let bytes = match body {
            BodyKind::Length(n) => n,
            BodyKind::Chunked | BodyKind::Empty | BodyKind::UntilClose => 0,
        };
        BodyReservation::try_new(self.gateway.body_budget(), bytes).ok_or_else(|| busy(dialect))
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
            let granted = match &mut current.reservation {
                Some(reservation) => {
                    reservation.try_grow_to(u64::try_from(target).unwrap_or(u64::MAX))
                }
                None => false,
            };
            if !granted {
                let caller = current.admit.caller();
                self.respond_with(now, busy(dialect), caller, true);
                return;
            }
            current
                .body
                .reserve_exact(target.saturating_sub(current.body.len()));
        }
        current.body.extend_from_slice(chunk);
    }
}

//! How long a connection may wait, and what happens when a wait ends: the
//! header, idle and body deadlines of a client, and the end of the
//! server's shutdown grace.
//!
//! The waits follow nginx's split: a new connection has
//! `header_timeout_ms` from accept to deliver its first head
//! (`client_header_timeout`); after an answer, a keep-alive connection has
//! `idle_timeout_ms` until the next request's first byte
//! (`keepalive_timeout`), and that head then has `header_timeout_ms` from
//! its first byte. A body has `body_timeout_ms` in total from the end of
//! its head, and no gap longer than `idle_timeout_ms`.

use super::{Admit, Caller, Exchange, State};
use crate::api::{ApiError, ErrorKind, Response};
use crate::Tick;

impl Exchange {
    pub(super) fn deadline(&self) -> Option<Tick> {
        let limits = self.gateway.limits();
        match &self.state {
            State::Accepted { since } | State::Head { since } => {
                Some(since.after(limits.header_timeout_ms))
            }
            State::Idle { since } => Some(since.after(limits.idle_timeout_ms)),
            State::Request {
                current,
                last_progress,
                head_done,
            } if !current.body_done => Some(
                last_progress
                    .after(limits.idle_timeout_ms)
                    .min(head_done.after(limits.body_timeout_ms)),
            ),
            State::Calling(calling) => calling.call.deadline(&self.gateway),
            _ => None,
        }
    }

    /// Bytes of a request arrived.
    pub(super) fn progress(&mut self, now: Tick) {
        match &mut self.state {
            // The first head's time counts from accept.
            State::Accepted { since } => self.state = State::Head { since: *since },
            State::Idle { .. } => self.state = State::Head { since: now },
            State::Request { last_progress, .. } => *last_progress = now,
            _ => {}
        }
    }

    pub(super) fn timeout(&mut self, now: Tick) {
        if matches!(self.state, State::Calling(_)) {
            let _ = self.with_call(now, |call, gateway, io| call.on_timeout(now, gateway, io));
            return;
        }
        let Some(deadline) = self.deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            // A connection that never said anything, or an idle keep-alive
            // one, just goes away; so does one whose only bytes since the
            // last answer were blank lines the codec skipped (RFC 9112
            // allows a stray CRLF after a request): nobody is waiting for
            // a 408.
            State::Accepted { .. } | State::Idle { .. } => self.close(),
            State::Head { .. } if self.codec.buffered() == 0 => self.close(),
            _ => {
                let err = ApiError::new(
                    self.dialect(),
                    ErrorKind::RequestTimeout,
                    "request not received in time",
                );
                self.fail(now, &err);
            }
        }
    }

    /// The server is shutting down: no keep-alive from here on, and a
    /// connection between requests closes at once.
    pub(super) fn drain(&mut self) {
        self.draining = true;
        if let State::Calling(calling) = &mut self.state {
            // A response still to be written must announce the close.
            calling.keep_alive = false;
            calling.call.disable_keep_alive();
        }
        if matches!(self.state, State::Accepted { .. } | State::Idle { .. }) {
            self.close();
        }
    }

    /// The shutdown grace is over: whatever is in progress ends now, the
    /// way a provider failure would end it, so every client gets a
    /// well-formed answer and every provider call is billed.
    pub(super) fn grace_expired(&mut self, now: Tick) {
        self.drain();
        match &self.state {
            State::Calling(_) => {
                let _ = self.with_call(now, |call, _, io| Some(call.on_shutdown(io)));
            }
            State::Request { current, .. } => {
                let caller = match &current.admit {
                    Admit::Allowed { key_id, .. } => key_id.map_or(Caller::Master, Caller::Key),
                    Admit::NotNeeded | Admit::Pending => Caller::Anonymous,
                };
                let err = ApiError::new(
                    self.dialect(),
                    ErrorKind::Unavailable,
                    "the server is shutting down",
                )
                .with_code("shutting_down");
                self.respond_with(now, Response::from(&err), caller, true);
            }
            State::Head { .. } => self.close(),
            State::Accepted { .. } | State::Idle { .. } | State::Closing | State::Closed => {}
        }
    }
}

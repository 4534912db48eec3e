//! The request loop: events pulled from the client's codec and routed to
//! the request being read, or to a call that streams the client's body
//! upstream as it arrives.

use super::{Exchange, State};
use crate::api::ApiError;
use crate::http1::ServerEvent;
use crate::Tick;

impl Exchange {
    /// Pulls events out of the codec until it needs more bytes or the
    /// current request waits on the host or a provider. A call streaming
    /// the client's body upstream takes it from here as it comes.
    pub(super) fn drive(&mut self, now: Tick) {
        loop {
            match &self.state {
                State::Closing | State::Closed => return,
                State::Calling(calling) if !calling.call.uploading() => return,
                State::Request { current, .. }
                    if current.streams_from_here(self.gateway.limits()) =>
                {
                    // Held up to the bound: the call starts once admitted,
                    // and until then the rest waits in the codec.
                    self.try_dispatch(now);
                    if matches!(self.state, State::Request { .. }) {
                        return;
                    }
                    continue;
                }
                _ => {}
            }
            let event = match self.codec.poll_event() {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(err) => {
                    if matches!(self.state, State::Calling(_)) {
                        let _ = self
                            .with_call(now, |call, _, io| Some(call.on_client_body_error(io, err)));
                        return;
                    }
                    let err = ApiError::from_http(self.dialect(), err);
                    self.fail(now, &err);
                    return;
                }
            };
            match event {
                ServerEvent::Head(head) => self.on_head(now, head),
                ServerEvent::Body(chunk) if matches!(self.state, State::Calling(_)) => {
                    let _ = self.with_call(now, |call, _, io| {
                        call.on_client_body(now, io, &chunk);
                        None
                    });
                }
                ServerEvent::Body(chunk) => self.on_body(now, &chunk),
                ServerEvent::End if matches!(self.state, State::Calling(_)) => {
                    let _ = self.with_call(now, |call, gateway, io| {
                        call.on_client_end(now, gateway, io)
                    });
                }
                ServerEvent::End => {
                    if let State::Request { current, .. } = &mut self.state {
                        current.body_done = true;
                    }
                    self.try_dispatch(now);
                }
                ServerEvent::Closed => {
                    self.close();
                    return;
                }
            }
        }
    }
}

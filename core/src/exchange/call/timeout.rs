//! The call's clock: when it must next be woken (first byte, idle
//! upstream, a keep-alive comment while a stream waits for its first
//! token), and what a deadline that passed means.

use super::*;

impl Call {
    pub(crate) fn deadline(&self, gateway: &Gateway) -> Option<Tick> {
        let l = gateway.limits();
        match self.phase {
            // The frontend bounds connecting with its own timeout.
            Phase::Reserving | Phase::Connecting | Phase::Done => None,
            // The client's body deadlines, as while it is read whole.
            Phase::Uploading { since, last } => Some(
                last.after(l.idle_timeout_ms)
                    .min(since.after(l.body_timeout_ms)),
            ),
            Phase::AwaitingHead { since } => Some(since.after(l.upstream_first_byte_timeout_ms)),
            Phase::Buffering { last } | Phase::Relaying { last, .. } => {
                Some(last.after(l.upstream_idle_timeout_ms))
            }
            Phase::Streaming {
                last_upstream,
                last_keepalive,
                ..
            } => {
                let idle = last_upstream.after(l.upstream_idle_timeout_ms);
                match &self.stream {
                    Some(s) if !s.started() => {
                        Some(idle.min(last_keepalive.after(l.stream_keepalive_ms)))
                    }
                    _ => Some(idle),
                }
            }
        }
    }

    pub(crate) fn on_timeout(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let deadline = self.deadline(gateway)?;
        let l = gateway.limits();
        let started = self.stream.as_ref().is_some_and(ClientStream::started);
        let json_array = matches!(
            self.kind,
            CallKind::Chat {
                json_array: true,
                ..
            }
        );
        if let Phase::Streaming {
            last_upstream,
            last_keepalive,
            ..
        } = &mut self.phase
        {
            if now < last_upstream.after(l.upstream_idle_timeout_ms) {
                // Only while waiting for the first token: a driver's timer
                // may fire at an older, earlier deadline, which must change
                // nothing once tokens flow.
                if !started && now >= last_keepalive.after(l.stream_keepalive_ms) {
                    *last_keepalive = now;
                    // A comment keeps proxies and clients from timing the
                    // connection out, and commits the response to this
                    // candidate. A JSON-array stream gets whitespace, which
                    // JSON allows before `[` and between elements.
                    let filler: &[u8] = if json_array {
                        b"\n"
                    } else {
                        b": keep-alive\n\n"
                    };
                    self.send_stream_bytes(io, filler);
                }
                return None;
            }
        }
        if now < deadline {
            return None;
        }
        match self.phase {
            Phase::AwaitingHead { .. } => {
                let err = ApiError::new(
                    self.dialect,
                    ErrorKind::GatewayTimeout,
                    "the provider did not answer in time",
                )
                .with_code("upstream_timeout");
                self.retry(
                    gateway,
                    io,
                    Response::from(&err),
                    false,
                    AttemptFailure::Timeout,
                )
            }
            Phase::Buffering { .. } => {
                // Nothing of a buffered answer reached the client: the next
                // candidate may still serve it.
                self.mark_if_answer_lost();
                let err = ApiError::new(
                    self.dialect,
                    ErrorKind::GatewayTimeout,
                    "the provider stalled mid-response",
                )
                .with_code("upstream_timeout");
                self.retry(
                    gateway,
                    io,
                    Response::from(&err),
                    false,
                    AttemptFailure::Timeout,
                )
            }
            Phase::Streaming { .. } => {
                io.outputs
                    .push_back(Output::ReleaseUpstream { reuse: false });
                self.fail_stream(
                    gateway,
                    io,
                    "the provider stalled mid-stream",
                    true,
                    AttemptFailure::Timeout,
                )
            }
            Phase::Relaying { .. } => Some(self.relay_abort(io)),
            Phase::Uploading { .. } => Some(self.upload_timed_out(io)),
            _ => None,
        }
    }
}

//! A streamed answer: relaying upstream events through the client's
//! transducer, the lazily sent response head, keep-alives, and how a stream
//! ends (finished, failed, or falling back before its first token).

use super::*;

impl Call {
    pub(super) fn on_body(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        bytes: &[u8],
    ) -> Option<Finished> {
        match &mut self.phase {
            Phase::Buffering { last } => {
                *last = now;
                if self.buffered.len() + bytes.len() > gateway.limits().max_upstream_body_bytes {
                    io.outputs
                        .push_back(Output::ReleaseUpstream { reuse: false });
                    let err = ApiError::new(
                        self.dialect,
                        ErrorKind::BadGateway,
                        "the provider's response is too large",
                    );
                    return Some(self.respond(io, Response::from(&err), false));
                }
                self.buffered.extend_from_slice(bytes);
                None
            }
            Phase::Streaming { last_upstream, .. } => {
                *last_upstream = now;
                let stream = self.stream.as_mut()?;
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let result = self.sse.feed(bytes, |event| {
                    stream.on_event(event.event, event.data, &mut scratch)
                });
                if result.is_err() {
                    stream.fail(
                        "the provider sent an oversized or invalid stream event",
                        &mut scratch,
                    );
                }
                let done = stream.is_done();
                let complete = !stream.failed();
                let started = stream.started();
                if !complete && !started && !self.head_sent() {
                    // The upstream failed before the client saw anything
                    // (an error as its first event): the next candidate
                    // gets its turn.
                    self.scratch = scratch;
                    io.outputs
                        .push_back(Output::ReleaseUpstream { reuse: false });
                    return self.fail_stream(
                        gateway,
                        io,
                        "the provider's stream failed before its first token",
                        true,
                        AttemptFailure::Broken,
                    );
                }
                if !started && !done && !self.head_sent() {
                    // Preamble only (a role chunk, a message start): held
                    // back until the first token, so the call can still
                    // fall back if the upstream fails before it.
                    self.held.extend_from_slice(&scratch);
                    self.scratch = scratch;
                    return None;
                }
                if !self.held.is_empty() {
                    let held = std::mem::take(&mut self.held);
                    self.send_stream_bytes(io, &held);
                }
                self.send_stream_bytes(io, &scratch);
                self.scratch = scratch;
                if done {
                    // Nothing after the stop: the rest of the upstream body is
                    // dropped. When the body's end already arrived with
                    // `[DONE]` (the usual case), the connection is clean and
                    // goes back to the pool.
                    let reuse = complete
                        && matches!(self.codec.poll_event(), Ok(Some(ClientEvent::End)))
                        && self.codec.is_reusable();
                    io.outputs.push_back(Output::ReleaseUpstream { reuse });
                    return Some(self.end_stream(io, complete));
                }
                None
            }
            _ => None,
        }
    }

    pub(super) fn on_end(&mut self, gateway: &Gateway, io: &mut Io<'_>) -> Option<Finished> {
        io.outputs.push_back(Output::ReleaseUpstream {
            reuse: self.codec.is_reusable(),
        });
        match self.phase {
            Phase::Streaming { .. } => {
                let mut complete = true;
                let head_sent = self.head_sent();
                if let Some(stream) = self.stream.as_mut() {
                    if !stream.started() && !head_sent {
                        // The stream ended, or broke, before any token: a
                        // failed attempt, not an empty answer. (The release
                        // above already let the connection go.)
                        return self.fail_stream(
                            gateway,
                            io,
                            "the provider's stream ended before its first token",
                            true,
                            AttemptFailure::Broken,
                        );
                    }
                    let mut scratch = std::mem::take(&mut self.scratch);
                    scratch.clear();
                    let truncated = self.sse.finish();
                    stream.finish(truncated, &mut scratch);
                    complete = !stream.failed();
                    let held = std::mem::take(&mut self.held);
                    self.send_stream_bytes(io, &held);
                    self.send_stream_bytes(io, &scratch);
                    self.scratch = scratch;
                }
                Some(self.end_stream(io, complete))
            }
            Phase::Buffering { .. } => {
                let response = self.buffered_response(gateway);
                // A provider's error relayed whole is not a completed call.
                let complete = (200..300).contains(&response.status);
                Some(self.respond(io, response, complete))
            }
            _ => None,
        }
    }

    pub(super) fn upstream_broke(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        err: HttpError,
    ) -> Option<Finished> {
        io.outputs
            .push_back(Output::ReleaseUpstream { reuse: false });
        if matches!(self.phase, Phase::AwaitingHead { .. })
            && self.reused
            && !self.refreshed
            && !self.codec.has_started()
        {
            // A pooled connection the provider had already closed: not the
            // provider's fault, so the same candidate gets a fresh one.
            self.refreshed = true;
            self.codec = ClientCodec::new(gateway.limits(), false);
            self.phase = Phase::Connecting;
            if let Some(c) = self.candidate() {
                io.outputs.push_back(Output::ConnectUpstream {
                    provider: c.provider,
                    fresh: true,
                });
            }
            return None;
        }
        match self.phase {
            // The release is queued above; the abort adds none.
            Phase::Relaying { .. } => {
                self.phase = Phase::Done;
                Some(self.relay_abort(io))
            }
            Phase::Streaming { .. } => self.fail_stream(
                gateway,
                io,
                "the provider's connection broke mid-stream",
                true,
                AttemptFailure::Broken,
            ),
            Phase::AwaitingHead { .. } => {
                let e = ApiError::new(
                    self.dialect,
                    ErrorKind::BadGateway,
                    format!("the provider sent an invalid response ({})", err.message()),
                )
                .with_code("upstream_error");
                // Release already queued above.
                self.retry(
                    gateway,
                    io,
                    Response::from(&e),
                    true,
                    AttemptFailure::Broken,
                )
            }
            _ => {
                self.mark_if_answer_lost();
                let e = ApiError::new(
                    self.dialect,
                    ErrorKind::BadGateway,
                    "the provider's response was cut off",
                )
                .with_code("upstream_error");
                // A buffered answer has not reached the client: fall back.
                // Release already queued above.
                self.retry(
                    gateway,
                    io,
                    Response::from(&e),
                    true,
                    AttemptFailure::Broken,
                )
            }
        }
    }

    /// The upstream failed mid-stream. Before the client saw anything, the
    /// next candidate gets its turn (`released`: the connection is already
    /// let go); after, the stream ends with an error in the client's dialect.
    pub(super) fn fail_stream(
        &mut self,
        gateway: &Gateway,
        io: &mut Io<'_>,
        message: &str,
        released: bool,
        cause: AttemptFailure,
    ) -> Option<Finished> {
        if matches!(
            self.phase,
            Phase::Streaming {
                head_sent: false,
                ..
            }
        ) {
            let err = ApiError::new(self.dialect, ErrorKind::BadGateway, message.to_string())
                .with_code("upstream_error");
            self.bank_reported_usage();
            self.stream = None;
            self.held.clear();
            return self.retry(gateway, io, Response::from(&err), released, cause);
        }
        self.broke = Some(cause);
        Some(self.end_stream_with_error(io, message))
    }

    /// Ends a stream the client is reading with an error in its dialect
    /// (error event, then the dialect's terminator) and the framing's end.
    pub(super) fn end_stream_with_error(&mut self, io: &mut Io<'_>, message: &str) -> Finished {
        if let Some(stream) = self.stream.as_mut() {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            stream.fail(message, &mut scratch);
            self.send_stream_bytes(io, &scratch);
            self.scratch = scratch;
        }
        self.end_stream(io, false)
    }

    pub(super) fn head_sent(&self) -> bool {
        matches!(
            self.phase,
            Phase::Streaming {
                head_sent: true,
                ..
            }
        )
    }

    /// Writes stream bytes to the client, sending the response head first
    /// if it has not gone out yet.
    pub(super) fn send_stream_bytes(&mut self, io: &mut Io<'_>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Phase::Streaming { head_sent, .. } = &mut self.phase {
            if !*head_sent {
                *head_sent = true;
                let json_array = matches!(
                    self.kind,
                    CallKind::Chat {
                        json_array: true,
                        ..
                    }
                );
                let content_type = if json_array {
                    "application/json"
                } else {
                    "text/event-stream"
                };
                let mut headers: Vec<(&str, &str)> = vec![
                    ("Content-Type", content_type),
                    ("Cache-Control", "no-cache"),
                    ("X-Accel-Buffering", "no"),
                ];
                headers.extend(self.extra_headers.iter().map(|(k, v)| (*k, v.as_str())));
                headers.push(("X-Request-Id", self.request_id.as_str()));
                encode::write_stream_head(io.down, 200, &headers, self.framing, self.keep_alive);
            }
        }
        encode::write_stream_bytes(io.down, self.framing, bytes);
    }

    pub(super) fn end_stream(&mut self, io: &mut Io<'_>, complete: bool) -> Finished {
        // Cut short, the provider may never have sent its usage; whole, a
        // provider that reports none (an OpenAI-compatible server ignoring
        // `stream_options.include_usage`) is billed the gateway's estimate
        // rather than nothing. `mark_for_estimate` leaves a call whose
        // final usage arrived alone.
        self.mark_for_estimate();
        if matches!(
            self.phase,
            Phase::Streaming {
                head_sent: true,
                ..
            }
        ) {
            encode::write_stream_end(io.down, self.framing);
        }
        self.phase = Phase::Done;
        self.usage = self.stream.as_ref().and_then(ClientStream::usage);
        self.note_stream_response();
        self.finished(200, complete)
    }
}

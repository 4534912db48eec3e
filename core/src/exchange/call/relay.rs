//! The proxy's call (`CallKind::Proxy`): the rebuilt request goes
//! upstream, and the answer comes back as it was sent (status, headers,
//! body) while a `Sniffer` reads its usage. The body is relayed as it
//! arrives: a `Content-Length` body with the same length, any other
//! re-framed chunked (until close for an HTTP/1.0 client). A provider
//! refusing the gateway's own key is the one answer not relayed: it
//! would blame the client's key, and may quote the gateway's.

use super::*;
use crate::exchange::proxy::{forwarded_response, Sniffer, UploadFraming};
use crate::http1::BodyKind;
use crate::usage::Usage;

impl Call {
    /// The proxy's request, written to the connection just opened.
    pub(super) fn proxy_connected(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let provider = self
            .candidate()
            .and_then(|c| gateway.providers().get(c.provider))?;
        let CallRequest::Proxy(request) = &mut self.request else {
            return None;
        };
        let host = provider.addr.host_header();
        let auth = provider
            .api_key
            .as_deref()
            .map(|key| upstream::auth_header(provider.kind, key));
        let mut headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        for (name, value) in dispatch::extra_headers(provider.kind) {
            // The client's own version header, when it sent one, wins.
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name, value));
            }
        }
        // Usage is read from the answer, so it must not come compressed.
        headers.push(("Accept-Encoding", "identity"));
        if let Some((name, value)) = &auth {
            headers.push((name, value.as_str()));
        }
        if let Some(upload) = request.upload.as_mut() {
            let length = match upload.framing() {
                UploadFraming::Length(n) => Some(n),
                UploadFraming::Chunked => None,
            };
            client::write_request_head(
                io.up,
                request.method.as_str(),
                &request.target,
                host,
                &headers,
                length,
            );
            // The first bytes, read before the call was planned.
            let first = std::mem::take(&mut request.body);
            upload.forward(io.up, &first);
            self.phase = Phase::Uploading {
                since: now,
                last: now,
            };
            return None;
        }
        // The body is kept (it is at most `proxy_buffer_bytes` and
        // its budget is held anyway): a pooled connection found stale
        // sends it again on a fresh one.
        client::write_request(
            io.up,
            request.method.as_str(),
            &request.target,
            host,
            &headers,
            &request.body,
        );
        self.reached = true;
        self.phase = Phase::AwaitingHead { since: now };
        None
    }

    /// The provider's answer head: relayed, except a refusal of the
    /// gateway's key, which is read whole and answered 502.
    pub(super) fn relay_head(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        head: &client::ResponseHead,
    ) -> Option<Finished> {
        self.status = head.status;
        self.end_keep_alive_if_body_unread();
        if matches!(head.status, 401 | 403 | 407) {
            self.phase = Phase::Buffering { last: now };
            return None;
        }
        let event_stream = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let limits = gateway.limits();
        self.sniffer = Some(Box::new(Sniffer::new(
            self.upstream_kind(gateway),
            event_stream,
            limits.max_sse_line_bytes,
            limits.max_upstream_body_bytes,
        )));
        let relayed = forwarded_response(&head.headers);
        let mut headers: Vec<(&str, &str)> = relayed
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        headers.extend(self.extra_headers.iter().map(|(k, v)| (*k, v.as_str())));
        headers.push(("X-Request-Id", self.request_id.as_str()));
        let framing = match head.body {
            BodyKind::Empty => {
                encode::write_response(io.down, head.status, &headers, &[], self.keep_alive);
                None
            }
            BodyKind::Length(len) => {
                encode::write_length_head(io.down, head.status, &headers, len, self.keep_alive);
                None
            }
            BodyKind::Chunked | BodyKind::UntilClose => {
                encode::write_stream_head(
                    io.down,
                    head.status,
                    &headers,
                    self.framing,
                    self.keep_alive,
                );
                Some(self.framing)
            }
        };
        self.phase = Phase::Relaying { last: now, framing };
        None
    }

    pub(super) fn relay_body(&mut self, now: Tick, io: &mut Io<'_>, bytes: &[u8]) {
        let Phase::Relaying { last, framing } = &mut self.phase else {
            return;
        };
        *last = now;
        match framing {
            Some(framing) => encode::write_stream_bytes(io.down, *framing, bytes),
            None => io.down.extend_from_slice(bytes),
        }
        if let Some(sniffer) = self.sniffer.as_mut() {
            sniffer.feed(bytes);
        }
    }

    /// The answer is complete: end its framing, and bill what it reported.
    pub(super) fn relay_end(&mut self, io: &mut Io<'_>) -> Finished {
        if let Phase::Relaying {
            framing: Some(framing),
            ..
        } = self.phase
        {
            encode::write_stream_end(io.down, framing);
        }
        self.phase = Phase::Done;
        self.take_sniffed();
        self.finished(self.status, true)
    }

    /// The relay broke off mid-answer (upstream cut, stall, shutdown):
    /// nothing can be added to a body already under way, so the client's
    /// connection closes without the body's end, which is how HTTP says
    /// an answer was truncated.
    pub(super) fn relay_abort(&mut self, io: &mut Io<'_>) -> Finished {
        if !matches!(self.phase, Phase::Done) {
            io.outputs
                .push_back(Output::ReleaseUpstream { reuse: false });
        }
        self.phase = Phase::Done;
        self.keep_alive = false;
        self.take_sniffed();
        let mut finished = self.finished(self.status, false);
        finished.abort = true;
        finished
    }

    pub(super) fn relaying(&self) -> bool {
        matches!(self.phase, Phase::Relaying { .. })
    }

    /// The usage the answer reported, read on the side. An OpenAI stream
    /// that reported none (the client asked for no usage report) is billed
    /// the gateway's estimate: its prompt counted (see `count_prompt`),
    /// its output one token per chunk relayed.
    pub(super) fn take_sniffed(&mut self) {
        if let Some(mut sniffer) = self.sniffer.take() {
            let (usage, id) = sniffer.finish();
            self.usage = usage;
            self.response_id = id;
            let ok = (200..300).contains(&self.status) && self.reached;
            if let (None, Some(chunks), true) = (usage, sniffer.openai_chunks(), ok) {
                self.usage = Some(Usage {
                    completion_tokens: chunks,
                    ..Usage::default()
                });
                self.estimated = true;
            }
        }
    }
}

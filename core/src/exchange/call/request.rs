//! Building the request for the current candidate's provider: the client's
//! own body on the same-dialect path, a translation otherwise.

use super::*;
use crate::translate::responses;

impl Call {
    /// A request the call cannot write (a broken invariant, not a peer's
    /// fault): the connection goes and the client gets a 502 rather than
    /// a call left waiting with no deadline.
    fn abandon(&mut self, io: &mut Io<'_>) -> Finished {
        io.outputs
            .push_back(Output::ReleaseUpstream { reuse: false });
        self.attempt = self.candidates.len();
        self.failure = Some(Failure {
            response: Response::from(&ApiError::new(
                self.dialect,
                ErrorKind::Internal,
                "the gateway could not build the provider request",
            )),
        });
        self.give_up(io)
    }

    pub(crate) fn on_connected(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
        reused: bool,
    ) -> Option<Finished> {
        self.reused = reused;
        let (Some(candidate), Phase::Connecting) = (self.candidate(), &self.phase) else {
            // Not waiting for a connection: let this one go.
            io.outputs
                .push_back(Output::ReleaseUpstream { reuse: false });
            return None;
        };
        let Some(provider) = gateway.providers().get(candidate.provider) else {
            return Some(self.abandon(io));
        };
        if let CallKind::Proxy { .. } = self.kind {
            return self.proxy_connected(now, gateway, io);
        }
        let stream = self.kind.stream();
        let mut forward: &[(&'static str, String)] = &[];
        let (target, body) = match &self.request {
            _ if self.kind == CallKind::Embeddings => {
                match self.embed_upstream(provider, &candidate.model) {
                    Some(request) => request,
                    None => return Some(self.abandon(io)),
                }
            }
            _ if self.kind == CallKind::CountTokens => {
                let (native, canonical) = match &self.request {
                    CallRequest::Foreign {
                        body,
                        canonical,
                        forward: headers,
                        ..
                    } => {
                        if self.native(provider) {
                            forward = headers;
                        }
                        (self.native(provider).then_some(body), canonical.as_ref())
                    }
                    CallRequest::OpenAi {
                        canonical: Some(canonical),
                        ..
                    } => (None, canonical.as_ref()),
                    CallRequest::OpenAi { .. }
                    | CallRequest::Embed { .. }
                    | CallRequest::Proxy(_) => return Some(self.abandon(io)),
                };
                (
                    format!(
                        "{}{}",
                        provider.addr.base_path,
                        count::target(provider.kind, &candidate.model)
                    ),
                    count::body(provider.kind, &candidate.model, native, canonical),
                )
            }
            CallRequest::OpenAi { body, .. } if self.native(provider) => (
                format!("{}/chat/completions", provider.addr.base_path),
                upstream_body(body, &candidate.model, provider.official, stream),
            ),
            CallRequest::Foreign {
                body,
                forward: headers,
                ..
            } if self.native(provider) && self.dialect == Dialect::Responses => (
                format!("{}/responses", provider.addr.base_path),
                responses::native_body(body, &candidate.model, self.drop_previous()),
            ),
            CallRequest::Foreign {
                body,
                forward: headers,
                ..
            } if self.native(provider) => {
                forward = headers;
                (
                    format!(
                        "{}{}",
                        provider.addr.base_path,
                        dispatch::chat_target(provider.kind, &candidate.model, stream)
                    ),
                    dispatch::native_body(provider.kind, body, &candidate.model, stream),
                )
            }
            CallRequest::OpenAi {
                canonical: Some(req),
                ..
            }
            | CallRequest::Foreign { canonical: req, .. } => {
                let mut req = ChatRequest::clone(req);
                req.model = candidate.model.clone();
                req.stream = stream;
                (
                    format!(
                        "{}{}",
                        provider.addr.base_path,
                        dispatch::chat_target(provider.kind, &candidate.model, stream)
                    ),
                    dispatch::encode_request(provider.kind, &req),
                )
            }
            // `start` decoded the canonical form before connecting; a
            // proxied request went its own way above.
            CallRequest::OpenAi { .. } | CallRequest::Embed { .. } | CallRequest::Proxy(_) => {
                return Some(self.abandon(io))
            }
        };
        let host = provider.addr.host_header();
        let auth = provider
            .api_key
            .as_deref()
            .map(|key| upstream::auth_header(provider.kind, key));
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/json"),
            (
                "Accept",
                if self.kind.stream() {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            ),
            ("User-Agent", concat!("arouter/", env!("CARGO_PKG_VERSION"))),
        ];
        if let Some((name, value)) = &auth {
            headers.push((name, value.as_str()));
        }
        for (name, value) in dispatch::extra_headers(provider.kind) {
            // The client's own version header, when it sent one, wins.
            if !forward.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name, value));
            }
        }
        headers.extend(forward.iter().map(|(n, v)| (*n, v.as_str())));
        if let Some(value) = &self.traceparent {
            headers.push(("traceparent", value));
        }
        client::write_request_owned(io.up, "POST", &target, host, &headers, body);
        self.reached = true;
        self.phase = Phase::AwaitingHead { since: now };
        None
    }
}

//! The proxy's call while its request body streams upstream (see
//! `proxy::upload`): pieces of the client's body go on as they come; at
//! its end, what it said is settled (model, stream, output cap), the key's
//! allowlist and credit decide, and only then does the body's held end go,
//! so the provider never answers a call the gateway refused.

use super::*;
use crate::exchange::proxy::Upload;
use crate::http1::HttpError;

impl Call {
    pub(super) fn upload(&self) -> Option<&Upload> {
        match &self.request {
            CallRequest::Proxy(request) => request.upload.as_deref(),
            _ => None,
        }
    }

    /// The call takes the client's body as it arrives (the exchange feeds
    /// it through `on_client_body` and `on_client_end`).
    pub(crate) fn uploading(&self) -> bool {
        matches!(self.phase, Phase::Uploading { .. })
    }

    /// A response written while the client is still sending its body
    /// leaves unread bytes on the wire: the connection must close after it.
    pub(super) fn end_keep_alive_if_body_unread(&mut self) {
        if self.upload().is_some_and(|upload| !upload.ended()) {
            self.keep_alive = false;
        }
    }

    pub(crate) fn on_client_body(&mut self, now: Tick, io: &mut Io<'_>, bytes: &[u8]) {
        if let Phase::Uploading { last, .. } = &mut self.phase {
            *last = now;
        }
        if let CallRequest::Proxy(request) = &mut self.request {
            if let Some(upload) = request.upload.as_mut() {
                upload.forward(io.up, bytes);
            }
        }
    }

    /// The client's body ended: settle what it said, then admit the call
    /// (allowlist, credit) before its end goes upstream.
    pub(crate) fn on_client_end(
        &mut self,
        now: Tick,
        gateway: &Gateway,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let uploading = self.uploading();
        let CallRequest::Proxy(request) = &mut self.request else {
            return None;
        };
        let upload = request.upload.as_mut()?;
        let facts = upload.end();
        if !uploading {
            // The provider answered before the body's end (an early
            // error, being relayed): the held end never goes.
            return None;
        }
        let models = upload.models.take();
        let (model, stream) = request.settle(facts, None);
        self.kind = CallKind::Proxy { stream };
        let candidate = self.candidates.get_mut(self.attempt)?;
        candidate.model = model;
        if let Some(models) = models {
            let provider = gateway
                .providers()
                .get(candidate.provider)
                .map_or("", |p| p.name.as_str());
            if !models.allows(provider, &candidate.model) {
                let message = if candidate.model.is_empty() {
                    "this key may not use this model".to_string()
                } else {
                    format!(
                        "this key may not use the model `{provider}/{}`",
                        candidate.model
                    )
                };
                let err = ApiError::new(self.dialect, ErrorKind::PermissionDenied, message)
                    .with_code("model_not_allowed");
                return Some(self.refuse_upload(io, err));
            }
        }
        if self.metered {
            return self.reserve(gateway, io);
        }
        self.release_upload(now, io);
        None
    }

    /// The call is admitted: the body's held end goes, and the provider
    /// can answer. From here the provider is billed for.
    pub(super) fn release_upload(&mut self, now: Tick, io: &mut Io<'_>) {
        if let CallRequest::Proxy(request) = &mut self.request {
            if let Some(upload) = request.upload.as_mut() {
                upload.release(io.up);
            }
        }
        self.reached = true;
        if matches!(self.phase, Phase::Uploading { .. } | Phase::Reserving) {
            self.phase = Phase::AwaitingHead { since: now };
        }
    }

    /// A streamed call refused at its body's end: the provider's
    /// connection is cut with the request incomplete, and the client told.
    pub(super) fn refuse_upload(&mut self, io: &mut Io<'_>, err: ApiError) -> Finished {
        // Bytes not yet handed to the driver are for a connection that goes.
        io.up.clear();
        io.outputs
            .push_back(Output::ReleaseUpstream { reuse: false });
        self.respond(io, Response::from(&err), false)
    }

    /// The client's body broke off or was malformed mid-stream: the
    /// provider's connection is cut (its request incomplete, nothing to
    /// bill) and the client answered, if nothing was sent to it yet.
    pub(crate) fn on_client_body_error(&mut self, io: &mut Io<'_>, err: HttpError) -> Finished {
        if self.relaying() {
            return self.relay_abort(io);
        }
        let err = ApiError::from_http(self.dialect, err);
        self.refuse_upload(io, err)
    }

    /// The client sent no body bytes for too long, or took too long in all.
    pub(super) fn upload_timed_out(&mut self, io: &mut Io<'_>) -> Finished {
        let err = ApiError::new(
            self.dialect,
            ErrorKind::RequestTimeout,
            "request not received in time",
        );
        self.refuse_upload(io, err)
    }
}

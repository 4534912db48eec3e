//! The end of an upstream call: the access record, one usage record per
//! provider attempt, and on to the next request or the close.

use serde_json::Value;

use super::call::{Finished, ToKeep};
use super::{AccessLog, Caller, Event, Exchange, Outcome, Output, State, UsageRecord};
use crate::stored::Kept;
use crate::translate::responses;
use crate::Tick;

impl Exchange {
    /// An upstream call is over: log it, bill it, move on.
    pub(super) fn end_call(&mut self, now: Tick, mut finished: Finished, client_gone: bool) {
        let State::Calling(calling) = std::mem::replace(&mut self.state, State::Closing) else {
            return;
        };
        if let Some(keep) = finished.keep.take() {
            self.keep = self.kept(now, *keep, &finished, calling.caller);
        }
        let provider_name = |index: usize| {
            self.gateway
                .providers()
                .get(index)
                .map_or_else(String::new, |p| p.name.clone())
        };
        let label = |provider: usize, model: &str| {
            let name = self
                .gateway
                .providers()
                .get(provider)
                .map_or("", |p| p.name.as_str());
            // Sized at once: `format!` would grow it piece by piece.
            let mut label = String::with_capacity(name.len() + 1 + model.len());
            label.push_str(name);
            label.push('/');
            label.push_str(model);
            label
        };
        let served = match (finished.provider, &finished.model) {
            (Some(provider), Some(model)) => Some(label(provider, model)),
            _ => None,
        };
        let requested = calling
            .call
            .requested()
            .map(|c| label(c.provider, &c.model));
        // The access record goes out after the usage records: it ends the
        // request for the host, which then gives back what is left of the
        // credit reserved for it (see `Output::Reserve`).
        let access = Output::Event(Event::Access(AccessLog {
            method: calling.method,
            path: calling.path,
            endpoint: calling.endpoint,
            status: finished.status,
            caller: calling.caller,
            request_id: calling.request_id,
            model: served,
            requested,
            dialect: Some(finished.dialect),
            stream: finished.stream,
            attempts: finished.attempts,
            trace: calling.trace,
            started: calling.started,
            finished: now,
        }));
        let key_id = calling.caller.key_id();
        let latency_ms = now.as_millis().saturating_sub(calling.started.as_millis());
        let stream = finished.stream;
        for earlier in &finished.earlier {
            self.outputs
                .push_back(Output::Event(Event::Usage(UsageRecord {
                    key_id,
                    provider: provider_name(earlier.provider),
                    model: earlier.model.clone(),
                    usage: Some(earlier.usage),
                    cost: None,
                    complete: false,
                    estimated: earlier.estimated,
                    referer: calling.referer.clone(),
                    title: calling.title.clone(),
                    request_id: calling.request_id,
                    upstream_status: earlier.status,
                    // A failed attempt; estimated when it did work but
                    // reported nothing, as for the served attempt.
                    outcome: if earlier.estimated {
                        Outcome::Estimated
                    } else {
                        Outcome::Error
                    },
                    // The client never saw this attempt's answer.
                    generation_id: None,
                    stream,
                    latency_ms,
                })));
        }
        let outcome = finished.outcome();
        if let (Some(provider), Some(model)) = (finished.provider, finished.model) {
            self.outputs
                .push_back(Output::Event(Event::Usage(UsageRecord {
                    key_id,
                    provider: provider_name(provider),
                    model,
                    usage: finished.usage,
                    cost: None,
                    complete: finished.complete,
                    estimated: finished.estimated,
                    referer: calling.referer,
                    title: calling.title,
                    request_id: calling.request_id,
                    upstream_status: finished.upstream_status,
                    outcome,
                    generation_id: finished.response_id,
                    stream,
                    latency_ms,
                })));
        }
        self.outputs.push_back(access);
        if finished.estimated || finished.earlier.iter().any(|e| e.estimated) {
            self.unbilled = Some(calling.call);
        }
        // A call that ended before the client's body did (a streamed body
        // refused or answered early) leaves unread bytes: the connection
        // closes, as the answer said.
        let body_read = self.codec.is_finished();
        if calling.keep_alive && !client_gone && !self.draining && !finished.abort && body_read {
            self.next_request(now);
            // A pipelined request may already be complete in the buffer.
            self.drive(now);
        } else {
            self.close();
        }
    }
}

impl Exchange {
    /// The stored copy of a Responses answer, for the key that asked.
    fn kept(
        &self,
        now: Tick,
        keep: ToKeep,
        finished: &Finished,
        caller: Caller,
    ) -> Option<Box<Kept>> {
        let id = keep.response.get("id").and_then(Value::as_str)?.to_owned();
        let provider = self.gateway.providers().get(finished.provider?)?;
        let now_secs = self
            .unix_origin_ms
            .map_or(0, |origin| origin.saturating_add(now.as_millis()) / 1000);
        let created_at = keep
            .response
            .get("created_at")
            .and_then(Value::as_u64)
            .filter(|t| *t > 0)
            .unwrap_or(now_secs);
        Some(Box::new(Kept {
            input: responses::with_ids(keep.input, &id),
            id,
            owner: caller.key_id(),
            created_at: i64::try_from(created_at).unwrap_or(i64::MAX),
            provider: provider.name.clone(),
            native: keep.native,
            response: keep.response,
        }))
    }
}

//! Events the core hands out for recording: the access log line and the
//! usage of each provider call.

use arouter_core::exchange::Event;

use super::io::unix_ms;
use crate::Host;

pub fn record(host: &Host, event: Event) {
    match event {
        Event::Access(log) => log::debug!(
            target: "access",
            "{} {} {} {} key={} id={} model={} {}ms",
            log.method,
            log.path,
            log.status,
            log.endpoint,
            log.caller,
            log.request_id,
            log.model.as_deref().unwrap_or("-"),
            log.finished.since(log.started)
        ),
        Event::Usage(usage) => {
            log::debug!(
                target: "usage",
                "{}/{} prompt={} completion={} complete={}",
                usage.provider,
                usage.model,
                usage.usage.map_or(0, |u| u.prompt_tokens),
                usage.usage.map_or(0, |u| u.completion_tokens),
                usage.complete
            );
            host.recorder.record(usage, (unix_ms() / 1000) as i64);
        }
    }
}

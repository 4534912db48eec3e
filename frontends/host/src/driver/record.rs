//! Events the core hands out for recording: the access log line and the
//! usage of each provider call.

use std::time::Instant;

use arouter_core::exchange::{Event, UsageRecord};

use super::access::json_line;
use super::io::unix_ms;
use super::runtime::Runtime;
use super::tally::Tally;
use super::Worker;
use crate::cli::LogFormat;
use crate::recorder::{Buffered, FLUSH_EVERY};

/// Records `event`; `tally` gathers the request's usage until its access
/// record, which resets it.
pub fn record<R: Runtime>(worker: &Worker<R>, event: Event, tally: &mut Tally) {
    match event {
        Event::Access(log) => {
            // The answer's last bytes were written before its access
            // record, so TTFT never exceeds the latency measured here.
            let now = Instant::now();
            let started = worker.shared.clock.instant(log.started);
            worker.metrics.request(&log, tally.timings(started, now));
            #[cfg(feature = "otlp")]
            if let Some(otlp) = &worker.shared.host.otlp {
                otlp.send(crate::otlp::span(&log, tally, started, now));
            }
            if worker.shared.host.config.log_format == LogFormat::Json {
                let gateway = &worker.shared.host.gateway;
                let line = json_line(&log, tally, started, now, gateway);
                log::info!(target: "access", "{line}");
            } else {
                log::debug!(
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
                );
            }
            *tally = Tally::default();
        }
        Event::Usage(usage) => {
            observe_usage(worker, &usage, tally);
            settle(worker, std::iter::once(usage), Vec::new());
        }
    }
}

/// What a usage record counts for besides its bill: the request's tally,
/// the metrics, the debug log.
pub fn observe_usage<R: Runtime>(worker: &Worker<R>, usage: &UsageRecord, tally: &mut Tally) {
    tally.add(usage);
    worker.metrics.usage(usage);
    log::debug!(
        target: "usage",
        "{}/{} prompt={} completion={} complete={}",
        usage.provider,
        usage.model,
        usage.usage.map_or(0, |u| u.prompt_tokens),
        usage.usage.map_or(0, |u| u.completion_tokens),
        usage.complete
    );
}

/// Hands usage records to the recorder with the call-journal intents they
/// close (see `LocalRecorder::settle`).
pub fn settle<R: Runtime>(
    worker: &Worker<R>,
    usage: impl IntoIterator<Item = UsageRecord>,
    closes: Vec<String>,
) {
    let buffered = worker
        .recorder
        .settle(usage, closes, (unix_ms() / 1000) as i64);
    if buffered == Buffered::ArmTimer {
        // The batch this record started is handed over in time even if
        // no other request comes.
        let (rt, recorder) = (worker.rt.clone(), worker.recorder.clone());
        worker.rt.spawn(async move {
            rt.sleep_until(Instant::now() + FLUSH_EVERY).await;
            recorder.flush_timer_fired();
        });
    }
}

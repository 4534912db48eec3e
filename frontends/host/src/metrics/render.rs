//! Prometheus' text exposition format (version 0.0.4), summed over the
//! serving threads. Series come out in a stable order (sorted label sets),
//! so two scrapes are easy to compare.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use super::cells::{read, Histogram, ProviderCells, ThreadCells, BOUNDS_US, CAUSES};
use super::labels::Labels;
use super::{Process, RequestKey, UsageKey};

pub(super) fn render(threads: &[Arc<ThreadCells>], labels: &Labels, process: Process) -> String {
    let mut out = String::with_capacity(16 * 1024);
    requests(&mut out, threads, labels);
    upstream(&mut out, threads, labels);
    let total = |cell: fn(&ThreadCells) -> &AtomicU64| -> u64 {
        threads.iter().map(|t| read(cell(t))).sum()
    };
    for (name, help, value) in [
        (
            "arouter_fallbacks_total",
            "Upstream attempts after a request's first (each a fallback to the next candidate).",
            total(|t| &t.fallbacks),
        ),
        (
            "arouter_rate_limited_total",
            "Requests answered 429 (rate limited).",
            total(|t| &t.rate_limited),
        ),
        (
            "arouter_insufficient_credit_total",
            "Requests answered 402 (insufficient credit).",
            total(|t| &t.insufficient_credit),
        ),
    ] {
        header(&mut out, name, help, "counter");
        let _ = writeln!(out, "{name} {value}");
    }
    usage(&mut out, threads, labels);
    histograms(&mut out, threads, labels);
    super::dependencies::render(&mut out, &process.dependencies);
    gauges(&mut out, threads, labels, process);
    out
}

pub(super) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn escaped(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

fn requests(out: &mut String, threads: &[Arc<ThreadCells>], labels: &Labels) {
    let mut sums: BTreeMap<RequestKey, u64> = BTreeMap::new();
    for thread in threads {
        for (key, count) in thread.requests.load().iter() {
            *sums.entry(key.clone()).or_default() += read(count);
        }
    }
    header(
        out,
        "arouter_requests_total",
        "Requests answered, by route, dialect, provider, model and status.",
        "counter",
    );
    for (k, count) in &sums {
        let _ = writeln!(
            out,
            "arouter_requests_total{{route=\"{}\",dialect=\"{}\",provider=\"{}\",model=\"{}\",status=\"{}\"}} {count}",
            k.route,
            k.dialect,
            escaped(labels.provider(k.provider)),
            escaped(labels.model(k.model)),
            k.status
        );
    }
}

/// Every provider's index, `None` (the gateway's own answers) first.
fn provider_slots(labels: &Labels) -> impl Iterator<Item = Option<usize>> {
    std::iter::once(None).chain((0..labels.provider_count()).map(Some))
}

fn upstream(out: &mut String, threads: &[Arc<ThreadCells>], labels: &Labels) {
    let sum = |p: Option<usize>, cell: &dyn Fn(&ProviderCells) -> &AtomicU64| -> u64 {
        threads.iter().map(|t| read(cell(t.provider(p)))).sum()
    };
    header(
        out,
        "arouter_upstream_attempts_total",
        "Calls to a provider (a fallback is one more).",
        "counter",
    );
    for p in provider_slots(labels).skip(1) {
        let provider = escaped(labels.provider(p));
        let n = sum(p, &|c| &c.attempts);
        let _ = writeln!(
            out,
            "arouter_upstream_attempts_total{{provider=\"{provider}\"}} {n}"
        );
    }
    header(
        out,
        "arouter_upstream_failures_total",
        "Failed calls to a provider, by cause.",
        "counter",
    );
    for p in provider_slots(labels).skip(1) {
        let provider = escaped(labels.provider(p));
        for (i, cause) in CAUSES.iter().enumerate() {
            let n = sum(p, &|c| &c.failures[i]);
            let _ = writeln!(
                out,
                "arouter_upstream_failures_total{{provider=\"{provider}\",cause=\"{cause}\"}} {n}"
            );
        }
    }
}

fn usage(out: &mut String, threads: &[Arc<ThreadCells>], labels: &Labels) {
    let mut sums: BTreeMap<UsageKey, [u64; 3]> = BTreeMap::new();
    for thread in threads {
        for (key, cells) in thread.usage.load().iter() {
            let sum = sums.entry(key.clone()).or_default();
            sum[0] += read(&cells.tokens_in);
            sum[1] += read(&cells.tokens_out);
            sum[2] += read(&cells.cost_micros);
        }
    }
    let series = [
        (
            "arouter_input_tokens_total",
            "Prompt (input) tokens of provider calls, as reported or estimated.",
        ),
        (
            "arouter_output_tokens_total",
            "Completion (output) tokens of provider calls, as reported or estimated.",
        ),
        (
            "arouter_cost_usd_total",
            "What provider calls cost at the gateway's prices, in US dollars.",
        ),
    ];
    for (i, (name, help)) in series.iter().enumerate() {
        header(out, name, help, "counter");
        for (k, sum) in &sums {
            let provider = escaped(labels.provider(k.provider));
            let model = escaped(labels.model(k.model));
            let _ = write!(out, "{name}{{provider=\"{provider}\",model=\"{model}\"}} ");
            let _ = match i {
                2 => writeln!(out, "{}", sum[2] as f64 / 1_000_000.0),
                _ => writeln!(out, "{}", sum[i]),
            };
        }
    }
}

fn histograms(out: &mut String, threads: &[Arc<ThreadCells>], labels: &Labels) {
    type Pick = fn(&ProviderCells) -> &Histogram;
    // The gateway's own answers (provider `none`) have a total latency
    // only: no upstream time, first token or added time.
    let families: [(&str, &str, Pick, bool); 4] = [
        (
            "arouter_request_duration_seconds",
            "Whole requests, first byte in to last byte out, by the provider that served.",
            |c| &c.latency,
            true,
        ),
        (
            "arouter_upstream_duration_seconds",
            "Provider time of a request: its first upstream connect to its last upstream release.",
            |c| &c.upstream,
            false,
        ),
        (
            "arouter_time_to_first_token_seconds",
            "From a provider call's first byte in to the answer's first bytes out.",
            |c| &c.ttft,
            false,
        ),
        (
            "arouter_gateway_added_seconds",
            "What the gateway added to a provider call: its whole time less its provider time.",
            |c| &c.added,
            false,
        ),
    ];
    for (name, help, pick, with_none) in families {
        header(out, name, help, "histogram");
        for p in provider_slots(labels).skip(usize::from(!with_none)) {
            let (mut counts, mut sum_us) = ([0u64; BOUNDS_US.len() + 1], 0u64);
            for thread in threads {
                pick(thread.provider(p)).add_to(&mut counts, &mut sum_us);
            }
            let provider = escaped(labels.provider(p));
            let mut cumulative = 0;
            for (count, bound) in counts.iter().zip(BOUNDS_US) {
                cumulative += count;
                let le = bound as f64 / 1_000_000.0;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{provider=\"{provider}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += counts[BOUNDS_US.len()];
            let sum = sum_us as f64 / 1_000_000.0;
            let _ = writeln!(
                out,
                "{name}_bucket{{provider=\"{provider}\",le=\"+Inf\"}} {cumulative}\n\
                 {name}_sum{{provider=\"{provider}\"}} {sum}\n\
                 {name}_count{{provider=\"{provider}\"}} {cumulative}"
            );
        }
    }
}

fn gauges(out: &mut String, threads: &[Arc<ThreadCells>], labels: &Labels, process: Process) {
    let total = |cell: &dyn Fn(&ThreadCells) -> &AtomicI64| -> i64 {
        threads
            .iter()
            .map(|t| cell(t).load(Ordering::Relaxed))
            .sum()
    };
    let in_flight = total(&|t| &t.in_flight);
    let streams = total(&|t| &t.streams);
    let connections = total(&|t| &t.connections);
    for (name, help, value) in [
        (
            "arouter_in_flight_requests",
            "Requests read and not yet answered in full.",
            in_flight,
        ),
        (
            "arouter_in_flight_streams",
            "Event streams being relayed to clients.",
            streams,
        ),
        (
            "arouter_connections",
            "Open client connections.",
            connections,
        ),
        (
            "arouter_store_queue_depth",
            "Usage records handed to the store's writer and not yet committed.",
            i64::try_from(process.store_queue).unwrap_or(i64::MAX),
        ),
    ] {
        header(out, name, help, "gauge");
        let _ = writeln!(out, "{name} {value}");
    }
    type Pick = fn(&ProviderCells) -> &AtomicI64;
    let pools: [(&str, &str, Pick); 2] = [
        (
            "arouter_upstream_pool_idle_connections",
            "Idle provider connections kept for reuse, over all serving threads.",
            |c| &c.pool_idle,
        ),
        (
            "arouter_upstream_pool_busy_connections",
            "Provider connections carrying a request.",
            |c| &c.pool_busy,
        ),
    ];
    for (name, help, pick) in pools {
        header(out, name, help, "gauge");
        for p in provider_slots(labels).skip(1) {
            let provider = escaped(labels.provider(p));
            let n: i64 = threads
                .iter()
                .map(|t| pick(t.provider(p)).load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(out, "{name}{{provider=\"{provider}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escaped("gpt-4o"), "gpt-4o");
        assert_eq!(escaped("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}

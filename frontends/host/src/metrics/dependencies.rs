//! What the store and Redis are doing to this gateway: whether each
//! answers, and what their failures cost (commits retried, usage given
//! up on, rate-limit admissions decided without Redis). The logs say the
//! same in words, once per outage.

use std::fmt::Write;

use super::render::header;
use super::Dependencies;

pub(super) fn render(out: &mut String, deps: &Dependencies) {
    header(
        out,
        "arouter_dependency_up",
        "Whether a dependency answered this gateway's last call to it (1) or not (0).",
        "gauge",
    );
    let _ = writeln!(
        out,
        "arouter_dependency_up{{dependency=\"store\"}} {}",
        u8::from(deps.store_up)
    );
    if let Some((up, _)) = deps.redis {
        let _ = writeln!(
            out,
            "arouter_dependency_up{{dependency=\"redis\"}} {}",
            u8::from(up)
        );
    }
    let mut counters = vec![
        (
            "arouter_store_failed_commits_total",
            "Usage commits the store refused or could not take (each retried).",
            deps.store_failed_commits,
        ),
        (
            "arouter_usage_dropped_total",
            "Usage records given up on (held queue full, or still failing at shutdown): calls not billed.",
            deps.usage_dropped,
        ),
        (
            "arouter_store_policy_refusals_total",
            "Requests refused with 503 by --store-failure closed because the store was down.",
            deps.store_policy_refusals,
        ),
    ];
    if let Some((_, by_policy)) = deps.redis {
        counters.push((
            "arouter_rate_limit_policy_decisions_total",
            "Rate-limit admissions decided by --redis-failure because Redis could not decide them.",
            by_policy,
        ));
    }
    for (name, help, value) in counters {
        header(out, name, help, "counter");
        let _ = writeln!(out, "{name} {value}");
    }
}

//! Two serving threads' cells, summed by one scrape; labels bounded and
//! free of secrets.

use arouter_core::api::Dialect;
use arouter_core::billing::MicroUsd;
use arouter_core::exchange::{AccessLog, Attempts, Caller, Outcome, UsageRecord};
use arouter_core::usage::Usage;
use arouter_core::Tick;

use super::{Dependencies, Metrics, Process, Timings};
use crate::cli::ServeArgs;
use crate::config::Config;

fn gateway() -> arouter_core::gateway::Gateway {
    let args = ServeArgs {
        shutdown_grace: 10,
        log_level: "info".into(),
        ..ServeArgs::default()
    };
    let env = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-provider-secret".to_string());
    let config = Config::from_sources(&args, &env).expect("config");
    config.gateway().expect("gateway")
}

fn access(model: &str, status: u16) -> AccessLog {
    AccessLog {
        method: http::Method::POST,
        path: "/v1/chat/completions".into(),
        endpoint: "chat_completions",
        status,
        caller: Caller::Key(4242),
        // The id's type is not nameable outside the core; its default
        // will do (no label carries a request id anyway).
        request_id: Default::default(),
        model: Some(model.into()),
        requested: Some(model.into()),
        dialect: Some(Dialect::OpenAi),
        stream: false,
        attempts: Attempts::default(),
        trace: None,
        started: Tick(0),
        finished: Tick(5),
    }
}

fn usage(model: &str, prompt: u64, completion: u64) -> UsageRecord {
    UsageRecord {
        key_id: Some(4242),
        provider: "openai".into(),
        model: model.into(),
        usage: Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            ..Usage::default()
        }),
        cost: Some(MicroUsd(1_500)),
        complete: true,
        estimated: false,
        referer: None,
        title: None,
        // The id's type is not nameable outside the core; its default
        // will do (no label carries a request id anyway).
        request_id: Default::default(),
        upstream_status: Some(200),
        outcome: Outcome::Complete,
        generation_id: None,
        stream: false,
        latency_ms: 5,
    }
}

/// The value of the exposition line that starts with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn two_threads_are_summed_and_unknown_models_fold() {
    let metrics = Metrics::new(&gateway());
    let (one, two) = (metrics.local(), metrics.local());
    let timings = Timings {
        total_us: 3_000,
        upstream_us: Some(2_000),
        ttft_us: Some(2_500),
    };
    for local in [&one, &two] {
        local.request(&access("openai/gpt-4o-mini", 200), timings);
        local.usage(&usage("gpt-4o-mini", 10, 5));
    }
    two.request(&access("openai/made-up-model-xyz", 404), timings);
    let text = metrics.render(Process {
        store_queue: 3,
        dependencies: Dependencies {
            store_up: false,
            store_failed_commits: 4,
            usage_dropped: 0,
            store_policy_refusals: 5,
            redis: Some((true, 7)),
        },
    });

    let ok = "arouter_requests_total{route=\"chat_completions\",dialect=\"openai\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"200\"}";
    assert_eq!(value(&text, ok), Some(2.0), "{text}");
    let other = "arouter_requests_total{route=\"chat_completions\",dialect=\"openai\",provider=\"openai\",model=\"other\",status=\"404\"}";
    assert_eq!(value(&text, other), Some(1.0), "{text}");
    let labels = "{provider=\"openai\",model=\"gpt-4o-mini\"}";
    assert_eq!(
        value(&text, &format!("arouter_input_tokens_total{labels}")),
        Some(20.0)
    );
    assert_eq!(
        value(&text, &format!("arouter_output_tokens_total{labels}")),
        Some(10.0)
    );
    assert_eq!(
        value(&text, &format!("arouter_cost_usd_total{labels}")),
        Some(0.003)
    );
    let count = "arouter_request_duration_seconds_count{provider=\"openai\"}";
    assert_eq!(value(&text, count), Some(3.0));
    let bucket = "arouter_gateway_added_seconds_bucket{provider=\"openai\",le=\"0.001\"}";
    assert_eq!(value(&text, bucket), Some(3.0), "added = 3 ms - 2 ms");
    assert_eq!(value(&text, "arouter_store_queue_depth"), Some(3.0));
    let up = |d: &str| {
        value(
            &text,
            &format!("arouter_dependency_up{{dependency=\"{d}\"}}"),
        )
    };
    assert_eq!((up("store"), up("redis")), (Some(0.0), Some(1.0)));
    assert_eq!(
        value(&text, "arouter_store_failed_commits_total"),
        Some(4.0)
    );
    assert_eq!(value(&text, "arouter_usage_dropped_total"), Some(0.0));
    assert_eq!(
        value(&text, "arouter_store_policy_refusals_total"),
        Some(5.0)
    );
    assert_eq!(
        value(&text, "arouter_rate_limit_policy_decisions_total"),
        Some(7.0)
    );

    for secret in [
        "made-up-model-xyz",
        "sk-provider-secret",
        "req-secret-id-77",
        "4242",
    ] {
        assert!(!text.contains(secret), "{secret} in the exposition");
    }
}
